"""The audit itself: pairs stream through the checks chunk by chunk; dataset-level figures (bias,
drift, the gate) are computed at the end from bounded tallies.

Three entry points, one engine:
- `Auditor.audit_chunk(parsed)` -> decisions: the per-chunk function a distributed map can call;
- `audit_pairs(pairs, ...)` -> an iterator of decisions over any iterable of Pair/dict;
- `run_audit(path, out_dir, ...)` -> writes accepted/rejected/malformed/summary/manifest and returns the verdict.

Counting invariant: input lines (non-blank) = accepted + rejected + malformed, in the counts and in the files.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
from pydantic import BaseModel

from clinassay.audit.bias import fingerprints, reject_outliers
from clinassay.audit.checks import CHECKS, AuditResources
from clinassay.audit.config import AuditConfig
from clinassay.audit.embedding import Encoder, encode_fixed
from clinassay.audit.fit import CorpusFit
from clinassay.audit.fit_model import query_adapter_for
from clinassay.audit.findings import Decision, Finding
from clinassay.audit.gate import evaluate_gate
from clinassay.audit.items import Chunk, Item
from clinassay.audit.manifest import audit_key, build_manifest, manifest_bytes
from clinassay.audit.manifest import file_sha256 as _sha256
from clinassay.audit.outputs import ACCEPTED, MALFORMED, MANIFEST, REJECTED, SUMMARY, OutputFolder, replace_into
from clinassay.audit.reader import Malformed, Parsed, chunked, clip, parse_record
from clinassay.audit.references import CodedReference, EvalSet, LabelledMention, read_labelled
from clinassay.audit.engines import AuditEngine, engine_for
from clinassay.audit.source import PairsSource
from clinassay.audit.state import AuditState
from clinassay.audit.summary import AuditSummary, FileHash, InputFile, MalformedFile, PairsFile, SummaryOutputs
from clinassay.audit.tally import DatasetTally
from clinassay.terminology.errors import ClinassayInputError
from clinassay.terminology.protocol import TerminologyLike

MAX_MALFORMED_LISTED = 200  # in summary.json; malformed.jsonl holds every one
VERSIONED = ("clinassay", "numpy", "scikit-learn", "faiss-cpu", "evidently", "lingua-language-detector", "py3langid",
             "rapidfuzz", "litellm", "sentence-transformers", "pydantic")


def _default_terminology() -> TerminologyLike:
    from clinassay.terminology import load_terminology

    return load_terminology()


class Auditor:
    """Holds the checks and the tallies; constructing it loads nothing (models load on first use)."""

    def __init__(self, config: AuditConfig | None = None, *, terminology: TerminologyLike | None = None,
                 encoder: Encoder | None = None, eval_set: EvalSet | None = None,
                 reference: CodedReference | None = None) -> None:
        self.config = config or AuditConfig()
        self.terminology = terminology if terminology is not None else _default_terminology()
        self.encoder = encoder if self.config.embeddings else None
        fit = CorpusFit(self.terminology, self.encoder, languages=self.config.languages,
                        batch_size=self.config.encode_batch_size, top=self.config.fit.top_categories,
                        max_members=self.config.fit.max_members,
                        adapter=query_adapter_for(getattr(self.encoder, "name", None)) if self.encoder else None,
                        ) if self.config.fit.enabled else None
        self.resources = AuditResources(self.terminology, self.encoder, fit, eval_set, reference)
        self.checks = [cls(self.config, self.resources) for cls in CHECKS]
        self.tally = DatasetTally(self.terminology, sample_size=self.config.language.drift_sample)
        self.malformed: list[Malformed] = []
        self.malformed_count = 0
        self.first_line_of_id: dict[str, int] = {}
        self.accepted = self.rejected = self.warned = 0
        self.timings: dict[str, float] = {"embedding": 0.0, **{c.name: 0.0 for c in self.checks}}

    # ---- per chunk ----
    def _item(self, parsed: Parsed) -> Item:
        pair = parsed.pair
        record = dict(parsed.record)
        given = record.get("id")
        if not given:
            record["id"] = pair.ensure_id().id
        item = Item(line=parsed.line, record=record, mention=pair.mention, raw_code=pair.code,
                    language=pair.language, generator=pair.model or "unknown")
        if given:  # an id names one pair: a second pair under it is rejected, pointing at the first
            first = self.first_line_of_id.setdefault(str(given), parsed.line)
            if first != parsed.line:
                item.findings.append(Finding("duplicate", "duplicate_id", 1.0,
                                             f"id '{given}' is already the id of line {first}",
                                             "fail",
                                             neighbour={"line": first, "id": clip(str(given), 100)}))
        return item

    def audit_chunk(self, parsed: list[Parsed | Malformed]) -> list[Decision | Malformed]:
        """Check one chunk; returns a decision (or the malformed report) per input, in order."""
        for p in parsed:
            if isinstance(p, Malformed):
                self.note_malformed(p)
        items = [self._item(p) for p in parsed if isinstance(p, Parsed)]
        chunk = Chunk(items)
        for check in self.checks:
            if check.uses_embeddings and chunk.embeddings is None and self.encoder is not None and items:
                started = time.perf_counter()
                chunk.embeddings, chunk.embedded = self._embed(items)
                self.timings["embedding"] += time.perf_counter() - started
            started = time.perf_counter()
            results = check.check_chunk(chunk)
            for item, findings in zip(items, results):
                item.findings.extend(findings)
                check.tally(findings)
            self.timings[check.name] += time.perf_counter() - started
        decisions: dict[int, Decision] = {}
        for i, item in enumerate(items):
            self.tally.add(item, chunk.embeddings[i] if chunk.has_vector(i) else None)
            record = item.record
            if not item.rejected and item.code:
                record = {**record, "code": item.code}
            decision = Decision(item.line, record, item.findings)
            if decision.accepted:
                self.accepted += 1
                self.warned += decision.warned
            else:
                self.rejected += 1
            decisions[id(item)] = decision
        it = iter(items)
        return [p if isinstance(p, Malformed) else decisions[id(next(it))] for p in parsed]

    def _embed(self, items: list[Item]) -> tuple[np.ndarray, np.ndarray]:
        """Encode each distinct mention once, and only for pairs the cheap checks have not rejected
        (encoding is the audit's dominant cost)."""
        embedded = np.array([bool(item.norm) and not item.rejected for item in items])
        unique = list(dict.fromkeys(item.mention for item, keep in zip(items, embedded) if keep))
        dimension = None
        if unique:
            encoded = np.asarray(self.encoder.encode(unique, kind="query", batch_size=self.config.encode_batch_size),
                                 dtype=np.float32)
            dimension = encoded.shape[1]
            row = {text: encoded[k] for k, text in enumerate(unique)}
        vectors = np.zeros((len(items), dimension or 1), dtype=np.float32)
        for i, (item, keep) in enumerate(zip(items, embedded)):
            if keep:
                vectors[i] = row[item.mention]
        return vectors, embedded

    def note_malformed(self, malformed: Malformed) -> None:
        self.malformed_count += 1
        if len(self.malformed) < MAX_MALFORMED_LISTED:
            self.malformed.append(malformed)

    # ---- state across partitions (audit/state.py) ----
    def take_state(self) -> AuditState:
        """What this auditor gathered since the last take (counts, malformed lines, every check's counters,
        the tally); it starts counting again from zero, keeping its loaded models and caches."""
        state = AuditState(accepted=self.accepted, rejected=self.rejected, warned=self.warned,
                           malformed_count=self.malformed_count, malformed=self.malformed, timings=self.timings,
                           checks={c.name: c.take_state() for c in self.checks}, tally=self.tally.take_state())
        self.accepted = self.rejected = self.warned = self.malformed_count = 0
        self.malformed = []
        self.timings = {"embedding": 0.0, **{c.name: 0.0 for c in self.checks}}
        return state

    def merge_state(self, state: AuditState) -> None:
        """Add the state of an auditor that audited other pairs (another partition of the same input)."""
        self.accepted += state.accepted
        self.rejected += state.rejected
        self.warned += state.warned
        self.malformed_count += state.malformed_count
        self.malformed = sorted(self.malformed + list(state.malformed), key=lambda m: m.line)[:MAX_MALFORMED_LISTED]
        for name, seconds in state.timings.items():
            self.timings[name] = self.timings.get(name, 0.0) + seconds
        for check in self.checks:
            check.merge_state(state.checks[check.name])
        self.tally.merge_state(state.tally)

    # ---- dataset level ----
    def summarize(self, *, reference: list[LabelledMention] | None = None, out_dir: Path | None = None,
                  input_info: dict[str, Any] | None = None) -> AuditSummary:
        cfg = self.config
        checks = {c.name: c.summary().to_json() for c in self.checks}
        matrix = self.tally.matrix()
        coverage = self.tally.chapter_rows()
        reference_by_lang: dict[str, list[str]] = {}
        for r in reference or []:
            bucket = reference_by_lang.setdefault(r.language, [])
            if len(bucket) < cfg.language.drift_sample:
                bucket.append(r.mention)
        bias: dict[str, Any] = {
            "outliers": reject_outliers(matrix, cfg.bias),
            "cost": [{k: g[k] for k in ("name", "pairs", "accepted", "cost_usd", "cost_per_accepted")}
                     for g in self.tally.provenance_generators()],
            "coverage": _coverage_shares(coverage),
            "coverage_per_generator": self.tally.generator_coverage(),
        }
        if cfg.bias.fingerprint:
            started = time.perf_counter()
            bias["fingerprint"] = fingerprints(self.tally.samples, reference_by_lang, cfg.bias)
            self.timings["fingerprint"] = time.perf_counter() - started
        drift, drift_reports = None, {}
        if reference:
            started = time.perf_counter()
            drift, drift_reports = self._drift(reference_by_lang, out_dir)
            self.timings["drift"] = time.perf_counter() - started
        leaks = checks["leakage"]["flagged"]
        total = self.accepted + self.rejected + self.malformed_count
        gate = evaluate_gate(cfg.gate, matrix=matrix, coverage=coverage, leaks=leaks, drift=drift,
                             malformed=self.malformed_count, input_lines=total)
        passed = all(r.passed for r in gate)
        figures = {
            "verdict": "pass" if passed else "fail",
            "counts": {"input_lines": total, "accepted": self.accepted, "rejected": self.rejected,
                       "malformed": self.malformed_count, "warned": self.warned},
            "gate": {"passed": passed, "results": gate, "failed": [r for r in gate if not r.passed]},
            "checks": checks,
            "matrix": matrix,
            "coverage": {"chapters": coverage},
            "bias": bias,
            "drift": drift,
            "drift_reports": drift_reports,
            "provenance": {"input": input_info or {}, "generators": self.tally.provenance_generators(),
                           "config": cfg.model_dump(mode="json"), "versions": versions(),
                           "encoder": getattr(self.encoder, "name", None)},
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "malformed": [m.to_json() for m in self.malformed],
        }
        # numpy numbers and sets in the figures become plain JSON values before the schema sees them
        plain = json.loads(json.dumps(figures, default=_json_default))
        return AuditSummary.model_validate(plain)

    def _drift(self, reference_by_lang: dict[str, list[str]], out_dir: Path | None):
        from clinassay.audit.drift import language_drift

        drift: dict[str, Any] = {}
        reports: dict[str, str] = {}
        for lang, reservoir in sorted(self.tally.samples.items()):
            real = reference_by_lang.get(lang)
            kept = [s for s in reservoir.items if s.accepted]
            if not real or len(real) < 20 or len(kept) < 10:
                if real:
                    drift[lang] = {"skipped": f"too few mentions ({len(kept)} accepted synthetic, {len(real)} real)"}
                continue
            syn_emb = real_emb = None
            if self.encoder is not None and all(s.embedding is not None for s in kept):
                syn_emb = np.stack([s.embedding for s in kept]).astype(np.float32)
                real_emb = encode_fixed(self.encoder, real, batch_size=self.config.encode_batch_size)
            def measure(html: Path | None, kept=kept, real=real, syn_emb=syn_emb, real_emb=real_emb) -> dict[str, Any]:
                return language_drift([s.mention for s in kept], real, synthetic_embeddings=syn_emb,
                                      real_embeddings=real_emb, html_path=html)

            if out_dir is None:
                drift[lang] = measure(None)
            else:  # written beside and renamed in, like every audit output
                html = out_dir / f"drift_{lang}.html"
                drift[lang] = replace_into(html, measure)
                reports[lang] = html.name
        return drift, reports


def _coverage_shares(coverage: list[dict[str, Any]]) -> dict[str, Any]:
    langs = sorted({l for row in coverage for l in row["planned"]})
    out = {}
    for lang in langs:
        planned = [row for row in coverage if row["planned"].get(lang)]
        covered = [row for row in planned if row["accepted"].get(lang)]
        out[lang] = {"chapters_planned": len(planned), "chapters_accepted": len(covered),
                     "share": round(len(covered) / len(planned), 4) if planned else 0.0,
                     "missing": [row["chapter"] for row in planned if not row["accepted"].get(lang)]}
    return out


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def audit_pairs(pairs: Iterable[Any], *, config: AuditConfig | None = None, terminology: TerminologyLike | None = None,
                encoder: Encoder | None = None, eval_set: EvalSet | None = None,
                auditor: Auditor | None = None) -> Iterator[Decision | Malformed]:
    """Audit a stream of Pair objects or dicts; yields one decision (or malformed report) per pair."""
    auditor = auditor or Auditor(config, terminology=terminology, encoder=encoder, eval_set=eval_set)
    parsed = (parse_record(n, p) for n, p in enumerate(pairs, start=1))
    for chunk in chunked(parsed, auditor.config.chunk_size):
        yield from auditor.audit_chunk(chunk)


@dataclass
class AuditOutcome:
    summary: AuditSummary
    manifest: dict[str, Any]

    @property
    def passed(self) -> bool:
        return self.summary.passed


def _shown(path: Path | str | None) -> str | None:
    """A path as text that can be written as UTF-8 (a file name's undecodable bytes become U+FFFD)."""
    if path is None:
        return None
    return os.fsencode(path).decode("utf-8", errors="replace")


def _file_hash(path: Path | str | None) -> FileHash | None:
    return FileHash(path=_shown(path), sha256=_sha256(Path(path))) if path is not None else None


def run_audit(pairs_path: Path | str, out_dir: Path | str, *, config: AuditConfig | None = None,
              terminology: TerminologyLike | None = None, encoder: Encoder | None = None,
              eval_path: Path | str | None = None, reference_path: Path | str | None = None,
              config_path: Path | str | None = None,
              engine: "AuditEngine | None" = None) -> AuditOutcome:
    """Audit a JSONL file (or a folder of JSONL shards) into `out_dir`; bad files raise ClinassayInputError,
    bad lines are reported. `engine` (default: the one `config.engine` names, audit/engines.py) runs the
    per-pair checks; the files and the summary do not depend on it.

    The run owns `out_dir` (audit/outputs.py): inputs that are its outputs are refused, a previous audit's
    files are removed before anything is written, every file is renamed into place, the manifest last."""
    run_started = time.perf_counter()
    config = config or AuditConfig()
    pairs_path = Path(pairs_path)
    folder = OutputFolder(out_dir)
    out_dir = folder.path
    source = PairsSource(pairs_path)
    sha = source.sha256()
    for shard in source.files:
        folder.refuse_inputs(**{"pairs file": shard})
    folder.refuse_inputs(**{"--eval-set": eval_path, "--reference": reference_path})
    terminology = terminology if terminology is not None else _default_terminology()
    normalize = _code_normalizer(terminology)
    eval_set = None
    if eval_path is not None:
        eval_set = EvalSet(read_labelled(eval_path, normalize_code=normalize), path=str(eval_path))
    reference = read_labelled(reference_path, normalize_code=normalize) if reference_path is not None else None
    coded = CodedReference.from_mentions(reference, path=str(reference_path)) if reference else None
    auditor = Auditor(config, terminology=terminology, encoder=encoder, eval_set=eval_set, reference=coded)
    folder.prepare()
    folder.clear()  # inputs are read and valid: only now does the previous audit go
    streams = {name: folder.stream(name) for name in (ACCEPTED, REJECTED, MALFORMED)}
    started = time.perf_counter()
    try:
        engine = engine or engine_for(config, encoder=encoder)
        for decision in engine.decisions(source, auditor):
            if isinstance(decision, Malformed):
                streams[MALFORMED].write(decision.to_json())
            elif decision.accepted:
                streams[ACCEPTED].write(decision.record if not decision.findings else decision.to_json())
            else:
                streams[REJECTED].write(decision.to_json())
        if auditor.accepted + auditor.rejected == 0:
            raise ClinassayInputError(_unreadable_message(pairs_path, auditor))
        audit_seconds = time.perf_counter() - started
        input_info = {"path": _shown(pairs_path), "sha256": sha}
        summary = auditor.summarize(reference=reference, out_dir=out_dir, input_info=input_info)
        for stream in streams.values():
            stream.commit()
    except BaseException:
        for stream in streams.values():
            stream.discard()
        raise
    counts = summary.counts
    outputs = SummaryOutputs(
        accepted=PairsFile(path=ACCEPTED, sha256=streams[ACCEPTED].sha256, pairs=streams[ACCEPTED].records),
        rejected=PairsFile(path=REJECTED, sha256=streams[REJECTED].sha256, pairs=streams[REJECTED].records),
        malformed=MalformedFile(path=MALFORMED, sha256=streams[MALFORMED].sha256, lines=streams[MALFORMED].records))
    if (outputs.accepted.pairs, outputs.rejected.pairs, outputs.malformed.lines) != \
            (counts.accepted, counts.rejected, counts.malformed):
        raise RuntimeError(f"the audit's files disagree with its counts ({outputs}, {counts})")
    provenance = summary.provenance.model_copy(update={
        "input": summary.provenance.input.model_copy(update={"lines": counts.input_lines}),
        "config_file": _shown(config_path) if config_path else None,
        "eval_set": _shown(eval_path) if eval_path else None,
        "reference": _shown(reference_path) if reference_path else None,
    })
    summary = summary.model_copy(update={
        "outputs": outputs, "provenance": provenance,
        "timings_s": {**summary.timings_s, "per_pair_stream": round(audit_seconds, 3)},
        "seconds": round(time.perf_counter() - run_started, 3),
    })
    folder.write_bytes(SUMMARY, summary.to_json_bytes())
    manifest = build_manifest(
        input=InputFile(path=_shown(pairs_path), sha256=sha, lines=counts.input_lines),
        summary=FileHash(path=SUMMARY, sha256=_sha256(out_dir / SUMMARY)),
        outputs=outputs, verdict=summary.verdict, config=config.model_dump(mode="json"),
        config_file=_shown(config_path) if config_path else None, eval_set=_file_hash(eval_path),
        reference=_file_hash(reference_path), encoder=getattr(encoder, "name", None) if config.embeddings else None,
        versions=summary.provenance.versions, created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        key=audit_key())
    folder.write_bytes(MANIFEST, manifest_bytes(manifest))
    return AuditOutcome(summary, manifest.model_dump(mode="json"))


def _unreadable_message(path: Path, auditor: Auditor) -> str:
    if not auditor.malformed_count:
        return f"{path}: no pairs to audit (the file is empty or blank)"
    first = auditor.malformed[0]
    return (f"{path}: no line is a readable pair ({auditor.malformed_count} malformed; line {first.line}: "
            f"{clip(first.error, 120)})")


def _code_normalizer(terminology: TerminologyLike) -> Callable[[str], str]:
    def normalize(code: str) -> str:
        entry = terminology.find(code)
        return entry.code if entry is not None else code

    return normalize


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, set):
        return sorted(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
