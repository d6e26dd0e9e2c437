"""Lay a report context out as HTML, Markdown, JSON or JUnit XML.

HTML: one self-contained file (inline CSS, JS and SVG; a Content-Security-Policy that forbids every
network request), autoescaped. Markdown: every value escaped for CommonMark, so an LLM's text cannot
inject markup into a pull-request comment. JUnit: one test case per gate threshold and per compared
retrieval figure, so CI systems show each failure by name.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from clinassay.reports import charts
from clinassay.reports.config import ReportConfig
from clinassay.reports.context import ReportContext
from clinassay.reports.examples import TitleLookup

Format = Literal["html", "markdown", "json", "junit"]
FORMATS: tuple[str, ...] = ("html", "markdown", "json", "junit")


# --- value formatting (shared by the templates) ------------------------------------------------------

def fmt_num(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() and abs(value) >= 1 else f"{value:.3g}"
    return str(value)


def fmt_pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}%}"


def fmt_f3(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def fmt_signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.3f}"


def fmt_money(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"${value:,.2f}" if abs(value) >= 1 else f"${value:.4f}"


_FILTERS = {"num": fmt_num, "pct": fmt_pct, "f3": fmt_f3, "signed": fmt_signed, "money": fmt_money}

# --- Markdown escaping -------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~&@])")


def markdown_text(value: Any) -> str:
    """A value as literal Markdown text: punctuation backslash-escaped, newlines folded (table-safe)."""
    if value is None:
        return "n/a"
    text = " ".join(str(value).split())
    return _MD_SPECIAL.sub(r"\\\1", text)


# --- environments ------------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def _environment(kind: str) -> Environment:
    if kind == "html":
        env = Environment(
            loader=PackageLoader("clinassay.reports", "templates"),
            autoescape=select_autoescape(
                enabled_extensions=("html.j2", "html"), disabled_extensions=("md.j2",), default=True,
                default_for_string=True,
            ),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
    else:  # markdown: no HTML escaping, but every {{ value }} passes through markdown_text
        env = Environment(
            loader=PackageLoader("clinassay.reports", "templates"),
            autoescape=False,
            finalize=lambda v: markdown_text(v) if not isinstance(v, Markup) else v,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
    env.filters.update(_FILTERS)
    env.globals.update(
        bad_colour=charts.bad_colour,
        good_colour=charts.good_colour,
        ink=charts.ink,
        bar_chart=charts.bar_chart,
        histogram=charts.histogram,
        coverage_heatmap=charts.coverage_heatmap,
        ci_chart=charts.ci_chart,
    )
    return env


@lru_cache(maxsize=None)
def _asset(name: str) -> str:
    text = files("clinassay.reports").joinpath("templates", name).read_text(encoding="utf-8")
    if "</" + ("script" if name.endswith(".js") else "style") in text.lower():
        raise ValueError(f"asset {name} must not close its own element")
    return text


def _csp(script: str, *, embeds: bool) -> str:
    """No network at all: no default source, inline style, only our own script (by hash), data: images.
    Embedded Evidently pages (iframe srcdoc, sandboxed) inherit the policy and need inline scripts."""
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    scripts = "'unsafe-inline'" if embeds else f"'sha256-{digest}'"
    return (
        f"default-src 'none'; script-src {scripts}; style-src 'unsafe-inline'; img-src data:; "
        "font-src data:; frame-src 'self' about: data:; connect-src 'none'; base-uri 'none'; form-action 'none'"
    )


def render_html(context: ReportContext) -> str:
    script = _asset("report.js")
    embeds = any(d.embed_html for d in context.drift)
    data = {"verdict": context.verdict.status, "counts": context.verdict.counts,
            "gate_passed": context.verdict.gate_passed, "failed": [g.sentence for g in context.verdict.failed],
            "regressions": context.verdict.regressions}  # machine-readable; tojson escapes <, >, & and '.
    return _environment("html").get_template("report.html.j2").render(
        r=context,
        css=Markup(_asset("report.css")),
        js=Markup(script),
        csp=_csp(script, embeds=embeds),
        data=data,
    )


def render_markdown(context: ReportContext, *, examples: int = 3) -> str:
    return _environment("markdown").get_template("report.md.j2").render(r=context, examples=examples)


def render_json(context: ReportContext) -> str:
    return json.dumps(context.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n"


_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml(text: Any) -> str:
    return _XML_ILLEGAL.sub("\ufffd", str(text))


def render_junit(context: ReportContext) -> str:
    """Test suites: the audit gate (a case per threshold) and retrieval (a case per compared figure).
    `time` and `errors` are set as JUnit readers expect. A suite's time is the wall time its artifacts
    recorded (summary.json's `seconds` for the audit, each metrics.json's `seconds` for retrieval; 0 for
    files written before they recorded it); a case compares figures computed by then (time 0); a gate
    case fails, it never errors."""
    root = ET.Element("testsuites", name=_xml(context.title))
    if context.audit_path is not None:
        suite = ET.SubElement(root, "testsuite", name="clinassay.audit.gate")
        cases = 0
        failures = 0
        for g in context.verdict.gate:
            case = ET.SubElement(suite, "testcase", classname=_xml(f"audit.gate.{g.scope}"), name=_xml(f"{g.name} [{g.scope}]"), time="0")
            cases += 1
            if g.passed is False:
                failures += 1
                ET.SubElement(case, "failure", message=_xml(g.sentence), type="GateThreshold").text = _xml(g.sentence)
        if not context.verdict.gate:  # no thresholds given: the verdict itself is the one case
            case = ET.SubElement(suite, "testcase", classname="audit.gate", name="verdict", time="0")
            cases += 1
            if context.verdict.status == "fail":
                failures += 1
                ET.SubElement(case, "failure", message="audit verdict: fail", type="GateVerdict")
        _suite_totals(suite, cases, failures, skipped=0, seconds=context.audit_seconds or 0.0)
    if context.retrieval is not None:
        suite = ET.SubElement(root, "testsuite", name="clinassay.retrieval")
        cases = failures = skipped = 0
        for run in context.retrieval.runs:
            rows = [(c.stage or "", c.language, c.metric, c.delta, c.status, c.baseline, c.candidate) for c in run.comparison]
            if not rows:
                rows = [
                    (t.stage, row.language, cell.metric, cell.delta, cell.status, None, cell.value)
                    for t in run.stages if t.baseline for row in t.rows for cell in row.cells
                ]
            for stage, language, metric, delta, status, _base, _cand in rows:
                name = f"{run.name} {stage} {language} {metric}".replace("  ", " ")
                case = ET.SubElement(suite, "testcase", classname=_xml(f"retrieval.{run.name}"), name=_xml(name), time="0")
                cases += 1
                if status == "regression":
                    failures += 1
                    drop = "n/a" if delta is None else f"{abs(delta):.3f}"
                    message = f"{stage} {metric} in {language} dropped by {drop} (beyond the tolerance of {context.retrieval.tolerance:g})".strip()
                    ET.SubElement(case, "failure", message=_xml(message), type="Regression").text = _xml(message)
            for language in run.missing_languages:
                case = ET.SubElement(suite, "testcase", classname=_xml(f"retrieval.{run.name}"), name=_xml(f"{run.name} {language} baseline"), time="0")
                cases += 1
                skipped += 1
                ET.SubElement(case, "skipped", message=_xml(f"the baseline has no results for {language}"))
        _suite_totals(suite, cases, failures, skipped=skipped,
                      seconds=sum(run.seconds or 0.0 for run in context.retrieval.runs))
    _suite_totals(root, *(sum(int(s.get(k, "0")) for s in root) for k in ("tests", "failures", "skipped")),
                  seconds=sum(float(s.get("time", "0")) for s in root))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _suite_totals(element: ET.Element, tests: int, failures: int, skipped: int, seconds: float) -> None:
    element.set("tests", str(tests))
    element.set("failures", str(failures))
    element.set("errors", "0")
    element.set("skipped", str(skipped))
    element.set("time", _seconds(seconds))


def _seconds(value: float) -> str:
    """JUnit's `time`: seconds with three decimals ("12.345"), "0" when none were recorded."""
    return f"{value:.3f}" if value else "0"


RENDERERS = {"html": render_html, "markdown": render_markdown, "json": render_json, "junit": render_junit}


def render(context: ReportContext, fmt: str = "html") -> str:
    if fmt not in RENDERERS:
        from clinassay.reports.sources import ReportInputError

        raise ReportInputError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return RENDERERS[fmt](context)


def write_report(
    audit_dir: Path | str | None,
    out: Path | str,
    *,
    eval_dirs: Sequence[Path | str] = (),
    fmt: str = "html",
    config: ReportConfig | None = None,
    titles: TitleLookup | None = None,
) -> ReportContext:
    """Render a report of an audit output folder (and/or evaluation outputs) into the file `out`."""
    from clinassay.reports.build import build_report_context

    out = Path(out)
    context = build_report_context(audit_dir, eval_dirs=eval_dirs, config=config, report_dir=out.parent, titles=titles)
    text = render(context, fmt)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return context
