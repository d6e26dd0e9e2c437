"""Turn `clinassay evaluate` outputs (metrics.json) into the retrieval section.

Deltas are shown against the first run given (the baseline) and, inside a run, the reranker against
the bi-encoder (its lift). Both views of the evaluation set get their tables: every occurrence (the
stage's name alone, as before) and, when the run has it, each distinct (mention, code) pair once. The
evaluation's own comparison (with `--baseline`) is shown as it decided it, with the view it was made in,
and so is its comparison of the reranker with its own stage 1 (with `--rerank`).
"""

from __future__ import annotations

from clinassay.reports.context import ComparisonRow, EvalRun, MetricCell, MetricRow, Retrieval, StageTable
from clinassay.reports.sources import EvalOutput
from clinassay.reports.values import flatten, ordered_languages, short_value
from clinassay.retrieval.metrics_file import STAGES, GateComparison, SliceFigures, StageFigures

METRICS = ("mrr@10", "r@1", "r@3", "r@5", "r@10")
DISTINCT = "distinct (mention, code) pairs"
VIEW_LABELS = {"occurrence": "every occurrence", "distinct": DISTINCT}

Scores = dict[str, SliceFigures]  # "overall", then each language


def _status(delta: float | None, tolerance: float) -> str:
    if delta is None:
        return "n/a"
    if delta < -tolerance:
        return "regression"
    if delta > tolerance:
        return "lift"
    return "same"


def _scores(stage: StageFigures) -> Scores:
    """language -> scores, with the overall row first."""
    return {"overall": stage.overall, **{lang: stage.languages[lang] for lang in ordered_languages(stage.languages)}}


def _stage_table(stage: str, scores: Scores, reference: Scores | None, against: str | None, *, tolerance: float) -> StageTable:
    rows = []
    for language, s in scores.items():
        base_slice = reference.get(language) if reference is not None else None
        cells = []
        for metric in METRICS:
            value = s.figure(metric)
            low, high = s.ci95.get(metric) or (None, None)
            base = base_slice.figure(metric) if base_slice is not None else None
            delta = value - base if value is not None and base is not None else None
            cells.append(MetricCell(metric, value, low, high, delta, _status(delta, tolerance)))
        rows.append(MetricRow(language=language, n=s.n, cells=cells))
    return StageTable(stage=stage, against=against, rows=rows)


def _comparison(comparison: GateComparison | None) -> tuple[list[ComparisonRow], list[str], list[str]]:
    """The evaluation's own gate, as it decided it: every row with its status and p-value."""
    if comparison is None:
        return [], [], []
    rows = [
        ComparisonRow(
            stage=f"{c.stage}, {VIEW_LABELS[c.view]}",
            language=c.language,
            metric=c.metric,
            baseline=c.baseline,
            candidate=c.candidate,
            delta=c.delta,
            status=c.status,
            p_value=c.p_value,
        )
        for c in (*comparison.regressions, *comparison.lifts, *comparison.rows)
    ]
    order = {"regression": 0, "not_significant": 1, "lift": 2}
    rows.sort(key=lambda c: (order.get(c.status, 2), c.stage or "", c.language != "overall", c.language, c.metric))
    return rows, list(comparison.missing_languages), list(comparison.missing_in_current)


def _tables(
    scores: dict[str, Scores], baseline: dict[str, Scores] | None, *, label: str, baseline_name: str, tolerance: float
) -> list[StageTable]:
    """One table per stage of one view: deltas against the baseline run's same stage, else the
    reranker against the bi-encoder (its lift)."""
    tables = []
    for name, view_scores in scores.items():
        title = f"{name}, {label}" if label else name
        if baseline is not None and name in baseline:
            reference, against = baseline[name], f"baseline {baseline_name} ({title})"
            against_baseline = True
        elif name != "biencoder" and "biencoder" in scores:
            reference, against, against_baseline = scores["biencoder"], "the bi-encoder (reranker lift)", False
        else:
            reference, against, against_baseline = None, None, False
        table = _stage_table(title, view_scores, reference, against, tolerance=tolerance)
        table.baseline = against_baseline
        tables.append(table)
    return tables


def retrieval_of(evals: list[EvalOutput], *, tolerance: float) -> Retrieval | None:
    if not evals:
        return None
    runs = []
    models = [ev.name for ev in evals]
    # two runs of the same model (e.g. bm25 on two corpora) are told apart by their folders
    run_names = [f"{m} ({ev.path.parent.name})" if models.count(m) > 1 else m for m, ev in zip(models, evals)]
    baseline_scores: dict[str, Scores] | None = None
    baseline_distinct: dict[str, Scores] | None = None
    for index, ev in enumerate(evals):
        metrics = ev.metrics
        scores = {name: _scores(metrics.stages[name]) for name in STAGES if name in metrics.stages}
        distinct_view = metrics.view("distinct")
        distinct_scores = {name: _scores(distinct_view[name]) for name in STAGES if name in distinct_view}
        tables = _tables(scores, baseline_scores if index > 0 else None, label="", baseline_name=run_names[0],
                         tolerance=tolerance)
        tables += _tables(distinct_scores, baseline_distinct if index > 0 else None, label=DISTINCT,
                          baseline_name=run_names[0], tolerance=tolerance)
        if index == 0:
            baseline_scores, baseline_distinct = scores, distinct_scores
        comparison, missing, absent = _comparison(metrics.comparison)
        stage2, _, _ = _comparison(metrics.reranker_vs_stage1)
        repro = [(f"model.{k}", short_value(v)) for k, v in metrics.model.model_dump().items()]
        repro += [(f"versions.{k}", short_value(v)) for k, v in metrics.versions.items()]
        repro.append(("seed", short_value(metrics.seed)))
        runs.append(
            EvalRun(
                name=run_names[index],
                path=str(ev.path),
                metrics=list(METRICS),
                stages=tables,
                comparison=comparison,
                gate_passed=metrics.comparison.passed if metrics.comparison is not None else None,
                missing_languages=missing,
                missing_in_run=absent,
                eval_set=flatten(metrics.eval_set.model_dump()),
                reproducibility=repro,
                seconds=metrics.seconds,
                stage2=stage2,
                stage2_passed=metrics.reranker_vs_stage1.passed if metrics.reranker_vs_stage1 is not None else None,
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
