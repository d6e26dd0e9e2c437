"""Training reads only data that passed an audit, and checks that for itself: the manifest's exact
schema, the signature when `CLINASSAY_AUDIT_KEY` is set, the hash chain manifest -> summary.json ->
accepted/rejected/malformed.jsonl, counts that add up, and the verdict re-derived from every gate
result (audit.manifest.verify_audit_output). There is no bypass: anything else raises
`UnauditedDataError` (exit 2 at the CLI)."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from clinassay.audit.manifest import ManifestError, audit_key, file_sha256, verify_audit_output
from clinassay.generation.records import Pair
from clinassay.terminology.errors import ClinassayInputError


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


def verify_audit_dir(audit_dir: Path | str) -> tuple[dict, str]:
    """Check the audit's attestation; return the manifest and the accepted file's hash, or refuse with a reason."""
    try:
        manifest = verify_audit_output(audit_dir, key=audit_key())
    except ManifestError as exc:
        raise UnauditedDataError(f"refusing to train: {exc}") from exc
    return manifest.model_dump(mode="json"), manifest.accepted.sha256


def load_audited(audit_dir: Path | str) -> AuditedData:
    """The accepted pairs of a passing audit, after `verify_audit_dir`."""
    audit_dir = Path(audit_dir)
    manifest, accepted_hash = verify_audit_dir(audit_dir)
    data = (audit_dir / "accepted.jsonl").read_bytes()  # read once: what is parsed is what was hashed
    if hashlib.sha256(data).hexdigest() != accepted_hash:
        raise UnauditedDataError(f"refusing to train: {audit_dir / 'accepted.jsonl'} changed while it was read")
    pairs = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            pairs.append(Pair.model_validate_json(line))
        except ValueError as exc:
            raise ClinassayInputError(f"{audit_dir / 'accepted.jsonl'}:{number}: not a pair: {exc}") from exc
    if not pairs:
        raise UnauditedDataError(f"refusing to train: {audit_dir / 'accepted.jsonl'} holds no pairs")
    if len(pairs) != manifest["accepted"]["pairs"]:
        raise UnauditedDataError(f"refusing to train: {audit_dir / 'accepted.jsonl'} holds {len(pairs)} pairs, "
                                 f"the audit accepted {manifest['accepted']['pairs']}")
    return AuditedData(
        pairs=pairs,
        manifest=manifest,
        manifest_sha256=file_sha256(audit_dir / "manifest.json"),
        accepted_sha256=accepted_hash,
    )
