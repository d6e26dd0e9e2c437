"""Fuzz suite (issue 12): Hypothesis writes hostile inputs for every command and checks the CLI contract.

Inputs: JSONL lines (garbage bytes, deep nesting, huge integers, NaN, lone surrogates, BOMs, wrong types,
very long strings, HTML), TOML configs (wrong types, unknown keys, empty lists, non-UTF-8 bytes),
evaluation sets, audit manifests (hand-written, or a failed audit's manifest edited) and summaries.
For each: the exit code is 0, 1 or 2 (3, an internal error, is never reached by input), nothing prints a
traceback, and an audit accounts for every non-blank input line: input = accepted + rejected + malformed.

Commands run in-process (`clinassay.cli.main`), the audit with --no-embeddings --no-report, so the
default run stays well under 90 s on two shared cores; `-m slow` runs the same properties with more
examples. Run with `--hypothesis-show-statistics` for the figures quoted in the README.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import sys
import tempfile
import types
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from clinassay.audit.config import AuditConfig
from clinassay.cli import main
from clinassay.reports.config import ReportConfig

pytestmark = pytest.mark.timeout(600)

LANGS = ["es", "ca", "pt", "fr", "it", "en"]
CODES = ["N39.0", "N39.3", "N30.00", "E11.9", "A00.0", "J45.909", "I10", "N39", "14", "N30-N39", "n390", "Z99.99"]
MENTIONS = ["infección urinaria", "infecció urinària", "infecção urinária", "infection urinaire",
            "infezione urinaria", "urinary tract infection", "diabetes mellitus tipo 2", "asma bronquial",
            "no presenta infección urinaria", "Dr. Juan Pérez, DNI 12345678Z", "hipertensión arterial"]
HTML = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "</textarea><b>x</b>", "&amp;&lt;&#0;",
        "javascript:alert(1)", '"><svg onload=alert(1)>']
SURROGATES = ["\ud800", "\udfff", "a\udc80b", "\ud83d"]

_base = dict(deadline=None, database=None, print_blob=True,
             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
FAST = settings(max_examples=int(os.environ.get("CLINASSAY_FUZZ_EXAMPLES", "100")), **_base)
SLOW = settings(max_examples=int(os.environ.get("CLINASSAY_FUZZ_SLOW_EXAMPLES", "1000")), **_base)


# ------------------------------------------------------------------------------------------- running
@dataclass
class Result:
    code: int
    out: str
    err: str


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.tracebacks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or "Traceback" in record.getMessage():
            self.tracebacks.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture(scope="module", autouse=True)
def _isolated():
    """Crash logs into a temporary state folder, not the user's; no model is ever trained."""
    with tempfile.TemporaryDirectory() as state, pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_STATE_HOME", state)
        training = types.ModuleType("clinassay.retrieval.train")

        def train_model(*args, **kwargs):
            raise AssertionError("train accepted a fake audit folder and started training")

        training.train_model = train_model
        mp.setitem(sys.modules, "clinassay.retrieval.train", training)
        yield


def invoke(*argv: object) -> Result:
    """main(argv) with stdout/stderr as a terminal has them (stdout strict UTF-8), checked for tracebacks."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace", write_through=True)
    records = _Records()
    root = logging.getLogger()
    root.addHandler(records)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in argv])
    finally:
        root.removeHandler(records)
    result = Result(code, out.buffer.getvalue().decode("utf-8"), err.buffer.getvalue().decode("utf-8"))
    assert "Traceback" not in result.err and "Traceback" not in result.out, result.err
    assert not records.tracebacks, records.tracebacks
    assert code in (0, 1, 2), f"exit {code}: {result.err}"
    if code == 2:  # one of ours ("error: ...") or click's usage message ("Error: No such option")
        assert "error" in result.err.lower(), result.err
    event(f"{argv[0]} exit {code}")
    return result


# ---------------------------------------------------------------------------------------- strategies
huge_int = st.integers(4301, 20_000).map(lambda n: "9" * n)
"""A literal past Python's int conversion limit (4,300 digits); spliced in as text (json.dumps refuses it)."""

