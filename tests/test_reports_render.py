"""Reports rendered from a hand-written audit output (tests/data/reports/audit_small, the agreed
summary.json shape, with injected markup in mentions and config) and two evaluation outputs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from pydantic import ValidationError

from clinassay.audit.checks import CHECK_NAMES
from clinassay.audit.summary import AuditSummary
from clinassay.cli import main as cli_main
from clinassay.reports.build import build_report_context
from clinassay.reports.config import ReportConfig
from clinassay.reports.render import render, render_html, render_json, render_junit, render_markdown, write_report
from clinassay.reports.sources import ReportInputError

DATA = Path(__file__).parent / "data" / "reports"
AUDIT = DATA / "audit_small"
EVALS = [DATA / "eval_baseline", DATA / "eval_candidate"]


def no_titles(code: str) -> None:
    return None


@pytest.fixture(scope="module")
def summary() -> dict:
    return json.loads((AUDIT / "summary.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def context():
    return build_report_context(AUDIT, eval_dirs=EVALS, titles=no_titles)


@pytest.fixture(scope="module")
def html(context) -> str:
    return render_html(context)


class _Collector(HTMLParser):
    """Text by element id, the tags seen, and every attribute, to inspect the page as a browser parses it."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, str] = {}
        self._open: list[str | None] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag in ("meta", "link", "br", "input", "img", "rect", "line", "circle"):
            return
        self._open.append(attrs.get("id"))
        if attrs.get("id"):
            self.by_id[attrs["id"]] = ""

    def handle_endtag(self, tag):
        if self._open and tag not in ("meta", "link", "br", "input", "img", "rect", "line", "circle"):
            self._open.pop()

    def handle_data(self, data):
        for element_id in self._open:
            if element_id:
                self.by_id[element_id] += data


def parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    return collector


def test_verdict_and_counts_match_summary(html, summary):
    page = parse(html)
    counts = summary["counts"]
    assert page.by_id["verdict-status"].strip() == summary["verdict"].upper()
    for key, element in [("input_lines", "count-input"), ("accepted", "count-accepted"), ("rejected", "count-rejected"),
                         ("malformed", "count-malformed"), ("warned", "count-warned")]:
        assert page.by_id[element].strip() == f"{counts[key]:,}"
    assert counts["input_lines"] == counts["accepted"] + counts["rejected"] + counts["malformed"]


def test_failed_thresholds_are_named_with_their_margin(context, html, summary):
    failed = [g for g in summary["gate"]["results"] if not g["passed"]]
    assert [(g.name, g.scope) for g in context.verdict.failed] == [(g["name"], g["scope"]) for g in failed]
    assert "max reject rate (language:es): 71.4%, required ≤ 30.0%: over by 41.4 points" in html
    assert html.count('class="gate-failure"') == len(failed)


def test_matrix_marks_the_bad_generator_language_cell(context):
    matrix = context.matrix
    assert matrix.generators == ["gemma-270m", "gpt-mini"]
    bad = next(c for c in matrix.cells if c.generator == "gemma-270m" and c.language == "es")
    assert bad.outlier and bad.shade == 1.0 and bad.reject_rate == 1.0
    fine = next(c for c in matrix.cells if c.generator == "gpt-mini" and c.language == "fr")
    assert not fine.outlier and fine.shade == 0.0
    assert bad.reason_rates["consistency"] == pytest.approx(0.5)
    assert matrix.outliers == ["gemma-270m rejects 100% of its es pairs vs a median of 67% across generators"]


def test_bias_fingerprints_and_drift_features(context):
    bias = context.bias
    es, en = bias.fingerprints
    assert (es.language, es.generators_f1, es.chance_f1) == ("es", 0.91, 0.5)
    assert es.generators_strength == pytest.approx(0.82) and es.synthetic_strength == 0.0
    assert es.synthetic_note.startswith("needs")
    assert ("generators: gemma-270m", "“<b>”, “: ”, “<script>”") in es.giveaways
    assert en.generators_note.startswith("needs >= 2 generators") and en.generators_strength == 0.0
    assert bias.coverage_gaps == [("es", "2 of 3 planned chapters have accepted pairs; none accepted in chapter 9")]
    drift = {d.language: d for d in context.drift}
    assert drift["es"].drifted is True and drift["es"].drift_share == pytest.approx(0.6667)
    chars = drift["es"].features[0]
    assert (chars.name, chars.drifted, chars.synthetic_mean, chars.reference_mean) == ("chars", True, 18.2, 41.5)
    assert drift["fr"].skipped.startswith("too few mentions") and drift["fr"].link is None


