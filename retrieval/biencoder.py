"""Stage 1: fine-tune the bi-encoder with sentence-transformers' own trainer.

`SentenceTransformerTrainer` + MultipleNegativesRankingLoss (or its cached variant) over
(mention, gold title, hard negatives...) rows, a no-duplicates batch sampler so in-batch negatives
are real negatives, dev MRR@10 from `InformationRetrievalEvaluator` on codes held out of training,
checkpoints, early stopping on that MRR, and seeds.

Two ways to adapt the model (`biencoder.document_side`):
- "frozen" (default): the code side keeps the base model; only the mention (query) side learns.
  The model is a sentence-transformers `Router` with a trainable query route and the frozen base as
  the document route, so the corpus index is the base model's, encoded once and cached, and a
  retrained model never re-encodes the ~76k-code corpus (about 15-45 minutes on 2 cores). The whole
  Router is saved (both routes, the base's prompts): `SentenceTransformer(MODEL_DIR/biencoder)`
  encodes queries (`encode_query`) and codes (`encode_document`) as clinassay does, with no base
  model needed from the user's cache (the folder holds the base's weights twice, once per route).
- "trained": both sides share weights and learn together (the textbook recipe); the corpus is
  re-encoded with the trained model.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.base.modules import Router
from sentence_transformers.base.sampler import BatchSamplers
from sentence_transformers.sentence_transformer import losses
from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
from transformers import EarlyStoppingCallback, PrinterCallback, TrainerCallback

from clinassay.retrieval.progress import Advance, encode_reporting
from clinassay.terminology.errors import ClinassayInputError

DEV_METRIC = "dev_cosine_mrr@10"


def set_threads() -> None:
    """`CLINASSAY_THREADS=N` pins torch to N threads (on a busy shared machine, 1 thread ran batch
    encoding 2x faster than 2: extra threads spin-wait); by default torch's own choice."""
    from clinassay.retrieval.index import apply_thread_setting

    apply_thread_setting()


def training_placement(device: str = "auto", precision: str = "auto", report_to: Sequence[str] = ("none",)) -> dict:
    """The TrainingArguments that decide where and how both trainers run (`[retrieval] device`,
    `precision`, `report_to`), resolved once so that a GPU is used when present and a missing one or
    a logging integration that is not installed fails before any training, not after mining.
    Returns `{"device", "use_cpu", "bf16", "fp16", "report_to"}`; "device" is not an argument."""
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK, get_available_reporting_integrations

    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        raise ClinassayInputError("[retrieval] device = 'cuda' but torch sees no CUDA GPU: use 'auto' or 'cpu'")
    resolved = "cuda" if device == "cuda" or (device == "auto" and has_cuda) else "cpu"
    if precision == "auto":
        from clinassay.retrieval.models import native_bf16

        if resolved == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "bf16" if native_bf16("cpu") else "fp32"
    if precision == "fp16" and resolved == "cpu":
        raise ClinassayInputError("[retrieval] precision = 'fp16' needs a CUDA GPU: use 'bf16' or 'fp32' on CPU")
    names = list(report_to) or ["none"]
    if names not in (["none"], ["all"]):
        unknown = [n for n in names if n not in INTEGRATION_TO_CALLBACK]
        if unknown:
            raise ClinassayInputError(
                f"[retrieval] report_to: unknown integration(s) {unknown}; transformers knows "
                f"{', '.join(sorted(INTEGRATION_TO_CALLBACK))}, plus 'none' and 'all'"
            )
        available = set(get_available_reporting_integrations())
        missing = [n for n in names if n not in available]
        if missing:
            raise ClinassayInputError(
                f"[retrieval] report_to: {', '.join(missing)} not installed in this environment "
                f"(pip install {' '.join(missing)})"
            )
    return {
        "device": resolved,
        "use_cpu": resolved == "cpu",
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "report_to": names[0] if names in (["none"], ["all"]) else names,
    }


def placement_arguments(placement: dict) -> dict:
    """The part of a placement that TrainingArguments take (both trainers)."""
    return {k: v for k, v in placement.items() if k != "device"}


def describe_placement(placement: dict) -> str:
    precision = "bf16" if placement["bf16"] else "fp16" if placement["fp16"] else "fp32"
    report = placement["report_to"]
    logging = "no logging integration" if report == "none" else f"reporting to {report if isinstance(report, str) else ', '.join(report)}"
    return f"{placement['device']}, {precision}, {logging}"