text_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(MENTIONS + HTML),
    st.builds(lambda a, s, b: a + s + b, st.text(max_size=5), st.sampled_from(SURROGATES), st.text(max_size=5)),
    st.integers(300, 20_000).map(lambda n: "x" * n),
    st.sampled_from(["", " ", "\t", "\u200b", "\ufeff", "\x00", "N39.0", "Z" * 5000]),
)
wrong_types = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
field = lambda good: st.one_of(good, good, text_values, wrong_types)  # noqa: E731 - mostly plausible
HUGE = "__HUGE__"


@st.composite
def record_line(draw) -> bytes:
    record = {"mention": draw(field(st.sampled_from(MENTIONS))), "code": draw(field(st.sampled_from(CODES))),
              "language": draw(field(st.sampled_from(LANGS)))}
    for key in draw(st.lists(st.sampled_from(["mention", "code", "language"]), max_size=1, unique=True)):
        del record[key]
    extras = draw(st.dictionaries(
        st.sampled_from(["id", "model", "task", "cost_usd", "seed", "negative_of", "request_key", "n", "x"]),
        st.one_of(wrong_types, text_values, st.just(HUGE), st.sampled_from(["dup", "positive", "hard_negative"])),
        max_size=3))
    record.update(extras)
    text = json.dumps(record, ensure_ascii=draw(st.booleans()), allow_nan=True)
    text = text.replace(f'"{HUGE}"', draw(huge_int))
    return draw(st.sampled_from(["", "\ufeff"])).encode() + text.encode("utf-8", "surrogatepass")


def _nested(n: int, kind: str) -> bytes:
    return (b"[" * n + b"]" * n) if kind == "list" else (b'{"a":' * n + b"1" + b"}" * n)


hostile_line = st.one_of(
    record_line(), record_line(),
    st.binary(max_size=60),
    st.text(max_size=60).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.builds(_nested, st.integers(20, 200_000), st.sampled_from(["list", "dict"])),
    st.sampled_from([b"[]", b"null", b"3", b'"a string"', b"true", b"NaN", b"{}", b"\xef\xbb\xbf{}",
                     b'{"mention": NaN, "code": Infinity, "language": -Infinity}']),
    st.sampled_from(HTML).map(str.encode),
)


def jsonl(lines: list[bytes], trailing: bool) -> bytes:
    return b"\n".join(lines) + (b"\n" if trailing and lines else b"")


def non_blank_lines(data: bytes) -> int:
    """The audit's unit: every line that is not blank (an undecodable line is not blank, it is malformed)."""
    count = 0
    for raw in data.split(b"\n"):
        try:
            count += bool(raw.decode("utf-8").strip())
        except UnicodeDecodeError:
            count += 1
    return count


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(str(value), repr(value))
    if isinstance(value, str):
        return value if value.isdigit() and len(value) > 4300 else json.dumps(value)  # huge ints as literals
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


_AUDIT_SECTIONS = {name: info.annotation for name, info in AuditConfig.model_fields.items()
                   if isinstance(info.annotation, type) and issubclass(info.annotation, AuditConfig.__mro__[1])}
KNOWN_KEYS = {
    "audit": [k for k in AuditConfig.model_fields if k not in _AUDIT_SECTIONS],
    **{f"audit.{name}": list(model.model_fields) for name, model in _AUDIT_SECTIONS.items() if name != "jury"},
    "reports": list(ReportConfig.model_fields),
}
"""Every key the audit reads, except the LLM jury's (it would call out) and [terminology] (a new cache
folder would rebuild the terminology)."""

