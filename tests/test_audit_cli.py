"""`clinassay audit` end to end on tiny data: outputs, counts that add up, exit codes, the manifest
hash that training trusts, the gate, and the streaming API giving the same decisions chunk by chunk."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from clinassay.audit import AuditConfig, Malformed, audit_pairs
from clinassay.audit.gate import evaluate_gate
from clinassay.audit.config import GateConfig
from clinassay.cli import main

DATA = Path(__file__).parent / "data" / "audit"
SMALL = DATA / "pairs_small.jsonl"


def _read(path: Path) -> list[dict]:
    return [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]


@pytest.fixture(scope="module")
def audited(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("audit") / "out"
    code = main(["audit", str(SMALL), "--out", str(out), "--no-embeddings", "--no-report"])
    assert code == 1  # the tiny set is mostly bad pairs: the gate fails
    return out


def test_outputs_and_counts_add_up(audited: Path) -> None:
    summary = json.loads((audited / "summary.json").read_text())
    counts = summary["counts"]
    non_blank = sum(1 for l in SMALL.read_text(encoding="utf-8").splitlines() if l.strip())
    assert counts["input_lines"] == non_blank == counts["accepted"] + counts["rejected"] + counts["malformed"]
    assert len(_read(audited / "accepted.jsonl")) == counts["accepted"]
    rejected = _read(audited / "rejected.jsonl")
    assert len(rejected) == counts["rejected"]
    assert [m["line"] for m in summary["malformed"]] == [9, 10]
    for record in rejected:
        assert record["reasons"] and all({"check", "score", "detail"} <= set(r) for r in record["reasons"])
    by_id = {r["id"]: r for r in rejected}
    assert by_id["p02"]["reasons"][0]["neighbour"] == {"id": "p01", "mention": "infección urinaria baja", "kept": True}
    assert {r["check"] for r in by_id["p07"]["reasons"]} == {"language"}
    assert summary["verdict"] == "fail" and not summary["gate"]["passed"]
    assert {"input_lines", "accepted", "rejected", "malformed", "warned"} <= set(counts)
    for key in ("checks", "matrix", "coverage", "bias", "drift", "drift_reports", "provenance", "malformed", "gate"):
        assert key in summary
    row = summary["matrix"][0]
    assert {"language", "generator", "pairs", "accepted", "rejected", "reject_rate", "reasons", "language_mismatch",
            "duplicates", "cost_usd", "cost_per_accepted"} <= set(row)
    gen_a = next(g for g in summary["provenance"]["generators"] if g["name"] == "gen-a")
    assert gen_a["litellm_model"] == "openai/gpt-4o-mini" and gen_a["input_tokens"] == 100


def test_manifest_hashes(audited: Path) -> None:
    manifest = json.loads((audited / "manifest.json").read_text())
    digest = hashlib.sha256((audited / "accepted.jsonl").read_bytes()).hexdigest()
    assert manifest["accepted_sha256"] == digest == manifest["accepted"]["sha256"]
    assert manifest["input"]["sha256"] == hashlib.sha256(SMALL.read_bytes()).hexdigest()
    assert manifest["verdict"] == "fail" and manifest["config"]["chunk_size"] == 2000


def test_passing_audit_exits_0_and_training_accepts_it(tmp_path: Path) -> None:
    pairs = tmp_path / "good.jsonl"
    pairs.write_text("\n".join(json.dumps({"mention": m, "code": c, "language": "es", "model": "g"}) for m, c in [
        ("infección del tracto urinario", "N39.0"), ("dolor abdominal agudo", "R10.9"),
        ("neumonía adquirida en la comunidad", "J18.9")]) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["audit", str(pairs), "--out", str(out), "--no-embeddings", "--no-report"]) == 0
    from clinassay.retrieval.audited_data import load_audited

    assert len(load_audited(out).pairs) == 3


def test_bad_input_exits_2(tmp_path: Path) -> None:
    assert main(["audit", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o"), "--no-embeddings"]) == 2
    bad_eval = tmp_path / "eval.tsv"
    bad_eval.write_text("text\tcode\nfoo\tN39.0\n", encoding="utf-8")
    assert main(["audit", str(SMALL), "--out", str(tmp_path / "o2"), "--no-embeddings",
                 "--eval-set", str(bad_eval)]) == 2
    config = tmp_path / "c.toml"
    config.write_text("[audit.gate]\nmax_reject_rate = 1.5\n", encoding="utf-8")
    assert main(["audit", str(SMALL), "--out", str(tmp_path / "o3"), "--config", str(config)]) == 2


def test_config_thresholds_and_eval_set(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[audit]\nlanguages = ['es', 'en', 'ca']\n[audit.gate]\nmax_reject_rate = 1.0\n"
                      "max_reject_rate_language = 1.0\nmax_reject_rate_generator = 1.0\nmin_accepted_per_language = 0\n"
                      "max_malformed_rate = 1.0\n",
                      encoding="utf-8")
    eval_set = tmp_path / "eval.tsv"
    eval_set.write_text("mention\tcode\tlanguage\nDolor abdominal agudo\tR10.9\tes\n", encoding="utf-8")
    out = tmp_path / "out"
    code = main(["audit", str(SMALL), "--out", str(out), "--config", str(config), "--eval-set", str(eval_set),
                 "--no-embeddings", "--no-report"])
    summary = json.loads((out / "summary.json").read_text())
    assert code == 1  # the leak alone fails the gate
    assert [r["scope"] for r in summary["gate"]["failed"]] == ["overall"] and summary["gate"]["failed"][0]["name"] == "leaks"
    leak = next(r for r in _read(out / "rejected.jsonl") if r["id"] == "p12")
    assert leak["reasons"][0]["neighbour"]["eval_line"] == 2


def test_stream_api_matches_chunked_run(tmp_path: Path) -> None:
    from clinassay.terminology import load_terminology

    records = [json.loads(l) if l.strip().startswith("{") else l for l in SMALL.read_text().splitlines() if l.strip()]
    term = load_terminology()
    whole = list(audit_pairs(records, config=AuditConfig(embeddings=False), terminology=term))
    tiny = list(audit_pairs(records, config=AuditConfig(embeddings=False, chunk_size=3), terminology=term))
    assert len(whole) == len(tiny) == len(records)
    def view(ds):
        return [("malformed", d.line) if isinstance(d, Malformed) else (d.accepted, sorted(f.reason for f in d.findings))
                for d in ds]
    assert view(whole) == view(tiny)


def test_gate_results_report_margins() -> None:
    matrix = [{"language": "es", "generator": "a", "pairs": 10, "accepted": 9, "rejected": 1},
              {"language": "en", "generator": "b", "pairs": 10, "accepted": 4, "rejected": 6}]
    coverage = [{"chapter": "1", "planned": {"es": 3, "en": 1}, "accepted": {"es": 2}},
                {"chapter": "2", "planned": {"es": 1}, "accepted": {"es": 1}}]
    results = evaluate_gate(GateConfig(min_chapter_coverage=0.5), matrix=matrix, coverage=coverage, leaks=0,
                            drift={"es": {"drift_share": 0.25}})
    failed = {(r.name, r.scope): r for r in results if not r.passed}
    assert set(failed) == {("reject_rate", "overall"), ("reject_rate", "language:en"), ("reject_rate", "generator:b"),
                           ("chapter_coverage", "language:en")}
    assert failed[("reject_rate", "overall")].margin == pytest.approx(-0.05)
    assert all(r.passed for r in results if r.name == "drift_share")


def test_stream_reads_one_chunk_at_a_time() -> None:
    """Memory is bounded by the chunk: the first decision comes out after at most chunk_size pairs are read."""
    from clinassay.terminology import load_terminology

    pulled = 0

    def source():
        nonlocal pulled
        for i in range(1000):
            pulled += 1
            yield {"mention": f"dolor abdominal agudo {i}", "code": "R10.9", "language": "es"}

    stream = audit_pairs(source(), config=AuditConfig(embeddings=False, chunk_size=5), terminology=load_terminology())
    first = next(stream)
    assert first.accepted and pulled == 5
