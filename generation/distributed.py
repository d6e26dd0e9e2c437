"""`clinassay generate --engine ray`: the request plan in disjoint slices, one Ray task per slice.

Each task runs the local runner (generation/runner.py `generate`) over its slice: its own LiteLLM Router,
its share of every model's concurrency and rpm and of the budget (generation/shards.py `_divided`), and
its own shard file, appended to and fsync'ed as a local run appends to its output, with the same request
keys. A request belongs to the slice its key names (`slice_of`), so a rerun puts every request in the
same shard whatever the plan's order: `--resume` resumes each shard (a Ray retry of a task that died
does the same), and the shards concatenate without duplicates. When every slice is done, the shards are
concatenated in order into the output file (the audit also reads the shards folder directly).

Shards live in `OUT.shards/` beside the output (`shard-00000-of-00004.jsonl` and its rejects file), with
`slices.json` recording how many slices the plan was cut into; a resume keeps that number. Workers on
other machines need that folder on a filesystem they share with the driver.

Ray is imported only when this runs (`pip install 'clinassay[ray]'`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from clinassay.generation.config import GenerationConfig
from clinassay.generation.errors import GenerationInputError
from clinassay.generation.generators import generators
from clinassay.generation.plan import Plan, Request
from clinassay.generation.runner import RunSummary
from clinassay.generation.shards import _divided
from clinassay.generation.store import PairStore, rejects_path_for

SLICES_FILE = "slices.json"


def shards_dir_for(out: Path | str) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".shards")


def shard_path(folder: Path, index: int, slices: int) -> Path:
    return folder / f"shard-{index:05d}-of-{slices:05d}.jsonl"


def slice_of(request: Request, slices: int, *, serial: bool = False) -> int:
    """The slice a request belongs to, from its key (stable across runs); a `serial` generator's requests
    (the embedded model's: its llama.cpp server answers one request at a time) all go to slice 0."""
    if serial:
        return 0
    return int(hashlib.blake2b(request.key.encode(), digest_size=8).hexdigest(), 16) % slices


def split_plan(plan: Plan, slices: int) -> list[Plan]:
    """`slices` disjoint plans whose requests together are the plan's (each keeps the plan's order)."""
    serial = {name for name, g in generators(plan.config).items() if g.local_server}
    parts: list[list[Request]] = [[] for _ in range(slices)]
    for r in plan.requests:
        parts[slice_of(r, slices, serial=r.model in serial)].append(r)
    return [replace(plan, requests=part) for part in parts]


def _run_slice(config_json: str, plan: Plan, shard: str) -> dict[str, Any]:
    """One slice, in a Ray worker: the local runner over its own shard (always resuming: a fresh shard is
    empty, and a retried task finishes what its first attempt wrote)."""
    from clinassay.generation.runner import generate

    config = GenerationConfig.model_validate_json(config_json)
    summary = generate(config, out=shard, resume=True, progress=False, plan=replace(plan, config=config))
    result = asdict(summary)
    result["per_model"] = {k: dict(v) for k, v in summary.per_model.items()}
    return result


def _budget_share(config: GenerationConfig, slices: int) -> GenerationConfig:
    divided = _divided(config, slices)
    update: dict[str, Any] = {}
    if config.max_requests is not None:
        update["max_requests"] = max(1, -(-config.max_requests // slices))
    if config.max_cost_usd is not None:
        update["max_cost_usd"] = config.max_cost_usd / slices
    return divided.model_copy(update=update)


def _slices(folder: Path, wanted: int, resume: bool) -> int:
    record = folder / SLICES_FILE
    if resume and record.exists():
        return int(json.loads(record.read_text(encoding="utf-8"))["slices"])
    folder.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"slices": wanted}) + "\n", encoding="utf-8")
    return wanted


def concatenate(folder: Path, slices: int, out: Path) -> None:
    """The shards, in order, into `out` and their rejects into out's rejects file (written beside, renamed in)."""
    for target, name_of in ((out, lambda p: p), (rejects_path_for(out), rejects_path_for)):
        tmp = target.with_name(f".{target.name}.tmp")
        with open(tmp, "wb") as handle:
            for i in range(slices):
                part = name_of(shard_path(folder, i, slices))
                if part.exists():
                    with open(part, "rb") as source:
                        shutil.copyfileobj(source, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)


def generate_on_ray(config: GenerationConfig, *, out: Path | str, plan: Plan, resume: bool = False,
                    workers: int | None = None, address: str | None = None) -> RunSummary:
    """Generate `plan` on a Ray cluster into `out` (see the module docstring); returns the merged summary."""
    try:
        import ray
    except ImportError as exc:
        raise GenerationInputError("--engine ray needs Ray, which is not installed: pip install 'clinassay[ray]'") from exc
    out = Path(out)
    folder = shards_dir_for(out)
    if not resume and (PairStore(out).has_output() or folder.exists()):
        raise GenerationInputError(f"output {out} (or its shards {folder}) already exists: pass --resume to finish it, "
                                   "or choose another output path")
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False, include_dashboard=False)
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        slices = _slices(folder, max(1, workers or cpus), resume)
        parts = split_plan(plan, slices)
        config_json = _budget_share(config, slices).model_dump_json()
        run = ray.remote(num_cpus=1, max_retries=3)(_run_slice)
        refs = [run.remote(config_json, part, str(shard_path(folder, i, slices))) for i, part in enumerate(parts)]
        results = ray.get(refs)
    finally:
        if started:
            ray.shutdown()
    concatenate(folder, slices, out)
    return merge_summaries(results, planned=len(plan.requests))


def merge_summaries(results: list[dict[str, Any]], *, planned: int) -> RunSummary:
    summary = RunSummary(planned=planned)
    for part in results:
        for name in ("already_done", "done", "requests", "pairs", "rejects", "failed", "input_tokens", "output_tokens",
                     "cost_usd", "total_cost_usd", "remaining"):
            setattr(summary, name, getattr(summary, name) + part[name])
        for model, counts in part["per_model"].items():
            for what, k in counts.items():
                summary.count(model, what, k)
        summary.notes.extend(part["notes"])
        summary.stopped = summary.stopped or part["stopped"]
    return summary
