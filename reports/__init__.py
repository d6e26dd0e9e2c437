"""Reports: self-contained HTML (and Markdown, JSON, JUnit) pages of an audit and of retrieval
evaluations. Python builds a plain context (`reports.build`); Jinja templates only lay it out
(`reports.render`).

    from clinassay.reports import write_report
    write_report("runs/audit", "runs/audit/report.html", eval_dirs=["runs/baseline", "runs/candidate"])

The names below load on first use, so that reading the `[reports]` config section stays cheap.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "build_report_context": "clinassay.reports.build",
    "ReportConfig": "clinassay.reports.config",
    "FORMATS": "clinassay.reports.render",
    "render": "clinassay.reports.render",
    "write_report": "clinassay.reports.render",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'clinassay.reports' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
