"""`clinassay terminology ...`: look up a code, see per-language coverage, import label tables."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

terminology_app = typer.Typer(
    help="ICD-10-CM FY2026 codes and their labels in en, es, ca, pt, fr, it.", no_args_is_help=True
)
import_app = typer.Typer(help="Import a label table into the user's cache (it takes precedence over WHO labels).",
                         no_args_is_help=True)
terminology_app.add_typer(import_app, name="import")

_CONFIG = typer.Option(None, "--config", help="TOML configuration ([terminology] cache_dir).")


def register(app: typer.Typer) -> None:
    app.add_typer(terminology_app, name="terminology")


def _load(config: Optional[Path]):
    from clinassay.config import load_config
    from clinassay.terminology import load_terminology

    return load_terminology(load_config(config).terminology)


def _cache_dir(config: Optional[Path]):
    from clinassay.config import load_config

    return load_config(config).terminology.cache_dir


@terminology_app.command("show")
def show(
    code: str = typer.Argument(..., help="An ICD-10-CM code in any spelling (n39.0, N390), a block (N30-N39) or a chapter (14)."),
    language: Optional[str] = typer.Option(None, "--language", "-l", help="Show only this language's label (and English)."),
    config: Optional[Path] = _CONFIG,
) -> None:
    """Title, labels with their precision and source, parent, children and notes of one code."""
    term = _load(config)
    node = term.get(code)
    if language is not None:
        chosen = term.check_language(language)
        found = term.label(node.code, chosen)
        labels = {"en": term.label(node.code, "en")}
        if chosen != "en":
            labels[chosen] = found
    else:
        labels = {lang: term.label(node.code, lang) for lang in term.languages()}
    echo = typer.echo
    billable = "billable" if node.billable else "not billable"
    echo(f"{node.code}  {node.title}")
    echo(f"  kind: {node.kind} ({billable}), chapter {node.chapter}")
    sex = term.sex_restriction(node.code)
    if sex:
        echo(f"  sex: {sex} only")
    echo("  labels:")
    for lang, label in labels.items():
        if label is None:
            echo(f"    {lang}: (none{'; no offline Catalan table' if lang == 'ca' else ''})")
        else:
            via = "" if label.matched_code == node.code else f" via {label.matched_code}"
            echo(f"    {lang}: {label.text}  [{label.precision}{via}, {label.source}]")
    if node.parent:
        echo(f"  parent: {node.parent}  {term.get(node.parent).title}")
    if node.children:
        echo(f"  children ({len(node.children)}):")
        for child in node.children[:40]:
            echo(f"    {child}  {term.get(child).title}")
        if len(node.children) > 40:
            echo(f"    ... and {len(node.children) - 40} more")
    for heading, notes in (("inclusion terms", node.inclusion_terms), ("includes", node.includes),
                           ("excludes1", node.excludes1), ("excludes2", node.excludes2), ("notes", node.notes)):
        if notes:
            echo(f"  {heading}:")
            for note in notes:
                echo(f"    - {note}")


@terminology_app.command("stats")
def stats(config: Optional[Path] = _CONFIG) -> None:
    """Counts of the classification and, per language, how many billable codes have a label."""
    from collections import Counter

    from clinassay.terminology.coverage import PRECISIONS, coverage

    term = _load(config)
    kinds = Counter(term.get(c).kind for c in term.codes())
    billable = term.billable_codes()
    seventh = sum(1 for c in billable if len(c) == 8)
    plural = {"chapter": "chapters", "block": "blocks", "category": "categories", "code": "codes"}
    typer.echo("ICD-10-CM FY2026: " + ", ".join(f"{kinds[k]:,} {plural[k]}" for k in plural))
    typer.echo(f"billable codes: {len(billable):,} ({seventh:,} formed with a 7th character)")
    typer.echo("")
    typer.echo(f"{'lang':<5}{'labelled':>10}{'share':>8}" + "".join(f"{p:>13}" for p in PRECISIONS) + "  sources")
    covered = coverage(term)
    for cov in covered:
        sources = ", ".join(f"{s} {n:,}" for s, n in sorted(cov.by_source.items(), key=lambda kv: -kv[1])) or "-"
        typer.echo(f"{cov.language:<5}{cov.labelled:>10,}{cov.share:>8.1%}"
                   + "".join(f"{cov.by_precision.get(p, 0):>13,}" for p in PRECISIONS) + f"  {sources}")
    typer.echo("")
    typer.echo("gaps:")
    for cov in covered:
        typer.echo(f"  {cov.language}: {cov.gap}")
    if term.imports:
        typer.echo("")
        typer.echo("imported tables (most recent first, they take precedence over WHO):")
        for table in term.imports:
            counts = ", ".join(f"{lang} {len(labels):,}" for lang, labels in table.labels.items())
            sex = f", {len(table.sex):,} sex restrictions" if table.sex else ""
            typer.echo(f"  {table.name} ({table.source}): {counts}{sex}")


@import_app.command("datasus")
def import_datasus_command(
    directory: Path = typer.Argument(..., help="Folder holding CID-10-SUBCATEGORIAS.csv and CID-10-CATEGORIAS.csv."),
    name: str = typer.Option("datasus", "--name", help="Name of the imported table."),
    config: Optional[Path] = _CONFIG,
) -> None:
    """Brazil's DATASUS CID-10 (Portuguese labels and the RESTRSEXO sex restriction)."""
    from clinassay.terminology.imports import import_datasus

    table = import_datasus(directory, name=name, cache_dir=_cache_dir(config))
    typer.echo(f"imported {table.name}: {len(table.labels['pt']):,} Portuguese labels, "
               f"{len(table.sex):,} sex restrictions")


@import_app.command("tsv")
def import_tsv_command(
    file: Path = typer.Argument(..., help="Lines of code<TAB>language<TAB>label (e.g. CIE-10-ES, CIM-10, a Catalan table)."),
    name: Optional[str] = typer.Option(None, "--name", help="Name of the imported table (default: the file name)."),
    config: Optional[Path] = _CONFIG,
) -> None:
    """A plain TSV label table, in any language."""
    from clinassay.terminology.imports import import_tsv

    table = import_tsv(file, name=name, cache_dir=_cache_dir(config))
    counts = ", ".join(f"{len(labels):,} {lang}" for lang, labels in table.labels.items())
    typer.echo(f"imported {table.name}: {counts} labels")
