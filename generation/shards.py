"""Several worker processes for one run, when one process's CPU is the bottleneck.

LiteLLM spends a few milliseconds of CPU on every request (request building, logging, cost), so
one event loop tops out at a few hundred requests per second whatever the concurrency. With
`processes = N`, the LLM requests are split into N shards, each run by its own process (own event
loop, own Router, the model's concurrency and rpm divided among them). Results come back to the
parent over a queue and the parent alone writes the output, so resume and crash safety are those
of a single process. The budget is divided among the shards.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue as queue_module
import threading
import time
from dataclasses import asdict
from typing import Any, Collection

from clinassay.generation.budget import Budget
from clinassay.generation.config import GenerationConfig
from clinassay.generation.errors import GenerationError
from clinassay.generation.generators import generators, llm_deployments
from clinassay.generation.llm import LLMClient, quiet_litellm
from clinassay.generation.plan import Request
from clinassay.generation.progress import Progress
from clinassay.generation.records import Pair, Reject
from clinassay.generation.store import PairStore


class ShardSink:
    """Stands in for the store inside a worker process: sends each request's records to the parent."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self._batch: list[tuple] = []
        self._parent = os.getppid()

    def add(self, pairs: list[Pair], rejects: list[Reject]) -> None:
        source = pairs[0] if pairs else next((x for x in rejects if x.reason != "invalid_item"), None)
        tokens = ((source.input_tokens or 0) + (source.output_tokens or 0)) if source is not None else 0
        cost = sum(p.cost_usd or 0.0 for p in pairs) + sum(x.cost_usd or 0.0 for x in rejects)
        self._batch.append(([p.model_dump_json() + "\n" for p in pairs],
                            [x.model_dump_json(exclude_none=True) + "\n" for x in rejects], tokens, cost))

    def flush(self) -> None:
        if os.getppid() != self._parent:
            # the parent is gone (killed): nobody would write these results, so stop spending at once
            os._exit(3)
        if self._batch:
            self.channel.put(("batch", self._batch))
            self._batch = []


def shard_requests(requests: list[Request], n: int, *, serial: Collection[str] = ()) -> list[list[Request]]:
    """Round-robin, except the requests of the generators named in `serial`, which stay together (the
    embedded model's server answers one at a time)."""
    shards: list[list[Request]] = [[] for _ in range(n)]
    i = 0
    for r in requests:
        if r.model in serial:
            shards[0].append(r)
        else:
            shards[i % n].append(r)
            i += 1
    return [s for s in shards if s]


def _divided(config: GenerationConfig, n: int) -> GenerationConfig:
    return config.model_copy(update={"models": [m.share(n) for m in config.models], "processes": 1})


def _shard_main(config_json: str, requests: list[Request], api_bases: dict[str, str], max_requests: int | None,
                max_cost_usd: float | None, channel: Any) -> None:
    from clinassay.generation.runner import RunSummary, run_requests

    config = GenerationConfig.model_validate_json(config_json)
    summary = RunSummary()
    budget = Budget(max_cost_usd=max_cost_usd, max_requests=max_requests)
    client = LLMClient(llm_deployments(config, api_bases), routing_strategy=config.routing_strategy)
    sink = ShardSink(channel)
    with quiet_litellm():
        client.router()  # import LiteLLM and build the Router before saying ready
        channel.put(("ready", None))
        asyncio.run(run_requests(requests, config=config, store=sink, client=client, budget=budget,
                                 summary=summary, progress=False))
    sink.flush()
    result = asdict(summary)
    result["per_model"] = {k: dict(v) for k, v in summary.per_model.items()}
    result["stopped"] = budget.stopped
    channel.put(("done", result))


def run_sharded(requests: list[Request], *, config: GenerationConfig, store: PairStore, budget: Budget,
                summary: Any, bar: Progress, api_bases: dict[str, str], processes: int) -> float | None:
    """Run `requests` in `processes` worker processes; the caller's thread writes their results.

    Returns the monotonic time at which the last worker was ready (started and LiteLLM imported).
    """
    serial = {name for name, g in generators(config).items() if g.local_server}
    shards = shard_requests(requests, processes, serial=serial)
    if not shards:
        return None
    n = len(shards)
    divided = _divided(config, n).model_dump_json()
    left_requests = None if budget.max_requests is None else max(0, budget.max_requests - budget.requests)
    left_cost = None if budget.max_cost_usd is None else max(0.0, budget.max_cost_usd - budget.cost_usd)
    context = multiprocessing.get_context("spawn")
    channel = context.Queue()
    workers = []
    for i, shard in enumerate(shards):
        share_requests = None if left_requests is None else left_requests // n + (1 if i < left_requests % n else 0)
        share_cost = None if left_cost is None else left_cost / n
        process = context.Process(target=_shard_main, daemon=True,
                                  args=(divided, shard, api_bases, share_requests, share_cost, channel))
        process.start()
        workers.append(process)
    done = ready = 0
    all_ready: float | None = None
    lock = threading.Lock()
    try:
        while done < n:
            try:
                kind, payload = channel.get(timeout=1.0)
            except queue_module.Empty:
                dead = [p for p in workers if p.exitcode not in (None, 0)]
                if dead:
                    raise GenerationError(f"a generation worker process died (exit code {dead[0].exitcode}); "
                                          "rerun with --resume to finish") from None
                continue
            with lock:
                if kind == "batch":
                    for pair_lines, reject_lines, tokens, cost in payload:
                        store.add_lines(pair_lines, reject_lines)
                        bar.update(pairs=len(pair_lines), rejects=len(reject_lines), tokens=tokens, cost_usd=cost)
                    store.flush()
                elif kind == "ready":
                    ready += 1
                    if ready == n:
                        all_ready = time.monotonic()
                else:
                    done += 1
                    _merge(summary, budget, payload)
    finally:
        store.flush()
        for p in workers:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
    return all_ready


def _merge(summary: Any, budget: Budget, part: dict) -> None:
    for name in ("done", "requests", "pairs", "rejects", "failed", "input_tokens", "output_tokens", "cost_usd", "remaining"):
        setattr(summary, name, getattr(summary, name) + part[name])
    for model, counts in part["per_model"].items():
        for what, k in counts.items():
            summary.count(model, what, k)
    summary.notes.extend(part["notes"])
    budget.requests += part["requests"]
    budget.spend(part["cost_usd"])
    if part["stopped"] and not budget.stopped:
        budget.stopped = part["stopped"]
