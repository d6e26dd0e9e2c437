"""Issue 12, as an adversarial user tries it: forged, edited or stale audit outputs never train; an audit
never destroys its inputs nor writes through a planted link; the gate counts the lines it could not read;
hostile lines (BOM, duplicate ids, NaN, lone surrogates, huge codes) are reported, never a crash.
Invariant checked throughout: input lines = accepted + rejected + malformed, in the counts and the files."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from clinassay.audit import AuditConfig, run_audit
from clinassay.audit.config import GateConfig
from clinassay.audit.manifest import KEY_ENV, Manifest, ManifestError, config_sha256, signature_of, verify_audit_output
from clinassay.cli import main
from clinassay.retrieval.audited_data import UnauditedDataError, load_audited, verify_audit_dir
from clinassay.terminology.errors import ClinassayInputError

SMALL = Path(__file__).parent / "data" / "audit" / "pairs_small.jsonl"
OUTPUTS = ("accepted.jsonl", "rejected.jsonl", "malformed.jsonl", "summary.json", "manifest.json")


@pytest.fixture(scope="module")
def good_records(terminology) -> list[dict]:
    """48 Spanish labels of distinct billable codes across chapters: pairs the audit accepts."""
    records = []
    for code in terminology.billable_codes()[::97]:
        label = terminology.labels(code).get("es")
        if label and len(label.text.split()) >= 3 and len(label.text) <= 120:
            records.append({"mention": label.text, "code": code, "language": "es", "model": "gen"})
        if len(records) == 48:
            break
    assert len(records) == 48
    return records


def _write(path: Path, lines: list) -> Path:
    path.write_text("".join((l if isinstance(l, str) else json.dumps(l, ensure_ascii=False)) + "\n" for l in lines),
                    encoding="utf-8")
    return path


def _audit(terminology, pairs: Path, out: Path, **kwargs):
    return run_audit(pairs, out, config=kwargs.pop("config", AuditConfig(embeddings=False)), terminology=terminology,
                     **kwargs)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]


def _assert_invariant(out: Path, input_lines: int) -> dict:
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    counts = summary["counts"]
    assert counts["input_lines"] == input_lines == counts["accepted"] + counts["rejected"] + counts["malformed"]
    for name, key in (("accepted", "accepted"), ("rejected", "rejected"), ("malformed", "malformed")):
        assert len(_jsonl(out / f"{name}.jsonl")) == counts[key], name
    return summary


@pytest.fixture(scope="module")
def passing(tmp_path_factory, terminology, good_records) -> Path:
    tmp = tmp_path_factory.mktemp("passing")
    out = tmp / "out"
    outcome = _audit(terminology, _write(tmp / "pairs.jsonl", good_records), out)
    assert outcome.passed, outcome.summary.gate.failed
    return out


@pytest.fixture(scope="module")
def failing(tmp_path_factory, terminology) -> Path:
    out = tmp_path_factory.mktemp("failing") / "out"
    outcome = _audit(terminology, SMALL, out)
    assert not outcome.passed
    return out


@pytest.fixture
def copy_of(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)

    def copy(folder: Path) -> Path:
        target = tmp_path / folder.parent.name
        shutil.copytree(folder, target)
        return target

    return copy


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- 1. the manifest is an attestation ----------------------------------------------------------------

def test_a_passing_audit_attests_every_output(passing: Path, copy_of) -> None:
    audit = copy_of(passing)
    manifest = json.loads((audit / "manifest.json").read_text())
    assert set(manifest) == set(Manifest.model_fields) and manifest["schema_version"] == 1
    for name in ("accepted", "rejected", "malformed", "summary"):
        assert manifest[name]["sha256"] == _sha(audit / manifest[name]["path"]), name
    assert manifest["config_sha256"] == config_sha256(manifest["config"]) and manifest["signature"] is None
    summary = _assert_invariant(audit, 48)
    assert summary["outputs"]["accepted"] == manifest["accepted"]
    assert any(r["name"] == "malformed_rate" for r in summary["gate"]["results"])
    assert len(load_audited(audit).pairs) == manifest["accepted"]["pairs"] == summary["counts"]["accepted"]


def test_a_failed_manifest_edited_to_pass_refuses(failing: Path, copy_of) -> None:
    audit = copy_of(failing)
    with pytest.raises(UnauditedDataError, match="did not pass"):
        verify_audit_dir(audit)
    _edit_json(audit / "manifest.json", lambda m: m.update(verdict="pass"))
    with pytest.raises(UnauditedDataError, match="does not agree with itself"):
        verify_audit_dir(audit)

    # the summary edited to pass too, and its hash updated in the manifest: the gate results still fail
    def to_pass(s):
        s["verdict"] = "pass"
        s["gate"]["passed"] = True
    _edit_json(audit / "summary.json", to_pass)
    _edit_json(audit / "manifest.json", lambda m: m.update(summary_sha256=_sha(audit / "summary.json"),
                                                           summary={"path": "summary.json",
                                                                    "sha256": _sha(audit / "summary.json")}))
    with pytest.raises(UnauditedDataError, match="does not agree with itself"):
        verify_audit_dir(audit)

    # ... and every result marked passed: re-derived from value and threshold, they still fail
    def results_pass(s):
        for r in s["gate"]["results"]:
            r["passed"] = True
        s["gate"]["failed"] = []
    _edit_json(audit / "summary.json", results_pass)
    _edit_json(audit / "manifest.json", lambda m: m.update(summary_sha256=_sha(audit / "summary.json"),
                                                           summary={"path": "summary.json",
                                                                    "sha256": _sha(audit / "summary.json")}))
    with pytest.raises(UnauditedDataError, match="does not agree with itself"):
        verify_audit_dir(audit)


@pytest.mark.parametrize("body", [
    lambda digest: {"verdict": "ok", "accepted_sha256": digest},
    lambda digest: [],
    lambda digest: None,
])
def test_hand_written_manifests_refuse(passing: Path, copy_of, body) -> None:
    audit = copy_of(passing)
    (audit / "manifest.json").write_text(json.dumps(body(_sha(audit / "accepted.jsonl"))))
    with pytest.raises(UnauditedDataError, match="is not a clinassay audit manifest") as info:
        verify_audit_dir(audit)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("change, says", [
    (lambda m: m.update(extra_key=1), "extra_key: Extra inputs are not permitted"),
    (lambda m: m.pop("config_sha256"), "config_sha256: Field required"),
    (lambda m: m["accepted"].update(pairs="48"), "accepted.pairs"),
    (lambda m: m.update(schema_version=2), "schema_version"),
])
def test_the_manifest_schema_is_exact(passing: Path, copy_of, change, says) -> None:
    audit = copy_of(passing)
    _edit_json(audit / "manifest.json", change)
    with pytest.raises(UnauditedDataError, match=says):
        verify_audit_dir(audit)


def test_train_cli_refuses_a_forged_manifest_with_exit_2(passing: Path, copy_of, tmp_path, capsys) -> None:
    audit = copy_of(passing)
    (audit / "manifest.json").write_text(json.dumps({"verdict": "ok", "accepted_sha256": _sha(audit / "accepted.jsonl")}))
    assert main(["train", str(audit), "--out", str(tmp_path / "model")]) == 2
    assert "refusing to train" in capsys.readouterr().err
    assert not (tmp_path / "model").exists()


def _edit_accepted(audit: Path) -> None:
    lines = (audit / "accepted.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    record = json.loads(lines[0])
    record["code"] = "I10"
    lines[0] = json.dumps(record, ensure_ascii=False) + "\n"
    (audit / "accepted.jsonl").write_text("".join(lines), encoding="utf-8")


def test_accepted_edited_with_its_hash_updated_refuses(passing: Path, copy_of) -> None:
    audit = copy_of(passing)
    _edit_accepted(audit)
    with pytest.raises(UnauditedDataError, match="accepted.jsonl changed after the audit"):
        verify_audit_dir(audit)
    digest = _sha(audit / "accepted.jsonl")
    _edit_json(audit / "manifest.json", lambda m: (m.update(accepted_sha256=digest), m["accepted"].update(sha256=digest)))
    with pytest.raises(UnauditedDataError, match="disagree on the hashes or counts"):
        verify_audit_dir(audit)


def test_summary_edited_refuses(passing: Path, copy_of) -> None:
    audit = copy_of(passing)
    _edit_json(audit / "summary.json", lambda s: s["counts"].update(warned=s["counts"]["warned"] + 1))
    with pytest.raises(UnauditedDataError, match="summary.json changed after the audit"):
        verify_audit_dir(audit)


def test_stale_rejected_file_refuses(passing: Path, copy_of) -> None:
    audit = copy_of(passing)
    (audit / "rejected.jsonl").write_text('{"mention": "x", "code": "I10", "language": "es", "reasons": []}\n')
    with pytest.raises(UnauditedDataError, match="rejected.jsonl changed after the audit"):
        verify_audit_dir(audit)


def test_an_audit_by_an_older_version_asks_to_audit_again(passing: Path, copy_of) -> None:
    """An audit made before a setting existed: the summary, read by this version, gains the setting's
    default, so its configuration no longer matches the manifest's; train says why, in one line."""
    audit = copy_of(passing)

    def older(config: dict) -> None:
        del config["spelling"]["unknown_word_severity"]
        del config["fit"]["warn_from"]

    for name in ("summary.json",):
        _edit_json(audit / name, lambda s: older(s["provenance"]["config"]))
    summary = _sha(audit / "summary.json")

    def manifest(m: dict) -> None:
        older(m["config"])
        m.update(config_sha256=config_sha256(m["config"]), summary_sha256=summary)
        m["summary"].update(sha256=summary)

    _edit_json(audit / "manifest.json", manifest)
    with pytest.raises(ManifestError, match=r"made by an older clinassay, without settings this version's audit has "
                                            r"\(audit.fit.warn_from, audit.spelling.unknown_word_severity\): audit the "
                                            r"pairs again"):
        verify_audit_output(audit)


