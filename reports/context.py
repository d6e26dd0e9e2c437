"""The plain data a report is laid out from: dataclasses only, no markup.

Every renderer (HTML, Markdown, JSON, JUnit) reads the same context, so the figures cannot disagree
between formats. Missing figures are None and render as "n/a".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class GateRow:
    name: str
    scope: str
    value: float | None
    threshold: float | None
    comparison: str
    passed: bool | None
    margin: float | None
    sentence: str  # the result in plain words, e.g. "reject rate (language:pt): 45.3%, required ≤ 40.0%: over by 5.3 points"
    shown: tuple[str, str, str] = ("n/a", "n/a", "n/a")  # value, requirement, margin as displayed


@dataclass
class Verdict:
    status: str  # "pass" | "fail" | "n/a"
    gate_passed: bool | None
    counts: dict[str, int | None]
    failed: list[GateRow]
    gate: list[GateRow]
    regressions: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class Generator:
    name: str
    litellm_model: str | None
    prompt_ids: list[str]
    prompt_hashes: list[str]
    pairs: int | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None


@dataclass
class Provenance:
    input_path: str | None
    input_sha256: str | None
    input_lines: int | None
    accepted_sha256: str | None
    generators: list[Generator]
    versions: list[tuple[str, str]]
    config_json: str | None
    total_input_tokens: int | None
    total_output_tokens: int | None
    total_cost_usd: float | None
    sources: list[tuple[str, str]]  # other inputs: config file, eval set, reference, encoder


@dataclass
class MatrixCell:
    language: str
    generator: str
    pairs: int | None
    accepted: int | None
    rejected: int | None
    warned: int | None
    leaks: int | None
    reject_rate: float | None
    reason_rates: dict[str, float | None]
    language_mismatch: int | None
    duplicates: int | None
    cost_usd: float | None
    cost_per_accepted: float | None
    outlier: bool
    shade: float  # 0 (no rejects) .. 1 (at or above the colour scale's maximum)


@dataclass
class Matrix:
    languages: list[str]
    generators: list[str]
    checks: list[str]
    grid: list[list[MatrixCell | None]]  # rows: generators, columns: languages
    cells: list[MatrixCell]
    overall_reject_rate: float | None
    outliers: list[str]
    scale_max: float  # reject rate drawn darkest


@dataclass
class Example:
    id: str | None
    mention: str
    mention_cut: bool
    code: str | None
    title: str | None
    language: str | None
    generator: str | None
    score: float | None
    severity: str | None
    reason: str | None  # the rule that fired, e.g. "sibling_fits_better"
    why: str
    neighbour: str | None
    other_reasons: list[str]
    record_json: str


@dataclass
class CheckSection:
    name: str
    flagged: int | None
    rejected: int | None
    warned: int | None
    summary: float | str | None
    summary_meaning: str | None
    reasons: list[tuple[str, int]]
    info: list[tuple[str, str]]
    examples: list[Example]
    examples_total: int
    examples_more: int


@dataclass
class CoverageCell:
    planned: int | None
    accepted: int | None
    ratio: float | None


@dataclass
class CoverageRow:
    chapter: str
    title: str | None
    cells: list[CoverageCell]


@dataclass
class Coverage:
    languages: list[str]
    rows: list[CoverageRow]
    chapters_covered: dict[str, int]  # language -> chapters with at least one accepted pair


@dataclass
class Fingerprint:
    """How well a classifier tells the generators (or synthetic from real) apart in one language."""

    language: str
    generators_f1: float | None
    chance_f1: float | None
    generators_auc: float | None
    generators_note: str | None  # why it was skipped
    synthetic_auc: float | None
    synthetic_note: str | None
    generators_strength: float  # 0 (chance) .. 1 (perfectly separable): the colour of the cell
    synthetic_strength: float
    giveaways: list[tuple[str, str]]  # class -> its most telling character n-grams


@dataclass
class FitRow:
    """How well one generator's mentions fit their codes in one language (the fit check's histogram)."""

    generator: str
    language: str
    counts: list[int]  # pairs per misfit-probability bin, 0..1 in tenths
    pairs: int
    misfit_share: float  # share with a misfit probability >= 0.5


@dataclass
class Bias:
    outliers: list[str]
    fingerprints: list[Fingerprint]
    coverage_gaps: list[tuple[str, str]]  # language -> chapters share and the chapters with nothing accepted
    other: list[tuple[str, str]]
    fit: list[FitRow] = field(default_factory=list)
    fit_note: str = ""


@dataclass
class DriftFeature:
    name: str
    score: float | None
    method: str | None
    threshold: float | None
    drifted: bool | None
    synthetic_mean: float | None
    reference_mean: float | None


@dataclass
class DriftLanguage:
    language: str
    drifted: bool | None
    drift_share: float | None
    features: list[DriftFeature]
    skipped: str | None
    figures: list[tuple[str, str]]
    link: str | None
    embed_html: str | None
    note: str | None


@dataclass
class MetricCell:
    metric: str
    value: float | None
    low: float | None
    high: float | None
    delta: float | None  # against the baseline run (or the bi-encoder, for the reranker lift)
    status: str  # "regression" | "lift" | "same" | "n/a"


@dataclass
class MetricRow:
    language: str
    n: int | None
    cells: list[MetricCell]


@dataclass
class StageTable:
    stage: str
    against: str | None  # what the deltas are measured against
    rows: list[MetricRow]
    baseline: bool = False  # deltas against the baseline run (they count as regressions/lifts)


@dataclass
class ComparisonRow:
    stage: str | None
    language: str
    metric: str
    baseline: float | None
    candidate: float | None
    delta: float | None
    status: str  # as the evaluation's gate decided: regression, lift, same, not_significant
    p_value: float | None = None  # the gate's paired test of a drop beyond the tolerance


@dataclass
class EvalRun:
    name: str
    path: str
    metrics: list[str]
    stages: list[StageTable]
    comparison: list[ComparisonRow]
    gate_passed: bool | None  # the evaluation's own decision against its baseline, when it made one
    missing_languages: list[str]  # in this run but not in its baseline (not gated)
    missing_in_run: list[str]  # in the baseline but not in this run
    eval_set: list[tuple[str, str]]
    reproducibility: list[tuple[str, str]]
    seconds: float | None = None  # metrics.json's: the evaluation's wall time, when it was recorded
    stage2: list[ComparisonRow] = field(default_factory=list)  # the reranker against its own stage 1, as decided
    stage2_passed: bool | None = None  # whether the reranker held every language (None: no reranker run)


@dataclass
class Retrieval:
    runs: list[EvalRun]
    tolerance: float
    regressions: int
    lifts: int


@dataclass
class MalformedLine:
    line: int | None
    error: str


@dataclass
class CalibrationKind:
    """One planted fault kind: how many copies the audit rejected, with the 95% Wilson interval."""

    kind: str
    description: str
    intended_check: str
    planted: int
    measured: int  # copies of originals the audit accepted (the others say nothing about the fault)
    caught: int
    recall: float | None
    low: float | None
    high: float | None
    by_intended_check: int
    phrasings: list[tuple[str, str]]  # phrasing source -> "k/n (share)"
    reasons: list[tuple[str, int]]
    missed: list[str]
    minimum: float | None  # [audit.gate] min_recall, when set
    passed: bool | None


@dataclass
class Calibration:
    """What this audit catches on the user's data (calibration.json of `clinassay calibrate`)."""

    input_path: str | None
    created_at: str | None
    sample: str  # "150 of 1,858 distinct mentions, seed 0"
    embeddings: str  # "me5-small" or "off"
    originals: int
    copies: int
    false_rejects: int
    false_reject_rate: float | None
    false_low: float | None
    false_high: float | None
    false_reasons: list[tuple[str, int]]
    kinds: list[CalibrationKind]
    not_planted: list[str]
    passed: bool | None
    notes: list[str]  # a calibration of another input or configuration than the audit's, or unreadable


@dataclass
class ReportContext:
    title: str
    generated_by: str
    audit_path: str | None
    verdict: Verdict
    provenance: Provenance | None
    matrix: Matrix | None
    checks: list[CheckSection]
    coverage: Coverage | None
    bias: Bias | None
    drift: list[DriftLanguage]
    retrieval: Retrieval | None
    malformed: list[MalformedLine]
    malformed_total: int
    calibration: Calibration | None = None
    audit_seconds: float | None = None  # summary.json's: the audit's wall time, when it was recorded

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (the `--format json` output)."""
        return asdict(self)