def keep_logs(out_dir: Path) -> None:
    """The trainer writes TensorBoard event files under checkpoints/runs; keep them as `runs/` beside
    the model (where the Hugging Face Hub looks for them) before the checkpoints are dropped."""
    import shutil

    logs = out_dir / "checkpoints" / "runs"
    if logs.is_dir():
        target = out_dir / "runs"
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(str(logs), str(target))


def freeze_token_embeddings(model: SentenceTransformer) -> int:
    """Freeze every word-embedding matrix (250k x 384 in me5-small): the optimizer step over it is
    most of a CPU training step. Returns the number of frozen parameters."""
    frozen = 0
    for name, parameter in model.named_parameters():
        if "word_embeddings" in name and parameter.requires_grad:
            parameter.requires_grad = False
            frozen += parameter.numel()
    return frozen


def _prompts(base: SentenceTransformer) -> tuple[str, str]:
    prompts = base.prompts or {}
    return prompts.get("query", ""), prompts.get("passage", prompts.get("document", ""))


def asymmetric_model(base: SentenceTransformer) -> tuple[SentenceTransformer, list]:
    """A Router model: a trainable copy of `base` for queries, `base` itself (frozen) for documents.
    Returns the model and the query route's modules. `default_route="query"`: a plain `encode`
    embeds mentions, as models saved before the Router was kept whole did."""
    query_modules = [copy.deepcopy(module) for module in base]
    document_modules = list(base)
    for module in document_modules:
        for parameter in module.parameters():
            parameter.requires_grad = False
    router = Router.for_query_document(query_modules=query_modules, document_modules=document_modules, default_route="query")
    model = SentenceTransformer(modules=[router], device=str(base.device), similarity_fn_name=base.similarity_fn_name)
    model.prompts = dict(base.prompts or {})
    return model, query_modules


class ProgressCallback(TrainerCallback):
    """One plain line per logging step, for terminals and logs (no progress bars in CI logs)."""

    def __init__(self, log: Callable[[str], None], stage: str) -> None:
        self.log, self.stage = log, stage

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs:
            shown = {k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in logs.items() if k != "total_flos"}
            self.log(f"[{self.stage}] step {state.global_step}/{state.max_steps} {shown}")


class StepProgress(TrainerCallback):
    """Optimizer steps to a progress callback (retrieval.progress's `advance(n, total)`): clinassay
    draws one bar per trainer; the trainer's own tqdm bar stays off (`disable_tqdm=True`). When early
    stopping ends training before `max_steps`, the total becomes the steps taken."""

    def __init__(self, advance: Advance) -> None:
        self.advance = advance
        self.done = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.done = state.global_step
        self.advance(0, state.max_steps)

    def on_step_end(self, args, state, control, **kwargs):
        self.advance(state.global_step - self.done, state.max_steps)
        self.done = state.global_step

    def on_train_end(self, args, state, control, **kwargs):
        if state.global_step < state.max_steps:
            self.advance(0, state.global_step)


def dev_evaluator(
    dev_mentions: Sequence[str], dev_codes: Sequence[str], corpus_docs: dict[str, str], *, prompts: dict[str, str] | None = None
) -> InformationRetrievalEvaluator | None:
    """MRR@10 of held-out codes' mentions over a small corpus (dev codes and their neighbours)."""
    if not dev_mentions:
        return None
    queries = {f"q{i}": m for i, m in enumerate(dev_mentions)}
    relevant = {f"q{i}": {code} for i, code in enumerate(dev_codes)}
    return InformationRetrievalEvaluator(
        queries=queries, corpus=corpus_docs, relevant_docs=relevant, name="dev",
        mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1, 5, 10], precision_recall_at_k=[5, 10], map_at_k=[10],
        show_progress_bar=False, batch_size=64,
        query_prompt=(prompts or {}).get("query") or None, corpus_prompt=(prompts or {}).get("passage") or None,
    )


