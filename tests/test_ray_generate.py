"""`clinassay generate --engine ray`: the plan cut into disjoint slices by request key, one Ray task and
shard per slice with its own Router and rate-limit share, shards that resume and concatenate without
duplicates (generation/distributed.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from clinassay.generation.config import GenerationConfig, ModelConfig
from clinassay.generation.distributed import _budget_share, shard_path, shards_dir_for, split_plan
from clinassay.generation.plan import build_plan
from generation_stub import StubServer


@pytest.fixture(scope="module")
def stub():
    with StubServer() as server:
        yield server


def _config(stub, **kw) -> GenerationConfig:
    models = [ModelConfig(name="alpha", model="openai/stub-ok-a", api_base=stub.api_base, num_retries=0,
                          timeout_s=10.0, rpm=600, max_concurrency=8),
              ModelConfig(name="terms", model="terminology")]
    base = dict(languages=["es", "en"], mentions_per_code=3, codes_file=None, sample=4, models=models, progress=False)
    return GenerationConfig(**{**base, **kw})


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _pairs(path: Path) -> list[tuple[str, str]]:
    return sorted((p["request_key"], p["mention"]) for p in _read(path))


def test_the_plan_splits_into_disjoint_slices_by_request_key(stub, tree_terminology) -> None:
    plan = build_plan(tree_terminology, _config(stub))
    parts = split_plan(plan, 3)
    keys = [[r.key for r in part.requests] for part in parts]
    assert sorted(k for part in keys for k in part) == sorted(r.key for r in plan.requests)
    assert sum(len(set(a) & set(b)) for i, a in enumerate(keys) for b in keys[i + 1:]) == 0
    assert all(keys)
    reversed_parts = split_plan(replace(plan, requests=plan.requests[::-1]), 3)
    assert [sorted(r.key for r in p.requests) for p in reversed_parts] == [sorted(k) for k in keys]
    share = _budget_share(_config(stub, max_requests=10, max_cost_usd=1.0), 3)
    alpha = next(m for m in share.models if m.name == "alpha")
    assert (alpha.rpm, alpha.max_concurrency, share.max_requests, share.max_cost_usd) == (200, 3, 4, 1.0 / 3)


@pytest.mark.slow
def test_generate_on_ray_makes_the_local_pairs_and_resumes_per_shard(stub, tmp_path, tree_terminology) -> None:
    ray = pytest.importorskip("ray")
    from clinassay.generation.distributed import generate_on_ray
    from clinassay.generation.runner import generate

    config = _config(stub)
    plan = build_plan(tree_terminology, config)
    local = generate(config, out=tmp_path / "local.jsonl", plan=plan)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    try:
        out = tmp_path / "ray.jsonl"
        summary = generate_on_ray(config, out=out, plan=plan, workers=3)
        assert _pairs(out) == _pairs(tmp_path / "local.jsonl")
        assert summary.pairs == local.pairs and summary.done == len(plan.requests)
        folder = shards_dir_for(out)
        shards = [shard_path(folder, i, 3) for i in range(3)]
        assert all(s.exists() and _read(s) for s in shards)
        by_shard = [{p["request_key"] for p in _read(s)} for s in shards]
        assert not (by_shard[0] & by_shard[1] or by_shard[0] & by_shard[2] or by_shard[1] & by_shard[2])

        # a crash in one shard: its last request cut in half, a torn line; --resume redoes only that
        lines = shards[1].read_bytes().splitlines(keepends=True)
        shards[1].write_bytes(b"".join(lines[:-2]) + lines[-2][:10])
        again = generate_on_ray(config, out=out, plan=plan, resume=True, workers=5)  # the first run's 3 slices
        assert _pairs(out) == _pairs(tmp_path / "local.jsonl")
        assert 1 <= again.done <= 2 and again.already_done == len(plan.requests) - again.done
        assert len(_read(out)) == len(set(_pairs(out)))
        with pytest.raises(Exception, match="already exists"):
            generate_on_ray(config, out=out, plan=plan)
    finally:
        ray.shutdown()
