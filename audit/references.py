"""Labelled mention files the audit compares against: the evaluation set (leakage) and real reference
mentions (drift, synthetic-vs-real fingerprint). TSV with a header or JSONL, with `mention`, `code`,
`language` (the retrieval issue's evaluation format)."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from clinassay.audit.embedding import encode_fixed
from clinassay.audit.reader import unwritable
from clinassay.audit.text import normalize_text, words
from clinassay.terminology.errors import ClinassayInputError

REQUIRED = ("mention", "code", "language")


@dataclass
class LabelledMention:
    mention: str
    code: str
    language: str
    line: int


def _rows(path: Path) -> list[tuple[int, Any]]:
    """(line number, row) pairs of a JSONL file (by suffix, or content starting with "{") or a TSV with a
    header; a UTF-8 BOM is not part of the first column's name."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson") or text.lstrip().startswith("{"):
        rows: list[tuple[int, Any]] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise ClinassayInputError(f"{path}:{number}: not valid JSON: {exc.msg}") from exc
        return rows
    reader = csv.DictReader(text.splitlines(), delimiter="\t")
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise ClinassayInputError(f"{path}: the header must name {', '.join(REQUIRED)}; missing "
                                  f"{', '.join(missing)} (header: {reader.fieldnames})")
    return [(number, row) for number, row in enumerate(reader, start=2)]


def read_labelled(path: Path | str, *, normalize_code=None, bad_code: str = "keep") -> list[LabelledMention]:
    """The one reader of the (mention, code, language) format: evaluation sets, `--reference` files,
    CodiEsp imports. Values are stripped, languages lower-cased; a bad row raises ClinassayInputError
    naming file and line. `normalize_code` canonicalises codes; a code it refuses is kept as written
    (`bad_code="keep"`: the audit still compares texts) or refused (`"refuse"`: retrieval needs codes)."""
    path = Path(path)
    if not path.is_file():
        raise ClinassayInputError(f"file not found: {path}")
    out = []
    for n, row in _rows(path):
        if not isinstance(row, dict):
            raise ClinassayInputError(f"{path}:{n}: expected a JSON object, got {type(row).__name__}")
        values = {c: str(row.get(c) or "").strip() for c in REQUIRED}
        empty = [c for c in REQUIRED if not values[c]]
        if empty:
            raise ClinassayInputError(f"{path}:{n}: empty {', '.join(empty)} (needs {', '.join(REQUIRED)})")
        broken = [c for c in REQUIRED if unwritable({c: values[c]}) is not None]
        if broken:  # a JSON "\ud800" escape: no UTF-8 file (metrics, predictions, reports) could hold it
            raise ClinassayInputError(f"{path}:{n}: {', '.join(broken)} holds a lone surrogate (e.g. \\ud800), "
                                      "which is not text")
        code = values["code"]
        if normalize_code is not None:
            try:
                code = normalize_code(code)
            except ClinassayInputError as exc:
                if bad_code == "refuse":
                    raise ClinassayInputError(f"{path}:{n}: {exc}") from exc
        out.append(LabelledMention(values["mention"], code, values["language"].lower(), n))
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


@dataclass(frozen=True)
class ReferenceStanding:
    """What the nearest reference mentions (by character n-grams, not word for word) say about a claimed
    code: for each of the `NEAR_K` nearest, its similarity times the share of its codes that agree, kept
    at the maximum. These are features of the fit models' reference variant (audit/fit_model.py), fitted
    five-fold by document on CodiEsp train; a near match alone never decides ("tipo 1" is near "tipo 2")."""

    similarity: float  # the nearest one's
    own_category: float  # max over neighbours of similarity x share coded to the claimed category
    other_category: float  # ... x share coded to another category
    own_code: float  # ... x share coded to the claimed code, a code it refines or that refines it
    sibling: float  # ... x share coded to another code of the claimed category
    nearest: str = ""  # the nearest mention with other-category evidence, for the finding's words
    nearest_code: str = ""

    def features(self) -> dict[str, float]:
        return {"ref_sim": self.similarity, "ref_own": self.own_category, "ref_other": self.other_category,
                "ref_code": self.own_code, "ref_sibling": self.sibling}


NEAR_K = 5
MIN_NEAR = 0.3  # below this cosine a neighbour shares only common n-grams