def test_checks_carry_counts_reasons_and_examples(context, summary):
    by_name = {c.name: c for c in context.checks}
    # the audit's own check order (CHECK_NAMES), for the checks this summary has
    assert list(by_name) == [name for name in CHECK_NAMES if name in summary["checks"]]
    assert list(by_name) == ["validity", "language", "phi", "consistency", "leakage", "duplicate"]
    for name, check in summary["checks"].items():
        assert by_name[name].flagged == check["flagged"]
        assert dict(by_name[name].reasons) == check["reasons"]
    consistency = by_name["consistency"]
    assert consistency.examples_total == 4  # 3 rejected + 1 warning kept in accepted.jsonl
    sibling = consistency.examples[0]
    assert sibling.code == "N39.0" and sibling.generator == "gemma-270m" and sibling.score == pytest.approx(0.81)
    assert sibling.neighbour == "better fit: R07.9 Chest pain, unspecified"
    assert by_name["duplicate"].examples[0].neighbour == "duplicate of #a1: “Infección urinaria”"
    assert "evaluation line 12" in by_name["leakage"].examples[0].neighbour
    phi = by_name["phi"].examples
    assert [e.severity for e in phi] == ["fail", "warn"]  # rejections first
    assert phi[1].id == "r2" and phi[1].other_reasons  # the same record was also rejected for its language


def test_example_tables_are_capped_with_a_pointer_to_rejected_jsonl():
    context = build_report_context(AUDIT, config=ReportConfig(examples_per_check=1), titles=no_titles)
    consistency = next(c for c in context.checks if c.name == "consistency")
    assert len(consistency.examples) == 1 and consistency.examples_more == 3
    assert "3 more in rejected.jsonl" in render_html(context)


def test_examples_take_every_reason_in_turn(tmp_path):
    audit = tmp_path / "audit"
    shutil.copytree(AUDIT, audit)
    rows = [{"id": f"n{i}", "mention": f"m{i}", "code": "R50.9", "language": "es", "model": "g",
             "reasons": [{"check": "phi", "reason": "name" if i < 50 else "email", "score": 1.0, "detail": "d", "severity": "fail"}]}
            for i in range(52)]
    (audit / "rejected.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (audit / "accepted.jsonl").write_text("")
    context = build_report_context(audit, config=ReportConfig(examples_per_check=4), titles=no_titles)
    phi = next(c for c in context.checks if c.name == "phi")
    assert [e.id for e in phi.examples] == ["n0", "n50", "n1", "n51"]
    assert phi.examples_total == 52 and phi.examples_more == 48


def test_titles_come_from_the_lookup():
    context = build_report_context(AUDIT, titles={"N39.0": "Urinary tract infection, site not specified"}.get)
    example = next(c for c in context.checks if c.name == "consistency").examples[0]
    assert example.title == "Urinary tract infection, site not specified"


INJECTED = [
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=2">',
    "</script><script>window.__pwned=3</script>",
    "</script><b>bold</b>",
    "<i>x</i>",
    "<script>window.__pwned=4</script>",
]


@pytest.mark.parametrize("payload", INJECTED)
def test_injected_markup_is_escaped_in_html(html, payload):
    assert payload not in html
    assert payload.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;") in html


def test_html_has_only_our_scripts_and_no_event_handlers(html):
    page = parse(html)
    scripts = [attrs for tag, attrs in page.tags if tag == "script"]
    assert scripts == [{"type": "application/json", "id": "report-data"}, {}]
    assert not [(tag, a) for tag, attrs in page.tags for a in attrs if a.lower().startswith("on")]
    assert not [tag for tag, _ in page.tags if tag in ("img", "iframe", "object", "embed")]
    data = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S).group(1)
    assert json.loads(data)["verdict"] == "fail"


