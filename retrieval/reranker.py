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

from clinassay.retrieval.progress import Advance
from clinassay.retrieval.biencoder import (ProgressCallback, StepProgress, freeze_token_embeddings, keep_logs,
                                           placement_arguments, set_threads, training_placement)


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
    placement: dict | None = None,
    progress: Advance | None = None,
) -> dict:
    """Train and save to `out_dir`; returns the training metrics. `progress` (retrieval.progress) is
    told the steps trained, through `StepProgress`."""
    from datasets import Dataset

    set_threads()
    placement = placement or training_placement()
    torch.manual_seed(seed)
    np.random.seed(seed)
    model = CrossEncoder(transformer_dir(backbone), num_labels=1, max_length=config.max_seq_length,
                        device=placement["device"])
    if config.freeze_embeddings:
        log(f"[reranker] froze {freeze_token_embeddings(model):,} token-embedding parameters")
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
        disable_tqdm=True,
        **placement_arguments(placement),
    )
    callbacks = [ProgressCallback(log, "reranker")] + ([StepProgress(progress)] if progress is not None else [])
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=dataset, loss=loss, callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)
    result = trainer.train()
    model.save(str(out_dir))
    keep_logs(out_dir)
    import shutil

    shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
    metrics = dict(result.metrics)
    metrics["global_step"] = result.global_step
    return metrics


FUSION_FILE = "fusion.json"
FUSION_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def load_reranker(path: str | Path) -> CrossEncoder:
    set_threads()
    return CrossEncoder(str(path), device="cpu")


def load_fusion_weight(path: str | Path) -> float:
    """The reranker's share of the final score, fitted at training time (1.0, the reranker alone, for
    models trained before fusion existed)."""
    file = Path(path) / FUSION_FILE
    if not file.is_file():
        return 1.0
    return float(json.loads(file.read_text(encoding="utf-8"))["weight"])


def rerank_candidates(
    model: CrossEncoder,
    mentions: Sequence[str],
    candidates: Sequence[Sequence[tuple[str, float]]],
    *,
    corpus,
    languages: Sequence[str],
    batch_size: int = 64,
    fusion_weight: float = 1.0,
) -> list[list[tuple[str, float]]]:
    """Score every (mention, candidate document) pair in one batch and sort each shortlist by
    (1 - w) * stage-1 score + w * reranker score, both standardised within the shortlist."""
    scores = _cross_scores(model, mentions, candidates, corpus=corpus, languages=languages, batch_size=batch_size)
    return [_fused(row, rr, fusion_weight) for row, rr in zip(candidates, scores)]


def fit_fusion_weight(
    model: CrossEncoder,
    mentions: Sequence[str],
    gold: Sequence[str],
    candidates: Sequence[Sequence[tuple[str, float]]],
    *,
    corpus,
    languages: Sequence[str],
    batch_size: int = 64,
) -> dict:
    """The weight of the reranker against stage 1 that ranks the dev split best (MRR@10): a reranker
    trained on a few hundred groups can know less than the bi-encoder it reorders, and the fused score
    keeps what each does well. Ties go to the larger weight."""
    scores = _cross_scores(model, mentions, candidates, corpus=corpus, languages=languages, batch_size=batch_size)
    grid = {}
    for weight in FUSION_GRID:
        total = 0.0
        for row, rr, code in zip(candidates, scores, gold):
            ranked = [c for c, _ in _fused(row, rr, weight)[:10]]
            total += 1.0 / (ranked.index(code) + 1) if code in ranked else 0.0
        grid[weight] = round(total / max(1, len(gold)), 4)
    best = max(grid, key=lambda w: (grid[w], w))
    return {"weight": best, "dev_mrr@10": grid, "dev_queries": len(gold)}


def save_fusion(path: str | Path, fusion: dict) -> None:
    data = {**fusion, "dev_mrr@10": {str(k): v for k, v in fusion["dev_mrr@10"].items()}}
    (Path(path) / FUSION_FILE).write_text(json.dumps(data, indent=2), encoding="utf-8")


def _cross_scores(model, mentions, candidates, *, corpus, languages, batch_size) -> list[np.ndarray]:
    pairs = []
    for i, (mention, row) in enumerate(zip(mentions, candidates)):
        for code, _ in row:
            pairs.append((mention, corpus.document(code, languages[i])))
    flat = (model.predict(pairs, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True)
            if pairs else np.zeros(0, dtype=np.float32))
    out, position = [], 0
    for row in candidates:
        out.append(np.asarray(flat[position : position + len(row)], dtype=np.float64))
        position += len(row)
    return out


def _fused(row: Sequence[tuple[str, float]], rr: np.ndarray, weight: float) -> list[tuple[str, float]]:
    if not len(row):
        return []
    if weight >= 1.0:
        fused = rr
    else:
        fused = (1.0 - weight) * _standardised(np.array([s for _, s in row], dtype=np.float64)) + weight * _standardised(rr)
    scored = [(code, float(fused[j])) for j, (code, _) in enumerate(row)]
    return sorted(scored, key=lambda item: -item[1])


def _standardised(values: np.ndarray) -> np.ndarray:
    spread = values.std()
    return (values - values.mean()) / spread if spread > 0 else values - values.mean()
