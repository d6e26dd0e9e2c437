"""Text normalisation shared by the checks: two mentions that differ only in case, accents,
punctuation or spacing are the same mention."""

from __future__ import annotations

import re
import unicodedata

_PUNCT = re.compile(r"[^\w\s]|_", re.UNICODE)
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalize_text(text: str) -> str:
    """Lower-case, accents removed, punctuation turned into spaces, whitespace collapsed."""
    text = strip_accents(text.casefold())
    text = _PUNCT.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


def words(text: str) -> list[str]:
    """Alphabetic words (no digits, no punctuation)."""
    return _WORD.findall(text)
