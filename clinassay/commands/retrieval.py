"""CLI commands for retrieval: `train`, `search`, `evaluate`, and `data import-codiesp`.

Heavy imports (torch, sentence-transformers, faiss) happen inside the commands, so `clinassay --help`
stays fast."""

from __future__ import annotations

import json
from pathlib import Path

from typing import TYPE_CHECKING

import typer

from clinassay import output
from clinassay.terminology.errors import ClinassayInputError

if TYPE_CHECKING:
    from clinassay.retrieval.metrics_file import Evaluation


def _retrieval_config(config_file: Path | None):
    from clinassay.config import load_config

    return load_config(config_file).retrieval


def train(
    audit_dir: Path | None = typer.Argument(
        None, metavar="AUDIT_DIR", show_default=False,
        help="An audit output directory (manifest.json + accepted.jsonl) that passed."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the model directory (both stages, index, model card)."),
    config_file: Path | None = typer.Option(None, "--config", help="TOML config; its [retrieval] section applies."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Override biencoder.max_steps (and reranker.max_steps)."),
    no_reranker: bool = typer.Option(False, "--no-reranker", help="Train stage 1 only."),
    data: Path | None = typer.Option(None, "--data", hidden=True, help="Deprecated spelling of AUDIT_DIR."),
) -> None:
    """Train the two-stage retriever on audited pairs. Refuses data that did not pass an audit."""
    from clinassay.retrieval.audited_data import load_audited

    from clinassay.config import with_overrides

    audit_dir = _one_audit_dir(audit_dir, data)
    config = _retrieval_config(config_file)
    data_set = load_audited(audit_dir)  # refuses (exit 2) before anything heavy loads
    # flags over the file's sections, re-validated (a bad --max-steps is exit 2, not a half-set config)
    config = with_overrides(config, biencoder=with_overrides(config.biencoder, max_steps=max_steps),
                            reranker=with_overrides(config.reranker, max_steps=max_steps,
                                                    enabled=False if no_reranker else None))
    from clinassay.retrieval.train import train_model

    card = train_model(data_set, out, config=config, log=typer.echo, progress=output.stage_bars())
    typer.echo(f"model written to {out} ({card['data']['pairs']} training pairs, base {card['base_model']})")


def _one_audit_dir(audit_dir: Path | None, data: Path | None) -> Path:
    """AUDIT_DIR, or the deprecated `--data` that named it before `train` took it like `audit PAIRS`; exactly one."""
    if audit_dir is not None and data is not None:
        raise ClinassayInputError("train: the audit folder is given twice (AUDIT_DIR and --data); "
                                  "give it once: clinassay train AUDIT_DIR --out MODEL_DIR")
    if audit_dir is None and data is None:
        raise ClinassayInputError("train: missing the audit folder: clinassay train AUDIT_DIR --out MODEL_DIR")
    if data is not None:
        output.note("--data is deprecated: give the audit folder first, clinassay train AUDIT_DIR --out MODEL_DIR")
        return data
    assert audit_dir is not None
    return audit_dir


def search(
    text: list[str] = typer.Argument(..., help="One or more mentions to code."),
    model: str = typer.Option(..., "--model", help="A trained model directory, or a baseline: bm25, minilm-en, me5-small."),
    language: str | None = typer.Option(None, "--language", help="The mentions' language (es, ca, pt, fr, it, en)."),
    k: int = typer.Option(10, "-k", "--k", min=1, max=1000, help="How many codes to show."),
    rerank: bool = typer.Option(False, "--rerank", help="Reorder stage 1's shortlist with the trained reranker."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    config_file: Path | None = typer.Option(None, "--config", help="TOML config (corpus of the baselines)."),
) -> None:
    """Print the best-matching ICD-10-CM codes, titles and scores for each mention."""
    from clinassay.retrieval.searcher import Retriever

    config = _retrieval_config(config_file) if config_file else None
    retriever = Retriever.load(model, config=config, progress=output.stage_bars())
    results = retriever.search(list(text), language=language, k=k, rerank=rerank)
    if as_json:
        typer.echo(json.dumps([{"mention": m, "hits": [h.__dict__ for h in hits]} for m, hits in zip(text, results)], ensure_ascii=False, indent=2))
        return
    for mention, hits in zip(text, results):
        typer.echo(f"{mention}")
        for hit in hits:
            typer.echo(f"  {hit.rank:>3}  {hit.code:<9} {hit.score:8.4f}  {hit.title}")


def evaluate(
    model: str = typer.Option(..., "--model", help="A trained model directory, or a baseline: bm25, minilm-en, me5-small."),
    eval_set: Path = typer.Option(..., "--eval-set", help="TSV with a header or JSONL: mention, code, language."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory for metrics.json and predictions.jsonl."),
    rerank: bool = typer.Option(False, "--rerank", help="Also evaluate stage 2 (the reranker)."),
    baseline: Path | None = typer.Option(None, "--baseline", help="A baseline's metrics.json: gate on per-language regressions."),
    config_file: Path | None = typer.Option(None, "--config", help="TOML config (corpus, tolerance, gated metrics, seed)."),
) -> None:
    """Per-language MRR@10, NDCG@10 and R@k with bootstrap intervals; with --baseline, exit 1 on a regression."""
    from clinassay.audit.manifest import file_sha256
    from clinassay.retrieval.evalset import load_eval_set
    from clinassay.retrieval.gate import compare, format_gate, load_predictions
    from clinassay.retrieval.metrics_file import EvalSetInfo, ModelInfo, load_metrics
    from clinassay.terminology import normalize_code

    config = _retrieval_config(config_file)
    items = load_eval_set(eval_set, normalize=normalize_code)
    baseline_metrics = load_metrics(baseline) if baseline else None  # bad baseline: exit 2 before any work
    baseline_predictions = load_predictions(baseline) if baseline else None

    from clinassay.retrieval.evaluator import evaluate as run_evaluation
    from clinassay.retrieval.evaluator import model_hash, write_metrics
    from clinassay.retrieval.searcher import Retriever

    retriever = Retriever.load(model, config=None if Path(model).is_dir() and not config_file else config,
                               progress=output.stage_bars())
    if rerank and not retriever.has_reranker:
        raise ClinassayInputError(f"--rerank: {model} has no trained reranker")
    metrics, predictions = run_evaluation(
        retriever, items, rerank=rerank, bootstrap_samples=config.bootstrap_samples, seed=config.seed
    )
    gate = None
    if baseline_metrics is not None:
        gate = compare(
            metrics, baseline_metrics, tolerance=config.tolerance, metrics=config.gate_metrics,
            baseline_name=str(baseline), significance=config.significance,
            current_predictions=predictions, baseline_predictions=baseline_predictions,
        )
    # the reranker against its own stage 1 on the same items: does stage 2 hold every language?
    stage2 = compare(
        metrics, metrics, tolerance=config.tolerance, metrics=config.gate_metrics, baseline_name="stage 1",
        significance=config.significance, current_predictions=predictions, baseline_predictions=predictions,
        stage="reranker", baseline_stage="biencoder",
    ) if "reranker" in metrics.stages else None
    path = write_metrics(
        out, metrics, predictions,
        eval_set=EvalSetInfo(path=str(eval_set), sha256=file_sha256(eval_set), items=len(items)),
        model=ModelInfo(name=str(model), sha256=model_hash(retriever), trained=retriever.is_trained,
                        corpus_fingerprint=retriever.corpus.fingerprint),
        seed=config.seed, comparison=gate.to_comparison() if gate else None,
        reranker_vs_stage1=stage2.to_comparison() if stage2 else None,
    )
    typer.echo(format_metrics(metrics))
    if stage2 is not None:
        typer.echo(format_gate(stage2, title="reranker against stage 1", verdict="reranker against stage 1"))
    typer.echo(f"metrics written to {path}")
    if gate is not None:
        typer.echo(format_gate(gate))
        if not gate.passed:
            raise typer.Exit(1)


def format_metrics(metrics: Evaluation) -> str:
    from clinassay.retrieval.metrics import format_metrics_table

    return format_metrics_table(metrics)


def import_codiesp(
    split_dir: Path = typer.Argument(..., help="A CodiEsp split directory holding *X.tsv (e.g. codiesp/dev)."),
    out: Path = typer.Option(..., "--out", "-o", help="Evaluation set to write (.tsv or .jsonl)."),
) -> None:
    """Build an evaluation set from CodiEsp's diagnosis mentions (codes absent from ICD-10-CM are dropped and counted)."""
    from clinassay.retrieval.evalset import import_codiesp as build, write_eval_set
    from clinassay.terminology import load_terminology

    items, stats = build(split_dir, load_terminology())
    write_eval_set(items, out)
    typer.echo(
        f"{stats['kept']} diagnosis mentions written to {out}; dropped {stats['dropped_absent_from_icd10cm']} "
        f"with codes absent from ICD-10-CM and {stats['dropped_malformed']} malformed"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("train")(train)
    app.command("search")(search)
    app.command("evaluate")(evaluate)
    data = typer.Typer(help="Import evaluation data from public corpora.", no_args_is_help=True)
    data.command("import-codiesp")(import_codiesp)
    from clinassay.commands.heldout import heldout_labels

    data.command("heldout-labels")(heldout_labels)
    app.add_typer(data, name="data")
