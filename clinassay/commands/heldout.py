"""`clinassay data heldout-labels`: an evaluation set of real labels for codes the generation plan
does not touch (registered under the `data` group by `clinassay.commands.retrieval`)."""

from __future__ import annotations

from pathlib import Path

import typer

EVAL_LANGUAGES = ("es", "pt", "fr", "it", "en")  # Catalan has no label table offline


def heldout_labels(
    config: Path = typer.Option(..., "--config", help="TOML config: its generation plan is excluded, its corpus is the pool."),
    out: Path = typer.Option(..., "--out", "-o", help="Evaluation set to write (TSV with a header, or .jsonl)."),
    per_language: int = typer.Option(40, "--per-language", min=1, help="Items per language (fewer where labels run out)."),
) -> None:
    """Held-out terminology labels per language, from corpus codes outside the generation plan."""
    from clinassay.config import load_config
    from clinassay.generation.plan import select_codes
    from clinassay.retrieval.corpus import select_codes as corpus_codes
    from clinassay.retrieval.evalset import write_eval_set
    from clinassay.retrieval.heldout import heldout_label_items
    from clinassay.terminology import load_terminology

    settings = load_config(config)
    term = load_terminology()
    corpus = settings.retrieval.corpus
    pool = corpus_codes(term, billable_only=corpus.billable_only, codes=corpus.codes, chapters=corpus.chapters)
    planned = select_codes(term, settings.generation)
    languages = list(EVAL_LANGUAGES)  # all of them, also when training covers fewer: that is what the gate guards
    items = heldout_label_items(term, codes=pool, languages=languages, per_language=per_language,
                                exclude=planned, seed=settings.generation.seed)
    write_eval_set(items, out)
    counts = {lang: sum(i.language == lang for i in items) for lang in languages}
    typer.echo(f"{len(items)} held-out items ({', '.join(f'{k} {v}' for k, v in counts.items())}) "
               f"from {len(pool)} corpus codes minus {len(planned)} planned -> {out}", err=True)
