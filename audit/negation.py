"""Negation and uncertainty in a short mention, NegEx / ConText style: triggers with a scope, scope
terminators, pseudo-triggers that look like negation but are not ("sin especificar"), and hedges kept
apart ("no se descarta" is uncertainty, not negation). The cue lists are data in audit/lexicon.py.

Works on `normalize_text` output (lower-case, accent-free, punctuation gone), so a scope ends at a
terminator word, another cue or `window` words, not at a comma.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from clinassay.audit.lexicon import NEGATION

_KINDS = ("pre", "post", "pseudo", "uncertain", "terminate")


@dataclass(frozen=True)
class Negation:
    trigger: str
    kind: str  # "pre" (negates what follows) or "post" (what precedes)
    scope: tuple[str, ...]  # the negated words


@dataclass(frozen=True)
class Context:
    negations: tuple[Negation, ...]
    affirmed: tuple[str, ...]  # words outside every scope (cues, fillers and pseudo-triggers left out)
    uncertain: tuple[str, ...]  # hedges found ("posible", "no se descarta"): not negation
    pseudo: tuple[str, ...]  # pseudo-triggers, skipped when looking for negation


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    kinds: frozenset[str]  # empty for a plain word
    text: str


@lru_cache(maxsize=None)
def _cues(language: str) -> dict[str, list[tuple[tuple[str, ...], frozenset[str]]]]:
    """First word -> (cue words, kinds), longest cue first: the longest match wins at a position."""
    by_cue: dict[tuple[str, ...], set[str]] = {}
    for kind in _KINDS:
        for cue in NEGATION.get(language, {}).get(kind, ()):
            by_cue.setdefault(tuple(cue.split()), set()).add(kind)
    index: dict[str, list[tuple[tuple[str, ...], frozenset[str]]]] = {}
    for words, kinds in by_cue.items():
        index.setdefault(words[0], []).append((words, frozenset(kinds)))
    for entries in index.values():
        entries.sort(key=lambda e: -len(e[0]))
    return index


def _spans(tokens: list[str], language: str) -> list[_Span]:
    index = _cues(language)
    out: list[_Span] = []
    i = 0
    while i < len(tokens):
        for words, kinds in index.get(tokens[i], ()):
            if tuple(tokens[i:i + len(words)]) == words:
                out.append(_Span(i, i + len(words), kinds, " ".join(words)))
                i += len(words)
                break
        else:
            out.append(_Span(i, i + 1, frozenset(), tokens[i]))
            i += 1
    return out


def _scope(spans: list[_Span], at: int, step: int, window: int, fillers: set[str]) -> list[int]:
    """Indices of the plain words from span `at` in direction `step` until a cue or `window` words;
    pseudo-triggers are skipped, fillers are not counted."""
    found: list[int] = []
    j = at + step
    while 0 <= j < len(spans) and len(found) < window:
        span = spans[j]
        if span.kinds:
            if span.kinds != {"pseudo"}:
                break
        elif span.text not in fillers:
            found.append(j)
        j += step
    return sorted(found)


def analyse(norm: str, language: str, *, window: int = 5) -> Context:
    """The negations, affirmed words, hedges and pseudo-triggers of a normalised mention in `language`."""
    spans = _spans(norm.split(), language)
    fillers = set(NEGATION.get(language, {}).get("filler", ()))
    negations: list[Negation] = []
    negated: set[int] = set()
    for k, span in enumerate(spans):
        forward = _scope(spans, k, 1, window, fillers) if "pre" in span.kinds else []
        backward = _scope(spans, k, -1, window, fillers) if "post" in span.kinds and not forward else []
        for kind, scope in (("pre", forward), ("post", backward)):
            if scope:
                negations.append(Negation(span.text, kind, tuple(spans[j].text for j in scope)))
                negated.update(scope)
    affirmed = tuple(s.text for j, s in enumerate(spans) if not s.kinds and j not in negated and s.text not in fillers)
    return Context(tuple(negations), affirmed,
                   tuple(s.text for s in spans if "uncertain" in s.kinds),
                   tuple(s.text for s in spans if s.kinds == {"pseudo"}))
