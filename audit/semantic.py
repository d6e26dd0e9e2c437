"""The embedding half of the `consistency` check: does another code fit the mention clearly better?

The mention is compared (cosine, multilingual encoder) with its own code's title or label and with
the candidates a coder would confuse it with: its siblings, then the codes under its parent's
siblings. Only those candidates are encoded, once each (CodeVectors caches them).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def candidate_codes(terminology: Any, code: str, *, limit: int) -> list[str]:
    """Sibling codes first, then billable codes under the parent's siblings; never the code itself."""
    seen: dict[str, None] = {}

    def add(c: str) -> None:
        if c != code and c not in seen and len(seen) < limit:
            entry = terminology.find(c)
            if entry is not None and entry.billable:
                seen[c] = None

    for sibling in terminology.siblings(code):
        add(sibling)
    entry = terminology.find(code)
    parent = getattr(entry, "parent", None)
    if parent and len(seen) < limit:
        for uncle in terminology.siblings(parent):
            uncle_entry = terminology.find(uncle)
            if uncle_entry is None:
                continue
            if uncle_entry.billable:
                add(uncle)
            for child in uncle_entry.children:
                add(child)
            if len(seen) >= limit:
                break
    return list(seen)


class SemanticComparer:
    """Scores each mention against its code and the candidates; stateless besides the code-vector cache."""

    def __init__(self, terminology: Any, code_vectors: Any, *, limit: int) -> None:
        self.terminology = terminology
        self.code_vectors = code_vectors
        self.limit = limit
        self._candidates: dict[str, list[str]] = {}

    def candidates(self, code: str) -> list[str]:
        if code not in self._candidates:
            self._candidates[code] = candidate_codes(self.terminology, code, limit=self.limit)
        return self._candidates[code]

    def compare(self, rows: list[tuple[np.ndarray, str, str]]) -> list[tuple[float, str | None, float]]:
        """For (mention vector, code, language) rows: (own cosine, best other code or None, its cosine)."""
        keys: list[tuple[str, str]] = []
        for _, code, lang in rows:
            keys.append((code, lang))
            keys.extend((c, lang) for c in self.candidates(code))
        vectors = self.code_vectors.vectors(keys)
        out = []
        for vec, code, lang in rows:
            own = float(vectors[(code, lang)] @ vec)
            others = self.candidates(code)
            if not others:
                out.append((own, None, float("-inf")))
                continue
            matrix = np.stack([vectors[(c, lang)] for c in others])
            sims = matrix @ vec
            best = int(np.argmax(sims))
            out.append((own, others[best], float(sims[best])))
        return out
