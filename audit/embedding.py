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


class CodeVectors:
    """Embeddings of code titles/labels, computed only for the codes a chunk needs, then cached.

    Text per (code, language): the terminology's exact label in that language, else the English title.
    """

    def __init__(self, terminology, encoder: Encoder, *, batch_size: int = 64) -> None:
        self.terminology = terminology
        self.encoder = encoder
        self.batch_size = batch_size
        self._cache: dict[tuple[str, str], np.ndarray] = {}
        self.encoded = 0

    def text(self, code: str, language: str) -> str:
        entry = self.terminology.find(code)
        title = entry.title if entry is not None else code
        if language != "en":
            label = self.terminology.label(code, language)
            if label is not None and getattr(label, "precision", "exact") == "exact" and label.text:
                return label.text
        return title

    def vectors(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], np.ndarray]:
        missing = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if missing:
            texts = [self.text(code, lang) for code, lang in missing]
            vecs = np.asarray(self.encoder.encode(texts, kind="passage", batch_size=self.batch_size), dtype=np.float32)
            self.encoded += len(missing)
            for key, vec in zip(missing, vecs):
                self._cache[key] = vec
        return {k: self._cache[k] for k in keys}
