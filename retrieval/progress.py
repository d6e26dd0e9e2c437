"""How retrieval reports progress without knowing who draws it: the CLI passes its bars
(clinassay/output.py) in as callbacks; retrieval never imports them (the data flows the other way).

- `Advance`: `advance(n, total)`, n more done of a stage whose total is `total`. The total comes with
  every call because only the stage knows it (the texts a cache lacks, a trainer's steps); it may
  change, as when early stopping ends training before its last step. The n of one stage add up to its
  last total.
- `Stages`: `stages(description, unit)`, a context manager yielding one stage's `Advance`; a call with
  several stages (`train_model`: encode, train, encode...) opens one per stage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np

Advance = Callable[[int, int], None]
Stages = Callable[[str, str], AbstractContextManager[Advance]]

TEXTS_PER_REPORT = 16
"""Batches encoded between two reports of `encode_reporting` (1,024 texts at the default batch of 64)."""


def stage(stages: Stages | None, description: str, unit: str) -> AbstractContextManager[Advance | None]:
    """One stage of `stages`, or a stage that reports nowhere (yields None) when there are none."""
    return stages(description, unit) if stages is not None else nullcontext(None)


def encode_reporting(encoder: Any, texts: Sequence[str], *, kind: str, batch_size: int = 64,
                     progress: Advance | None = None) -> np.ndarray:
    """`encoder.encode(texts, kind=, batch_size=)` in chunks of `TEXTS_PER_REPORT` batches, calling
    `progress(len(chunk), len(texts))` after each. Texts go longest first (as sentence-transformers
    orders a batch, so chunks pad little) and the vectors come back in the order of `texts`; the
    chunks are the same with or without `progress`, so the vectors do not depend on the verbosity."""
    texts = list(texts)
    if not texts:
        return np.asarray(encoder.encode([], kind=kind, batch_size=batch_size), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    size = max(1, batch_size) * TEXTS_PER_REPORT
    out: np.ndarray | None = None
    for start in range(0, len(order), size):
        chunk = order[start:start + size]
        vectors = np.asarray(encoder.encode([texts[i] for i in chunk], kind=kind, batch_size=batch_size),
                             dtype=np.float32)
        if out is None:
            out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
        out[chunk] = vectors
        if progress is not None:
            progress(len(chunk), len(texts))
    assert out is not None
    return out
