"""`clinassay report`: render an audit output folder and/or evaluation outputs as one file
(self-contained HTML, Markdown for pull-request comments, JSON, or JUnit XML for CI)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer


class ReportFormat(str, Enum):
    html = "html"
    markdown = "markdown"
    json = "json"
    junit = "junit"


_BY_SUFFIX = {".md": ReportFormat.markdown, ".json": ReportFormat.json, ".xml": ReportFormat.junit}



def report(
    source: Path = typer.Argument(
        ..., help="An audit output folder (with summary.json), or an evaluation output folder (with metrics.json)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="The file to write."),
    eval_dirs: list[Path] = typer.Option(
        [], "--eval", help="Evaluation output folder or metrics.json; repeat it: the first is the baseline."
    ),
    fmt: ReportFormat | None = typer.Option(
        None, "--format", "-f", help="html, markdown, json or junit (default: from the --out suffix, else html)."
    ),
    config_file: Path | None = typer.Option(None, "--config", help="clinassay TOML config ([reports] section)."),
    examples: int | None = typer.Option(None, "--examples", help="Flagged examples shown per check."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when the verdict is fail (the gate failed or a regression)."),
) -> None:
    """Render a report of an audit and/or an evaluation."""
    from clinassay.config import load_config, with_overrides
    from clinassay.reports.render import write_report
    from clinassay.reports.sources import is_audit_dir, is_eval_dir

    config = with_overrides(load_config(config_file).reports, examples_per_check=examples)
    evals = list(eval_dirs)
    audit_dir: Path | None = source
    if not is_audit_dir(source) and is_eval_dir(source):
        audit_dir, evals = None, [source, *evals]
    if fmt is None:
        fmt = _BY_SUFFIX.get(out.suffix.lower(), ReportFormat.html)
    context = write_report(audit_dir, out, eval_dirs=evals, fmt=fmt.value, config=config)
    verdict = context.verdict
    counts = verdict.counts
    figures = (
        f"{counts.get('accepted')} accepted, {counts.get('rejected')} rejected, {counts.get('malformed')} malformed; "
        if counts
        else ""
    )
    typer.echo(f"{out}: verdict {verdict.status} ({figures}{len(verdict.failed)} failed thresholds, "
               f"{verdict.regressions} regressions)")
    if strict and verdict.status == "fail":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("report")(report)
