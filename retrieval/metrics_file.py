"""metrics.json: what one `clinassay evaluate` measured, as one typed artifact.

`evaluate` (retrieval/evaluator.py) returns an `Evaluation` (both views of every stage, and what the
evaluation set covers); `write_metrics` wraps it into a `MetricsFile` with the evaluation set's and the
model's hashes, the versions, the seed and, with `--baseline`, the gate's `comparison`, and writes it.
The gate, `clinassay export` and `clinassay report` read it back with `load_metrics` and use its
attributes: a file with a key this schema does not know, or without one it needs, is refused with the
key's name (exit 2). The JSON keys are the ones metrics.json has always had ("mrr@10", "r@5", ...).

Files written before the distinct view existed (no `distinct`, no `coverage.distinct_items`) still read:
the gate lists that view as not compared. Comparisons written before the paired test have no
`significance`, `paired` or `unpaired_reason`: they read as what that gate did (the tolerance alone).
Pure pydantic: the gate and the reports read metrics.json without loading torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from clinassay.retrieval.config import Metric
from clinassay.terminology.errors import ClinassayInputError, invalid_artifact

SCHEMA_VERSION: Literal[1] = 1
METRICS_FILE = "metrics.json"

Stage = Literal["biencoder", "reranker"]  # stage 1, and stage 1 reordered by the reranker
View = Literal["occurrence", "distinct"]  # every item as it occurs; each (mention, code, language) once
# "same": within the tolerance; "not_significant": a drop beyond it that the paired test calls noise
Status = Literal["regression", "lift", "same", "not_significant"]
Count = Annotated[int, Field(ge=0)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Interval = tuple[Share, Share]

STAGES: tuple[Stage, ...] = ("biencoder", "reranker")
_FIELDS: dict[str, str] = {
    "mrr@10": "mrr_at_10",
    "ndcg@10": "ndcg_at_10",
    "r@1": "r_at_1",
    "r@3": "r_at_3",
    "r@5": "r_at_5",
    "r@10": "r_at_10",
}


class _Artifact(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True)


class SliceFigures(_Artifact):
    """One slice of one stage (a language, or overall): `metrics.slice_metrics` of the same ranks. An
    empty slice has no figures (None); `ci95` is empty when no bootstrap samples were drawn."""

    n: Count
    mrr_at_10: Share | None = Field(alias="mrr@10")
    ndcg_at_10: Share | None = Field(alias="ndcg@10")
    r_at_1: Share | None = Field(alias="r@1")
    r_at_3: Share | None = Field(alias="r@3")
    r_at_5: Share | None = Field(alias="r@5")
    r_at_10: Share | None = Field(alias="r@10")
    ci95: dict[Metric, Interval | None]

    def figure(self, metric: str) -> float | None:
        """The slice's value of one metric, by its metrics.json name ("mrr@10", "r@5", ...)."""
        value: float | None = getattr(self, _FIELDS[metric])
        return value

    @model_validator(mode="after")
    def _figures_agree(self) -> SliceFigures:
        empty = [name for name, field in _FIELDS.items() if getattr(self, field) is None]
        if self.n and empty:
            raise ValueError(f"a slice of {self.n} items has no {', '.join(empty)}")
        if not self.n and len(empty) != len(_FIELDS):
            raise ValueError("a slice of 0 items has figures")
        for metric, interval in self.ci95.items():
            if interval is None and self.n:
                raise ValueError(f"ci95.{metric}: no interval for a slice of {self.n} items")
            if interval is not None and interval[0] > interval[1]:
                raise ValueError(f"ci95.{metric}: lower bound {interval[0]} above upper bound {interval[1]}")
        return self


class StageFigures(_Artifact):
    """One stage in one view: overall, and per language of the evaluation set."""

    overall: SliceFigures
    languages: dict[str, SliceFigures]

    @model_validator(mode="after")
    def _languages_add_up(self) -> StageFigures:
        total = sum(s.n for s in self.languages.values())
        if total != self.overall.n:
            raise ValueError(f"the languages' n add up to {total}, overall n is {self.overall.n}")
        return self


