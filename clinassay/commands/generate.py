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
    engine: str = typer.Option("local", "--engine", help="local (default), or ray: the plan in disjoint slices, one Ray task and shard per slice (pip install 'clinassay[ray]')."),
    address: str | None = typer.Option(None, "--address", help="Ray cluster for --engine ray (auto, ray://HOST:10001; default: a local one)."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Slices for --engine ray (default: the cluster's CPUs); a resume keeps the first run's."),
    progress: bool = typer.Option(True, "--progress/--no-progress",
                                  help="A progress bar on stderr when it is a terminal (or with -v); never with -q."),
) -> int:
    from clinassay import output
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
    show = progress and settings.progress and output.show_progress()
    if engine not in ("local", "ray"):
        typer.echo(f"error: --engine must be local or ray, not {engine!r}", err=True)
        raise typer.Exit(2)
    if engine == "ray":
        from clinassay.generation.distributed import generate_on_ray

        summary = generate_on_ray(settings, out=out, plan=plan, resume=resume, workers=workers, address=address)
    else:
        summary = run_generation(settings, out=out, resume=resume, plan=plan, progress=show)
    for note in summary.notes:
        output.note(note)
    output.info(generation_summary(summary, out))
    if summary.stopped:
        output.info(f"stopped by the budget ({summary.stopped}); {summary.remaining} requests left: "
                    "raise it and rerun with --resume")
    if summary.failed:
        output.info(f"{summary.failed} requests failed (see {rejects_path_for(out)}); rerun with --resume "
                    "to retry them")
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


def generation_summary(summary, out: Path) -> str:
    """The one line `generate` ends with: every request the progress bar counted (LLM and terminology)."""
    llm = f", {summary.requests} of them to LLMs" if summary.requests != summary.done else ""
    return (f"{out}: {summary.pairs} pairs from {summary.done} requests{llm} ({summary.already_done} already done, "
            f"{summary.failed} failed, {summary.rejects} rejects); tokens in/out "
            f"{summary.input_tokens}/{summary.output_tokens}; cost USD {summary.cost_usd:.4f} "
            f"(output total {summary.total_cost_usd:.4f})")
