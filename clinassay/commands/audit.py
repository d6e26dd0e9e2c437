"""`clinassay audit PAIRS.jsonl --out DIR`: accept or reject every pair with reasons, and pass or fail
the dataset at the gate (exit 0 pass, 1 gate failed, 2 bad input). `clinassay calibrate PAIRS.jsonl
--out DIR`: what that audit catches on the same pairs (exit 1 when a kind misses [audit.gate] min_recall)."""

from __future__ import annotations

from pathlib import Path

import typer

from clinassay import output
from clinassay.terminology.errors import ClinassayInputError


class CountingEngine:
    """An audit engine that moves clinassay's progress bar by one per input line decided."""

    def __init__(self, engine, bar: "output.Bar") -> None:
        self.engine, self.bar = engine, bar

    def decisions(self, source, auditor):
        for decision in self.engine.decisions(source, auditor):
            self.bar.advance()
            yield decision


def _count_lines(pairs: Path) -> int | None:
    """Non-blank lines of the pairs file (or folder of shards): the bar's total; None when unreadable
    (the audit itself then says why)."""
    from clinassay.audit.source import PairsSource

    try:
        total = 0
        for path in PairsSource(pairs).files:
            with open(path, "rb") as f:
                total += sum(1 for line in f if line.strip())
        return total
    except (OSError, ValueError, ClinassayInputError):
        return None


def _configured(config_file: Path | None, encoder: str | None, no_embeddings: bool,
                encoded: output.Bar | None = None):
    """The file's config, its [audit] section with the CLI flags applied, and the encoder it names
    (disk-cached, moving `encoded` by the texts it encodes), or None without embeddings: what `audit`
    and `calibrate` both run with."""
    from clinassay.config import load_config, with_overrides

    config = load_config(config_file)
    audit_config = with_overrides(config.audit, encoder=encoder, embeddings=False if no_embeddings else None)
    if not audit_config.embeddings:
        return config, audit_config, None
    from clinassay.retrieval.encoder_cache import DiskCachedEncoder
    from clinassay.retrieval.models import load_encoder

    verifier = None
    if audit_config.fit.verifier:
        from clinassay.retrieval.verifier import load_verifier

        verifier = load_verifier(audit_config.fit.verifier_name)  # not trained yet: exit 2, saying what to run
    progress = encoded if encoded is not None and encoded.enabled else None
    return config, audit_config, DiskCachedEncoder(load_encoder(audit_config.encoder), verifier=verifier,
                                                   progress=progress)