def _forge_whole_chain(audit: Path) -> None:
    """What someone who can write the folder can always do without the key: recompute every hash."""
    _edit_accepted(audit)
    digest = _sha(audit / "accepted.jsonl")
    _edit_json(audit / "summary.json", lambda s: s["outputs"]["accepted"].update(sha256=digest))
    summary = _sha(audit / "summary.json")
    _edit_json(audit / "manifest.json", lambda m: (m.update(accepted_sha256=digest, summary_sha256=summary),
                                                   m["accepted"].update(sha256=digest),
                                                   m["summary"].update(sha256=summary)))


def test_signed_audit_refuses_edits_and_unsigned_manifests(tmp_path, terminology, good_records, monkeypatch) -> None:
    monkeypatch.setenv(KEY_ENV, "ci-secret")
    out = tmp_path / "signed"
    assert _audit(terminology, _write(tmp_path / "pairs.jsonl", good_records), out).passed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["signature"] == signature_of(manifest, "ci-secret") and len(manifest["signature"]) == 64
    assert len(load_audited(out).pairs) == 48

    forged = tmp_path / "forged"
    shutil.copytree(out, forged)
    _forge_whole_chain(forged)
    with pytest.raises(UnauditedDataError, match="signature does not match"):
        verify_audit_dir(forged)
    monkeypatch.delenv(KEY_ENV)
    verify_audit_dir(forged)  # without the key, a deliberate re-hashing goes through: the README says so
    verify_audit_dir(out)  # a signed audit still trains where no key is set (the chain is checked)

    monkeypatch.setenv(KEY_ENV, "another-key")
    with pytest.raises(UnauditedDataError, match="signature does not match"):
        verify_audit_dir(out)
    monkeypatch.setenv(KEY_ENV, "ci-secret")
    _edit_json(out / "manifest.json", lambda m: m.update(signature=None))
    with pytest.raises(UnauditedDataError, match="is not signed"):
        verify_audit_dir(out)


