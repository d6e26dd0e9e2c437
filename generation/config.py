"""The `[generation]` section of the configuration file: what to generate, with which models, for how much."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ModelWrapValidatorHandler, SerializeAsAny, field_validator, model_validator

from clinassay.generation.records import LANGUAGES, Language, Task

EMBEDDED_MODEL = "embedded/gemma-3-270m"
"""The `model` string that selects the bundled offline Gemma 3 270M (no network, no key)."""

TERMINOLOGY_MODEL = "terminology"
"""The `model` string that selects the non-LLM generator writing pairs from real terminology labels."""

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ENV_PREFIX = "os.environ/"
"""LiteLLM's way of naming an environment variable in a config value: `api_key = "os.environ/AZURE_API_KEY"`."""

RoutingStrategy = Literal["simple-shuffle", "least-busy", "usage-based-routing", "usage-based-routing-v2",
                          "latency-based-routing", "cost-based-routing"]
"""The LiteLLM Router's strategies for picking a deployment within a model group."""

OWN_FIELDS = {"model": "model", "api_base": "api_base", "rpm": "rpm", "tpm": "tpm", "timeout": "timeout_s",
              "max_parallel_requests": "max_concurrency", "input_cost_per_token": "input_cost_per_token",
              "output_cost_per_token": "output_cost_per_token", "temperature": "temperature",
              "max_tokens": "max_tokens", "num_retries": "num_retries", "seed": "[generation] seed",
              "messages": None, "stop": None, "response_format": "structured_output"}
"""`litellm_params` keys that the model table has as its own field (or that clinassay sets per request):
one place for each setting, so the pacer, the dry run and the Router never see two values."""

GROUP_FIELDS = ("kind", "temperature", "max_tokens", "num_retries", "fallbacks", "structured_output", "max_codes")
"""What the deployments of one model group share: they answer the same requests of the plan."""


def env_name(value: str) -> str | None:
    """NAME for "os.environ/NAME", else None."""
    if value.startswith(ENV_PREFIX) and _ENV_NAME.match(value[len(ENV_PREFIX):]):
        return value[len(ENV_PREFIX):]
    return None


def is_secret_param(name: str) -> bool:
    """Whether a LiteLLM parameter holds a credential (api_key, aws_secret_access_key, azure_ad_token,
    vertex_credentials, an Authorization header, ...): its value may only name an environment variable."""
    n = name.lower()
    if n.endswith("per_token") or n.endswith("_tokens"):
        return False
    return n.endswith("token") or any(p in n for p in ("key", "secret", "password", "credential", "authorization"))


def _secret_problems(params: dict[str, Any], where: str) -> list[str]:
    problems = []
    for k, v in params.items():
        if isinstance(v, dict):
            problems += _secret_problems(v, f"{where}.{k}")
        elif is_secret_param(k) and not (isinstance(v, str) and env_name(v)):
            problems.append(f"{where}.{k}")
    return problems


def env_references(params: Any) -> list[str]:
    """Every environment variable that `os.environ/NAME` values in `params` name (nested tables too)."""
    if isinstance(params, dict):
        return [n for v in params.values() for n in env_references(v)]
    if isinstance(params, list):
        return [n for v in params for n in env_references(v)]
    name = env_name(params) if isinstance(params, str) else None
    return [name] if name else []


GeneratorKind = Literal["litellm", "embedded", "terminology"]


class ModelConfig(BaseModel):
    """One `[[generation.models]]` table. Its `model` string selects the kind of generator, and the table
    validates as that kind's class (LiteLLMModel, EmbeddedModel, TerminologyModel), which holds only the
    keys that kind uses; `ModelConfig(**table)` returns that class too. (Not pydantic's tagged union: its
    tag would enter every error's location, 'generation.models.0.litellm.rpm', a table users never wrote.)"""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)  # an input may hold a key

    kind: ClassVar[GeneratorKind]
    described: ClassVar[str]
    """The kind in words, for error messages."""

    name: str = Field(default="gemma-270m", min_length=1)
    """The label used in provenance and reports."""
    model: str = Field(default=EMBEDDED_MODEL, min_length=1)
    """Any LiteLLM model string (`openai/gpt-4o-mini`, `gemini/gemini-2.5-flash`, `hosted_vllm/...`),
    `embedded/gemma-3-270m` for the bundled offline model, or `terminology` for real labels."""
    max_codes: int | None = Field(default=None, ge=1)
    """Generate for only the first N codes of the plan (the sample is round-robin across chapters, so
    its head stays balanced): lets a slow or costly model cover fewer codes than a cheap one."""

    def __new__(cls, /, **data: Any) -> "ModelConfig":
        # ModelConfig(**table) builds the kind's class (its __init__ then validates the table)
        return super().__new__(_class_for(data.get("model", EMBEDDED_MODEL)) if cls is ModelConfig else cls)

    @model_validator(mode="wrap")
    @classmethod
    def _as_its_kind(cls, data: Any, handler: ModelWrapValidatorHandler["ModelConfig"]) -> "ModelConfig":
        if not isinstance(data, dict):
            return handler(data)  # an instance already is of its kind
        kind = _class_for(data.get("model", EMBEDDED_MODEL))
        _check_keys(kind, data)
        if cls is ModelConfig:
            return kind.model_validate(data)
        if kind is not cls:
            raise ValueError(f"model {data.get('model')!r} selects {kind.described}, not {cls.described}")
        return handler(data)

    def share(self, n: int) -> "ModelConfig":
        """This table with its limits divided among `n` workers that run its requests side by side."""
        return self


