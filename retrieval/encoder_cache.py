"""An on-disk embedding cache, so a corpus is encoded once per model (the ~76k ICD-10-CM titles take
about a quarter of an hour with me5-small on two CPU cores).

Vectors are keyed by the encoder's fingerprint, the encode kind (query/passage) and a hash of the
text, and stored as .npy shards: `<dir>/<fingerprint>/<kind>/<shard>.npy` (float32 vectors) next to
`<shard>.keys.npy` (text hashes). Missing texts are encoded in shard-sized chunks, each written as soon
as it is done (tmp file + rename, keys last), so an interrupted run resumes where it stopped.
Works with any object that has a `fingerprint` and the `encode(texts, *, kind, batch_size, show_progress)`
signature of `retrieval.models.Encoder`.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from clinassay.retrieval.progress import Advance, encode_reporting
from clinassay.terminology.errors import ClinassayInputError


class CachableEncoder(Protocol):
    @property
    def fingerprint(self) -> str: ...

    def encode(
        self, texts: Sequence[str], *, kind: str = ..., batch_size: int = ..., show_progress: bool = ...
    ) -> np.ndarray: ...


def text_key(text: str) -> bytes:
    """The 32-character hex key of a text (sha256 prefix)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32].encode("ascii")


class EmbeddingCache:
    """Embeddings on disk under `directory`, filled on demand by `get_or_encode`."""

    def __init__(self, directory: str | Path, *, shard_size: int = 4096) -> None:
        if shard_size < 1:
            raise ClinassayInputError(
                f"The 'shard_size' parameter of EmbeddingCache must be >= 1. Got {shard_size!r} instead."
            )
        self.directory = Path(directory)
        self.shard_size = shard_size

    def get_or_encode(
        self,
        encoder: CachableEncoder,
        texts: Sequence[str],
        *,
        kind: str = "passage",
        batch_size: int = 64,
        progress: Advance | None = None,
    ) -> np.ndarray:
        """float32 (len(texts), d) embeddings in the order of `texts`; only unseen texts are encoded.
        `progress` (retrieval.progress): texts encoded, of the distinct texts missing; not called when
        none is."""
        if isinstance(texts, str):
            raise ClinassayInputError("EmbeddingCache.get_or_encode takes a list of texts, not a single str.")
        texts = list(texts)
        folder = self._folder(encoder.fingerprint, kind)
        keys = [text_key(t) for t in texts]
        known = self._load(folder)
        missing: dict[bytes, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in known and key not in missing:
                missing[key] = text
        pending = list(missing.items())
        report = None if progress is None else (lambda n, _: progress(n, len(pending)))
        for start in range(0, len(pending), self.shard_size):
            chunk = pending[start : start + self.shard_size]
            vectors = encode_reporting(
                encoder, [text for _, text in chunk], kind=kind, batch_size=batch_size, progress=report
            )
            vectors = np.ascontiguousarray(vectors, dtype=np.float32)
            self._write_shard(folder, [key for key, _ in chunk], vectors)
            known.update({key: row for (key, _), row in zip(chunk, vectors, strict=True)})
        if not texts:
            return np.asarray(encoder.encode([], kind=kind, batch_size=batch_size), dtype=np.float32)
        return np.stack([known[key] for key in keys]).astype(np.float32, copy=False)

    def lookup(self, encoder: CachableEncoder, texts: Sequence[str], *, kind: str = "passage") -> np.ndarray | None:
        """The cached vectors of `texts` in their order, or None when any is missing; encodes nothing."""
        known = self._load(self._folder(encoder.fingerprint, kind))
        keys = [text_key(t) for t in texts]
        if not keys or any(key not in known for key in keys):
            return None
        return np.stack([known[key] for key in keys]).astype(np.float32, copy=False)

    def put(self, encoder: CachableEncoder, texts: Sequence[str], vectors: np.ndarray, *, kind: str = "passage") -> None:
        """Store vectors encoded elsewhere (one per text, in order), as shards like those it writes itself."""
        if len(texts) != len(vectors):
            raise ClinassayInputError(f"EmbeddingCache.put got {len(vectors)} vectors for {len(texts)} texts.")
        folder = self._folder(encoder.fingerprint, kind)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        for start in range(0, len(texts), self.shard_size):
            chunk = slice(start, start + self.shard_size)
            self._write_shard(folder, [text_key(t) for t in texts[chunk]], vectors[chunk])

    def cached_count(self, encoder: CachableEncoder, *, kind: str = "passage") -> int:
        """How many distinct texts are cached for this encoder and kind."""
        return len(self._load(self._folder(encoder.fingerprint, kind)))

    def _folder(self, fingerprint: str, kind: str) -> Path:
        if not fingerprint or "/" in fingerprint or "/" in kind or fingerprint.startswith("."):
            raise ClinassayInputError(f"Unusable cache key: fingerprint={fingerprint!r}, kind={kind!r}")
        return self.directory / fingerprint / kind

    @staticmethod
    def _load(folder: Path) -> dict[bytes, np.ndarray]:
        known: dict[bytes, np.ndarray] = {}
        if not folder.is_dir():
            return known
        for keys_file in sorted(folder.glob("*.keys.npy")):
            vectors_file = keys_file.with_name(keys_file.name.removesuffix(".keys.npy") + ".npy")
            keys = np.load(keys_file)
            vectors = np.load(vectors_file)
            if len(keys) != len(vectors):
                raise ClinassayInputError(
                    f"Corrupt embedding cache shard {vectors_file}: {len(keys)} keys, {len(vectors)} vectors"
                )
            for key, row in zip(keys.tolist(), vectors, strict=True):
                known.setdefault(key, row)
        return known

    @staticmethod
    def _write_shard(folder: Path, keys: list[bytes], vectors: np.ndarray) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex
        for suffix, array in ((".npy", vectors), (".keys.npy", np.array(keys, dtype="S32"))):
            tmp = folder / f".{name}{suffix}.tmp"
            with tmp.open("wb") as fh:
                np.save(fh, array)
            os.replace(tmp, folder / f"{name}{suffix}")


class DiskCachedEncoder:
    """Wraps an encoder so that code titles/labels ("passage" texts) are encoded once per model and kept
    on disk (retrieval's EmbeddingCache); mentions can be cached too (`queries=True`, for fixed benchmarks).
    It carries the fit check's learned verifier when one is configured (the audit's CorpusFit asks it).
    `progress` (`advance(n, total)`, an `output.Bar`): the texts the cache lacked, encoded; every call's
    missing texts join one running total, so the command shows one bar for all of them."""

    def __init__(self, encoder, directory: Path | None = None, *, queries: bool = False, verifier=None,
                 progress: Advance | None = None) -> None:
        from clinassay.retrieval.models import default_cache_dir

        self.encoder = encoder
        self.name = encoder.name
        self.queries = queries
        self.verifier = verifier
        self.progress = progress
        self.missing = 0  # texts the cache lacked, over every call: the bar's total
        self.cache = EmbeddingCache(directory or default_cache_dir() / "audit-embeddings")

    def __getstate__(self) -> dict:
        """Ray ships the encoder to its actors; the bar stays with the process that draws it."""
        return {**self.__dict__, "progress": None}

    def _reporting(self) -> Advance | None:
        """One cache call's callback: its missing texts are added to the running total once."""
        if self.progress is None:
            return None
        progress, added = self.progress, False

        def advance(n: int, total: int) -> None:
            nonlocal added
            if not added:
                self.missing, added = self.missing + total, True
            progress(n, self.missing)

        return advance

    @property
    def fingerprint(self) -> str:
        return self.encoder.fingerprint

    def encode(self, texts, *, kind="query", batch_size=64, show_progress=False):
        if kind == "passage" or self.queries:
            return self.cache.get_or_encode(self.encoder, list(texts), kind=kind, batch_size=batch_size,
                                            progress=self._reporting())
        return self.encoder.encode(texts, kind=kind, batch_size=batch_size, show_progress=show_progress)

    def encode_cached(self, texts, *, kind="query", batch_size=64):
        """For texts that recur run after run (evaluation sets, references): kept on disk too."""
        return self.cache.get_or_encode(self.encoder, list(texts), kind=kind, batch_size=batch_size,
                                        progress=self._reporting())
