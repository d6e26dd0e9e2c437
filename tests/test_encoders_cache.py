"""The on-disk embedding cache: encode once per (model, kind, text), resume, keep order."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from clinassay.retrieval.encoder_cache import EmbeddingCache
from clinassay.terminology.errors import ClinassayInputError


class CountingEncoder:
    """Deterministic fake: a text's vector depends on the text, the kind and the model's seed."""

    def __init__(self, fingerprint: str = "fake-a", seed: int = 0) -> None:
        self.fingerprint = fingerprint
        self.seed = seed
        self.seen: list[str] = []

    def encode(
        self, texts: Sequence[str], *, kind: str = "query", batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        self.seen.extend(texts)
        rows = []
        for text in texts:
            seed = hashlib.sha256(f"{text}\0{kind}\0{self.seed}".encode()).digest()
            rng = np.random.default_rng(int.from_bytes(seed[:8], "little"))
            v = rng.normal(size=8).astype(np.float32)
            rows.append(v / np.linalg.norm(v))
        return np.array(rows, dtype=np.float32).reshape(len(texts), 8)


def test_second_call_encodes_nothing(tmp_path: Path) -> None:
    cache, enc = EmbeddingCache(tmp_path), CountingEncoder()
    first = cache.get_or_encode(enc, ["a", "b", "c"], kind="passage")
    assert enc.seen == ["a", "b", "c"]
    again = EmbeddingCache(tmp_path).get_or_encode(enc, ["c", "a", "b"], kind="passage")
    assert enc.seen == ["a", "b", "c"]
    np.testing.assert_array_equal(again, first[[2, 0, 1]])
    assert again.dtype == np.float32


def test_only_new_texts_are_encoded_and_duplicates_once(tmp_path: Path) -> None:
    cache, enc = EmbeddingCache(tmp_path), CountingEncoder()
    cache.get_or_encode(enc, ["a", "b"])
    out = cache.get_or_encode(enc, ["b", "d", "d", "a", "e"])
    assert enc.seen == ["a", "b", "d", "e"]
    np.testing.assert_array_equal(out[1], out[2])
    np.testing.assert_array_equal(out, enc.encode(["b", "d", "d", "a", "e"], kind="passage"))
    assert cache.cached_count(enc) == 4


def test_kind_and_model_are_separate_keys(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    a, b = CountingEncoder("model-a", seed=1), CountingEncoder("model-b", seed=2)
    q = cache.get_or_encode(a, ["x"], kind="query")
    p = cache.get_or_encode(a, ["x"], kind="passage")
    other = cache.get_or_encode(b, ["x"], kind="query")
    assert a.seen == ["x", "x"] and b.seen == ["x"]
    assert not np.allclose(q, p) and not np.allclose(q, other)


def test_shards_are_written_as_they_complete(tmp_path: Path) -> None:
    class FailsOnThirdChunk(CountingEncoder):
        calls = 0

        def encode(self, texts, **kw):  # type: ignore[no-untyped-def]
            self.calls += 1
            if self.calls == 3:
                raise RuntimeError("interrupted")
            return super().encode(texts, **kw)

    texts = [f"t{i}" for i in range(10)]
    flaky = FailsOnThirdChunk()
    with pytest.raises(RuntimeError, match="interrupted"):
        EmbeddingCache(tmp_path, shard_size=4).get_or_encode(flaky, texts)
    assert EmbeddingCache(tmp_path).cached_count(flaky) == 8
    resumed = CountingEncoder()
    out = EmbeddingCache(tmp_path, shard_size=4).get_or_encode(resumed, texts)
    assert resumed.seen == ["t8", "t9"]
    assert out.shape == (10, 8)
    assert not list(tmp_path.rglob("*.tmp"))


def test_empty_input_and_bad_arguments(tmp_path: Path) -> None:
    cache, enc = EmbeddingCache(tmp_path), CountingEncoder()
    assert cache.get_or_encode(enc, []).shape == (0, 8)
    with pytest.raises(ClinassayInputError, match="not a single str"):
        cache.get_or_encode(enc, "abc")
    with pytest.raises(ClinassayInputError, match="shard_size"):
        EmbeddingCache(tmp_path, shard_size=0)


def test_works_with_the_real_encoder(tmp_path: Path) -> None:
    from clinassay.retrieval.models import load_encoder

    enc = load_encoder("minilm-en", device="cpu")
    cache = EmbeddingCache(tmp_path)
    out = cache.get_or_encode(enc, ["chest pain", "headache"], kind="passage")
    np.testing.assert_allclose(out, enc.encode(["chest pain", "headache"], kind="passage"), atol=1e-6)
    assert (tmp_path / enc.fingerprint / "passage").is_dir()
