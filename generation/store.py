"""Append-only JSONL output with crash-safe resume.

Pairs go to `NAME.jsonl`, rejects to `NAME.rejects.jsonl` beside it. Each batch of finished
requests is written with one `os.write` per file and fsync'ed, so a kill -9 loses at most the
requests still in flight, which a resumed run redoes. On resume, a torn last line (a write cut
short) is cut off, and a request whose pairs are not all there (`request_pairs`) is removed and
redone: no pair is lost and none is repeated.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from clinassay.generation.errors import GenerationInputError
from clinassay.generation.records import Pair, Reject

FINAL_REJECTS = {"unparseable", "empty"}
"""Reject reasons that close a request; `request_failed` is retried by a resumed run."""


def rejects_path_for(path: Path) -> Path:
    path = Path(path)
    stem = path.name[: -len(".jsonl")] if path.name.endswith(".jsonl") else path.name
    return path.with_name(f"{stem}.rejects.jsonl")


@dataclass
class ResumeState:
    """What an earlier run already finished, read back from its files."""

    done: set[str] = field(default_factory=set)
    pairs: int = 0
    rejects: int = 0
    requests: int = 0
    cost_usd: float = 0.0
    repaired: list[str] = field(default_factory=list)
    """Human-readable notes on what recovery fixed (torn lines, partial requests)."""


class PairStore:
    """The pairs file and its rejects file; buffered appends, durable flushes."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.rejects_path = rejects_path_for(self.path)
        self._pairs: list[str] = []
        self._rejects: list[str] = []
        self._lock = threading.Lock()

    def has_output(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > 0

    # ------------------------------------------------------------------------------------ write
    def add(self, pairs: list[Pair], rejects: list[Reject]) -> None:
        """Queue one request's results; they reach the disk at the next `flush`."""
        # every provenance field is written, null included (null cost = the model has no known price)
        self.add_lines([p.model_dump_json() + "\n" for p in pairs],
                       [r.model_dump_json(exclude_none=True) + "\n" for r in rejects])

    def add_lines(self, pair_lines: list[str], reject_lines: list[str]) -> None:
        """Queue one request's results already serialised (by a worker process)."""
        with self._lock:
            self._pairs.extend(pair_lines)
            self._rejects.extend(reject_lines)

    def flush(self) -> None:
        with self._lock:
            # Rejects first: a crash in between redoes the request rather than losing its pairs.
            for target, lines in ((self.rejects_path, self._rejects), (self.path, self._pairs)):
                if lines:
                    _append_durably(target, "".join(lines).encode("utf-8"))
                    lines.clear()

    # ---------------------------------------------------------------------------------- recover
    def recover(self) -> ResumeState:
        """Repair both files after a crash and say which requests are finished."""
        state = ResumeState()
        for target in (self.path, self.rejects_path):
            cut = _cut_torn_tail(target)
            if cut:
                state.repaired.append(f"{target.name}: removed a torn last line ({cut} bytes)")
        pairs = _read_lines(self.path)
        counts: Counter[str] = Counter()
        expected: dict[str, int] = {}
        for obj in pairs:
            key = obj.get("request_key")
            if key and isinstance(key, str):
                counts[key] += 1
                if isinstance(obj.get("request_pairs"), int):
                    expected[key] = obj["request_pairs"]
        partial = {k for k, n in counts.items() if k in expected and n < expected[k]}
        if partial:
            kept = [o for o in pairs if not (isinstance(o.get("request_key"), str) and o["request_key"] in partial)]
            _rewrite(self.path, kept)
            state.repaired.append(
                f"{self.path.name}: removed {len(pairs) - len(kept)} pairs of {len(partial)} unfinished requests"
            )
            pairs = kept
        for obj in pairs:
            state.cost_usd += _cost(obj)
        state.pairs = len(pairs)
        state.done = {k for k in counts if k not in partial}
        state.requests = len(state.done)
        for obj in _read_lines(self.rejects_path):
            state.rejects += 1
            if obj.get("reason") == "invalid_item":
                continue
            state.requests += 1
            state.cost_usd += _cost(obj)
            if obj.get("reason") in FINAL_REJECTS and isinstance(obj.get("request_key"), str):
                state.done.add(obj["request_key"])
        return state


def _append_durably(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def _cut_torn_tail(path: Path) -> int:
    """Truncate a file after its last newline; returns the number of bytes cut."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return 0
        block = 1 << 16
        pos = size
        while pos > 0:
            start = max(0, pos - block)
            f.seek(start)
            chunk = f.read(pos - start)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                keep = start + nl + 1
                break
            pos = start
        else:
            keep = 0
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    return size - keep


def _read_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError) as exc:
                raise GenerationInputError(f"{path}:{lineno}: not a JSON line ({exc}); the file was edited by hand? "
                                           "Resume needs the files as generate wrote them") from exc
            if not isinstance(obj, dict):
                raise GenerationInputError(f"{path}:{lineno}: a JSON {type(obj).__name__}, not a record; "
                                           "the file was edited by hand?")
            out.append(obj)
    return out


def _cost(obj: dict) -> float:
    """A record's cost as written (a number or null); anything else counts as nothing spent."""
    value = obj.get("cost_usd")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value else 0.0


def _rewrite(path: Path, objs: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for obj in objs:
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
