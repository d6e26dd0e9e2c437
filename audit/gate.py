"""The gate: dataset-level thresholds from config decide pass or fail. Every comparison is reported
with its value, threshold and margin, so a failure says which threshold failed by how much."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from clinassay.audit.config import GateConfig


class GateResult(BaseModel):
    """One threshold's comparison, as summary.json records it (and the manifest chain re-checks it)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: str
    scope: str
    value: float
    threshold: float
    comparison: Literal["<=", ">="]
    passed: bool
    margin: float


def _margin(value: float, threshold: float, comparison: str) -> float:
    return threshold - value if comparison == "<=" else value - threshold


def passes(value: float, threshold: float, comparison: str) -> bool:
    """The one pass rule; training re-applies it to every recorded result instead of trusting `passed`."""
    return comparison in ("<=", ">=") and _margin(float(value), float(threshold), comparison) >= -1e-12


def _result(name: str, scope: str, value: float, threshold: float, comparison: Literal["<=", ">="]) -> GateResult:
    value, threshold = float(value), float(threshold)  # unrounded: the recorded result re-derives exactly
    return GateResult(name=name, scope=scope, value=value, threshold=threshold, comparison=comparison,
                      passed=passes(value, threshold, comparison), margin=round(_margin(value, threshold, comparison), 6))


def evaluate_gate(gate: GateConfig, *, matrix: list[dict[str, Any]], coverage: list[dict[str, Any]],
                  leaks: int, drift: dict[str, Any] | None, malformed: int = 0,
                  input_lines: int = 0) -> list[GateResult]:
    """Every threshold as a result; `malformed` of `input_lines` counts the lines no check could read."""
    results: list[GateResult] = []
    if input_lines:
        results.append(_result("malformed_rate", "overall", malformed / input_lines, gate.max_malformed_rate, "<="))
    by_lang: dict[str, list[int]] = {}
    by_gen: dict[str, list[int]] = {}
    total = [0, 0, 0]
    for row in matrix:
        for bucket, key in ((by_lang, row["language"]), (by_gen, row["generator"])):
            acc = bucket.setdefault(key, [0, 0, 0])
            acc[0] += row["pairs"]; acc[1] += row["rejected"]; acc[2] += row["accepted"]
        total[0] += row["pairs"]; total[1] += row["rejected"]; total[2] += row["accepted"]
    results.append(_result("accepted_pairs", "overall", total[2], 1, ">="))
    if total[0]:
        results.append(_result("reject_rate", "overall", total[1] / total[0], gate.max_reject_rate, "<="))
    for lang, (pairs, rejected, accepted) in sorted(by_lang.items()):
        results.append(_result("reject_rate", f"language:{lang}", rejected / pairs, gate.max_reject_rate_language, "<="))
        results.append(_result("accepted_pairs", f"language:{lang}", accepted, gate.min_accepted_per_language, ">="))
    for gen, (pairs, rejected, _) in sorted(by_gen.items()):
        results.append(_result("reject_rate", f"generator:{gen}", rejected / pairs, gate.max_reject_rate_generator, "<="))
    if gate.min_chapter_coverage > 0:
        for lang in sorted(by_lang):
            planned = [row for row in coverage if row["planned"].get(lang)]
            if planned:
                covered = sum(1 for row in planned if row["accepted"].get(lang))
                results.append(_result("chapter_coverage", f"language:{lang}", covered / len(planned),
                                       gate.min_chapter_coverage, ">="))
    results.append(_result("leaks", "overall", leaks, gate.max_leaks, "<="))
    for lang, figures in sorted((drift or {}).items()):
        if isinstance(figures, dict) and figures.get("drift_share") is not None:
            results.append(_result("drift_share", f"language:{lang}", figures["drift_share"], gate.max_drift_share, "<="))
    return results
