"""What the other packages may ask of a terminology: `TerminologyLike`.

Generation, audit and retrieval take a terminology as a parameter (the caller's, else
`load_terminology()`); they are typed with this protocol rather than with the `Terminology` class, so
a test may pass a few hand-written nodes instead and a type checker still holds both to one interface.
It is what those packages read, nothing more: the lookups, the sex restriction the audit's sex rule
applies, and the content keys (`source_digest`, `imports`) the audit's caches are keyed by (a double
has no digest: its caches are kept per object, audit/lexical.py's `cached`). The class's language
checks, suggestions and ancestors are its own, reached only by code that loads the real one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from clinassay.terminology.records import Code, Label
from clinassay.terminology.sex import Sex

if TYPE_CHECKING:
    from clinassay.terminology.imports import ImportedTable


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

    def sex_restriction(self, code: str) -> Sex | None:
        """"male" or "female" when the code applies to one sex only (imported tables, then the
        classification's structure); None otherwise."""
        ...

    @property
    def source_digest(self) -> str:
        """The hash of the parsed sources; empty for a double (its caches are then kept per object)."""
        ...

    @property
    def imports(self) -> Sequence[ImportedTable]:
        """The imported label tables, part of what the labels (and so the audit's caches) depend on."""
        ...


def exact_label(terminology: TerminologyLike, code: str, language: str) -> Label | None:
    """The code's label in `language` when it was written for the code itself, not for a broader WHO node
    (what a pair or an evaluation item may take as the code's own name)."""
    label = terminology.label(code, language)
    return label if label is not None and label.precision == "exact" else None


if TYPE_CHECKING:  # `make typecheck` holds the classification itself to the protocol

    from clinassay.terminology.terminology import Terminology

    def _conforms(terminology: Terminology) -> TerminologyLike:
        return terminology
