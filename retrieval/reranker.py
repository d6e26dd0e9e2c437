"""Stage 2: a cross-encoder that reads (mention, code document) together and reorders stage 1's
shortlist. Trained with sentence-transformers' `CrossEncoderTrainer` on listwise groups: the gold
code against k hard negatives (the generator's confusable codes, then stage 1's top candidates),
MultipleNegativesRankingLoss over each group. Same backbone as stage 1 by default."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from sentence_transformers.base.sampler import BatchSamplers
from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
from sentence_transformers.cross_encoder import losses

from transformers import PrinterCallback

from retrieval.trainer import ProgressCallback, set_threads


def transformer_dir(model_path: str | Path) -> str:
    """The Hugging Face transformer inside a sentence-transformers directory (a cross-encoder is
    built from the backbone, with a fresh one-logit head)."""
    path = Path(model_path)
    has_weights = (path / "model.safetensors").exists() or (path / "pytorch_model.bin").exists()
    if (path / "config.json").is_file() and has_weights:
        return str(path)
    modules_file = path / "modules.json"
    if modules_file.is_file():
        for module in json.loads(modules_file.read_text()):
            if module.get("type", "").endswith("Transformer") and (path / module.get("path", "")).is_dir():
                return str(path / module["path"])
    return str(model_path)


def train_reranker(
    backbone: str | Path,
    groups: list[dict[str, str]],
    *,
    out_dir: Path,
    config,
    seed: int,
    log: Callable[[str], None] = print,
) -> dict:
    from datasets import Dataset

    set_threads()
    torch.manual_seed(seed)
    np.random.seed(seed)
    model = CrossEncoder(transformer_dir(backbone), num_labels=1, max_length=config.max_seq_length, device="cpu")
    dataset = Dataset.from_list(groups)
    loss = losses.MultipleNegativesRankingLoss(model, num_negatives=1)
    args = CrossEncoderTrainingArguments(
        output_dir=str(out_dir / "checkpoints"),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=0.1,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        seed=seed,
        data_seed=seed,
        save_strategy="no",
        logging_steps=10,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
    )
    trainer = CrossEncoderTrainer(
        model=model, args=args, train_dataset=dataset, loss=loss, callbacks=[ProgressCallback(log, "reranker")]
    )
    trainer.remove_callback(PrinterCallback)
    result = trainer.train()
    model.save(str(out_dir))
    import shutil

    shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
    metrics = dict(result.metrics)
    metrics["global_step"] = result.global_step
    return metrics


def load_reranker(path: str | Path) -> CrossEncoder:
    set_threads()
    return CrossEncoder(str(path), device="cpu")


def rerank_candidates(
    model: CrossEncoder,
    mentions: Sequence[str],
    candidates: Sequence[Sequence[tuple[str, float]]],
    *,
    corpus,
    languages: Sequence[str],
    batch_size: int = 64,
) -> list[list[tuple[str, float]]]:
    """Score every (mention, candidate document) pair in one batch and sort each shortlist."""
    pairs, owners = [], []
    for i, (mention, row) in enumerate(zip(mentions, candidates)):
        for code, _ in row:
            pairs.append((mention, corpus.document(code, languages[i])))
            owners.append(i)
    if not pairs:
        return [[] for _ in mentions]
    scores = model.predict(pairs, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True)
    out: list[list[tuple[str, float]]] = [[] for _ in mentions]
    position = 0
    for i, row in enumerate(candidates):
        scored = [(code, float(scores[position + j])) for j, (code, _) in enumerate(row)]
        position += len(row)
        out[i] = sorted(scored, key=lambda item: -item[1])
    return out