def test_html_is_self_contained(html):
    page = parse(html)
    for tag, attrs in page.tags:
        for name in ("src", "href", "action", "data"):
            value = attrs.get(name) or ""
            assert not re.match(r"(?i)\s*(https?:|//|javascript:)", value), (tag, name, value)
        if tag == "link":
            assert attrs.get("rel") == "icon" and attrs.get("href") == "data:,"
    assert "@import" not in html and "url(" not in html
    external = set(re.findall(r"https?://[^\s\"'<>]+", html)) - {"http://www.w3.org/2000/svg"}
    assert not external
    csp = next(a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp and "'unsafe-inline'" not in csp.split(";")[1]


def test_sections_present(html):
    page = parse(html)
    for section in ("verdict", "gate", "provenance", "matrix", "reasons", "coverage", "bias", "drift", "retrieval", "malformed"):
        assert section in page.by_id, section
    assert "9f2c" in page.by_id["provenance"] and "gpt-4o-mini" in page.by_id["provenance"]
    assert "$0.0021" in page.by_id["provenance"]
    assert "1/2" in page.by_id["coverage"]  # chapter 14, es: 1 accepted of 2 planned
    assert "not JSON: Expecting value <here>" in page.by_id["malformed"]


def test_drift_page_is_linked_relative_to_the_report(tmp_path):
    out = tmp_path / "nested" / "report.html"
    context = write_report(AUDIT, out, titles=no_titles)
    link = context.drift[0].link
    assert (out.parent / link).resolve() == (AUDIT / "drift_es.html").resolve()
    assert context.drift[0].drifted is True


def test_drift_page_embedded_in_a_sandboxed_escaped_iframe():
    config = ReportConfig(drift_html="embed")
    html = render_html(build_report_context(AUDIT, config=config, titles=no_titles))
    assert '<iframe class="drift" sandbox="allow-scripts"' in html
    assert 'srcdoc="&lt;!DOCTYPE html&gt;&lt;html&gt;' in html
    small = ReportConfig(drift_html="embed", drift_embed_max_bytes=10)
    context = build_report_context(AUDIT, config=small, titles=no_titles)
    assert context.drift[0].embed_html is None and context.drift[0].link and "linked, not embedded" in context.drift[0].note


def test_drift_page_name_cannot_escape_the_audit_folder(tmp_path):
    audit = tmp_path / "audit"
    shutil.copytree(AUDIT, audit)
    summary = json.loads((audit / "summary.json").read_text())
    summary["drift_reports"] = {"es": "../../etc/passwd", "fr": "javascript:alert(1).html"}
    (audit / "summary.json").write_text(json.dumps(summary))
    context = build_report_context(audit, titles=no_titles)
    assert all(d.link is None and d.embed_html is None for d in context.drift)
    assert [d.language for d in context.drift] == ["es", "fr"]
    assert all("refused" in d.note for d in context.drift)


def test_retrieval_deltas_against_baseline_and_reranker_lift(context):
    retrieval = context.retrieval
    baseline, candidate = retrieval.runs
    assert baseline.name == "me5-small" and candidate.name == "clinassay-ft"
    bi, rerank = candidate.stages
    en = next(r for r in bi.rows if r.language == "en")
    mrr = en.cells[0]
    assert mrr.metric == "mrr@10" and mrr.delta == pytest.approx(-0.05) and mrr.status == "regression"
    assert (mrr.low, mrr.high) == (pytest.approx(0.26), pytest.approx(0.36))
    assert bi.baseline and not rerank.baseline and "reranker lift" in rerank.against
    es_rerank = next(r for r in rerank.rows if r.language == "es").cells[0]
    assert es_rerank.delta == pytest.approx(0.08) and es_rerank.status == "lift"
    assert retrieval.regressions == 1 and retrieval.lifts == 1  # the evaluation's own comparison decides
    assert candidate.missing_languages == ["pt"]
    assert context.verdict.regressions == 1


def test_retrieval_only_report():
    context = build_report_context(None, eval_dirs=[DATA / "eval_baseline"])
    assert context.verdict.status == "pass" and context.matrix is None
    html = render_html(context)
    assert 'id="retrieval"' in html and 'id="matrix"' not in html


def test_a_partial_summary_is_refused_with_the_key_it_lacks(tmp_path):
    """The report reads summary.json through the audit's schema: it never guesses a missing decision."""
    (tmp_path / "summary.json").write_text(json.dumps({"verdict": "pass", "counts": {"input_lines": 3, "accepted": 3}}))
    with pytest.raises(ReportInputError, match=r"not an audit summary \(schema 1\): counts.rejected: Field required"):
        build_report_context(tmp_path, titles=no_titles)
    assert cli_main(["report", str(tmp_path), "--out", str(tmp_path / "r.html")]) == 2


def test_counts_that_do_not_add_up_are_refused(tmp_path, summary):
    odd = {**summary, "counts": {**summary["counts"], "input_lines": summary["counts"]["input_lines"] + 1}}
    (tmp_path / "summary.json").write_text(json.dumps(odd))
    with pytest.raises(ReportInputError, match="do not add up"):
        build_report_context(tmp_path, titles=no_titles)


def test_markdown_escapes_text_and_keeps_tables(context):
    md = render_markdown(context)
    assert not re.search(r"(?<!\\)<(script|img|/script|b>|i>)", md)  # every "<" from the data is backslash-escaped
    assert r"\<script\>window.\_\_pwned=1\</script\>" in md
    assert "| gemma-270m | **100%** ⚠️ | 50% | 0% |" in md
    assert "- max reject rate (language:es): 71.4%, required ≤ 30.0%: over by 41.4 points" in md
    table_rows = [line for line in md.splitlines() if line.startswith("| en |")]
    assert table_rows and all(line.count("|") == 8 for line in table_rows)
    assert "0.310 (-0.050 🔻)" in md


def test_json_is_the_context(context, summary):
    data = json.loads(render_json(context))
    assert data["verdict"]["status"] == "fail"
    assert data["verdict"]["counts"] == summary["counts"]
    assert len(data["checks"]) == len(summary["checks"])


def test_junit_has_a_case_per_threshold_and_regression(context, summary):
    root = ET.fromstring(render_junit(context))
    gate, retrieval = root.findall("testsuite")
    assert len(gate.findall("testcase")) == len(summary["gate"]["results"])
    assert int(gate.get("failures")) == sum(not g["passed"] for g in summary["gate"]["results"]) == len(gate.findall("testcase/failure"))
    assert int(retrieval.get("failures")) == 1
    failure = retrieval.find("testcase/failure")
    assert "mrr@10 in en dropped by 0.050" in failure.get("message")


def test_junit_survives_control_characters(tmp_path, summary):
    odd = json.loads(json.dumps(summary))
    odd["gate"]["results"][0]["name"] = "bad\x00name\x1b"
    (tmp_path / "summary.json").write_text(json.dumps(odd))
    ET.fromstring(render_junit(build_report_context(tmp_path, titles=no_titles)))


def test_bad_inputs_are_input_errors(tmp_path):
    with pytest.raises(ReportInputError, match="no summary.json"):
        build_report_context(tmp_path)
    (tmp_path / "summary.json").write_text("{not json")
    with pytest.raises(ReportInputError, match="not an audit summary .*Invalid JSON"):
        build_report_context(tmp_path)
    with pytest.raises(ReportInputError, match="unknown report format 'pdf'"):
        render(build_report_context(AUDIT, titles=no_titles), "pdf")
    with pytest.raises(ReportInputError, match="nothing to report"):
        build_report_context(None)


def test_config_defaults_and_validation():
    config = ReportConfig()
    assert config.examples_per_check == 20 and config.drift_html == "link"
    with pytest.raises(ValidationError):
        ReportConfig(examples_per_check=-1)
    with pytest.raises(ValidationError):
        ReportConfig(colour="red")


def test_cli_renders_every_format_and_exit_codes(tmp_path):
    common = ["report", str(AUDIT), "--eval", str(EVALS[0]), "--eval", str(EVALS[1])]
    for fmt, suffix in (("html", "html"), ("markdown", "md"), ("json", "json"), ("junit", "xml")):
        out = tmp_path / f"report.{suffix}"
        assert cli_main([*common, "--out", str(out), "--format", fmt]) == 0
        assert out.stat().st_size > 500
    assert cli_main([*common, "--out", str(tmp_path / "guess.md")]) == 0  # format from the suffix
    assert (tmp_path / "guess.md").read_text(encoding="utf-8").startswith("## clinassay report")
    assert cli_main([*common, "--out", str(tmp_path / "r.html"), "--strict"]) == 1
    assert cli_main(["report", str(EVALS[0]), "--out", str(tmp_path / "e.html"), "--strict"]) == 0
    assert cli_main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "m.html")]) == 2
    assert cli_main([*common, "--out", str(tmp_path / "x"), "--format", "pdf"]) == 2


