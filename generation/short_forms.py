"""Clinician-style short forms of terminology labels.

Clinicians write the bare concept ("hematuria", "enfermedad de Crohn") and coders map it to the code
whose title carries the default qualifier ("Hematuria, unspecified"; "Crohn's disease, unspecified,
without complications"). A label stripped of those qualifiers is such a mention: a pair that teaches a
retriever the default code, which real labels alone never show it.
"""

from __future__ import annotations

import re

# Qualifiers that state "nothing more is known" (the default code's mark), per language.
_DEFAULT_QUALIFIERS: dict[str, tuple[str, ...]] = {
    "en": (
        r"of unspecified site", r"site not specified", r"not elsewhere classified", r"unspecified site",
        r"without complications?", r"without mention of [^,]+", r"unspecified", r"NOS", r"NEC",
    ),
    "es": (
        r"de sitio no especificado", r"sitio no especificado", r"parte no especificada",
        r"de tipo no especificado", r"tipo no especificado", r"sin otra especificaci[oó]n",
        r"no clasificad[oa]s? en otra parte", r"sin complicaci[oó]n(?:es)?", r"sin menci[oó]n de [^,]+",
        r"no especificad[oa]s?", r"SAI", r"NCOP",
    ),
    "pt": (
        r"de localiza[cç][aã]o n[aã]o especificada", r"parte n[aã]o especificada", r"n[aã]o classificad[oa]s? em outra parte",
        r"sem complica[cç][oõ]es", r"sem men[cç][aã]o de [^,]+", r"n[aã]o especificad[oa]s?", r"SOE", r"NE",
    ),
    "fr": (
        r"de localisation non pr[ée]cis[ée]e", r"non class[ée]e?s? ailleurs", r"sans complication",
        r"sans mention de [^,]+", r"sans pr[ée]cision", r"non pr[ée]cis[ée]e?s?", r"SAI",
    ),
    "it": (
        r"di sede non specificata", r"non classificat[oaie] altrove", r"senza complicazioni",
        r"senza menzione di [^,]+", r"non specificat[oaie]", r"NAS",
    ),
    "ca": (r"no especificad[ae]s?", r"sense complicacions", r"SAI"),
}
_PATTERNS = {
    language: re.compile(r"(?:,\s*|\s+|^)(?:" + "|".join(words) + r")(?=\s*(?:,|$|\s|\)))", re.IGNORECASE)
    for language, words in _DEFAULT_QUALIFIERS.items()
}
_PARENTHETICAL = re.compile(r"\s*[\(\[][^\)\]]*[\)\]]")
_SPACES = re.compile(r"\s+")


def short_form(label: str, language: str) -> str | None:
    """The label without its default qualifiers and parentheticals, lower-cased as a clinician writes
    it; None when nothing was removed (the label itself is not a new mention) or nothing is left."""
    pattern = _PATTERNS.get(language)
    if pattern is None or not label:
        return None
    text = _PARENTHETICAL.sub("", label)
    text = pattern.sub("", text)
    text = _SPACES.sub(" ", text.replace(" ,", ",")).strip(" ,;:-")
    if not text or len(text) < 3 or text.casefold() == label.strip().casefold():
        return None
    if _PARENTHETICAL.sub("", label).strip().casefold() == text.casefold():
        return None  # only a parenthetical went: a near copy of the label
    return text[0].lower() + text[1:] if not text[:2].isupper() else text
