"""An audit owns its output folder, and never destroys what it reads.

Every output is written to a temporary file in the folder and renamed into place (`os.replace`), so a
symlink planted at `OUT/rejected.jsonl` is replaced, never written through, and a reader never sees half
a file. Before a run, what a previous audit wrote there is removed (the manifest first: a crash never
leaves an old passing manifest next to new files); nothing else in the folder is touched. An input that
is one of those files is refused: the clean-up would delete it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from clinassay.terminology.errors import ClinassayInputError

MANIFEST = "manifest.json"
SUMMARY = "summary.json"
ACCEPTED, REJECTED, MALFORMED = "accepted.jsonl", "rejected.jsonl", "malformed.jsonl"
# clean-up order: the manifest first; report.* are written by the CLI after the audit, drift_* by the audit
OUTPUT_FILES = (MANIFEST, SUMMARY, ACCEPTED, REJECTED, MALFORMED, "report.html", "report.md")
OUTPUT_PATTERNS = ("drift_*.html",)


def is_output_name(name: str) -> bool:
    return name in OUTPUT_FILES or any(fnmatch.fnmatchcase(name, p) for p in OUTPUT_PATTERNS)


def _temp_of(name: str) -> str | None:
    """The output a leftover temporary file (".NAME.RANDOM.tmp", as mkstemp names ours) belonged to."""
    if not (name.startswith(".") and name.endswith(".tmp")):
        return None
    stem = name[1:-4]
    return stem.rsplit(".", 1)[0] if "." in stem else None


def replace_into(path: Path, write: Callable[[Path], Any]) -> Any:
    """Let `write` fill a fresh temporary file next to `path`, then rename it over `path` (a link at
    `path` is replaced, not followed). The temporary file is removed if `write` fails."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        result = write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return result


class JsonlOutput:
    """A JSONL output streamed into a temporary file, hashed and counted as it is written; `commit`
    renames it into place, `discard` removes it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        self.tmp = Path(tmp)
        self._handle = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.records = 0

    def write(self, record: dict[str, Any]) -> None:
        data = (json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
        self._handle.write(data)
        self._hash.update(data)
        self.records += 1

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()

    def commit(self) -> None:
        self.close()
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        self.close()
        self.tmp.unlink(missing_ok=True)


class OutputFolder:
    """The folder an audit writes; see the module docstring for what it guarantees."""

    def __init__(self, path: Path | str) -> None:
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise ClinassayInputError(f"--out must be a directory: {path}")
        self.path = path

    def prepare(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ClinassayInputError(f"cannot create the output folder {self.path}: {exc.strerror}") from exc

    def refuse_inputs(self, **inputs: Path | str | None) -> None:
        """Refuse any input that is (by path, through links, or as a hard link) a file this run writes."""
        root = self.path.resolve()
        existing = []
        if self.path.is_dir():
            existing = [entry for entry in self.path.iterdir() if is_output_name(entry.name)]
        for role, given in inputs.items():
            if given is None:
                continue
            given = Path(given)
            lexical = given.parent.resolve() / given.name  # the link itself, were the input a link in OUT
            candidates = {lexical, given.resolve()}
            clash = next((c for c in candidates if c.parent == root and is_output_name(c.name)), None)
            if clash is None and given.exists():
                stat = os.stat(given)
                for entry in existing:
                    entry_stat = os.lstat(entry)
                    if not entry.is_symlink() and os.path.samestat(stat, entry_stat):
                        clash = entry
                        break
            if clash is not None:
                raise ClinassayInputError(
                    f"{role} {given} is {clash.name} of the output folder {self.path}, which this audit "
                    f"replaces: copy it elsewhere or choose another --out")

    def clear(self) -> list[str]:
        """Remove what a previous audit wrote here (manifest first) and our leftover temporary files."""
        removed = []
        names = list(OUTPUT_FILES)
        for entry in sorted(self.path.iterdir()):
            owner = _temp_of(entry.name) or entry.name
            if entry.name not in names and is_output_name(owner):
                names.append(entry.name)
        for name in names:
            entry = self.path / name
            if entry.is_dir() and not entry.is_symlink():
                raise ClinassayInputError(f"{entry} is a folder; the audit writes a file there: move it away")
            try:
                entry.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise ClinassayInputError(f"cannot remove the previous audit's {entry}: {exc.strerror}") from exc
            removed.append(name)
        return removed

    def stream(self, name: str) -> JsonlOutput:
        return JsonlOutput(self.path / name)

    def write_bytes(self, name: str, data: bytes) -> None:
        replace_into(self.path / name, lambda tmp: tmp.write_bytes(data))
