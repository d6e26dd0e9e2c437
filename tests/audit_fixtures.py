"""An audit output folder without running the checks: the given pairs accepted (and rejected), a summary
whose gate results come from audit.gate, and a manifest sealed by audit.manifest as `run_audit` seals it,
so that training-side tests start from a real attestation instead of a hand-written two-key manifest."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from clinassay.audit.config import AuditConfig, GateConfig
from clinassay.audit.gate import evaluate_gate
from clinassay.audit.manifest import audit_key, build_manifest, file_sha256, manifest_bytes
from clinassay.audit.summary import AuditSummary, FileHash, InputFile, MalformedFile, PairsFile, SummaryOutputs
from clinassay.audit.outputs import ACCEPTED, MALFORMED, MANIFEST, REJECTED, SUMMARY, OutputFolder


def write_audit_folder(folder: Path, accepted: Iterable[dict[str, Any]], *, rejected: Iterable[dict[str, Any]] = (),
                       gate: GateConfig | None = None, key: str | None = None) -> Path:
    """Write FOLDER as a finished audit of `accepted` + `rejected` pairs; its verdict is the gate's."""
    accepted, rejected = list(accepted), list(rejected)
    out = OutputFolder(folder)
    out.prepare()
    streams = {name: out.stream(name) for name in (ACCEPTED, REJECTED, MALFORMED)}
    for record in accepted:
        streams[ACCEPTED].write(record)
    for record in rejected:
        streams[REJECTED].write({**record, "reasons": [{"check": "validity", "reason": "test", "score": 1.0,
                                                        "detail": "rejected by the fixture", "severity": "fail"}]})
    for stream in streams.values():
        stream.commit()
    cells: Counter = Counter()
    for record, kept in [(r, True) for r in accepted] + [(r, False) for r in rejected]:
        cells[(record["language"], record.get("model") or "unknown", kept)] += 1
    matrix = []
    for language, generator in sorted({(lang, gen) for lang, gen, _ in cells}):
        ok, bad = cells[(language, generator, True)], cells[(language, generator, False)]
        matrix.append({"language": language, "generator": generator, "pairs": ok + bad, "accepted": ok, "rejected": bad,
                       "warned": 0, "reject_rate": bad / (ok + bad), "reasons": {"validity": bad} if bad else {},
                       "language_mismatch": 0, "duplicates": 0, "leaks": 0, "cost_usd": 0.0, "cost_per_accepted": 0.0})
    total = len(accepted) + len(rejected)
    config = AuditConfig(gate=gate or GateConfig()).model_dump(mode="json")
    results = evaluate_gate(GateConfig.model_validate(config["gate"]), matrix=matrix, coverage=[], leaks=0, drift=None,
                            malformed=0, input_lines=total)
    passed = all(r.passed for r in results)
    outputs = SummaryOutputs(
        accepted=PairsFile(path=ACCEPTED, sha256=streams[ACCEPTED].sha256, pairs=len(accepted)),
        rejected=PairsFile(path=REJECTED, sha256=streams[REJECTED].sha256, pairs=len(rejected)),
        malformed=MalformedFile(path=MALFORMED, sha256=streams[MALFORMED].sha256, lines=0))
    summary = AuditSummary.model_validate({
        "verdict": "pass" if passed else "fail",
        "counts": {"input_lines": total, "accepted": len(accepted), "rejected": len(rejected), "malformed": 0,
                   "warned": 0},
        "gate": {"passed": passed, "results": results, "failed": [r for r in results if not r.passed]},
        "checks": {}, "matrix": matrix, "coverage": {"chapters": []},
        "bias": {"outliers": [], "cost": [], "coverage": {}, "coverage_per_generator": {}},
        "drift": None, "drift_reports": {},
        "provenance": {"input": {"path": "pairs.jsonl"}, "generators": [], "config": config, "versions": {},
                       "encoder": None},
        "timings_s": {}, "malformed": [], "outputs": outputs,
    })
    out.write_bytes(SUMMARY, summary.to_json_bytes())
    manifest = build_manifest(
        input=InputFile(path="pairs.jsonl", sha256="0" * 64, lines=total),
        summary=FileHash(path=SUMMARY, sha256=file_sha256(folder / SUMMARY)), outputs=outputs,
        verdict=summary.verdict, config=config, config_file=None, eval_set=None, reference=None, encoder=None,
        versions={}, created_at="2026-01-01T00:00:00Z", key=key if key is not None else audit_key())
    out.write_bytes(MANIFEST, manifest_bytes(manifest))
    return folder
