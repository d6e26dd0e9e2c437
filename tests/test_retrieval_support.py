"""Shared fakes for the retrieval tests (no tests here): a 16-code terminology with the
`Terminology` interface, and a deterministic character-trigram encoder with the `Encoder` interface,
so most retrieval tests run in milliseconds without torch."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data" / "retrieval"


@dataclass(frozen=True)
class FakeLabel:
    text: str
    language: str
    precision: str = "exact"
    source: str = "who"
    matched_code: str = ""


@dataclass(frozen=True)
class FakeCode:
    code: str
    title: str
    chapter: str
    parent: str
    kind: str = "code"
    billable: bool = True
    children: tuple = ()
    inclusion_terms: tuple = ()
    excludes1: tuple = ()
    excludes2: tuple = ()


@dataclass
class FakeTerminology:
    path: Path = DATA / "terminology.json"
    _codes: dict = field(default_factory=dict)
    _labels: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        raw = json.loads(self.path.read_text(encoding="utf-8"))
        for code, entry in raw.items():
            self._codes[code] = FakeCode(code=code, title=entry["title"], chapter=entry["chapter"], parent=entry["parent"])
            self._labels[code] = {lang: FakeLabel(text, lang, matched_code=code) for lang, text in entry["labels"].items()}

    def _key(self, code: str) -> str:
        from clinassay.terminology import normalize_code

        return normalize_code(code)

    def find(self, code: str):
        return self._codes.get(self._key(code))

    def get(self, code: str):
        from clinassay.terminology.codes import UnknownCodeError

        found = self.find(code)
        if found is None:
            raise UnknownCodeError(f"unknown code {code}")
        return found

    def __contains__(self, code: str) -> bool:
        return self.find(code) is not None

    def label(self, code: str, language: str):
        code = self._key(code)
        if language == "en":
            return FakeLabel(self._codes[code].title, "en", source="icd10cm", matched_code=code)
        return self._labels.get(code, {}).get(language)

    def labels(self, code: str) -> dict:
        code = self._key(code)
        return {"en": self.label(code, "en"), **self._labels.get(code, {})}

    def siblings(self, code: str) -> list[str]:
        code = self._key(code)
        parent = self._codes[code].parent
        return [c for c, node in self._codes.items() if node.parent == parent and c != code]

    def billable_codes(self) -> list[str]:
        return list(self._codes)

    def chapter_of(self, code: str) -> str:
        return self._codes[self._key(code)].chapter


class FakeEncoder:
    """Hashed character trigrams, L2-normalised: similar strings get similar vectors."""

    def __init__(self, dimension: int = 256) -> None:
        self.name = "fake-trigram"
        self.dimension = dimension
        self.fingerprint = f"fake-trigram-{dimension}"

    def encode(self, texts, *, kind: str = "query", batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            padded = f"  {text.casefold()}  "
            for i in range(len(padded) - 2):
                bucket = int(hashlib.md5(padded[i : i + 3].encode()).hexdigest()[:8], 16) % self.dimension
                out[row, bucket] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)


def evaluation(stages: dict, distinct: dict | None = None):
    """An `Evaluation` (what `evaluate` returns, metrics.json without its hashes) from stage figures as
    `ranking_metrics` computes them, with the coverage they imply; `distinct` None: an older file."""
    from clinassay.retrieval.metrics_file import Evaluation

    items = stages["biencoder"]["overall"]["n"]
    data = {"stages": stages, "coverage": {"items": items, "gold_not_in_corpus": 0}}
    if distinct is not None:
        data["distinct"] = {"items": distinct["biencoder"]["overall"]["n"], "stages": distinct}
        data["coverage"]["distinct_items"] = data["distinct"]["items"]
    return Evaluation.model_validate(data)