def test_reports_import_no_torch():
    code = "import sys, clinassay.reports, clinassay.reports.render, clinassay.reports.build, clinassay.commands.report; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "False"


def _renders_or_names_the_key(folder: Path, data: dict, key: str) -> None:
    """Free-form figures with odd values still render; a typed part that does not validate is refused,
    and the error names the key (never a traceback, never a guessed decision)."""
    (folder / "summary.json").write_text(json.dumps(data))
    try:
        AuditSummary.model_validate(data)
    except ValidationError:
        with pytest.raises(ReportInputError, match=rf"not an audit summary \(schema 1\): {key}\b"):
            build_report_context(folder, titles=no_titles)
        return
    context = build_report_context(folder, titles=no_titles)
    for fmt in ("html", "markdown", "json", "junit"):
        assert render(context, fmt)


@pytest.mark.parametrize("key", ["gate", "checks", "matrix", "coverage", "bias", "drift", "drift_reports", "provenance", "malformed"])
@pytest.mark.parametrize("junk", [None, "text", 3, [1, "x", None], {"a": {"b": [None]}}])
def test_odd_top_level_values_render_or_are_refused_by_key(tmp_path, summary, key, junk):
    _renders_or_names_the_key(tmp_path, {**summary, key: junk}, key)


NESTED_JUNK = {
    "gate": {"passed": "maybe", "results": [{"name": None, "value": "x"}, "row", {"passed": False, "comparison": ">="}]},
    "checks": {"phi": "text", "validity": {"reasons": ["a"], "info": "x", "flagged": "many"}},
    "matrix": [{"language": None, "pairs": "x", "reasons": [1]}, {"generator": "g", "pairs": 0, "rejected": 0}],
    "coverage": {"chapters": [{"chapter": 1, "planned": ["es"], "accepted": None}, "x"]},
    "bias": {"outliers": "x", "fingerprint": {"es": {"generators": {"macro_f1": "high", "top_features": {"g": "abc"}}}}},
    "provenance": {"generators": [{"litellm_model": ["a", "b"], "prompt_ids": "p"}], "versions": ["x"], "input": "in"},
}


