"""leakage: a training pair whose mention equals, nearly equals, or translates an evaluation mention
makes the evaluation a memory test. Such a pair is always rejected (leakage has no warn severity), with
a pointer to the evaluation item.

- equal: same text after normalisation, whatever the code;
- near-equal: character similarity >= `near_ratio` with an evaluation mention of the same code;
- translation / paraphrase: multilingual embedding cosine >= `translation_cosine` with an evaluation
  mention of the same code (catches "urinary tract infection" leaking "infección urinaria")."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from rapidfuzz import fuzz

from clinassay.audit.checks.base import Check
from clinassay.audit.findings import Finding
from clinassay.audit.items import Chunk


class LeakageCheck(Check):
    name = "leakage"
    uses_embeddings = True
    summary_meaning = "share of checked pairs that leak an evaluation item (they are all rejected)"
    merged = ("leaked_eval_items",)

    def __init__(self, config, resources) -> None:
        super().__init__(config, resources)
        self.leaked_eval_items: Counter = Counter()

    def check_chunk(self, chunk: Chunk) -> list[list[Finding]]:
        evals = self.resources.eval_set
        out: list[list[Finding]] = [[] for _ in chunk.items]
        if evals is None:
            return out
        cfg = self.config.leakage
        if chunk.embeddings is not None:
            evals.embed(self.resources.encoder, batch_size=self.config.encode_batch_size)
        for i, item in enumerate(chunk.items):
            if not item.norm:
                continue
            j = evals.by_norm.get(item.norm)
            if j is not None:
                out[i].append(self._leak(j, "equal", 1.0, "has the same text as"))
                continue
            same_code = evals.by_code.get(item.code or item.raw_code, [])
            if not same_code:
                continue
            ratios = [(fuzz.ratio(item.norm, evals.norms[j]) / 100.0, j) for j in same_code]
            ratio, j = max(ratios)
            if ratio >= cfg.near_ratio:
                out[i].append(self._leak(j, "near_equal", ratio, f"is nearly the same text ({ratio:.2f}) as"))
                continue
            if chunk.has_vector(i) and evals.embeddings is not None:
                sims = evals.embeddings[same_code] @ chunk.embeddings[i]
                crossing = np.array([evals.items[j].language != item.language for j in same_code])
                thresholds = np.where(crossing, cfg.translation_cosine, cfg.paraphrase_cosine)
                k = int(np.argmax(sims - thresholds))
                sim, j = float(sims[k]), same_code[k]
                if sim >= thresholds[k]:
                    crosses = bool(crossing[k])
                    reason = "translation" if crosses else "paraphrase"
                    how = (f"translates ({sim:.2f} cosine, {item.language} vs {evals.items[j].language})" if crosses
                           else f"paraphrases ({sim:.2f} cosine)")
                    out[i].append(self._leak(j, reason, min(1.0, sim), how))
        return out

    def _leak(self, j: int, reason: str, score: float, how: str) -> Finding:
        e = self.resources.eval_set.items[j]
        self.leaked_eval_items[j] += 1
        return Finding(self.name, reason, float(score),
                       f"the mention {how} evaluation item at line {e.line} ('{e.mention}', {e.code})", "fail",
                       {"eval_mention": e.mention, "eval_code": e.code, "eval_line": e.line,
                        "eval_language": e.language})

    def info(self) -> dict[str, Any]:
        evals = self.resources.eval_set
        if evals is None:
            return {"eval_set": None}
        return {"eval_set": evals.path, "eval_items": len(evals.items),
                "eval_items_leaked": len(self.leaked_eval_items)}
