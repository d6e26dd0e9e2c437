"""No traceback reaches the user (issue 12): bad input is exit 2 with one line naming the file, anything
else exit 3 with one line and a crash log; generation survives bad replies and says when a model failed."""

from __future__ import annotations

import errno
import json
import sys
import time
from pathlib import Path

import pytest
from aiohttp import web

from clinassay.cli import EXIT_BAD_INPUT, EXIT_GENERATION_FAILED, EXIT_INTERNAL, bad_input_message, main
from clinassay.generation.config import GenerationConfig, ModelConfig
from clinassay.generation.runner import generate
from clinassay.generation.store import PairStore, rejects_path_for
from generation_stub import StubServer, _error

pytestmark = pytest.mark.timeout(180)

GOOD = '{"mention": "infección urinaria", "code": "N39.0", "language": "es"}\n'


@pytest.fixture(autouse=True)
def _crash_logs(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    return code, captured.err


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith(("error:", "internal error"))]
    assert len(lines) == 1, err
    return lines[0]


def _audit(pairs: Path, out: Path, *extra) -> list[str]:
    return ["audit", str(pairs), "--out", str(out), "--no-embeddings", "--no-report", *map(str, extra)]


# ------------------------------------------------------------------------------------ bad input: exit 2
def test_non_utf8_config_names_the_file_and_line(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_bytes(b'[audit]\nlanguages = ["\xff"]\n')
    pairs = tmp_path / "p.jsonl"
    pairs.write_text(GOOD, encoding="utf-8")
    code, err = _run(capsys, *_audit(pairs, tmp_path / "out"), "--config", config)
    assert code == EXIT_BAD_INPUT
    assert f"{config}:2:" in _one_error_line(err) and "UTF-8" in err


def test_empty_audit_languages_are_refused_by_the_config(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("[audit]\nlanguages = []\n", encoding="utf-8")
    pairs = tmp_path / "p.jsonl"
    pairs.write_text(GOOD, encoding="utf-8")
    code, err = _run(capsys, *_audit(pairs, tmp_path / "out"), "--config", config)
    assert code == EXIT_BAD_INPUT
    line = _one_error_line(err)
    assert str(config) in line and "audit.languages" in line and "at least 1" in line


def test_invalid_toml_and_a_config_folder(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("[audit\nlanguages = 3\n", encoding="utf-8")
    code, err = _run(capsys, "terminology", "show", "N39.0", "--config", config)
    assert code == EXIT_BAD_INPUT and "not valid TOML" in _one_error_line(err) and "line 1" in err
    code, err = _run(capsys, "terminology", "show", "N39.0", "--config", tmp_path)
    assert code == EXIT_BAD_INPUT and "is a directory" in _one_error_line(err)


@pytest.mark.parametrize("flag", ["--eval-set", "--reference"])
def test_non_utf8_eval_set_or_reference_names_the_file(tmp_path, capsys, flag):
    bad = tmp_path / "items.tsv"
    bad.write_bytes(b"mention\tcode\tlanguage\n\xe9t\xe9\tN39.0\tes\n")
    pairs = tmp_path / "p.jsonl"
    pairs.write_text(GOOD, encoding="utf-8")
    code, err = _run(capsys, *_audit(pairs, tmp_path / "out", flag, bad))
    assert code == EXIT_BAD_INPUT
    assert str(bad) in _one_error_line(err) and "not UTF-8" in err


def test_a_lone_surrogate_in_an_eval_set_is_refused_naming_the_line(tmp_path, capsys):
    """A JSON "\\ud800" escape decodes to no text: evaluate crashed writing predictions.jsonl (found by
    tests/test_fuzz_cli.py); the reader now refuses it, exit 2, file and line named."""
    bad = tmp_path / "items.jsonl"
    bad.write_text('{"mention": "asthma", "code": "J45.909", "language": "en"}\n'
                   '{"mention": "\\ud800", "code": "N39.0", "language": "es"}\n', encoding="utf-8")
    config = tmp_path / "c.toml"
    config.write_text('[retrieval]\nbootstrap_samples = 0\n[retrieval.corpus]\ncodes = ["N39.0", "J45.909"]\n')
    code, err = _run(capsys, "evaluate", "--model", "bm25", "--eval-set", bad, "--out", tmp_path / "eval",
                     "--config", config)
    assert code == EXIT_BAD_INPUT and f"{bad}:2: mention holds a lone surrogate" in _one_error_line(err)


def test_non_utf8_summary_names_the_file(tmp_path, capsys):
    folder = tmp_path / "audit"
    folder.mkdir()
    (folder / "summary.json").write_bytes(b'\xff\xfe{"verdict": "pass"}')
    code, err = _run(capsys, "report", folder, "--out", tmp_path / "r.html")
    assert code == EXIT_BAD_INPUT and str(folder / "summary.json") in _one_error_line(err)


def test_out_where_nothing_can_be_written(tmp_path, capsys):
    pairs = tmp_path / "p.jsonl"
    pairs.write_text(GOOD, encoding="utf-8")
    code, err = _run(capsys, *_audit(pairs, pairs / "out"))  # under a file
    assert code == EXIT_BAD_INPUT and str(pairs) in _one_error_line(err) and "not a directory" in err.lower()
    # the read-only case, as the OS reports it (root may write anywhere a test could chmod)
    message = bad_input_message(OSError(errno.EROFS, "Read-only file system", "/mnt/ro/out"))
    assert message == "/mnt/ro/out: read-only file system"
    message = bad_input_message(PermissionError(errno.EACCES, "Permission denied", "/srv/out"))
    assert message == "/srv/out: permission denied"


def test_a_folder_given_as_the_pairs_file_is_called_a_folder(tmp_path, capsys):
    code, err = _run(capsys, *_audit(tmp_path, tmp_path / "out"))
    line = _one_error_line(err)
    assert code == EXIT_BAD_INPUT and str(tmp_path) in line
    assert ("directory" in line or "folder" in line) and "not found" not in line


@pytest.mark.parametrize("content", ["[]", "null", "3", '"pass"'])
def test_a_manifest_that_is_not_an_object_is_refused(tmp_path, capsys, content):
    folder = tmp_path / "audit"
    folder.mkdir()
    (folder / "manifest.json").write_text(content, encoding="utf-8")
    (folder / "accepted.jsonl").write_text(GOOD, encoding="utf-8")
    code, err = _run(capsys, "train", folder, "--out", tmp_path / "model")
    assert code == EXIT_BAD_INPUT and "manifest.json" in _one_error_line(err)


def test_train_takes_the_audit_folder_first_and_still_reads_the_deprecated_data_flag(tmp_path, monkeypatch, capsys):
    """Issue 16 item 6: `train AUDIT_DIR` like `audit PAIRS`; `--data` (hidden) still works, with a note;
    both or neither is a usage error: exit 2, one line."""
    from audit_fixtures import write_audit_folder
    from clinassay.retrieval import train as training

    seen: list = []

    def fake_train_model(data, out, *, config, log, progress):
        seen.append(data)
        return {"data": {"pairs": 1}, "base_model": "fake"}

    monkeypatch.setattr(training, "train_model", fake_train_model)
    folder = write_audit_folder(tmp_path / "audit", [{"mention": "infección urinaria", "code": "N39.0", "language": "es"}])
    code, err = _run(capsys, "train", folder, "--out", tmp_path / "m")
    assert code == 0 and err == ""
    code, err = _run(capsys, "train", "--data", folder, "--out", tmp_path / "m")
    assert code == 0 and "--data is deprecated" in err and "clinassay train AUDIT_DIR" in err
    assert len(seen) == 2
    code, err = _run(capsys, "train", folder, "--data", folder, "--out", tmp_path / "m")
    assert code == EXIT_BAD_INPUT and "given twice" in _one_error_line(err) and len(err.splitlines()) == 1
    code, err = _run(capsys, "train", "--out", tmp_path / "m")
    assert code == EXIT_BAD_INPUT and "AUDIT_DIR" in _one_error_line(err) and len(err.splitlines()) == 1
    assert len(seen) == 2
    assert main(["train", "--help"]) == 0
    assert "AUDIT_DIR" in (usage := capsys.readouterr().out) and "--data" not in usage


@pytest.mark.parametrize("line", [
    "[" * 100_000 + "]" * 100_000,                                            # RecursionError in json
    '{"mention": "x", "code": "N39.0", "language": "es", "n": ' + "9" * 5000 + "}",  # int conversion limit
    '{"mention": "x\\ud800", "code": "N39.0", "language": "es"}',            # lone surrogate
    "\ufeff" + GOOD.strip(),                                                  # BOM
])
def test_hostile_pairs_lines_never_crash_the_audit(tmp_path, capsys, line):
    pairs = tmp_path / "p.jsonl"
    pairs.write_text(GOOD + line + "\n", encoding="utf-8")
    code, err = _run(capsys, *_audit(pairs, tmp_path / "out"))
    assert code in (0, 1, 2), err


def test_the_file_and_line_being_read_are_named_without_a_try_in_the_reader(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{}\n{"n": ' + "9" * 5000 + "}\n", encoding="utf-8")

    def parse(line_no, text):
        return json.loads(text)

    def read(p):
        with p.open(encoding="utf-8") as handle:
            for n, text in enumerate(handle, start=1):
                parse(n, text)

    with pytest.raises(ValueError) as info:
        read(path)
    assert bad_input_message(info.value).startswith(f"{path}:2: a number too long to read")
    path.write_bytes(b"\xff")
    with pytest.raises(UnicodeDecodeError) as info:
        path.read_text(encoding="utf-8")
    assert bad_input_message(info.value) == f"{path}: not UTF-8 text (byte 0xff at offset 0); save it as UTF-8"
    assert bad_input_message(KeyError("x")) is None and bad_input_message(ValueError("a bug")) is None


def test_messages_are_one_short_printable_line():
    from clinassay.terminology.errors import ClinassayInputError

    message = bad_input_message(ClinassayInputError("unknown code 'N39.0\ud800" + "X" * 5000 + "'\nsecond line"))
    assert "\n" not in message and len(message) < 500 and "\\ud800" in message
    message.encode("utf-8")  # printable: no lone surrogate left


# ------------------------------------------------------------------------------- internal error: exit 3
def test_a_bug_is_exit_3_with_one_line_and_a_log_holding_the_traceback(tmp_path, capsys, monkeypatch):
    from clinassay import audit
    def broken(*args, **kwargs):
        raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")

    monkeypatch.setattr(audit, "run_audit", broken)
    pairs = tmp_path / "p.jsonl"
    pairs.write_text(GOOD, encoding="utf-8")
    code, err = _run(capsys, *_audit(pairs, tmp_path / "out"))
    assert code == EXIT_INTERNAL
    line = _one_error_line(err)
    assert line.startswith("internal error") and "TypeError" in line
    logs = list((tmp_path / "state" / "clinassay").glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in line
    text = logs[0].read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text and "def broken" not in text and "in broken" in text


def test_without_a_writable_state_folder_the_log_goes_to_the_temp_folder(tmp_path, capsys, monkeypatch):
    from clinassay import audit
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr("tempfile.tempdir", None)
    monkeypatch.setattr(audit, "run_audit", lambda *a, **k: {}["missing"])
    pairs = tmp_path / "p.jsonl"
    pairs.write_text(GOOD, encoding="utf-8")
    code, err = _run(capsys, *_audit(pairs, tmp_path / "out"))
    assert code == EXIT_INTERNAL and "KeyError" in err
    assert len(list((tmp_path / "tmp" / "clinassay").glob("crash-*.log"))) == 1


# ------------------------------------------------------------------------------------------- generation
class HostileStub(StubServer):
    """The project's stub plus replies real servers have sent: no choices, lone surrogates, a runaway
    list, the caller's key echoed back, and refused credentials."""

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        model = str(body.get("model", ""))
        self.calls[model] += 1
        head = {"id": "x", "object": "chat.completion", "created": int(time.time()), "model": model,
                "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}
        if "refuse" in model:
            return _error(401, "invalid_api_key", "bad key")
        if "nochoices" in model:
            return web.json_response({**head, "choices": []})
        if "surrogate" in model:
            content = '{"mentions": ["bad \\ud800 one", "infección urinaria"]}'
        elif "runaway" in model:
            content = json.dumps({"mentions": [f"mention {i}" for i in range(20_000)]})
        elif "echo" in model:
            content = json.dumps({"mentions": [f"key {request.headers.get('Authorization', '')}", "cistitis"]})
        else:
            return await super()._chat(request)
        # built by hand: a JSON escape \ud800 must reach the client as such
        choices = '[{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": %s}}]'
        text = json.dumps(head)[:-1] + ', "choices": ' + choices % json.dumps(content) + "}"
        return web.Response(text=text.replace("\\\\ud800", "\\ud800"), content_type="application/json")


@pytest.fixture(scope="module")
def stub():
    with HostileStub() as server:
        yield server


def _config(stub, stub_model, **kw) -> GenerationConfig:
    model = ModelConfig(name="m", model=f"openai/{stub_model}", api_base=stub.api_base, num_retries=0,
                        timeout_s=10.0, **kw.pop("model", {}))
    settings = dict(languages=["es"], mentions_per_code=3, sample=2, models=[model], progress=False)
    return GenerationConfig(**{**settings, **kw})


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def test_a_reply_without_choices_is_a_final_reject_with_its_raw_text(stub, tmp_path, tree_terminology):
    out = tmp_path / "pairs.jsonl"
    summary = generate(_config(stub, "stub-nochoices"), out=out, terminology=tree_terminology)
    rejects = _lines(rejects_path_for(out))
    assert summary.pairs == 0 and [r["reason"] for r in rejects] == ["empty", "empty"]
    assert all('"choices":[]' in r["raw"].replace(" ", "") and "no choices" in r["detail"] for r in rejects)
    assert summary.failed_models() and "2 with an unreadable reply" in summary.failed_models()["m"]
    before = stub.calls["stub-nochoices"]
    again = generate(_config(stub, "stub-nochoices"), out=out, terminology=tree_terminology, resume=True)
    assert again.requests == 0 and stub.calls["stub-nochoices"] == before  # resume does not ask again


def test_a_lone_surrogate_rejects_that_mention_and_the_run_goes_on(stub, tmp_path, tree_terminology):
    out = tmp_path / "pairs.jsonl"
    summary = generate(_config(stub, "stub-surrogate"), out=out, terminology=tree_terminology)
    pairs, rejects = _lines(out), _lines(rejects_path_for(out))
    assert summary.pairs == 2 and {p["mention"] for p in pairs} == {"infección urinaria"}
    assert [(r["reason"], r["raw"]) for r in rejects] == [("invalid_item", "bad \\ud800 one")] * 2
    again = generate(_config(stub, "stub-surrogate"), out=out, terminology=tree_terminology, resume=True)
    assert again.requests == 0 and again.already_done == 2


def test_mentions_per_reply_are_capped(stub, tmp_path, tree_terminology):
    out = tmp_path / "pairs.jsonl"
    summary = generate(_config(stub, "stub-runaway", sample=1), out=out, terminology=tree_terminology)
    rejects = _lines(rejects_path_for(out))
    assert summary.pairs == 50 and len(_lines(out)) == 50
    assert len(rejects) == 1 and "20,000 mentions" in rejects[0]["detail"] and len(rejects[0]["raw"]) < 25_000
    generate(_config(stub, "stub-runaway", sample=1, max_mentions_per_reply=7), out=tmp_path / "b.jsonl",
             terminology=tree_terminology)
    assert len(_lines(tmp_path / "b.jsonl")) == 7
    with pytest.raises(ValueError, match="max_mentions_per_reply"):
        _config(stub, "stub-runaway", mentions_per_code=10, max_mentions_per_reply=5)


def test_a_key_echoed_by_the_server_is_scrubbed(stub, tmp_path, monkeypatch, tree_terminology):
    monkeypatch.setenv("CLINASSAY_ECHO_KEY", "sk-echo-secret-777")
    out = tmp_path / "pairs.jsonl"
    summary = generate(_config(stub, "stub-echo", model={"api_key_env": "CLINASSAY_ECHO_KEY"}), out=out,
                       terminology=tree_terminology)
    assert summary.pairs > 0
    assert any("***" in p["mention"] for p in _lines(out))
    for path in tmp_path.iterdir():
        assert "sk-echo-secret-777" not in path.read_text(encoding="utf-8")


def _cli_config(tmp_path: Path, stub, stub_model: str) -> Path:
    path = tmp_path / "gen.toml"
    path.write_text(f"""
[generation]
languages = ["es"]
mentions_per_code = 2
sample = 2
progress = false

[[generation.models]]
name = "m"
model = "openai/{stub_model}"
api_base = "{stub.api_base}"
num_retries = 0
timeout_s = 10
""", encoding="utf-8")
    return path


@pytest.mark.parametrize("stub_model, expected", [
    ("stub-down", EXIT_GENERATION_FAILED),     # every request failed (500)
    ("stub-nochoices", EXIT_GENERATION_FAILED),  # every reply unreadable
    ("stub-refuse", EXIT_BAD_INPUT),           # credentials refused: the config's fault
])
def test_generate_exits_non_zero_when_every_request_of_a_model_failed(stub, tmp_path, capsys, stub_model, expected):
    code, err = _run(capsys, "generate", "--config", _cli_config(tmp_path, stub, stub_model),
                     "--out", tmp_path / "pairs.jsonl")
    assert code == expected
    assert "error: model 'm': all" in err


def test_generate_with_good_replies_exits_0(stub, tmp_path, capsys):
    code, err = _run(capsys, "generate", "--config", _cli_config(tmp_path, stub, "stub-ok-errors"),
                     "--out", tmp_path / "pairs.jsonl")
    assert code == 0, err


def test_a_hand_edited_output_is_bad_input_on_resume(tmp_path):
    from clinassay.generation.errors import GenerationInputError

    out = tmp_path / "pairs.jsonl"
    out.write_text('[1, 2]\n{"cost_usd": "NaN", "request_key": ["x"]}\n', encoding="utf-8")
    with pytest.raises(GenerationInputError, match=r"pairs.jsonl:1: a JSON list"):
        PairStore(out).recover()
    out.write_text('{"cost_usd": "12", "request_key": ["x"]}\nnot json\n', encoding="utf-8")
    with pytest.raises(GenerationInputError, match=r"pairs.jsonl:2: not a JSON line"):
        PairStore(out).recover()
    out.write_text('{"cost_usd": "12", "request_key": ["x"], "request_pairs": 3}\n', encoding="utf-8")
    assert PairStore(out).recover().cost_usd == 0.0


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
