"""Labelled mention files the audit compares against: the evaluation set (leakage) and real reference
mentions (drift, synthetic-vs-real fingerprint). TSV with a header or JSONL, with `mention`, `code`,
`language` (the retrieval issue's evaluation format)."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from clinassay.audit.embedding import encode_fixed
from clinassay.audit.text import normalize_text
from clinassay.terminology.errors import ClinassayInputError

REQUIRED = ("mention", "code", "language")


@dataclass
class LabelledMention:
    mention: str
    code: str
    language: str
    line: int


def read_labelled(path: Path | str, *, normalize_code=None) -> list[LabelledMention]:
    """Read a TSV (header row) or JSONL file; bad rows raise ClinassayInputError naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise ClinassayInputError(f"file not found: {path}")
    rows: list[tuple[int, dict[str, Any]]] = []
    with path.open(encoding="utf-8-sig") as handle:
        if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
            for n, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    rows.append((n, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise ClinassayInputError(f"{path}:{n}: not valid JSON: {exc.msg}") from exc
        else:
            reader = csv.DictReader(handle, delimiter="\t")
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise ClinassayInputError(f"{path}: the header lacks column(s) {missing}; found {reader.fieldnames}")
            rows = [(n, row) for n, row in enumerate(reader, start=2)]
    out = []
    for n, row in rows:
        if not isinstance(row, dict) or any(not isinstance(row.get(c), str) or not row.get(c) for c in REQUIRED):
            raise ClinassayInputError(f"{path}:{n}: needs non-empty string fields {list(REQUIRED)}")
        code = row["code"]
        if normalize_code is not None:
            try:
                code = normalize_code(code)
            except ClinassayInputError:
                pass
        out.append(LabelledMention(row["mention"], code, row["language"], n))
    return out


@dataclass
class EvalSet:
    """The evaluation items, indexed for exact (normalised text) and per-code lookups."""

    items: list[LabelledMention]
    path: str = ""
    by_norm: dict[str, int] = field(default_factory=dict)
    by_code: dict[str, list[int]] = field(default_factory=dict)
    norms: list[str] = field(default_factory=list)
    embeddings: np.ndarray | None = None

    def __post_init__(self) -> None:
        for i, item in enumerate(self.items):
            norm = normalize_text(item.mention)
            self.norms.append(norm)
            self.by_norm.setdefault(norm, i)
            self.by_code.setdefault(item.code, []).append(i)

    def embed(self, encoder, *, batch_size: int = 64) -> None:
        if self.embeddings is None and encoder is not None and self.items:
            self.embeddings = encode_fixed(encoder, [i.mention for i in self.items], batch_size=batch_size)


@dataclass(frozen=True)
class Attestation:
    """How clinicians coded one mention in the reference: code -> times, and the total."""

    codes: tuple[tuple[str, int], ...]  # most frequent first

    @property
    def total(self) -> int:
        return sum(n for _, n in self.codes)

    def times(self, code: str) -> int:
        """Times the reference gave this code, or a code it refines or that refines it (I50 / I50.9)."""
        return sum(n for c, n in self.codes if c.startswith(code) or code.startswith(c))

    def in_category(self, category: str) -> int:
        return sum(n for c, n in self.codes if c[:3] == category)


@dataclass
class CodedReference:
    """Real coded mentions (the `--reference` file, e.g. CodiEsp train) as evidence for the fit check: a
    mention clinicians wrote, word for word after normalisation, is judged by the codes they gave it before
    any model is asked. Only exact matches count: a near match is the model's job, with its fitted
    thresholds. Per language, since "ca" in Catalan is not "ca" in Spanish."""

    by_text: dict[tuple[str, str], Attestation]
    path: str = ""

    @classmethod
    def from_mentions(cls, mentions: Iterable[Any], *, path: str = "") -> "CodedReference":
        """From anything with `mention`, `code`, `language` (LabelledMention, retrieval's EvalItem)."""
        counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        for m in mentions:
            norm = normalize_text(m.mention)
            if norm:
                counts[(norm, m.language)][m.code] += 1
        by_text = {key: Attestation(tuple(sorted(codes.items(), key=lambda kv: (-kv[1], kv[0]))))
                   for key, codes in counts.items()}
        return cls(by_text, path=path)

    def attested(self, norm: str, language: str) -> Attestation | None:
        return self.by_text.get((norm, language))
