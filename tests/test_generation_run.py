"""Generation runs against a local OpenAI-compatible stub server: retries, rejects, budgets,
fallbacks, provenance with two models, resume (also after kill -9), and key hygiene."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clinassay.generation.config import GenerationConfig, ModelConfig
from clinassay.generation.errors import GenerationInputError
from clinassay.generation.runner import generate
from clinassay.generation.store import PairStore, rejects_path_for
from generation_stub import StubServer, free_port

pytestmark = pytest.mark.timeout(120)

PROVENANCE = ["id", "mention", "code", "language", "model", "litellm_model", "task", "prompt_id", "prompt_hash",
              "seed", "temperature", "sample_index", "request_key", "created_at", "input_tokens",
              "output_tokens", "cost_usd", "clinassay_version"]


@pytest.fixture(scope="module")
def stub():
    with StubServer(slow_s=3.0) as server:
        yield server


def _model(stub, name, stub_model, **kw):
    kw.setdefault("num_retries", 0)
    kw.setdefault("timeout_s", 5.0)
    return ModelConfig(name=name, model=f"openai/{stub_model}", api_base=stub.api_base, **kw)


def _config(models, **kw):
    base = dict(languages=["es", "en"], mentions_per_code=3, codes_file=None, sample=3, models=models, progress=False)
    base.update(kw)
    return GenerationConfig(**base)


def _read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_two_models_in_one_run_with_correct_provenance(stub, tmp_path, tree_terminology):
    out = tmp_path / "pairs.jsonl"
    config = _config([_model(stub, "alpha", "stub-ok-a", temperature=0.3),
                      _model(stub, "beta", "stub-ok-b", temperature=0.9, input_cost_per_token=1e-6,
                             output_cost_per_token=2e-6)],
                     tasks=["positive", "hard_negative"])
    summary = generate(config, out=out, terminology=tree_terminology)
    pairs = _read(out)
    assert summary.pairs == len(pairs) > 0 and summary.failed == 0
    assert not rejects_path_for(out).exists()
    for p in pairs:
        assert all(k in p for k in PROVENANCE), p
        assert all(p[k] is not None for k in PROVENANCE if k != "cost_usd"), p
        stub_model = {"alpha": "stub-ok-a", "beta": "stub-ok-b"}[p["model"]]
        assert p["litellm_model"] == f"openai/{stub_model}"
        assert p["mention"].startswith(stub_model) and p["mention"].endswith(p["code"])  # the reply was theirs
        assert p["temperature"] == {"alpha": 0.3, "beta": 0.9}[p["model"]]
        assert (p["task"] == "hard_negative") == (p.get("negative_of") is not None)
        # beta has configured prices; alpha's stub model is in no price table: its cost is unknown
        assert p["cost_usd"] > 0 if p["model"] == "beta" else p["cost_usd"] is None
    assert len({p["id"] for p in pairs}) == len(pairs)
    per_model = {m: sum(1 for p in pairs if p["model"] == m) for m in ("alpha", "beta")}
    assert per_model["alpha"] == per_model["beta"] == len(pairs) // 2
    assert summary.cost_usd == pytest.approx(sum(p["cost_usd"] or 0 for p in pairs))


def test_rate_limits_and_server_errors_are_retried(stub, tmp_path, tree_terminology):
    out = tmp_path / "pairs.jsonl"
    config = _config([_model(stub, "flaky", "stub-flaky-r", num_retries=3)], languages=["es"], sample=2)
    before = stub.calls["stub-flaky-r"]
    summary = generate(config, out=out, terminology=tree_terminology)
    assert summary.failed == 0 and summary.pairs == 2 * 3
    assert stub.calls["stub-flaky-r"] - before == 2 * 3  # a 429, a 500, then the answer, per request


def test_unparseable_replies_are_kept_with_their_raw_text(stub, tmp_path, tree_terminology):
    out = tmp_path / "pairs.jsonl"
    summary = generate(_config([_model(stub, "junk", "stub-garbage")], languages=["fr"], sample=2),
                       out=out, terminology=tree_terminology)
    rejects = _read(rejects_path_for(out))
    assert summary.pairs == 0 and len(rejects) == 2
    assert {r["reason"] for r in rejects} == {"unparseable"}
    assert all("talk about the weather" in r["raw"] and r["model"] == "junk" for r in rejects)
    # final rejects close their request: a resume has nothing left to do
    again = generate(_config([_model(stub, "junk", "stub-garbage")], languages=["fr"], sample=2),
                     out=out, terminology=tree_terminology, resume=True)
    assert again.requests == 0 and again.already_done == 2


def test_failed_requests_are_recorded_and_retried_on_resume(stub, tmp_path, tree_terminology):
    out = tmp_path / "pairs.jsonl"
    down = _config([_model(stub, "m", "stub-down")], languages=["es"], sample=2)
    summary = generate(down, out=out, terminology=tree_terminology)
    rejects = _read(rejects_path_for(out))
    assert summary.failed == 2 and [r["reason"] for r in rejects] == ["request_failed"] * 2
    assert all("InternalServerError" in r["detail"] for r in rejects)
    # unlike unparseable replies, failed requests are not final: a resume tries them again
    again = generate(down, out=out, terminology=tree_terminology, resume=True)
    assert again.already_done == 0 and again.requests == 2
    assert len(_read(rejects_path_for(out))) == 4


def test_timeouts_become_failed_requests(stub, tmp_path, tree_terminology):
    out = tmp_path / "pairs.jsonl"
    summary = generate(_config([_model(stub, "s", "stub-slow", timeout_s=0.5)], languages=["es"], sample=1),
                       out=out, terminology=tree_terminology)
    assert summary.failed == 1
    assert "Timeout" in _read(rejects_path_for(out))[0]["detail"]


def test_fallback_serves_and_provenance_names_it(stub, tmp_path, tree_terminology):
    out = tmp_path / "pairs.jsonl"
    config = _config([_model(stub, "primary", "stub-down", fallbacks=["backup"]), _model(stub, "backup", "stub-ok-fb")],
                     languages=["es"], sample=1)
    generate(config, out=out, terminology=tree_terminology)
    pairs = _read(out)
    primary_keys = {p["request_key"] for p in pairs if p["mention"].startswith("stub-ok-fb")}
    assert pairs and all(p["model"] == "backup" and p["litellm_model"] == "openai/stub-ok-fb" for p in pairs)
    assert len(primary_keys) == 2  # primary's request (served by backup) and backup's own


def test_budget_max_requests_stops_cleanly_and_resume_finishes(stub, tmp_path, tree_terminology):
    out = tmp_path / "pairs.jsonl"
    config = _config([_model(stub, "ok", "stub-ok-budget", max_concurrency=4)], sample=4, max_requests=3)
    first = generate(config, out=out, terminology=tree_terminology)
    assert first.stopped == "max_requests" and first.requests == 3 and len(_read(out)) == 9
    # the budget counts the whole output: resuming with the same budget does nothing more
    assert generate(config, out=out, terminology=tree_terminology, resume=True).requests == 0
    rest = generate(config.model_copy(update={"max_requests": None}), out=out, terminology=tree_terminology,
                    resume=True)
    assert rest.requests == 8 - 3 and rest.stopped is None
    pairs = _read(out)
    assert len(pairs) == 8 * 3 and len({p["id"] for p in pairs}) == len(pairs)


def test_budget_max_cost_stops_cleanly(stub, tmp_path, tree_terminology):
    out = tmp_path / "pairs.jsonl"
    priced = _model(stub, "ok", "stub-ok-cost", max_concurrency=1, input_cost_per_token=1e-3, output_cost_per_token=1e-3)
    summary = generate(_config([priced], sample=4, max_cost_usd=0.5), out=out, terminology=tree_terminology)
    assert summary.stopped == "max_cost_usd"
    assert 0 < summary.requests < 8
    # one request may finish past the line, never more with one worker
    assert summary.total_cost_usd - summary.cost_usd == 0 and summary.cost_usd < 0.5 + summary.cost_usd / summary.requests


def test_existing_output_is_not_overwritten_without_resume(stub, tmp_path, tree_terminology):
    out = tmp_path / "pairs.jsonl"
    out.write_text('{"mention": "x", "code": "N39.0", "language": "es"}\n', encoding="utf-8")
    with pytest.raises(GenerationInputError, match="--resume"):
        generate(_config([_model(stub, "ok", "stub-ok")]), out=out, terminology=tree_terminology)


def test_api_key_comes_from_the_named_variable_and_is_never_written(stub, tmp_path, monkeypatch, tree_terminology):
    out = tmp_path / "pairs.jsonl"
    config = _config([_model(stub, "k", "stub-down", api_key_env="CLINASSAY_TEST_KEY")], languages=["es"], sample=1)
    with pytest.raises(GenerationInputError, match="CLINASSAY_TEST_KEY"):
        generate(config, out=out, terminology=tree_terminology)
    monkeypatch.setenv("CLINASSAY_TEST_KEY", "sk-very-secret-4242")
    generate(config, out=out, terminology=tree_terminology)
    for path in tmp_path.iterdir():
        assert "sk-very-secret-4242" not in path.read_text(encoding="utf-8")


def test_torn_last_line_and_partial_request_are_repaired(tmp_path):
    out = tmp_path / "pairs.jsonl"
    full = [{"mention": f"m{i}", "code": "N39.0", "language": "es", "request_key": "A", "request_pairs": 2}
            for i in range(2)]
    partial = {"mention": "p0", "code": "N39.1", "language": "es", "request_key": "B", "request_pairs": 3}
    lines = [json.dumps(o) for o in full + [partial]]
    out.write_text("\n".join(lines) + '\n{"mention": "p1", "co', encoding="utf-8")
    state = PairStore(out).recover()
    assert state.done == {"A"} and state.pairs == 2
    assert [json.loads(x)["mention"] for x in out.read_text().splitlines()] == ["m0", "m1"]
    assert len(state.repaired) == 2


_KILL_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from clinassay.generation.config import GenerationConfig, ModelConfig
from clinassay.generation.runner import generate
from terminology_fixtures import make_tree_terminology
if __name__ == "__main__":  # worker processes are spawned: they re-import this script
    config = GenerationConfig.model_validate_json({config!r})
    generate(config, out={out!r}, terminology=make_tree_terminology(), resume=True)
"""


