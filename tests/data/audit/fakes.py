"""Test doubles for the audit: a deterministic encoder (character trigram hashing) that needs no model.
Aliases let a test declare two texts "the same meaning" (e.g. a translation)."""

from __future__ import annotations

import hashlib
import unicodedata

import numpy as np


class FakeEncoder:
    name = "fake-trigram"
    dimension = 256
    fingerprint = "fake-trigram-256"

    def __init__(self, aliases: dict[str, str] | None = None) -> None:
        self.aliases = {self._norm(k): v for k, v in (aliases or {}).items()}
        self.calls = 0
        self.texts = 0

    @staticmethod
    def _norm(text: str) -> str:
        text = unicodedata.normalize("NFKD", text.casefold())
        return "".join(c for c in text if not unicodedata.combining(c)).strip()

    def _vector(self, text: str) -> np.ndarray:
        text = self.aliases.get(self._norm(text), text)
        text = f"  {self._norm(text)}  "
        vec = np.zeros(self.dimension, dtype=np.float32)
        for i in range(len(text) - 2):
            h = int.from_bytes(hashlib.blake2b(text[i:i + 3].encode(), digest_size=4).digest(), "little")
            vec[h % self.dimension] += 1.0
        norm = np.linalg.norm(vec)
        return vec / norm if norm else vec

    def encode(self, texts, *, kind="query", batch_size=64, show_progress=False) -> np.ndarray:
        self.calls += 1
        self.texts += len(texts)
        return np.stack([self._vector(t) for t in texts]) if len(texts) else np.zeros((0, self.dimension), np.float32)