def audit(
    pairs: Path = typer.Argument(..., help="JSONL pairs (mention, code, language required; provenance used when present)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: accepted.jsonl, rejected.jsonl, summary.json, manifest.json, report.html."),
    config_file: Path | None = typer.Option(None, "--config", help="clinassay TOML config (its [audit] section)."),
    eval_set: Path | None = typer.Option(None, "--eval-set", help="Evaluation items (TSV with header or JSONL: mention, code, language): any leak is rejected."),
    reference: Path | None = typer.Option(None, "--reference", help="Real coded mentions (same format): evidence for the fit check (a mention clinicians wrote is judged by the codes they gave it), drift and the synthetic-vs-real fingerprint."),
    encoder: str | None = typer.Option(None, "--encoder", help="Encoder for the embedding checks (default from config: me5-small)."),
    no_embeddings: bool = typer.Option(False, "--no-embeddings", help="Skip the embedding checks (dense fit, near duplicates, translation leaks); the lexical fit still runs."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write report.html into the output folder."),
    engine: str | None = typer.Option(None, "--engine", help="Where the checks run: local (default) or ray (pip install 'clinassay[ray]'); the same decisions either way."),
    address: str | None = typer.Option(None, "--address", help="Ray cluster for --engine ray: auto, ray://HOST:10001, HOST:PORT (default: a local one started for the audit)."),
) -> None:
    """Audit LLM-made pairs: per-pair decisions with reasons, dataset figures, and the gate."""
    from clinassay.audit import run_audit

    with output.Bar(None, "encode", unit="text") as encoded:  # texts the encoder's cache lacked, drawn at the first
        config, audit_config, model = _configured(config_file, encoder, no_embeddings, encoded)
        if engine is not None or address is not None:
            from clinassay.config import with_overrides

            audit_config = with_overrides(audit_config, engine=engine, address=address)
        with output.Bar(_count_lines(pairs), "audit", unit="pair") as bar:
            engine_with_bar = None
            if bar.enabled:
                from clinassay.audit.engines import engine_for

                engine_with_bar = CountingEngine(engine_for(audit_config, encoder=model), bar)
            outcome = run_audit(pairs, out, config=audit_config, encoder=model, eval_path=eval_set,
                                reference_path=reference, config_path=config_file, engine=engine_with_bar)
    counts = outcome.summary.counts
    typer.echo(f"{out}: {counts.input_lines} lines -> {counts.accepted} accepted "
               f"({counts.warned} with warnings), {counts.rejected} rejected, {counts.malformed} malformed")
    for failed in outcome.summary.gate.failed:
        output.failure(f"  gate: {failed.name} [{failed.scope}] = {failed.value:g}, needs "
                       f"{failed.comparison} {failed.threshold:g} (off by {abs(failed.margin):g})")
    if report:
        from clinassay.reports.render import write_report

        try:
            write_report(out, out / "report.html", eval_dirs=[], fmt="html", config=config.reports)
        except Exception as exc:  # noqa: BLE001 - the audit's verdict must not depend on the report's rendering
            output.warning(f"report.html not written ({type(exc).__name__}: {exc}); "
                           f"run `clinassay report {out} --out report.html` after fixing it")
    typer.echo(f"verdict: {outcome.summary.verdict}")
    if not outcome.passed:
        raise typer.Exit(1)

def calibrate(
    pairs: Path = typer.Argument(..., help="JSONL pairs, as given to `clinassay audit`."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for calibration.json and calibration_pairs.jsonl (the audit's folder: its report then shows them)."),
    config_file: Path | None = typer.Option(None, "--config", help="clinassay TOML config (its [audit] section, [audit.gate] min_recall)."),
    eval_set: Path | None = typer.Option(None, "--eval-set", help="Evaluation items: leaks are planted from them and checked against them."),
    reference: Path | None = typer.Option(None, "--reference", help="Real coded mentions, as given to `clinassay audit --reference` (fit evidence)."),
    sample: int = typer.Option(200, "--sample", min=1, help="Pairs sampled (one per distinct mention) to plant faults into."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sample and of every plant."),
    encoder: str | None = typer.Option(None, "--encoder", help="Encoder for the embedding checks (default from config: me5-small)."),
    no_embeddings: bool = typer.Option(False, "--no-embeddings", help="Skip the embedding checks."),
) -> None:
    """Plant known faults into copies of a sample of your pairs and measure what the audit catches."""
    from clinassay.audit.calibration import run_calibration

    with output.Bar(None, "encode", unit="text") as encoded:  # texts the encoder's cache lacked, drawn at the first
        _, audit_config, model = _configured(config_file, encoder, no_embeddings, encoded)
        with output.Bar(None, "calibrate", unit="pair") as bar:  # pairs audited, drawn once the faults are planted
            result = run_calibration(pairs, out, config=audit_config, encoder=model, eval_path=eval_set,
                                     sample=sample, seed=seed, reference_path=reference,
                                     progress=bar if bar.enabled else None)
    rate = result.false_rejects
    typer.echo(f"{out}: {result.originals} originals + {result.copies} planted copies audited; "
               f"false rejects {rate.k}/{rate.n} ({rate.share:.1%})")
    for kind in result.kinds:
        c = kind.caught
        shown = f"{c.share:6.1%} [{c.low:.0%}-{c.high:.0%}]" if c.share is not None else "   n/a"
        typer.echo(f"  {kind.kind:15s} caught {c.k:4d}/{c.n:<4d} {shown}")
    for check in result.gate:
        if not check.passed:
            output.failure(f"  gate: {check.detail}")
    typer.echo(f"verdict: {'pass' if result.passed else 'fail'}")
    if not result.passed:
        raise typer.Exit(1)


def train_verifier() -> None:
    """Train the fit check's learned verifier on the terminology into the user cache ([audit.fit] verifier).

    The settings are fixed (retrieval/verifier.py's VerifierSpec): bench/fit_operating_points.py fitted
    the verifier variant of the fit models on a verifier trained with them. About 20 minutes on 2 CPU cores."""
    from clinassay.retrieval.verifier import VerifierSpec, train_verifier as train
    from clinassay.terminology import load_terminology

    spec = VerifierSpec()
    info = train(load_terminology(), spec=spec, log=typer.echo)
    typer.echo(f"verifier {spec.name}: {info['rows']} rows, {info['global_step']} steps, loss {info['train_loss']}, "
               f"{info['seconds']:.0f} s")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("audit")(audit)
    app.command("calibrate")(calibrate)
    app.command("train-verifier")(train_verifier)
