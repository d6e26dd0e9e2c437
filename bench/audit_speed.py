"""Audit speed and memory, measured on this machine:

- the checks without embeddings (validity, language, PHI, rules, exact duplicates, leakage by text):
  pairs per second over synthetic pairs in six languages (target >= 2,000 pairs/s);
- the full audit with the real encoder (me5-small on CPU; code titles cached on disk as the CLI does):
  pairs per second (target >= 100 pairs/s);
- near-duplicate search (faiss, partitioned by code): seconds for 10k vs 100k pairs, and the ratio
  (linear growth means about 10x);
- peak memory (max RSS) of `run_audit` over 10k and 100k pairs without embeddings: streaming keeps it
  flat instead of growing with the file.

    python bench/audit_speed.py [--rules-pairs 20000] [--full-pairs 300] [--skip-full]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

MODIFIERS = {
    "es": ["de larga evolución", "en paciente anciano", "leve", "grave", "recidivante", "agudo", "crónico"],
    "ca": ["de llarga evolució", "en pacient gran", "lleu", "greu", "recidivant", "agut", "crònic"],
    "pt": ["de longa evolução", "em paciente idoso", "leve", "grave", "recidivante", "agudo", "crônico"],
    "fr": ["de longue évolution", "chez un patient âgé", "léger", "sévère", "récidivant", "aigu", "chronique"],
    "it": ["di lunga durata", "in paziente anziano", "lieve", "grave", "recidivante", "acuto", "cronico"],
    "en": ["long-standing", "in an elderly patient", "mild", "severe", "recurrent", "acute", "chronic"],
}


def synthetic_pairs(n: int, *, seed: int = 0, mentions_per_code: int = 5) -> list[dict]:
    from clinassay.terminology import load_terminology

    term = load_terminology()
    rng = random.Random(seed)
    codes = term.billable_codes()
    rng.shuffle(codes)
    out = []
    langs = list(MODIFIERS)
    for i in range(n):
        # like a generation plan: each code x language gets `mentions_per_code` mentions
        code = codes[(i // (mentions_per_code * len(langs))) % len(codes)]
        lang = langs[(i // mentions_per_code) % len(langs)]
        label = term.label(code, lang) if lang != "en" else None
        base = label.text if label is not None else term.get(code).title
        # LLM mentions are short (CodiEsp's clinician mentions average ~3 words): a few words of the
        # label plus a modifier, numbered so that they are not all duplicates
        words = base.replace(",", "").split()[: rng.randint(2, 4)]
        mention = f"{' '.join(words)} {rng.choice(MODIFIERS[lang])} {i}"
        out.append({"id": f"s{i}", "mention": mention, "code": code, "language": lang,
                    "model": f"gen-{i % 3}", "cost_usd": 0.0001})
    return out


def bench_rules(n: int) -> dict:
    from clinassay.audit import AuditConfig, Auditor, audit_pairs

    pairs = synthetic_pairs(n)
    auditor = Auditor(AuditConfig(embeddings=False))
    list(audit_pairs(pairs[:200], auditor=Auditor(AuditConfig(embeddings=False))))  # warm: lingua models, caches
    started, cpu = time.perf_counter(), time.process_time()
    decisions = list(audit_pairs(pairs, auditor=auditor))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    started = time.perf_counter()
    auditor.summarize()
    summary_seconds = time.perf_counter() - started
    mean_chars = sum(len(p["mention"]) for p in pairs) / len(pairs)
    return {"pairs": len(decisions), "mean_mention_chars": round(mean_chars, 1), "seconds": round(seconds, 2),
            "pairs_per_s": round(len(decisions) / seconds, 1), "pairs_per_cpu_s": round(len(decisions) / cpu, 1),
            "load_average_1min": round(os.getloadavg()[0], 1),
            "per_check_s": {k: round(v, 2) for k, v in auditor.timings.items()},
            "dataset_summary_s (bias fingerprint etc.)": round(summary_seconds, 2)}


def bench_full(n: int, encoder_name: str) -> dict:
    from clinassay.audit import AuditConfig, Auditor, audit_pairs
    from clinassay.retrieval.encoder_cache import DiskCachedEncoder
    from clinassay.retrieval.models import load_encoder

    pairs = synthetic_pairs(n, seed=1)
    encoder = DiskCachedEncoder(load_encoder(encoder_name))
    encoder.encode(["warm up"], kind="query")
    runs = {}
    for label in ("first pass (code titles from the on-disk cache where a previous run left them)", "second pass (code titles cached in memory)"):
        auditor = Auditor(AuditConfig(), encoder=encoder)
        started, cpu = time.perf_counter(), time.process_time()
        decisions = list(audit_pairs(pairs, auditor=auditor))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        runs[label] = {"pairs": len(decisions), "seconds": round(seconds, 2),
                       "pairs_per_s": round(len(decisions) / seconds, 1), "cpu_s": round(cpu, 2),
                       "load_average_1min": round(os.getloadavg()[0], 1),
                       "per_stage_s": {k: round(v, 2) for k, v in auditor.timings.items()}}
    return runs


def bench_near_duplicates(sizes=(10_000, 100_000), dim: int = 384, per_code: int = 5) -> dict:
    from clinassay.audit import AuditConfig
    from clinassay.audit.checks import AuditResources, DuplicateCheck
    from clinassay.audit.items import Chunk, Item

    out = {}
    rng = np.random.default_rng(0)
    for n in sizes:
        check = DuplicateCheck(AuditConfig(), AuditResources(terminology=None))
        started = time.perf_counter()
        for start in range(0, n, 2000):
            m = min(2000, n - start)
            vectors = rng.standard_normal((m, dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            items = []
            for k in range(m):
                i = start + k
                item = Item(line=i, record={"id": f"x{i}"}, mention=f"mention {i}", raw_code="X", language="es",
                            generator="g")
                item.code = f"C{i // per_code}"
                items.append(item)
            check.check_chunk(Chunk(items, vectors))
        total = time.perf_counter() - started
        out[n] = {"search_s": round(check.search_seconds, 3), "total_s": round(total, 3)}
    a, b = sizes
    out["ratio_search"] = round(out[b]["search_s"] / out[a]["search_s"], 2)
    out["ratio_total"] = round(out[b]["total_s"] / out[a]["total_s"], 2)
    out["ideal_linear_ratio"] = b / a
    return out


def _peak_rss_child(n: int) -> dict:
    """Write n pairs in one process, audit them in a fresh one: peak RSS after loading the terminology and
    the language models (baseline) vs after the whole streamed audit."""
    folder = Path(tempfile.mkdtemp())
    writer = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / 'bench')!r})\n"
        "from audit_speed import synthetic_pairs\n"
        f"with open({str(folder / 'p.jsonl')!r}, 'w') as f:\n"
        f"    for start in range(0, {n}, 5000):\n"
        f"        for p in synthetic_pairs(min(5000, {n} - start), seed=start): f.write(json.dumps(p) + '\\n')\n"
    )
    auditor = (
        "import json, resource, sys, time\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from pathlib import Path\n"
        "from audit import AuditConfig, Auditor, audit_pairs, run_audit\n"
        "from terminology import load_terminology\n"
        "list(audit_pairs([{'mention': 'infección urinaria de repetición', 'code': 'N39.0', 'language': 'es'}],"
        " config=AuditConfig(embeddings=False), terminology=load_terminology()))\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "t = time.perf_counter()\n"
        f"run_audit(Path({str(folder / 'p.jsonl')!r}), Path({str(folder / 'out')!r}), config=AuditConfig(embeddings=False))\n"
        "print(json.dumps({'baseline_maxrss_mb': round(base, 1), 'maxrss_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), 'seconds': round(time.perf_counter() - t, 1)}))\n"
    )
    for code in (writer, auditor):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=3000)
        if result.returncode != 0:
            return {"error": result.stderr[-2000:]}
    out = json.loads(result.stdout.strip().splitlines()[-1])
    out["input_mb"] = round((folder / "p.jsonl").stat().st_size / 1e6, 1)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules-pairs", type=int, default=20_000)
    parser.add_argument("--full-pairs", type=int, default=300)
    parser.add_argument("--encoder", default="me5-small")
    parser.add_argument("--skip-full", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result: dict = {"cpus": os.cpu_count()}
    result["rules"] = bench_rules(args.rules_pairs)
    r = result["rules"]
    print(f"checks without embeddings: {r['pairs_per_s']} pairs/s wall, {r['pairs_per_cpu_s']} pairs per CPU-second, "
          f"over {r['pairs']} pairs of {r['mean_mention_chars']} chars (target >= 2000; load average "
          f"{r['load_average_1min']} on {result['cpus']} CPUs); per check {r['per_check_s']}")
    result["near_duplicates"] = bench_near_duplicates()
    nd = result["near_duplicates"]
    print(f"near-duplicate search: 10k {nd[10_000]} vs 100k {nd[100_000]}: ratio {nd['ratio_search']} "
          f"(search) / {nd['ratio_total']} (total), linear = {nd['ideal_linear_ratio']}")
    if not args.skip_memory:
        result["memory"] = {n: _peak_rss_child(n) for n in (10_000, 100_000)}
        print(f"peak RSS, run_audit without embeddings: {json.dumps(result['memory'])}")
    if not args.skip_full:
        result["full"] = bench_full(args.full_pairs, args.encoder)
        for label, run in result["full"].items():
            print(f"full audit ({args.encoder}, {label}): {run['pairs_per_s']} pairs/s over {run['pairs']} pairs "
                  f"(target >= 100); stages {run['per_stage_s']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
