"""The pairs an audit reads: one JSONL file, or a folder of JSONL shards read in name order as if they
were one file (`clinassay generate --engine ray` writes such a folder).

Line numbers run on through the shards (a decision's `line` is its line in the concatenation), a UTF-8
byte order mark is stripped from each shard's first line, and the input hash is the sha256 of the shards'
bytes in that order (`cat shards/*.jsonl | sha256sum`). For a distributed audit the source is cut into
byte ranges that start on a line, each with the number of its first line, in the same single pass that
hashes it: a worker reads its range and numbers its lines exactly as a single reader would.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from clinassay.audit.reader import Malformed, Parsed, parse_raw
from clinassay.terminology.errors import ClinassayInputError

SHARD_SUFFIXES = (".jsonl", ".ndjson")
BLOCK = 1 << 20


@dataclass(frozen=True)
class ByteRange:
    """Bytes [start, end) of one file; they begin at the start of line `first_line` (of the whole source)."""

    path: str
    start: int
    end: int
    first_line: int

    def lines(self) -> Iterator[tuple[int, bytes, bool]]:
        """(line number, raw bytes with their newline, whether it is the first line of its file)."""
        with open(self.path, "rb") as handle:
            handle.seek(self.start)
            n, position = self.first_line, self.start
            while position < self.end:
                raw = handle.readline()
                if not raw:
                    break
                yield n, raw, position == 0
                position += len(raw)
                n += 1

    def read(self) -> Iterator[Parsed | Malformed]:
        for n, raw, first in self.lines():
            parsed = parse_raw(n, raw, first=first)
            if parsed is not None:
                yield parsed


@dataclass(frozen=True)
class Scan:
    sha256: str
    lines: int  # lines of the whole source, blank ones included
    ranges: list[ByteRange]


class PairsSource:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @property
    def files(self) -> list[Path]:
        path = self.path
        if path.is_dir():
            shards = sorted(p for p in path.iterdir()
                            if p.is_file() and p.suffix in SHARD_SUFFIXES and not p.name.startswith("."))
            if not shards:
                raise ClinassayInputError(f"{path} is a folder, not a pairs file, and holds no JSONL shards (*.jsonl)")
            return shards
        if not path.is_file():
            raise ClinassayInputError(f"input file not found: {path}")
        return [path]

    def read_lines(self) -> Iterator[Parsed | Malformed]:
        """Every non-blank line of every shard, parsed or reported, numbered through the shards."""
        for byte_range in self.scan(range_bytes=None).ranges:
            yield from byte_range.read()

    def scan(self, *, range_bytes: int | None = 64 << 20) -> Scan:
        """Hash the source and cut it into ranges of about `range_bytes` (None: one per file) in one pass."""
        digest = hashlib.sha256()
        ranges: list[ByteRange] = []
        line = 1  # number of the next line to start
        for path in self.files:
            start = start_line = None
            position, last = 0, b"\n"
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(BLOCK), b""):
                    digest.update(block)
                    if start is None:
                        start, start_line = 0, line
                    offset = 0
                    while range_bytes is not None:
                        cut_at = start + range_bytes - position  # where in this block the range is long enough
                        if cut_at >= len(block):
                            break
                        nl = block.find(b"\n", max(offset, cut_at))
                        if nl < 0:
                            break
                        line += block.count(b"\n", offset, nl + 1)
                        offset = nl + 1
                        ranges.append(ByteRange(str(path), start, position + offset, start_line))
                        start, start_line = position + offset, line
                    line += block.count(b"\n", offset)
                    position += len(block)
                    last = block[-1:]
            if last != b"\n":
                line += 1  # an unterminated last line is a line too
            if start is not None and start < position:
                ranges.append(ByteRange(str(path), start, position, start_line))
        return Scan(digest.hexdigest(), line - 1, ranges)

    def sha256(self) -> str:
        return self.scan(range_bytes=None).sha256