def test_unsigned_audit_refuses_when_the_key_is_set(passing: Path, copy_of, monkeypatch) -> None:
    audit = copy_of(passing)
    verify_audit_output(audit)
    monkeypatch.setenv(KEY_ENV, "ci-secret")
    with pytest.raises(UnauditedDataError, match="is not signed"):
        verify_audit_dir(audit)


# ---- 2. outputs never destroy inputs ------------------------------------------------------------------

def test_auditing_its_own_output_is_refused_and_the_file_kept(passing: Path, copy_of, capsys) -> None:
    audit = copy_of(passing)
    before = (audit / "accepted.jsonl").read_bytes()
    assert main(["audit", str(audit / "accepted.jsonl"), "--out", str(audit), "--no-embeddings", "--no-report"]) == 2
    assert "accepted.jsonl of the output folder" in capsys.readouterr().err
    assert (audit / "accepted.jsonl").read_bytes() == before
    verify_audit_output(audit)  # nothing else was touched either


def test_inputs_reaching_an_output_through_links_are_refused(passing: Path, copy_of, tmp_path, terminology) -> None:
    audit = copy_of(passing)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.link(audit / "accepted.jsonl", elsewhere / "hard.jsonl")
    (elsewhere / "soft.jsonl").symlink_to(audit / "accepted.jsonl")
    for pairs in (elsewhere / "hard.jsonl", elsewhere / "soft.jsonl", audit / "." / "accepted.jsonl"):
        with pytest.raises(ClinassayInputError, match="of the output folder"):
            _audit(terminology, pairs, audit)
    with pytest.raises(ClinassayInputError, match="--eval-set"):
        _audit(terminology, SMALL, audit, eval_path=audit / "summary.json")
    with pytest.raises(ClinassayInputError, match="--reference"):
        _audit(terminology, SMALL, audit, reference_path=audit / "drift_es.html")
    verify_audit_output(audit)