toml_values = st.one_of(
    st.booleans(), st.integers(-(10**20), 10**20), st.floats(allow_nan=True, allow_infinity=True),
    st.floats(0, 1), st.integers(0, 5), huge_int,
    st.text(max_size=20).filter(lambda t: not t.isdigit()),
    st.just([]), st.lists(st.sampled_from(LANGS + ["xx", "ES", ""]), max_size=4),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@st.composite
def toml_config(draw) -> bytes:
    lines = []
    for section in draw(st.lists(st.sampled_from([*KNOWN_KEYS, "nonsense", "run", "generation"]), max_size=3,
                                 unique=True)):
        known = KNOWN_KEYS.get(section, [])
        keys = draw(st.lists(st.one_of(st.sampled_from(known), st.text(min_size=1, max_size=8)) if known
                             else st.text(min_size=1, max_size=8), max_size=4, unique=True))
        lines.append(f"[{section}]")
        lines += [f"{json.dumps(k)} = {_toml_value(draw(toml_values))}" for k in keys if k != "jury"]
    data = "\n".join(lines).encode("utf-8", "surrogatepass") + b"\n"
    damage = draw(st.sampled_from(["none", "none", "bytes", "truncate", "garbage"]))
    if damage == "bytes":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"])) + data[at:]
    elif damage == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif damage == "garbage":
        data = draw(st.binary(max_size=80))
    return data


@st.composite
def eval_set(draw) -> tuple[str, bytes]:
    """An evaluation set as TSV (with a header, or not) or JSONL, with hostile rows."""
    good = draw(st.integers(0, 3))
    if draw(st.booleans()):
        return ".jsonl", jsonl(draw(st.lists(hostile_line, max_size=6)) + GOOD_LINES[:good], True)
    header = draw(st.sampled_from([b"mention\tcode\tlanguage", b"\xef\xbb\xbfmention\tcode\tlanguage",
                                   b"code\tmention", b"", b"mention,code,language"]))
    cell = st.one_of(st.sampled_from(MENTIONS + CODES + LANGS), text_values).map(
        lambda t: t.encode("utf-8", "surrogatepass"))
    rows = draw(st.lists(st.lists(st.one_of(cell, st.binary(max_size=10)), min_size=0, max_size=4), max_size=6))
    good_rows = [b"infecci\xc3\xb3n urinaria\tN39.0\tes", b"asthma\tJ45.909\ten", b"cistite\tN30.00\tpt"][:good]
    return ".tsv", b"\n".join([header, *good_rows, *(b"\t".join(r) for r in rows)]) + b"\n"


def json_values(leaves=None):
    leaves = leaves or st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), text_values)
    return st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                        max_leaves=8)


def _encode(value: object) -> bytes:
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


# ---------------------------------------------------------------------------------------- fixtures
GOOD_PAIRS = "".join(json.dumps({"mention": m, "code": c, "language": lang}, ensure_ascii=False) + "\n"
                     for m, c, lang in [("infección urinaria", "N39.0", "es"), ("urinary tract infection", "N39.0", "en"),
                                        ("diabetes mellitus tipo 2", "E11.9", "es"), ("asthma", "J45.909", "en")])


@lru_cache(maxsize=1)
def _workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="clinassay-fuzz-"))


@lru_cache(maxsize=1)
def failed_audit() -> Path:
    """A real audit that failed its gate (every pair rejected): the base that manifest edits start from."""
    work = _workdir()
    pairs = work / "failing.jsonl"
    pairs.write_text("".join(json.dumps({"mention": "N39.0", "code": "N39.0", "language": "es", "n": i}) + "\n"
                             for i in range(5)), encoding="utf-8")
    code = main(["audit", str(pairs), "--out", str(work / "failed"), "--no-embeddings", "--no-report"])
    assert code == 1 and (work / "failed" / "manifest.json").is_file()
    return work / "failed"


@lru_cache(maxsize=1)
def small_corpus_config() -> Path:
    path = _workdir() / "small-corpus.toml"
    path.write_text('[retrieval]\nbootstrap_samples = 10\n[retrieval.corpus]\ncodes = ["N39.0", "N30.00", "E11.9", '
                    '"A00.0", "J45.909"]\n', encoding="utf-8")
    return path


def _copy_dir(source: Path, target: Path) -> None:
    target.mkdir(parents=True)
    for item in source.iterdir():
        if item.is_file():
            (target / item.name).write_bytes(item.read_bytes())


def _count(path: Path) -> int:
    return sum(1 for line in path.read_bytes().split(b"\n") if line.strip()) if path.is_file() else 0


