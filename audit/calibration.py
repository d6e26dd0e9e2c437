"""What this audit catches on your data: known faults planted into copies of a seeded sample of the
user's own pairs (audit/planting.py), audited with the user's own configuration, and the share of each
kind rejected, with a 95% Wilson interval; the false-reject rate on the untouched originals beside it.

How the copies are audited: the originals first, in one Auditor (their rejections are the false
rejects), followed by the near-duplicate copies, which need the pair they copy to be there. Every other
kind is audited as a dataset of its own, in fresh Auditors, as if it were the user's file with that fault:
a copy never meets its original (a misspelt copy would otherwise be caught as a near duplicate of it),
nor a copy with the same text (see `_rounds`).
A copy whose original the audit rejected says nothing about its planted fault: it is counted but left
out of the recall. `calibration.json` (the `Calibration` model) is what `reports/` shows and what
`[audit.gate] min_recall` is checked against.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from clinassay.audit.config import AuditConfig
from clinassay.audit.embedding import Encoder
from clinassay.audit.findings import Decision
from clinassay.audit.gate import passes
from clinassay.audit.outputs import replace_into
from clinassay.audit.planting import DESCRIPTIONS, INTENDED, FaultKind, Planted, Planter
from clinassay.audit.reader import Parsed, file_sha256, parse_record, read_lines
from clinassay.audit.references import CodedReference, EvalSet, read_labelled
from clinassay.audit.text import normalize_text
from clinassay.terminology.errors import ClinassayInputError
from clinassay.terminology.protocol import TerminologyLike

CALIBRATION = "calibration.json"
CALIBRATION_PAIRS = "calibration_pairs.jsonl"
SCHEMA_VERSION = 1
Z95 = 1.959963984540054
MISSED_KEPT = 5  # missed copies quoted per kind


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Share(_Model):
    """k of n, with its 95% Wilson interval (None when n is 0)."""

    n: int = Field(ge=0)
    k: int = Field(ge=0)
    share: float | None
    low: float | None
    high: float | None


class PhrasingRecall(_Model):
    phrasing: str
    planted: int
    caught: Share


class KindRecall(_Model):
    kind: FaultKind
    description: str
    intended_check: str
    planted: int = Field(description="copies made")
    base_rejected: int = Field(description="copies of originals the audit rejected anyway: not in the recall")
    caught: Share = Field(description="rejected copies among those of accepted originals")
    by_intended_check: int = Field(description="of the caught, those rejected by the check meant for the kind")
    reasons: dict[str, int] = Field(description="check:reason of the caught copies' rejections")
    phrasings: list[PhrasingRecall]
    missed: list[str] = Field(description="a few mentions of copies that passed")


class GateCheck(_Model):
    kind: FaultKind
    minimum: float
    recall: float | None
    passed: bool
    detail: str


class Calibration(_Model):
    schema_version: Literal[1] = SCHEMA_VERSION
    created_at: str
    input_path: str
    input_sha256: str
    input_pairs: int = Field(description="readable pairs in the input")
    input_malformed: int
    distinct_mentions: int = Field(description="pairs with distinct normalised mentions, the population sampled")
    sample_requested: int
    seed: int
    config_sha256: str
    embeddings: bool
    encoder: str | None
    eval_set: str | None
    reference: str | None = Field(None, description="the coded reference the audit used as fit evidence, if any")
    originals: int
    copies: int
    audited: int = Field(description="originals + copies")
    false_rejects: Share
    false_reject_reasons: dict[str, int]
    kinds: list[KindRecall]
    not_planted: list[FaultKind] = Field(description="kinds no sampled pair allowed (e.g. no sex-specific code)")
    gate: list[GateCheck]
    passed: bool


def wilson(k: int, n: int, *, z: float = Z95) -> Share:
    """k of n with the Wilson score interval (good at shares near 0 or 1 and for small n)."""
    if n == 0:
        return Share(n=0, k=k, share=None, low=None, high=None)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Share(n=n, k=k, share=round(p, 6), low=round(max(0.0, centre - half), 6), high=round(min(1.0, centre + half), 6))


def config_digest(config: dict[str, Any]) -> str:
    """The audit configuration's fingerprint: a report compares the audit's with the calibration's."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def sample_originals(path: Path, *, size: int, seed: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """A seeded sample of the file's pairs, one per distinct normalised mention (an exact repeat would be
    rejected as a duplicate, which says nothing about the planted faults). Each gets a calibration id;
    the user's own id, when present, stays as `source_id`, and its line as `source_line`."""
    unique: dict[str, dict[str, Any]] = {}
    pairs = malformed = 0
    for parsed in read_lines(path):
        if not isinstance(parsed, Parsed):
            malformed += 1
            continue
        pairs += 1
        record = dict(parsed.record)
        norm = normalize_text(parsed.pair.mention)
        if norm and norm not in unique:
            unique[norm] = {**record, "source_line": parsed.line}
    if not unique:
        raise ClinassayInputError(f"{path}: no readable pair to calibrate on ({malformed} malformed lines)")
    rows = list(unique.values())
    chosen = random.Random(f"clinassay-calibration-sample:{seed}").sample(rows, min(size, len(rows)))
    originals = []
    for n, record in enumerate(chosen, start=1):
        own = record.pop("id", None)
        originals.append({**record, "id": f"calibration-{n:05d}", **({"source_id": own} if own else {})})
    return originals, {"pairs": pairs, "malformed": malformed, "distinct": len(rows)}


