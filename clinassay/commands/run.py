"""`clinassay run`: the whole chain, for a newcomer and for CI."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from clinassay import output
from clinassay.pipeline import STAGES


def register(app: typer.Typer) -> None:
    app.command("run", help="Chain generate -> audit -> train -> evaluate -> report; exit 1 when a gate fails.")(run)


def run(
    config: Path = typer.Option(..., "--config", help="TOML configuration (see examples/quickstart.toml)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder; overrides run.out in the config."),
    start: Optional[str] = typer.Option(None, "--from", help=f"First stage to run, one of {', '.join(STAGES)}."),
    until: Optional[str] = typer.Option(None, "--until", help="Last stage to run."),
) -> int:
    from clinassay.config import load_config, with_overrides
    from clinassay.pipeline import RunPlan, run_chain, selected_stages
    from clinassay.terminology.errors import ClinassayInputError

    for name, value in (("--from", start), ("--until", until)):
        if value is not None and value not in STAGES:
            raise ClinassayInputError(f"{name} must be one of {', '.join(STAGES)}; got {value!r}")
    try:
        stages = selected_stages(start, until)
    except ValueError as exc:
        raise ClinassayInputError(str(exc)) from exc
    loaded = load_config(config)
    loaded.run = with_overrides(loaded.run, out=out)
    plan = RunPlan(config_path=config.resolve(), config=loaded, out=loaded.run.out)
    exit_code = run_chain(plan, stages, log=output.info)  # stage lines with the stages' own summaries, on stdout
    if plan.report_path.is_file():
        typer.echo(f"report: {plan.report_path.resolve()}")
    if exit_code:
        raise typer.Exit(exit_code)
    return 0
