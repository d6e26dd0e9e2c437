"""The fit check's query adapter: linear maps applied to an encoder's mention vectors before they are
scored against the classification, one for the categories and one for the members of a category.

Zero-shot me5-small puts the correct category of a CodiEsp dev mention at median rank 21 of 1,918 (MRR
0.30) and the correct code first among its category's members for 47 % of mentions, so a wrong code
and a right one look alike to the dense fit. Each map is a 384 x 384 matrix started at the identity and
fitted with a softmax over the candidates the audit compares (retrieval/adapter_training.py): every
category, on CodiEsp train mentions and terminology texts in es/pt/fr/it/en (dev: MRR 0.70, median rank
0; texts of codes it never saw rise in every language); the members of the gold category, on CodiEsp train
mentions and es/en terminology texts (dev: first for 77 %; `python bench/query_adapter_rank.py`). Only the mention side moves: the cached code vectors stay the
encoder's own.

The matrices ship beside fit_model.json (`query_adapter_<encoder>.npz`); a fit variant names the digest
of the adapter it was fitted with, so a variant is never used with vectors it was not fitted on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

ADAPTER_DIR = Path(__file__).parent
Side = Literal["category", "member"]


def adapter_path(encoder_name: str, directory: Path = ADAPTER_DIR) -> Path:
    return directory / f"query_adapter_{encoder_name}.npz"


@dataclass(frozen=True)
class QueryAdapter:
    encoder: str
    category: np.ndarray  # (dim, dim): adapted = normalise(vector @ matrix)
    member: np.ndarray | None  # None: members are scored with the raw vector
    digest: str  # sha256 of the matrices as stored (float16): what a fit variant records

    def apply(self, vectors: np.ndarray, side: Side = "category") -> np.ndarray:
        """L2-normalised adapted vectors, one row per input row (the raw rows for a side without a map)."""
        matrix = self.category if side == "category" else self.member
        if matrix is None:
            return np.asarray(vectors, dtype=np.float32)
        adapted = np.asarray(vectors, dtype=np.float32) @ matrix
        norms = np.linalg.norm(adapted, axis=1, keepdims=True)
        return adapted / np.maximum(norms, 1e-12)


def _stored(matrix: np.ndarray | None) -> np.ndarray | None:
    return None if matrix is None else np.asarray(matrix, dtype=np.float16)


def _adapter(encoder_name: str, category: np.ndarray, member: np.ndarray | None) -> QueryAdapter:
    digest = hashlib.sha256()
    for matrix in (category, member):
        digest.update(b"-" if matrix is None else np.ascontiguousarray(matrix).tobytes())
    return QueryAdapter(encoder=encoder_name, category=category.astype(np.float32),
                        member=None if member is None else member.astype(np.float32), digest=digest.hexdigest()[:16])


def make_adapter(encoder_name: str, category: np.ndarray, member: np.ndarray | None = None) -> QueryAdapter:
    """The adapter as it will be stored (float16), so a variant fitted with it matches the loaded file."""
    return _adapter(encoder_name, _stored(category), _stored(member))  # type: ignore[arg-type]


def save_query_adapter(adapter: QueryAdapter, directory: Path = ADAPTER_DIR) -> Path:
    path = adapter_path(adapter.encoder, directory)
    arrays = {"category": _stored(adapter.category), "encoder": np.array(adapter.encoder)}
    if adapter.member is not None:
        arrays["member"] = _stored(adapter.member)
    np.savez_compressed(path, **arrays)
    load_query_adapter.cache_clear()
    return path


@lru_cache(maxsize=4)
def load_query_adapter(encoder_name: str, directory: Path = ADAPTER_DIR) -> QueryAdapter | None:
    """The shipped adapter for this encoder, or None when none was fitted for it."""
    path = adapter_path(encoder_name, directory)
    if not path.is_file():
        return None
    with np.load(path) as data:
        member = data["member"] if "member" in data.files else None
        return _adapter(str(data["encoder"]), data["category"], member)
