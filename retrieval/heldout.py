"""A held-out evaluation set made of real terminology labels, for languages without annotated data.

Queries are labels of codes that the generation plan does not touch, so a model trained on the
plan's pairs is measured on codes it never saw: WHO / imported labels in es, pt, fr, it (exact
precision only, so the label really names that code) and ICD-10-CM inclusion terms in English (the
English title itself is the code's document, so it would be a trivial query).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

from clinassay.retrieval.evalset import EvalItem


def heldout_label_items(
    term,
    *,
    codes: Iterable[str],
    languages: Sequence[str],
    per_language: int,
    exclude: Iterable[str] = (),
    seed: int = 0,
) -> list[EvalItem]:
    """Up to `per_language` (label, code, language) items per language, from `codes` minus `exclude`."""
    excluded = set(exclude)
    pool = sorted(set(codes) - excluded)
    random.Random(seed).shuffle(pool)
    items: list[EvalItem] = []
    for language in languages:
        taken = 0
        for code in pool:
            if taken >= per_language:
                break
            text = _query_text(term, code, language)
            if text:
                items.append(EvalItem(mention=text, code=code, language=language))
                taken += 1
    return items


def _query_text(term, code: str, language: str) -> str | None:
    if language == "en":
        node = term.get(code)
        title = node.title.casefold()
        for inclusion in node.inclusion_terms:
            if inclusion.casefold() != title:
                return inclusion
        return None
    label = term.label(code, language)
    if label is None or label.precision != "exact" or label.source == "icd10cm":
        return None
    return label.text