@pytest.mark.parametrize("processes", [1, 2])
def test_resume_after_kill_minus_9_loses_nothing_and_repeats_nothing(tmp_path, processes, tree_terminology):
    port = free_port()
    server = subprocess.Popen([sys.executable, str(Path(__file__).with_name("generation_stub.py")),
                               "--latency", "0.15", "--port", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        server.stdout.readline()
        out = tmp_path / "pairs.jsonl"
        config = GenerationConfig(
            languages=["es", "en", "fr", "pt"], mentions_per_code=4, samples_per_code=3, sample=8,
            tasks=["positive"], progress=False, processes=processes,
            models=[ModelConfig(name="ok", model="openai/stub-ok-kill", api_base=f"http://127.0.0.1:{port}/v1",
                                max_concurrency=4, num_retries=0)],
        )
        total = 8 * 4 * 3
        script = tmp_path / "run.py"
        script.write_text(_KILL_SCRIPT.format(tests=str(Path(__file__).parent), config=config.model_dump_json(),
                                              out=str(out)))
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        child = subprocess.Popen([sys.executable, str(script)], env=env)
        deadline = time.time() + 60
        while time.time() < deadline and (not out.exists() or len(_read_tolerant(out)) < 20):
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        before = _read_tolerant(out)
        assert 0 < len(before) < total * 4, "the kill should land mid-run"
        # resume in this process: finishes the plan
        summary = generate(config, out=out, terminology=tree_terminology, resume=True)
        pairs = _read(out)
        keys = {p["request_key"] for p in pairs}
        assert len(keys) == total
        assert len(pairs) == total * 4
        assert len({p["id"] for p in pairs}) == len(pairs)
        assert summary.already_done >= len(before) // 4 - 1
        # everything written before the kill survived (same ids)
        assert {p["id"] for p in before if "id" in p} <= {p["id"] for p in pairs}
    finally:
        server.kill()
        server.wait()


def _read_tolerant(path: Path) -> list[dict]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def test_worker_processes_give_the_same_pairs_and_share_the_budget(stub, tmp_path, tree_terminology):
    models = [_model(stub, "alpha", "stub-ok-pa", max_concurrency=4), _model(stub, "beta", "stub-ok-pb"),
              ModelConfig(name="terminology", model="terminology")]
    single, sharded = tmp_path / "single.jsonl", tmp_path / "sharded.jsonl"
    generate(_config(models, sample=4), out=single, terminology=tree_terminology)
    # two worker processes, with a request budget they split and that still stops the run cleanly
    summary = generate(_config(models, sample=4, processes=2, max_requests=5), out=sharded,
                       terminology=tree_terminology)
    a, b = _read(single), _read(sharded)
    assert summary.requests == 5 and summary.stopped == "max_requests" and summary.pairs == len(b)
    assert len({p["request_key"] for p in b if p["model"] in ("alpha", "beta")}) == 5
    assert {p["id"] for p in b} <= {p["id"] for p in a}  # same keys, same pairs as in one process
    assert {p["model"] for p in b} >= {"alpha", "beta", "terminology:icd10cm"}


def test_progress_bar_shows_requests_pairs_tokens_and_cost(stub, tmp_path, capsys, tree_terminology):
    priced = _model(stub, "ok", "stub-ok-bar", input_cost_per_token=1e-6, output_cost_per_token=1e-6)
    generate(_config([priced], languages=["es"], sample=2), out=tmp_path / "p.jsonl", terminology=tree_terminology,
             progress=True)
    err = capsys.readouterr().err
    assert "2/2" in err and "req/s" in err
    assert "pairs=6" in err and "tok=" in err and "$0.0" in err
