"""Streaming input: JSONL read line by line and handed out in chunks, so memory is bounded by the
chunk size. A malformed line is reported with its line number and the audit goes on."""

from __future__ import annotations

import codecs
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from pydantic import ValidationError

from clinassay.generation.records import Pair
from clinassay.terminology.errors import ClinassayInputError


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
RAW_KEPT = 500  # characters of a malformed line kept in malformed.jsonl (its full length is recorded)
ERROR_KEPT = 300


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, with an ellipsis when cut: input can be arbitrarily long."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Malformed:
    line: int
    error: str
    raw: str | None = None  # the line's text, clipped to RAW_KEPT characters
    length: int | None = None  # the line's full length in characters (bytes when it is not UTF-8)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.line, "error": self.error}
        if self.raw is not None:
            out["raw"], out["length"] = self.raw, self.length
        return out


def _malformed(line_no: int, error: str, raw: str | None = None, length: int | None = None) -> Malformed:
    return Malformed(line_no, clip(error, ERROR_KEPT), None if raw is None else clip(raw, RAW_KEPT),
                     len(raw) if length is None and raw is not None else length)


@dataclass(frozen=True)
class Parsed:
    line: int
    record: dict[str, Any]
    pair: Pair


def _no_constant(name: str) -> Any:
    raise ValueError(f"bare {name} is not JSON")


def parse_line(line_no: int, text: str) -> Parsed | Malformed:
    try:
        record = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        return _malformed(line_no, f"not valid JSON: {exc.msg} at column {exc.colno}", text.rstrip("\r\n"))
    except ValueError as exc:  # bare NaN/Infinity, integers beyond Python's digit limit
        return _malformed(line_no, f"not valid JSON: {exc}", text.rstrip("\r\n"))
    except RecursionError:
        return _malformed(line_no, "not valid JSON: nested too deeply", text.rstrip("\r\n"))
    # text decoded from UTF-8 holds no surrogate and json.loads makes only JSON values: only a \udXXX
    # escape can make the record unwritable, so only then is it checked (the check costs what parsing does)
    return parse_record(line_no, record, raw=text.rstrip("\r\n"), checked=_SURROGATE_ESCAPE.search(text) is None)


def unwritable(record: dict[str, Any]) -> str | None:
    """Why a record cannot be written back as UTF-8 JSON (a lone surrogate, NaN, a non-JSON value)."""
    try:
        json.dumps(record, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        return "holds a lone surrogate (e.g. \\ud800), which is not text"
    except ValueError as exc:
        return f"holds a value JSON cannot carry ({exc})"
    except (TypeError, RecursionError) as exc:
        return f"not JSON-serialisable ({type(exc).__name__})"
    return None


def parse_record(line_no: int, record: Any, *, raw: str | None = None, checked: bool = False) -> Parsed | Malformed:
    """A record as a pair, or why not; `checked` when it is known to be writable back as UTF-8 JSON."""
    if isinstance(record, Pair):
        record = record.model_dump(exclude_none=True)
    if not isinstance(record, dict):
        return _malformed(line_no, f"expected a JSON object, got {type(record).__name__}", raw)
    problem = None if checked else unwritable(record)
    if problem:
        return _malformed(line_no, problem, raw)
    try:
        pair = Pair.model_validate(record)
    except ValidationError as exc:
        problems = "; ".join(f"{clip('.'.join(str(p) for p in e['loc']), 60) or 'record'}: {e['msg']}"
                             for e in exc.errors())
        return _malformed(line_no, problems, raw)
    return Parsed(line_no, record, pair)


def read_lines(path: Path) -> Iterator[Parsed | Malformed]:
    """Every non-blank line, parsed or reported; undecodable bytes are reported, not fatal. A UTF-8 byte
    order mark at the start of the file is not part of the first line."""
    with path.open("rb") as handle:
        for n, raw in enumerate(handle, start=1):
            parsed = parse_raw(n, raw, first=n == 1)
            if parsed is not None:
                yield parsed


def parse_raw(n: int, raw: bytes, *, first: bool = False) -> Parsed | Malformed | None:
    """One line as read from a file (bytes), parsed or reported; None for a blank line. `first`: the
    file's first line, whose UTF-8 byte order mark is not part of it."""
    if first and raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        shown = raw.rstrip(b"\r\n")
        return _malformed(n, f"not UTF-8 text: {exc.reason} at byte {exc.start}",
                          shown[: RAW_KEPT * 4].decode("utf-8", errors="backslashreplace"), len(shown))
    return parse_line(n, text) if text.strip() else None


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def file_sha256(path: Path) -> tuple[str, int]:
    """Hash and number of lines, read in blocks."""
    if path.is_dir():
        raise ClinassayInputError(f"{path} is a folder, not a pairs file")
    if not path.is_file():
        raise ClinassayInputError(f"input file not found: {path}")
    h, lines = hashlib.sha256(), 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
            lines += block.count(b"\n")
    return h.hexdigest(), lines