# ------------------------------------------------------------------------------------------ properties
GOOD_LINES = GOOD_PAIRS.encode("utf-8").splitlines()


def audit_accounts_for_every_line(lines: list[bytes], good: list[tuple[int, int]], trailing: bool) -> None:
    """Hostile lines with good pairs among them: those are audited, the rest counted, none lost."""
    lines = list(lines)
    for position, which in good:
        lines.insert(position % (len(lines) + 1), GOOD_LINES[which % len(GOOD_LINES)])
    data = jsonl(lines, trailing)
    with tempfile.TemporaryDirectory() as tmp:
        pairs, out = Path(tmp) / "pairs.jsonl", Path(tmp) / "out"
        pairs.write_bytes(data)
        result = invoke("audit", pairs, "--out", out, "--no-embeddings", "--no-report")
        if result.code == 2:  # bad input as a whole: nothing readable (empty, all garbage)
            assert not good, result.err
            return
        counts = json.loads((out / "summary.json").read_text(encoding="utf-8"))["counts"]
        assert counts["input_lines"] == non_blank_lines(data), (counts, data[:300])
        assert counts["input_lines"] == counts["accepted"] + counts["rejected"] + counts["malformed"], counts
        assert _count(out / "accepted.jsonl") == counts["accepted"]
        assert _count(out / "rejected.jsonl") == counts["rejected"]


