"""Generation config in LiteLLM's shape, against the local stub server: several deployments under one
model name (a model group) share the load through the Router's routing strategy, `litellm_params` pass
through (Azure's `api_version` reaches the server), and keys are only ever named, never written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp import web

from clinassay.cli import main
from clinassay.config import load_config
from clinassay.generation.config import GenerationConfig, ModelConfig
from clinassay.generation.errors import GenerationInputError
from clinassay.generation.llm import LLMClient, resolve_api_key
from clinassay.generation.plan import build_plan
from clinassay.generation.runner import generate
from clinassay.terminology.errors import ClinassayInputError
from generation_stub import StubServer

pytestmark = pytest.mark.timeout(120)


class AzureStub(StubServer):
    """The stub, also answering Azure OpenAI's route; it records the api-version each request carried."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.api_versions: list[str | None] = []

    def _app(self) -> web.Application:
        app = super()._app()
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._azure)
        return app

    async def _azure(self, request: web.Request) -> web.Response:
        self.api_versions.append(request.query.get("api-version"))
        return await self._chat(request)


@pytest.fixture(scope="module")
def stub():
    with AzureStub() as server:
        yield server


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


GROUP = """
[generation]
languages = ["es", "en"]
sample = 3
mentions_per_code = 2
samples_per_code = 4
progress = false
routing_strategy = "{strategy}"

[[generation.models]]
name = "stub-group"
model = "openai/stub-ok-a"
api_base = "{api_base}"
rpm = 6000
tpm = 1000000
num_retries = 0
input_cost_per_token = 1e-6
output_cost_per_token = 2e-6

[[generation.models]]
name = "stub-group"
model = "openai/stub-ok-b"
api_base = "{api_base}"
rpm = 6000
tpm = 1000000
num_retries = 0
"""


