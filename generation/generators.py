"""The three kinds of generator behind `[[generation.models]]`, as the plan and the runner use them.

A table's `model` string selects its kind (generation/config.py); what differs between the kinds lives
here, one class each: how its requests are made for a code and answered, how many run at once, which
LiteLLM deployments answer them, and what they cost. The plan and the runner call these methods instead
of asking which kind they hold; `generators` is the one place that maps a kind to its class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol

from clinassay.generation.config import (EmbeddedModel, GenerationConfig, LiteLLMModel, LLMModel, ModelConfig,
                                         TerminologyModel)
from clinassay.generation.llm import Completion, LLMClient, estimate_cost
from clinassay.generation.prompts import Style, render_prompt
from clinassay.generation.records import Pair, Reject, Task
from clinassay.generation.replies import reply_to_pairs, terminology_pairs
from clinassay.generation.requests import Request, pick_sibling, prompt_context
from clinassay.generation.short_forms import short_form
from clinassay.terminology.protocol import TerminologyLike, exact_label

EMBEDDED_LITELLM_MODEL = "text-completion-openai/gemma-3-270m"
"""How LiteLLM reaches the embedded model: plain completions on the local llama.cpp server."""
EMBEDDED_MAX_TOKENS = 160
EMBEDDED_STOP = ["\n", "]"]
"""The few-shot prompt ends inside a list: its end (or the line's) ends the answer."""


@dataclass(frozen=True)
class Answer:
    """What one request came to: its pairs, its rejects, and the LLM's reply (None when no LLM was asked)."""

    pairs: list[Pair]
    rejects: list[Reject]
    completion: Completion | None = None


class Generator(Protocol):
    """One configured generator (a model group counts once)."""

    @property
    def config(self) -> ModelConfig:
        """Its table (a model group's first deployment: the group settings agree)."""

    @property
    def concurrency(self) -> int:
        """Its requests in flight at once."""

    @property
    def calls_llm(self) -> bool:
        """Whether its requests are LLM calls: sent through the LLM client, counted against the budget."""

    @property
    def local_server(self) -> bool:
        """Whether the run's own llama.cpp server answers it, one request at a time: the run starts the
        server, and its requests stay together in one worker process (shards) or Ray slice."""

    def requests(self, term: TerminologyLike, config: GenerationConfig, code: str, language: str, task: Task) -> Iterable[Request]:
        """Its requests for one (code, language, task) of the plan."""

    def deployments(self, api_bases: dict[str, str]) -> list[LiteLLMModel]:
        """The LiteLLM deployments that answer its requests; `api_bases`: the run's local servers by name."""

    async def answer(self, request: Request, client: LLMClient, *, max_mentions: int) -> Answer:
        """One request answered; the LLM client's errors (LLMRequestError, BadReplyError, ...) pass through."""

    def estimate_cost(self, input_tokens: int, output_tokens: int) -> float | None:
        """What that many tokens cost, for the dry run; None when nobody knows its price."""


def generators(config: GenerationConfig) -> dict[str, Generator]:
    """One generator per configured name, in the config's order (a model group is one generator)."""
    out: dict[str, Generator] = {}
    for m in config.generators():
        match m:
            case TerminologyModel():
                out[m.name] = TerminologyGenerator(m)
            case EmbeddedModel():
                out[m.name] = EmbeddedGenerator(m)
            case LiteLLMModel():
                out[m.name] = LiteLLMGenerator([d for d in config.deployments(m.name) if isinstance(d, LiteLLMModel)])
    return out


def llm_deployments(config: GenerationConfig, api_bases: dict[str, str]) -> list[LiteLLMModel]:
    """Every LiteLLM deployment of the config's generators: what the LLM client routes to."""
    return [d for g in generators(config).values() for d in g.deployments(api_bases)]


@dataclass(frozen=True)
class LiteLLMGenerator:
    """A model group reached through LiteLLM: instruction prompts, its deployments' concurrency added up,
    priced by its configured prices or LiteLLM's table."""

    group: list[LiteLLMModel]
    calls_llm = True
    local_server = False

    @property
    def config(self) -> LiteLLMModel:
        return self.group[0]

    @property
    def concurrency(self) -> int:
        return sum(m.max_concurrency for m in self.group)

    def requests(self, term: TerminologyLike, config: GenerationConfig, code: str, language: str, task: Task) -> Iterable[Request]:
        return _prompted_requests(self.config, "instruct", term, config, code, language, task)

    def deployments(self, api_bases: dict[str, str]) -> list[LiteLLMModel]:
        return list(self.group)

    async def answer(self, request: Request, client: LLMClient, *, max_mentions: int) -> Answer:
        return await _ask(client, request, max_mentions=max_mentions)

    def estimate_cost(self, input_tokens: int, output_tokens: int) -> float | None:
        # a model group: priced at its dearest deployment (an upper bound for the budget); unknown if one is
        costs = [estimate_cost(m, input_tokens, output_tokens) for m in self.group]
        return None if None in costs else max(c for c in costs if c is not None)


@dataclass(frozen=True)
class EmbeddedGenerator:
    """The bundled Gemma 3 270M on the run's llama.cpp server: a base model, so few-shot prompts whose
    answer stops at the list's end; one request at a time (llama.cpp serialises them); free."""

    config: EmbeddedModel
    calls_llm = True
    local_server = True
    concurrency = 1  # more workers would only queue (and time out) at the server

    def requests(self, term: TerminologyLike, config: GenerationConfig, code: str, language: str, task: Task) -> Iterable[Request]:
        return _prompted_requests(self.config, "fewshot", term, config, code, language, task)

    def deployments(self, api_bases: dict[str, str]) -> list[LiteLLMModel]:
        api_base = api_bases.get(self.config.name)
        if api_base is None:
            return []  # no server in this run: none of its requests is pending
        settings = self.config.model_dump(exclude={"model", "max_tokens", "structured_output",
                                                   "input_cost_per_token", "output_cost_per_token"})
        # the server is OpenAI-compatible: LiteLLM reaches it like any local endpoint (a placeholder key)
        return [LiteLLMModel(**settings, model=EMBEDDED_LITELLM_MODEL, api_base=api_base,
                             max_tokens=min(self.config.max_tokens, EMBEDDED_MAX_TOKENS), structured_output=False,
                             input_cost_per_token=0.0, output_cost_per_token=0.0)]

    async def answer(self, request: Request, client: LLMClient, *, max_mentions: int) -> Answer:
        return await _ask(client, request, max_mentions=max_mentions, stop=EMBEDDED_STOP)

    def estimate_cost(self, input_tokens: int, output_tokens: int) -> float | None:
        return 0.0


@dataclass(frozen=True)
class TerminologyGenerator:
    """Real labels as pairs: ICD-10-CM title and inclusion terms in English, exact native labels else.
    No LLM, no cost; a request is answered at once."""

    config: TerminologyModel
    calls_llm = False
    local_server = False
    concurrency = 1

    def requests(self, term: TerminologyLike, config: GenerationConfig, code: str, language: str, task: Task) -> Iterable[Request]:
        other = None
        if task == "hard_negative":
            other = pick_sibling(term, code, seed=config.seed, sample_index=0)
            if other is None:
                return
        target = other or code
        items = terminology_mentions(term, target, language, sources=self.config.sources,
                                     short_forms=self.config.short_forms)
        if items:
            yield Request(
                model=self.config.name, litellm_model=None, kind="terminology", task=task, code=target,
                negative_of=code if other else None, language=language, sample_index=0, seed=config.seed,
                temperature=None, n=len(items), static_mentions=tuple(items),
            )

    def deployments(self, api_bases: dict[str, str]) -> list[LiteLLMModel]:
        return []

    async def answer(self, request: Request, client: LLMClient, *, max_mentions: int) -> Answer:
        return Answer(terminology_pairs(request), [])

    def estimate_cost(self, input_tokens: int, output_tokens: int) -> float | None:
        return 0.0


def _prompted_requests(model: LLMModel, style: Style, term: TerminologyLike, config: GenerationConfig, code: str,
                       language: str, task: Task) -> Iterable[Request]:
    """An LLM's requests: one rendered prompt per sample (a hard negative asks about a sibling)."""
    for sample_index in range(config.samples_per_code):
        other = None
        if task == "hard_negative":
            other = pick_sibling(term, code, seed=config.seed, sample_index=sample_index)
            if other is None:
                continue  # a code without siblings has no hard negatives
        prompt = render_prompt(task, prompt_context(term, code, language, n=config.mentions_per_code, other=other), style=style)
        yield Request(
            model=model.name, litellm_model=model.model, kind=model.kind, task=task,
            code=other or code, negative_of=code if other else None, language=language,
            sample_index=sample_index, seed=config.seed, temperature=model.temperature,
            n=config.mentions_per_code, prompt=prompt,
        )


async def _ask(client: LLMClient, r: Request, *, max_mentions: int, stop: list[str] | None = None) -> Answer:
    """An LLM request: the client's reply (after its retries and fallbacks) and the pairs it makes."""
    assert r.prompt is not None
    seed = int(r.key[:8], 16) % (2**31)
    completion = await client.complete(r.model, r.prompt, temperature=r.temperature, seed=seed, stop=stop)
    pairs, rejects = reply_to_pairs(r, completion, max_mentions=max_mentions)
    return Answer(pairs, rejects, completion)


def terminology_mentions(term: TerminologyLike, code: str, language: str, *, sources: list[str],
                         short_forms: bool = False) -> list[tuple[str, str]]:
    """(text, source) pairs; with `short_forms`, each label's short form follows it as `SOURCE:short`."""
    c = term.get(code)
    items: list[tuple[str, str]] = []
    if language == "en":
        if "icd10cm" in sources:
            items = [(c.title, "icd10cm")] + [(t, "icd10cm") for t in c.inclusion_terms]
    else:
        label = exact_label(term, code, language)
        if label is not None:
            family = label.source.split(":", 1)[0]
            if family in sources:
                items = [(label.text, label.source)]
    if short_forms:
        items = [x for text, source in items
                 for x in ((text, source), (short_form(text, language), f"{source}:short")) if x[0]]
    seen: set[str] = set()
    unique = []
    for text, source in items:
        if text.casefold() not in seen:
            seen.add(text.casefold())
            unique.append((text, source))
    return unique
