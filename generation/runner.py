"""Run a plan: requests run concurrently per model, replies become pairs or rejects, on disk at once.

Each model gets `max_concurrency` workers (its asyncio concurrency), paced by its `rpm`; the LLM
client's Router retries and falls back. Finished requests are flushed to disk in small batches
(fsync'ed), so an interrupted run resumes where it stopped (see `generation.store`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from clinassay.generation.budget import Budget
from clinassay.generation.config import GenerationConfig
from clinassay.generation.errors import GenerationInputError, LLMAuthError, LLMRequestError
from clinassay.generation.llm import BadReplyError, Completion, LLMClient, quiet_litellm
from clinassay.generation.parser import has_lone_surrogate, parse_mentions, printable
from clinassay.generation.plan import Plan, Request, build_plan
from clinassay.generation.progress import Progress
from clinassay.generation.records import Pair, Reject
from clinassay.generation.store import PairStore, ResumeState

TERMINOLOGY_PROMPT_ID = "terminology/v1"


@lru_cache(maxsize=1)
def clinassay_version() -> str:
    try:
        return version("clinassay")
    except PackageNotFoundError:
        return "0.0.0+local"


@dataclass
class RunSummary:
    planned: int = 0
    already_done: int = 0
    done: int = 0
    """Requests finished in this run, of every kind (LLM and terminology): what the progress bar counts."""
    requests: int = 0
    """LLM requests sent in this run (what `max_requests` counts)."""
    pairs: int = 0
    rejects: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    total_cost_usd: float = 0.0
    """Spent on this output, earlier resumed runs included."""
    stopped: str | None = None
    remaining: int = 0
    per_model: dict[str, Counter] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def count(self, model: str, what: str, n: int = 1) -> None:
        self.per_model.setdefault(model, Counter())[what] += n

    def failed_models(self) -> dict[str, str]:
        """Models that made requests in this run and not one pair: name -> why, for the exit code."""
        failed = {}
        for model, counts in self.per_model.items():
            requests = counts["requests"]
            if requests and not counts["pairs"] and counts["requests_failed"] + counts["bad_replies"] >= requests:
                failed[model] = (f"all {requests} requests failed ({counts['requests_failed']} without a reply"
                                 f"{', refused credentials or model' if counts['auth_failed'] else ''}, "
                                 f"{counts['bad_replies']} with an unreadable reply)")
        return failed

    def credentials_refused(self) -> bool:
        """Whether a failed model was stopped by the provider refusing its key or model name."""
        return any(self.per_model[m]["auth_failed"] for m in self.failed_models())


def generate(config: GenerationConfig, *, out: Path | str, terminology: Any = None, resume: bool = False,
             progress: bool | None = None, plan: Plan | None = None) -> RunSummary:
    """Generate the plan of `config` into `out` (JSONL) and `out`'s rejects file; returns what happened.

    Refuses to touch an existing non-empty `out` unless `resume` is set; with `resume`, requests
    already finished are skipped and the rest run.
    """
    store = PairStore(out)
    if store.has_output() and not resume:
        raise GenerationInputError(
            f"output {store.path} already exists and is not empty: pass --resume to finish it, "
            "or choose another output path"
        )
    if plan is None:
        if terminology is None:
            from clinassay.terminology import load_terminology

            terminology = load_terminology()
        plan = build_plan(terminology, config)
    store.path.parent.mkdir(parents=True, exist_ok=True)
    state = store.recover() if resume else ResumeState()
    pending = [r for r in plan.requests if r.key not in state.done]
    summary = RunSummary(planned=len(plan.requests), already_done=len(plan.requests) - len(pending),
                         notes=list(state.repaired))
    budget = Budget(max_cost_usd=config.max_cost_usd, max_requests=config.max_requests,
                    cost_usd=state.cost_usd, requests=state.requests)
    show = config.progress if progress is None else progress
    llm_models = {r.model for r in pending if r.kind != "terminology"}
    with contextlib.ExitStack() as stack:
        api_bases = {}
        embedded = [m for m in config.models if m.kind == "embedded" and m.name in llm_models]
        if embedded:
            from clinassay.generation.embedded import EmbeddedServer

            server = stack.enter_context(EmbeddedServer())
            api_bases = {m.name: server.api_base for m in embedded}
        client = LLMClient([m for m in config.models if m.name in llm_models or m.kind != "terminology"],
                           api_bases=api_bases, routing_strategy=config.routing_strategy)
        if llm_models:
            client.check_credentials()
        stack.enter_context(quiet_litellm())
        bar = stack.enter_context(Progress(len(pending), enabled=show))
        if config.processes > 1 and llm_models:
            from clinassay.generation.shards import run_sharded

            local = [r for r in pending if r.kind == "terminology"]
            asyncio.run(run_requests(local, config=config, store=store, client=client, budget=budget,
                                     summary=summary, progress=show, bar=bar))
            run_sharded([r for r in pending if r.kind != "terminology"], config=config, store=store,
                        budget=budget, summary=summary, bar=bar, api_bases=api_bases, processes=config.processes)
        else:
            asyncio.run(run_requests(pending, config=config, store=store, client=client, budget=budget,
                                     summary=summary, progress=show, bar=bar))
    summary.total_cost_usd = budget.cost_usd
    summary.stopped = budget.stopped
    return summary


async def run_requests(requests: list[Request], *, config: GenerationConfig, store: PairStore,
                       client: LLMClient, budget: Budget, summary: RunSummary, progress: bool,
                       bar: Progress | None = None, flush_every_s: float = 0.25) -> RunSummary:
    """Run `requests` (already filtered for resume) and record every outcome in `store` (or anything
    with its `add`/`flush`, such as a worker process's sink)."""
    queues: dict[str, deque[Request]] = {}
    for r in requests:
        queues.setdefault(r.model, deque()).append(r)
    # llama.cpp answers one request at a time: more workers would only queue (and time out) there
    concurrency: Counter[str] = Counter()  # a model group: the sum of its deployments' concurrency
    for m in config.models:
        concurrency[m.name] += 1 if m.kind in ("embedded", "terminology") else m.max_concurrency
    stopped_models: set[str] = set()

    with contextlib.ExitStack() as stack:
        if bar is None:
            bar = stack.enter_context(Progress(len(requests), enabled=progress))

        def record(r: Request, pairs: list[Pair], rejects: list[Reject], completion: Completion | None) -> None:
            store.add(pairs, rejects)
            request_rejects = sum(1 for x in rejects if x.reason != "invalid_item")
            summary.pairs += len(pairs)
            summary.rejects += len(rejects)
            summary.count(pairs[0].model if pairs else r.model, "pairs", len(pairs))
            summary.count(r.model, "requests")
            summary.done += 1
            if request_rejects:
                summary.count(r.model, "rejected_requests")
            tokens = 0
            if completion is not None:
                summary.input_tokens += completion.input_tokens
                summary.output_tokens += completion.output_tokens
                summary.cost_usd += completion.cost_usd or 0.0
                tokens = completion.input_tokens + completion.output_tokens
            bar.update(pairs=len(pairs), rejects=len(rejects), tokens=tokens,
                       cost_usd=completion.cost_usd if completion else 0.0)

        async def worker(model: str, queue: deque[Request]) -> None:
            while queue and model not in stopped_models:
                r = queue[0]
                if r.kind == "terminology":
                    queue.popleft()
                    record(r, terminology_pairs(r), [], None)
                    continue
                if not budget.allows_another():
                    return
                queue.popleft()
                budget.start()
                summary.requests += 1
                seed = int(r.key[:8], 16) % (2**31)
                try:
                    completion = await client.complete(r.model, r.prompt, temperature=r.temperature, seed=seed)
                except LLMAuthError as exc:
                    stopped_models.add(model)
                    summary.notes.append(f"model '{model}' stopped: {exc}")
                    summary.failed += 1
                    summary.count(r.model, "requests_failed")
                    summary.count(r.model, "auth_failed")
                    record(r, [], [failed_reject(r, client, str(exc))], None)
                    continue
                except LLMRequestError as exc:
                    summary.failed += 1
                    summary.count(r.model, "requests_failed")
                    record(r, [], [failed_reject(r, client, str(exc))], None)
                    continue
                except BadReplyError as exc:  # final: asking again would get the same reply
                    summary.count(r.model, "bad_replies")
                    record(r, [], [bad_reply_reject(r, client, exc)], None)
                    continue
                budget.spend(completion.cost_usd)
                pairs, rejects = reply_to_pairs(r, completion, max_mentions=config.max_mentions_per_reply)
                if not pairs:
                    summary.count(r.model, "bad_replies")
                record(r, pairs, rejects, completion)

        async def flusher() -> None:
            while True:
                await asyncio.sleep(flush_every_s)
                store.flush()

        flush_task = asyncio.create_task(flusher())
        try:
            workers = [worker(name, q) for name, q in queues.items() for _ in range(concurrency.get(name, 1))]
            await asyncio.gather(*workers)
        finally:
            flush_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flush_task
            store.flush()
            await client.aclose()
    summary.remaining = sum(len(q) for q in queues.values())
    return summary


# ------------------------------------------------------------------------------- reply -> records
def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def reply_to_pairs(r: Request, c: Completion, *, max_mentions: int = 50) -> tuple[list[Pair], list[Reject]]:
    """The pairs a reply makes (at most `max_mentions`), and rejects for what it did not (kept with the
    raw text and why). Never raises on what a server sent: a bad reply must not stop the run."""
    assert r.prompt is not None
    common = dict(code=r.code, language=r.language, litellm_model=c.litellm_model, task=r.task,
                  sample_index=r.sample_index, prompt_id=r.prompt.prompt_id, prompt_hash=r.prompt.prompt_hash,
                  created_at=_now(), clinassay_version=clinassay_version(), request_key=r.key)
    mentions = parse_mentions(c.text, prefill=r.prompt.prefill)
    rejects = []
    kept = []
    for m in mentions:
        if has_lone_surrogate(m):
            rejects.append(Reject(reason="invalid_item", detail="the mention holds a lone surrogate (not text)",
                                  raw=printable(m), model=c.served_by, cost_usd=0.0, **common))
        elif m.replace(".", "").casefold() == r.code.replace(".", "").casefold():
            rejects.append(Reject(reason="invalid_item", detail="the mention is the code itself", raw=m,
                                  model=c.served_by, cost_usd=0.0, **common))
        else:
            kept.append(m)
    if len(kept) > max_mentions:
        dropped = kept[max_mentions:]
        kept = kept[:max_mentions]
        rejects.append(Reject(reason="invalid_item", model=c.served_by, cost_usd=0.0,
                              detail=f"the reply held {len(kept) + len(dropped):,} mentions; only the first "
                                     f"{max_mentions} are kept (max_mentions_per_reply)",
                              raw=_capped("\n".join(dropped)), **common))
    usage = dict(input_tokens=c.input_tokens, output_tokens=c.output_tokens)
    if not kept:
        reason = "empty" if not c.text.strip() or mentions else "unparseable"
        detail = "no mention in the reply" if reason == "empty" else "no mention list could be read from the reply"
        rejects.append(Reject(reason=reason, detail=detail, raw=_capped(printable(c.text)), model=c.served_by,
                              cost_usd=c.cost_usd, **usage, **common))
        return [], rejects
    share = None if c.cost_usd is None else c.cost_usd / len(kept)
    pairs = [
        Pair(mention=m, model=c.served_by, negative_of=r.negative_of, seed=r.seed, temperature=r.temperature,
             cost_usd=share, request_pairs=len(kept), **usage, **common).ensure_id()
        for m in kept
    ]
    return pairs, rejects


RAW_CHARS = 20_000
"""A reject keeps this much of a reply's raw text (a runaway reply is not copied whole)."""


def _capped(text: str) -> str:
    return text if len(text) <= RAW_CHARS else text[:RAW_CHARS] + f"... ({len(text):,} characters)"


def bad_reply_reject(r: Request, client: LLMClient, exc: BadReplyError) -> Reject:
    """A reply that could not be read at all (no choices, ...): final, with what the server sent."""
    return Reject(reason=exc.reason, detail=str(exc), raw=_capped(printable(exc.raw)), code=r.code, language=r.language,
                  model=r.model, litellm_model=client.litellm_model(r.model), task=r.task,
                  sample_index=r.sample_index, prompt_id=r.prompt.prompt_id if r.prompt else None,
                  prompt_hash=r.prompt.prompt_hash if r.prompt else None, created_at=_now(),
                  request_key=r.key, input_tokens=exc.input_tokens, output_tokens=exc.output_tokens,
                  cost_usd=0.0, clinassay_version=clinassay_version())


def failed_reject(r: Request, client: LLMClient, detail: str) -> Reject:
    return Reject(reason="request_failed", detail=detail, raw="", code=r.code, language=r.language,
                  model=r.model, litellm_model=client.litellm_model(r.model), task=r.task,
                  sample_index=r.sample_index, prompt_id=r.prompt.prompt_id if r.prompt else None,
                  prompt_hash=r.prompt.prompt_hash if r.prompt else None, created_at=_now(),
                  request_key=r.key, cost_usd=0.0, clinassay_version=clinassay_version())


def terminology_pairs(r: Request) -> list[Pair]:
    return [
        Pair(mention=text, code=r.code, language=r.language, model=f"terminology:{source}", litellm_model=None,
             task=r.task, negative_of=r.negative_of, prompt_id=TERMINOLOGY_PROMPT_ID, prompt_hash=r.prompt_hash,
             seed=r.seed, temperature=None, sample_index=r.sample_index, request_key=r.key, created_at=_now(),
             input_tokens=0, output_tokens=0, cost_usd=0.0, clinassay_version=clinassay_version(),
             request_pairs=len(r.static_mentions)).ensure_id()
        for text, source in r.static_mentions
    ]
