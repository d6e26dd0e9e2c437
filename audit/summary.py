"""summary.json: what one audit decided about a dataset, as one typed artifact.

The audit writes it (`Auditor.summarize`, then `run_audit` adds the output hashes); the manifest
attests it; reports and CI read it with `AuditSummary.model_validate_json` and show the decisions in it
(verdict, gate results, outliers) instead of deciding again. Every key is declared: a summary with a key
this schema does not know, or without one it needs, is refused with the key's name. The per-check `info`,
the drift figures and the fingerprint are figures for people (their keys are listed in
docs/schemas/README.md); nothing decides on them after the audit.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from clinassay.audit.config import AuditConfig
from clinassay.audit.gate import GateResult

SCHEMA_VERSION: Literal[1] = 1
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Count = Annotated[int, Field(ge=0)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]


class _Artifact(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Exact(BaseModel):
    """Hashes and counts the manifest chain compares: strict types, no coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class FileHash(Exact):
    path: str
    sha256: Sha256


class InputFile(FileHash):
    lines: Count


class PairsFile(FileHash):
    pairs: Count


class MalformedFile(FileHash):
    lines: Count


class SummaryOutputs(Exact):
    accepted: PairsFile
    rejected: PairsFile
    malformed: MalformedFile


class Counts(Exact):
    input_lines: Count
    accepted: Count
    rejected: Count
    malformed: Count
    warned: Count  # accepted with a warning: part of `accepted`

    @model_validator(mode="after")
    def _adds_up(self) -> Counts:
        if self.input_lines != self.accepted + self.rejected + self.malformed:
            raise ValueError(
                f"counts do not add up: accepted {self.accepted} + rejected {self.rejected} + "
                f"malformed {self.malformed} != input lines {self.input_lines}"
            )
        return self


class GateReport(_Artifact):
    """Every threshold's result; `passed` is the gate's one decision (all results passed)."""

    passed: bool
    results: list[GateResult]
    failed: list[GateResult]


class CheckFigures(_Artifact):
    """One check over the dataset: how many pairs it flagged, rejected and warned, and why."""

    flagged: Count
    rejected: Count
    warned: Count
    summary: float
    summary_meaning: str
    reasons: dict[str, Count]
    info: dict[str, Any]


class MatrixCell(_Artifact):
    """One (language, generator) cell of the reject matrix."""

    language: str
    generator: str
    pairs: Count
    accepted: Count
    rejected: Count
    warned: Count
    reject_rate: Share | None
    reasons: dict[str, Count]
    language_mismatch: Count
    duplicates: Count
    leaks: Count
    cost_usd: float
    cost_per_accepted: float | None


class ChapterCoverage(_Artifact):
    chapter: str
    title: str
    planned: dict[str, Count]
    accepted: dict[str, Count]


class CoverageTable(_Artifact):
    chapters: list[ChapterCoverage]


class Outlier(_Artifact):
    """A generator that rejects markedly more of one language than the others: the bias check's decision."""

    language: str
    generator: str
    reject_rate: Share
    median_reject_rate: Share
    main_reason: str | None
    detail: str


class GeneratorCost(_Artifact):
    name: str
    pairs: Count
    accepted: Count
    cost_usd: float
    cost_per_accepted: float | None


class CoverageShare(_Artifact):
    chapters_planned: Count
    chapters_accepted: Count
    share: Share | None
    missing: list[str]


class Bias(_Artifact):
    outliers: list[Outlier]
    cost: list[GeneratorCost]
    coverage: dict[str, CoverageShare]
    coverage_per_generator: dict[str, CoverageShare]
    fingerprint: dict[str, dict[str, Any]] | None = None  # per language: generators / synthetic_vs_real figures


class GeneratorProvenance(_Artifact):
    name: str
    litellm_model: str | list[str]
    prompt_ids: list[str]
    prompt_hashes: list[str]
    pairs: Count
    accepted: Count
    input_tokens: Count
    output_tokens: Count
    cost_usd: float
    cost_per_accepted: float | None


class InputInfo(_Artifact):
    path: str | None = None
    sha256: Sha256 | None = None
    lines: Count | None = None


class Provenance(_Artifact):
    input: InputInfo
    generators: list[GeneratorProvenance]
    config: AuditConfig
    versions: dict[str, str | None]
    encoder: str | None
    config_file: str | None = None
    eval_set: str | None = None
    reference: str | None = None


class MalformedLine(_Artifact):
    line: Count
    error: str
    raw: str | None = None
    length: Count | None = None


class AuditSummary(_Artifact):
    """summary.json (schema 1)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    verdict: Literal["pass", "fail"]
    counts: Counts
    gate: GateReport
    checks: dict[str, CheckFigures]
    matrix: list[MatrixCell]
    coverage: CoverageTable
    bias: Bias
    drift: dict[str, dict[str, Any]] | None  # per language: Evidently drift figures, or {"skipped": why}
    drift_reports: dict[str, str]  # language -> drift_LANG.html beside summary.json
    provenance: Provenance
    timings_s: dict[str, float]
    malformed: list[MalformedLine]  # the first MAX_MALFORMED_LISTED; malformed.jsonl holds all
    outputs: SummaryOutputs | None = None  # set by run_audit once the files are written
    # run_audit's wall time, from its start to the summary; None in a summary written before it was recorded
    seconds: Annotated[float, Field(ge=0.0)] | None = None

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def to_json_bytes(self) -> bytes:
        return self.model_dump_json(indent=2).encode("utf-8")
