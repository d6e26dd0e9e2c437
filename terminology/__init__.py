"""ICD-10-CM FY2026 with labels in es, ca, pt, fr, it and en: the vocabulary every other package codes in.

    from clinassay.terminology import load_terminology, normalize_code
    term = load_terminology()
    term.get("n390").title ; term.label("N39.0", "es")
"""

from clinassay.terminology.codes import MalformedCodeError, UnknownCodeError, normalize_code
from clinassay.terminology.errors import ClinassayInputError
from clinassay.terminology.protocol import TerminologyLike, exact_label
from clinassay.terminology.records import LANGUAGES, Code, Label
from clinassay.terminology.terminology import Terminology, load_terminology

__all__ = [
    "LANGUAGES",
    "ClinassayInputError",
    "Code",
    "Label",
    "MalformedCodeError",
    "Terminology",
    "TerminologyLike",
    "UnknownCodeError",
    "exact_label",
    "load_terminology",
    "normalize_code",
]
