"""The manifest is an attestation: a hash chain from manifest.json to summary.json to the JSONL outputs,
with an exact schema, and an HMAC signature when a key is set.

What the chain protects against without a key: accidents and stale files (an edited or replaced
accepted.jsonl, a summary from another run, a manifest from before a re-run, a hand-written manifest).
Anyone who can write the folder can still recompute every hash; only the signature
(`CLINASSAY_AUDIT_KEY`, e.g. a CI secret) stops deliberate edits. The verdict is never read from one
field: `verify_audit_output` re-derives it from every gate result in summary.json.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from clinassay.audit.gate import passes
from clinassay.audit.outputs import ACCEPTED, MALFORMED, MANIFEST, REJECTED, SUMMARY
from clinassay.audit.summary import (  # the file entries are shared with summary.json
    AuditSummary,
    FileHash,
    GateReport,
    InputFile,
    MalformedFile,
    PairsFile,
    Sha256,
    SummaryOutputs,
    Exact,
)
from clinassay.terminology.errors import ClinassayInputError, invalid_artifact

SCHEMA_VERSION = 1
KEY_ENV = "CLINASSAY_AUDIT_KEY"


class ManifestError(ClinassayInputError):
    """An audit output folder whose manifest, summary or files do not attest a passing audit."""


class Manifest(Exact):
    """manifest.json, exactly: every key required (null where it does not apply), none other allowed."""

    schema_version: Literal[1]
    input: InputFile
    accepted: PairsFile
    rejected: PairsFile
    malformed: MalformedFile
    summary: FileHash
    accepted_sha256: Sha256  # = accepted.sha256; kept for readers of schema-less manifests
    summary_sha256: Sha256  # = summary.sha256
    verdict: Literal["pass", "fail"]
    config: dict[str, Any]
    config_sha256: Sha256  # of the canonical JSON of `config`
    config_file: str | None
    eval_set: FileHash | None
    reference: FileHash | None
    encoder: str | None
    versions: dict[str, str | None]
    created_at: str
    signature: str | None  # hex HMAC-SHA256 of the canonical JSON without this field; null when unsigned


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def config_sha256(config: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(config)).hexdigest()


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def signature_of(manifest: dict[str, Any], key: str) -> str:
    payload = canonical_json({k: v for k, v in manifest.items() if k != "signature"})
    return hmac.new(key.encode("utf-8"), payload, hashlib.sha256).hexdigest()


def audit_key() -> str | None:
    return os.environ.get(KEY_ENV) or None


def build_manifest(*, input: InputFile, summary: FileHash, outputs: SummaryOutputs, verdict: str,
                   config: dict[str, Any], config_file: str | None, eval_set: FileHash | None,
                   reference: FileHash | None, encoder: str | None, versions: dict[str, str | None],
                   created_at: str, key: str | None) -> Manifest:
    """The manifest of a finished audit, signed with `key` when there is one."""
    fields = dict(schema_version=SCHEMA_VERSION, input=input, accepted=outputs.accepted, rejected=outputs.rejected,
                  malformed=outputs.malformed, summary=summary, accepted_sha256=outputs.accepted.sha256,
                  summary_sha256=summary.sha256, verdict=verdict, config=config, config_sha256=config_sha256(config),
                  config_file=config_file, eval_set=eval_set, reference=reference, encoder=encoder, versions=versions,
                  created_at=created_at, signature=None)
    manifest = Manifest.model_validate(fields, strict=False)
    if key:
        manifest = manifest.model_copy(update={"signature": signature_of(manifest.model_dump(mode="json"), key)})
    return manifest


def manifest_bytes(manifest: Manifest) -> bytes:
    return (json.dumps(manifest.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def read_manifest(path: Path) -> Manifest:
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise invalid_artifact(exc, str(path), f"a clinassay audit manifest (schema {SCHEMA_VERSION})", ManifestError) from exc
    except OSError as exc:
        raise ManifestError(f"{path} cannot be read ({exc.strerror})") from exc


def read_summary(path: Path) -> AuditSummary:
    """summary.json, validated against its schema; one line saying what is wrong otherwise."""
    try:
        return AuditSummary.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise invalid_artifact(exc, str(path), f"an audit summary (schema {SCHEMA_VERSION})", ManifestError) from exc
    except (ValueError, RecursionError) as exc:
        raise ManifestError(f"{path} is not an audit summary (schema {SCHEMA_VERSION}): {str(exc)[:200]}") from exc
    except OSError as exc:
        raise ManifestError(f"{path} cannot be read ({exc.strerror})") from exc


def _check_file(folder: Path, entry: FileHash, expected_name: str) -> None:
    if entry.path != expected_name:
        raise ManifestError(f"{folder / MANIFEST} names {entry.path!r} where the audit writes {expected_name!r}")
    path = folder / expected_name
    if not path.is_file():
        raise ManifestError(f"{path} not found")
    actual = file_sha256(path)
    if actual != entry.sha256:
        raise ManifestError(f"{path} changed after the audit (sha256 {actual[:12]}..., manifest says "
                            f"{entry.sha256[:12]}...). Audit it again.")


def derived_verdict(gate: GateReport) -> tuple[bool, list[str]]:
    """Pass only when there are gate results and every one passed, re-checked from value and threshold."""
    failed = [f"{r.name} [{r.scope}]" for r in gate.results
              if not (r.passed and passes(r.value, r.threshold, r.comparison))]
    return bool(gate.results) and not failed, failed or ([] if gate.results else ["no gate results"])


def verify_audit_output(folder: Path | str, *, key: str | None = None) -> Manifest:
    """Check the whole chain of an audit output folder; return its manifest if it attests a passing
    audit, raise ManifestError with one line saying what is wrong otherwise."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise ManifestError(f"{manifest_path} not found. Training reads only the output of `clinassay audit` "
                            "(run it on the pairs first).")
    manifest = read_manifest(manifest_path)
    if key is not None:
        if manifest.signature is None:
            raise ManifestError(f"{manifest_path} is not signed, and {KEY_ENV} is set: only a signed audit trains")
        expected = signature_of(manifest.model_dump(mode="json"), key)
        if not hmac.compare_digest(expected, manifest.signature):
            raise ManifestError(f"{manifest_path}: the signature does not match ({KEY_ENV}): "
                                "the manifest was edited or signed with another key")
    if manifest.accepted_sha256 != manifest.accepted.sha256 or manifest.summary_sha256 != manifest.summary.sha256:
        raise ManifestError(f"{manifest_path} disagrees with itself (accepted_sha256 / summary_sha256)")
    if config_sha256(manifest.config) != manifest.config_sha256:
        raise ManifestError(f"{manifest_path}: config_sha256 is not the hash of its config")
    _check_file(folder, manifest.summary, SUMMARY)
    summary = read_summary(folder / SUMMARY)
    outputs = SummaryOutputs(accepted=manifest.accepted, rejected=manifest.rejected, malformed=manifest.malformed)
    if summary.outputs != outputs:
        raise ManifestError(f"{manifest_path} and {folder / SUMMARY} disagree on the hashes or counts of the outputs")
    counts = summary.counts
    if (counts.accepted, counts.rejected, counts.malformed) != (outputs.accepted.pairs, outputs.rejected.pairs,
                                                                outputs.malformed.lines) \
            or counts.input_lines != counts.accepted + counts.rejected + counts.malformed \
            or counts.input_lines != manifest.input.lines:
        raise ManifestError(f"{folder / SUMMARY}: counts do not add up (input lines {counts.input_lines} = accepted "
                            f"{counts.accepted} + rejected {counts.rejected} + malformed {counts.malformed}?)")
    current = summary.provenance.config.model_dump(mode="json")
    if current != manifest.config:
        added = _added_settings(manifest.config, current)
        if added:  # the summary read by this version gains the settings an older audit did not have
            raise ManifestError(f"the audit in {folder} was made by an older clinassay, without settings this version's "
                                f"audit has ({', '.join(added[:4])}{', ...' if len(added) > 4 else ''}): audit the pairs "
                                "again")
        raise ManifestError(f"{manifest_path} and {folder / SUMMARY} record different configurations")
    passed, failed = derived_verdict(summary.gate)
    if summary.gate.passed != passed or summary.verdict != ("pass" if passed else "fail") \
            or manifest.verdict != summary.verdict:
        raise ManifestError(f"{folder} does not agree with itself: manifest verdict {manifest.verdict!r}, summary "
                            f"verdict {summary.verdict!r}, gate results say {'pass' if passed else 'fail'}")
    if not passed:
        raise ManifestError(f"the audit in {folder} did not pass (gate failed: {', '.join(failed[:5])}). "
                            "Fix the data or the audit thresholds and audit again.")
    for entry, name in ((manifest.accepted, ACCEPTED), (manifest.rejected, REJECTED), (manifest.malformed, MALFORMED)):
        _check_file(folder, entry, name)
    return manifest


def _added_settings(recorded: Any, current: Any, where: str = "audit") -> list[str]:
    """The settings `current` has and `recorded` lacks, when that is the only difference; else []."""
    return _added(recorded, current, where) or []


def _added(recorded: Any, current: Any, where: str) -> list[str] | None:
    """As _added_settings, with None for any other difference."""
    if not isinstance(recorded, dict) or not isinstance(current, dict):
        return [] if recorded == current else None
    if set(recorded) - set(current):
        return None
    added = [f"{where}.{k}" for k in current if k not in recorded]
    for k in recorded:
        inner = _added(recorded[k], current[k], f"{where}.{k}")
        if inner is None:
            return None
        added += inner
    return added
