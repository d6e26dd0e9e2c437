"""Test support for the generation tests: a tiny terminology with the shared contract's shape.

It lets the generation logic be tested without the real terminology (and fast): two chapters,
a handful of codes with siblings, inclusion terms, excludes notes and a few native labels.
"""

from __future__ import annotations

from dataclasses import dataclass

from clinassay.terminology.errors import ClinassayInputError


class FakeUnknownCode(ClinassayInputError):
    pass


@dataclass(frozen=True)
class FakeCode:
    code: str
    kind: str
    title: str
    parent: str | None
    children: tuple[str, ...] = ()
    billable: bool = False
    chapter: str = ""
    inclusion_terms: tuple[str, ...] = ()
    excludes1: tuple[str, ...] = ()
    excludes2: tuple[str, ...] = ()


@dataclass(frozen=True)
class FakeLabel:
    text: str
    language: str
    precision: str
    source: str
    matched_code: str


_ROWS = [
    # code, kind, title, parent, billable, chapter, inclusion, excludes1
    ("1", "chapter", "Certain infectious and parasitic diseases", None, False, "1", (), ()),
    ("A00", "category", "Cholera", "1", False, "1", (), ()),
    ("A00.0", "code", "Cholera due to Vibrio cholerae 01, biovar cholerae", "A00", True, "1", ("Classical cholera",), ()),
    ("A00.1", "code", "Cholera due to Vibrio cholerae 01, biovar eltor", "A00", True, "1", ("Cholera eltor",), ()),
    ("A00.9", "code", "Cholera, unspecified", "A00", True, "1", (), ()),
    ("14", "chapter", "Diseases of the genitourinary system", None, False, "14", (), ()),
    ("N39", "category", "Other disorders of urinary system", "14", False, "14", (), ()),
    ("N39.0", "code", "Urinary tract infection, site not specified", "N39", True, "14", (), ("pyelonephritis",)),
    ("N39.3", "code", "Stress incontinence (female) (male)", "N39", True, "14", (), ()),
    ("N39.4", "category", "Other specified urinary incontinence", "N39", False, "14", (), ()),
    ("N39.41", "code", "Urge incontinence", "N39.4", True, "14", (), ()),
    ("N39.42", "code", "Incontinence without sensory awareness", "N39.4", True, "14", (), ()),
    ("N18", "category", "Chronic kidney disease (CKD)", "14", False, "14", (), ()),
    ("N18.1", "code", "Chronic kidney disease, stage 1", "N18", True, "14", (), ()),
]

_LABELS = {
    ("N39.0", "es"): FakeLabel("Infección de vías urinarias, sitio no especificado", "es", "exact", "who", "N39.0"),
    ("N39.0", "pt"): FakeLabel("Infecção do trato urinário de localização não especificada", "pt", "exact", "datasus", "N39.0"),
    ("A00.0", "fr"): FakeLabel("Choléra à Vibrio cholerae 01, biovar cholerae", "fr", "exact", "who", "A00.0"),
    ("N39.41", "es"): FakeLabel("Otras incontinencias urinarias especificadas", "es", "subcategory", "who", "N39.4"),
}


class FakeTerminology:
    def __init__(self) -> None:
        children: dict[str, list[str]] = {}
        for row in _ROWS:
            if row[3]:
                children.setdefault(row[3], []).append(row[0])
        self._codes = {
            code: FakeCode(code, kind, title, parent, tuple(children.get(code, ())), billable, chapter, inc, exc)
            for code, kind, title, parent, billable, chapter, inc, exc in _ROWS
        }

    def find(self, code: str) -> FakeCode | None:
        return self._codes.get(code.strip().upper())

    def get(self, code: str) -> FakeCode:
        found = self.find(code)
        if found is None:
            raise FakeUnknownCode(f"unknown code: {code!r}")
        return found

    def __contains__(self, code: str) -> bool:
        return self.find(code) is not None

    def label(self, code: str, language: str) -> FakeLabel | None:
        if language == "en":
            c = self.get(code)
            return FakeLabel(c.title, "en", "exact", "icd10cm", c.code)
        return _LABELS.get((self.get(code).code, language))

    def siblings(self, code: str) -> list[str]:
        c = self.get(code)
        if c.parent is None:
            return []
        return [s for s in self._codes[c.parent].children if s != c.code]

    def billable_codes(self) -> list[str]:
        return [c.code for c in self._codes.values() if c.billable]

    def chapters(self) -> list[FakeCode]:
        return [c for c in self._codes.values() if c.kind == "chapter"]

    def chapter_of(self, code: str) -> str:
        return self.get(code).chapter
