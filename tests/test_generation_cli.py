"""`clinassay generate` end to end on the real terminology, against the local stub server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clinassay.cli import main
from generation_stub import StubServer

pytestmark = pytest.mark.timeout(180)

CODES = Path(__file__).parent / "data" / "generation" / "codes.txt"


@pytest.fixture(scope="module")
def stub():
    with StubServer() as server:
        yield server


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "clinassay.toml"
    path.write_text(body, encoding="utf-8")
    return path


def _stub_config(tmp_path, stub):
    return _config(tmp_path, f"""
[generation]
languages = ["es", "en"]
mentions_per_code = 2
codes_file = "{CODES}"
tasks = ["positive", "hard_negative"]
progress = false

[[generation.models]]
name = "stubby"
model = "openai/stub-ok-cli"
api_base = "{stub.api_base}"
input_cost_per_token = 1e-6
output_cost_per_token = 2e-6

[[generation.models]]
name = "terminology"
model = "terminology"
""")


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, stub, capsys):
    out = tmp_path / "pairs.jsonl"
    assert main(["generate", "--config", str(_stub_config(tmp_path, stub)), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "stubby" in text and "openai/stub-ok-cli" in text and "terminology" in text
    assert "3 codes x 2 languages" in text and "expected pairs" in text and "est. USD" in text
    assert not out.exists() and stub.calls["stub-ok-cli"] == 0


def test_generate_then_resume_adds_nothing(tmp_path, stub, capsys):
    out = tmp_path / "pairs.jsonl"
    config = str(_stub_config(tmp_path, stub))
    assert main(["generate", "--config", config, "--out", str(out), "--no-progress"]) == 0
    pairs = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    models = {p["model"] for p in pairs}
    assert "stubby" in models and "terminology:icd10cm" in models
    assert {p["code"] for p in pairs if p["task"] == "positive"} >= {"N39.0", "E11.9", "J45.909"}
    # refuses to overwrite without --resume
    assert main(["generate", "--config", config, "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["generate", "--config", config, "--out", str(out), "--resume", "--no-progress"]) == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == len(pairs)
    assert "0 pairs from 0 requests (" in capsys.readouterr().out  # the summary is on stdout, like every command's


def _bar_and_summary(capsys) -> tuple[int, int, int]:
    """The bar's total, and the summary's requests and already-done counts, of the last `generate -v`."""
    import re

    captured = capsys.readouterr()
    bars = re.findall(r"generate: 100%.* (\d+)/\1 ", captured.err)
    summary = re.search(r"pairs from (\d+) requests(?:, \d+ of them to LLMs)? \((\d+) already done", captured.out)
    assert bars and summary, (captured.err[-300:], captured.out[-300:])
    return int(bars[-1]), int(summary[1]), int(summary[2])


def test_the_summary_counts_the_requests_the_bar_counted_without_llms_and_on_resume(tmp_path, capsys):
    """Issue 16 item 5: "from 0 requests" beside a bar at 85/85. A terminology-only run, then a resume of
    its first lines: the summary's requests are the bar's, and the resume adds the ones already done."""
    out = tmp_path / "pairs.jsonl"
    config = str(_config(tmp_path, f"""
[generation]
languages = ["es", "en", "fr"]
codes_file = "{CODES}"
tasks = ["positive", "hard_negative"]

[[generation.models]]
name = "terminology"
model = "terminology"
"""))
    assert main(["generate", "--config", config, "--out", str(out), "-v"]) == 0
    bar, requests, already = _bar_and_summary(capsys)
    assert bar == requests > 0 and already == 0
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    resumed = tmp_path / "resumed.jsonl"
    resumed.write_text("".join(lines[:3]), encoding="utf-8")
    assert main(["generate", "--config", config, "--out", str(resumed), "--resume", "-v"]) == 0
    bar_2, requests_2, already_2 = _bar_and_summary(capsys)
    assert bar_2 == requests_2 > 0 and already_2 > 0 and requests_2 + already_2 == requests
    def pairs(text: str) -> list[tuple[str, str, str]]:
        return sorted((p["request_key"], p["mention"], p["code"]) for p in map(json.loads, text.splitlines()))

    assert pairs(resumed.read_text(encoding="utf-8")) == pairs("".join(lines))  # the same pairs, none twice


def test_a_key_in_the_config_is_bad_input(tmp_path, capsys):
    config = _config(tmp_path, """
[[generation.models]]
name = "x"
model = "openai/gpt-4o-mini"
api_key_env = "sk-proj-abcdef0123456789"
""")
    assert main(["generate", "--config", str(config), "--out", str(tmp_path / "p.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "api_key_env" in err and "abcdef0123456789" not in err