def _audit(records: list[dict[str, Any]], auditor: Any, progress: Callable[[int], None] | None = None) -> list[Decision]:
    from clinassay.audit.reader import chunked

    out: list[Decision] = []
    parsed = [parse_record(n, r) for n, r in enumerate(records, start=1)]
    for chunk in chunked(parsed, auditor.config.chunk_size):
        decided = [d for d in auditor.audit_chunk(chunk) if isinstance(d, Decision)]
        out.extend(decided)
        if progress is not None:
            progress(len(decided))
    if len(out) != len(records):
        raise RuntimeError(f"calibration: {len(records)} pairs audited into {len(out)} decisions")
    return out


def _rounds(copies: list[Planted]) -> list[list[Planted]]:
    """Copies split so that no two in a round share a normalised mention: two originals of one code give
    the same label in another language, nonsense sentences repeat, and a copy caught only as the duplicate
    of another copy would count as caught for the wrong reason."""
    rounds: list[list[Planted]] = []
    seen: list[set[str]] = []
    for p in copies:
        norm = normalize_text(p.record["mention"])
        k = next((i for i, mentions in enumerate(seen) if norm not in mentions), len(rounds))
        if k == len(rounds):
            rounds.append([])
            seen.append(set())
        rounds[k].append(p)
        seen[k].add(norm)
    return rounds


def _fails(decision: Decision) -> list[str]:
    return [f"{f.check}:{f.reason}" for f in decision.findings if f.severity == "fail"]


def _intended(kind: str, decision: Decision) -> bool:
    check, reasons = INTENDED[kind]
    return any(f.severity == "fail" and f.check == check and (reasons is None or f.reason in reasons)
               for f in decision.findings)


def calibrate(pairs_path: Path | str, *, config: AuditConfig | None = None, terminology: TerminologyLike | None = None,
              encoder: Encoder | None = None, eval_path: Path | str | None = None, sample: int = 200, seed: int = 0,
              reference_path: Path | str | None = None,
              progress: Callable[[int, int], None] | None = None) -> tuple[Calibration, list[dict[str, Any]]]:
    """Plant, audit, count. Returns the calibration and every audited pair (originals and copies) with its
    decision, as written to calibration_pairs.jsonl. `progress(n, total)` is told the pairs audited, n
    more of `total` (originals + copies, known once the faults are planted)."""
    from clinassay.audit.auditor import Auditor, _code_normalizer, _default_terminology, _shown

    config = config or AuditConfig()
    if sample < 1:
        raise ValueError(f"The 'sample' parameter of calibrate must be at least 1. Got {sample} instead.")
    pairs_path = Path(pairs_path)
    sha, _ = file_sha256(pairs_path)
    terminology = terminology if terminology is not None else _default_terminology()
    eval_set = None
    if eval_path is not None:
        eval_set = EvalSet(read_labelled(eval_path, normalize_code=_code_normalizer(terminology)), path=str(eval_path))
    reference = None
    if reference_path is not None:  # the audit's own evidence: calibrated as it will audit
        reference = CodedReference.from_mentions(
            read_labelled(reference_path, normalize_code=_code_normalizer(terminology)), path=str(reference_path))
    originals, read = sample_originals(pairs_path, size=sample, seed=seed)
    planter = Planter(terminology, languages=config.languages, eval_items=eval_set.items if eval_set else ())
    planted = planter.plant(originals, seed=seed)

    def auditor() -> Auditor:
        return Auditor(config, terminology=terminology, encoder=encoder, eval_set=eval_set, reference=reference)

    total = len(originals) + len(planted)
    audited = None if progress is None else (lambda n: progress(n, total))
    if progress is not None:
        progress(0, total)

    by_kind: dict[str, list[Planted]] = {}
    for p in planted:
        by_kind.setdefault(p.kind, []).append(p)
    near = by_kind.get("near_duplicate", [])
    first = _audit(originals + [p.record for p in near], auditor(), audited)
    original_decisions, decisions = first[:len(originals)], {id(p): d for p, d in zip(near, first[len(originals):])}
    for kind, copies in by_kind.items():
        if kind != "near_duplicate":
            for group in _rounds(copies):
                decisions.update((id(p), d) for p, d in zip(group, _audit([p.record for p in group], auditor(), audited)))

    rejected = [d for d in original_decisions if not d.accepted]
    kinds = [_kind_recall(kind, by_kind[kind], decisions, original_decisions) for kind in planter.kinds()
             if kind in by_kind]
    gate = _gate(config, {k.kind: k for k in kinds})
    rows = [{"role": "original", **d.to_json(), "accepted": d.accepted} for d in original_decisions]
    rows += [{"role": "copy", **decisions[id(p)].to_json(), "accepted": decisions[id(p)].accepted} for p in planted]
    result = Calibration(
        created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), input_path=_shown(pairs_path) or "",
        input_sha256=sha, input_pairs=read["pairs"], input_malformed=read["malformed"],
        distinct_mentions=read["distinct"], sample_requested=sample, seed=seed,
        config_sha256=config_digest(config.model_dump(mode="json")), embeddings=bool(config.embeddings and encoder),
        encoder=getattr(encoder, "name", None) if config.embeddings else None,
        eval_set=_shown(eval_path), reference=_shown(reference_path), originals=len(originals), copies=len(planted),
        audited=len(originals) + len(planted), false_rejects=wilson(len(rejected), len(originals)),
        false_reject_reasons=dict(Counter(r for d in rejected for r in _fails(d)).most_common()),
        kinds=kinds, not_planted=[k for k in planter.kinds() if k not in by_kind], gate=gate,
        passed=all(g.passed for g in gate))
    return result, rows