def _same_items(stages: Mapping[Stage, StageFigures], where: str) -> int | None:
    sizes = {stage: block.overall.n for stage, block in stages.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"{where}: the stages rank different numbers of items {sizes}")
    return next(iter(sizes.values()), None)


class DistinctView(_Artifact):
    """The distinct view: each distinct (mention, code, language) counted once (`metrics.distinct_key`)."""

    items: Count
    stages: dict[Stage, StageFigures]

    @model_validator(mode="after")
    def _counts_each_item_once(self) -> DistinctView:
        n = _same_items(self.stages, "distinct")
        if n is not None and n != self.items:
            raise ValueError(f"distinct: {self.items} items, but its stages rank {n}")
        return self


class Coverage(_Artifact):
    items: Count
    distinct_items: Count | None = None  # None: written before the distinct view
    gold_not_in_corpus: Count  # counted as misses
    no_evaluation_data: list[str] = []  # languages the corpus serves that the evaluation set has no item in


class Evaluation(_Artifact):
    """What `evaluate` measured: every stage in both views, and what the evaluation set covers. The
    occurrence view (`stages`) weighs each item as often as it occurs; `distinct` counts each pair once."""

    stages: dict[Stage, StageFigures]
    distinct: DistinctView | None = None  # None: written before the distinct view
    coverage: Coverage
    # evaluate's wall time (ranking, metrics); None in a file written before it was recorded
    seconds: Annotated[float, Field(ge=0.0)] | None = None

    @property
    def final_stage(self) -> Stage:
        """The stage a run delivers: the reranker when it was evaluated, else the bi-encoder."""
        return "reranker" if "reranker" in self.stages else "biencoder"

    def view(self, view: str) -> dict[Stage, StageFigures]:
        """`{stage: figures}` of one view (`{}` for the distinct view of a file written before it)."""
        if view == "occurrence":
            return self.stages
        if view == "distinct":
            return self.distinct.stages if self.distinct is not None else {}
        raise ValueError(f"The 'view' parameter must be one of ('occurrence', 'distinct'). Got {view!r} instead.")

    @model_validator(mode="after")
    def _views_agree(self) -> Evaluation:
        if "biencoder" not in self.stages:
            raise ValueError("stages: no 'biencoder' (every evaluation ranks with stage 1)")
        n = _same_items(self.stages, "stages")
        if n != self.coverage.items:
            raise ValueError(f"coverage: {self.coverage.items} items, but the stages rank {n}")
        distinct = self.distinct.items if self.distinct is not None else None
        if distinct != self.coverage.distinct_items:
            raise ValueError(f"coverage.distinct_items is {self.coverage.distinct_items}, distinct.items is {distinct}")
        if self.distinct is not None:
            if set(self.distinct.stages) != set(self.stages):
                raise ValueError(f"distinct.stages: {sorted(self.distinct.stages)}, but stages: {sorted(self.stages)}")
            if self.distinct.items > self.coverage.items:
                raise ValueError(f"distinct: {self.distinct.items} items of {self.coverage.items}")
        return self


class EvalSetInfo(_Artifact):
    path: str
    sha256: Sha256
    items: Count


class ModelInfo(_Artifact):
    name: str  # a model directory, or a baseline's name (bm25, me5-small, ...)
    sha256: Sha256  # retrieval.evaluator.model_hash: what decides the rankings
    trained: bool
    corpus_fingerprint: str


class Comparison(_Artifact):
    """One slice and metric of the gate: the candidate's final stage against the baseline's."""

    language: str  # a language code, or "overall"
    metric: Metric
    stage: Stage
    view: View = "occurrence"
    candidate: float
    baseline: float
    delta: float
    status: Status
    p_value: Share | None = None  # the paired test of a drop beyond the tolerance; None: not tested


