"""Turn `clinassay evaluate` outputs (metrics.json) into the retrieval section.

Deltas are shown against the first run given (the baseline) and, inside a run, the reranker against
the bi-encoder (its lift). Both views of the evaluation set get their tables: every occurrence (the
stage's name alone, as before) and, when the run has it, each distinct (mention, code) pair once. The
evaluation's own comparison (with `--baseline`) is shown as it decided it, with the view it was made in.
"""

from __future__ import annotations

from typing import Any

from clinassay.reports.values import as_dict, as_float, as_int, as_list, flatten, ordered_languages, short_value
from clinassay.reports.context import ComparisonRow, EvalRun, MetricCell, MetricRow, Retrieval, StageTable
from clinassay.reports.sources import EvalOutput

METRICS = ("mrr@10", "r@1", "r@3", "r@5", "r@10")
STAGE_ORDER = ("biencoder", "reranker")
DISTINCT = "distinct (mention, code) pairs"
VIEW_LABELS = {"occurrence": "every occurrence", "distinct": DISTINCT}


def _status(delta: float | None, tolerance: float) -> str:
    if delta is None:
        return "n/a"
    if delta < -tolerance:
        return "regression"
    if delta > tolerance:
        return "lift"
    return "same"


def _scores(stage: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """language -> scores, with the overall row first."""
    rows = {"overall": as_dict(stage.get("overall"))} if stage.get("overall") else {}
    languages = as_dict(stage.get("languages"))
    for lang in ordered_languages(languages):
        rows[lang] = as_dict(languages[lang])
    return rows


def _stage_table(
    stage: str, scores: dict[str, dict[str, Any]], reference: dict[str, dict[str, Any]] | None, against: str | None,
    *, tolerance: float,
) -> StageTable:
    rows = []
    for language, s in scores.items():
        ci = as_dict(s.get("ci95"))
        cells = []
        for metric in METRICS:
            value = as_float(s.get(metric))
            bounds = as_list(ci.get(metric))
            low, high = (as_float(bounds[0]), as_float(bounds[1])) if len(bounds) == 2 else (None, None)
            base = as_float(as_dict((reference or {}).get(language)).get(metric)) if reference is not None else None
            delta = value - base if value is not None and base is not None else None
            cells.append(MetricCell(metric, value, low, high, delta, _status(delta, tolerance)))
        rows.append(MetricRow(language=language, n=as_int(s.get("n")), cells=cells))
    return StageTable(stage=stage, against=against, rows=rows)


def _comparison(metrics: dict[str, Any], *, tolerance: float) -> tuple[list[ComparisonRow], list[str], list[str]]:
    comparison = metrics.get("comparison")
    if not isinstance(comparison, dict):
        return [], [], []
    rows = []
    for status, key in (("regression", "regressions"), ("lift", "lifts"), (None, "rows"), (None, "deltas")):
        for item in as_list(comparison.get(key)):
            if not isinstance(item, dict):
                continue
            base, cand = as_float(item.get("baseline")), as_float(item.get("candidate", item.get("value")))
            delta = as_float(item.get("delta"))
            if delta is None and base is not None and cand is not None:
                delta = cand - base
            stage = None if item.get("stage") is None else str(item["stage"])
            if stage is not None and item.get("view") in VIEW_LABELS:
                stage = f"{stage}, {VIEW_LABELS[item['view']]}"
            rows.append(
                ComparisonRow(
                    stage=stage,
                    language=str(item.get("language", "overall")),
                    metric=str(item.get("metric", "?")),
                    baseline=base,
                    candidate=cand,
                    delta=delta,
                    status=status or str(item.get("status") or _status(delta, tolerance)),
                    p_value=as_float(item.get("p_value")),
                )
            )
    missing = [str(x) for x in as_list(comparison.get("missing_languages") or comparison.get("missing"))]
    absent = [str(x) for x in as_list(comparison.get("missing_in_current"))]
    order = {"regression": 0, "not_significant": 1, "lift": 2}
    rows.sort(key=lambda c: (order.get(c.status, 2), c.stage or "", c.language != "overall", c.language, c.metric))
    return rows, missing, absent


def retrieval_of(evals: list[EvalOutput], *, tolerance: float) -> Retrieval | None:
    if not evals:
        return None
    runs = []
    models = [ev.name for ev in evals]
    # two runs of the same model (e.g. bm25 on two corpora) are told apart by their folders
    run_names = [f"{m} ({ev.path.parent.name})" if models.count(m) > 1 else m for m, ev in zip(models, evals)]
    baseline_scores: dict[str, dict[str, dict[str, Any]]] | None = None
    baseline_distinct: dict[str, dict[str, dict[str, Any]]] | None = None
    for index, ev in enumerate(evals):
        stages = as_dict(ev.metrics.get("stages"))
        names = [s for s in STAGE_ORDER if s in stages] + sorted(s for s in stages if s not in STAGE_ORDER)
        scores = {name: _scores(as_dict(stages[name])) for name in names}
        tables = []
        for name in names:
            if index > 0 and baseline_scores is not None and name in baseline_scores:
                reference, against = baseline_scores[name], f"baseline {run_names[0]} ({name})"
            elif name != "biencoder" and "biencoder" in scores:
                reference, against = scores["biencoder"], "the bi-encoder (reranker lift)"
            else:
                reference, against = None, None
            table = _stage_table(name, scores[name], reference, against, tolerance=tolerance)
            table.baseline = index > 0 and reference is not None and against.startswith("baseline")
            tables.append(table)
        distinct = as_dict(as_dict(ev.metrics.get("distinct")).get("stages"))
        distinct_scores = {name: _scores(as_dict(distinct[name])) for name in names if name in distinct}
        for name, view_scores in distinct_scores.items():
            reference, against = None, None
            if index > 0 and baseline_distinct is not None and name in baseline_distinct:
                reference, against = baseline_distinct[name], f"baseline {run_names[0]} ({name}, {DISTINCT})"
            elif name != "biencoder" and "biencoder" in distinct_scores:
                reference, against = distinct_scores["biencoder"], "the bi-encoder (reranker lift)"
            table = _stage_table(f"{name}, {DISTINCT}", view_scores, reference, against, tolerance=tolerance)
            table.baseline = index > 0 and reference is not None and against.startswith("baseline")
            tables.append(table)
        if index == 0:
            baseline_scores = scores
            baseline_distinct = distinct_scores
        comparison, missing, absent = _comparison(ev.metrics, tolerance=tolerance)
        comparison_passed = as_dict(ev.metrics.get("comparison")).get("passed")
        model = as_dict(ev.metrics.get("model"))
        repro = [(f"model.{k}", short_value(v)) for k, v in model.items()]
        repro += [(f"versions.{k}", short_value(v)) for k, v in as_dict(ev.metrics.get("versions")).items()]
        if ev.metrics.get("seed") is not None:
            repro.append(("seed", short_value(ev.metrics.get("seed"))))
        runs.append(
            EvalRun(
                name=run_names[index],
                path=str(ev.path),
                metrics=list(METRICS),
                stages=tables,
                comparison=comparison,
                gate_passed=comparison_passed if isinstance(comparison_passed, bool) else None,
                missing_languages=missing,
                missing_in_run=absent,
                eval_set=flatten(as_dict(ev.metrics.get("eval_set"))),
                reproducibility=repro,
            )
        )
    return Retrieval(runs=runs, tolerance=tolerance, regressions=_count(runs, "regression"), lifts=_count(runs, "lift"))


def _count(runs: list[EvalRun], status: str) -> int:
    """The evaluation's own comparison decides when it made one; otherwise the deltas against the first run."""
    if any(r.comparison for r in runs):
        return sum(1 for r in runs for c in r.comparison if c.status == status)
    return sum(
        1 for r in runs[1:] for t in r.stages if t.baseline for row in t.rows for c in row.cells if c.status == status
    )
