"""Shared fakes for the retrieval tests (no tests here): a deterministic character-trigram encoder with the
`Encoder` interface, so most retrieval tests run in milliseconds without torch (their 16-code terminology
is conftest's `labelled_terminology`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data" / "retrieval"


class FakeEncoder:
    """Hashed character trigrams, L2-normalised: similar strings get similar vectors."""

    def __init__(self, dimension: int = 256) -> None:
        self.name = "fake-trigram"
        self.dimension = dimension
        self.fingerprint = f"fake-trigram-{dimension}"

    def encode(self, texts, *, kind: str = "query", batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            padded = f"  {text.casefold()}  "
            for i in range(len(padded) - 2):
                bucket = int(hashlib.md5(padded[i : i + 3].encode()).hexdigest()[:8], 16) % self.dimension
                out[row, bucket] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)


def evaluation(stages: dict, distinct: dict | None = None):
    """An `Evaluation` (what `evaluate` returns, metrics.json without its hashes) from stage figures as
    `ranking_metrics` computes them, with the coverage they imply; `distinct` None: an older file."""
    from clinassay.retrieval.metrics_file import Evaluation

    items = stages["biencoder"]["overall"]["n"]
    data = {"stages": stages, "coverage": {"items": items, "gold_not_in_corpus": 0}}
    if distinct is not None:
        data["distinct"] = {"items": distinct["biencoder"]["overall"]["n"], "stages": distinct}
        data["coverage"]["distinct_items"] = data["distinct"]["items"]
    return Evaluation.model_validate(data)