@pytest.mark.parametrize("strategy", ["simple-shuffle", "least-busy"])
def test_two_deployments_of_one_group_share_the_load(stub, tmp_path, strategy, tree_terminology):
    config = load_config(_write(tmp_path, GROUP.format(api_base=stub.api_base, strategy=strategy))).generation
    plan = build_plan(tree_terminology, config)
    assert len(plan.requests) == 3 * 2 * 4  # the group is asked once per request, not once per deployment
    before = dict(stub.calls)
    out = tmp_path / "pairs.jsonl"
    summary = generate(config, out=out, terminology=tree_terminology, plan=plan)
    calls = {m: stub.calls[m] - before.get(m, 0) for m in ("stub-ok-a", "stub-ok-b")}
    assert calls["stub-ok-a"] > 0 and calls["stub-ok-b"] > 0, calls  # both deployments served
    assert sum(calls.values()) == summary.requests == summary.done == 24 and summary.failed == 0
    pairs = _read(out)
    assert len(pairs) == 48 and {p["model"] for p in pairs} == {"stub-group"}  # one generator for the audit
    for p in pairs:
        # provenance names the deployment that answered, and its prices (only deployment a has some)
        deployment = p["litellm_model"].removeprefix("openai/")
        assert p["mention"].startswith(deployment)
        assert (p["cost_usd"] is not None and p["cost_usd"] > 0) if deployment == "stub-ok-a" else p["cost_usd"] is None
    served = {d: sum(p["litellm_model"] == f"openai/{d}" for p in pairs) // 2 for d in calls}
    assert served == calls


def test_routing_strategy_rpm_tpm_and_litellm_params_reach_the_router(stub, tmp_path):
    text = GROUP.format(api_base=stub.api_base, strategy="usage-based-routing-v2").replace(
        'model = "openai/stub-ok-b"', 'model = "openai/stub-ok-b"\nlitellm_params = { organization = "org-1" }')
    config = load_config(_write(tmp_path, text)).generation
    client = LLMClient(config.models, routing_strategy=config.routing_strategy)
    router = client.router()
    assert router.routing_strategy == "usage-based-routing-v2"
    deployments = {d["model_info"]["id"]: d["litellm_params"] for d in router.model_list}
    assert set(deployments) == {"stub-group/0", "stub-group/1"}
    assert all(d["rpm"] == 6000 and d["tpm"] == 1_000_000 for d in deployments.values())
    assert deployments["stub-group/1"]["organization"] == "org-1"
    assert client._pacers["stub-group"].interval == pytest.approx(60 / 12000)  # paced at the group's total rpm


def test_azure_api_version_passes_through_to_the_server(stub, tmp_path, monkeypatch, tree_terminology):
    monkeypatch.setenv("STUB_AZURE_KEY", "azure-key-not-real")
    config = load_config(_write(tmp_path, f"""
[generation]
languages = ["es"]
sample = 2
mentions_per_code = 2
progress = false

[[generation.models]]
name = "azure-stub"
model = "azure/stub-ok-azure"
api_base = "http://127.0.0.1:{stub.port}"
num_retries = 0
structured_output = false
litellm_params = {{ api_version = "2024-10-21", api_key = "os.environ/STUB_AZURE_KEY" }}
""")).generation
    out = tmp_path / "pairs.jsonl"
    before = len(stub.api_versions)
    summary = generate(config, out=out, terminology=tree_terminology)
    assert summary.failed == 0 and summary.pairs == 4
    assert stub.api_versions[before:] == ["2024-10-21", "2024-10-21"]
    assert {p["litellm_model"] for p in _read(out)} == {"azure/stub-ok-azure"}


def test_keys_by_environment_name_in_both_forms(monkeypatch):
    monkeypatch.setenv("MY_KEY", "k-123")
    assert ModelConfig(name="a", model="openai/x", api_key_env="os.environ/MY_KEY").api_key_env == "MY_KEY"
    by_param = ModelConfig(name="b", model="openai/x", litellm_params={"api_key": "os.environ/MY_KEY"})
    assert by_param.key_env == "MY_KEY" and resolve_api_key(by_param) == "k-123"
    client = LLMClient([by_param])
    assert client.scrub("echoed k-123 back") == "echoed *** back"
    nested = ModelConfig(name="c", model="openai/x", litellm_params={"extra_headers": {"Authorization": "os.environ/MY_KEY"}})
    assert LLMClient([nested]).scrub("k-123") == "***"
    monkeypatch.delenv("MY_KEY")
    with pytest.raises(GenerationInputError, match="MY_KEY"):
        LLMClient([by_param]).check_credentials()
    other = ModelConfig(name="d", model="bedrock/x", litellm_params={"aws_region_name": "os.environ/MY_REGION"})
    with pytest.raises(GenerationInputError, match=r"MY_REGION \(litellm_params.aws_region_name\)"):
        LLMClient([other]).check_credentials()


@pytest.mark.parametrize("params", [
    {"api_key": "sk-live-abcdef123456"},
    {"aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG"},
    {"azure_ad_token": "eyJ0eXAiOiJKV1QiLCJhbGciOi"},
    {"extra_headers": {"Authorization": "Bearer sk-live-abcdef123456"}},
    {"api_key": "os.environ/not a name"},
])
def test_a_credential_written_in_the_file_is_refused_without_echoing_it(params):
    with pytest.raises(ValueError) as info:
        GenerationConfig(models=[{"name": "m", "model": "azure/gpt", "litellm_params": params}])
    message = str(info.value)  # pydantic's own text, which would show the input of other fields
    assert "os.environ/NAME" in message and "refused" in message
    secret = json.dumps(params).split('"')[-2]
    assert secret not in message


def test_cli_refuses_a_literal_key_with_exit_2(tmp_path, capsys):
    config = _write(tmp_path, """
[[generation.models]]
name = "azure"
model = "azure/gpt-4o-mini"
api_base = "https://example.openai.azure.com"
litellm_params = { api_version = "2024-10-21", api_key = "sk-live-abcdef123456" }
""")
    assert main(["generate", "--config", str(config), "--out", str(tmp_path / "p.jsonl"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "litellm_params.api_key" in err and "os.environ/NAME" in err and "sk-live" not in err
    assert "Traceback" not in err


@pytest.mark.parametrize("models, expected", [
    ([dict(name="g", model="openai/a", temperature=0.2), dict(name="g", model="openai/b", temperature=0.9)],
     "model group 'g': its 2 deployments disagree on temperature"),
    ([dict(name="g", model="openai/a"), dict(name="g", model="terminology")],
     "only LiteLLM models can have several deployments"),
    ([dict(name="g", model="openai/a", litellm_params={"rpm": 10})],
     "set rpm on the model table instead of litellm_params.rpm"),
    ([dict(name="g", model="openai/a", litellm_params={"timeout": 10})], "set timeout_s on the model table"),
    ([dict(name="g", model="openai/a", api_key_env="K", litellm_params={"api_key": "os.environ/K"})],
     "api_key_env and litellm_params.api_key both name a key"),
    ([dict(name="t", model="terminology", litellm_params={"api_version": "1"})], "LiteLLM models only"),
])
def test_group_and_passthrough_mistakes_are_named(models, expected):
    with pytest.raises(ValueError, match=expected.replace("(", r"\(")):
        GenerationConfig(models=[ModelConfig(**m) for m in models])


def test_a_group_is_one_row_of_the_dry_run_priced_at_its_dearest_deployment(tree_terminology):
    from clinassay.generation.estimate import estimate_plan

    config = GenerationConfig(languages=["es"], sample=2, models=[
        ModelConfig(name="g", model="openai/a", input_cost_per_token=1e-6, output_cost_per_token=1e-6),
        ModelConfig(name="g", model="openai/b", input_cost_per_token=3e-6, output_cost_per_token=3e-6)])
    rows = estimate_plan(build_plan(tree_terminology, config))
    assert [r.model for r in rows] == ["g"] and rows[0].requests == 2
    assert rows[0].cost_usd == pytest.approx(3e-6 * (rows[0].input_tokens + rows[0].output_tokens))


def test_config_errors_are_input_errors(tmp_path):
    path = _write(tmp_path, '[[generation.models]]\nname = "m"\nmodel = "openai/x"\napi_version = "2024"\n')
    with pytest.raises(ClinassayInputError, match=r"'generation.models.0': .*unknown key 'api_version': "
                                                  r"LiteLLM's own parameters go in the model's litellm_params table"):
        load_config(path)
