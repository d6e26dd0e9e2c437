"""The LLM client with LiteLLM's `mock_response`: replies, tokens, costs, and errors mapped to ours."""

from __future__ import annotations

import asyncio

import litellm
import pytest

from clinassay.generation.config import ModelConfig
from clinassay.generation.errors import LLMAuthError, LLMRequestError, RateLimitedError
from clinassay.generation.llm import LLMClient, RatePacer, estimate_cost
from clinassay.generation.prompts import Prompt
from clinassay.generation.runner import reply_to_pairs
from clinassay.generation.plan import Request

PROMPT = Prompt(prompt_id="positive/instruct/v1", text="Target code: N39.0")


class MockedClient(LLMClient):
    """The real client, with LiteLLM's own mock answering instead of a provider."""

    def __init__(self, models, mock):
        super().__init__(models)
        self.mock = mock

    def _deployment(self, m):
        deployment = super()._deployment(m)
        deployment["litellm_params"]["mock_response"] = self.mock
        return deployment


def _complete(client, name="m"):
    return asyncio.run(client.complete(name, PROMPT, temperature=0.5, seed=1))


def test_reply_tokens_and_litellm_price():
    client = MockedClient([ModelConfig(name="m", model="openai/gpt-4o-mini", api_base="http://127.0.0.1:9")],
                          '{"mentions": ["UTI"]}')
    c = _complete(client)
    assert c.text == '{"mentions": ["UTI"]}' and c.served_by == "m" and c.litellm_model == "openai/gpt-4o-mini"
    assert c.input_tokens > 0 and c.output_tokens > 0
    expected = sum(litellm.cost_per_token(model="gpt-4o-mini", prompt_tokens=c.input_tokens,
                                          completion_tokens=c.output_tokens))
    assert c.cost_usd == pytest.approx(expected)


def test_configured_prices_win():
    model = ModelConfig(name="m", model="openai/my-local-model", api_base="http://127.0.0.1:9",
                        input_cost_per_token=0.001, output_cost_per_token=0.002)
    c = _complete(MockedClient([model], '["a"]'))
    assert c.cost_usd == pytest.approx(c.input_tokens * 0.001 + c.output_tokens * 0.002)
    assert estimate_cost(model, 100, 10) == pytest.approx(0.12)


@pytest.mark.parametrize(
    "mock, cause, ours",
    [
        ("litellm.RateLimitError", litellm.RateLimitError, RateLimitedError),
        ("litellm.InternalServerError", litellm.InternalServerError, LLMRequestError),
    ],
)
def test_litellm_errors_become_ours_with_the_cause_kept(mock, cause, ours):
    client = MockedClient([ModelConfig(name="m", model="openai/gpt-4o-mini", api_base="http://127.0.0.1:9",
                                       num_retries=0)], mock)
    with pytest.raises(ours) as info:
        _complete(client)
    assert isinstance(info.value.__cause__, cause)
    assert "'m'" in str(info.value)


def test_refused_credentials_stop_the_model(stub_401):
    client = LLMClient([ModelConfig(name="m", model="openai/stub", api_base=stub_401, num_retries=0)])
    with pytest.raises(LLMAuthError) as info:
        _complete(client)
    assert isinstance(info.value.__cause__, litellm.AuthenticationError)


@pytest.fixture
def stub_401():
    """A one-route server that refuses every key."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length", 0)))
            body = b'{"error": {"message": "bad key", "type": "invalid_request_error", "code": "invalid_api_key"}}'
            self.send_response(401)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_rate_pacer_spaces_calls():
    async def three():
        pacer = RatePacer(rpm=1200)  # one call per 50 ms
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(3):
            await pacer.wait()
        return loop.time() - start

    assert asyncio.run(three()) >= 0.09


def test_a_reply_that_is_only_the_code_is_a_reject():
    from clinassay.generation.llm import Completion

    r = Request(model="m", litellm_model="openai/x", kind="litellm", task="positive", code="N39.0", language="es",
                sample_index=0, seed=0, temperature=0.5, n=3, prompt=PROMPT)
    pairs, rejects = reply_to_pairs(r, Completion('["N39.0", "ITU"]', "m", "openai/x", 10, 5, 0.01))
    assert [p.mention for p in pairs] == ["ITU"] and pairs[0].cost_usd == 0.01 and pairs[0].request_pairs == 1
    assert [(x.reason, x.raw) for x in rejects] == [("invalid_item", "N39.0")]
    pairs, rejects = reply_to_pairs(r, Completion("", "m", "openai/x", 10, 0, 0.01))
    assert not pairs and rejects[0].reason == "empty" and rejects[0].cost_usd == 0.01


def test_local_endpoints_get_a_placeholder_key_remote_ones_keep_litellm_defaults(monkeypatch):
    from clinassay.generation.llm import resolve_api_key

    assert resolve_api_key(ModelConfig(name="a", model="hosted_vllm/q", api_base="http://127.0.0.1:8000/v1"))
    assert resolve_api_key(ModelConfig(name="b", model="azure/gpt", api_base="https://x.openai.azure.com")) is None
    assert resolve_api_key(ModelConfig(name="c", model="openai/gpt-4o-mini")) is None
    monkeypatch.setenv("MY_KEY", "k-123")
    assert resolve_api_key(ModelConfig(name="d", model="openai/gpt-4o-mini", api_key_env="MY_KEY")) == "k-123"