@dataclass
class CodedReference:
    """Real coded mentions (the `--reference` file, e.g. CodiEsp train) as evidence for the fit check.

    A mention clinicians wrote, word for word after normalisation, is judged by the codes they gave it
    before any model is asked (`attested`). A mention they did not write is scored against the nearest
    ones they did (`standings`, character n-gram TF-IDF per language), and that evidence joins the fitted
    models' features. Per language, since "ca" in Catalan is not "ca" in Spanish."""

    by_text: dict[tuple[str, str], Attestation]
    path: str = ""
    # built on first use, per language, and never pickled: the n-gram indexes and the word sets
    _indexes: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    _words: dict[str, frozenset[str]] = field(default_factory=dict, repr=False, compare=False)

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

    def words(self, language: str) -> frozenset[str]:
        """Every word clinicians wrote in this language (casefolded, accents removed): real usage, which the
        spelling and language checks take as known words of the language."""
        if language not in self._words:
            self._words[language] = frozenset(w for norm, lang in self.by_text if lang == language for w in words(norm))
        return self._words[language]

    def __getstate__(self) -> dict[str, Any]:  # the n-gram indexes are rebuilt where needed (Ray workers)
        return {"by_text": self.by_text, "path": self.path, "_indexes": {}, "_words": {}}

    def _index(self, language: str) -> Any:
        if language not in self._indexes:
            from clinassay.audit.lexical import char_ngram_vectorizer

            keys = [key for key in self.by_text if key[1] == language]
            if not keys:
                self._indexes[language] = None
            else:
                vectorizer = char_ngram_vectorizer(min_df=1)
                matrix = vectorizer.fit_transform([norm for norm, _ in keys])
                self._indexes[language] = (vectorizer, matrix.T.tocsr(), [self.by_text[k] for k in keys],
                                        [norm for norm, _ in keys])
        return self._indexes[language]

    def standings(self, norms: Sequence[str], codes: Sequence[str], languages: Sequence[str],
                  ) -> list[ReferenceStanding | None]:
        """The near-match evidence for each (mention, claimed code); None for a mention the reference
        attests word for word (the attestation decides it) or in a language the reference lacks."""
        out: list[ReferenceStanding | None] = [None] * len(norms)
        todo: dict[str, list[int]] = defaultdict(list)
        for i, (norm, language) in enumerate(zip(norms, languages)):
            if (norm, language) not in self.by_text:
                todo[language].append(i)
        for language, rows in todo.items():
            index = self._index(language)
            if index is None:
                continue
            vectorizer, matrix, attestations, texts = index
            sims = (vectorizer.transform([norms[i] for i in rows]) @ matrix).toarray()
            for row, i in zip(sims, rows):
                top = _nearest(row, NEAR_K)
                out[i] = self._standing(codes[i], [(float(row[j]), texts[j], attestations[j]) for j in top
                                                   if row[j] >= MIN_NEAR])
        return out

    @staticmethod
    def _standing(code: str, near: list[tuple[float, str, Attestation]]) -> ReferenceStanding:
        own_cat = other = own_code = sibling = 0.0
        nearest = nearest_code = ""
        for sim, text, att in near:
            total = att.total
            in_cat = att.in_category(code[:3]) / total
            fits = att.times(code) / total
            own_cat, own_code = max(own_cat, sim * in_cat), max(own_code, sim * fits)
            sibling = max(sibling, sim * (in_cat - fits))
            if sim * (1.0 - in_cat) > other:
                other = sim * (1.0 - in_cat)
                nearest, nearest_code = text, next(c for c, _ in att.codes if c[:3] != code[:3])
        return ReferenceStanding(similarity=near[0][0] if near else 0.0, own_category=round(own_cat, 6),
                                 other_category=round(other, 6), own_code=round(own_code, 6),
                                 sibling=round(max(0.0, sibling), 6), nearest=nearest, nearest_code=nearest_code)


def _nearest(similarities: np.ndarray, k: int) -> np.ndarray:
    """The indexes of the k highest similarities, best first (ties by index): a partition, not a sort of
    the whole row, since a reference holds thousands of texts and only k are wanted."""
    k = min(k, len(similarities))
    if k == 0:
        return np.empty(0, dtype=np.int64)
    top = np.argpartition(-similarities, k - 1)[:k]
    return top[np.lexsort((top, -similarities[top]))]

