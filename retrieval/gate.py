"""The per-language regression gate: every language and gated metric of a run against a stored
baseline's metrics.json, in both views of the evaluation set (every occurrence, and each distinct
(mention, code) pair once: a model can win on the mentions that repeat and lose the long tail). A drop
beyond the tolerance in either view is a regression and fails the gate when it is also beyond noise:
with both runs' per-item ranks (predictions.jsonl beside each metrics.json, the same evaluation items)
each drop gets a paired randomization test, and one with p above `significance` is shown as not
significant instead of failing (25 items per language: one item flipping is a 0.04 drop in R@5 and
p = 0.5). Without per-item ranks the tolerance alone decides, and the gate says so. Lifts are reported
too; a language or a view the baseline lacks is listed, never silently skipped. Both runs are read as
`metrics_file.Evaluation`s and their per-item rows as `predictions.PredictionRow`s; the decision is
recorded in metrics.json as a `GateComparison`. No torch here: the reports and the pipeline read gate
results without loading a model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from pydantic import BaseModel

import numpy as np

from clinassay.retrieval.config import Metric
from clinassay.retrieval.metrics import METRICS, VIEWS, distinct_positions, paired_drop_p_value, per_query
from clinassay.retrieval.metrics_file import (
    Comparison,
    Evaluation,
    GateComparison,
    SliceFigures,
    Stage,
    View,
    parse_metrics,
)
from clinassay.retrieval.predictions import PredictionRow
from clinassay.retrieval.predictions import load_predictions as load_predictions  # evaluate --baseline reads them here
from clinassay.terminology.errors import ClinassayInputError


class GateResult(BaseModel):
    """The gate's result in memory: every compared slice (`comparisons`); `to_comparison` is what
    metrics.json records of it."""

    baseline: str
    tolerance: float
    metrics: list[Metric]
    stage: Stage
    baseline_stage: Stage
    comparisons: list[Comparison]
    missing_in_baseline: list[str]
    missing_in_current: list[str]
    views: list[View] = ["occurrence"]  # the views compared
    views_not_compared: list[View] = []  # a view one of the two files lacks (older metrics.json)
    significance: float = 1.0  # a drop beyond the tolerance fails only with p at or below this
    paired: bool = False  # both runs' per-item ranks were compared; False: the tolerance alone decided
    unpaired_reason: str | None = None

    @property
    def regressions(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.status == "regression"]

    @property
    def lifts(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.status == "lift"]

    @property
    def not_significant(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.status == "not_significant"]

    @property
    def passed(self) -> bool:
        return not self.regressions

    def to_comparison(self) -> GateComparison:
        """metrics.json's `comparison`: regressions, lifts and the rest (`rows`), each row once."""
        return GateComparison(
            baseline=self.baseline,
            stage=self.stage,
            baseline_stage=self.baseline_stage,
            tolerance=self.tolerance,
            metrics=self.metrics,
            passed=self.passed,
            views=self.views,
            views_not_compared=self.views_not_compared,
            significance=self.significance,
            paired=self.paired,
            unpaired_reason=self.unpaired_reason,
            regressing_languages=sorted({c.language for c in self.regressions}),
            regressing_views=sorted({c.view for c in self.regressions}),
            regressions=self.regressions,
            lifts=self.lifts,
            rows=[c for c in self.comparisons if c.status in ("same", "not_significant")],
            missing_languages=self.missing_in_baseline,
            missing_in_current=self.missing_in_current,
        )

    def to_dict(self) -> dict[str, Any]:
        """`to_comparison` as metrics.json writes it."""
        return self.to_comparison().model_dump(mode="json", by_alias=True)


def _pairing(current: Sequence[PredictionRow] | None, baseline: Sequence[PredictionRow] | None) -> str | None:
    """Why the two runs' items cannot be paired, or None when they can."""
    if current is None or baseline is None:
        return "a run has no per-item ranks (predictions.jsonl)"
    if len(current) != len(baseline):
        return f"different evaluation items ({len(current)} vs {len(baseline)})"
    for number, (a, b) in enumerate(zip(current, baseline), start=1):
        if a.item != b.item:
            return f"different evaluation items (item {number} differs)"
    return None