def train_biencoder(
    base: SentenceTransformer,
    rows: list[dict[str, str]],
    *,
    out_dir: Path,
    config,
    seed: int,
    evaluator: InformationRetrievalEvaluator | None = None,
    log: Callable[[str], None] = print,
    bare: bool = False,
    placement: dict | None = None,
    progress: Advance | None = None,
) -> dict:
    """Train and save to `out_dir`; returns the training metrics (steps/s, dev MRR...).
    `bare=True` runs the same trainer without our callbacks, evaluator or checkpoints (benchmarks).
    `placement` comes from `training_placement` (default: auto device, auto precision, no logging).
    `progress` (retrieval.progress) is told the steps trained, through `StepProgress`."""
    from datasets import Dataset

    set_threads()
    placement = placement or training_placement()
    torch.manual_seed(seed)
    np.random.seed(seed)
    frozen_docs = config.document_side == "frozen"
    if frozen_docs:
        model, query_modules = asymmetric_model(base)
    else:
        model, query_modules = base, None
    for module in (query_modules or list(model)):
        if hasattr(module, "max_seq_length"):
            module.max_seq_length = config.max_seq_length
    frozen = freeze_token_embeddings(model) if config.freeze_embeddings else 0
    if frozen:
        log(f"[biencoder] froze {frozen:,} token-embedding parameters")
    query_prompt, passage_prompt = _prompts(base)
    columns = list(rows[0].keys())
    dataset = Dataset.from_list(rows)
    prompts = {c: (query_prompt if c == "anchor" else passage_prompt) for c in columns} if (query_prompt or passage_prompt) else None
    router_mapping = {c: ("query" if c == "anchor" else "document") for c in columns} if frozen_docs else None
    if config.loss == "cached_mnrl":
        loss = losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=config.mini_batch_size)
    else:
        loss = losses.MultipleNegativesRankingLoss(model)
    use_eval = evaluator is not None and not bare
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out_dir / "checkpoints"),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_ratio,  # a float below 1 is a ratio (transformers v5)
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        prompts=prompts,
        router_mapping=router_mapping or {},
        seed=seed,
        data_seed=seed,
        eval_strategy="steps" if use_eval else "no",
        eval_steps=config.eval_steps if use_eval else None,
        save_strategy="steps" if use_eval else "no",
        save_steps=config.eval_steps,
        save_total_limit=config.save_total_limit,
        load_best_model_at_end=use_eval,
        metric_for_best_model=f"eval_{DEV_METRIC}" if use_eval else None,
        greater_is_better=True,
        logging_steps=max(1, min(config.eval_steps, 10)),
        disable_tqdm=True,
        dataloader_drop_last=len(dataset) > config.batch_size,
        **placement_arguments(placement),
    )
    callbacks = []
    if not bare:
        callbacks.append(ProgressCallback(log, "biencoder"))
        if use_eval and config.early_stopping_patience > 0:
            callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    if progress is not None:
        callbacks.append(StepProgress(progress))
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=dataset, loss=loss,
        evaluator=evaluator if use_eval else None, callbacks=callbacks,
    )
    if not bare:
        trainer.remove_callback(PrinterCallback)  # our ProgressCallback prints the same, once
    result = trainer.train()
    if result.global_step == 0:
        raise ClinassayInputError(
            f"stage 1 made no training step: {len(dataset)} rows cannot fill a batch of {config.batch_size} "
            "without duplicate texts; lower biencoder.batch_size or add data"
        )
    metrics = dict(result.metrics)
    metrics["global_step"] = result.global_step
    if evaluator is not None and not bare:
        final = evaluator(model)
        metrics["dev"] = {k.replace("dev_cosine_", ""): round(float(v), 6) for k, v in final.items() if "cosine" in k}
        metrics["best_dev_mrr@10"] = trainer.state.best_metric
    if not bare:
        model.save(str(out_dir))  # frozen: the whole Router, both routes
        keep_logs(out_dir)
        _drop_checkpoints(out_dir)
    return metrics


def _drop_checkpoints(out_dir: Path) -> None:
    import shutil

    shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)


def mine_with_index(encoder, mentions: Sequence[str], index, *, top_k: int, batch_size: int = 64,
                    progress: Advance | None = None) -> list[list[str]]:
    """The base model's nearest codes for each mention: clinically plausible hard negatives.
    `progress` (retrieval.progress): mentions encoded."""
    if not mentions:
        return []
    vectors = encode_reporting(encoder, mentions, kind="query", batch_size=batch_size, progress=progress)
    return [[code for code, _ in row] for row in index.search(vectors, top_k)]
