"""The offline encoders are ordinary sentence-transformers models: the trainer can fine-tune them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clinassay.retrieval.models import load_encoder

PAIRS = {
    "anchor": [
        "query: dolor de cabeza", "query: fractura de fémur", "query: infección urinaria", "query: tos seca",
    ],
    "positive": [
        "passage: Headache", "passage: Fracture of femur", "passage: Urinary tract infection", "passage: Cough",
    ],
}


def _train_two_steps(name: str, output_dir: Path) -> tuple[np.ndarray, np.ndarray, object, object]:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    encoder = load_encoder(name, device="cpu")
    model = encoder.sentence_transformer()
    before = model.encode(PAIRS["anchor"][:1], normalize_embeddings=True)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(output_dir),
        max_steps=2,
        per_device_train_batch_size=4,
        learning_rate=5e-5,
        save_strategy="no",
        report_to=[],
        logging_steps=1,
        use_cpu=True,
        seed=0,
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=Dataset.from_dict(PAIRS), loss=MultipleNegativesRankingLoss(model)
    )
    result = trainer.train()
    after = model.encode(PAIRS["anchor"][:1], normalize_embeddings=True)
    return before, after, result, model


def _check_trained(name: str, tmp_path: Path) -> object:
    before, after, result, model = _train_two_steps(name, tmp_path / "out")
    assert result.global_step == 2
    assert np.isfinite(result.training_loss)
    assert not np.allclose(before, after)  # the weights moved
    return model


def test_minilm_fine_tunes(tmp_path: Path) -> None:
    _check_trained("minilm-en", tmp_path)


@pytest.mark.slow
def test_me5_small_fine_tunes_and_reloads_by_path(tmp_path: Path) -> None:
    model = _check_trained("me5-small", tmp_path)
    # The fine-tuned model saves as a plain directory that load_encoder accepts by path.
    saved = tmp_path / "saved"
    model.save(str(saved))  # type: ignore[attr-defined]
    reloaded = load_encoder(str(saved), device="cpu")
    assert reloaded.prompts == {"query": "query: ", "passage": "passage: "}
    assert reloaded.fingerprint != load_encoder("me5-small").fingerprint
    expected = model.encode(["query: tos"], normalize_embeddings=True)  # type: ignore[attr-defined]
    np.testing.assert_allclose(reloaded.encode(["tos"], kind="query"), expected, atol=1e-5)
