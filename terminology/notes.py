"""What ICD-10-CM's instructional notes say about pairing codes.

A manifestation code ("Dementia in other diseases classified elsewhere", F02.80) carries a "Code first"
note listing the underlying conditions coders record before it ("Alzheimer's (G30.-)"). A mention that
names such a condition is a legitimate companion of the manifestation code, not a miscoding, so the
audit needs to know which codes a code's notes (its own and its ancestors') cite.
"""

from __future__ import annotations

import re

from clinassay.terminology.codes import CODE_PATTERN
from clinassay.terminology.protocol import TerminologyLike

_CITED = re.compile(r"\(([^()]*)\)")


def _citation(token: str) -> tuple[str, str] | None:
    """A cited code or range as (first, last) prefixes: "G30.-" -> (G30, G30); "E00-E03.-" -> (E00, E03)."""
    first, _, last = token.strip().rstrip(".-").partition("-")
    first, last = first.rstrip("."), last.rstrip(".-") or first.rstrip(".")
    return (first, last) if CODE_PATTERN.match(first) and CODE_PATTERN.match(last) else None


def code_first_citations(term: TerminologyLike, code: str) -> tuple[tuple[str, str], ...]:
    """Codes and ranges the "Code first" notes of `code` and its ancestors cite."""
    cited: list[tuple[str, str]] = []
    node = term.find(code)
    while node is not None:
        for note in node.notes:
            if note.lower().startswith("code first"):
                for group in _CITED.findall(note):
                    cited += [c for token in group.split(",") if (c := _citation(token)) is not None]
        node = term.find(node.parent) if node.parent else None
    return tuple(cited)


def cites(citations: tuple[tuple[str, str], ...], code: str) -> bool:
    """Whether `code` falls under one of the cited codes or ranges (a range compares categories)."""
    for first, last in citations:
        if first == last and code.startswith(first):
            return True
        if first != last and first[:3] <= code[:3] <= last[:3]:
            return True
    return False
