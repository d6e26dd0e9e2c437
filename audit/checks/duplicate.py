"""duplicate: the same mention twice teaches nothing and inflates the counts. Exact duplicates after
normalisation (case, accents, punctuation, whitespace), and near duplicates: two mentions of the same
code whose embeddings are almost the same direction (cosine >= `near_cosine`, e.g. 0.97 means they
differ by little more than a word order or a typo). The first one seen is kept, the later ones are
rejected with a pointer to it. Per code, the diversity of its kept mentions is measured.

The near-duplicate index is partitioned by code (a faiss inner-product index per code), so the search
grows linearly with the number of pairs (float16 vectors). Pairs rejected by earlier checks are indexed
too: a copy of a rejected pair is still a copy, and the pointer says the first one was not kept."""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

import numpy as np

from clinassay.audit.checks.base import Check
from clinassay.audit.findings import Finding
from clinassay.audit.items import Chunk


class _CodeIndex:
    """The kept mentions of one code: a faiss index (inner product on L2-normalised vectors)."""

    def __init__(self, dimension: int) -> None:
        import faiss

        self.index = faiss.IndexScalarQuantizer(dimension, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
        self.pointers: list[tuple[str, str, bool]] = []
        self.vector_sum = np.zeros(dimension, dtype=np.float64)

    def nearest(self, vector: np.ndarray) -> tuple[float, int]:
        if not self.pointers:
            return -1.0, -1
        sims, ids = self.index.search(vector[None, :], 1)
        return float(sims[0, 0]), int(ids[0, 0])

    def add(self, vector: np.ndarray, pointer: tuple[str, str, bool]) -> None:
        self.index.add(vector[None, :])
        self.pointers.append(pointer)
        self.vector_sum += vector


class DuplicateCheck(Check):
    name = "duplicate"
    uses_embeddings = True  # exact duplicates need none; near duplicates use them when present
    summary_meaning = "share of checked pairs that repeat an earlier kept pair (exactly or nearly)"
    merged = ("_distinct_per_code", "search_seconds")

    def __init__(self, config, resources) -> None:
        super().__init__(config, resources)
        self._exact: dict[bytes, tuple[str, str, bool]] = {}
        self._near: dict[str, _CodeIndex] = {}
        self._distinct_per_code: Counter = Counter()
        self._kept_per_code: Counter = Counter()
        self.search_seconds = 0.0
        # code -> (kept mentions with a vector, diversity) of codes whose partition is finished (audit/state.py)
        self._finished: dict[str, tuple[int, float]] = {}

    def check_chunk(self, chunk: Chunk) -> list[list[Finding]]:
        import faiss

        # one-vector searches on tiny indexes: OpenMP threads only add overhead (ms instead of µs per
        # search on a busy machine), so run single-threaded here and restore the setting afterwards
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            return self._check_chunk(chunk)
        finally:
            faiss.omp_set_num_threads(threads)

    def _check_chunk(self, chunk: Chunk) -> list[list[Finding]]:
        import time

        cfg = self.config.duplicate
        out: list[list[Finding]] = [[] for _ in chunk.items]
        use_near = cfg.near and chunk.embeddings is not None
        for i, item in enumerate(chunk.items):
            if item.code is None or not item.norm:
                continue  # only pairs with a known code take part
            pointer = (item.record.get("id") or f"line:{item.line}", item.mention, not item.rejected)
            key = hashlib.blake2b(f"{item.code}\x1f{item.norm}".encode(), digest_size=12).digest()
            if cfg.exact and key in self._exact:
                kept_id, kept_mention, kept = self._exact[key]
                out[i].append(Finding(self.name, "exact_duplicate", 1.0,
                                      f"same text as pair {kept_id} ('{kept_mention}') for {item.code}, "
                                      + ("kept instead" if kept else "itself rejected for another reason"),
                                      cfg.severity, {"id": kept_id, "mention": kept_mention, "kept": kept}))
                continue
            if use_near and chunk.has_vector(i):
                vector = np.ascontiguousarray(chunk.embeddings[i], dtype=np.float32)
                index = self._near.get(item.code)
                if index is None:
                    index = self._near[item.code] = _CodeIndex(vector.shape[0])
                started = time.perf_counter()
                sim, j = index.nearest(vector)
                self.search_seconds += time.perf_counter() - started
                if sim >= cfg.near_cosine:
                    kept_id, kept_mention, kept = index.pointers[j]
                    out[i].append(Finding(
                        self.name, "near_duplicate", float(min(1.0, max(0.0, sim))),
                        f"nearly the same as pair {kept_id} ('{kept_mention}'), cosine {sim:.3f} >= {cfg.near_cosine}: "
                        f"same meaning and almost the same words, "
                        + ("kept instead" if kept else "itself rejected for another reason"), cfg.severity,
                        {"id": kept_id, "mention": kept_mention, "kept": kept}))
                    continue
                index.add(vector, pointer)
            self._exact[key] = pointer
            self._distinct_per_code[item.code] += 1
        return out

    def _per_code(self) -> dict[str, tuple[int, float]]:
        """Per code with >= 2 kept mentions: (mentions, 1 - mean pairwise cosine of them; 0 = all the same)."""
        out = dict(self._finished)
        for code, index in self._near.items():
            n = len(index.pointers)
            if n >= 2:
                s = index.vector_sum
                mean_pair = (float(s @ s) - n) / (n * (n - 1))
                out[code] = (n, max(0.0, 1.0 - mean_pair))
        return out

    def diversity(self) -> dict[str, float]:
        """Per code with >= 2 kept mentions: 1 - mean pairwise cosine of its mentions (0 = all the same)."""
        return {code: d for code, (_, d) in self._per_code().items()}

    def take_state(self) -> dict[str, Any]:
        """The partition's codes are finished: their diversity is final, their indexes are dropped."""
        state = {**super().take_state(), "finished": self._per_code()}
        self._finished, self._near, self._exact = {}, {}, {}
        return state

    def merge_state(self, state: dict[str, Any]) -> None:
        super().merge_state(state)
        overlap = self._finished.keys() & state["finished"].keys() or self._near.keys() & state["finished"].keys()
        if overlap:
            raise ValueError(f"code {sorted(overlap)[0]} was audited in two partitions: duplicates across them "
                             "were not compared (partition the pairs by code)")
        self._finished.update(state["finished"])

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"codes": len(self._distinct_per_code), "near_cosine": self.config.duplicate.near_cosine,
                                "near_search_seconds": round(self.search_seconds, 3)}
        per_code = sorted(self._per_code().items())  # by code: the figures do not depend on the order pairs came in
        if per_code:
            values = np.fromiter((d for _, (_, d) in per_code), dtype=float)
            info["diversity_mean"] = round(float(values.mean()), 4)
            lowest = sorted(per_code, key=lambda kv: kv[1][1])[:10]
            info["least_diverse_codes"] = [{"code": c, "diversity": round(d, 4), "mentions": n}
                                           for c, (n, d) in lowest]
        return info
