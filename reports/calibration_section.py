"""The report's "What this audit catches on your data" section, from the calibration.json that
`clinassay calibrate` wrote into the audit's folder (audit/calibration.py owns the format)."""

from __future__ import annotations

from clinassay.reports.context import Calibration, CalibrationKind
from clinassay.reports.sources import AuditOutput, load_calibration_of


def _share(k: int, n: int, share: float | None) -> str:
    return f"{k}/{n} ({share:.0%})" if share is not None else f"{k}/{n}"


def calibration_of(audit: AuditOutput) -> Calibration | None:
    """None when the folder holds no calibration; notes say when it measured another input or config."""
    from clinassay.audit.calibration import config_digest

    found, error = load_calibration_of(audit.path)
    if found is None:
        if error is None:
            return None
        return Calibration(input_path=None, created_at=None, sample="", embeddings="", originals=0, copies=0,
                           false_rejects=0, false_reject_rate=None, false_low=None, false_high=None,
                           false_reasons=[], kinds=[], not_planted=[], passed=None,
                           notes=[f"calibration.json could not be read: {error}"])
    notes = []
    provenance = audit.summary.provenance
    if provenance.input.sha256 and provenance.input.sha256 != found.input_sha256:
        notes.append("measured on another input file than this audit's: rerun `clinassay calibrate` on it")
    if config_digest(provenance.config.model_dump(mode="json")) != found.config_sha256:
        notes.append("measured with another audit configuration than this audit's: its figures may not hold here")
    minimum = {g.kind: g for g in found.gate}
    kinds = []
    for k in found.kinds:
        gate = minimum.get(k.kind)
        kinds.append(CalibrationKind(
            kind=k.kind, description=k.description, intended_check=k.intended_check, planted=k.planted,
            measured=k.caught.n, caught=k.caught.k, recall=k.caught.share, low=k.caught.low, high=k.caught.high,
            by_intended_check=k.by_intended_check,
            phrasings=[(p.phrasing, _share(p.caught.k, p.caught.n, p.caught.share)) for p in k.phrasings],
            reasons=list(k.reasons.items())[:5], missed=list(k.missed),
            minimum=gate.minimum if gate else None, passed=gate.passed if gate else None))
    rate = found.false_rejects
    return Calibration(
        input_path=found.input_path, created_at=found.created_at,
        sample=f"{found.originals:,} of {found.distinct_mentions:,} distinct mentions, seed {found.seed}",
        embeddings=found.encoder if found.embeddings and found.encoder else "off",
        originals=found.originals, copies=found.copies, false_rejects=rate.k, false_reject_rate=rate.share,
        false_low=rate.low, false_high=rate.high, false_reasons=list(found.false_reject_reasons.items())[:5],
        kinds=kinds, not_planted=list(found.not_planted), passed=found.passed if found.gate else None, notes=notes)
