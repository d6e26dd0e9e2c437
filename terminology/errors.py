"""Errors that mean "the user gave us bad input": the CLI turns every one of them into exit code 2."""

from __future__ import annotations

from pydantic import ValidationError


class ClinassayInputError(Exception):
    """Bad input or usage: a file, a code, a config value. The message is shown to the user as is."""


def one_line_error(exc: ValidationError) -> str:
    """A pydantic validation error in one line: where the first error is, what it is, and how many more."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "top level"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"[:300]


def invalid_artifact(
    exc: ValidationError, source: str, what: str, error: type[ClinassayInputError] = ClinassayInputError
) -> ClinassayInputError:
    """The input error for a file that failed its typed model, in the one form every artifact reader uses:
    "SOURCE is not WHAT: not valid JSON (...)", or "SOURCE is not WHAT: where: what is wrong"."""
    first = exc.errors()[0]
    detail = f"not valid JSON ({first['msg']})" if first["type"] == "json_invalid" else one_line_error(exc)
    return error(f"{source} is not {what}: {detail}")
