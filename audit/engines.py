"""Where the per-pair work of an audit runs: in this process (`local`, the default) or on a Ray cluster
(`ray`, audit/distributed.py, the optional `clinassay[ray]` extra). An engine turns the pairs of a source
into one decision per non-blank line, in input order, and leaves the dataset-level state of every pair it
audited in the given auditor; `run_audit` writes the files and summarises that auditor either way."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Protocol

from clinassay.audit.reader import chunked

if TYPE_CHECKING:
    from clinassay.audit.auditor import Auditor
    from clinassay.audit.config import AuditConfig
    from clinassay.audit.findings import Decision
    from clinassay.audit.reader import Malformed
    from clinassay.audit.source import PairsSource


class AuditEngine(Protocol):
    name: str

    def decisions(self, source: "PairsSource", auditor: "Auditor") -> Iterator["Decision | Malformed"]:
        """One decision (or malformed report) per non-blank input line, ordered by line."""
        ...


class LocalEngine:
    """The auditor's own chunks, one after the other, in this process."""

    name = "local"

    def decisions(self, source: "PairsSource", auditor: "Auditor") -> Iterator["Decision | Malformed"]:
        for chunk in chunked(source.read_lines(), auditor.config.chunk_size):
            yield from auditor.audit_chunk(chunk)


def engine_for(config: "AuditConfig", *, encoder: Any = None) -> AuditEngine:
    """The engine `[audit] engine` names (a CLI flag may have set it)."""
    if config.engine == "local":
        return LocalEngine()
    from clinassay.audit.distributed import RayAuditEngine

    return RayAuditEngine.from_config(config, encoder=encoder)
