"""The fit check's query adapter: a linear map applied to an encoder's mention vectors before they are
scored against the classification's categories.

Zero-shot me5-small puts the correct category of a CodiEsp dev mention at median rank 23 of 1,918 (MRR
0.30), so a wrong code and a right one look alike to the dense fit. One 384 x 384 matrix, started at the
identity and fitted with a softmax over every category (retrieval/adapter_training.py) on CodiEsp train
mentions and terminology labels in es/pt/fr/it/en, takes that to median rank 0 (MRR 0.60) and lifts
held-out labels in every language. Only the mention side moves: the cached category vectors stay
the encoder's own, and the sibling scores keep the raw vector, which the adapter was not fitted for.

The matrix ships beside fit_model.json (`query_adapter_<encoder>.npz`); a fit variant names the adapter's
digest it was fitted with, so a variant is never used with vectors it was not fitted on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

ADAPTER_DIR = Path(__file__).parent


def adapter_path(encoder_name: str, directory: Path = ADAPTER_DIR) -> Path:
    return directory / f"query_adapter_{encoder_name}.npz"


@dataclass(frozen=True)
class QueryAdapter:
    encoder: str
    matrix: np.ndarray  # (dim, dim): adapted = normalise(vector @ matrix)
    digest: str  # sha256 of the matrix's bytes (float16 as stored): what a fit variant records

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """L2-normalised adapted vectors, one row per input row."""
        adapted = np.asarray(vectors, dtype=np.float32) @ self.matrix
        norms = np.linalg.norm(adapted, axis=1, keepdims=True)
        return adapted / np.maximum(norms, 1e-12)


def _digest(stored: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(stored).tobytes()).hexdigest()[:16]


def make_adapter(encoder_name: str, matrix: np.ndarray) -> QueryAdapter:
    """The adapter as it will be stored (float16), so a variant fitted with it matches the loaded file."""
    stored = np.asarray(matrix, dtype=np.float16)
    return QueryAdapter(encoder=encoder_name, matrix=stored.astype(np.float32), digest=_digest(stored))


def save_query_adapter(adapter: QueryAdapter, directory: Path = ADAPTER_DIR) -> Path:
    path = adapter_path(adapter.encoder, directory)
    np.savez_compressed(path, matrix=adapter.matrix.astype(np.float16), encoder=np.array(adapter.encoder))
    load_query_adapter.cache_clear()
    return path


@lru_cache(maxsize=4)
def load_query_adapter(encoder_name: str, directory: Path = ADAPTER_DIR) -> QueryAdapter | None:
    """The shipped adapter for this encoder, or None when none was fitted for it."""
    path = adapter_path(encoder_name, directory)
    if not path.is_file():
        return None
    with np.load(path) as data:
        stored = data["matrix"]
        return QueryAdapter(encoder=str(data["encoder"]), matrix=stored.astype(np.float32), digest=_digest(stored))