def _kind_recall(kind: FaultKind, copies: list[Planted], decisions: dict[int, Decision],
                 originals: list[Decision]) -> KindRecall:
    counted = [p for p in copies if originals[p.base].accepted]
    caught = [p for p in counted if not decisions[id(p)].accepted]
    phrasings = []
    for phrasing in sorted({p.phrasing for p in copies}):
        mine = [p for p in counted if p.phrasing == phrasing]
        phrasings.append(PhrasingRecall(
            phrasing=phrasing, planted=sum(p.phrasing == phrasing for p in copies),
            caught=wilson(sum(not decisions[id(p)].accepted for p in mine), len(mine))))
    return KindRecall(
        kind=kind, description=DESCRIPTIONS[kind], intended_check=INTENDED[kind][0], planted=len(copies),
        base_rejected=len(copies) - len(counted), caught=wilson(len(caught), len(counted)),
        by_intended_check=sum(_intended(kind, decisions[id(p)]) for p in caught),
        reasons=dict(Counter(r for p in caught for r in _fails(decisions[id(p)])).most_common()),
        phrasings=phrasings,
        missed=[p.record["mention"] for p in counted if decisions[id(p)].accepted][:MISSED_KEPT])


def _gate(config: AuditConfig, kinds: dict[str, KindRecall]) -> list[GateCheck]:
    out = []
    for kind, minimum in sorted(config.gate.min_recall.items()):
        found = kinds.get(kind)
        recall = found.caught.share if found is not None else None
        if recall is None:
            detail = (f"no {kind} copy could be measured on this sample (none planted, or every original rejected): "
                      f"recall >= {minimum:g} is not shown")
            out.append(GateCheck(kind=kind, minimum=minimum, recall=None, passed=False, detail=detail))
            continue
        ok = passes(recall, minimum, ">=")
        detail = (f"{kind}: {found.caught.k} of {found.caught.n} caught ({recall:.1%}), required >= {minimum:.1%}"
                  + ("" if ok else f": short by {minimum - recall:.1%}"))
        out.append(GateCheck(kind=kind, minimum=minimum, recall=recall, passed=ok, detail=detail))
    return out


def run_calibration(pairs_path: Path | str, out_dir: Path | str, *, config: AuditConfig | None = None,
                    terminology: TerminologyLike | None = None, encoder: Encoder | None = None, eval_path: Path | str | None = None,
                    sample: int = 200, seed: int = 0, reference_path: Path | str | None = None,
                    progress: Callable[[int, int], None] | None = None) -> Calibration:
    """`calibrate` (`progress`: pairs audited, as there), then write calibration.json and
    calibration_pairs.jsonl into `out_dir` (renamed into place; nothing else there is touched, so the
    folder may be the audit's own and its report shows it)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ClinassayInputError(f"--out must be a directory: {out}")
    for name in (CALIBRATION, CALIBRATION_PAIRS):
        if (out / name).exists() and Path(pairs_path).resolve() == (out / name).resolve():
            raise ClinassayInputError(f"the pairs file {pairs_path} is {name} of {out}, which calibration replaces")
    result, rows = calibrate(pairs_path, config=config, terminology=terminology, encoder=encoder,
                             eval_path=eval_path, sample=sample, seed=seed, reference_path=reference_path,
                             progress=progress)
    out.mkdir(parents=True, exist_ok=True)

    def write_rows(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    replace_into(out / CALIBRATION_PAIRS, write_rows)
    replace_into(out / CALIBRATION, lambda tmp: tmp.write_text(result.model_dump_json(indent=2), encoding="utf-8"))
    return result


def load_calibration(path: Path | str) -> Calibration:
    """Read and validate calibration.json; a file of another schema is bad input, named."""
    path = Path(path)
    try:
        return Calibration.model_validate_json(path.read_bytes())
    except ValueError as exc:
        raise ClinassayInputError(f"{path}: not a clinassay calibration.json ({str(exc).splitlines()[0]})") from exc
