"""Run a plan: requests run concurrently per model, replies become pairs or rejects, on disk at once.

Each generator gets as many workers as its concurrency (generation/generators.py: a model group's
`max_concurrency`, one for the embedded model), paced by its `rpm`; the LLM client's Router retries
and falls back. Finished requests are flushed to disk in small batches
(fsync'ed), so an interrupted run resumes where it stopped (see `generation.store`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

from clinassay.generation.budget import Budget
from clinassay.generation.config import GenerationConfig
from clinassay.generation.errors import GenerationInputError, LLMAuthError, LLMRequestError
from clinassay.generation.generators import Generator, generators, llm_deployments
from clinassay.generation.llm import BadReplyError, Completion, LLMClient, quiet_litellm
from clinassay.generation.plan import Plan, Request, build_plan
from clinassay.generation.progress import Progress
from clinassay.generation.records import Pair, Reject
from clinassay.generation.replies import (bad_reply_reject, clinassay_version, failed_reject, reply_to_pairs,
                                          terminology_pairs)
from clinassay.generation.store import PairStore, ResumeState
from clinassay.terminology.protocol import TerminologyLike

__all__ = ["RunSummary", "clinassay_version", "generate", "reply_to_pairs", "run_requests", "terminology_pairs"]


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


def generate(config: GenerationConfig, *, out: Path | str, terminology: TerminologyLike | None = None, resume: bool = False,
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
    by_name = generators(config)
    llm_models = {r.model for r in pending if by_name[r.model].calls_llm}
    with contextlib.ExitStack() as stack:
        api_bases = {}
        local = [name for name in llm_models if by_name[name].local_server]
        if local:
            from clinassay.generation.embedded import EmbeddedServer

            server = stack.enter_context(EmbeddedServer())
            api_bases = {name: server.api_base for name in local}
        client = LLMClient(llm_deployments(config, api_bases), routing_strategy=config.routing_strategy)
        if llm_models:
            client.check_credentials()
        stack.enter_context(quiet_litellm())
        bar = stack.enter_context(Progress(len(pending), enabled=show))
        if config.processes > 1 and llm_models:
            from clinassay.generation.shards import run_sharded

            asyncio.run(run_requests([r for r in pending if r.model not in llm_models], config=config, store=store,
                                     client=client, budget=budget, summary=summary, progress=show, bar=bar))
            run_sharded([r for r in pending if r.model in llm_models], config=config, store=store,
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
    by_name = generators(config)
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

        async def worker(model: str, generator: Generator, queue: deque[Request]) -> None:
            while queue and model not in stopped_models:
                r = queue[0]
                if generator.calls_llm and not budget.allows_another():
                    return
                queue.popleft()
                if generator.calls_llm:
                    budget.start()
                    summary.requests += 1
                try:
                    answer = await generator.answer(r, client, max_mentions=config.max_mentions_per_reply)
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
                if answer.completion is not None:
                    budget.spend(answer.completion.cost_usd)
                    if not answer.pairs:
                        summary.count(r.model, "bad_replies")
                record(r, answer.pairs, answer.rejects, answer.completion)

        async def flusher() -> None:
            while True:
                await asyncio.sleep(flush_every_s)
                store.flush()

        flush_task = asyncio.create_task(flusher())
        try:
            workers = [worker(name, by_name[name], q) for name, q in queues.items() for _ in range(by_name[name].concurrency)]
            await asyncio.gather(*workers)
        finally:
            flush_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flush_task
            store.flush()
            await client.aclose()
    summary.remaining = sum(len(q) for q in queues.values())
    return summary
