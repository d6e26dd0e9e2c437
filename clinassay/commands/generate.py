"""`clinassay generate`: synthetic (mention, code) pairs from the configured models into a JSONL file.

Exit 0 done (some requests may have failed: --resume retries them), 2 bad config or refused credentials,
4 every request of a model failed, or no pair at all (the CLI's table of exit codes)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("generate", help="Generate mention-code pairs with the configured models (JSONL, resumable).")(generate)


def generate(
    config: Path = typer.Option(
        ..., "--config", help="TOML configuration file (its generation section: codes, languages, models, budget)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output JSONL of pairs; rejects go beside it (NAME.rejects.jsonl)."),
    resume: bool = typer.Option(False, "--resume", help="Finish an interrupted run into the existing output."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan (requests, pairs, tokens, cost) and exit."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr."),
) -> int:
    from clinassay.config import load_config
    from clinassay.generation.store import PairStore, rejects_path_for

    settings = load_config(config).generation
    store = PairStore(out)
    if store.has_output() and not resume and not dry_run:
        typer.echo(f"error: {out} already exists and is not empty; pass --resume to finish it, "
                   "or choose another --out", err=True)
        raise typer.Exit(2)
    from clinassay.generation.plan import build_plan
    from clinassay.terminology import load_terminology

    plan = build_plan(load_terminology(), settings)
    if dry_run:
        from clinassay.generation.estimate import estimate_plan, format_estimate

        done = store.recover().done if store.has_output() and resume else set()
        typer.echo(format_estimate(estimate_plan(plan, done=done), codes=len(plan.codes), languages=settings.languages))
        return 0
    from clinassay.cli import EXIT_BAD_INPUT, EXIT_GENERATION_FAILED
    from clinassay.generation.runner import generate as run_generation

    # a GenerationError (the embedded model's server would not start, ...) is exit 4 at the CLI edge
    summary = run_generation(settings, out=out, resume=resume, plan=plan, progress=progress)
    for note in summary.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(
        f"generated {summary.pairs} pairs from {summary.requests} requests "
        f"({summary.already_done} already done, {summary.failed} failed, {summary.rejects} rejects); "
        f"tokens in/out {summary.input_tokens}/{summary.output_tokens}; cost USD {summary.cost_usd:.4f} "
        f"(output total {summary.total_cost_usd:.4f})",
        err=True,
    )
    if summary.stopped:
        typer.echo(f"stopped by the budget ({summary.stopped}); {summary.remaining} requests left: "
                   "raise it and rerun with --resume", err=True)
    if summary.failed:
        typer.echo(f"{summary.failed} requests failed (see {rejects_path_for(out)}); rerun with --resume "
                   "to retry them", err=True)
    typer.echo(str(out))
    failed = summary.failed_models()
    for model, why in failed.items():
        typer.echo(f"error: model '{model}': {why} (see {rejects_path_for(out)})", err=True)
    if failed:
        # refused keys or model names are the config's fault (2); anything else failed generation (4)
        raise typer.Exit(EXIT_BAD_INPUT if summary.credentials_refused() else EXIT_GENERATION_FAILED)
    if not store.has_output():
        typer.echo("error: no pair was generated", err=True)
        raise typer.Exit(EXIT_GENERATION_FAILED)
    return 0
