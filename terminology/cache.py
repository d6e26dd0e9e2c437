"""Where clinassay keeps what it derives: the parsed terminology, the tables users import, and (under
the same root) every other package's cache: models, embeddings, spelling lexicons.

The root, for everything: $CLINASSAY_CACHE_DIR > $XDG_CACHE_HOME/clinassay > ~/.cache/clinassay
(`cache_root`). The terminology's own folder may be set apart (TerminologyConfig.cache_dir).
"""

from __future__ import annotations

import gc
import hashlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

CACHE_ENV = "CLINASSAY_CACHE_DIR"


def cache_root() -> Path:
    """The one cache root every package derives its folder from."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "clinassay"


def terminology_dir(explicit: Path | str | None = None) -> Path:
    return Path(explicit).expanduser() if explicit is not None else cache_root() / "terminology"


def imports_dir(explicit: Path | str | None = None) -> Path:
    return terminology_dir(explicit) / "imports"


def file_digest(*paths: Path, salt: str = "") -> str:
    """One hash over the contents of the source files (and a format version), naming the cache file."""
    h = hashlib.sha256(salt.encode())
    for path in paths:
        h.update(path.name.encode())
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()[:20]


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file next to `path`, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_pickle(path: Path) -> Any | None:
    """The cached object, or None when it is missing or unreadable (then it is rebuilt)."""
    gc_was_enabled = gc.isenabled()
    gc.disable()  # ~100k small tuples: the cycle collector would only slow the load down
    try:
        with open(path, "rb") as handle:
            return pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError):
        return None
    finally:
        if gc_was_enabled:
            gc.enable()


def write_pickle(path: Path, obj: Any) -> None:
    write_atomic(path, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
