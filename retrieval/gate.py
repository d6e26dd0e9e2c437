"""The per-language regression gate: every language and gated metric of a run against a stored
baseline's metrics.json, in both views of the evaluation set (every occurrence, and each distinct
(mention, code) pair once: a model can win on the mentions that repeat and lose the long tail). A drop
beyond the tolerance in either view is a regression and fails the gate; lifts are reported too; a
language or a view the baseline lacks is listed, never silently skipped. No torch here: the reports
and the pipeline read gate results without loading a model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from clinassay.retrieval.metrics import VIEWS, view_stages
from clinassay.terminology.errors import ClinassayInputError


class Comparison(BaseModel):
    language: str  # a language code, or "overall"
    metric: str
    stage: str
    view: str = "occurrence"  # "occurrence" | "distinct"
    candidate: float
    baseline: float
    delta: float
    status: str  # "regression" | "lift" | "same" (within tolerance)


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

    @property
    def regressions(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.status == "regression"]

    @property
    def lifts(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.status == "lift"]

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
            "regressing_languages": sorted({c.language for c in self.regressions}),
            "regressing_views": sorted({c.view for c in self.regressions}),
            "regressions": [c.model_dump() for c in self.regressions],
            "lifts": [c.model_dump() for c in self.lifts],
            "rows": [c.model_dump() for c in self.comparisons if c.status == "same"],
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
) -> GateResult:
    """Compare the final stage of `current` with the final stage of `baseline`, slice by slice, in
    every view both files hold (the occurrence view always; the distinct view when both have it)."""
    if not 0 <= tolerance <= 1:
        raise ClinassayInputError(f"The 'tolerance' parameter of compare must be in [0, 1]. Got {tolerance} instead.")
    stage, baseline_stage = final_stage(current), final_stage(baseline)
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
                comparisons.append(Comparison(language=language, metric=metric, stage=stage, view=view,
                                              candidate=c, baseline=b, delta=delta, status=status))
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
    )


def format_gate(result: GateResult) -> str:
    """A plain table for the terminal: one line per language and metric, regressions first."""
    lines = [
        f"regression gate: {result.stage} vs {result.baseline} ({result.baseline_stage}), "
        f"tolerance {result.tolerance:.3f} on {', '.join(result.metrics)}, views: {', '.join(result.views) or 'none'}"
    ]
    order = {"regression": 0, "lift": 1, "same": 2}
    views = {view: i for i, view in enumerate(VIEWS)}
    for c in sorted(result.comparisons, key=lambda c: (order[c.status], views.get(c.view, 9), c.language, c.metric)):
        mark = {"regression": "REGRESSION", "lift": "lift", "same": "ok"}[c.status]
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
