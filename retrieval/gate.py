"""The per-language regression gate: every language and gated metric of a run against a stored
baseline's metrics.json, in both views of the evaluation set (every occurrence, and each distinct
(mention, code) pair once: a model can win on the mentions that repeat and lose the long tail). A drop
beyond the tolerance in either view is a regression and fails the gate when it is also beyond noise:
with both runs' per-item ranks (predictions.jsonl beside each metrics.json, the same evaluation items)
each drop gets a paired randomization test, and one with p above `significance` is shown as not
significant instead of failing (25 items per language: one item flipping is a 0.04 drop in R@5 and
p = 0.5). Without per-item ranks the tolerance alone decides, and the gate says so. Lifts are reported
too; a language or a view the baseline lacks is listed, never silently skipped. No torch here: the
reports and the pipeline read gate results without loading a model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

import numpy as np

from clinassay.retrieval.metrics import VIEWS, distinct_key, paired_drop_p_value, per_query, view_stages
from clinassay.terminology.errors import ClinassayInputError


class Comparison(BaseModel):
    language: str  # a language code, or "overall"
    metric: str
    stage: str
    view: str = "occurrence"  # "occurrence" | "distinct"
    candidate: float
    baseline: float
    delta: float
    # "regression" | "lift" | "same" (within tolerance) | "not_significant" (a drop beyond the
    # tolerance whose paired test gives p above the gate's significance)
    status: str
    p_value: float | None = None  # the paired test of a drop beyond the tolerance; None: not tested


class GateResult(BaseModel):
    baseline: str
    tolerance: float
    metrics: list[str]
    stage: str
    baseline_stage: str
    comparisons: list[Comparison]
    missing_in_baseline: list[str]
    missing_in_current: list[str]
    views: list[str] = ["occurrence"]  # the views compared
    views_not_compared: list[str] = []  # a view one of the two files lacks (older metrics.json)
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

    def to_dict(self) -> dict:
        """metrics.json's `comparison`: regressions, lifts and the rest (`rows`), each row once."""
        return {
            "baseline": self.baseline,
            "stage": self.stage,
            "baseline_stage": self.baseline_stage,
            "tolerance": self.tolerance,
            "metrics": self.metrics,
            "passed": self.passed,
            "views": self.views,
            "views_not_compared": self.views_not_compared,
            "significance": self.significance,
            "paired": self.paired,
            "unpaired_reason": self.unpaired_reason,
            "regressing_languages": sorted({c.language for c in self.regressions}),
            "regressing_views": sorted({c.view for c in self.regressions}),
            "regressions": [c.model_dump() for c in self.regressions],
            "lifts": [c.model_dump() for c in self.lifts],
            "rows": [c.model_dump() for c in self.comparisons if c.status in ("same", "not_significant")],
            "missing_languages": self.missing_in_baseline,
            "missing_in_current": self.missing_in_current,
        }


def final_stage(metrics: dict) -> str:
    """The stage a run delivers: the reranker when it was evaluated, else the bi-encoder."""
    stages = metrics.get("stages") or {}
    for name in ("reranker", "biencoder"):
        if name in stages:
            return name
    raise ClinassayInputError(f"metrics have no 'stages.biencoder' or 'stages.reranker': keys {sorted(metrics)}")


def load_predictions(metrics_path: Path | str) -> list[dict] | None:
    """The per-item rows `clinassay evaluate` wrote beside a metrics.json, or None when there are none."""
    path = Path(metrics_path)
    path = (path if path.is_dir() else path.parent) / "predictions.jsonl"
    if not path.is_file():
        return None
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ClinassayInputError(f"{path}:{number}: not valid JSON: {exc}") from exc
    return rows


def _pairing(current: list[dict] | None, baseline: list[dict] | None) -> str | None:
    """Why the two runs' items cannot be paired, or None when they can."""
    if current is None or baseline is None:
        return "a run has no per-item ranks (predictions.jsonl)"
    if len(current) != len(baseline):
        return f"different evaluation items ({len(current)} vs {len(baseline)})"
    for number, (a, b) in enumerate(zip(current, baseline), start=1):
        if (a.get("mention"), a.get("code"), a.get("language")) != (b.get("mention"), b.get("code"), b.get("language")):
            return f"different evaluation items (item {number} differs)"
    return None


