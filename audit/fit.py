"""The global half of the `consistency` check: does the mention fit its code against the whole
classification, not only against its neighbours?

A wrong code whose neighbours are as unrelated as the code itself slips past any local comparison
("infarto agudo de miocardio" -> J18.9). So every mention is scored against every category of
ICD-10-CM — lexically (audit/lexical.py, every code's texts) and, with an encoder, by cosine against each
category's best text (English title, inclusion terms, labels in the other languages) — and, inside the
claimed category, against each member code. The standing of the claimed code is then gaps and ranks:

- category: best category anywhere against the claimed category (another category, same or other
  chapter, fits better);
- member: best member of the claimed category against the claimed code (a sibling fits better).

With an encoder, the mention vector first goes through the query adapter fitted for it
(audit/query_adapter.py: one map for the categories, one for the members), which takes the correct
category of a CodiEsp dev mention from median rank 21 to rank 0.

audit/fit_model.py turns them into probabilities with models fitted on real clinician mentions
(bench/fit_operating_points.py); thresholds are never guessed. A mention that is an official term of its code (title,
inclusion term, a label in any language) always fits: an official term is never told to fit elsewhere.
Category and member vectors go through the encoder's "passage" cache, so they are computed once per
encoder (1,918 categories, 7,467 texts: about a minute with me5-small on 2 cores). Adding the 10,096
subcategories' 39k texts raised the other-chapter catch on CodiEsp train from 0.66 to 0.70 at the same
false-reject rate and cost 12 minutes of encoding: not worth it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Sequence

import numpy as np

from clinassay.audit.lexical import LexicalIndex, LexicalStanding, best_in_group, cached, hierarchy_ids, node_texts
from clinassay.audit.text import normalize_text
from clinassay.terminology.protocol import TerminologyLike

if TYPE_CHECKING:
    from clinassay.audit.query_adapter import QueryAdapter
    from clinassay.audit.references import ReferenceStanding

MIN_LEXICAL_NAME = 0.3  # a lexical best below this is too weak to name as "the code that fits"


class Verifier(Protocol):
    """A learned (mention, code text) scorer, built by the caller (retrieval/verifier.py's cross-encoder)
    and injected like the encoder: the audit itself never loads a model. One logit per pair, higher when
    the mention reads as the code."""

    name: str

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray: ...


@dataclass(frozen=True)
class VerifierStanding:
    """The verifier's logits for the claimed code and for the best alternatives the standing found: the
    category that fits best when it is not the claimed one, the best member when it is not the code."""

    own: float
    category: float | None = None  # the best other category's text
    member: float | None = None  # the best sibling's text

    def features(self) -> dict[str, float]:
        return {"ver_own": self.own,
                "ver_category_gap": 0.0 if self.category is None else self.category - self.own,
                "ver_member_gap": 0.0 if self.member is None else self.member - self.own}


@dataclass(frozen=True)
class FitScore:
    """Where a mention stands against the classification: dense (when an encoder is given) and lexical."""

    lexical: LexicalStanding
    official: bool  # the mention is an official term of the claimed code
    official_elsewhere: tuple[str, ...] = ()  # codes in other categories whose official term the mention is
    official_sibling: tuple[str, ...] = ()  # codes of the same category, not the code's ancestors, ditto
    official_ancestor: str | None = None  # an ancestor of the code whose official term the mention is
    own_category: float | None = None  # dense cosine to the claimed code's category (its best text)
    best_category: str | None = None
    best_category_score: float | None = None
    category_rank: int | None = None  # categories scoring above the claimed one
    top_categories: tuple[tuple[str, float], ...] = ()  # dense, best first
    own_code: float | None = None  # dense cosine to the claimed code; None for header codes
    best_member: str | None = None  # best member node of the claimed category
    best_member_score: float | None = None
    own_block_best: float | None = None  # dense: the best category of the claimed code's block
    own_chapter_best: float | None = None  # dense: ... and of its chapter
    verified: "VerifierStanding | None" = None  # the learned verifier's logits, when it was asked
    reference: "ReferenceStanding | None" = None  # how the nearest coded reference mentions were coded

    @property
    def dense(self) -> bool:
        return self.own_category is not None

    def lexical_only(self) -> "FitScore":
        """The same standing without the encoder's evidence (and the verifier's): what a lexical-only fit sees."""
        return FitScore(lexical=self.lexical, official=self.official, official_elsewhere=self.official_elsewhere,
                        official_sibling=self.official_sibling, official_ancestor=self.official_ancestor,
                        reference=self.reference)

    @property
    def better_category(self) -> str:
        """The category named as fitting better: the lexical best when it is a real match, else the dense one."""
        if self.lexical.best_category_score >= MIN_LEXICAL_NAME or not self.dense:
            return self.lexical.best_category
        return self.best_category or self.lexical.best_category

    @property
    def category_gap(self) -> float:
        return max(0.0, (self.best_category_score or 0.0) - (self.own_category or 0.0))

    @property
    def member_gap(self) -> float:
        if self.own_code is None or self.best_member_score is None:
            return 0.0
        return max(0.0, self.best_member_score - self.own_code)

    def features(self, names: Sequence[str]) -> np.ndarray:
        lex = self.lexical
        values = {
            "dense_gap": self.category_gap,
            "dense_log_rank": float(np.log1p(self.category_rank or 0)),
            "dense_own": self.own_category or 0.0,
            "lex_gap": max(0.0, lex.best_category_score - lex.own_category),
            "lex_log_rank": float(np.log1p(lex.category_rank)),
            "lex_own": lex.own_category,
            "dense_member_gap": self.member_gap,
            "lex_member_gap": max(0.0, lex.best_member_score - lex.own_code),
            # hierarchy: how far the claimed code's block / chapter is from the best category anywhere
            "dense_block_gap": max(0.0, (self.best_category_score or 0.0) - (self.own_block_best or 0.0)),
            "dense_chapter_gap": max(0.0, (self.best_category_score or 0.0) - (self.own_chapter_best or 0.0)),
            "lex_block_gap": max(0.0, lex.best_category_score - lex.own_block_best),
            "lex_chapter_gap": max(0.0, lex.best_category_score - lex.own_chapter_best),
            # the claimed code itself, not its category's best text: a broad category (Z87 Personal history of
            # other diseases) resembles many mentions that none of its codes does
            "lex_own_code": lex.own_code,
            "dense_own_code": self.own_code if self.own_code is not None else (self.own_category or 0.0),
        }
        if self.verified is not None:
            values.update(self.verified.features())
        if self.reference is not None:
            values.update(self.reference.features())
        return np.asarray([values[n] for n in names], dtype=np.float64)


def verifier_text(terminology: TerminologyLike, code: str, language: str) -> str:
    """A code as the learned verifier reads it (retrieval/verifier.py trains on the same form): its label
    in `language` when it has one, then the English title."""
    entry = terminology.find(code)
    if entry is None:
        return code
    label = terminology.label(entry.code, language) if language != "en" else None
    if label is not None and label.text and label.text.casefold() != entry.title.casefold():
        return f"{label.text} ({entry.title})"
    return entry.title


def member_node(terminology: TerminologyLike, code: str) -> str:
    """Codes formed with a 7th character (S72.001A) stand for their 6-character node: the encounter
    letter does not change what the mention says, and it multiplies the members by up to 16."""
    entry = terminology.find(code)
    if entry is not None and len(code.replace(".", "")) == 7 and entry.parent:
        return entry.parent
    return code


_OWNERS: dict[str, dict[str, tuple[str, ...]]] = {}
# words of official terms that do not narrow the concept, in the six languages (normalised)
UNTELLING_WORDS = frozenset("""unspecified specified other elsewhere classified without with site type
especificada especificado especificadas especificados otra otro otras otros parte sitio tipo clasificadas
especificat altres altra altre altro altri specificata specificato specificate specificati altrove
classificate outra outro outras outros classificadas precision precisee autre autres ailleurs classees
sans avec""".split())


def _official_terms(terminology: TerminologyLike, code: str) -> frozenset[str]:
    entry = terminology.find(code)
    terms = {entry.title, *entry.inclusion_terms}
    for label in terminology.labels(code).values():
        if label.precision == "exact":
            terms.add(label.text)
    return frozenset(normalize_text(t) for t in terms if t)


def _term_owners(terminology: TerminologyLike) -> dict[str, tuple[str, ...]]:
    owners: dict[str, list[str]] = {}
    for code in terminology.codes():
        if terminology.find(code).kind in ("category", "code"):
            for term in _official_terms(terminology, code):
                owners.setdefault(term, []).append(code)
    return {t: tuple(c) for t, c in owners.items()}


class OfficialTerms:
    """Normalised official terms of a code (title, inclusion terms, exact labels in every language), and
    the reverse: which codes a term is official for (built once per terminology content)."""

    def __init__(self, terminology: TerminologyLike) -> None:
        self.terminology = terminology
        self._cache: dict[str, frozenset[str]] = {}
        self._words: dict[str, frozenset[str]] = {}
        self._fewest: dict[str, int] = {}

    def of(self, code: str) -> frozenset[str]:
        if code not in self._cache:
            self._cache[code] = _official_terms(self.terminology, code)
        return self._cache[code]

    def words_of(self, code: str) -> frozenset[str]:
        """Every word of the code's official terms (parentheses dropped: ICD-10-CM writes nonessential
        modifiers in them, 'Pseudomonas (aeruginosa) (mallei) ...')."""
        if code not in self._words:
            self._words[code] = frozenset(w for term in self.of(code) for w in term.split())
        return self._words[code]

    def fewest_words(self, code: str) -> int:
        """How few telling words the code's shortest official term has ('Pneumonia, unspecified organism'
        -> 2: 'unspecified' and the like say nothing): a one-word mention of a code that needs three says
        less than the code does."""
        if code not in self._fewest:
            self._fewest[code] = min((len([w for w in term.split() if len(w) >= 4 and w not in UNTELLING_WORDS])
                                      for term in self.of(code)), default=0)
        return self._fewest[code]

    def owners(self, norm: str) -> tuple[str, ...]:
        """The codes (categories and codes) whose official term `norm` is."""
        return cached(_OWNERS, self.terminology, _term_owners, name="official-terms-v1").get(norm, ())


class _Grouped:
    """Vectors of several texts per owner, owners contiguous; scores an owner by its best text."""

    def __init__(self, owners: list[str], counts: list[int], vectors: np.ndarray) -> None:
        self.owners = owners
        self.blocks: np.ndarray | None = None  # per owner, set for the categories (hierarchy_ids)
        self.chapters: np.ndarray | None = None
        self.starts = np.cumsum([0] + counts[:-1]).astype(np.int64)
        self.vectors = vectors
        self.position = {owner: i for i, owner in enumerate(owners)}

    def scores(self, queries: np.ndarray) -> np.ndarray:
        """(n queries, n owners) best cosine per owner."""
        sims = queries @ self.vectors.T
        return np.maximum.reduceat(sims, self.starts, axis=1)


def _encode_groups(groups: list[tuple[list[str], list[list[str]]]], encoder: Any, batch_size: int) -> list[_Grouped]:
    """Several (owners, texts per owner) groups encoded in one call: the disk cache is asked once."""
    flat = [t for _, texts in groups for group in texts for t in group]
    vectors = np.asarray(encoder.encode(flat, kind="passage", batch_size=batch_size), dtype=np.float32)
    out, offset = [], 0
    for owners, texts in groups:
        counts = [len(g) for g in texts]
        out.append(_Grouped(owners, counts, vectors[offset:offset + sum(counts)]))
        offset += sum(counts)
    return out


class CorpusFit:
    """Scores mentions against the whole classification; built lazily, stateless besides its caches."""

    def __init__(self, terminology: TerminologyLike, encoder: Any = None, *, languages: Sequence[str],
                 batch_size: int = 256, top: int = 5, max_members: int = 400, verifier: Verifier | None = None,
                 adapter: "QueryAdapter | None" = None) -> None:
        self.terminology = terminology
        self.encoder = encoder
        # maps mention vectors before they meet the categories and the members (audit/query_adapter.py)
        self.adapter = adapter
        # an encoder may carry the verifier (the CLI's disk-cached encoder does with [audit.fit] verifier = true)
        self.verifier = verifier if verifier is not None else getattr(encoder, "verifier", None)
        self.languages = list(languages)
        self.batch_size = batch_size
        self.top = top
        self.max_members = max_members
        self.official = OfficialTerms(terminology)
        self._categories: _Grouped | None = None
        self._members: dict[tuple[str, str], _Grouped | None] = {}
        self._billable_by_category: dict[str, list[str]] | None = None

    @property
    def lexical(self) -> LexicalIndex:
        return LexicalIndex.for_terminology(self.terminology)

    @property
    def categories(self) -> _Grouped:
        if self._categories is None:
            term = self.terminology
            cats = [c for c in term.codes() if term.find(c).kind == "category"]
            texts = [node_texts(term, c, languages=self.languages) for c in cats]
            self._categories = _encode_groups([(cats, texts)], self.encoder, self.batch_size)[0]
            self._categories.blocks, self._categories.chapters = hierarchy_ids(term, cats)
        return self._categories

    def prepare_members(self, keys: Sequence[tuple[str, str]]) -> None:
        """Build the member groups of these (category, language) keys that are not built yet, in one
        encode call."""
        if self._billable_by_category is None:
            by_cat: dict[str, list[str]] = {}
            for code in self.terminology.billable_codes():
                by_cat.setdefault(code[:3], []).append(code)
            self._billable_by_category = by_cat
        todo: list[tuple[tuple[str, str], list[str], list[list[str]]]] = []
        for key in dict.fromkeys(keys):
            if key in self._members:
                continue
            category, language = key
            nodes = list(dict.fromkeys(member_node(self.terminology, c)
                                       for c in self._billable_by_category.get(category, [])))
            if len(nodes) < 2 or len(nodes) > self.max_members:
                self._members[key] = None
                continue
            langs = ["en"] if language == "en" else ["en", language]
            todo.append((key, nodes, [node_texts(self.terminology, n, languages=langs, any_precision=True)
                                      for n in nodes]))
        if todo:
            built = _encode_groups([(nodes, texts) for _, nodes, texts in todo], self.encoder, self.batch_size)
            for (key, _, _), group in zip(todo, built):
                self._members[key] = group

    def members_of(self, category: str, language: str) -> _Grouped | None:
        """The member nodes of a category with their texts (the claimed language's and English), or None
        when it has fewer than two or more than `max_members`."""
        self.prepare_members([(category, language)])
        return self._members[(category, language)]

    def score(self, rows: Sequence[tuple[np.ndarray | None, str, str, str]]) -> list[FitScore]:
        """For (mention vector or None, normalised mention, code, language) rows, the standing of each code.
        Rows without a vector (or a CorpusFit without an encoder) get the lexical standing only."""
        if not rows:
            return []
        lexical = self.lexical.standing([r[1] for r in rows], [r[2] for r in rows])
        dense_rows = [i for i, r in enumerate(rows) if r[0] is not None and self.encoder is not None]
        dense: dict[int, dict] = {}
        if dense_rows:
            self.prepare_members([(rows[i][2][:3], rows[i][3]) for i in dense_rows])
            cats = self.categories
            queries = np.stack([rows[i][0] for i in dense_rows]).astype(np.float32)
            # the members are scored with the member map's vectors (the raw ones without an adapter)
            member_queries = queries if self.adapter is None else self.adapter.apply(queries, "member")
            if self.adapter is not None:
                queries = self.adapter.apply(queries)
            for start in range(0, len(dense_rows), 512):
                block = dense_rows[start:start + 512]
                scores = cats.scores(queries[start:start + 512])
                for k, (i, row_scores) in enumerate(zip(block, scores), start=start):
                    _, _, code, lang = rows[i]
                    dense[i] = self._dense_standing(member_queries[k], code, lang, row_scores)
        out = []
        for i, (_, norm, code, _) in enumerate(rows):
            entry = self.terminology.find(code)
            official = entry is not None and norm in self.official.of(entry.code)
            owners = () if official or entry is None else self.official.owners(norm)
            # a term of another category whose every word the code's own terms also write ('Pseudomonas
            # aeruginosa' for B96.5 Pseudomonas (aeruginosa) ...) is left to the model, not rejected outright
            elsewhere = tuple(c for c in owners if c[:3] != entry.code[:3]) \
                if owners and not set(norm.split()) <= self.official.words_of(entry.code) else ()
            # a term of the code's own ancestor ("asma" for J45.51) is a less specific mention, not a wrong one
            sibling = tuple(c for c in owners if c[:3] == entry.code[:3] and not entry.code.startswith(c))
            ancestor = next((c for c in owners if c != entry.code and entry.code.startswith(c)), None)
            out.append(FitScore(lexical=lexical[i], official=official, official_elsewhere=elsewhere,
                                official_sibling=sibling, official_ancestor=ancestor, **dense.get(i, {})))
        return out

    def _dense_standing(self, member_vec: np.ndarray, code: str, lang: str, row_scores: np.ndarray) -> dict:
        cats = self.categories
        own_index = cats.position.get(code[:3])
        own_cat = float(row_scores[own_index]) if own_index is not None else float(row_scores.min())
        order = np.argsort(-row_scores)[: self.top]
        best = int(order[0])
        out: dict = {"own_category": own_cat, "best_category": cats.owners[best],
                     "best_category_score": float(row_scores[best]), "category_rank": int((row_scores > own_cat).sum()),
                     "top_categories": tuple((cats.owners[int(i)], round(float(row_scores[int(i)]), 4)) for i in order),
                     "own_block_best": best_in_group(row_scores, cats.blocks, own_index),
                     "own_chapter_best": best_in_group(row_scores, cats.chapters, own_index)}
        entry = self.terminology.find(code)
        members = self.members_of(code[:3], lang) if entry is not None and entry.billable else None
        if members is not None:
            node = member_node(self.terminology, code)
            if node in members.position:
                member_scores = members.scores(member_vec[None, :])[0]
                top_member = int(np.argmax(member_scores))
                out.update(own_code=float(member_scores[members.position[node]]),
                           best_member=members.owners[top_member], best_member_score=float(member_scores[top_member]))
        return out

    def verify(self, rows: Sequence[tuple[str, str, str, FitScore]]) -> list[VerifierStanding]:
        """The verifier's logits for (mention, code, language, standing) rows, in one call: the claimed
        code's node, the better category when it is another one, the best member when it is another node."""
        term = self.terminology
        pairs: list[tuple[str, str]] = []
        slots: list[tuple[int, int | None, int | None]] = []
        for mention, code, language, score in rows:
            node = member_node(term, code)
            own = len(pairs)
            pairs.append((mention, verifier_text(term, node, language)))
            category = member = None
            better = score.better_category
            if better and better != code[:3]:
                category = len(pairs)
                pairs.append((mention, verifier_text(term, better, language)))
            best = score.best_member or score.lexical.best_member
            if best and best != node and not code.startswith(best) and term.find(best) is not None:
                member = len(pairs)
                pairs.append((mention, verifier_text(term, member_node(term, best), language)))
            slots.append((own, category, member))
        logits = np.asarray(self.verifier.score(pairs), dtype=np.float64) if pairs else np.zeros(0)
        return [VerifierStanding(own=float(logits[o]), category=None if c is None else float(logits[c]),
                                 member=None if m is None else float(logits[m])) for o, c, m in slots]