class LLMModel(ModelConfig):
    """What the two LLM kinds share: limits, sampling, retries and prices (LiteLLM answers both)."""

    described = "LLM models"

    rpm: int | None = Field(default=None, ge=1)
    """Requests per minute of this deployment: clinassay paces its requests to it (a model group: to
    the sum of its deployments'), and the Router weighs or limits deployments by it."""
    tpm: int | None = Field(default=None, ge=1)
    """Tokens per minute of this deployment, for the Router (weights in simple-shuffle, limits in
    usage-based routing); clinassay does not pace on it."""
    max_concurrency: int = Field(default=8, ge=1, le=1024)
    """Requests in flight at once; in a model group the deployments' values add up to the group's, which
    the Router spreads over them by `routing_strategy`."""
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

    def share(self, n: int) -> "LLMModel":
        return self.model_copy(update={"max_concurrency": max(1, math.ceil(self.max_concurrency / n)),
                                       "rpm": max(1, math.ceil(self.rpm / n)) if self.rpm else None})


class LiteLLMModel(LLMModel):
    """A model reached through LiteLLM: a provider, or a server of your own (vLLM, Ollama)."""

    kind = "litellm"
    described = "LiteLLM models"

    api_base: str | None = None
    api_key_env: str | None = None
    """The NAME of the environment variable holding the key (`OPENAI_API_KEY`, or LiteLLM's
    `os.environ/OPENAI_API_KEY`); a key itself is never accepted."""
    litellm_params: dict[str, Any] = Field(default_factory=dict)
    """Passed as they are to this deployment's `litellm_params` in the LiteLLM Router (`api_version`
    for Azure, `aws_region_name`, `extra_headers`, ...). Credentials (api_key, aws_secret_access_key,
    ...) only as `"os.environ/NAME"`; keys the table has itself (model, api_base, rpm, tpm, timeout,
    temperature, max_tokens, prices) are set there, once."""

    @field_validator("api_key_env")
    @classmethod
    def _env_name_only(cls, value: str | None) -> str | None:
        if value is not None and env_name(value):
            return env_name(value)
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(
                "must be the NAME of an environment variable (e.g. OPENAI_API_KEY or os.environ/OPENAI_API_KEY), "
                "not a key; keys are never read from files"
            )
        return value

    @field_validator("litellm_params")
    @classmethod
    def _passthrough(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if key in OWN_FIELDS:
                own = OWN_FIELDS[key]
                raise ValueError(f"'{key}' is set by clinassay, not in litellm_params" if own is None else
                                 f"'{key}' has its own key: set {own} on the model table instead of litellm_params.{key}")
        secrets = _secret_problems(value, "litellm_params")
        if secrets:
            # the value is never echoed: it may be a key
            raise ValueError(f"{', '.join(secrets)} must name an environment variable as \"os.environ/NAME\" "
                             "(or use api_key_env = \"NAME\"); a credential written in the config file is refused, "
                             "keys are never read from files")
        return value

    @model_validator(mode="after")
    def _one_key(self) -> "LiteLLMModel":
        if self.api_key_env and "api_key" in self.litellm_params:
            raise ValueError(f"model '{self.name}': api_key_env and litellm_params.api_key both name a key; keep one")
        return self

    @property
    def key_env(self) -> str | None:
        """The environment variable holding this deployment's API key, however the config named it."""
        if self.api_key_env:
            return self.api_key_env
        key = self.litellm_params.get("api_key")
        return env_name(key) if isinstance(key, str) else None


class EmbeddedModel(LLMModel):
    """The bundled offline Gemma 3 270M, served by a llama.cpp server the run starts (generation/embedded.py)."""

    kind = "embedded"
    described = "the embedded model"


class TerminologyModel(ModelConfig):
    """The non-LLM generator: real terminology labels become pairs (no requests, no cost)."""

    kind = "terminology"
    described = "the terminology generator"

    sources: list[Literal["icd10cm", "who", "datasus", "import"]] = Field(
        default_factory=lambda: ["icd10cm", "who", "datasus", "import"]
    )
    """Which label sources may become pairs."""
    short_forms: bool = False
    """Also write each label's clinician-style short form ("hematuria" for "Hematuria, unspecified"), which
    teaches the default code of a bare concept (generation/short_forms.py)."""


KINDS: tuple[type[ModelConfig], ...] = (LiteLLMModel, EmbeddedModel, TerminologyModel)


def _class_for(model: Any) -> type[ModelConfig]:
    """The kind a `model` string selects (anything that is not a string validates as LiteLLM's, and fails there)."""
    if isinstance(model, str):
        if model == TERMINOLOGY_MODEL or model.startswith(TERMINOLOGY_MODEL + ":"):
            return TerminologyModel
        if model.startswith("embedded/"):
            return EmbeddedModel
    return LiteLLMModel


def _check_keys(kind: type[ModelConfig], data: dict[Any, Any]) -> None:
    """A key of another kind is named with the kinds it applies to; a key of none points to litellm_params."""
    for key in data:
        if isinstance(key, str) and key not in kind.model_fields:
            owners = [k.described for k in KINDS if key in k.model_fields]
            if owners:
                raise ValueError(f"'{key}' applies to {' and '.join(owners)} only, not to {kind.described}")
    unknown = [k for k in data if isinstance(k, str) and k not in kind.model_fields]
    if unknown:
        raise ValueError(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}: "
                         f"LiteLLM's own parameters go in the model's litellm_params table "
                         f"(litellm_params = {{ {unknown[0]} = ... }})")


