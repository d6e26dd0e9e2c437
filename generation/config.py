"""The `[generation]` section of the configuration file: what to generate, with which models, for how much."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from clinassay.generation.records import LANGUAGES, Language, Task

EMBEDDED_MODEL = "embedded/gemma-3-270m"
"""The `model` string that selects the bundled offline Gemma 3 270M (no network, no key)."""

TERMINOLOGY_MODEL = "terminology"
"""The `model` string that selects the non-LLM generator writing pairs from real terminology labels."""

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ModelConfig(BaseModel):
    """One `[[generation.models]]` table: a generator, its limits and its price."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="gemma-270m", min_length=1)
    """The label used in provenance and reports."""
    model: str = Field(default=EMBEDDED_MODEL, min_length=1)
    """Any LiteLLM model string (`openai/gpt-4o-mini`, `gemini/gemini-2.5-flash`, `hosted_vllm/...`),
    `embedded/gemma-3-270m` for the bundled offline model, or `terminology` for real labels."""
    api_base: str | None = None
    api_key_env: str | None = None
    """The NAME of the environment variable holding the key; a key itself is never accepted."""
    rpm: int | None = Field(default=None, ge=1)
    max_concurrency: int = Field(default=8, ge=1, le=1024)
    temperature: float = Field(default=0.8, ge=0.0, le=2.0)
    max_tokens: int = Field(default=400, ge=16, le=32_000)
    timeout_s: float = Field(default=60.0, gt=0)
    num_retries: int = Field(default=4, ge=0, le=20)
    fallbacks: list[str] = Field(default_factory=list)
    """Names of other configured models to try when this one keeps failing."""
    structured_output: bool = True
    """Ask for a JSON schema reply (`response_format`) where the provider supports it."""
    input_cost_per_token: float | None = Field(default=None, ge=0)
    output_cost_per_token: float | None = Field(default=None, ge=0)
    """Prices for models LiteLLM does not know (USD per token); they override LiteLLM's price."""
    max_codes: int | None = Field(default=None, ge=1)
    """Generate for only the first N codes of the plan (the sample is round-robin across chapters, so
    its head stays balanced): lets a slow or costly model cover fewer codes than a cheap one."""
    sources: list[Literal["icd10cm", "who", "datasus", "import"]] = Field(
        default_factory=lambda: ["icd10cm", "who", "datasus", "import"]
    )
    """Terminology generator only: which label sources may become pairs."""
    short_forms: bool = False
    """Terminology generator only: also write each label's clinician-style short form ("hematuria" for
    "Hematuria, unspecified"), which teaches the default code of a bare concept (generation/short_forms.py)."""

    @field_validator("api_key_env")
    @classmethod
    def _env_name_only(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(
                "must be the NAME of an environment variable (e.g. OPENAI_API_KEY), not a key; "
                "keys are never read from files"
            )
        return value

    @property
    def kind(self) -> Literal["embedded", "terminology", "litellm"]:
        if self.model == TERMINOLOGY_MODEL or self.model.startswith(TERMINOLOGY_MODEL + ":"):
            return "terminology"
        if self.model.startswith("embedded/"):
            return "embedded"
        return "litellm"


class GenerationConfig(BaseModel):
    """What to generate (codes x languages x models x mentions), and the budget that stops it."""

    model_config = ConfigDict(extra="forbid")

    languages: list[Language] = Field(default_factory=lambda: list(LANGUAGES), min_length=1)
    mentions_per_code: int = Field(default=5, ge=1, le=100)
    """Mentions asked for in each request."""
    max_mentions_per_reply: int = Field(default=50, ge=1, le=10_000)
    """Mentions kept from one reply, at most (a runaway reply of 20,000 mentions must not become
    20,000 pairs); the rest are recorded as one reject. At least `mentions_per_code`."""
    samples_per_code: int = Field(default=1, ge=1, le=100)
    """Independent requests per (code, language, model, task): sample_index 0..n-1 (the terminology
    generator makes one: its labels do not vary)."""
    seed: int = 0
    tasks: list[Task] = Field(default_factory=lambda: ["positive"], min_length=1)
    codes_file: Path | None = None
    """One code per line ('#' comments allowed); when unset, `sample` codes are drawn across chapters."""
    sample: int = Field(default=50, ge=1, le=1_000_000)
    billable_only: bool = True
    chapters: list[str] | None = None
    """Restrict the stratified sample to these ICD-10 chapters (e.g. ["10", "14"]); all when unset."""
    models: list[ModelConfig] = Field(default_factory=lambda: [ModelConfig()], min_length=1)
    max_cost_usd: float | None = Field(default=None, ge=0)
    max_requests: int | None = Field(default=None, ge=0)
    progress: bool = True
    processes: int = Field(default=1, ge=1, le=64)
    """Worker processes for LLM requests. LiteLLM costs a few ms of CPU per request, so one process
    tops out at a few hundred requests/s; more processes (on more cores) go past that."""

    @field_validator("languages", "tasks")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _names_and_fallbacks(self) -> "GenerationConfig":
        if self.max_mentions_per_reply < self.mentions_per_code:
            raise ValueError(f"max_mentions_per_reply ({self.max_mentions_per_reply}) is below mentions_per_code "
                             f"({self.mentions_per_code}): raise it, or every full reply loses mentions")
        names = [m.name for m in self.models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"model names must be unique; repeated: {dupes}")
        for m in self.models:
            unknown = [f for f in m.fallbacks if f not in names or f == m.name]
            if unknown:
                raise ValueError(f"model '{m.name}': fallbacks {unknown} are not other configured model names")
        return self
