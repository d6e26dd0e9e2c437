"""A thin LLM client over a LiteLLM Router: one Router deployment per LiteLLM model table (the embedded
model comes as one too: a free local endpoint, see generation/generators.py).

Tables sharing a `name` are the deployments of one model group (LiteLLM's `model_name`); requests
go to the group and the Router picks a deployment by the configured `routing_strategy`, retries
with backoff (429, 5xx, timeouts) and falls back to other groups. This module adds what the project
needs around it: keys read from named environment variables only (`api_key_env`, or
`os.environ/NAME` values in `litellm_params`; never logged or written), a requests-per-minute pacer
per group, costs from LiteLLM's price table or the serving deployment's configured prices, and the
project's own errors raised `from` LiteLLM's.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from clinassay.generation.config import LiteLLMModel, RoutingStrategy, env_name, env_references, is_secret_param
from clinassay.generation.errors import GenerationError, GenerationInputError, LLMAuthError, LLMRequestError, RateLimitedError
from clinassay.generation.parser import MentionList, printable
from clinassay.generation.prompts import Prompt

_LOCAL_KEY = "sk-local-no-key"  # placeholder for local servers that need none (OpenAI clients insist on one)


class BadReplyError(GenerationError):
    """The provider answered, but not with a reply that can be read (no choices, no text): a final
    reject carrying the raw reply, so a resumed run does not ask again forever."""

    def __init__(self, message: str, raw: str, input_tokens: int = 0, output_tokens: int = 0, *,
                 reason: str = "unparseable") -> None:
        super().__init__(message)
        self.raw = raw
        self.reason = reason
        """The reject reason: "empty" (no choices) or "unparseable"."""
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens


@dataclass(frozen=True)
class Completion:
    """A model's reply and what it cost. `served_by` is the configured name that answered (a fallback
    may have served the request); `litellm_model` the model string of the deployment that did."""

    text: str
    served_by: str
    litellm_model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None


class RatePacer:
    """Spaces calls at most `rpm` per minute (evenly, so bursts never trip the provider's limit)."""

    def __init__(self, rpm: int | None) -> None:
        self.interval = 60.0 / rpm if rpm else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


def resolve_api_key(model: LiteLLMModel) -> str | None:
    """The key from the environment variable the config names; None lets LiteLLM use its own defaults."""
    if model.key_env is None:
        # local servers (vLLM, Ollama, llama.cpp) want no key but OpenAI clients insist on one; anything
        # else keeps LiteLLM's own defaults (OPENAI_API_KEY, GEMINI_API_KEY, ...)
        return _LOCAL_KEY if _is_local(model.api_base) else None
    return _from_environment(model, model.key_env, "api_key_env" if model.api_key_env else "litellm_params.api_key")


def _from_environment(model: LiteLLMModel, name: str, where: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise GenerationInputError(f"model '{model.name}': environment variable {name} ({where}) is not set or empty")
    return value


def resolve_params(model: LiteLLMModel) -> dict[str, Any]:
    """The deployment's `litellm_params` with every `os.environ/NAME` value read from the environment
    (a missing variable fails here, before any request, naming it), the key left to `resolve_api_key`."""

    def resolve(value: Any, where: str) -> Any:
        if isinstance(value, dict):
            return {k: resolve(v, f"{where}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v, where) for v in value]
        name = env_name(value) if isinstance(value, str) else None
        return _from_environment(model, name, where) if name else value

    return {k: resolve(v, f"litellm_params.{k}") for k, v in model.litellm_params.items() if k != "api_key"}


def _secret_env_names(params: dict[str, Any]) -> list[str]:
    """The environment variables named under credential parameters (their values are scrubbed from output)."""
    names = []
    for k, v in params.items():
        if isinstance(v, dict):
            names += _secret_env_names(v)
        elif is_secret_param(k):
            names += env_references(v)
    return names


def _is_local(api_base: str | None) -> bool:
    if not api_base:
        return False
    from urllib.parse import urlparse

    return (urlparse(api_base).hostname or "") in ("127.0.0.1", "localhost", "::1", "0.0.0.0")


class LLMClient:
    """Calls configured models (groups) by name. Builds its Router lazily, on the first call."""

    def __init__(self, models: list[LiteLLMModel], *, routing_strategy: RoutingStrategy = "simple-shuffle") -> None:
        self.groups: dict[str, list[LiteLLMModel]] = {}
        for m in models:
            self.groups.setdefault(m.name, []).append(m)
        self.models = {name: group[0] for name, group in self.groups.items()}
        """Each group's settings (its first deployment: the group settings agree, see GenerationConfig)."""
        self.deployment_ids = {id(m): f"{name}/{i}" for name, group in self.groups.items() for i, m in enumerate(group)}
        self._by_id = {self.deployment_ids[id(m)]: m for group in self.groups.values() for m in group}
        self.routing_strategy = routing_strategy
        self._router: Any = None
        self._pacers = {name: RatePacer(_group_rpm(group)) for name, group in self.groups.items()}
        self._priced: dict[str, bool] = {}
        self._secret_envs = sorted({n for group in self.groups.values() for m in group
                                    for n in ([m.key_env] if m.key_env else []) + _secret_env_names(m.litellm_params)})

    def check_credentials(self) -> None:
        """Fail before any request when a named key variable (or any `os.environ/NAME`) is missing."""
        for group in self.groups.values():
            for m in group:
                resolve_api_key(m)
                resolve_params(m)

    def litellm_model(self, name: str) -> str:
        return self.models[name].model

    def _deployment(self, m: LiteLLMModel) -> dict[str, Any]:
        """One Router deployment: the table's `litellm_params` (resolved), then what clinassay sets itself."""
        params: dict[str, Any] = resolve_params(m)
        params.update({
            "model": m.model,
            "timeout": m.timeout_s,
            # a group's requests run `sum(max_concurrency)` at a time and the Router, not clinassay, picks
            # the deployment: a deployment held to its own share would refuse what it is handed
            "max_parallel_requests": sum(d.max_concurrency for d in self.groups[m.name]),
        })
        if m.api_base:
            params["api_base"] = m.api_base
        key = resolve_api_key(m)
        if key is not None:
            params["api_key"] = key
        if m.rpm:
            params["rpm"] = m.rpm
        if m.tpm:
            params["tpm"] = m.tpm
        if m.input_cost_per_token is not None or m.output_cost_per_token is not None:
            params["input_cost_per_token"] = m.input_cost_per_token or 0.0
            params["output_cost_per_token"] = m.output_cost_per_token or 0.0
        elif not self._deployment_priced(m):
            # LiteLLM scans its whole price table on every reply of an unpriced model (~10 ms of CPU,
            # the bottleneck at high concurrency); zero prices skip that, and we report None ourselves.
            params["input_cost_per_token"] = 0.0
            params["output_cost_per_token"] = 0.0
        return {"model_name": m.name, "litellm_params": params, "model_info": {"id": self.deployment_ids[id(m)]}}

    def priced(self, name: str) -> bool:
        """Whether a cost can be given for this model (every deployment of a group): configured prices,
        or LiteLLM's table knows it."""
        return all(self._deployment_priced(m) for m in self.groups[name])

    def _deployment_priced(self, m: LiteLLMModel) -> bool:
        if m.input_cost_per_token is not None or m.output_cost_per_token is not None:
            return True
        if m.model not in self._priced:
            litellm = _litellm()
            try:
                info = litellm.get_model_info(m.model)
                self._priced[m.model] = bool(info.get("input_cost_per_token") or info.get("output_cost_per_token"))
            except _price_unknown_errors(litellm):
                self._priced[m.model] = False
        return self._priced[m.model]

    def router(self) -> Any:
        if self._router is None:
            Router = _litellm().Router  # heavy import, only when a model is really called

            fallbacks = [{m.name: list(m.fallbacks)} for m in self.models.values() if m.fallbacks]
            self._router = Router(
                model_list=[self._deployment(m) for group in self.groups.values() for m in group],
                fallbacks=fallbacks,
                retry_after=0,
                num_retries=max((m.num_retries for m in self.models.values()), default=0),
                routing_strategy=self.routing_strategy,
            )
            # LiteLLM's import leaves ~500k long-lived objects; each full collection walks them all
            # (~0.4 s, stalling every request in flight). Freezing them keeps the collector off them.
            gc.freeze()
        return self._router

    async def aclose(self) -> None:
        """Close LiteLLM's pooled HTTP sessions while the event loop still runs (no 'Unclosed connector')."""
        if self._router is None:
            return
        close = getattr(_litellm(), "close_litellm_async_clients", None)
        if close is not None:
            await close()
        # LiteLLM's text-completion path keeps aiohttp sessions outside its client cache; close what is
        # left open on this loop, else aiohttp warns "Unclosed client session" at exit.
        import aiohttp

        loop = asyncio.get_running_loop()
        for obj in gc.get_objects():
            if isinstance(obj, aiohttp.ClientSession) and not obj.closed and getattr(obj, "_loop", loop) is loop:
                await obj.close()

    async def complete(self, name: str, prompt: Prompt, *, temperature: float | None, seed: int | None,
                       stop: list[str] | None = None) -> Completion:
        """One reply for `prompt` from model `name`, after the Router's retries and fallbacks; `stop` ends it."""
        litellm = _litellm()

        m = self.models[name]
        await self._pacers[name].wait()
        kwargs: dict[str, Any] = {
            "model": name,
            "messages": prompt.messages(),
            "max_tokens": m.max_tokens,
            "num_retries": m.num_retries,
            "drop_params": True,
        }
        if temperature is not None:
            kwargs["temperature"] = temperature
        if seed is not None:
            kwargs["seed"] = seed
        if stop is not None:
            kwargs["stop"] = stop
        if m.structured_output:
            kwargs["response_format"] = _response_format(m.model)
        try:
            response = await self.router().acompletion(**kwargs)
        except litellm.RateLimitError as exc:
            raise RateLimitedError(f"model '{name}': rate limited after {m.num_retries} retries") from exc
        except (litellm.AuthenticationError, litellm.PermissionDeniedError, litellm.NotFoundError) as exc:
            raise LLMAuthError(f"model '{name}': {type(exc).__name__}: {self._short(exc)}") from exc
        except (litellm.Timeout, litellm.APIConnectionError, litellm.InternalServerError,
                litellm.ServiceUnavailableError, litellm.BadRequestError, litellm.APIError) as exc:
            raise LLMRequestError(f"model '{name}': {type(exc).__name__}: {self._short(exc)}") from exc
        except Exception as exc:  # noqa: BLE001 - LiteLLM choking on a strange reply fails one request, not the run
            raise LLMRequestError(f"model '{name}': {type(exc).__name__}: {self._short(exc)}") from exc
        try:
            return self._completion(name, response, prompt)
        except BadReplyError:
            raise
        except Exception as exc:  # noqa: BLE001 - same: an unreadable reply is a reject with its raw text
            raise BadReplyError(f"model '{name}': the reply could not be read ({type(exc).__name__}: "
                                f"{self._short(exc)})", self._raw(response)) from exc

    def _short(self, exc: Exception, limit: int = 300) -> str:
        """A one-line error text, with any configured key scrubbed out (it may end up in a rejects file)."""
        text = printable(self.scrub(" ".join(str(exc).split())))
        return text if len(text) <= limit else text[:limit] + "..."

    def scrub(self, text: str) -> str:
        """`text` with every configured API key replaced by ***: errors and replies both end up in files,
        and a server may echo the key back."""
        for name in self._secret_envs:
            key = os.environ.get(name)
            if key:
                text = text.replace(key, "***")
        return text

    def _completion(self, name: str, response: Any, prompt: Prompt) -> Completion:
        hidden = getattr(response, "_hidden_params", {}) or {}
        served_by = (hidden.get("additional_headers") or {}).get("x-litellm-model-group") or name
        group = self.models.get(served_by, self.models[name])
        m = self._by_id.get(str(hidden.get("model_id")), group)  # the deployment that answered
        if m.name != group.name:
            m = group
        usage = getattr(response, "usage", None)
        tin = _token_count(getattr(usage, "prompt_tokens", 0))
        tout = _token_count(getattr(usage, "completion_tokens", 0))
        choices = getattr(response, "choices", None) or []
        if not choices:
            raise BadReplyError(f"model '{name}': the reply has no choices", self._raw(response), tin, tout,
                                reason="empty")
        choice = choices[0]
        message = getattr(choice, "message", None)
        text = message.content if message is not None else getattr(choice, "text", "")
        if text is not None and not isinstance(text, str):  # content parts, a number, ...: keep what came
            text = json.dumps(text, ensure_ascii=False, default=str)
        return Completion(
            text=self.scrub(text or ""),
            served_by=m.name,
            litellm_model=m.model,
            input_tokens=tin,
            output_tokens=tout,
            cost_usd=_cost(m, response, hidden, tin, tout) if self._deployment_priced(m) else None,
        )

    def _raw(self, response: Any, limit: int = 20_000) -> str:
        """The reply as the provider sent it (as LiteLLM parsed it), keys scrubbed, for a reject's `raw`."""
        try:
            text = response.model_dump_json() if hasattr(response, "model_dump_json") else json.dumps(response, default=str)
        except Exception:  # noqa: BLE001 - a reply that cannot even be dumped is still a reject, not a crash
            text = repr(response)
        text = self.scrub(text)
        return text if len(text) <= limit else text[:limit] + "..."


def _group_rpm(group: list[LiteLLMModel]) -> int | None:
    """A group's pace: the sum of its deployments' rpm; unpaced when one of them sets none."""
    return sum(m.rpm for m in group) if all(m.rpm for m in group) else None  # type: ignore[misc]


def _token_count(value: Any) -> int:
    """A usage figure as sent by the server; anything but a non-negative integer counts as 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and 0 <= value < 10**12 else 0


def _litellm() -> Any:
    """LiteLLM, imported on first use; offline by default (its price table from the package, not the web)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return litellm


def _price_unknown_errors(litellm: Any) -> tuple[type[Exception], ...]:
    """What LiteLLM raises for a model missing from its price table."""
    extra = tuple(e for e in (getattr(litellm.exceptions, "ModelNotMappedError", None), litellm.NotFoundError) if e)
    return (ValueError, KeyError, TypeError, *extra)


def _cost(m: LiteLLMModel, response: Any, hidden: dict, tin: int, tout: int) -> float | None:
    """Configured prices win; else LiteLLM's price table; None when nobody knows the price."""
    if m.input_cost_per_token is not None or m.output_cost_per_token is not None:
        return tin * (m.input_cost_per_token or 0.0) + tout * (m.output_cost_per_token or 0.0)
    cost = hidden.get("response_cost")
    if cost is not None:
        return float(cost)
    litellm = _litellm()
    try:
        return float(litellm.completion_cost(completion_response=response))
    except _price_unknown_errors(litellm):
        return None


def estimate_cost(m: LiteLLMModel, input_tokens: int, output_tokens: int) -> float | None:
    """Price of a planned request, for the dry run; None when the model is not priced."""
    if m.input_cost_per_token is not None or m.output_cost_per_token is not None:
        return input_tokens * (m.input_cost_per_token or 0.0) + output_tokens * (m.output_cost_per_token or 0.0)
    litellm = _litellm()
    try:
        cin, cout = litellm.cost_per_token(model=m.model, prompt_tokens=input_tokens, completion_tokens=output_tokens)
    except _price_unknown_errors(litellm):
        return None
    return float(cin + cout)


def _response_format(model: str) -> dict[str, Any]:
    if _supports_schema(model):
        return {"type": "json_schema", "json_schema": {"name": "mentions", "schema": MentionList.model_json_schema()}}
    return {"type": "json_object"}


@functools.lru_cache(maxsize=64)
def _supports_schema(model: str) -> bool:
    """LiteLLM's capability lookup costs ~0.4 ms per call: once per model, not per request."""
    litellm = _litellm()
    try:
        return bool(litellm.supports_response_schema(model=model))
    except _price_unknown_errors(litellm):
        return False


@contextmanager
def quiet_litellm() -> Iterator[None]:
    """For the length of a run: LiteLLM logs every failed attempt at ERROR, while the runner records
    each failure itself (as a reject) and the progress bar would be drowned."""
    loggers = [logging.getLogger(n) for n in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")]
    before = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, lvl in zip(loggers, before):
            lg.setLevel(lvl)
