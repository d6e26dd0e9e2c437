"""The encoder the audit needs, as a Protocol: the caller injects one (clinassay's CLI builds
`retrieval.models.load_encoder(...)`; tests use a small fake). audit never imports retrieval."""

from __future__ import annotations

from typing import Literal, Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class Encoder(Protocol):
    name: str

    def encode(
        self,
        texts: Sequence[str],
        *,
        kind: Literal["query", "passage"] = "query",
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> np.ndarray:
        """L2-normalised float32 embeddings, one row per text."""
        ...


def encode_fixed(encoder: Encoder, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
    """Query vectors of texts that come back run after run (evaluation sets, real references): each
    distinct text once, through the encoder's disk cache when it has one (`encode_cached`)."""
    unique = list(dict.fromkeys(texts))
    encode = getattr(encoder, "encode_cached", encoder.encode)
    vectors = np.asarray(encode(unique, kind="query", batch_size=batch_size), dtype=np.float32)
    row = {text: k for k, text in enumerate(unique)}
    return vectors[[row[t] for t in texts]] if len(unique) < len(texts) else vectors
