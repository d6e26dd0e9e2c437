"""Reports rendered from a real `clinassay audit` run on tiny data (tests/data/reports/pairs_xss.jsonl:
six languages, two generators, injected markup in mentions, two malformed lines), checked figure by
figure against the summary.json that run wrote."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html import unescape
from pathlib import Path

import pytest

from clinassay.cli import main as cli_main
from clinassay.reports.build import build_report_context

PAIRS = Path(__file__).parent / "data" / "reports" / "pairs_xss.jsonl"


def run_audit(out: Path) -> int:
    return cli_main(["audit", str(PAIRS), "--out", str(out), "--no-embeddings"])


@pytest.fixture(scope="module")
def audit_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("audit")
    code = run_audit(out)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert code == (0 if summary["verdict"] == "pass" else 1)
    return out


@pytest.fixture(scope="module")
def summary(audit_dir) -> dict:
    return json.loads((audit_dir / "summary.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def html(audit_dir) -> str:
    return (audit_dir / "report.html").read_text(encoding="utf-8")


def text_of(html: str, element_id: str) -> str:
    match = re.search(rf'id="{re.escape(element_id)}"[^>]*>(.*?)</', html, re.S)
    assert match, element_id
    return unescape(match.group(1)).strip()


def test_audit_writes_the_report_beside_its_outputs(audit_dir, summary, html):
    assert (audit_dir / "report.html").stat().st_size > 10_000
    assert text_of(html, "verdict-status") == summary["verdict"].upper()
    counts = summary["counts"]
    assert counts["input_lines"] == counts["accepted"] + counts["rejected"] + counts["malformed"]
    for element, key in (("count-input", "input_lines"), ("count-accepted", "accepted"), ("count-rejected", "rejected"),
                         ("count-malformed", "malformed"), ("count-warned", "warned")):
        assert text_of(html, element) == f"{counts[key]:,}"


def test_gate_failures_match_summary(audit_dir, summary, html):
    context = build_report_context(audit_dir)
    failed = [g for g in summary["gate"]["results"] if not g["passed"]]
    assert failed, "the tiny data is built to fail the gate"
    assert [(g.name, g.scope, g.value, g.margin) for g in context.verdict.failed] == [
        (g["name"], g["scope"], g["value"], g["margin"]) for g in failed
    ]
    assert html.count('class="gate-failure"') == len(failed)
    assert context.verdict.gate_passed is summary["gate"]["passed"]


def test_matrix_matches_summary(audit_dir, summary, html):
    context = build_report_context(audit_dir)
    cells = {(c.generator, c.language): c for c in context.matrix.cells}
    assert len(cells) == len(summary["matrix"])
    for row in summary["matrix"]:
        cell = cells[(row["generator"], row["language"])]
        assert (cell.pairs, cell.accepted, cell.rejected) == (row["pairs"], row["accepted"], row["rejected"])
        assert cell.reject_rate == pytest.approx(row["reject_rate"])
    rates = re.findall(r'<div class="rate">(?:⚠ )?(\d+)%</div><div class="sub">(\d+) / (\d+)</div>', html)
    expected = sorted((f"{r['reject_rate']:.0%}"[:-1], str(r["accepted"]), str(r["pairs"])) for r in summary["matrix"])
    assert sorted(rates) == expected
    outliers = {(o["generator"], o["language"]) for o in summary["bias"]["outliers"]}
    assert outliers and all(cells[key].outlier for key in outliers)


def test_checks_and_examples_match_rejected_jsonl(audit_dir, summary):
    context = build_report_context(audit_dir)
    by_name = {c.name: c for c in context.checks}
    for name, check in summary["checks"].items():
        assert by_name[name].flagged == check["flagged"] and by_name[name].rejected == check["rejected"]
        assert dict(by_name[name].reasons) == check["reasons"]
    records = [json.loads(line) for line in (audit_dir / "rejected.jsonl").read_text(encoding="utf-8").splitlines()]
    flagged_by = {}
    for record in records:
        for check in {r["check"] for r in record["reasons"]}:
            flagged_by[check] = flagged_by.get(check, 0) + 1
    for name, n in flagged_by.items():
        assert by_name[name].examples_total >= n
    example = by_name["consistency"].examples[0]
    assert example.title and example.reason and example.why  # titles come from the real terminology


def test_injected_markup_from_the_pairs_is_escaped(html):
    for payload in ("<script>window.__pwned=1</script>", '<img src=x onerror="window.__pwned=2">', "</script><b>bold</b>"):
        assert payload not in html
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&#34;window.__pwned=2&#34;&gt;" in html


def test_coverage_and_malformed_match_summary(audit_dir, summary):
    context = build_report_context(audit_dir)
    chapters = summary["coverage"]["chapters"]
    assert [row.chapter for row in context.coverage.rows] == [c["chapter"] for c in chapters]
    for row, chapter in zip(context.coverage.rows, chapters):
        for lang, cell in zip(context.coverage.languages, row.cells):
            planned = chapter["planned"].get(lang)
            assert cell.planned == planned
            assert cell.accepted == chapter["accepted"].get(lang, 0 if planned else None)
    assert [(m.line, m.error) for m in context.malformed] == [(m["line"], m["error"]) for m in summary["malformed"]]


def test_report_command_on_the_real_audit(audit_dir, summary, tmp_path):
    assert cli_main(["report", str(audit_dir), "--out", str(tmp_path / "r.md"), "--format", "markdown"]) == 0
    md = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert ("FAIL" if summary["verdict"] == "fail" else "PASS") in md
    assert not re.search(r"(?<!\\)<(script|img|/script)", md)
    assert cli_main(["report", str(audit_dir), "--out", str(tmp_path / "r.xml"), "--format", "junit"]) == 0
    suite = ET.parse(tmp_path / "r.xml").getroot().find("testsuite")
    assert int(suite.get("tests")) == len(summary["gate"]["results"])
    assert int(suite.get("failures")) == len(summary["gate"]["failed"])
    expected_exit = 1 if summary["verdict"] == "fail" else 0
    assert cli_main(["report", str(audit_dir), "--out", str(tmp_path / "r.html"), "--strict"]) == expected_exit
