"""Code normalisation: every spelling a human or a model writes (`n39.0`, `N390`, ` N39.0 `) becomes one
canonical form (`N39.0`), and bad input fails with an error that says what was wrong.
"""

from __future__ import annotations

import re

from clinassay.terminology.errors import ClinassayInputError

CODE_PATTERN = re.compile(r"^([A-Z][0-9A-Z]{2})\.?([0-9A-Z]{1,4})?$")  # FY2026 has QA0
_BLOCK = re.compile(r"^([A-Z][0-9A-Z]{2})-([A-Z][0-9A-Z]{2})$")
_CHAPTER = re.compile(r"^[0-9]{1,2}$")


class MalformedCodeError(ClinassayInputError, ValueError):
    """The string cannot be an ICD-10 code at all (`N3`, `39.0`, `N39..0`)."""

    def __init__(self, value: object, reason: str) -> None:
        self.value = value
        super().__init__(f"malformed ICD-10 code {value!r}: {reason}")


class UnknownCodeError(ClinassayInputError, KeyError):
    """Well-formed, but not in ICD-10-CM FY2026; `suggestions` holds the nearest existing codes."""

    def __init__(self, code: str, suggestions: list[str] | tuple[str, ...] = ()) -> None:
        self.code = code
        self.suggestions = list(suggestions)
        hint = f"; did you mean {', '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(f"unknown ICD-10-CM code {code!r}{hint}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def normalize_code(value: str) -> str:
    """Canonical spelling of a code, block or chapter id; checks the format only, not existence.

    Codes: upper case, a dot after the third character when there are more (`n390` -> `N39.0`).
    Blocks: `a00-a09` -> `A00-A09`. Chapters: `"14"` (leading zeros dropped).
    """
    if not isinstance(value, str):
        raise MalformedCodeError(value, f"expected a string, got {type(value).__name__}")
    text = value.strip().upper()
    if not text:
        raise MalformedCodeError(value, "empty")
    if _CHAPTER.match(text):
        return str(int(text))
    block = _BLOCK.match(text)
    if block:
        return text
    if "." in text and text.index(".") != 3:
        raise MalformedCodeError(value, "the dot must follow the third character (as in N39.0)")
    match = CODE_PATTERN.match(text)
    if not match:
        if len(text.replace(".", "")) > 7:
            raise MalformedCodeError(value, "longer than 7 characters")
        raise MalformedCodeError(
            value, "expected a letter, two letters or digits, then up to 4 more (as in N39.0 or S22.49XA)"
        )
    category, rest = match.groups()
    return f"{category}.{rest}" if rest else category


def compact(code: str) -> str:
    """The dotless form used by WHO and DATASUS tables (`N39.0` -> `N390`)."""
    return code.replace(".", "")


def dotted(compact_code: str) -> str:
    """`N390` -> `N39.0`; three characters stay as they are."""
    return compact_code if len(compact_code) <= 3 else f"{compact_code[:3]}.{compact_code[3:]}"
