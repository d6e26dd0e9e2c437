"""Output noise (issue 16 item 5): libraries quiet by default, clinassay's own bar only on a terminal or
with -v, no escape codes on a file, summaries on stdout, -q prints nothing but errors."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from clinassay import output
from clinassay.cli import main, take_verbosity
from generation_stub import StubServer

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[1]
CODES = Path(__file__).parent / "data" / "generation" / "codes.txt"
ANSI = re.compile(r"\x1b\[")
LIBRARY_NOISE = ("Loading weights", "LOAD REPORT", "Writing model shards", "Batches:", "Unclosed client session",
                 "LiteLLM", "Warning", "warn(")


@pytest.fixture(scope="module")
def stub():
    with StubServer() as server:
        yield server


def _config(tmp_path: Path, stub: StubServer) -> Path:
    path = tmp_path / "clinassay.toml"
    path.write_text(f"""
[generation]
languages = ["es", "en"]
mentions_per_code = 2
codes_file = "{CODES}"

[[generation.models]]
name = "stubby"
model = "openai/stub-ok-output"
api_base = "{stub.api_base}"

[[generation.models]]
name = "terminology"
model = "terminology"
""", encoding="utf-8")
    return path


def _clinassay(*args: str, tmp_path: Path) -> tuple[int, str, str]:
    """The installed command in a subprocess, stdout and stderr both to files (not terminals)."""
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    for name in output.QUIET_ENVIRONMENT:  # the user's environment, not a test's leftovers
        env.pop(name, None)
    with out.open("w") as o, err.open("w") as e:
        code = subprocess.run([sys.executable, "-m", "clinassay", *args], stdout=o, stderr=e, env=env,
                              timeout=240).returncode
    return code, out.read_text(encoding="utf-8"), err.read_text(encoding="utf-8")


def test_generate_to_files_no_bar_no_escapes_summary_on_stdout_counting_every_request(tmp_path, stub):
    pairs = tmp_path / "pairs.jsonl"
    code, out, err = _clinassay("generate", "--config", str(_config(tmp_path, stub)), "--out", str(pairs),
                                tmp_path=tmp_path)
    assert code == 0, err
    assert err == ""  # no bar (stderr is a file), no library logs, no warnings
    summary = out.strip().splitlines()[-1]
    # 3 codes x 2 languages: 6 LLM requests and the terminology's (one per code and language with a label),
    # every one counted, as the bar counts them (was "from 6 requests" beside a bar at 11/11)
    found = re.search(r": (\d+) pairs from (\d+) requests, 6 of them to LLMs \(0 already done, 0 failed", summary)
    assert found, summary
    records = [json.loads(line) for line in pairs.read_text(encoding="utf-8").splitlines()]
    assert int(found[1]) == len(records) and int(found[2]) == len({r["request_key"] for r in records}) > 6


def test_verbose_draws_the_bar_on_a_file_without_escape_codes(tmp_path, stub):
    pairs = tmp_path / "pairs.jsonl"
    code, out, err = _clinassay("generate", "--config", str(_config(tmp_path, stub)), "--out", str(pairs), "-v",
                                tmp_path=tmp_path)
    assert code == 0, err
    bar = re.search(r"generate: 100%.* (\d+)/\1 ", err)  # clinassay's own bar, asked for
    assert bar, err[-500:]
    assert not ANSI.search(err), err[:500]
    assert f"pairs from {bar[1]} requests," in out  # the summary counts what the bar counted


def test_quiet_prints_nothing_but_errors(tmp_path, stub):
    pairs = tmp_path / "pairs.jsonl"
    config = str(_config(tmp_path, stub))
    assert _clinassay("-q", "generate", "--config", config, "--out", str(pairs), tmp_path=tmp_path) == (0, "", "")
    code, out, err = _clinassay("generate", "--config", config, "--out", str(pairs), "--quiet", tmp_path=tmp_path)
    assert code == 2 and out == "" and err.startswith("error: ") and "--resume" in err


AUDIT_WITH_ENCODER = ("audit", str(ROOT / "tests" / "data" / "audit" / "pairs_small.jsonl"), "--no-report")


def test_an_audit_loading_its_encoder_writes_nothing_to_a_stderr_file(tmp_path):
    code, out, err = _clinassay(*AUDIT_WITH_ENCODER, "--out", str(tmp_path / "a"), tmp_path=tmp_path)
    assert code == 1, err  # this small file fails the gate
    assert "verdict: fail" in out
    assert err == "", err[:1000]  # no "Loading weights" bar, no LOAD REPORT, no warnings, no audit bar


@pytest.mark.slow
def test_verbose_gives_the_libraries_their_output_back(tmp_path):
    code, _, err = _clinassay(*AUDIT_WITH_ENCODER, "--out", str(tmp_path / "a"), "-v", tmp_path=tmp_path)
    assert code == 1 and "Loading weights" in err  # what the default run above keeps quiet


def test_audit_summary_on_stdout_gate_reasons_on_stderr_under_quiet(tmp_path, capsys):
    pairs = ROOT / "tests" / "data" / "audit" / "pairs_small.jsonl"
    assert main(["audit", str(pairs), "--out", str(tmp_path / "a"), "--no-embeddings", "--no-report"]) == 1
    captured = capsys.readouterr()
    assert "lines ->" in captured.out and "verdict: fail" in captured.out and "gate: " in captured.out
    assert not ANSI.search(captured.err) and "%|" not in captured.err
    assert main(["audit", str(pairs), "--out", str(tmp_path / "b"), "--no-embeddings", "--no-report", "-q"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "gate: " in captured.err and "lines ->" not in captured.err
    # -v: clinassay's own bar, pairs audited, plain on a captured (non-terminal) stderr
    assert main(["-v", "audit", str(pairs), "--out", str(tmp_path / "c"), "--no-embeddings", "--no-report"]) == 1
    captured = capsys.readouterr()
    assert re.search(r"audit: 100%.* 16/16 ", captured.err), captured.err[-500:]
    assert not ANSI.search(captured.err) and "16 lines ->" in captured.out


def test_verbosity_flags_anywhere_before_a_double_dash():
    assert take_verbosity(["-q", "audit", "x"]) == (output.QUIET, ["audit", "x"])
    assert take_verbosity(["audit", "x", "--verbose"]) == (output.VERBOSE, ["audit", "x"])
    assert take_verbosity(["search", "--", "-q"]) == (None, ["search", "--", "-q"])
    assert take_verbosity(["search", "-v", "-q", "t"]) == (output.QUIET, ["search", "t"])


def test_a_command_leaves_the_environment_loggers_and_level_as_it_found_them(capsys):
    before_env = {k: os.environ.get(k) for k in output.QUIET_ENVIRONMENT}
    before_levels = {n: logging.getLogger(n).level for n in output.QUIET_LOGGERS}
    seen = {}

    def probe() -> None:
        seen["env"] = os.environ.get("TQDM_DISABLE")
        seen["litellm"] = logging.getLogger("LiteLLM").level
        seen["level"] = output.level()
        seen["bar"] = output.show_progress()

    with output.session():
        probe()
    assert seen["env"] == (before_env["TQDM_DISABLE"] or "1") and seen["litellm"] >= logging.ERROR
    assert seen["level"] == output.NORMAL and seen["bar"] is False  # stderr is not a terminal here
    with output.session():
        output.set_level(output.VERBOSE)
        probe()
    assert seen["env"] == before_env["TQDM_DISABLE"] and seen["bar"] is True
    assert {k: os.environ.get(k) for k in output.QUIET_ENVIRONMENT} == before_env
    assert {n: logging.getLogger(n).level for n in output.QUIET_LOGGERS} == before_levels
    assert output.level() == output.NORMAL
    assert main(["-q", "terminology", "show", "N39.0"]) == 0 and capsys.readouterr().out == ""
    assert main(["terminology", "show", "N39.0"]) == 0 and "N39.0" in capsys.readouterr().out
