"""consistency: is the mention about this code? Rules (negation, laterality, sex, excludes1, title copy)
in the six languages, the fit of the mention against the whole classification (audit/fit.py), and an
optional LLM jury."""

from __future__ import annotations

from collections import Counter
from typing import Any

from clinassay.audit import clinical_rules as rules
from clinassay.audit.checks.base import Check
from clinassay.audit.findings import Finding
from clinassay.audit.items import Chunk
from clinassay.audit.jury import Question, Verdict, ask_jury
from clinassay.audit.fit import OfficialTerms
from clinassay.audit.fit_model import load_fit_models
from clinassay.audit.misfit import MisfitJudge
from clinassay.audit.semantic import candidate_codes
from clinassay.audit.state import empty_like, merge_value, plain


class ConsistencyCheck(Check):
    name = "consistency"
    uses_embeddings = True
    summary_meaning = "share of checked pairs whose mention does not fit its code (rules, fit against the classification, or jury)"
    merged = ("jury_votes", "jury_agreement_sum", "jury_pairs")
    judge_counters = ("checked", "official", "levels", "unverified", "doubtful", "attested", "near_scored", "histogram")  # MisfitJudge's, for info()

    def __init__(self, config, resources) -> None:
        super().__init__(config, resources)
        self._judge: MisfitJudge | None = None
        self._sibling_terms: rules.SiblingTerms | None = None
        self.jury_votes: Counter = Counter()
        self.jury_agreement_sum = 0.0
        self.jury_pairs = 0

    @property
    def judge(self) -> MisfitJudge:
        if self._judge is None:
            self._judge = MisfitJudge(self.resources.terminology, self.resources.fit, self.config,
                                      load_fit_models(), encoder_name=getattr(self.resources.encoder, "name", None),
                                      reference=self.resources.reference)
        return self._judge

    def check_chunk(self, chunk: Chunk) -> list[list[Finding]]:
        out: list[list[Finding]] = [[] for _ in chunk.items]
        fit_rows: list[int] = []
        for i, item in enumerate(chunk.items):
            if item.entry is None or not item.norm or item.language not in self.config.languages:
                continue
            out[i].extend(self._rules(item))
            if self.config.fit.enabled and self.resources.fit is not None and not item.rejected:
                fit_rows.append(i)
        if fit_rows:
            items = [chunk.items[i] for i in fit_rows]
            vectors = [chunk.embeddings[i] if chunk.has_vector(i) else None for i in fit_rows]
            for i, findings in zip(fit_rows, self.judge.judge(items, vectors)):
                out[i].extend(findings)
        if self.config.jury.enabled and self.config.jury.models:
            asked = [i for i, item in enumerate(chunk.items)
                     if item.entry is not None and item.language in self.config.languages
                     and not any(f.severity == "fail" for f in item.findings + out[i])]
            questions = [Question(chunk.items[i].mention, chunk.items[i].code, chunk.items[i].entry.title,
                                  chunk.items[i].language) for i in asked]
            for i, verdicts in zip(asked, ask_jury(questions, self.config.jury.models)):
                finding = self._jury(chunk.items[i], verdicts)
                if finding is not None:
                    out[i].append(finding)
        return out

    @property
    def sibling_terms(self) -> rules.SiblingTerms:
        if self._sibling_terms is None:
            term, limit = self.resources.terminology, self.config.consistency.max_candidates
            cache: dict[str, list[str]] = {}

            def candidates(code: str) -> list[str]:
                if code not in cache:
                    cache[code] = candidate_codes(term, code, limit=limit)
                return cache[code]

            self._sibling_terms = rules.SiblingTerms(term, candidates)
        return self._sibling_terms

    @property
    def official(self) -> OfficialTerms:
        return self.resources.official_terms

    def _rules(self, item) -> list[Finding]:
        cfg = self.config.consistency
        term = self.resources.terminology
        hits: list[tuple[rules.RuleHit | None, str]] = []
        if cfg.title_copy:
            hits.append((rules.title_copy(item.norm, item.entry, item.language, terminology=term),
                         cfg.title_copy_severity))
        if item.norm in self.official.of(item.entry.code):
            # an official term of the code (title, inclusion term, a label in any language) is the code by
            # definition: a rule that reads it as negated ('... no disponible') or excluded is wrong
            return self._findings(hits)
        if cfg.sibling_terms:
            hits.append((self.sibling_terms.check(item.norm, item.entry, item.language), cfg.sibling_terms_severity))
        if cfg.negation:
            hits.append((rules.negation(item.norm, item.entry, item.language), cfg.negation_severity))
        if cfg.laterality:
            hits.append((rules.laterality(item.norm, item.entry, item.language, terminology=term), cfg.laterality_severity))
        if cfg.sex:
            hits.append((rules.sex(item.norm, item.entry, item.language, terminology=term), cfg.sex_severity))
        if cfg.excludes1:
            hits.append((rules.excludes1(item.norm, item.entry, item.language,
                                         min_similarity=cfg.excludes1_min_similarity), cfg.excludes1_severity))
        return self._findings(hits)

    def _findings(self, hits: list[tuple[rules.RuleHit | None, str]]) -> list[Finding]:
        return [Finding(self.name, reason, score, detail, severity, neighbour)
                for hit, severity in hits if hit is not None
                for reason, score, detail, neighbour in [hit]]

    def _jury(self, item, verdicts: list[Verdict]) -> Finding | None:
        jury = self.config.jury
        votes = [v.fits for v in verdicts if v.fits is not None]
        for v in verdicts:
            self.jury_votes[f"{v.model}:{'abstain' if v.fits is None else ('fits' if v.fits else 'misfit')}"] += 1
        if not votes:
            return None
        share = sum(votes) / len(votes)
        self.jury_pairs += 1
        self.jury_agreement_sum += max(share, 1 - share)
        if share >= jury.min_agreement:
            return None
        detail = f"{len(votes) - sum(votes)} of {len(votes)} LLM judges say the mention is not {item.code}"
        return Finding(self.name, "jury", 1.0 - share, detail, jury.severity,
                       {"verdicts": [{"model": v.model, "fits": v.fits} for v in verdicts]})

    def take_state(self) -> dict[str, Any]:
        state = {**super().take_state(), "judge": None}
        if self._judge is not None:
            state["judge"] = {name: plain(getattr(self._judge, name)) for name in self.judge_counters}
            for name in self.judge_counters:
                setattr(self._judge, name, empty_like(getattr(self._judge, name)))
        return state

    def merge_state(self, state: dict[str, Any]) -> None:
        super().merge_state(state)
        if state["judge"] is not None:  # the judge is built (cheaply: no model loads) to hold the counts
            judge = self.judge
            for name in self.judge_counters:
                setattr(judge, name, merge_value(getattr(judge, name), state["judge"][name]))

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {}
        if self._judge is not None:
            info["fit"] = self._judge.info()
        if self.jury_pairs:
            info["jury"] = {"pairs": self.jury_pairs, "mean_agreement": self.jury_agreement_sum / self.jury_pairs,
                            "votes": dict(self.jury_votes)}
        return info