@pytest.mark.parametrize("key", list(NESTED_JUNK))
def test_odd_nested_values_are_refused_by_key(tmp_path, summary, key):
    _renders_or_names_the_key(tmp_path, {**summary, key: NESTED_JUNK[key]}, key)
    with pytest.raises(ValidationError):
        AuditSummary.model_validate({**summary, key: NESTED_JUNK[key]})


FREE_FORM_JUNK = {  # figures for people: odd values render as they are
    "drift": {"es": {"features": {"chars": "x"}, "means": [1], "drift_share": "high"}, "fr": {"skipped": 3}},
    "checks.phi.info": {"nested": {"x": [None, "y"]}, "n": "many"},
    "bias.fingerprint": {"es": {"generators": {"macro_f1": "high", "top_features": {"g": "abc"}}}},
}


@pytest.mark.parametrize("where", list(FREE_FORM_JUNK))
def test_odd_free_form_figures_still_render(tmp_path, summary, where):
    data = json.loads(json.dumps(summary))
    *parents, leaf = where.split(".")
    target = data
    for part in parents:
        target = target[part]
    target[leaf] = FREE_FORM_JUNK[where]
    (tmp_path / "summary.json").write_text(json.dumps(data))
    context = build_report_context(tmp_path, titles=no_titles)
    for fmt in ("html", "markdown", "json", "junit"):
        assert render(context, fmt)


def test_json_data_block_cannot_close_its_script(tmp_path, summary):
    payload = "</script><script>window.__pwned=5</script>"
    odd = json.loads(json.dumps(summary))
    odd["gate"]["results"][0]["scope"] = f"generator:{payload}"
    (tmp_path / "summary.json").write_text(json.dumps(odd))
    html = render_html(build_report_context(tmp_path, titles=no_titles))
    assert payload not in html
    block = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S).group(1)
    assert "<" not in block and payload in json.loads(block)["failed"][0]


def test_a_failed_evaluation_gate_fails_the_verdict_and_an_unreadable_one_is_refused(tmp_path):
    """The verdict takes the evaluation's own decision from metrics.json; a comparison its schema refuses
    (rows that are not rows, a decision that disagrees with its rows) is refused by key, never guessed at."""
    context = build_report_context(None, eval_dirs=[DATA / "eval_candidate"])
    assert context.verdict.status == "fail" and "evaluation gate failed" in context.verdict.notes[0]
    metrics = json.loads((DATA / "eval_candidate" / "metrics.json").read_text())
    refused = {"comparison.regressions: Input should be a valid array": {"regressions": "unreadable"},
               "comparison: Value error, passed is True with 1 regressions": {"passed": True}}
    for message, odd in refused.items():
        (tmp_path / "metrics.json").write_text(json.dumps({**metrics, "comparison": {**metrics["comparison"], **odd}}))
        with pytest.raises(ReportInputError, match=rf"not a clinassay metrics.json \(schema 1\): {re.escape(message)}"):
            build_report_context(None, eval_dirs=[tmp_path])
