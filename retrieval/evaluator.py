"""Per-language evaluation of a retriever on (mention, code, language) items, writing the
`metrics.json` the gate and the reports read (`metrics_file.MetricsFile`) and the per-item
`predictions.jsonl` the gate's paired test reads (`predictions.PredictionRow`).

Why ranks are computed here from the index's results rather than by sentence-transformers'
`InformationRetrievalEvaluator`: a code is scored by the best of its labels (max pooling over
several label vectors), slices are per language with bootstrap intervals, and the corpus
embeddings come from the cache instead of being re-encoded on every call (minutes for the full
corpus). The evaluator would rank labels, not codes. Training's dev early stopping does use
`InformationRetrievalEvaluator` (small dev corpus, one document per code).
"""

from __future__ import annotations

import hashlib
import platform
import time
from pathlib import Path

from clinassay.retrieval.evalset import EvalItem
from clinassay.retrieval.metrics import distinct_positions as positions_of_distinct
from clinassay.retrieval.metrics import rank_of, ranking_metrics
from clinassay.retrieval.metrics_file import (
    METRICS_FILE,
    Coverage,
    EvalSetInfo,
    Evaluation,
    GateComparison,
    MetricsFile,
    ModelInfo,
)
from clinassay.retrieval.predictions import PredictionRow, write_predictions


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in ("clinassay", "sentence-transformers", "torch", "transformers", "faiss-cpu", "bm25s", "numpy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


def model_hash(retriever) -> str:
    """Hash of what decides the rankings: the trained model's card (which holds the hashes of its
    weights) or the baseline's name and corpus."""
    if retriever.model_dir is not None:
        data = (Path(retriever.model_dir) / "model_card.json").read_bytes()
    else:
        encoder_id = retriever.name
        if retriever.name != "bm25":
            encoder_id = getattr(retriever.encoder, "fingerprint", retriever.name)
        data = f"{encoder_id}|{retriever.corpus.fingerprint}".encode()
    return hashlib.sha256(data).hexdigest()


def distinct_positions(items: list[EvalItem]) -> list[int]:
    """Index of the first occurrence of each distinct (mention, code, language) triple
    (`metrics.distinct_positions`)."""
    return positions_of_distinct((item.mention, item.code, item.language) for item in items)


def evaluate(
    retriever,
    items: list[EvalItem],
    *,
    rerank: bool = False,
    bootstrap_samples: int = 1000,
    seed: int = 13,
) -> tuple[Evaluation, list[PredictionRow]]:
    """Metrics in both views and one prediction row per item (`predictions.PredictionRow`).

    `stages` (`{"biencoder": M, "reranker": M}`) weighs every item as it occurs in the evaluation set
    (a mention written 40 times counts 40 times: what a coder meets); `distinct.stages` counts each
    distinct (mention, code, language) once (the long tail a model does not know yet). Both come from
    the same rankings: an identical mention is ranked identically wherever it occurs."""
    started = time.perf_counter()
    mentions = [item.mention for item in items]
    languages = [item.language for item in items]
    shortlist = max(10, retriever.config.reranker.candidates_top_k) if rerank else 10
    first = retriever.stage1(mentions, k=shortlist)
    stages = {}
    ranks1 = [rank_of(item.code, [c for c, _ in row[:10]]) for item, row in zip(items, first)]
    stages["biencoder"] = ranking_metrics(ranks1, languages, bootstrap_samples=bootstrap_samples, seed=seed)
    ranks = {"biencoder": ranks1}
    second = None
    if rerank:
        second = retriever.rerank(mentions, first, languages=languages)
        ranks["reranker"] = [rank_of(item.code, [c for c, _ in row[:10]]) for item, row in zip(items, second)]
        stages["reranker"] = ranking_metrics(ranks["reranker"], languages, bootstrap_samples=bootstrap_samples, seed=seed)
    predictions = [
        PredictionRow(
            mention=item.mention, code=item.code, language=item.language,
            rank_biencoder=ranks1[i], top_biencoder=[c for c, _ in first[i][:5]],
            rank_reranker=ranks["reranker"][i] if second is not None else None,
            top_reranker=[c for c, _ in second[i][:5]] if second is not None else None,
        )
        for i, item in enumerate(items)
    ]
    distinct = distinct_positions(items)
    distinct_stages = {
        stage: ranking_metrics(
            [stage_ranks[i] for i in distinct], [languages[i] for i in distinct],
            bootstrap_samples=bootstrap_samples, seed=seed,
        )
        for stage, stage_ranks in ranks.items()
    }
    corpus_codes = set(retriever.corpus.codes)
    coverage = Coverage(
        items=len(items), distinct_items=len(distinct),
        gold_not_in_corpus=sum(item.code not in corpus_codes for item in items),
        # languages the corpus serves that the evaluation set has no item in (Catalan, offline)
        no_evaluation_data=sorted(set(retriever.corpus.languages or ()) - set(languages)),
    )
    evaluation = Evaluation.model_validate(
        {"stages": stages, "distinct": {"items": len(distinct), "stages": distinct_stages}, "coverage": coverage,
         "seconds": round(time.perf_counter() - started, 3)}
    )
    return evaluation, predictions


def write_metrics(
    out_dir: Path | str,
    evaluation: Evaluation,
    predictions: list[PredictionRow],
    *,
    eval_set: EvalSetInfo,
    model: ModelInfo,
    seed: int,
    comparison: GateComparison | None = None,
    reranker_vs_stage1: GateComparison | None = None,
) -> Path:
    """`metrics.json` (a `MetricsFile`: the evaluation, eval set and model hashes, versions, seed, and
    the gate's comparison when a baseline was given, the reranker's against stage 1 when it ran) and `predictions.jsonl` (a `PredictionRow` per
    item: the gate's paired test and error analysis read it)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    document = MetricsFile(
        stages=evaluation.stages, distinct=evaluation.distinct, coverage=evaluation.coverage,
        seconds=evaluation.seconds, eval_set=eval_set, model=model, seed=seed, versions=_versions(), comparison=comparison,
        reranker_vs_stage1=reranker_vs_stage1,
    )
    path = out_dir / METRICS_FILE
    path.write_text(document.to_json(), encoding="utf-8")
    write_predictions(out_dir, predictions)
    return path
