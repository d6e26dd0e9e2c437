"""Dataset-level bookkeeping while the pairs stream by: the language x generator matrix, chapter
coverage, generator provenance and cost, and a bounded random sample of mentions per language (with
their float16 embeddings) for drift and fingerprinting. Nothing here grows with the input beyond
small counters and that fixed-size sample."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clinassay.audit.items import Item


@dataclass
class Cell:
    pairs: int = 0
    accepted: int = 0
    rejected: int = 0
    warned: int = 0
    reasons: Counter = field(default_factory=Counter)
    language_mismatch: int = 0
    duplicates: int = 0
    leaks: int = 0
    cost_usd: float = 0.0


@dataclass
class GeneratorInfo:
    litellm_model: set = field(default_factory=set)
    prompt_ids: set = field(default_factory=set)
    prompt_hashes: set = field(default_factory=set)
    pairs: int = 0
    accepted: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class Sample:
    mention: str
    generator: str
    accepted: bool
    embedding: np.ndarray | None


class Reservoir:
    """Uniform random sample of fixed size over a stream (Vitter's algorithm R), seeded."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size, self.seen, self.items = size, 0, []
        self._rng = random.Random(seed)

    def add(self, item: Any) -> None:
        self.seen += 1
        if len(self.items) < self.size:
            self.items.append(item)
        else:
            j = self._rng.randrange(self.seen)
            if j < self.size:
                self.items[j] = item


class DatasetTally:
    def __init__(self, terminology: Any, *, sample_size: int) -> None:
        self.terminology = terminology
        self.cells: dict[tuple[str, str], Cell] = defaultdict(Cell)
        self.coverage: dict[str, dict[str, Counter]] = defaultdict(lambda: {"planned": Counter(), "accepted": Counter()})
        self.generators: dict[str, GeneratorInfo] = defaultdict(GeneratorInfo)
        self.generator_chapters: dict[str, dict[str, Counter]] = defaultdict(lambda: {"planned": Counter(), "accepted": Counter()})
        self.samples: dict[str, Reservoir] = {}
        self.sample_size = sample_size
        self._chapter_cache: dict[str, str | None] = {}

    def chapter(self, code: str | None) -> str | None:
        if code is None:
            return None
        if code not in self._chapter_cache:
            try:
                self._chapter_cache[code] = self.terminology.chapter_of(code)
            except Exception:  # noqa: BLE001 - a chapter lookup must never stop the audit
                self._chapter_cache[code] = None
        return self._chapter_cache[code]

    def add(self, item: Item, embedding: np.ndarray | None) -> None:
        accepted = not item.rejected
        cell = self.cells[(item.language, item.generator)]
        cell.pairs += 1
        cell.accepted += accepted
        cell.rejected += not accepted
        cell.warned += accepted and bool(item.findings)
        for check in {f.check for f in item.findings if f.severity == "fail"}:
            cell.reasons[check] += 1
        cell.language_mismatch += any(f.check == "language" and f.reason == "wrong_language" for f in item.findings)
        cell.duplicates += any(f.check == "duplicate" for f in item.findings)
        cell.leaks += any(f.check == "leakage" for f in item.findings)
        cost = item.record.get("cost_usd")
        cost = float(cost) if isinstance(cost, (int, float)) else 0.0
        cell.cost_usd += cost

        chapter = self.chapter(item.code)
        if chapter is not None:
            self.coverage[chapter]["planned"][item.language] += 1
            self.generator_chapters[item.generator]["planned"][chapter] += 1
            if accepted:
                self.coverage[chapter]["accepted"][item.language] += 1
                self.generator_chapters[item.generator]["accepted"][chapter] += 1

        g = self.generators[item.generator]
        rec = item.record
        for attr, key in (("litellm_model", "litellm_model"), ("prompt_ids", "prompt_id"), ("prompt_hashes", "prompt_hash")):
            if isinstance(rec.get(key), str) and len(getattr(g, attr)) < 50:
                getattr(g, attr).add(rec[key])
        g.pairs += 1
        g.accepted += accepted
        for key in ("input_tokens", "output_tokens"):
            if isinstance(rec.get(key), int):
                setattr(g, key, getattr(g, key) + rec[key])
        g.cost_usd += cost

        if item.norm:
            reservoir = self.samples.get(item.language)
            if reservoir is None:
                reservoir = self.samples[item.language] = Reservoir(self.sample_size, seed=len(self.samples))
            vec = embedding.astype(np.float16) if embedding is not None else None
            reservoir.add(Sample(item.mention, item.generator, accepted, vec))

    # ---- views for summary.json ----
    def matrix(self) -> list[dict[str, Any]]:
        rows = []
        for (lang, gen), c in sorted(self.cells.items()):
            rows.append({
                "language": lang, "generator": gen, "pairs": c.pairs, "accepted": c.accepted, "rejected": c.rejected,
                "warned": c.warned, "reject_rate": round(c.rejected / c.pairs, 6) if c.pairs else 0.0,
                "reasons": dict(c.reasons), "language_mismatch": c.language_mismatch, "duplicates": c.duplicates,
                "leaks": c.leaks, "cost_usd": round(c.cost_usd, 6),
                "cost_per_accepted": round(c.cost_usd / c.accepted, 6) if c.accepted else None,
            })
        return rows

    def chapter_rows(self) -> list[dict[str, Any]]:
        titles = {}
        try:
            titles = {c.code: c.title for c in self.terminology.chapters()}
        except Exception:  # noqa: BLE001 - titles are decoration
            pass
        return [{"chapter": ch, "title": titles.get(ch, ""), "planned": dict(v["planned"]), "accepted": dict(v["accepted"])}
                for ch, v in sorted(self.coverage.items(), key=lambda kv: _chapter_key(kv[0]))]

    def generator_coverage(self) -> dict[str, Any]:
        """Per generator: how many of the chapters it was asked for ended up with an accepted pair."""
        out = {}
        for gen, v in sorted(self.generator_chapters.items()):
            planned, accepted = set(v["planned"]), {c for c, n in v["accepted"].items() if n}
            out[gen] = {"chapters_planned": len(planned), "chapters_accepted": len(accepted & planned),
                        "share": round(len(accepted & planned) / len(planned), 4) if planned else 0.0,
                        "missing": sorted(planned - accepted, key=_chapter_key)}
        return out

    def provenance_generators(self) -> list[dict[str, Any]]:
        return [{"name": name, "litellm_model": sorted(g.litellm_model)[0] if len(g.litellm_model) == 1 else sorted(g.litellm_model),
                 "prompt_ids": sorted(g.prompt_ids), "prompt_hashes": sorted(g.prompt_hashes), "pairs": g.pairs,
                 "accepted": g.accepted, "input_tokens": g.input_tokens, "output_tokens": g.output_tokens,
                 "cost_usd": round(g.cost_usd, 6),
                 "cost_per_accepted": round(g.cost_usd / g.accepted, 6) if g.accepted else None}
                for name, g in sorted(self.generators.items())]


def _chapter_key(chapter: str) -> tuple[int, str]:
    return (int(chapter), "") if str(chapter).isdigit() else (10**6, str(chapter))
