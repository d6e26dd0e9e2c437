"""Training step time of both stages in fp32 and in bf16 on this machine's CPU, in one run.

Claim: on a CPU with AMX or AVX512-BF16 (`retrieval.models.native_bf16`), `[retrieval] precision =
"auto"` trains in bf16, which takes a fraction of fp32's time per step for stage 1 (the bi-encoder)
and stage 2 (the reranker, token embeddings frozen or not). Printed: seconds per step of each, and the
ratio to fp32.

    CLINASSAY_THREADS=2 python bench/train_precision.py [--steps 12] [--rows 2000]

The rows: Spanish WHO labels as mentions, their ICD-10-CM titles as positives and sibling titles as
negatives (2 for stage 1, 8 for a reranker group), through the product's `train_biencoder` and
`train_reranker` with `bare` trainers; each timing includes loading the model once, so it is an upper
bound of the steady step time (the same for every row of the table).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args()

    from clinassay.retrieval.biencoder import train_biencoder, training_placement
    from clinassay.retrieval.config import BiEncoderConfig, RerankerConfig
    from clinassay.retrieval.corpus import select_codes
    from clinassay.retrieval.models import load_encoder, native_bf16, resolve_model_path
    from clinassay.retrieval.reranker import train_reranker
    from clinassay.retrieval.training_data import siblings_of, title_of
    from clinassay.terminology import load_terminology

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; CLINASSAY_THREADS="
          f"{os.environ.get('CLINASSAY_THREADS', 'unset')}; native bf16: {native_bf16('cpu')}")
    term = load_terminology()
    rng = random.Random(0)
    rows, groups = [], []
    for code in select_codes(term, billable_only=True):
        label = term.label(code, "es")
        siblings = siblings_of(term, code)
        if label is None or len(siblings) < 8 or rng.random() > 0.3:
            continue
        rows.append({"anchor": label.text, "positive": title_of(term, code),
                     "negative_1": title_of(term, siblings[0]), "negative_2": title_of(term, siblings[1])})
        group = {"anchor": label.text, "positive": title_of(term, code)}
        group.update({f"negative_{j}": title_of(term, s) for j, s in enumerate(siblings[:8], start=1)})
        groups.append(group)
        if len(rows) >= args.rows:
            break
    print(f"{len(rows)} stage-1 rows, {len(groups)} reranker groups; {args.steps} steps each")
    results: dict[str, float] = {}
    for precision in ("fp32", "bf16"):
        placement = training_placement("cpu", precision)
        for name, run in (
            ("stage 1, batch 32", lambda d, placement=placement: train_biencoder(
                load_encoder("me5-small", device="cpu").sentence_transformer(), rows, out_dir=d,
                config=BiEncoderConfig(max_steps=args.steps, batch_size=32), seed=1, bare=True, placement=placement,
                log=lambda _: None)),
            ("reranker, 8 groups x 9, embeddings frozen", lambda d, placement=placement: train_reranker(
                resolve_model_path("me5-small"), groups, out_dir=d,
                config=RerankerConfig(max_steps=args.steps, batch_size=8, negatives=8), seed=1, placement=placement,
                log=lambda _: None)),
            ("reranker, 8 groups x 9, embeddings trained", lambda d, placement=placement: train_reranker(
                resolve_model_path("me5-small"), groups, out_dir=d,
                config=RerankerConfig(max_steps=args.steps, batch_size=8, negatives=8, freeze_embeddings=False),
                seed=1, placement=placement, log=lambda _: None)),
        ):
            with tempfile.TemporaryDirectory() as out:
                started = time.perf_counter()
                run(Path(out) / "model")
                results[f"{name}|{precision}"] = (time.perf_counter() - started) / args.steps
            seconds = results[f"{name}|{precision}"]
            base = results.get(f"{name}|fp32", seconds)
            print(f"{precision} {name:<44}: {seconds:6.2f} s/step ({base / seconds:.2f}x fp32)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
