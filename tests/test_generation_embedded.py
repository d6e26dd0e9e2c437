"""The embedded Gemma 3 270M through llama.cpp's local server: a real LLM, offline (marker `llm`)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from clinassay.generation.config import GenerationConfig, ModelConfig
from clinassay.generation.embedded import EmbeddedServer, cache_dir, ensure_gguf
from clinassay.generation.runner import generate
from clinassay.generation.store import rejects_path_for

pytestmark = [
    pytest.mark.llm,
    pytest.mark.timeout(600),
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="needs the local-llm extra"),
]


def test_cache_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CLINASSAY_CACHE_DIR", str(tmp_path))
    assert cache_dir() == tmp_path


def test_embedded_gemma_generates_pairs_with_provenance(tmp_path, tree_terminology):
    out = tmp_path / "pairs.jsonl"
    config = GenerationConfig(
        languages=["es", "en"], mentions_per_code=3, progress=False,
        models=[ModelConfig(name="gemma-270m", model="embedded/gemma-3-270m", timeout_s=300)],
    )
    from clinassay.generation.plan import build_plan

    plan = build_plan(tree_terminology, config, codes=["N39.0", "A00.0"])
    summary = generate(config, out=out, plan=plan)
    pairs = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()] if out.exists() else []
    rejects = rejects_path_for(out)
    rejected = rejects.read_text(encoding="utf-8").splitlines() if rejects.exists() else []
    assert summary.failed == 0 and summary.requests == 4
    # every request became pairs or a reject with its raw text: nothing lost
    assert len({p["request_key"] for p in pairs}) + sum(json.loads(r)["reason"] != "invalid_item" for r in rejected) == 4
    assert pairs, "a small model still writes something readable"
    for p in pairs:
        assert p["model"] == "gemma-270m" and p["litellm_model"] == "text-completion-openai/gemma-3-270m"
        assert p["prompt_id"] == "positive/fewshot/v1" and p["cost_usd"] == 0.0 and p["output_tokens"] > 0


def test_server_stops_on_exit():
    with EmbeddedServer(model_path=ensure_gguf()) as server:
        process = server._process
        assert process.poll() is None
    assert process.poll() is not None
