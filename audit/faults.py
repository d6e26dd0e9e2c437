"""Known-wrong pairs made from right ones: a pair's code swapped for another chapter's, another category
of the same chapter, or a sibling in the same category.

Realistic corruptions, not random noise, are what an audit must be measured on (hierarchical near-misses
dominate LLM coding errors; see docs in shared/docs/audit-methods.md). The benchmark
(bench/audit_quality.py) and any calibration on a user's own pairs draw their swaps from here, seeded, so
the same seed gives the same faults.
"""

from __future__ import annotations

import random
from typing import Any, Literal

from clinassay.terminology.protocol import TerminologyLike

SwapKind = Literal["other_chapter", "same_chapter", "sibling"]
SWAP_KINDS: tuple[SwapKind, ...] = ("other_chapter", "same_chapter", "sibling")


class CodeSwapper:
    """Draws a wrong code of a given hierarchy distance for a right one (billable codes only)."""

    def __init__(self, terminology: TerminologyLike) -> None:
        self.terminology = terminology
        self._by_category: dict[str, list[str]] = {}
        self._by_chapter: dict[str, list[str]] = {}
        for code in terminology.billable_codes():
            entry = terminology.find(code)
            self._by_category.setdefault(code[:3], []).append(code)
            self._by_chapter.setdefault(entry.chapter, []).append(code)
        self._chapters = sorted(self._by_chapter)

    def swap(self, code: str, kind: SwapKind, rng: random.Random) -> str | None:
        """A billable code at distance `kind` from `code`, or None where none exists (a category of one)."""
        entry = self.terminology.find(code)
        if entry is None:
            return None
        category = entry.code[:3]
        if kind == "sibling":
            pool = [c for c in self._by_category.get(category, []) if c != entry.code]
        elif kind == "same_chapter":
            pool = [c for c in self._by_chapter.get(entry.chapter, []) if c[:3] != category]
        else:
            chapter = rng.choice([c for c in self._chapters if c != entry.chapter])
            pool = self._by_chapter[chapter]
        return rng.choice(pool) if pool else None


def swap_sets(pairs: list[dict[str, Any]], swapper: CodeSwapper, *, per_kind: int, seed: int = 0,
              ) -> dict[str, list[dict[str, Any]]]:
    """Right pairs split into disjoint groups by mention: one kept as it is ("correct"), one per swap kind
    with its code swapped (each swapped pair keeps its true code as `gold_code`). A mention appears in
    one group only, so no group can be recognised by its mentions."""
    from clinassay.audit.text import normalize_text

    rng = random.Random(seed)
    unique: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        unique.setdefault(normalize_text(pair["mention"]), pair)
    rows = list(unique.values())
    rng.shuffle(rows)
    kinds = ("correct", *SWAP_KINDS)
    groups: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    turn = 0
    for pair in rows:
        if all(len(g) >= per_kind for g in groups.values()):
            break
        kind = kinds[turn % len(kinds)]
        if len(groups[kind]) >= per_kind:
            turn += 1
            continue
        if kind == "correct":
            groups[kind].append(dict(pair))
        else:
            wrong = swapper.swap(pair["code"], kind, rng)
            if wrong is None:
                continue
            groups[kind].append({**pair, "code": wrong, "gold_code": pair["code"], "fault": kind})
        turn += 1
    return groups
