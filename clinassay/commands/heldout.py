"""`clinassay data heldout-labels`: an evaluation set of real labels for codes the generation plan
does not touch (registered under the `data` group by `clinassay.commands.retrieval`)."""

from __future__ import annotations

from pathlib import Path

import typer

from clinassay.terminology.languages import EVALUABLE_LANGUAGES as EVAL_LANGUAGES  # Catalan: no labels offline


def heldout_labels(
    config: Path = typer.Option(..., "--config", help="TOML config: its generation plan is excluded, its corpus is the pool."),
    out: Path = typer.Option(..., "--out", "-o", help="Evaluation set to write (TSV with a header, or .jsonl)."),
    per_language: int = typer.Option(40, "--per-language", min=1, help="Items per language (fewer where labels run out)."),
    style: str = typer.Option("labels", "--style", help="labels: exact terminology labels; clinician: short forms, "
                              "inclusion terms, DATASUS abbreviations and acronyms of held-out codes with corpus siblings."),
    datasus: Path | None = typer.Option(None, "--datasus", help="A DATASUS CID-10 folder: its abbreviated descriptions "
                                        "become Portuguese items (--style clinician)."),
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
    if style not in ("labels", "clinician"):
        from clinassay.terminology.errors import ClinassayInputError

        raise ClinassayInputError(f"--style must be labels or clinician, got {style!r}")
    if style == "clinician":
        from clinassay.retrieval.heldout import clinician_heldout_items

        languages = [*EVAL_LANGUAGES, "ca"]  # Catalan too: reported as having no evaluation data, not left out
        items, stats = clinician_heldout_items(term, codes=pool, languages=languages, per_language=per_language,
                                               exclude=planned, seed=settings.generation.seed, datasus_dir=datasus)
        for language in stats["no_evaluation_data"]:
            typer.echo(f"{language}: no evaluation data (no label table offline)", err=True)
    else:
        items = heldout_label_items(term, codes=pool, languages=languages, per_language=per_language,
                                    exclude=planned, seed=settings.generation.seed)
    write_eval_set(items, out)
    counts = {lang: sum(i.language == lang for i in items) for lang in languages}
    typer.echo(f"{len(items)} held-out items ({', '.join(f'{k} {v}' for k, v in counts.items())}) "
               f"from {len(pool)} corpus codes minus {len(planned)} planned -> {out}", err=True)
