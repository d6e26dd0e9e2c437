"""Dataset-level bookkeeping while the pairs stream by: the language x generator matrix, chapter
coverage, generator provenance and cost, and a bounded random sample of mentions per language (with
their float16 embeddings) for drift and fingerprinting. Nothing here grows with the input beyond
small counters and that fixed-size sample.

Tallies of disjoint parts of the input merge exactly into the tally of the whole (`take_state` /
`merge_state`, used by the distributed audit): counters add, the generators' capped sets keep the
values first seen by input line, and the sample is keyed by input line."""

from __future__ import annotations

import copy
import hashlib
import heapq
from collections import Counter, defaultdict
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from clinassay.audit.items import Item
from clinassay.audit.state import merge_value, plain
from clinassay.terminology.protocol import TerminologyLike

MAX_PROVENANCE_VALUES = 50  # distinct LiteLLM models / prompt ids / prompt hashes kept per generator


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
    """Uniform random sample of fixed size over a stream: the `size` items whose seeded hash of their key
    (the input line) is smallest (bottom-k sampling). The sample does not depend on the order items come
    in, so samples of disjoint parts of a stream merge exactly into the sample of the whole (`merge`);
    `items` lists it by key."""

    def __init__(self, size: int, seed: int | str = 0) -> None:
        self.size, self.seen, self.seed = size, 0, seed
        # (-priority, key, arrival, item): the largest priority on top; `arrival` breaks the tie of a key seen
        # twice (one auditor fed two streams that both start at line 1), so items are never compared
        self._heap: list[tuple[int, int, int, Any]] = []

    def _priority(self, key: int) -> int:
        digest = hashlib.blake2b(f"{self.seed}\x1f{key}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "little")

    def add(self, item: Any, *, key: int) -> None:
        self.seen += 1
        self._push((-self._priority(key), key, self.seen, item))

    def _push(self, entry: tuple[int, int, int, Any]) -> None:
        if len(self._heap) < self.size:
            heapq.heappush(self._heap, entry)
        elif entry[0] > self._heap[0][0]:  # a smaller priority than the largest kept
            heapq.heapreplace(self._heap, entry)

    @property
    def items(self) -> list[Any]:
        return [entry[3] for entry in sorted(self._heap, key=lambda e: (e[1], e[2]))]

    def merge(self, other: "Reservoir") -> None:
        if (other.size, other.seed) != (self.size, self.seed):
            raise ValueError("only samples of the same size and seed merge")
        offset = self.seen
        self.seen += other.seen
        for priority, key, arrival, item in other._heap:
            self._push((priority, key, offset + arrival, item))


class DatasetTally:
    def __init__(self, terminology: TerminologyLike, *, sample_size: int) -> None:
        self.terminology = terminology
        self.cells: dict[tuple[str, str], Cell] = defaultdict(Cell)
        self.coverage: dict[str, dict[str, Counter]] = defaultdict(lambda: {"planned": Counter(), "accepted": Counter()})
        self.generators: dict[str, GeneratorInfo] = defaultdict(GeneratorInfo)
        self.generator_chapters: dict[str, dict[str, Counter]] = defaultdict(lambda: {"planned": Counter(), "accepted": Counter()})
        self.samples: dict[str, Reservoir] = {}
        self.sample_size = sample_size
        self._chapter_cache: dict[str, str | None] = {}
        # (generator, attribute, value) -> input line where a capped provenance value was first kept
        self._first_kept: dict[tuple[str, str, str], int] = {}

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
            if isinstance(rec.get(key), str) and len(getattr(g, attr)) < MAX_PROVENANCE_VALUES:
                getattr(g, attr).add(rec[key])
                self._first_kept.setdefault((item.generator, attr, rec[key]), item.line)
        g.pairs += 1
        g.accepted += accepted
        for key in ("input_tokens", "output_tokens"):
            if isinstance(rec.get(key), int):
                setattr(g, key, getattr(g, key) + rec[key])
        g.cost_usd += cost

        if item.norm:
            reservoir = self.samples.get(item.language)
            if reservoir is None:
                reservoir = self.samples[item.language] = Reservoir(self.sample_size, seed=item.language)
            vec = embedding.astype(np.float16) if embedding is not None else None
            reservoir.add(Sample(item.mention, item.generator, accepted, vec), key=item.line)

    # ---- state across partitions (audit/state.py) ----
    def take_state(self) -> dict[str, Any]:
        """Everything counted since the last take, as plain data; the tally starts again empty."""
        state = {"cells": dict(self.cells), "coverage": plain(self.coverage), "generators": dict(self.generators),
                 "generator_chapters": plain(self.generator_chapters), "samples": self.samples,
                 "first_kept": self._first_kept}
        self.cells = defaultdict(Cell)
        self.coverage = defaultdict(lambda: {"planned": Counter(), "accepted": Counter()})
        self.generators = defaultdict(GeneratorInfo)
        self.generator_chapters = defaultdict(lambda: {"planned": Counter(), "accepted": Counter()})
        self.samples, self._first_kept = {}, {}
        return state

    def merge_state(self, state: dict[str, Any]) -> None:
        """Add the tally of other pairs (a state from `take_state`)."""
        for key, cell in state["cells"].items():
            _merge_fields(self.cells[key], cell)
        for name in ("coverage", "generator_chapters"):
            target = getattr(self, name)
            for key, counts in state[name].items():
                merge_value(target[key], counts)
        for key, line in state["first_kept"].items():
            if line < self._first_kept.get(key, line + 1):
                self._first_kept[key] = line
        for name, info in state["generators"].items():
            target = self.generators[name]
            _merge_fields(target, info, sets=False)
            for attr in ("litellm_model", "prompt_ids", "prompt_hashes"):
                # the values a single stream keeps: the first MAX_PROVENANCE_VALUES distinct ones by line
                values = getattr(target, attr) | getattr(info, attr)
                first = sorted(values, key=lambda v: (self._first_kept.get((name, attr, v), 0), v))
                setattr(target, attr, set(first[:MAX_PROVENANCE_VALUES]))
        for language, sample in state["samples"].items():
            if language in self.samples:
                self.samples[language].merge(sample)
            else:
                self.samples[language] = copy.deepcopy(sample)

    # ---- views for summary.json ----
    def matrix(self) -> list[dict[str, Any]]:
        rows = []
        for (lang, gen), c in sorted(self.cells.items()):
            rows.append({
                "language": lang, "generator": gen, "pairs": c.pairs, "accepted": c.accepted, "rejected": c.rejected,
                "warned": c.warned, "reject_rate": round(c.rejected / c.pairs, 6) if c.pairs else 0.0,
                # most frequent first, ties by name: the order does not depend on the order pairs came in
                "reasons": dict(sorted(c.reasons.items(), key=lambda kv: (-kv[1], kv[0]))), "language_mismatch": c.language_mismatch, "duplicates": c.duplicates,
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


def _merge_fields(target: Any, other: Any, *, sets: bool = True) -> None:
    """Add the counters of one dataclass instance (a Cell, a GeneratorInfo) into another."""
    for f in fields(target):
        value = getattr(target, f.name)
        if isinstance(value, set) and not sets:
            continue
        setattr(target, f.name, merge_value(value, getattr(other, f.name)))


def _chapter_key(chapter: str) -> tuple[int, str]:
    return (int(chapter), "") if str(chapter).isdigit() else (10**6, str(chapter))