def _view_rows(predictions: list[dict], view: str) -> list[dict]:
    if view == "occurrence":
        return predictions
    seen: set[tuple[str, str, str]] = set()
    rows = []
    for row in predictions:
        key = distinct_key(str(row["mention"]), str(row["code"]), str(row["language"]))
        if key not in seen:
            seen.add(key)
            rows.append(row)
    return rows


def _slice_values(rows: list[dict], stage: str, language: str, metric: str) -> np.ndarray | None:
    column = f"rank_{stage}"
    ranks = [row.get(column) for row in rows if language == "overall" or row.get("language") == language]
    if not ranks or any(not isinstance(r, int) for r in ranks):
        return None
    return per_query(np.asarray(ranks, dtype=np.int64))[metric]


def load_metrics(path: Path | str) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.json"
    if not path.is_file():
        raise ClinassayInputError(f"baseline metrics not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ClinassayInputError(f"{path}: not valid JSON: {exc}") from exc
    final_stage(data)
    return data


def compare(
    current: dict,
    baseline: dict,
    *,
    tolerance: float = 0.01,
    metrics: Sequence[str] = ("mrr@10", "r@5"),
    baseline_name: str = "baseline",
    significance: float = 1.0,
    current_predictions: list[dict] | None = None,
    baseline_predictions: list[dict] | None = None,
) -> GateResult:
    """Compare the final stage of `current` with the final stage of `baseline`, slice by slice, in
    every view both files hold (the occurrence view always; the distinct view when both have it).

    With both runs' prediction rows on the same items, a drop beyond the tolerance is a regression only
    when its paired test gives p <= `significance` (1.0: every such drop is one)."""
    if not 0 <= tolerance <= 1:
        raise ClinassayInputError(f"The 'tolerance' parameter of compare must be in [0, 1]. Got {tolerance} instead.")
    if not 0 < significance <= 1:
        raise ClinassayInputError(f"The 'significance' parameter of compare must be in (0, 1]. Got {significance} instead.")
    stage, baseline_stage = final_stage(current), final_stage(baseline)
    unpaired = _pairing(current_predictions, baseline_predictions)
    comparisons: list[Comparison] = []
    compared, not_compared = [], []
    cur_langs: dict = {}
    base_langs: dict = {}
    for view in VIEWS:
        cur = view_stages(current, view).get(stage)
        base = view_stages(baseline, view).get(baseline_stage)
        if not cur or not base:
            not_compared.append(view)
            continue
        compared.append(view)
        paired_rows = {}
        if unpaired is None and current_predictions is not None and baseline_predictions is not None:
            paired_rows = {"current": _view_rows(current_predictions, view),
                           "baseline": _view_rows(baseline_predictions, view)}
        cur_view, base_view = cur.get("languages", {}), base.get("languages", {})
        cur_langs.update(cur_view)
        base_langs.update(base_view)
        slices = [("overall", cur.get("overall"), base.get("overall"))]
        slices += [(lang, cur_view[lang], base_view[lang]) for lang in sorted(cur_view) if lang in base_view]
        for language, cur_slice, base_slice in slices:
            if not cur_slice or not base_slice:
                continue
            for metric in metrics:
                c, b = cur_slice.get(metric), base_slice.get(metric)
                if c is None or b is None:
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
                comparisons.append(Comparison(language=language, metric=metric, stage=stage, view=view,
                                              candidate=c, baseline=b, delta=delta, status=status, p_value=p_value))
    return GateResult(
        baseline=baseline_name,
        tolerance=tolerance,
        metrics=list(metrics),
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


def format_gate(result: GateResult) -> str:
    """A plain table for the terminal: one line per language and metric, regressions first."""
    lines = [
        f"regression gate: {result.stage} vs {result.baseline} ({result.baseline_stage}), "
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
        lines.append("gate: PASS")
    else:
        langs = sorted({c.language for c in result.regressions})
        in_views = sorted({c.view for c in result.regressions}, key=lambda v: views.get(v, 9))
        lines.append(f"gate: FAIL, regressions in {', '.join(langs)} ({' and '.join(in_views)} view)")
    return "\n".join(lines)
