"""What the fit check's learned verifier costs the full audit: the same synthetic pairs
(bench/audit_speed.py's generator: short mentions in six languages) audited with me5-small, without and
with `[audit.fit] verifier = true`, alternately, on this machine; pairs per second of each, their ratio,
the share of pairs the gate sent to the verifier, and the verifier's own (mention, code text) throughput.
Target: the full audit with the verifier >= 100 pairs/s on 2 cores (needs `clinassay train-verifier`).

    python bench/verifier_speed.py [--pairs 600] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--encoder", default="me5-small")
    args = parser.parse_args()
    from audit_speed import synthetic_pairs

    from clinassay.audit import AuditConfig, Auditor, audit_pairs
    from clinassay.retrieval.encoder_cache import DiskCachedEncoder
    from clinassay.retrieval.models import load_encoder
    from clinassay.retrieval.verifier import load_verifier

    pairs = synthetic_pairs(args.pairs, seed=1)
    verifier = load_verifier()
    plain = DiskCachedEncoder(load_encoder(args.encoder))
    verified = DiskCachedEncoder(plain.encoder, verifier=verifier)
    plain.encode(["warm up"], kind="query")
    verifier.score([("warm up", "warm up")])
    configs = {"without verifier": (AuditConfig(), plain),
               "with verifier": (AuditConfig.model_validate({"fit": {"verifier": True}}), verified)}
    list(audit_pairs(pairs[:100], auditor=Auditor(configs["with verifier"][0], encoder=verified)))  # warm caches
    runs: dict[str, list] = {name: [] for name in configs}
    for _ in range(args.rounds):
        for name, (config, encoder) in configs.items():
            auditor = Auditor(config, encoder=encoder)
            before_calls, before_s = verifier.calls, verifier.seconds
            started = time.perf_counter()
            decisions = list(audit_pairs(pairs, auditor=auditor))
            seconds = time.perf_counter() - started
            fit = next(c for c in auditor.checks if c.name == "consistency").info()["fit"]
            runs[name].append({"pairs_per_s": round(len(decisions) / seconds, 1), "seconds": round(seconds, 2),
                               "load_average_1min": round(os.getloadavg()[0], 1),
                               "asked": fit["verifier"]["asked"], "verifier_pairs": verifier.calls - before_calls,
                               "verifier_s": round(verifier.seconds - before_s, 2)})
    best = {name: max(r["pairs_per_s"] for r in rs) for name, rs in runs.items()}
    with_v = runs["with verifier"][-1]
    result = {"pairs": len(pairs), "runs": runs, "best_pairs_per_s": best,
              "ratio_with_to_without": round(best["with verifier"] / best["without verifier"], 3),
              "share_asked": round(with_v["asked"] / len(pairs), 3),
              "verifier_text_pairs_per_s": round(with_v["verifier_pairs"] / max(1e-9, with_v["verifier_s"]), 1)}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
