"""Training reads only data that passed an audit: `AUDIT_DIR/manifest.json` must exist, say the
audit passed, and carry the sha256 of `accepted.jsonl` that matches the file on disk. There is no
bypass: anything else raises `UnauditedDataError` (exit 2 at the CLI)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from generation.records import Pair
from retrieval.evalset import file_sha256
from terminology.errors import ClinassayInputError

PASSING_VERDICTS = {"pass", "passed", "ok"}


class UnauditedDataError(ClinassayInputError):
    """The training data did not come out of a passing audit."""


@dataclass(frozen=True)
class AuditedData:
    pairs: list[Pair]
    manifest: dict
    manifest_sha256: str
    accepted_sha256: str

    def sizes(self) -> dict:
        """Pairs per language, per generator and per task: the model card's data section."""
        return {
            "pairs": len(self.pairs),
            "languages": dict(Counter(p.language for p in self.pairs).most_common()),
            "generators": dict(Counter(p.model or "unknown" for p in self.pairs).most_common()),
            "tasks": dict(Counter(p.task for p in self.pairs).most_common()),
        }


def _verdict(manifest: dict) -> str:
    verdict = manifest.get("verdict")
    if isinstance(verdict, dict):  # {"verdict": {"passed": true, ...}} or {"status": "pass"}
        if "passed" in verdict:
            return "pass" if verdict["passed"] else "fail"
        verdict = verdict.get("status") or verdict.get("verdict")
    if isinstance(verdict, bool):
        return "pass" if verdict else "fail"
    return str(verdict or "").lower()


def _expected_hash(manifest: dict) -> str | None:
    for key in ("accepted_sha256", "accepted_jsonl_sha256"):
        if manifest.get(key):
            return str(manifest[key])
    for container in ("outputs", "hashes", "files"):
        entry = (manifest.get(container) or {}).get("accepted.jsonl") or (manifest.get(container) or {}).get("accepted")
        if isinstance(entry, str):
            return entry
        if isinstance(entry, dict) and entry.get("sha256"):
            return str(entry["sha256"])
    return None


def verify_audit_dir(audit_dir: Path | str) -> tuple[dict, str]:
    """Check the audit's manifest; return it and the accepted file's hash, or refuse with a reason."""
    audit_dir = Path(audit_dir)
    manifest_path = audit_dir / "manifest.json"
    accepted_path = audit_dir / "accepted.jsonl"
    if not manifest_path.is_file():
        raise UnauditedDataError(
            f"refusing to train: {manifest_path} not found. Training reads only the output of "
            "`clinassay audit` (run it on the pairs first)."
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UnauditedDataError(f"refusing to train: {manifest_path} is not valid JSON ({exc.msg})") from exc
    verdict = _verdict(manifest)
    if verdict not in PASSING_VERDICTS:
        raise UnauditedDataError(
            f"refusing to train: the audit in {audit_dir} did not pass (verdict {verdict or 'missing'!r}). "
            "Fix the data or the audit thresholds and audit again."
        )
    expected = _expected_hash(manifest)
    if not expected:
        raise UnauditedDataError(f"refusing to train: {manifest_path} records no sha256 of accepted.jsonl")
    if not accepted_path.is_file():
        raise UnauditedDataError(f"refusing to train: {accepted_path} not found")
    actual = file_sha256(accepted_path)
    if actual != expected:
        raise UnauditedDataError(
            f"refusing to train: {accepted_path} changed after the audit "
            f"(sha256 {actual[:12]}..., manifest says {expected[:12]}...). Audit it again."
        )
    return manifest, actual


def load_audited(audit_dir: Path | str) -> AuditedData:
    """The accepted pairs of a passing audit, after `verify_audit_dir`."""
    audit_dir = Path(audit_dir)
    manifest, accepted_hash = verify_audit_dir(audit_dir)
    pairs = []
    with open(audit_dir / "accepted.jsonl", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                pairs.append(Pair.model_validate_json(line))
            except ValueError as exc:
                raise ClinassayInputError(f"{audit_dir / 'accepted.jsonl'}:{number}: not a pair: {exc}") from exc
    if not pairs:
        raise UnauditedDataError(f"refusing to train: {audit_dir / 'accepted.jsonl'} holds no pairs")
    return AuditedData(
        pairs=pairs,
        manifest=manifest,
        manifest_sha256=file_sha256(audit_dir / "manifest.json"),
        accepted_sha256=accepted_hash,
    )