class GateComparison(_Artifact):
    """metrics.json's `comparison` (`evaluate --baseline`): the gate's decision (`passed`), its
    regressions, lifts and every other row (`rows`: same, or a drop the paired test calls noise)."""

    baseline: str
    stage: Stage
    baseline_stage: Stage
    tolerance: Share
    metrics: list[Metric]
    passed: bool
    views: list[View]  # the views compared
    views_not_compared: list[View]  # a view one of the two files lacks
    significance: float = Field(default=1.0, gt=0.0, le=1.0)  # a drop beyond the tolerance fails at p <= this
    paired: bool = False  # both runs' per-item ranks were compared; False: the tolerance alone decided
    unpaired_reason: str | None = None
    regressing_languages: list[str]
    regressing_views: list[View]
    regressions: list[Comparison]
    lifts: list[Comparison]
    rows: list[Comparison]
    missing_languages: list[str]  # in this run, not in the baseline (not gated)
    missing_in_current: list[str]  # in the baseline, not in this run

    @model_validator(mode="after")
    def _decision_agrees(self) -> GateComparison:
        for key, allowed in (
            ("regressions", {"regression"}),
            ("lifts", {"lift"}),
            ("rows", {"same", "not_significant"}),
        ):
            for number, row in enumerate(getattr(self, key)):
                if row.status not in allowed:
                    raise ValueError(f"{key}.{number}: status {row.status!r} in the {key} list")
                if row.stage != self.stage:
                    raise ValueError(f"{key}.{number}: stage {row.stage!r}, but the gate compared {self.stage!r}")
        if self.passed != (not self.regressions):
            raise ValueError(f"passed is {self.passed} with {len(self.regressions)} regressions")
        languages = sorted({r.language for r in self.regressions})
        if self.regressing_languages != languages:
            raise ValueError(f"regressing_languages {self.regressing_languages} != the regressions' {languages}")
        views = sorted({r.view for r in self.regressions})
        if self.regressing_views != views:
            raise ValueError(f"regressing_views {self.regressing_views} != the regressions' {views}")
        return self


class MetricsFile(Evaluation):
    """metrics.json (schema 1)."""

    schema_version: Literal[1] = SCHEMA_VERSION  # files written before schema 1 have none: the same layout
    eval_set: EvalSetInfo
    model: ModelInfo
    seed: int
    versions: dict[str, str]
    comparison: GateComparison | None = None  # with --baseline; absent from the file without one
    # with --rerank: stage 2 against stage 1 on the same items, by the gate's rule (tolerance, paired test):
    # does the reranker hold every language? Informative; only `comparison` decides the exit code
    reranker_vs_stage1: GateComparison | None = None

    @model_validator(mode="after")
    def _file_agrees(self) -> MetricsFile:
        if self.eval_set.items != self.coverage.items:
            raise ValueError(f"eval_set.items is {self.eval_set.items}, coverage.items is {self.coverage.items}")
        if self.comparison is not None and self.comparison.stage != self.final_stage:
            raise ValueError(
                f"comparison.stage is {self.comparison.stage!r}, this run's final stage {self.final_stage!r}"
            )
        return self

    def to_json(self) -> str:
        """The file's text: metrics.json's keys (aliases), `comparison` only when a gate ran."""
        exclude = {"comparison"} if self.comparison is None else None
        return self.model_dump_json(by_alias=True, indent=2, exclude=exclude)


def metrics_path(path: Path | str) -> Path:
    """A metrics.json, or the evaluation output folder that holds one."""
    path = Path(path)
    return path / METRICS_FILE if path.is_dir() else path


def parse_metrics(data: bytes | str | Mapping[str, Any], *, source: str) -> MetricsFile:
    """A metrics.json document (its text, or already parsed), validated; `source` names it in the error."""
    try:
        if isinstance(data, Mapping):
            return MetricsFile.model_validate(data)
        return MetricsFile.model_validate_json(data)
    except ValidationError as exc:
        raise invalid_artifact(exc, source, f"a clinassay metrics.json (schema {SCHEMA_VERSION})") from exc
    except (ValueError, RecursionError) as exc:
        raise ClinassayInputError(f"{source}: not a clinassay metrics.json ({str(exc)[:200]})") from exc


def load_metrics(path: Path | str) -> MetricsFile:
    """The metrics.json of `clinassay evaluate` (the file, or its folder), validated; else exit 2 with
    the key that is wrong."""
    path = metrics_path(path)
    if not path.is_file():
        raise ClinassayInputError(f"metrics not found: {path} (a metrics.json of clinassay evaluate, or its folder)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ClinassayInputError(f"{path} cannot be read ({exc.strerror})") from exc
    return parse_metrics(data, source=str(path))
