"""WHO ICD-10 labels in es, fr, pt and it, read at run time from the GNU Health `.po` files.

Each entry's `msgctxt` names the node: `model:gnuhealth.pathology,name:A000` is the WHO code A00.0
(dotless, 3 or 4 characters); `model:gnuhealth.pathology.category,name:icdcat1-1` is a chapter or block
whose English `msgid` starts with its range ("(A00-A09) Intestinal ...") or chapter numeral ("I ...").
`msgstr` is the translation. Measured quirks, all handled here:
- the literal string `nan` (228 Spanish entries), empty strings, entries equal to the English msgid
  (untranslated) and entries flagged fuzzy: all treated as missing;
- French: a few labels are fragments of the WHO hierarchy ("A Vibrio cholerae 01, ..." under Cholera;
  "Avec idées ... " under F42): completed with the category's label; place-of-occurrence labels
  ("chute ... | domicile") are joined with a comma;
- Portuguese: about 1,100 labels were decoded with the wrong code page ("năo" for "não"): the
  characters that cannot occur in Portuguese are mapped back (cp1250 -> cp1252);
- WHO dagger/asterisk cross-references at the end of a label ("(E35.1*)") are dropped.
"""

from __future__ import annotations

import re
from pathlib import Path

_CODE_CONTEXT = re.compile(r"^model:gnuhealth\.pathology,name:([A-Z][0-9][0-9A-Z][0-9A-Z]?)$")
_CATEGORY_CONTEXT = re.compile(r"^model:gnuhealth\.pathology\.category,name:")
_BLOCK_RANGE = re.compile(r"^\(([A-Z][0-9]{2})-([A-Z][0-9]{2})\)")
_CHAPTER_NUMERAL = re.compile(r"^([IVXL]+) ")
_ASTERISK_REF = re.compile(r"\s*\([A-Z][0-9]{2}(\.[0-9-]+)?[*†]\)\s*$")
_RANGE_ANYWHERE = re.compile(r"\s*\(?[A-Z][0-9]{2}-[A-Z][0-9]{2}\)?\s*")

# cp1250 characters that appear where cp1252 (Portuguese) ones were meant; none is Portuguese.
_PT_REPAIR = str.maketrans({c: c.encode("cp1250").decode("cp1252") for c in "ăĂęĘőŐŕŔŞşţŢ"} | {"\u200b": None})
_FR_FRAGMENT_START = {"A": "à", "À": "à", "Avec": "avec", "Sans": "sans", "Au": "au", "Aux": "aux", "Par": "par"}

_ROMAN = {"I": 1, "V": 5, "X": 10, "L": 50}


def _roman(numeral: str) -> int:
    total = 0
    for i, ch in enumerate(numeral):
        value = _ROMAN[ch]
        total += -value if i + 1 < len(numeral) and _ROMAN[numeral[i + 1]] > value else value
    return total


def _clean(text: str, english: str, language: str) -> str | None:
    text = " ".join(text.replace("\u200b", "").split())
    if language == "pt":
        text = text.translate(_PT_REPAIR)
    if not text or text.lower() == "nan" or text.casefold() == " ".join(english.split()).casefold():
        return None
    return text[0].upper() + text[1:]  # some entries start in lower case ("episódio depressivo leve")


def _entries(path: Path):
    import polib  # only on a cold load

    for entry in polib.pofile(str(path)):
        if entry.obsolete or "fuzzy" in entry.flags or not entry.msgctxt:
            continue
        yield entry.msgctxt, entry.msgid, entry.msgstr


def read_who_labels(path: Path, language: str) -> tuple[dict[str, str], dict[str, str], int]:
    """Labels for WHO codes (dotless: `N390`), labels for ICD chapters/blocks (keyed like ICD-10-CM:
    `"14"`, `"N30-N39"`), and how many labels needed a repair."""
    codes: dict[str, str] = {}
    groups: dict[str, str] = {}
    repaired = 0
    for context, english, translation in _entries(path):
        match = _CODE_CONTEXT.match(context)
        if match:
            text = _clean(translation, english, language)
            if text is None:
                continue
            fixed = _ASTERISK_REF.sub("", text)
            if language == "pt" and translation.translate(_PT_REPAIR) != translation:
                repaired += 1
            codes[match.group(1)] = fixed
        elif _CATEGORY_CONTEXT.match(context):
            text = _clean(translation, english, language)
            if text is None:
                continue
            block = _BLOCK_RANGE.match(english.strip())
            numeral = _CHAPTER_NUMERAL.match(english.strip())
            if block:
                key = f"{block.group(1)}-{block.group(2)}"
            elif numeral:
                key = str(_roman(numeral.group(1)))
            else:
                continue
            groups[key] = _RANGE_ANYWHERE.sub(" ", _CHAPTER_NUMERAL.sub("", text)).strip(" -") or text
    if language == "fr":
        repaired += _complete_french(codes)
    return codes, groups, repaired


def _complete_french(codes: dict[str, str]) -> int:
    """Turn hierarchy fragments into whole labels; returns how many were changed."""
    changed = 0
    for code, text in list(codes.items()):
        first, _, rest = text.partition(" ")
        parent = codes.get(code[:3]) if len(code) == 4 else None
        if first in _FR_FRAGMENT_START and parent and rest:
            codes[code] = f"{parent} {_FR_FRAGMENT_START[first]} {rest}"
            changed += 1
        elif " | " in text:
            codes[code] = text.replace(" | ", ", ")
            codes[code] = codes[code][0].upper() + codes[code][1:]
            changed += 1
        elif text[0].islower():
            codes[code] = text[0].upper() + text[1:]
    return changed
