"""What Ray costs on one machine and what it buys: pairs/s of `run_audit` with the local engine and with
the Ray engine at 1 and 2 audit actors, rules only and with embeddings.

    python bench/audit_scale.py                       # 100k pairs rules only, 2k pairs with me5-small
    python bench/audit_scale.py --pairs 20000 --embedding-pairs 0

Pairs come from the terminology generator (the product's plan and `terminology_pairs`: ICD-10-CM titles,
inclusion terms and WHO labels), repeated with their case changed until there are enough (the repeats are
exact duplicates after normalisation: the duplicate check rejects them, the other checks still run).
Every run audits the same file into its own folder; the decisions of every Ray run are checked against
the local run's (same accepted/rejected/malformed files). The local figure is warm (its process audited
one pair first, loading vocabularies, lexicons and the lexical index); the Ray figures include starting
the actors and those loads in each actor; the cluster itself is started once before.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def make_pairs(path: Path, n: int) -> int:
    from clinassay.generation.config import GenerationConfig, ModelConfig
    from clinassay.generation.plan import build_plan
    from clinassay.generation.runner import terminology_pairs
    from clinassay.terminology import load_terminology

    config = GenerationConfig(languages=["es", "en", "pt", "fr"], sample=min(20000, max(50, n // 4)), seed=0,
                              models=[ModelConfig(name="terminology", model="terminology")], progress=False)
    plan = build_plan(load_terminology(), config)
    base = [p.model_dump(mode="json", exclude_none=True) for r in plan.requests for p in terminology_pairs(r)]
    written = 0
    with path.open("w", encoding="utf-8") as handle:
        round_ = 0
        while written < n:
            for record in base:
                if written >= n:
                    break
                mention = record["mention"] if round_ == 0 else (record["mention"].upper() if round_ % 2 else
                                                                  record["mention"].lower())
                handle.write(json.dumps({**record, "mention": mention, "id": f"{record.get('id', 'p')}-{round_}"},
                                        ensure_ascii=False) + "\n")
                written += 1
            round_ += 1
    return written


def files(out: Path) -> tuple[bytes, ...]:
    return tuple((out / name).read_bytes() for name in ("accepted.jsonl", "rejected.jsonl", "malformed.jsonl"))


def run(path: Path, out: Path, config, encoder, engine) -> float:
    from clinassay.audit import run_audit

    started = time.perf_counter()
    run_audit(path, out, config=config, encoder=encoder, engine=engine)
    return time.perf_counter() - started


def measure(label: str, path: Path, n: int, work: Path, config, encoder_factory, workers: list[int]) -> None:
    from clinassay.audit.distributed import RayAuditEngine
    from clinassay.audit.engines import LocalEngine

    warm = work / f"{label}-warm.jsonl"  # the local run's one-time loads (vocabularies, lexicons, index) first
    warm.write_text("".join(path.open(encoding="utf-8").readline() for _ in range(1)), encoding="utf-8")
    run(warm, work / f"{label}-warm", config, encoder_factory(), LocalEngine())
    local_s = run(path, work / f"{label}-local", config, encoder_factory(), LocalEngine())
    print(f"{label}: {n} pairs, local engine {local_s:.1f} s = {n / local_s:.0f} pairs/s", flush=True)
    reference = files(work / f"{label}-local")
    for w in workers:
        engine = RayAuditEngine(workers=w, num_cpus=1.0, partition_pairs=max(100, n // (4 * w)),
                                encoder=encoder_factory())
        seconds = run(path, work / f"{label}-ray{w}", config, encoder_factory(), engine)
        same = files(work / f"{label}-ray{w}") == reference
        print(f"{label}: ray, {w} worker{'s' if w > 1 else ''}: {seconds:.1f} s = {n / seconds:.0f} pairs/s, "
              f"ratio to local {local_s / seconds:.2f} ({engine.figures['partitions']} partitions; "
              f"decisions identical to local: {same})", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=100_000)
    parser.add_argument("--embedding-pairs", type=int, default=2_000)
    parser.add_argument("--encoder", default="me5-small")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    import ray

    from clinassay.audit import AuditConfig

    work = args.work or Path(tempfile.mkdtemp(prefix="audit-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    # one CPU more than the largest actor count: reading and shuffling keep a CPU of their own
    ray.init(num_cpus=max(args.workers) + 1, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; ray {ray.__version__}; work {work}")
    try:
        if args.pairs:
            path = work / "pairs.jsonl"
            n = make_pairs(path, args.pairs)
            measure("rules only", path, n, work, AuditConfig(embeddings=False), lambda: None, args.workers)
        if args.embedding_pairs:
            from clinassay.retrieval.encoder_cache import DiskCachedEncoder
            from clinassay.retrieval.models import load_encoder

            path = work / "pairs-embeddings.jsonl"
            n = make_pairs(path, args.embedding_pairs)
            measure(f"with {args.encoder}", path, n, work, AuditConfig(encoder=args.encoder),
                    lambda: DiskCachedEncoder(load_encoder(args.encoder)), args.workers)
    finally:
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
