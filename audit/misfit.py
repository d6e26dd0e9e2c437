"""Turns a mention's standing against the classification (audit/fit.py) into findings in plain words.

The fitted models (audit/fit_model.py) give two probabilities — another category fits better, a sibling
fits better — and the operating point named in `[audit.fit]` gives their thresholds. A finding says how
far the better code is in the hierarchy (another chapter, the same chapter, a sibling in the category),
names it, and is milder the closer it is. An official term of the code never gets one. A manifestation
code paired with the condition its "Code first" note cites (F02.80 with "enfermedad de Alzheimer", G30)
is a coding convention: warned `code_first`, naming the code to pair, never rejected.

A mention the reference attests (clinicians wrote it, word for word after normalisation, in the
`--reference` file) is judged by the codes they gave it instead: the claimed code, a code it refines or
that refines it, fits; a sibling or another category is a finding that cites the reference. The models
still score it, for the histogram. Any other mention, with a reference, is decided by the reference
variant of the models, whose features add how its nearest reference mentions were coded.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import replace
from typing import Any, Sequence, get_args

import numpy as np

from clinassay.audit.findings import Finding
from clinassay.audit.fit import CorpusFit, FitScore
from clinassay.audit.fit_model import FitModels, FitVariant, OperatingPoint, reference_key
from clinassay.terminology.notes import cites, code_first_citations
from clinassay.terminology.protocol import TerminologyLike

BRIEF_CODE_WORDS = 3
"""A one-word mention is warned less specific when the code's shortest official term has this many
telling words."""

HISTOGRAM_BINS = 10
POINTS = get_args(OperatingPoint)  # from the fewest rejections to the most
LEVEL_SCORE = {"other_chapter": (0.6, 0.4), "same_chapter": (0.5, 0.4), "sibling": (0.3, 0.4)}


class MisfitJudge:
    def __init__(self, terminology: TerminologyLike, fit: CorpusFit, config: Any, models: FitModels, *,
                 encoder_name: str | None, reference: Any = None) -> None:
        self.terminology = terminology
        self.reference = reference  # audit.references.CodedReference, or None
        self.fit = fit
        self.config = config.fit
        self.dense_name, self.dense = models.variant(encoder_name)
        self.lexical_name, self.lexical = models.variant(None)
        # a dense variant fitted on adapted vectors decides only with the same adapter, and vice versa
        adapter = getattr(getattr(fit, "adapter", None), "digest", None)
        self.adapter_mismatch = self.dense_name != self.lexical_name and self.dense.query_adapter != adapter
        if self.adapter_mismatch:
            self.dense_name, self.dense = self.lexical_name, self.lexical
        # the learned verifier, when one is injected, wanted and fitted for this encoder
        self.verified_name: str | None = None
        self.verified: FitVariant | None = None
        verifier = getattr(fit, "verifier", None)
        self.verifier_wanted = bool(getattr(self.config, "verifier", False)) and verifier is not None
        if self.verifier_wanted:
            name, variant = models.variant(encoder_name, verifier.name)
            if variant.verifier is not None:
                self.verified_name, self.verified = name, variant
        # the reference variants (near-match features), when a reference is given and they were fitted
        self.referenced: dict[str, FitVariant] = {}
        if reference is not None:
            for name in {self.dense_name, self.lexical_name}:
                if reference_key(name) in models.variants:
                    self.referenced[name] = models.variants[reference_key(name)]
        self._citations: dict[str, tuple[tuple[str, str], ...]] = {}
        self.near_scored = 0
        self.verifier_asked = 0
        self.verifier_seconds = 0.0
        self.checked = 0
        self.official = 0
        self.levels: dict[str, int] = defaultdict(int)
        self.unverified = 0
        self.doubtful = 0  # warned doubtful_fit: the stricter `warn_from` point would reject them
        self.attested: dict[str, int] = defaultdict(int)  # "fits" / "sibling" / "category": reference verdicts
        # generator -> language -> counts of the misfit probability (max of both models) in 10 bins
        self.histogram: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0] * HISTOGRAM_BINS))

    def judge(self, items: Sequence[Any], vectors: Sequence[np.ndarray | None]) -> list[list[Finding]]:
        rows = [(vec if self.dense_name != self.lexical_name else None, item.norm, item.code, item.language)
                for item, vec in zip(items, vectors)]
        scores = self.fit.score(rows)
        if self.referenced:
            standings = self.reference.standings([i.norm for i in items], [i.code for i in items],
                                                 [i.language for i in items])
            scores = [s if st is None else replace(s, reference=st) for s, st in zip(scores, standings)]
        if self.verified is not None:
            scores = self._verify(items, scores)
        return [self._findings(item, score) for item, score in zip(items, scores)]

    def _gated(self, score: FitScore) -> bool:
        """Whether the verifier variant asks its verifier about this pair (its base finds it suspicious)."""
        gate = self.verified.verifier
        base = self.dense
        return (score.dense and not score.official and not score.official_elsewhere
                and (base.category.probability(score) >= gate.category or base.member.probability(score) >= gate.member))

    def _verify(self, items: Sequence[Any], scores: list[FitScore]) -> list[FitScore]:
        asked = [i for i, score in enumerate(scores) if self._gated(score)]
        if not asked:
            return scores
        started = time.perf_counter()
        standings = self.fit.verify([(items[i].mention, items[i].code, items[i].language, scores[i]) for i in asked])
        self.verifier_seconds += time.perf_counter() - started
        self.verifier_asked += len(asked)
        out = list(scores)
        for i, standing in zip(asked, standings):
            out[i] = replace(scores[i], verified=standing)
        return out

    def _variant(self, score: FitScore) -> FitVariant:
        """The fitted models that decide this pair without a verifier: dense or lexical, with the reference's
        features when it has them."""
        variant = self.dense if score.dense else self.lexical
        if score.reference is not None:
            variant = self.referenced.get(self.dense_name if score.dense else self.lexical_name, variant)
        return variant

    def _probabilities(self, score: FitScore) -> tuple[float, float, float, Any]:
        """(category, member, shown misfit probability, operating point) under the variant that decides."""
        if self.verified is not None and score.dense:
            point = self.verified.operating_points[self.config.operating_point]
            if score.verified is None:  # below the gate: passes; the histogram shows its base probability
                shown = max(self.dense.category.probability(score), self.dense.member.probability(score))
                return 0.0, 0.0, shown, point
            p_category, p_member = self.verified.category.probability(score), self.verified.member.probability(score)
            return p_category, p_member, max(p_category, p_member), point
        variant = self._variant(score)
        point = variant.operating_points[self.config.operating_point]
        p_category, p_member = variant.category.probability(score), variant.member.probability(score)
        return p_category, p_member, max(p_category, p_member), point

    def _findings(self, item: Any, score: FitScore) -> list[Finding]:
        self.checked += 1
        if score.official:
            self.official += 1
            self.histogram[item.generator][item.language][0] += 1
            return []
        p_category, p_member, misfit, point = self._probabilities(score)
        self.histogram[item.generator][item.language][min(HISTOGRAM_BINS - 1, int(misfit * HISTOGRAM_BINS))] += 1
        attestation = self.reference.attested(item.norm, item.language) if self.reference is not None else None
        self.near_scored += score.reference is not None
        findings: list[Finding] = []
        if attestation is not None:
            findings = self._attested(item, attestation)
        elif score.official_elsewhere and (underlying := self._code_first(item.code, score.official_elsewhere)):
            # a manifestation code paired with the condition its "Code first" note names: a convention, warned
            findings.append(self._code_first_finding(item, underlying))
        elif score.official_elsewhere:
            # the mention is word for word an official term of a code in another category: no model needed
            findings.append(self._official_elsewhere_finding(item, score))
        elif p_category >= point.category:
            findings.append(self._category_finding(item, score, p_category))
        elif score.official_sibling:
            findings.append(self._member_finding(item, score, 1.0, better=score.official_sibling[0]))
        elif score.official_ancestor:
            findings.append(self._less_specific(item, score.official_ancestor, official=True))
        elif p_member >= point.member and (score.best_member or score.lexical.best_member) not in (None, item.code):
            findings.append(self._member_finding(item, score, p_member))
        # a mention no code text resembles ("HTA") is warned as unverifiable: what a stricter point would say
        # of it rests on no evidence, so it is not named as a doubtful fit
        unverifiable = attestation is None and self.config.unverified and self._unverifiable(score)
        if not findings and attestation is None and not score.official and not unverifiable:
            findings += self._doubtful(item, score, p_category, p_member)
        if not findings and unverifiable:
            self.unverified += 1
            findings.append(Finding(
                "consistency", "unverified", 0.3,
                f"no code text resembles '{item.mention}' (an abbreviation or a rare term?): its fit to {item.code} "
                "could not be checked", "warn"))
        if not findings and attestation is None and self._brief(item):
            findings.append(self._brief_finding(item))
        for f in findings:
            self.levels[f.reason] += 1
        return findings

    def _brief(self, item: Any) -> bool:
        """One word ('duodenal', 'cirrosis'), not an acronym, for a code whose every official term needs three
        or more ('Acute duodenal ulcer without hemorrhage or perforation'): the mention says far less
        than the code. A weak LLM's typical pair; clinicians' 'hematuria' -> R31.9 is not one."""
        written = item.mention.strip()
        if not written.isalpha() or written.isupper():  # an acronym ('ITU', 'VIH') stands for several words
            return False
        return self.fit.official.fewest_words(item.code) >= BRIEF_CODE_WORDS

    def _brief_finding(self, item: Any) -> Finding:
        detail = (f"'{item.mention}' is one word for {item.code} {item.entry.title}: the mention does not say "
                  f"what makes it {item.code}")
        return self._less_specific_finding(item.code[:3], detail, distance="brief")

    def _doubtful(self, item: Any, score: FitScore, p_category: float, p_member: float) -> list[Finding]:
        """A pair the stricter `warn_from` operating point would reject: warned, with what that point's
        finding would say, so reviewers see it and the gate does not fail on it."""
        warn_from = self.config.warn_from
        if warn_from is None or POINTS.index(warn_from) <= POINTS.index(self.config.operating_point):
            return []
        point = (self.verified if self.verified is not None and score.dense else self._variant(score)).operating_points.get(warn_from)
        if point is None:  # a fit_model.json fitted before this point existed
            return []
        if p_category >= point.category:
            finding = self._category_finding(item, score, p_category)
        elif p_member >= point.member and (score.best_member or score.lexical.best_member) not in (None, item.code):
            finding = self._member_finding(item, score, p_member)
        else:
            return []
        if finding.reason == "less_specific":  # what the stricter point says too: a warning already
            return [finding]
        self.doubtful += 1
        return [replace(finding, reason="doubtful_fit", severity="warn", score=min(finding.score, 0.5),
                        detail=f"{warn_from} would reject it ({finding.reason.replace('_', ' ')}): {finding.detail}")]

    def _attested(self, item: Any, attestation: Any) -> list[Finding]:
        """Clinicians coded this mention before: their codes decide."""
        if attestation.times(item.code):
            self.attested["fits"] += 1
            return []
        category = item.code[:3]
        if attestation.in_category(category):
            better = next(c for c, _ in attestation.codes if c[:3] == category)
            entry = self.terminology.find(better)
            level, where = "sibling", f"a sibling in category {category}"
        else:
            better = attestation.codes[0][0]
            entry = self.terminology.find(better)
            same = entry is not None and entry.chapter == item.entry.chapter
            level = "same_chapter" if same else "other_chapter"
            where = f"same chapter {item.entry.chapter}" if same else (f"chapter {entry.chapter}" if entry else "elsewhere")
        self.attested["sibling" if level == "sibling" else "category"] += 1
        times, total = attestation.times(better), attestation.total
        detail = (f"clinicians coded '{item.mention}' as {self._describe(better)} ({where}; {times} of {total} "
                  f"in the reference), never as {item.code} {item.entry.title} (chapter {item.entry.chapter})")
        base, span = LEVEL_SCORE[level]
        return [Finding("consistency", level, min(1.0, base + span * times / total), detail,
                        getattr(self.config, f"{level}_severity"),
                        {"code": better, "title": entry.title if entry else better, "distance": level,
                         "also": [c for c, _ in attestation.codes if c != better][:2],
                         "evidence": "reference", "times": times, "of": total})]

    def _unverifiable(self, score: FitScore) -> bool:
        return score.lexical.best_category_score < self.config.unverified_below

    def _describe(self, code: str) -> str:
        entry = self.terminology.find(code)
        return f"{code} {entry.title}" if entry is not None else code

    def _category_finding(self, item: Any, score: FitScore, probability: float) -> Finding:
        better = score.better_category
        own_chapter = item.entry.chapter
        better_entry = self.terminology.find(better)
        level = "other_chapter" if better_entry is None or better_entry.chapter != own_chapter else "same_chapter"
        where = (f"chapter {better_entry.chapter}" if level == "other_chapter" else f"same chapter {own_chapter}") \
            if better_entry is not None else "elsewhere"
        detail = (f"fits {self._describe(better)} ({where}) better; {item.code} is {item.entry.title} "
                  f"(chapter {own_chapter}); misfit probability {probability:.2f}")
        near = score.reference
        if near is not None and near.nearest and near.other_category > near.own_category:
            detail += f"; clinicians coded the similar '{near.nearest}' as {self._describe(near.nearest_code)}"
        base, span = LEVEL_SCORE[level]
        candidates = [c for c, _ in score.top_categories if c != better][:2]
        return Finding("consistency", level, min(1.0, base + span * probability), detail,
                       getattr(self.config, f"{level}_severity"),
                       {"code": better, "title": better_entry.title if better_entry else better,
                        "distance": level, "also": candidates, "probability": round(probability, 4)})

    def _code_first(self, code: str, elsewhere: Sequence[str]) -> str | None:
        """The first of `elsewhere` that the code's "Code first" notes cite (F02.80 cites G30), if any."""
        if code not in self._citations:
            self._citations[code] = code_first_citations(self.terminology, code)
        return next((c for c in elsewhere if cites(self._citations[code], c)), None)

    def _code_first_finding(self, item: Any, underlying: str) -> Finding:
        detail = (f"'{item.mention}' is an official term of {self._describe(underlying)}, which the notes of "
                  f"{item.code} {item.entry.title} say to code first: a pair for {underlying} is expected beside this one")
        return Finding("consistency", "code_first", 0.2, detail, "warn",
                       {"code": underlying, "title": self.terminology.find(underlying).title, "distance": "code_first"})

    def _official_elsewhere_finding(self, item: Any, score: FitScore) -> Finding:
        better = score.official_elsewhere[0]
        better_entry = self.terminology.find(better)
        level = "other_chapter" if better_entry.chapter != item.entry.chapter else "same_chapter"
        where = f"chapter {better_entry.chapter}" if level == "other_chapter" else f"same chapter {item.entry.chapter}"
        detail = (f"'{item.mention}' is an official term of {self._describe(better)} ({where}); {item.code} is "
                  f"{item.entry.title} (chapter {item.entry.chapter})")
        return Finding("consistency", level, 1.0 if level == "other_chapter" else 0.9, detail,
                       getattr(self.config, f"{level}_severity"),
                       {"code": better, "title": better_entry.title, "distance": level,
                        "also": list(score.official_elsewhere[1:3]), "official_term": True})

    def _less_specific(self, item: Any, ancestor: str, *, official: bool) -> Finding:
        """A parent concept coded to one of its children: milder than a wrong code (the child may be right,
        the mention just does not say what makes it the child)."""
        how = "is an official term of" if official else "fits"
        detail = (f"'{item.mention}' {how} {self._describe(ancestor)}, which {item.code} refines: the mention does "
                  f"not say what makes it {item.code} {item.entry.title}")
        return self._less_specific_finding(ancestor, detail, distance="ancestor")

    def _less_specific_finding(self, broader: str, detail: str, *, distance: str) -> Finding:
        """The one shape of a less_specific warning: the broader code the mention does say, and how far."""
        entry = self.terminology.find(broader)
        return Finding("consistency", "less_specific", 0.2, detail, self.config.less_specific_severity,
                       {"code": broader, "title": entry.title if entry else broader, "distance": distance})

    def _member_finding(self, item: Any, score: FitScore, probability: float, *, better: str | None = None) -> Finding:
        official = better is not None
        better = better or score.best_member or score.lexical.best_member
        if item.code.startswith(better):
            return self._less_specific(item, better, official=False)
        entry = self.terminology.find(better)
        detail = (f"fits {self._describe(better)} better than {item.code} {item.entry.title} (sibling in category "
                  f"{item.code[:3]}); " + ("the mention is its official term" if official
                                           else f"misfit probability {probability:.2f}"))
        base, span = LEVEL_SCORE["sibling"]
        return Finding("consistency", "sibling", min(1.0, base + span * probability), detail,
                       self.config.sibling_severity,
                       {"code": better, "title": entry.title if entry else better, "distance": "sibling",
                        "probability": round(probability, 4)})

    def info(self) -> dict[str, Any]:
        return {"checked": self.checked, "official_terms": self.official, "operating_point": self.config.operating_point,
                "query_adapter": getattr(getattr(self.fit, "adapter", None), "digest", None),
                "adapter_mismatch": self.adapter_mismatch,
                "variant": {"dense": self.dense_name, "lexical": self.lexical_name, "verified": self.verified_name,
                            "referenced": sorted(reference_key(n) for n in self.referenced)},
                "verifier": {"wanted": self.verifier_wanted, "used": self.verified_name is not None,
                             "asked": self.verifier_asked, "seconds": round(self.verifier_seconds, 3)},
                "findings": dict(self.levels), "unverified": self.unverified,
                "doubtful_fit": {"warn_from": self.config.warn_from, "warned": self.doubtful},
                "reference": {"path": getattr(self.reference, "path", None), "verdicts": dict(self.attested),
                              "near_scored": self.near_scored}
                if self.reference is not None else None,
                "bins": [round(i / HISTOGRAM_BINS, 2) for i in range(HISTOGRAM_BINS + 1)],
                "histogram": {g: dict(langs) for g, langs in self.histogram.items()}}
