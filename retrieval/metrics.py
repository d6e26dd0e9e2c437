"""Ranking metrics from the rank of each gold code, per language and overall, with bootstrap
intervals. Pure numpy: the gate and the reports read these without loading torch.

A rank is 1-based; 0 means "not in the top k". Every figure is computed from the same ranks, so
MRR@10, NDCG@10 and R@k of one slice always agree with each other. Names follow sentence-transformers'
`InformationRetrievalEvaluator` and MTEB ("mrr@10", "ndcg@10"); one gold code per query, so NDCG@10 is
1 / log2(rank + 1) within the top 10 (the ideal DCG is 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # metrics_file is pure pydantic; imported lazily to keep this module numpy only
    from clinassay.retrieval.metrics_file import Evaluation

METRICS: tuple[str, ...] = ("mrr@10", "ndcg@10", "r@1", "r@3", "r@5", "r@10")
# occurrence: every evaluation item as it occurs; distinct: each (mention, code, language) once
VIEWS: tuple[str, ...] = ("occurrence", "distinct")


def per_query(ranks: np.ndarray) -> dict[str, np.ndarray]:
    """Each metric's value for every query: the means of these are the slice's figures."""
    hit = ranks > 0
    in_top10 = hit & (ranks <= 10)
    reciprocal = np.where(in_top10, 1.0 / np.maximum(ranks, 1), 0.0)
    ndcg = np.where(in_top10, 1.0 / np.log2(np.maximum(ranks, 1) + 1.0), 0.0)
    values = {"mrr@10": reciprocal, "ndcg@10": ndcg}
    for k in (1, 3, 5, 10):
        values[f"r@{k}"] = (hit & (ranks <= k)).astype(float)
    return values


def slice_metrics(ranks: Sequence[int], *, bootstrap_samples: int = 1000, seed: int = 13) -> dict:
    """`{"n", "mrr@10", "ndcg@10", "r@1", "r@3", "r@5", "r@10", "ci95": {metric: [lo, hi]}}` for one slice."""
    array = np.asarray(ranks, dtype=np.int64)
    n = int(array.size)
    if n == 0:
        return {"n": 0, **{m: None for m in METRICS}, "ci95": {m: None for m in METRICS}}
    values = per_query(array)
    result: dict = {"n": n}
    for name in METRICS:
        result[name] = round(float(values[name].mean()), 6)
    result["ci95"] = {}
    if bootstrap_samples > 0:
        rng = np.random.default_rng(seed)
        samples = rng.integers(0, n, size=(bootstrap_samples, n))
        for name in METRICS:
            means = values[name][samples].mean(axis=1)
            result["ci95"][name] = [round(float(np.percentile(means, 2.5)), 6), round(float(np.percentile(means, 97.5)), 6)]
    return result


def ranking_metrics(
    ranks: Sequence[int], languages: Sequence[str], *, bootstrap_samples: int = 1000, seed: int = 13
) -> dict:
    """`{"overall": S, "languages": {lang: S}}` from aligned ranks and query languages."""
    if len(ranks) != len(languages):
        raise ValueError(f"ranks and languages must align: got {len(ranks)} ranks and {len(languages)} languages")
    ranks_array = np.asarray(ranks, dtype=np.int64)
    langs = np.asarray(languages, dtype=object)
    per_language = {
        language: slice_metrics(ranks_array[langs == language], bootstrap_samples=bootstrap_samples, seed=seed)
        for language in sorted(set(languages))
    }
    return {
        "overall": slice_metrics(ranks_array, bootstrap_samples=bootstrap_samples, seed=seed),
        "languages": per_language,
    }


def distinct_key(mention: str, code: str, language: str) -> tuple[str, str, str]:
    """What the distinct-pair view counts once: the mention casefolded with its whitespace collapsed,
    so "Fiebre" and "fiebre " coded R50.9 are one pair however often an evaluation set repeats them."""
    return (" ".join(mention.casefold().split()), code, language)


def distinct_positions(triples: Iterable[tuple[str, str, str]]) -> list[int]:
    """Index of the first occurrence of each distinct (mention, code, language) (`distinct_key`): the
    evaluator's distinct view and the gate's pairing of it both come from here."""
    seen: set[tuple[str, str, str]] = set()
    keep = []
    for position, (mention, code, language) in enumerate(triples):
        key = distinct_key(mention, code, language)
        if key not in seen:
            seen.add(key)
            keep.append(position)
    return keep


def paired_drop_p_value(candidate: np.ndarray, baseline: np.ndarray, *, samples: int = 10_000, seed: int = 13) -> float:
    """One-sided p-value that the candidate is no worse than the baseline on the same queries: a paired
    randomization (sign-flip) test of the summed per-query differences, the test IR evaluation uses for
    system comparisons (Smucker, Allan & Carterette, 2007). Queries scored the same both times cannot
    tell the runs apart and drop out; up to 16 that differ are enumerated exactly, more are sampled.
    One query of 25 flipping from hit to miss gives p = 0.5: a drop that size is not evidence."""
    diff = np.asarray(candidate, dtype=float) - np.asarray(baseline, dtype=float)
    diff = diff[np.abs(diff) > 1e-12]
    if diff.size == 0:
        return 1.0
    observed = diff.sum() + 1e-9
    if diff.size <= 16:
        signs = 1 - 2 * ((np.arange(2**diff.size)[:, None] >> np.arange(diff.size)) & 1)
        return float(np.mean(signs @ diff <= observed))
    rng = np.random.default_rng(seed)
    at_most = 0
    chunk = max(1, 2_000_000 // diff.size)
    for start in range(0, samples, chunk):
        signs = rng.choice((-1.0, 1.0), size=(min(chunk, samples - start), diff.size))
        at_most += int(np.count_nonzero(signs @ diff <= observed))
    return (at_most + 1) / (samples + 1)


def rank_of(gold: str, ranked_codes: Sequence[str]) -> int:
    """1-based position of the gold code in a ranking, 0 when absent."""
    for position, code in enumerate(ranked_codes, start=1):
        if code == gold:
            return position
    return 0


def view_stages(metrics: Mapping[str, Any] | Evaluation, view: str) -> dict[str, dict[str, Any]]:
    """`{stage: {"overall", "languages"}}` of one view as plain dicts, for scripts that read metrics.json
    with `json` (bench/): the document is validated as a `MetricsFile` first (`{}` for the distinct view
    of a file written before it). The product reads `Evaluation.view` instead."""
    from clinassay.retrieval.metrics_file import Evaluation, parse_metrics

    evaluation = metrics if isinstance(metrics, Evaluation) else parse_metrics(metrics, source="metrics")
    return {stage: block.model_dump(mode="json", by_alias=True) for stage, block in evaluation.view(view).items()}


VIEW_TITLES = {"occurrence": "every occurrence", "distinct": "distinct (mention, code) pairs"}


def format_metrics_table(metrics: Evaluation) -> str:
    """The terminal table of a metrics.json: both views, every stage, overall then per language,
    MRR@10 with its 95 % interval, NDCG@10, R@1/5/10; languages without evaluation data named."""
    header = (f"{'view':<10} {'stage':<10} {'slice':<8} {'n':>6} {'MRR@10':>7} {'95% CI':>13} "
              f"{'NDCG@10':>7} {'R@1':>6} {'R@5':>6} {'R@10':>6}")
    lines = [header]
    for view in VIEWS:
        for stage, block in metrics.view(view).items():
            slices = [("overall", block.overall)] + sorted(block.languages.items())
            for name, s in slices:
                if not s.n:
                    continue
                ci = s.ci95.get("mrr@10")
                interval = f"{ci[0]:.3f}-{ci[1]:.3f}" if ci else "-"
                lines.append(
                    f"{view:<10} {stage:<10} {name:<8} {s.n:>6} {s.mrr_at_10:>7.4f} {interval:>13} "
                    f"{s.ndcg_at_10:>7.4f} {s.r_at_1:>6.3f} {s.r_at_5:>6.3f} {s.r_at_10:>6.3f}"
                )
    coverage = metrics.coverage
    if coverage.distinct_items is not None:
        lines.append(f"views: occurrence = {coverage.items} items as they occur; "
                     f"distinct = {coverage.distinct_items} distinct (mention, code) pairs")
    for language in coverage.no_evaluation_data:
        lines.append(f"{language}: no evaluation data (in the corpus, not in this evaluation set)")
    if coverage.gold_not_in_corpus:
        lines.append(f"note: {coverage.gold_not_in_corpus} items have a gold code outside the corpus (counted as misses)")
    return "\n".join(lines)
