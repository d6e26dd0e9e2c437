"""Read what the audit and the evaluation wrote: summary.json and metrics.json through their owners'
schemas (a file that does not validate is refused with the key that is wrong), and never a 100k-pair
file into memory (example rows are streamed and capped).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clinassay.audit.summary import AuditSummary
from clinassay.retrieval.metrics_file import MetricsFile, load_metrics, metrics_path
from clinassay.terminology.errors import ClinassayInputError

SUMMARY, MANIFEST, REJECTED, ACCEPTED, METRICS = (
    "summary.json",
    "manifest.json",
    "rejected.jsonl",
    "accepted.jsonl",
    "metrics.json",
)


class ReportInputError(ClinassayInputError):
    """A folder or file given to `clinassay report` is not an audit or evaluation output."""


@dataclass
class AuditOutput:
    """An audit output folder: its summary and manifest, loaded; the JSONL files, only located."""

    path: Path
    summary: AuditSummary
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def rejected_path(self) -> Path:
        return self.path / REJECTED

    @property
    def accepted_path(self) -> Path:
        return self.path / ACCEPTED


@dataclass
class EvalOutput:
    """An evaluation output folder (or a metrics.json file) of the retrieval issue."""

    path: Path
    name: str
    metrics: MetricsFile


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportInputError(f"{path}: not valid JSON ({exc})") from exc
    except OSError as exc:
        raise ReportInputError(f"{path}: cannot be read ({exc.strerror})") from exc


def is_audit_dir(path: Path) -> bool:
    return (Path(path) / SUMMARY).is_file()


def is_eval_dir(path: Path) -> bool:
    path = Path(path)
    return (path / METRICS).is_file() or (path.is_file() and path.suffix == ".json")


def load_audit_output(path: Path | str) -> AuditOutput:
    """Load an audit output folder; the error names the folder and what it lacks."""
    path = Path(path)
    if not path.is_dir():
        raise ReportInputError(f"audit output folder not found: {path}")
    if not (path / SUMMARY).is_file():
        raise ReportInputError(f"{path} is not an audit output folder: it has no {SUMMARY}")
    from clinassay.audit.manifest import ManifestError, read_summary

    try:
        summary = read_summary(path / SUMMARY)
    except ManifestError as exc:
        raise ReportInputError(f"{exc}; audit the pairs again with this clinassay version") from exc
    manifest = _read_json(path / MANIFEST) if (path / MANIFEST).is_file() else {}
    return AuditOutput(path=path, summary=summary, manifest=manifest if isinstance(manifest, dict) else {})


def load_eval_output(path: Path | str) -> EvalOutput:
    """Load `metrics.json` from an evaluation output folder (or the file itself)."""
    path = Path(path)
    file = metrics_path(path)
    if not file.is_file():
        raise ReportInputError(f"{path} is not an evaluation output: it has no {METRICS}")
    try:
        metrics = load_metrics(file)
    except ClinassayInputError as exc:
        raise ReportInputError(str(exc)) from exc
    name = Path(metrics.model.name).name or file.parent.name or file.stem
    return EvalOutput(path=file, name=name, metrics=metrics)


def load_calibration_of(folder: Path | str) -> tuple[Any, str | None]:
    """The folder's calibration.json (`clinassay calibrate`), validated by its owner's model: (calibration,
    None), (None, None) when there is none, (None, why) when it cannot be read (the report still renders)."""
    from clinassay.audit.calibration import CALIBRATION, load_calibration

    path = Path(folder) / CALIBRATION
    if not path.is_file():
        return None, None
    try:
        return load_calibration(path), None
    except (ClinassayInputError, OSError) as exc:
        return None, str(exc)


def iter_flagged_records(path: Path) -> Iterator[dict[str, Any]]:
    """Stream the records of a JSONL file that carry reasons; unreadable lines are skipped, not fatal
    (the audit already reported malformed input; a report must still render)."""
    if not path.is_file():
        return
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if '"reasons"' not in line:  # cheap pre-filter: most accepted lines carry no reasons
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("reasons"), list) and record["reasons"]:
                yield record