def _view_rows(predictions: Sequence[PredictionRow], view: str) -> Sequence[PredictionRow]:
    if view == "occurrence":
        return predictions
    keep = distinct_positions(row.item for row in predictions)
    return [predictions[i] for i in keep]


def _slice_values(rows: Sequence[PredictionRow], stage: Stage, language: str, metric: str) -> np.ndarray | None:
    ranks = [row.rank(stage) for row in rows if language == "overall" or row.language == language]
    if not ranks or any(r is None for r in ranks):  # a stage the rows do not hold
        return None
    return per_query(np.asarray(ranks, dtype=np.int64))[metric]


def _evaluation(value: Evaluation | Mapping[str, Any], which: str) -> Evaluation:
    """An `Evaluation` as given, or a metrics.json document already parsed with `json` (bench/ reads
    them so), validated as one."""
    return value if isinstance(value, Evaluation) else parse_metrics(value, source=f"the {which} run's metrics")


def compare(
    current: Evaluation | Mapping[str, Any],
    baseline: Evaluation | Mapping[str, Any],
    *,
    tolerance: float = 0.01,
    metrics: Sequence[str] = ("mrr@10", "r@5"),
    baseline_name: str = "baseline",
    significance: float = 1.0,
    current_predictions: Sequence[PredictionRow] | None = None,
    baseline_predictions: Sequence[PredictionRow] | None = None,
    stage: Stage | None = None,
    baseline_stage: Stage | None = None,
) -> GateResult:
    """Compare the final stage of `current` (or `stage`) with the final stage of `baseline` (or
    `baseline_stage`), slice by slice, in every view both hold (the occurrence view always; the distinct
    view when both have it). One run against itself with `stage="reranker", baseline_stage="biencoder"`
    asks whether stage 2 holds every language against stage 1.

    With both runs' prediction rows on the same items, a drop beyond the tolerance is a regression only
    when its paired test gives p <= `significance` (1.0: every such drop is one)."""
    if not 0 <= tolerance <= 1:
        raise ClinassayInputError(f"The 'tolerance' parameter of compare must be in [0, 1]. Got {tolerance} instead.")
    if not 0 < significance <= 1:
        raise ClinassayInputError(f"The 'significance' parameter of compare must be in (0, 1]. Got {significance} instead.")
    for metric in metrics:
        if metric not in METRICS:
            raise ClinassayInputError(f"The 'metrics' parameter of compare must be among {METRICS}. Got {metric!r} instead.")
    gated = [cast(Metric, m) for m in metrics]
    current, baseline = _evaluation(current, "current"), _evaluation(baseline, "baseline")
    stage, baseline_stage = stage or current.final_stage, baseline_stage or baseline.final_stage
    for which, evaluation, wanted in (("current", current, stage), ("baseline", baseline, baseline_stage)):
        if wanted not in evaluation.stages:
            raise ClinassayInputError(f"The {which} run has no '{wanted}' stage to compare "
                                      f"(it holds {', '.join(sorted(evaluation.stages))}).")
    unpaired = _pairing(current_predictions, baseline_predictions)
    comparisons: list[Comparison] = []
    compared: list[View] = []
    not_compared: list[View] = []
    cur_langs: dict[str, SliceFigures] = {}
    base_langs: dict[str, SliceFigures] = {}
    for view in VIEWS:
        cur = current.view(view).get(stage)
        base = baseline.view(view).get(baseline_stage)
        if cur is None or base is None:
            not_compared.append(cast(View, view))
            continue
        compared.append(cast(View, view))
        paired_rows = {}
        if unpaired is None and current_predictions is not None and baseline_predictions is not None:
            paired_rows = {"current": _view_rows(current_predictions, view),
                           "baseline": _view_rows(baseline_predictions, view)}
        cur_langs.update(cur.languages)
        base_langs.update(base.languages)
        slices = [("overall", cur.overall, base.overall)]
        slices += [(lang, cur.languages[lang], base.languages[lang]) for lang in sorted(cur.languages)
                   if lang in base.languages]
        for language, cur_slice, base_slice in slices:
            for metric in gated:
                c, b = cur_slice.figure(metric), base_slice.figure(metric)
                if c is None or b is None:  # an empty slice has no figures
                    continue
                delta = round(c - b, 6)
                status = "regression" if delta < -tolerance - 1e-12 else "lift" if delta > 0 else "same"
                p_value = None
                if status == "regression" and paired_rows:
                    cand_values = _slice_values(paired_rows["current"], stage, language, metric)
                    base_values = _slice_values(paired_rows["baseline"], baseline_stage, language, metric)
                    if cand_values is not None and base_values is not None:
                        p_value = round(paired_drop_p_value(cand_values, base_values), 4)
                        if p_value > significance:
                            status = "not_significant"
                comparisons.append(Comparison(language=language, metric=metric, stage=stage, view=cast(View, view),
                                              candidate=c, baseline=b, delta=delta, status=status, p_value=p_value))
    return GateResult(
        baseline=baseline_name,
        tolerance=tolerance,
        metrics=gated,
        stage=stage,
        baseline_stage=baseline_stage,
        comparisons=comparisons,
        missing_in_baseline=sorted(set(cur_langs) - set(base_langs)),
        missing_in_current=sorted(set(base_langs) - set(cur_langs)),
        views=compared,
        views_not_compared=not_compared,
        significance=significance,
        paired=unpaired is None,
        unpaired_reason=unpaired,
    )


