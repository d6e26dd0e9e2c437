"""Streaming input: JSONL read line by line and handed out in chunks, so memory is bounded by the
chunk size. A malformed line is reported with its line number and the audit goes on."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from pydantic import ValidationError

from generation.records import Pair
from terminology.errors import ClinassayInputError


@dataclass(frozen=True)
class Malformed:
    line: int
    error: str

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "error": self.error}


@dataclass(frozen=True)
class Parsed:
    line: int
    record: dict[str, Any]
    pair: Pair


def parse_line(line_no: int, text: str) -> Parsed | Malformed:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return Malformed(line_no, f"not valid JSON: {exc.msg} at column {exc.colno}")
    return parse_record(line_no, record)


def parse_record(line_no: int, record: Any) -> Parsed | Malformed:
    if isinstance(record, Pair):
        return Parsed(line_no, record.model_dump(exclude_none=True), record)
    if not isinstance(record, dict):
        return Malformed(line_no, f"expected a JSON object, got {type(record).__name__}")
    try:
        pair = Pair.model_validate(record)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}" for e in exc.errors())
        return Malformed(line_no, problems)
    return Parsed(line_no, record, pair)


def read_lines(path: Path) -> Iterator[Parsed | Malformed]:
    """Every non-blank line, parsed or reported; undecodable bytes are reported, not fatal."""
    with path.open("rb") as handle:
        for n, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield Malformed(n, f"not UTF-8 text: {exc.reason} at byte {exc.start}")
                continue
            if text.strip():
                yield parse_line(n, text)


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
    if not path.is_file():
        raise ClinassayInputError(f"input file not found: {path}")
    h, lines = hashlib.sha256(), 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
            lines += block.count(b"\n")
    return h.hexdigest(), lines
