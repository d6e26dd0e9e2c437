"""The lexical signal of the fit check: character n-gram TF-IDF over every code's official texts.

Dense zero-shot encoders match short clinical mentions poorly across the whole classification (me5-small
puts a correct CodiEsp code's category at median rank 29 of 1,918); character n-grams over the WHO
labels find "infarto agudo de miocardio" in "Infarto agudo del miocardio" without any model, across
es/fr/pt/it/en, and with misspellings. Built in seconds from the terminology, kept once per process.
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from clinassay.audit.text import normalize_text
from clinassay.terminology.languages import LABELLED_LANGUAGES
from clinassay.terminology.protocol import TerminologyLike

MAX_INCLUSION_TERMS = 6
INDEX_FORMAT = "v5"  # bump when the index's texts or parameters change, so pickled ones are rebuilt
LABEL_LANGUAGES = LABELLED_LANGUAGES
_INDEXES: dict[str, "LexicalIndex"] = {}


def content_key(terminology: TerminologyLike) -> str:
    """What a terminology's texts depend on: its parsed sources and its imported tables. Two instances
    loaded from the same files (a reloaded config, another cache folder) share their indexes."""
    digest = terminology.source_digest or f"object-{id(terminology)}"  # test doubles: see cached()
    imports = [(t.source, t.imported_at, sum(len(v) for v in t.labels.values())) for t in terminology.imports]
    return f"{digest}|{imports}"


def node_texts(terminology: TerminologyLike, code: str, *, languages: Sequence[str] = LABEL_LANGUAGES,
               any_precision: bool = False) -> list[str]:
    """A node's official texts: English title, first inclusion terms, its labels in `languages`
    (exact ones only unless `any_precision`: a subcategory's label also names its codes)."""
    entry = terminology.find(code)
    texts = [entry.title, *entry.inclusion_terms[:MAX_INCLUSION_TERMS]]
    for lang in languages:
        if lang == "en":
            continue
        label = terminology.label(code, lang)
        if label is not None and label.text and (any_precision or label.precision == "exact"):
            texts.append(label.text)
    return list(dict.fromkeys(t for t in texts if t))


def hierarchy_ids(terminology: TerminologyLike, categories: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The block and the chapter of each category, as small integers. A right code's block and chapter
    usually hold one of the categories a mention scores best against, even when the code itself ranks
    low; a code from another block or chapter rarely does: the fit check compares the two."""
    blocks: dict[str, int] = {}
    chapters: dict[str, int] = {}
    block_ids, chapter_ids = [], []
    for category in categories:
        entry = terminology.find(category)
        block = (entry.parent or category) if entry is not None else category
        chapter = str(entry.chapter) if entry is not None else category
        block_ids.append(blocks.setdefault(block, len(blocks)))
        chapter_ids.append(chapters.setdefault(chapter, len(chapters)))
    return np.asarray(block_ids, dtype=np.int64), np.asarray(chapter_ids, dtype=np.int64)


def best_in_group(scores: np.ndarray, groups: np.ndarray, own: int | None) -> float:
    """The best score among the categories of group `own` (0 when the code has no category here)."""
    if own is None:
        return 0.0
    return float(scores[groups == groups[own]].max())


def char_ngram_vectorizer(*, min_df: int = 1, max_df: float = 1.0) -> Any:
    """The one text representation of the lexical signals (code texts here, reference mentions in
    audit/references.py): TF-IDF of character 3-5 grams inside word boundaries, sublinear counts."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=min_df, max_df=max_df,
                           dtype=np.float32)


_BY_OBJECT: "weakref.WeakKeyDictionary[TerminologyLike, dict]" = weakref.WeakKeyDictionary()


def cached(store: dict, terminology: TerminologyLike, build: Callable[[TerminologyLike], Any], *, name: str) -> Any:
    """`build(terminology)` once per terminology content, kept for the process and pickled beside the
    terminology cache (building takes ~10-20 s, loading ~1 s). A terminology without a source digest (a
    test double) is cached by the object itself, so a reused id never hands out another's index."""
    if not terminology.source_digest:
        own = _BY_OBJECT.setdefault(terminology, {})
        if name not in own:
            own[name] = build(terminology)
        return own[name]
    key = content_key(terminology)
    if key not in store:
        from clinassay.terminology.cache import read_pickle, terminology_dir, write_pickle

        path = terminology_dir() / "audit" / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pkl"
        value = read_pickle(path)
        if value is None:
            value = build(terminology)
            try:
                write_pickle(path, value)
            except OSError:
                pass  # a read-only cache: rebuild next time, never fail the audit over it
        store[key] = value
    return store[key]


@dataclass(frozen=True)
class LexicalStanding:
    own_category: float
    best_category: str
    best_category_score: float
    category_rank: int
    own_code: float  # the claimed code's best text (0 when it has none indexed)
    best_member_score: float  # best code of the claimed category
    best_member: str | None = None
    own_block_best: float = 0.0  # the best category of the claimed code's block (audit/fit.py's hierarchy features)
    own_chapter_best: float = 0.0  # ... and of its chapter


class LexicalIndex:
    """TF-IDF (char_wb 3-5 grams, common n-grams dropped) of every category and code text."""

    def __init__(self, terminology: TerminologyLike) -> None:
        owners: list[str] = []
        texts: list[str] = []
        for code in terminology.codes():
            entry = terminology.find(code)
            if entry.kind not in ("category", "code"):
                continue
            for text in node_texts(terminology, code):
                owners.append(code)
                texts.append(normalize_text(text))
        # texts grouped by category, so that a row's sorted columns fall in runs of one category
        order = sorted(range(len(owners)), key=lambda k: owners[k][:3])
        owners, texts = [owners[k] for k in order], [texts[k] for k in order]
        self.vectorizer = char_ngram_vectorizer(min_df=2, max_df=0.05)
        self.matrix = self.vectorizer.fit_transform(texts).T.tocsr()  # (n-grams, texts): rows gathered per query
        self.owners = np.asarray(owners)
        self.owner_ids = {code: k for k, code in enumerate(dict.fromkeys(owners))}
        self.text_owner = np.asarray([self.owner_ids[o] for o in owners], dtype=np.int64)
        self.categories = sorted({o[:3] for o in owners})
        position = {c: i for i, c in enumerate(self.categories)}
        self.text_category = np.asarray([position[o[:3]] for o in owners], dtype=np.int64)
        self.category_position = position
        self.category_block, self.category_chapter = hierarchy_ids(terminology, self.categories)
        self.category_starts = np.flatnonzero(np.r_[True, self.text_category[1:] != self.text_category[:-1]])
        self.category_ends = np.r_[self.category_starts[1:], len(owners)]

    @classmethod
    def for_terminology(cls, terminology: TerminologyLike) -> "LexicalIndex":
        """One index per terminology content, kept for the process (building it takes ~10 s)."""
        return cached(_INDEXES, terminology, cls, name=f"lexical-{INDEX_FORMAT}")

    def standing(self, norms: Sequence[str], codes: Sequence[str]) -> list[LexicalStanding]:
        out: list[LexicalStanding] = []
        queries = self.vectorizer.transform(list(norms)).tocsr()
        for start in range(0, len(norms), 64):
            dense = (queries[start:start + 64] @ self.matrix).toarray()  # (n, texts); 64 rows ~ 36 MB
            per_cat_block = np.maximum.reduceat(dense, self.category_starts, axis=1)  # texts grouped by category
            for i, per_cat in enumerate(per_cat_block):
                code = codes[start + i]
                own_pos = self.category_position.get(code[:3])
                own_cat = float(per_cat[own_pos]) if own_pos is not None else 0.0
                best = int(np.argmax(per_cat))
                own_code = best_member_score = 0.0
                best_member = None
                if own_pos is not None:
                    lo, hi = self.category_starts[own_pos], self.category_ends[own_pos]
                    member_vals = dense[i, lo:hi]
                    top = int(np.argmax(member_vals))
                    if member_vals[top] > 0:
                        best_member, best_member_score = str(self.owners[lo + top]), float(member_vals[top])
                    mine = member_vals[self.text_owner[lo:hi] == self.owner_ids.get(code, -1)]
                    own_code = float(mine.max()) if mine.size else 0.0
                out.append(LexicalStanding(
                    own_category=own_cat, best_category=self.categories[best],
                    best_category_score=float(per_cat[best]), category_rank=int((per_cat > own_cat).sum()),
                    own_code=own_code, best_member_score=best_member_score, best_member=best_member,
                    own_block_best=best_in_group(per_cat, self.category_block, own_pos),
                    own_chapter_best=best_in_group(per_cat, self.category_chapter, own_pos)))
        return out
