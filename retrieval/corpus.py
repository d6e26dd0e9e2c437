"""The code corpus: one document per ICD-10 code, made of its English title and its labels in the
query languages. Each distinct label text is encoded once and points to every code that carries it
(a WHO label at category precision is shared by many ICD-10-CM codes); a query's score for a code
is the best score over that code's labels (max pooling).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from clinassay.terminology.errors import ClinassayInputError
from clinassay.terminology.protocol import TerminologyLike


@dataclass(frozen=True)
class CodeCorpus:
    """Codes, their titles, and the distinct label texts with the codes each one belongs to."""

    codes: tuple[str, ...]
    titles: tuple[str, ...]
    texts: tuple[str, ...]
    text_codes: tuple[tuple[int, ...], ...]  # for each text, the indices of its codes
    text_languages: tuple[str, ...]  # the language the text was first seen in
    languages: tuple[str, ...] = ()
    labels: tuple[dict, ...] = ()  # per code, its non-English labels {language: text}
    _position: dict = field(default_factory=dict, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.codes)

    def position(self, code: str) -> int | None:
        if not self._position:
            self._position.update({c: i for i, c in enumerate(self.codes)})
        return self._position.get(code)

    def title(self, code: str) -> str:
        i = self.position(code)
        return self.titles[i] if i is not None else ""

    def document(self, code: str, language: str | None = None) -> str:
        """One text per code for the reranker: the label in the query's language, then the English title."""
        i = self.position(code)
        if i is None:
            return code
        title = self.titles[i]
        label = self.labels[i].get(language) if language and self.labels else None
        if label and label.casefold() != title.casefold():
            return f"{label} ({title})"
        return title

    @property
    def fingerprint(self) -> str:
        """Stable hash of what gets encoded and what it maps to: the key of the embedding cache."""
        h = hashlib.sha256()
        for text, owners in zip(self.texts, self.text_codes):
            h.update(text.encode("utf-8"))
            h.update(b"\x1f")
            h.update(",".join(self.codes[i] for i in owners).encode("utf-8"))
            h.update(b"\x1e")
        return h.hexdigest()[:24]

    def to_dict(self) -> dict:
        return {
            "codes": list(self.codes),
            "titles": list(self.titles),
            "texts": list(self.texts),
            "text_codes": [list(t) for t in self.text_codes],
            "text_languages": list(self.text_languages),
            "languages": list(self.languages),
            "labels": list(self.labels),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "CodeCorpus":
        return cls(
            codes=tuple(data["codes"]),
            titles=tuple(data["titles"]),
            texts=tuple(data["texts"]),
            text_codes=tuple(tuple(t) for t in data["text_codes"]),
            text_languages=tuple(data["text_languages"]),
            languages=tuple(data.get("languages", ())),
            labels=tuple(data.get("labels", ())),
        )


def select_codes(
    term: TerminologyLike,
    *,
    billable_only: bool = True,
    codes: Iterable[str] | None = None,
    chapters: Iterable[str] | None = None,
) -> list[str]:
    """The corpus's codes: billable ones (or every code with a title), optionally narrowed to a code
    list or to chapters. Unknown codes in `codes` are errors that name them."""
    if codes is not None:
        wanted = []
        unknown = []
        for raw in codes:
            found = term.find(raw)
            if found is None:
                unknown.append(raw)
            else:
                wanted.append(found.code)
        if unknown:
            raise ClinassayInputError(f"corpus codes not in ICD-10-CM: {', '.join(unknown[:10])}")
        selected = list(dict.fromkeys(wanted))
    elif billable_only:
        selected = list(term.billable_codes())
    else:
        selected = [c for c in _all_codes(term)]
    if chapters:
        keep = {str(c) for c in chapters}
        selected = [c for c in selected if str(term.chapter_of(c)) in keep]
    if not selected:
        raise ClinassayInputError("the code corpus is empty: check the corpus codes/chapters in the config")
    return selected


def _all_codes(term: TerminologyLike) -> list[str]:
    seen: list[str] = []
    for chapter in term.chapters():
        stack = [chapter.code]
        while stack:
            code = stack.pop()
            node = term.find(code)
            if node is None:
                continue
            if node.kind in ("category", "code"):
                seen.append(node.code)
            stack.extend(reversed(node.children))
    return seen


def build_corpus(
    term: TerminologyLike,
    *,
    languages: Sequence[str] = ("en", "es", "pt", "fr", "it", "ca"),
    billable_only: bool = True,
    include_inclusion_terms: bool = False,
    codes: Iterable[str] | None = None,
    chapters: Iterable[str] | None = None,
) -> CodeCorpus:
    """Build the corpus from a terminology (the real one or any other `TerminologyLike`)."""
    selected = select_codes(term, billable_only=billable_only, codes=codes, chapters=chapters)
    titles: list[str] = []
    text_index: dict[str, int] = {}
    texts: list[str] = []
    owners: list[list[int]] = []
    text_languages: list[str] = []
    code_labels: list[dict] = []

    def add(text: str | None, code_position: int, language: str) -> None:
        text = (text or "").strip()
        if not text:
            return
        key = text.casefold()
        i = text_index.get(key)
        if i is None:
            i = text_index[key] = len(texts)
            texts.append(text)
            owners.append([])
            text_languages.append(language)
        if not owners[i] or owners[i][-1] != code_position:
            owners[i].append(code_position)

    resolved = []
    for code in selected:
        try:
            resolved.append(term.get(code))
        except ClinassayInputError:  # a code the terminology lists but cannot resolve: leave it out
            continue
    selected = [node.code for node in resolved]
    for position, node in enumerate(resolved):
        code = node.code
        titles.append(node.title)
        add(node.title, position, "en")
        own: dict = {}
        for language in languages:
            if language == "en":
                continue
            label = term.label(code, language)
            if label is not None and label.text.strip():
                own[language] = label.text.strip()
                add(label.text, position, language)
        code_labels.append(own)
        if include_inclusion_terms:
            for inclusion in node.inclusion_terms:
                add(inclusion, position, "en")
    return CodeCorpus(
        codes=tuple(selected),
        titles=tuple(titles),
        texts=tuple(texts),
        text_codes=tuple(tuple(o) for o in owners),
        text_languages=tuple(text_languages),
        languages=tuple(languages),
        labels=tuple(code_labels),
    )


def corpus_from_config(term: TerminologyLike, corpus_config) -> CodeCorpus:
    return build_corpus(
        term,
        languages=corpus_config.languages,
        billable_only=corpus_config.billable_only,
        include_inclusion_terms=corpus_config.include_inclusion_terms,
        codes=corpus_config.codes,
        chapters=corpus_config.chapters,
    )
