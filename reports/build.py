"""Assemble the report context from an audit output folder and/or evaluation outputs."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from clinassay.reports.audit_sections import (
    bias_of,
    counts_of,
    coverage_of,
    drift_of,
    gate_rows,
    malformed_of,
    matrix_of,
    provenance_of,
)
from clinassay.reports.calibration_section import calibration_of
from clinassay.reports.config import ReportConfig
from clinassay.reports.context import ReportContext, Retrieval, Verdict
from clinassay.reports.examples import TitleLookup, checks_of
from clinassay.reports.retrieval_sections import retrieval_of
from clinassay.reports.sources import AuditOutput, EvalOutput, ReportInputError, load_audit_output, load_eval_output


def terminology_titles() -> TitleLookup:
    """Code titles from the terminology, loaded on first use; a title it cannot give is None ("n/a")."""

    @lru_cache(maxsize=None)
    def title(code: str) -> str | None:
        from clinassay.terminology import load_terminology
        from clinassay.terminology.errors import ClinassayInputError

        try:
            found = load_terminology().find(code)
        except ClinassayInputError:
            return None
        return found.title if found is not None else None

    return title


def _version() -> str:
    try:
        return f"clinassay {metadata.version('clinassay')}"
    except metadata.PackageNotFoundError:  # an uninstalled checkout still renders
        return "clinassay"


def _verdict(audit: AuditOutput | None, retrieval: Retrieval | None) -> Verdict:
    """The decisions the report is given, side by side: the audit's verdict and gate (summary.json) and
    each evaluation's own gate (metrics.json). The page fails exactly when one of them failed, so it
    always agrees with the exit codes of `clinassay audit` and `clinassay evaluate`."""
    notes: list[str] = []
    if audit is None:
        status, gate_passed, counts, gate = "n/a", None, {}, []
    else:
        summary = audit.summary
        counts, gate = counts_of(summary), gate_rows(summary)
        gate_passed, status = summary.gate.passed, summary.verdict
        manifest_verdict = audit.manifest.get("verdict")
        if manifest_verdict and manifest_verdict != summary.verdict:
            notes.append(f"manifest.json says {manifest_verdict!r} but summary.json says {summary.verdict!r}")
    refused = [run.name for run in retrieval.runs if run.gate_passed is False] if retrieval else []
    if refused:
        status = "fail"
        notes.append(f"the evaluation gate failed for {', '.join(refused)}")
    elif retrieval and status == "n/a":
        status = "pass"
    failed = [g for g in gate if g.passed is False]
    return Verdict(status=status, gate_passed=gate_passed, counts=counts, failed=failed, gate=gate,
                   regressions=retrieval.regressions if retrieval else 0, notes=notes)


def build_report_context(
    audit_dir: Path | str | None,
    *,
    eval_dirs: Sequence[Path | str] = (),
    config: ReportConfig | None = None,
    report_dir: Path | str | None = None,
    titles: TitleLookup | None = None,
) -> ReportContext:
    """Everything a report shows, as plain data. `report_dir` is where the report will be written
    (links to the Evidently drift pages are made relative to it)."""
    config = config or ReportConfig()
    if audit_dir is None and not eval_dirs:
        raise ReportInputError("nothing to report: give an audit output folder and/or evaluation outputs")
    audit = load_audit_output(audit_dir) if audit_dir is not None else None
    evals: list[EvalOutput] = [load_eval_output(p) for p in eval_dirs]
    retrieval = retrieval_of(evals, tolerance=config.regression_tolerance)
    verdict = _verdict(audit, retrieval)
    if audit is None:
        return ReportContext(
            title=config.title, generated_by=_version(), audit_path=None, verdict=verdict, provenance=None,
            matrix=None, checks=[], coverage=None, bias=None, drift=[], retrieval=retrieval, malformed=[],
            malformed_total=0,
        )
    titles = titles or terminology_titles()
    malformed, malformed_total = malformed_of(audit.summary, config=config)
    return ReportContext(
        title=config.title,
        generated_by=_version(),
        audit_path=str(audit.path),
        verdict=verdict,
        provenance=provenance_of(audit),
        matrix=matrix_of(audit.summary, config=config),
        checks=checks_of(audit, titles=titles, config=config),
        coverage=coverage_of(audit.summary),
        bias=bias_of(audit.summary),
        drift=drift_of(audit, report_dir=Path(report_dir) if report_dir else None, config=config),
        retrieval=retrieval,
        malformed=malformed,
        malformed_total=malformed_total,
        calibration=calibration_of(audit),
        audit_seconds=audit.summary.seconds,
    )
