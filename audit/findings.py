"""What a check says about one pair: a finding. A rejection is data, never an exception."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["warn", "fail"]
DETAIL_KEPT = 400


@dataclass(frozen=True)
class Finding:
    """One reason a pair was flagged: which check, which rule, how strongly, and why in plain words."""

    check: str
    reason: str
    score: float
    detail: str
    severity: Severity = "fail"
    neighbour: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"The 'score' of a {self.check} finding must be in [0, 1]. Got {self.score} instead.")
        if len(self.detail) > DETAIL_KEPT:  # details quote input (a 5,000-character "code"): people read them
            object.__setattr__(self, "detail", self.detail[: DETAIL_KEPT - 1] + "…")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "check": self.check,
            "reason": self.reason,
            "score": round(float(self.score), 4),
            "detail": self.detail,
            "severity": self.severity,
        }
        if self.neighbour:
            out["neighbour"] = self.neighbour
        return out


@dataclass
class Decision:
    """The audit's verdict on one input line: accepted (maybe with warnings) or rejected with reasons."""

    line: int
    record: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return not any(f.severity == "fail" for f in self.findings)

    @property
    def warned(self) -> bool:
        return self.accepted and bool(self.findings)

    def to_json(self) -> dict[str, Any]:
        """The original record plus its reasons (fail first)."""
        ordered = sorted(self.findings, key=lambda f: f.severity != "fail")
        return {**self.record, "reasons": [f.to_json() for f in ordered]}
