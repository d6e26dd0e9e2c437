"""The one fake terminology of the tests (conftest.py hands it out as fixtures): `TerminologyLike` over a
few hand-written nodes, built from the real `Code` and `Label` records, so the generation and retrieval
logic is tested fast and without the real ICD-10-CM. Two data sets:

- `make_tree_terminology()`: two chapters with their hierarchy (14 nodes), inclusion terms, an
  excludes note and a few native labels, one of them a subcategory's;
- `make_labelled_terminology()`: 16 billable codes of 5 chapters (tests/data/retrieval/terminology.json),
  each labelled in es, fr and pt.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from clinassay.terminology import LANGUAGES, Code, Label, MalformedCodeError, UnknownCodeError, normalize_code
from clinassay.terminology.imports import ImportedTable
from clinassay.terminology.sex import Sex

DATA = Path(__file__).parent / "data"


class FakeTerminology:
    """Codes in any spelling, English labels from the titles, other labels from `labels`, sex restrictions
    from `sex`; no source digest and no imported tables (the audit's caches keep its indexes per object)."""

    source_digest = ""

    def __init__(self, nodes: Iterable[Code], labels: Mapping[str, Mapping[str, Label]] | None = None,
                 sex: Mapping[str, Sex] | None = None) -> None:
        self._codes = {node.code: node for node in nodes}
        self._labels = labels or {}
        self._sex = sex or {}
        self.imports: list[ImportedTable] = []

    def find(self, code: str) -> Code | None:
        try:
            return self._codes.get(normalize_code(code))
        except MalformedCodeError:
            return None

    def get(self, code: str) -> Code:
        key = normalize_code(code)
        if key not in self._codes:
            raise UnknownCodeError(key)
        return self._codes[key]

    def codes(self) -> list[str]:
        return list(self._codes)

    def billable_codes(self) -> list[str]:
        return [c for c, node in self._codes.items() if node.billable]

    def chapters(self) -> list[Code]:
        return [node for node in self._codes.values() if node.kind == "chapter"]

    def chapter_of(self, code: str) -> str:
        return self.get(code).chapter

    def siblings(self, code: str) -> list[str]:
        node = self.get(code)
        if node.parent is None:
            return []
        return [c for c, other in self._codes.items() if other.parent == node.parent and c != node.code]

    def languages(self) -> list[str]:
        return list(LANGUAGES)

    def label(self, code: str, language: str) -> Label | None:
        node = self.get(code)
        if language == "en":
            return Label(node.title, "en", "exact", "icd10cm", node.code)
        return self._labels.get(node.code, {}).get(language)

    def labels(self, code: str) -> dict[str, Label]:
        node = self.get(code)
        return {"en": Label(node.title, "en", "exact", "icd10cm", node.code), **self._labels.get(node.code, {})}

    def sex_restriction(self, code: str) -> Sex | None:
        return self._sex.get(self.get(code).code)


_TREE = [
    # code, kind, title, parent, billable, chapter, inclusion terms, excludes1
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

_TREE_LABELS = {
    "N39.0": {
        "es": Label("Infección de vías urinarias, sitio no especificado", "es", "exact", "who", "N39.0"),
        "pt": Label("Infecção do trato urinário de localização não especificada", "pt", "exact", "datasus", "N39.0"),
    },
    "A00.0": {"fr": Label("Choléra à Vibrio cholerae 01, biovar cholerae", "fr", "exact", "who", "A00.0")},
    "N39.41": {"es": Label("Otras incontinencias urinarias especificadas", "es", "subcategory", "who", "N39.4")},
}


def make_tree_terminology() -> FakeTerminology:
    children: dict[str, list[str]] = {}
    for code, _kind, _title, parent, *_ in _TREE:
        if parent:
            children.setdefault(parent, []).append(code)
    nodes = [Code(code, kind, title, parent, tuple(children.get(code, ())), billable, chapter, inclusion, excludes1)
             for code, kind, title, parent, billable, chapter, inclusion, excludes1 in _TREE]
    return FakeTerminology(nodes, _TREE_LABELS)


def make_labelled_terminology(path: Path = DATA / "retrieval" / "terminology.json") -> FakeTerminology:
    raw = json.loads(path.read_text(encoding="utf-8"))
    nodes = [Code(code, "code", entry["title"], entry["parent"], (), True, entry["chapter"]) for code, entry in raw.items()]
    labels = {code: {lang: Label(text, lang, "exact", "who", code) for lang, text in entry["labels"].items()}
              for code, entry in raw.items()}
    return FakeTerminology(nodes, labels)
