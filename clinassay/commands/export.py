"""`clinassay export SOURCE --to DIR`: a folder to publish on the Hugging Face Hub as it is.

SOURCE is a MODEL_DIR of `clinassay train` (-> a model folder: `SentenceTransformer(DIR)`,
`CrossEncoder(DIR/reranker)`, a Hub card), an audit folder of `clinassay audit` (-> a dataset folder:
splits accepted and rejected, Parquet), or a pairs JSONL file (-> a dataset folder: split train)."""

from __future__ import annotations

from pathlib import Path

import typer

from clinassay.terminology.errors import ClinassayInputError


def export(
    source: Path = typer.Argument(..., help="A model directory (clinassay train), an audit folder (clinassay audit) or a pairs JSONL file."),
    to: Path = typer.Option(..., "--to", "--out", "-o", help="The folder to write (new or empty); upload it with `hf upload ORG/NAME DIR`."),
    evaluation: list[Path] = typer.Option([], "--eval", help="A metrics.json (or its folder) of `clinassay evaluate` on this model, for the card's model-index; repeatable. Models only; by default the evaluation `clinassay run` wrote beside the model, if any."),
    license: str | None = typer.Option(None, "--license", help="The licence in the card (a Hub licence id such as apache-2.0). Default: the base model's licence for a model, 'other' for data."),
    dataset: list[str] = typer.Option([], "--dataset", help="Hub id of the dataset the model was trained on (the card's datasets); repeatable. Models only."),
    name: str | None = typer.Option(None, "--name", help="The name in the card, e.g. the Hub repo id ORG/NAME (default: the folder's name)."),
) -> None:
    """Export a trained model, an audit's accepted/rejected pairs or a pairs file as a Hugging Face folder."""
    from clinassay.retrieval.searcher import is_model_dir

    if is_model_dir(source):
        from clinassay.retrieval.export import export_model

        result = export_model(source, to, evaluations=evaluation, license=license, datasets=dataset, name=name,
                              log=typer.echo)
        typer.echo(result.describe())
        return
    if evaluation or dataset:
        raise ClinassayInputError(f"--eval and --dataset apply to a model directory; {source} is not one")
    from clinassay.audit.export import export_audit, export_pairs

    if source.is_dir():
        result = export_audit(source, to, license=license, name=name)
    elif source.is_file():
        result = export_pairs(source, to, license=license, name=name)
    else:
        raise ClinassayInputError(f"{source}: not found")
    typer.echo(result.describe())


def register(app: typer.Typer) -> None:
    app.command("export")(export)
