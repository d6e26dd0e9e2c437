"""Search and training speed on this machine.

    python bench/search_speed.py [--model MODEL_DIR] [--queries 100]

1. Stage 1, one mention at a time: me5-small query encoding + exact faiss search over the full
   billable ICD-10-CM corpus (English titles + Spanish WHO labels, ~84k label vectors) + pooling per
   code. Target p50 <= 50 ms. The corpus vectors come from the embedding cache when they are there;
   otherwise random unit vectors of the same shape stand in (an exact inner-product scan costs the
   same whatever the vectors hold) and the script says so.
2. Stage 1 + reranking of the top 20 by the cross-encoder (MODEL_DIR's reranker, or the me5-small
   backbone with a fresh head: the same compute). Target p50 <= 600 ms.
3. Training throughput: clinassay's stage-1 trainer against a bare SentenceTransformerTrainer on the
   same rows, model and batch (steps/s, alternating runs, median). Target ratio >= 0.95.

The machine's 2 cores are shared with other jobs: the load average is printed with every figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MENTIONS = [
    "infecciones del tracto urinario", "hipertensión arterial", "insuficiencia renal crónica", "neumonía bilateral",
    "diabetes mellitus tipo 2", "dolor abdominal", "fiebre", "anemia ferropénica", "carcinoma de células claras",
    "estenosis en la unión pieloureteral derecha", "derrame pleural", "cefalea intensa", "hepatitis C crónica",
    "fractura de cadera", "insuficiencia cardiaca congestiva", "trombosis venosa profunda", "linfadenopatías",
]


def load() -> str:
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def stage1_index(encoder, corpus):
    import numpy as np

    from clinassay.retrieval.index import CodeIndex, cached_corpus_embeddings

    vectors, source = cached_corpus_embeddings(encoder, corpus), "cached me5-small vectors"
    if vectors is None:
        rng = np.random.default_rng(0)
        vectors = rng.standard_normal((len(corpus.texts), encoder.dimension)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        source = "random unit vectors (no cached encoding of this corpus)"
    return CodeIndex.build(corpus, vectors, kind="exact"), source


def bench_search(args) -> None:
    from clinassay.retrieval.corpus import build_corpus
    from clinassay.retrieval.models import load_encoder
    from clinassay.terminology import load_terminology

    corpus = build_corpus(load_terminology(), languages=("en", "es"))
    encoder = load_encoder(str(Path(args.model) / "biencoder") if args.model else "me5-small")
    index, source = stage1_index(load_encoder("me5-small"), corpus)
    print(f"corpus: {len(corpus.codes)} billable codes, {len(corpus.texts)} label vectors ({source})")
    from clinassay.retrieval.index import limited_threads

    encoder.encode(["warm up"], kind="query")
    times, cpu = [], []
    with limited_threads(1):  # as Retriever.search runs a single query
        for i in range(args.queries):
            mention = MENTIONS[i % len(MENTIONS)]
            start, start_cpu = time.perf_counter(), time.process_time()
            index.search(encoder.encode([mention], kind="query"), 20)
            times.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
    print(f"stage 1 p50 {statistics.median(times):.1f} ms wall, {statistics.median(cpu):.1f} ms CPU, p90 {percentile(times, 0.9):.1f} ms wall "
          f"per query over {args.queries} queries (target p50 <= 50 ms; {load()})")

    from clinassay.retrieval.reranker import load_fusion_weight, load_reranker, rerank_candidates

    if args.model and (Path(args.model) / "reranker").is_dir():
        reranker, which = load_reranker(Path(args.model) / "reranker"), "trained reranker"
    else:
        from sentence_transformers.cross_encoder import CrossEncoder

        from clinassay.retrieval.models import resolve_model_path
        from clinassay.retrieval.reranker import transformer_dir

        reranker = CrossEncoder(transformer_dir(resolve_model_path("me5-small")), num_labels=1, max_length=96, device="cpu")
        which = "me5-small backbone, fresh head"
    fusion = load_fusion_weight(Path(args.model) / "reranker") if args.model else 1.0
    times, cpu = [], []
    for i in range(args.rerank_queries):  # threads as Retriever.search uses them: one for stage 1, all for stage 2
        mention = MENTIONS[i % len(MENTIONS)]
        start, start_cpu = time.perf_counter(), time.process_time()
        with limited_threads(1):
            shortlist = index.search(encoder.encode([mention], kind="query"), 20)
        rerank_candidates(reranker, [mention], shortlist, corpus=corpus, languages=["es"], fusion_weight=fusion)
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    print(f"stage 1 + rerank top 20 ({which}) p50 {statistics.median(times):.0f} ms wall, {statistics.median(cpu):.0f} ms CPU, "
          f"p90 {percentile(times, 0.9):.0f} ms wall over {args.rerank_queries} queries (target p50 <= 600 ms; {load()})")


def bench_training(args) -> None:
    import copy
    import tempfile

    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer import losses

    from clinassay.retrieval.config import BiEncoderConfig
    from clinassay.retrieval.models import load_encoder
    from clinassay.retrieval.biencoder import freeze_token_embeddings, train_biencoder
    from clinassay.retrieval.training_data import Example, stage1_rows
    from clinassay.terminology import load_terminology

    term = load_terminology()
    codes = [c for c in term.billable_codes() if term.label(c, "es") is not None][: args.train_rows]
    examples = [Example(mention=term.label(c, "es").text, code=c, language="es") for c in codes]
    rows = stage1_rows(examples, term=term, corpus_codes=codes, sibling_negatives=1, mined_negatives=0)
    base = load_encoder(args.train_model).sentence_transformer()
    config = BiEncoderConfig(max_steps=args.train_steps, batch_size=16, document_side="trained",
                             freeze_embeddings=True, eval_steps=10_000, early_stopping_patience=0)
    q, p = base.prompts.get("query", ""), base.prompts.get("passage", base.prompts.get("document", ""))

    def ours() -> float:
        with tempfile.TemporaryDirectory() as tmp:
            m = train_biencoder(copy.deepcopy(base), rows, out_dir=Path(tmp), config=config, seed=13, log=lambda _: None)
        return m["train_steps_per_second"]

    def bare() -> float:
        model = copy.deepcopy(base)
        model.max_seq_length = config.max_seq_length
        freeze_token_embeddings(model)
        with tempfile.TemporaryDirectory() as tmp:
            trainer_args = SentenceTransformerTrainingArguments(
                output_dir=tmp, max_steps=args.train_steps, per_device_train_batch_size=16, learning_rate=3e-5,
                batch_sampler=BatchSamplers.NO_DUPLICATES, prompts={c: (q if c == "anchor" else p) for c in rows[0]} if q or p else None,
                save_strategy="no", report_to="none", disable_tqdm=True, use_cpu=True, seed=13,
                warmup_steps=0.1, dataloader_drop_last=True)
            trainer = SentenceTransformerTrainer(model=model, args=trainer_args, train_dataset=Dataset.from_list(rows),
                                                 loss=losses.MultipleNegativesRankingLoss(model))
            return trainer.train().metrics["train_steps_per_second"]

    ratios = []
    for _ in range(args.train_repeats):
        a, b = ours(), bare()
        ratios.append(a / b)
        print(f"  clinassay {a:.3f} steps/s, bare SentenceTransformerTrainer {b:.3f} steps/s, ratio {a / b:.3f} ({load()})")
    print(f"training throughput ratio (median of {len(ratios)}): {statistics.median(ratios):.3f} "
          f"({args.train_model}, batch 16, {args.train_steps} steps each; target >= 0.95)")


def main() -> int:
    parser = argparse.ArgumentParser(description="search and training speed")
    parser.add_argument("--model", help="a trained MODEL_DIR (default: me5-small zero-shot, untrained reranker head)")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--rerank-queries", type=int, default=30)
    parser.add_argument("--train-model", default="me5-small")
    parser.add_argument("--train-steps", type=int, default=10)
    parser.add_argument("--train-rows", type=int, default=400)
    parser.add_argument("--train-repeats", type=int, default=2)
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    if not args.skip_search:
        bench_search(args)
    if not args.skip_training:
        bench_training(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
