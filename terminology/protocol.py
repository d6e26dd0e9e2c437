"""What the other packages may ask of a terminology: `TerminologyLike`.

Generation, audit and retrieval take a terminology as a parameter (the caller's, else
`load_terminology()`); they are typed with this protocol rather than with the `Terminology` class, so
a test may pass a few hand-written nodes instead and a type checker still holds both to one interface. It is the lookups those packages call, nothing more: the class's
cache keys (`source_digest`, `imports`), its sex restrictions and its language checks are its own,
reached only by code that loads the real one (or, for doubles, through `getattr`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from clinassay.terminology.records import Code, Label


@runtime_checkable
class TerminologyLike(Protocol):
    """Read-only lookups over ICD-10-CM nodes (`Code`) and their labels (`Label`); codes in any spelling."""

    def find(self, code: str) -> Code | None:
        """The node for `code`, or None when there is none (also for a malformed string)."""
        ...

    def get(self, code: str) -> Code:
        """The node for `code`; an input error (UnknownCodeError, MalformedCodeError) otherwise."""
        ...

    def codes(self) -> list[str]:
        """Every node: chapters, blocks, categories and codes."""
        ...

    def billable_codes(self) -> list[str]:
        """The billable codes, in classification order."""
        ...

    def chapters(self) -> list[Code]:
        """The chapter nodes."""
        ...

    def chapter_of(self, code: str) -> str:
        """The chapter a code belongs to ("14")."""
        ...

    def siblings(self, code: str) -> list[str]:
        """The other children of the code's parent."""
        ...

    def languages(self) -> list[str]:
        """The languages labels may be asked in; `en` is the ICD-10-CM title."""
        ...

    def label(self, code: str, language: str) -> Label | None:
        """The best label of `code` in `language`, or None when there is none."""
        ...

    def labels(self, code: str) -> dict[str, Label]:
        """Every language that has a label for `code`, `en` always among them."""
        ...


if TYPE_CHECKING:  # `make typecheck` holds the classification itself to the protocol

    from clinassay.terminology.terminology import Terminology

    def _conforms(terminology: Terminology) -> TerminologyLike:
        return terminology