def format_gate(result: GateResult, *, title: str = "regression gate", verdict: str = "gate") -> str:
    """A plain table for the terminal: one line per language and metric, regressions first."""
    lines = [
        f"{title}: {result.stage} vs {result.baseline} ({result.baseline_stage}), "
        f"tolerance {result.tolerance:.3f} on {', '.join(result.metrics)}, views: {', '.join(result.views) or 'none'}",
        f"  drops beyond the tolerance fail with p <= {result.significance:g} (paired randomization test per item)"
        if result.paired and result.significance < 1
        else "  every drop beyond the tolerance fails"
        + (f" (no paired test: {result.unpaired_reason})" if result.unpaired_reason and result.significance < 1 else ""),
    ]
    order = {"regression": 0, "not_significant": 1, "lift": 2, "same": 3}
    views = {view: i for i, view in enumerate(VIEWS)}
    for c in sorted(result.comparisons, key=lambda c: (order[c.status], views.get(c.view, 9), c.language, c.metric)):
        mark = {"regression": "REGRESSION", "not_significant": "drop, not significant", "lift": "lift", "same": "ok"}[c.status]
        if c.p_value is not None:
            mark += f" (p={c.p_value:.3f})"
        lines.append(f"  {c.view:<10} {c.language:<8} {c.metric:<7} {c.candidate:.4f} vs {c.baseline:.4f}  {c.delta:+.4f}  {mark}")
    if result.views_not_compared:
        lines.append(f"  views one of the two files lacks (not gated): {', '.join(result.views_not_compared)}")
    if result.missing_in_baseline:
        lines.append(f"  languages the baseline lacks (not gated): {', '.join(result.missing_in_baseline)}")
    if result.missing_in_current:
        lines.append(f"  languages in the baseline but not in this run: {', '.join(result.missing_in_current)}")
    if result.passed:
        lines.append(f"{verdict}: PASS")
    else:
        langs = sorted({c.language for c in result.regressions})
        in_views = sorted({c.view for c in result.regressions}, key=lambda v: views.get(v, 9))
        lines.append(f"{verdict}: FAIL, regressions in {', '.join(langs)} ({' and '.join(in_views)} view)")
    return "\n".join(lines)