def configs_are_refused_or_used(config: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path, pairs = Path(tmp) / "clinassay.toml", Path(tmp) / "pairs.jsonl"
        path.write_bytes(config)
        pairs.write_text(GOOD_PAIRS, encoding="utf-8")
        audited = invoke("audit", pairs, "--out", Path(tmp) / "out", "--config", path, "--no-embeddings", "--no-report")
        shown = invoke("terminology", "show", "N39.0", "--config", path)
        assert shown.code != 2 or audited.code == 2, (audited, shown)  # both read the same config
        if audited.code != 2:
            counts = json.loads((Path(tmp) / "out" / "summary.json").read_text(encoding="utf-8"))["counts"]
            assert counts["input_lines"] == 4 == counts["accepted"] + counts["rejected"] + counts["malformed"]


def eval_sets_are_refused_or_used(item: tuple[str, bytes]) -> None:
    suffix, data = item
    with tempfile.TemporaryDirectory() as tmp:
        path, pairs = Path(tmp) / f"eval{suffix}", Path(tmp) / "pairs.jsonl"
        path.write_bytes(data)
        pairs.write_text(GOOD_PAIRS, encoding="utf-8")
        invoke("audit", pairs, "--out", Path(tmp) / "out", "--eval-set", path, "--reference", path,
               "--no-embeddings", "--no-report")
        invoke("evaluate", "--model", "bm25", "--eval-set", path, "--out", Path(tmp) / "eval",
               "--config", small_corpus_config())


@st.composite
def manifest_edit(draw) -> bytes:
    """A failed audit's manifest edited by hand, or one written from scratch, or not JSON at all."""
    base = json.loads((failed_audit() / "manifest.json").read_text(encoding="utf-8"))
    accepted = hashlib.sha256((failed_audit() / "accepted.jsonl").read_bytes()).hexdigest()
    kind = draw(st.sampled_from(["edit", "edit", "scratch", "any", "bytes"]))
    if kind == "bytes":
        return draw(st.one_of(st.binary(max_size=60), st.sampled_from([b"", b"[]", b"null", b"\xff\xfe{}"])))
    if kind == "any":
        return _encode(draw(json_values()))
    if kind == "scratch":
        manifest = {"verdict": draw(st.sampled_from(["pass", "ok", "passed", True, {"passed": True}])),
                    "accepted_sha256": accepted}
    else:
        manifest = dict(base)
        manifest["verdict"] = draw(st.sampled_from(["pass", "ok", True, {"passed": True}, {"status": "pass"}]))
        for key in draw(st.lists(st.sampled_from(sorted(base)), max_size=3, unique=True)):
            action = draw(st.sampled_from(["drop", "retype"]))
            if action == "drop" and key != "verdict":
                del manifest[key]
            else:
                manifest[key] = draw(json_values())
        manifest.update(draw(st.dictionaries(st.text(max_size=8), json_values(), max_size=2)))
    return _encode(manifest)


def train_refuses_what_did_not_pass(manifest: bytes, edit_accepted: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "audit"
        _copy_dir(failed_audit(), folder)
        (folder / "manifest.json").write_bytes(manifest)
        if edit_accepted:  # pairs slipped into accepted.jsonl, its hash updated in the manifest
            (folder / "accepted.jsonl").write_text(GOOD_PAIRS, encoding="utf-8")
            try:
                edited = json.loads(manifest)
                if isinstance(edited, dict):
                    edited["accepted_sha256"] = hashlib.sha256(GOOD_PAIRS.encode()).hexdigest()
                    (folder / "manifest.json").write_bytes(_encode(edited))
            except ValueError:
                pass
        result = invoke("train", folder, "--out", Path(tmp) / "model")
        assert result.code == 2, result


@st.composite
def report_source(draw) -> tuple[bytes, bytes | None]:
    """An audit folder's summary.json (a real one damaged, or anything) and maybe a metrics.json."""
    real = json.loads((failed_audit() / "summary.json").read_text(encoding="utf-8"))
    kind = draw(st.sampled_from(["damaged", "damaged", "any", "bytes"]))
    if kind == "bytes":
        summary = draw(st.binary(max_size=60))
    elif kind == "any":
        summary = _encode(draw(json_values()))
    else:
        for key in draw(st.lists(st.sampled_from(sorted(real)), max_size=3, unique=True)):
            real[key] = draw(json_values())
        summary = _encode(real)
    metrics = draw(st.one_of(st.none(), json_values().map(_encode), st.binary(max_size=30)))
    return summary, metrics


def reports_render_or_refuse(source: tuple[bytes, bytes | None], fmt: str) -> None:
    summary, metrics = source
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "audit"
        _copy_dir(failed_audit(), folder)
        (folder / "summary.json").write_bytes(summary)
        extra = []
        if metrics is not None:
            (Path(tmp) / "eval").mkdir()
            (Path(tmp) / "eval" / "metrics.json").write_bytes(metrics)
            extra = ["--eval", Path(tmp) / "eval"]
        invoke("report", folder, "--out", Path(tmp) / f"report.{fmt}", "--format", fmt, *extra)


def terminology_show_answers_or_refuses(code: str, language: str | None) -> None:
    invoke("terminology", "show", code, *(["--language", language] if language is not None else []))


codes = st.one_of(st.sampled_from(CODES), text_values, st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-",
                                                                  max_size=12))
languages = st.one_of(st.none(), st.sampled_from(LANGS), text_values)
formats = st.sampled_from(["html", "markdown", "json", "junit"])



def _fast_and_slow(check, *strategies):
    """The property as a default test and as a `slow` one with more examples (each its own Hypothesis test,
    so --hypothesis-show-statistics reports both)."""
    return FAST(given(*strategies)(check)), pytest.mark.slow(SLOW(given(*strategies)(check)))


test_fuzz_audit_pairs, test_fuzz_audit_pairs_slow = _fast_and_slow(
    audit_accounts_for_every_line, st.lists(hostile_line, max_size=8),
    st.lists(st.tuples(st.integers(0, 8), st.integers(0, 3)), max_size=3), st.booleans())
test_fuzz_config, test_fuzz_config_slow = _fast_and_slow(configs_are_refused_or_used, toml_config())
test_fuzz_eval_set, test_fuzz_eval_set_slow = _fast_and_slow(eval_sets_are_refused_or_used, eval_set())
test_fuzz_train_manifest, test_fuzz_train_manifest_slow = _fast_and_slow(
    train_refuses_what_did_not_pass, manifest_edit(), st.booleans())
test_fuzz_report, test_fuzz_report_slow = _fast_and_slow(reports_render_or_refuse, report_source(), formats)
test_fuzz_terminology_show, test_fuzz_terminology_show_slow = _fast_and_slow(
    terminology_show_answers_or_refuses, codes, languages)