class GenerationConfig(BaseModel):
    """What to generate (codes x languages x models x mentions), and the budget that stops it."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)  # a model table may hold a key

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
    labelled_in: list[Language] | None = None
    """Sample only codes with an exact terminology label in one of these languages: the terminology
    generator writes pairs in a language only where the code has a label in it."""
    reserve_labelled_in: list[Language] | None = None
    """Never sample codes with an exact label in these languages: a language with few labels offline
    (Italian: 285 billable codes) keeps all of them for held-out evaluation."""
    models: list[SerializeAsAny[ModelConfig]] = Field(default_factory=lambda: [ModelConfig()], min_length=1)
    """The generators. Tables with the same `name` are deployments of one model group (LiteLLM's
    `model_name`): the plan asks the group, and the Router spreads its requests over the deployments
    by `routing_strategy` (several keys, regions or endpoints serving one model)."""
    routing_strategy: RoutingStrategy = "simple-shuffle"
    """How the LiteLLM Router picks a deployment within a model group: simple-shuffle (weighted by
    rpm/tpm when set), least-busy, usage-based-routing(-v2) (within rpm/tpm), latency-based-routing,
    cost-based-routing."""
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
        for name in sorted({n for n in names if names.count(n) > 1}):
            group = self.deployments(name)
            if any(not isinstance(m, LiteLLMModel) for m in group):
                raise ValueError(f"model '{name}' is configured {len(group)} times: only LiteLLM models can have "
                                 "several deployments under one name (a model group); give the others their own names")
            for f in GROUP_FIELDS:
                values = [getattr(m, f) for m in group]
                if any(v != values[0] for v in values):
                    raise ValueError(f"model group '{name}': its {len(group)} deployments disagree on {f} "
                                     f"({', '.join(map(repr, values))}); {', '.join(GROUP_FIELDS[1:])} must be the "
                                     "same on every deployment of a group")
        for m in self.models:
            if not isinstance(m, LLMModel):
                continue
            unknown = [f for f in m.fallbacks if f not in names or f == m.name]
            if unknown:
                raise ValueError(f"model '{m.name}': fallbacks {unknown} are not other configured model names")
        return self

    def generators(self) -> list[ModelConfig]:
        """One entry per generator (a model group counts once, as its first deployment): what the plan asks."""
        seen: dict[str, ModelConfig] = {}
        for m in self.models:
            seen.setdefault(m.name, m)
        return list(seen.values())

    def deployments(self, name: str) -> list[ModelConfig]:
        """Every deployment configured under `name` (one, unless it is a model group)."""
        return [m for m in self.models if m.name == name]
