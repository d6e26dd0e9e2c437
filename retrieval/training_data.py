"""From audited pairs to training rows, without torch: the dev split by code, sibling-code hard
negatives from the hierarchy, and the rows of both stages.

Every pair is a (mention, code) positive; a generator's `hard_negative` pair (a mention of `code`
written to be confusable with `negative_of`) also gives `negative_of` as a hard negative for its
mention. Documents are English titles: they are what tells sibling codes apart (WHO labels often
stop at the category, so siblings share them).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from clinassay.generation.records import Pair
from clinassay.terminology.protocol import TerminologyLike


@dataclass(frozen=True)
class Example:
    mention: str
    code: str
    language: str
    hard_negatives: tuple[str, ...] = ()  # codes the generator wrote this mention to be confused with
    generator: str = "unknown"


@dataclass
class Split:
    train: list[Example] = field(default_factory=list)
    dev: list[Example] = field(default_factory=list)


def examples_from_pairs(pairs: Sequence[Pair], *, normalize=None) -> list[Example]:
    """One example per distinct (mention, code, language); negatives of the same mention merged."""
    merged: dict[tuple[str, str, str], set[str]] = {}
    generators: dict[tuple[str, str, str], str] = {}
    for pair in pairs:
        code = normalize(pair.code) if normalize else pair.code
        key = (pair.mention.strip(), code, pair.language)
        negatives = merged.setdefault(key, set())
        generators.setdefault(key, pair.model or "unknown")
        if pair.task == "hard_negative" and pair.negative_of:
            negative = normalize(pair.negative_of) if normalize else pair.negative_of
            if negative != code:
                negatives.add(negative)
    return [
        Example(mention=m, code=c, language=lang, hard_negatives=tuple(sorted(merged[(m, c, lang)])), generator=generators[(m, c, lang)])
        for (m, c, lang) in merged
    ]


def split_by_code(examples: Sequence[Example], *, dev_fraction: float, seed: int) -> Split:
    """Hold out whole codes (not pairs) so dev measures generalisation to unseen codes."""
    codes = sorted({e.code for e in examples})
    rng = random.Random(seed)
    rng.shuffle(codes)
    n_dev = int(round(len(codes) * dev_fraction))
    if dev_fraction > 0 and n_dev == 0 and len(codes) > 1:
        n_dev = 1
    dev_codes = set(codes[:n_dev])
    split = Split()
    for example in examples:
        (split.dev if example.code in dev_codes else split.train).append(example)
    return split


def title_of(term: TerminologyLike, code: str) -> str:
    node = term.find(code)
    return node.title if node is not None else code


def stage1_rows(
    examples: Sequence[Example],
    *,
    term,
    corpus_codes: Sequence[str],
    mined: dict[int, list[str]] | None = None,
    sibling_negatives: int = 1,
    mined_negatives: int = 1,
    seed: int = 13,
) -> list[dict[str, str]]:
    """Rows `{anchor, positive, negative_1..n}` for MultipleNegativesRankingLoss. Negatives: the
    generator's hard negatives first, then sibling codes, then codes mined with the base model;
    random corpus codes fill any gap so every row has the same columns."""
    rng = random.Random(seed)
    n_neg = sibling_negatives + mined_negatives
    mined = mined or {}
    rows = []
    for i, example in enumerate(examples):
        negatives: list[str] = []

        def take(candidates: Sequence[str], limit: int, negatives: list[str] = negatives, example=example) -> None:
            added = 0
            for code in candidates:
                if added >= limit or len(negatives) >= n_neg:
                    return
                if code != example.code and code not in negatives:
                    negatives.append(code)
                    added += 1

        take(list(example.hard_negatives), n_neg)
        siblings = siblings_of(term, example.code)
        rng.shuffle(siblings)
        take(siblings, sibling_negatives)
        take(mined.get(i, []), n_neg)
        while len(negatives) < n_neg and len(corpus_codes) > n_neg + 1:
            take([rng.choice(corpus_codes)], 1)
        row = {"anchor": example.mention, "positive": title_of(term, example.code)}
        for j, code in enumerate(negatives[:n_neg], start=1):
            row[f"negative_{j}"] = title_of(term, code)
        if n_neg == 0 or len(row) == 2 + n_neg:
            rows.append(row)
    return rows


def siblings_of(term: TerminologyLike, code: str) -> list[str]:
    try:
        return [c for c in term.siblings(code) if c != code]
    except Exception:  # noqa: BLE001 - a code without a parent has no siblings
        return []


def reranker_groups(
    examples: Sequence[Example],
    candidates: Sequence[Sequence[str]],
    *,
    documents,
    negatives: int,
    seed: int = 13,
    max_groups: int | None = None,
    siblings: Callable[[str], Sequence[str]] | None = None,
    sibling_negatives: int = 0,
) -> list[dict[str, str]]:
    """Rows `{anchor, positive, negative_1..k}` for the cross-encoder: the gold code's document
    against k hard negatives, the generator's first, then up to `sibling_negatives` of the gold
    code's `siblings(code)` (the confusions a reranker exists to settle, which stage 1's shortlist
    may lack), then stage 1's top candidates. `documents(code, language)` gives a code's text as the
    reranker will see it."""
    rng = random.Random(seed)
    order = list(range(len(examples)))
    rng.shuffle(order)
    if max_groups is not None:
        order = order[:max_groups]
    rows = []
    for i in sorted(order):
        example = examples[i]
        picked: list[str] = list(dict.fromkeys(c for c in example.hard_negatives if c != example.code))[:negatives]
        if siblings is not None and sibling_negatives > 0:
            kin = [c for c in siblings(example.code) if c != example.code and c not in picked]
            rng.shuffle(kin)
            picked += kin[: min(sibling_negatives, negatives - len(picked))]
        for code in candidates[i]:
            if len(picked) >= negatives:
                break
            if code != example.code and code not in picked:
                picked.append(code)
        if len(picked) < negatives:
            continue
        row = {"anchor": example.mention, "positive": documents(example.code, example.language)}
        for j, code in enumerate(picked, start=1):
            row[f"negative_{j}"] = documents(code, example.language)
        rows.append(row)
    return rows


def language_counts(examples: Sequence[Example]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for e in examples:
        counts[e.language] += 1
    return dict(counts)