def test_a_planted_symlink_is_replaced_not_written_through(tmp_path, terminology, good_records) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("do not touch\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "rejected.jsonl").symlink_to(precious)
    (out / "summary.json").symlink_to(precious)
    _audit(terminology, _write(tmp_path / "pairs.jsonl", good_records[:10] + [{"mention": "x", "code": "??", "language": "es"}]),
           out, config=AuditConfig(embeddings=False, gate=GateConfig(max_reject_rate=1.0)))
    assert precious.read_text() == "do not touch\n"
    assert not (out / "rejected.jsonl").is_symlink() and len(_jsonl(out / "rejected.jsonl")) == 1
    assert not (out / "summary.json").is_symlink()
    _assert_invariant(out, 11)


def test_a_rerun_owns_its_folder(passing: Path, copy_of, tmp_path, terminology) -> None:
    audit = copy_of(passing)
    for stale in ("report.html", "report.md", "drift_pt.html", ".accepted.jsonl.abc123.tmp"):
        (audit / stale).write_text("stale pass")
    (audit / "notes.txt").write_text("mine")
    (audit / "drift_notes.txt").write_text("mine too")
    outcome = _audit(terminology, SMALL, audit)
    assert not outcome.passed
    left = sorted(p.name for p in audit.iterdir())
    assert left == sorted(["drift_notes.txt", "notes.txt", *OUTPUTS])
    assert json.loads((audit / "manifest.json").read_text())["verdict"] == "fail"
    _assert_invariant(audit, sum(1 for l in SMALL.read_text().splitlines() if l.strip()))


def test_a_crashed_rerun_leaves_no_passing_manifest(passing: Path, copy_of, terminology, monkeypatch) -> None:
    import clinassay.audit.auditor as auditor
    audit = copy_of(passing)
    def crash(self, **kwargs):
        raise RuntimeError("killed")
    monkeypatch.setattr(auditor.Auditor, "summarize", crash)
    with pytest.raises(RuntimeError, match="killed"):
        _audit(terminology, SMALL, audit)
    assert sorted(p.name for p in audit.iterdir()) == []  # the old audit is gone, no half-written file is left


def test_bad_input_leaves_the_previous_audit_in_place(passing: Path, copy_of, tmp_path, terminology) -> None:
    audit = copy_of(passing)
    (tmp_path / "eval.tsv").write_text("text\tcode\nfoo\tN39.0\n", encoding="utf-8")
    with pytest.raises(ClinassayInputError):
        _audit(terminology, SMALL, audit, eval_path=tmp_path / "eval.tsv")
    verify_audit_output(audit)


# ---- 3. the gate counts what it could not read --------------------------------------------------------

def test_garbage_lines_fail_the_gate_and_are_all_kept(tmp_path, terminology, good_records, capsys) -> None:
    lines = [f"garbage {i} " + "x" * (i % 700) for i in range(2000)] + good_records
    pairs = _write(tmp_path / "pairs.jsonl", lines)
    out = tmp_path / "out"
    assert main(["audit", str(pairs), "--out", str(out), "--no-embeddings", "--no-report"]) == 1
    assert "malformed_rate" in capsys.readouterr().out
    summary = _assert_invariant(out, 2048)
    failed = {(r["name"], r["scope"]) for r in summary["gate"]["failed"]}
    assert failed == {("malformed_rate", "overall")}
    malformed = _jsonl(out / "malformed.jsonl")
    assert [m["line"] for m in malformed] == list(range(1, 2001))
    longest = max(malformed, key=lambda m: m["length"])
    assert longest["length"] == max(len(l) for l in lines[:2000]) and len(longest["raw"]) == 500 and longest["raw"].endswith("…")
    assert len(summary["malformed"]) == 200  # the summary keeps a capped list; the file keeps all
    with pytest.raises(UnauditedDataError, match=r"did not pass \(gate failed: malformed_rate"):
        verify_audit_dir(out)
    config = tmp_path / "lenient.toml"
    config.write_text("[audit.gate]\nmax_malformed_rate = 1.0\n")
    assert main(["audit", str(pairs), "--out", str(out), "--no-embeddings", "--no-report", "--config", str(config)]) == 0


@pytest.mark.parametrize("content", ["", "\n  \n\n", "nope\n{\n[1, 2]\n"])
def test_empty_or_all_garbage_input_is_bad_input(tmp_path, content, capsys) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(content)
    assert main(["audit", str(pairs), "--out", str(tmp_path / "out"), "--no-embeddings", "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "no pairs to audit" in err or "no line is a readable pair" in err
    assert not (tmp_path / "out" / "manifest.json").exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == []


def test_an_undecodable_file_name_is_written_as_text(tmp_path, terminology, good_records) -> None:
    name = os.fsdecode(b"pairs-\xff.jsonl")
    _audit(terminology, _write(tmp_path / name, good_records[:5]), tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["input"]["path"].endswith("pairs-\ufffd.jsonl")
    verify_audit_output(tmp_path / "out")


def test_a_folder_is_not_a_missing_file(tmp_path, terminology) -> None:
    with pytest.raises(ClinassayInputError, match="is a folder, not a pairs file"):
        _audit(terminology, tmp_path, tmp_path / "out")


def test_hostile_lines_are_reported_not_crashes(tmp_path, terminology, good_records) -> None:
    good = good_records[:6]
    lines = [
        "\ufeff" + json.dumps(good[0], ensure_ascii=False),  # 1: BOM, then a good pair
        {**good[1], "id": "same"},  # 2
        {**good[2], "id": "same"},  # 3: duplicate id -> rejected, points at line 2
        json.dumps(good[3])[:-1] + ', "cost_usd": NaN}',  # 4: bare NaN
        json.dumps(good[4])[:-1] + ', "cost_usd": -Infinity}',  # 5
        '{"mention": "\\ud800 fiebre alta persistente", "code": "R50.9", "language": "es"}',  # 6: lone surrogate
        {"mention": "fiebre alta persistente", "code": "N" * 5000, "language": "es"},  # 7: a 5,000-char code
        '{"mention": "a", "code": "R50.9", "language": "es", "n": ' + "9" * 5000 + "}",  # 8: huge integer
        "[" * 100_000 + "]" * 100_000,  # 9: nested beyond recursion
        {**good[5], "id": "x" * 3000},  # 10: a long id is fine
        '{"mention": "fiebre \\ud83d\\ude00 alta persistente", "code": "R50.9", "language": "es"}',  # 11: a pair, fine
    ]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_bytes(b"".join((l if isinstance(l, str) else json.dumps(l, ensure_ascii=False)).encode("utf-8") + b"\n"
                               for l in lines) + b"\xff\xfe not utf-8\n")  # 12
    out = tmp_path / "out"
    _audit(terminology, pairs, out, config=AuditConfig(embeddings=False, gate=GateConfig(max_malformed_rate=1.0,
                                                                                  max_reject_rate=1.0)))
    summary = _assert_invariant(out, 12)
    malformed = {m["line"]: m for m in _jsonl(out / "malformed.jsonl")}
    assert sorted(malformed) == [4, 5, 6, 8, 9, 12]
    assert "bare NaN" in malformed[4]["error"] and "bare -Infinity" in malformed[5]["error"]
    assert "lone surrogate" in malformed[6]["error"] and malformed[6]["raw"].startswith('{"mention": "\\ud800')
    assert "not UTF-8" in malformed[12]["error"] and malformed[9]["length"] == 200_000
    decided = {r["mention"]: r for r in _jsonl(out / "accepted.jsonl") + _jsonl(out / "rejected.jsonl")}
    assert good[0]["mention"] in decided  # the BOM did not make line 1 malformed
    duplicate = next(r for r in _jsonl(out / "rejected.jsonl") if r.get("id") == "same")
    assert duplicate["mention"] == good[2]["mention"]
    reason = next(r for r in duplicate["reasons"] if r["reason"] == "duplicate_id")
    assert reason["neighbour"]["line"] == 2 and "line 2" in reason["detail"]
    huge = next(r for r in _jsonl(out / "rejected.jsonl") if len(r["code"]) == 5000)
    assert all(len(r["detail"]) <= 400 for r in huge["reasons"])
    assert summary["counts"]["malformed"] == 6


def test_stream_api_reports_unwritable_records(terminology) -> None:
    from clinassay.audit import Malformed, audit_pairs

    records = [{"mention": "fiebre \ud800 alta", "code": "R50.9", "language": "es"},
               {"mention": "fiebre alta persistente", "code": "R50.9", "language": "es", "cost_usd": float("nan")}]
    decisions = list(audit_pairs(records, config=AuditConfig(embeddings=False), terminology=terminology))
    assert [type(d) for d in decisions] == [Malformed, Malformed]
    assert "lone surrogate" in decisions[0].error and "JSON cannot carry" in decisions[1].error


def test_manifest_error_is_input_error() -> None:
    assert issubclass(ManifestError, ClinassayInputError) and issubclass(UnauditedDataError, ClinassayInputError)
