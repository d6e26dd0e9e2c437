"""The two records the terminology hands out: a classification node (`Code`) and a label (`Label`).

Both are frozen and built on demand from the compact cache, so loading stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["chapter", "block", "category", "code"]
Precision = Literal["exact", "subcategory", "category"]

LANGUAGES: tuple[str, ...] = ("en", "es", "ca", "pt", "fr", "it")
"""The languages clinassay labels codes in; English is the ICD-10-CM title itself."""


@dataclass(frozen=True, slots=True)
class Code:
    """One node of ICD-10-CM: a chapter ("14"), a block ("N30-N39"), a category ("N39") or a code ("N39.0").

    `billable` is true for the leaves of the classification (the codes a claim may carry), including
    the codes formed with a 7th character (`S22.49XA`).
    """

    code: str
    kind: Kind
    title: str
    parent: str | None
    children: tuple[str, ...]
    billable: bool
    chapter: str
    inclusion_terms: tuple[str, ...] = ()
    excludes1: tuple[str, ...] = ()
    excludes2: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    """Instructional notes: "Code first ...", "Use additional code ...", "Code also ...", general notes."""


@dataclass(frozen=True, slots=True)
class Label:
    """A code's name in one language, and how closely it fits.

    `precision` says which node the text was written for: the code itself (`exact`), its 4-character
    WHO subcategory (`subcategory`, e.g. E11.6 for E11.65) or its 3-character category (`category`).
    `matched_code` is that node, `source` where the text came from ("icd10cm", "who", "datasus",
    "import:NAME").
    """

    text: str
    language: str
    precision: Precision
    source: str
    matched_code: str
