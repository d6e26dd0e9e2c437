"""The kinds of generator: a table validates as its kind's class, takes only that kind's keys, and its
generator answers for what differs (concurrency, LLM or not, local server, deployments, price)."""

from __future__ import annotations

import pytest

from clinassay.config import load_config
from clinassay.generation.config import (EmbeddedModel, GenerationConfig, LiteLLMModel, ModelConfig,
                                         TerminologyModel)
from clinassay.generation.distributed import split_plan
from clinassay.generation.generators import EMBEDDED_LITELLM_MODEL, generators
from clinassay.generation.llm import LLMClient, resolve_api_key
from clinassay.generation.plan import build_plan
from clinassay.terminology.errors import ClinassayInputError

TABLES = [dict(name="g", model="openai/a", max_concurrency=3), dict(name="g", model="openai/b", max_concurrency=5),
          dict(name="gemma", model="embedded/gemma-3-270m", max_tokens=400),
          dict(name="labels", model="terminology", short_forms=True)]


def test_a_table_is_its_kind_and_survives_the_trip_to_a_worker_process():
    assert [type(ModelConfig(**t)) for t in TABLES] == [LiteLLMModel, LiteLLMModel, EmbeddedModel, TerminologyModel]
    assert type(ModelConfig()) is EmbeddedModel and type(ModelConfig(model="terminology:who")) is TerminologyModel
    config = GenerationConfig(models=TABLES)
    assert [m.kind for m in config.models] == ["litellm", "litellm", "embedded", "terminology"]
    assert GenerationConfig.model_validate_json(config.model_dump_json()) == config  # shards and Ray get JSON


@pytest.mark.parametrize("table, expected", [
    ('model = "terminology"\nrpm = 10', "'rpm' applies to LiteLLM models and the embedded model only, "
                                        "not to the terminology generator"),
    ('model = "embedded/gemma-3-270m"\napi_base = "http://x"', "'api_base' applies to LiteLLM models only"),
    ('model = "openai/x"\nsources = ["who"]', "'sources' applies to the terminology generator only"),
])
def test_a_key_of_another_kind_is_one_line_naming_it(tmp_path, table, expected):
    path = tmp_path / "c.toml"
    path.write_text(f'[[generation.models]]\nname = "m"\n{table}\n', encoding="utf-8")
    with pytest.raises(ClinassayInputError, match=r"'generation.models.0': Value error, " + expected) as info:
        load_config(path)
    assert "\n" not in str(info.value)


def test_each_generator_says_what_its_kind_does(tree_terminology):
    config = GenerationConfig(languages=["es"], sample=2, models=TABLES)
    by_name = generators(config)
    assert {n: (g.concurrency, g.calls_llm, g.local_server) for n, g in by_name.items()} == {
        "g": (8, True, False), "gemma": (1, True, True), "labels": (1, False, False)}
    assert [d.model for d in by_name["g"].deployments({})] == ["openai/a", "openai/b"]
    assert by_name["gemma"].deployments({}) == [] and by_name["labels"].deployments({"labels": "x"}) == []
    (local,) = by_name["gemma"].deployments({"gemma": "http://127.0.0.1:9/v1"})
    assert (local.model, local.max_tokens, local.structured_output) == (EMBEDDED_LITELLM_MODEL, 160, False)
    assert resolve_api_key(local) and LLMClient([local]).priced("gemma")  # a local endpoint, free
    assert by_name["gemma"].estimate_cost(10_000, 10_000) == by_name["labels"].estimate_cost(1, 1) == 0.0
    plan = build_plan(tree_terminology, config)
    styles = {r.model: r.prompt.prompt_id.split("/")[1] for r in plan.requests if r.prompt is not None}
    assert styles == {"g": "instruct", "gemma": "fewshot"}
    assert all(r.prompt is None and r.n == len(r.static_mentions) for r in plan.requests if r.model == "labels")
    first, *others = split_plan(plan, 3)  # the local server answers one request at a time: one slice holds them
    assert sum(r.model == "gemma" for r in first.requests) == sum(r.model == "gemma" for r in plan.requests)
    assert not any(r.model == "gemma" for part in others for r in part.requests)
