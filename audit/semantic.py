"""The codes a coder would confuse a code with: its siblings, then the codes under its parent's siblings.
The sibling-terms rule compares their distinguishing words ("type 1", "with hematuria")."""

from __future__ import annotations

from clinassay.terminology.protocol import TerminologyLike


def candidate_codes(terminology: TerminologyLike, code: str, *, limit: int) -> list[str]:
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
