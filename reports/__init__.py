"""Reports: self-contained HTML (and Markdown, JSON, JUnit) pages of an audit and of retrieval
evaluations. Python builds a plain context (`reports.build`); Jinja templates only lay it out
(`reports.render`)."""

from reports.build import build_report_context
from reports.config import ReportConfig
from reports.render import FORMATS, render, write_report

__all__ = ["FORMATS", "ReportConfig", "build_report_context", "render", "write_report"]
