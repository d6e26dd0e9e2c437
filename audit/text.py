"""Text normalisation shared by the checks: two mentions that differ only in case, accents,
punctuation or spacing are the same mention."""

from __future__ import annotations

import re
import unicodedata

_PUNCT = re.compile(r"[^\w\s]|_", re.UNICODE)
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


def strip_accents(text: str) -> str:
    if text.isascii():
        return text
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text))


def normalize_text(text: str) -> str:
    """Lower-case, accents removed, punctuation turned into spaces, whitespace collapsed."""
    text = strip_accents(text.casefold())
    text = _PUNCT.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


def words(text: str) -> list[str]:
    """Alphabetic words (no digits, no punctuation)."""
    return _WORD.findall(text)
