"""The contract every audit check follows (cleanlab's issue managers are the model): a `name`, a
per-record flag with a score in [0, 1] and a plain-language reason (its findings), one summary figure
and an info dict. Checks work on chunks so that memory stays bounded and a distributed map can call
`check_chunk` unchanged."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

from clinassay.audit.config import AuditConfig
from clinassay.audit.findings import Finding
from clinassay.audit.items import Chunk
from clinassay.audit.state import empty_like, merge_value, plain
from clinassay.terminology.protocol import TerminologyLike


@dataclass
class AuditResources:
    """What checks may use besides the pairs; built once by the auditor, never loaded in a constructor."""

    terminology: TerminologyLike
    encoder: Any = None
    fit: Any = None  # audit.fit.CorpusFit: the whole classification, lexical and dense
    eval_set: Any = None  # audit.references.EvalSet
    reference: Any = None  # audit.references.CodedReference: real coded mentions, evidence for the fit check
    _official: Any = field(default=None, repr=False)

    @property
    def official_terms(self) -> Any:
        """audit.fit.OfficialTerms: every code's titles, inclusion terms and labels, normalised. Built once and
        shared, since no check may reject an official term of the pair's own code."""
        if self._official is None:
            if self.fit is not None:
                self._official = self.fit.official
            else:
                from clinassay.audit.fit import OfficialTerms

                self._official = OfficialTerms(self.terminology)
        return self._official


@dataclass
class CheckSummary:
    name: str
    flagged: int = 0
    rejected: int = 0
    warned: int = 0
    summary: float = 0.0
    summary_meaning: str = ""
    reasons: Counter = field(default_factory=Counter)
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "flagged": self.flagged,
            "rejected": self.rejected,
            "warned": self.warned,
            "summary": round(float(self.summary), 6),
            "summary_meaning": self.summary_meaning,
            "reasons": dict(self.reasons.most_common()),
            "info": self.info,
        }


class Check(ABC):
    """Base class: subclasses set `name` and implement `check_chunk`; counting lives here."""

    name: ClassVar[str]
    uses_embeddings: ClassVar[bool] = False  # the auditor encodes the chunk's mentions before the first such check
    summary_meaning: ClassVar[str] = "share of checked pairs this check flagged"
    merged: ClassVar[tuple[str, ...]] = ()
    """Counters (ints, floats, Counters, sets, dicts of them) that `info` reads: a distributed audit takes
    them from each partition's check and adds them up (audit/state.py)."""

    def __init__(self, config: AuditConfig, resources: AuditResources) -> None:
        self.config = config
        self.resources = resources
        self.seen = 0
        self.stats = CheckSummary(name=self.name, summary_meaning=self.summary_meaning)

    @abstractmethod
    def check_chunk(self, chunk: Chunk) -> list[list[Finding]]:
        """One list of findings per item of the chunk (empty: nothing to say)."""

    def tally(self, findings: list[Finding]) -> None:
        self.seen += 1
        if not findings:
            return
        self.stats.flagged += 1
        if any(f.severity == "fail" for f in findings):
            self.stats.rejected += 1
        else:
            self.stats.warned += 1
        for f in findings:
            self.stats.reasons[f.reason] += 1

    def info(self) -> dict[str, Any]:
        """Extra figures for summary.json; subclasses add theirs."""
        return {}

    # ---- state across partitions (audit/state.py) ----
    def take_state(self) -> dict[str, Any]:
        """What this check counted since the last take, as plain data; the counters start again from zero
        (caches and loaded models stay)."""
        stats = self.stats
        state = {"seen": self.seen, "flagged": stats.flagged, "rejected": stats.rejected, "warned": stats.warned,
                 "reasons": Counter(stats.reasons)}
        self.seen = 0
        self.stats = CheckSummary(name=self.name, summary_meaning=self.summary_meaning)
        for name in self.merged:
            value = getattr(self, name)
            state[name] = plain(value)
            setattr(self, name, empty_like(value))
        return state

    def merge_state(self, state: dict[str, Any]) -> None:
        """Add a state taken from the same check over other pairs."""
        self.seen += state["seen"]
        self.stats.flagged += state["flagged"]
        self.stats.rejected += state["rejected"]
        self.stats.warned += state["warned"]
        self.stats.reasons.update(state["reasons"])
        for name in self.merged:
            setattr(self, name, merge_value(getattr(self, name), state[name]))

    def summary_value(self) -> float:
        return self.stats.flagged / self.seen if self.seen else 0.0

    def summary(self) -> CheckSummary:
        self.stats.summary = self.summary_value()
        self.stats.info = {"checked": self.seen, **self.info()}
        return self.stats
