"""validity: is this a pair at all? A known (and by default billable) code, not a chapter or block, a
configured language, and a mention that is text of a sensible length, not only symbols, not markup or
code, not words of no language the terminology knows ("lorem ipsum") and not just the code itself."""

from __future__ import annotations

import re

from clinassay.audit.checks.base import Check
from clinassay.audit.checks.language import language_detector
from clinassay.audit.findings import Finding
from clinassay.audit.items import Chunk, Item
from clinassay.audit.lexicon import Vocabulary, label_vocabulary
from clinassay.audit.text import normalize_text, words
from clinassay.terminology.errors import ClinassayInputError

_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
# Markup and code pasted as a mention: what an LLM echoes from a web page, a template or an injection.
MARKUP: dict[str, re.Pattern[str]] = {
    "an HTML tag": re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?/?>|<[a-zA-Z][a-zA-Z0-9]*\s+[a-zA-Z-]+\s*="),
    "a URL": re.compile(r"\b(?:https?|ftp)://|\bwww\.[a-z0-9-]+\.[a-z]", re.IGNORECASE),
    "script": re.compile(r"javascript\s*:|\bon[a-z]+\s*=|\b(?:alert|eval|prompt|confirm)\s*\(|\bdocument\.[a-z]"
                         r"|\bwindow\.[a-z]|\bfunction\s*\(|=>\s*\{", re.IGNORECASE),
    "a template placeholder": re.compile(r"\{\{.*?\}\}|\$\{[^}]*\}|\{%.*?%\}"),
    "SQL": re.compile(r"\b(?:select\s+\S+(?:\s*,\s*\S+)*\s+from|drop\s+table|insert\s+into|union\s+select)\b",
                      re.IGNORECASE),
}


def markup_kind(text: str) -> str | None:
    """What kind of markup or code the text contains, or None."""
    return next((kind for kind, pattern in MARKUP.items() if pattern.search(text)), None)


def unknown_words(text: str, vocabulary: Vocabulary) -> tuple[list[str], int]:
    """The words (3+ letters, acronyms left out) no language's labels know, and how many words were looked at."""
    looked = [normalize_text(w) for w in words(text) if len(w) >= 3 and not w.isupper()]
    return [w for w in looked if not vocabulary.knows(w)], len(looked)


class ValidityCheck(Check):
    name = "validity"
    summary_meaning = "share of pairs that are not valid pairs (unknown code, bad language, empty or absurd mention)"

    def __init__(self, config, resources) -> None:
        super().__init__(config, resources)
        self._vocabulary: Vocabulary | None = None

    @property
    def vocabulary(self) -> Vocabulary:
        if self._vocabulary is None:
            self._vocabulary = label_vocabulary(self.resources.terminology)
        return self._vocabulary

    def check_chunk(self, chunk: Chunk) -> list[list[Finding]]:
        return [self._check(item) for item in chunk.items]

    def _fail(self, reason: str, detail: str, *, severity=None) -> Finding:
        return Finding(self.name, reason, 1.0, detail, severity or self.config.validity.severity)

    def _check(self, item: Item) -> list[Finding]:
        cfg = self.config.validity
        out: list[Finding] = []
        if item.language not in self.config.languages:
            out.append(self._fail("language_not_configured",
                                  f"language '{item.language}' is not one of the configured languages {self.config.languages}"))
        mention = item.mention.strip()
        if not mention:
            out.append(self._fail("empty_mention", "the mention is empty"))
        elif len(mention) < cfg.min_chars:
            out.append(self._fail("too_short", f"the mention has {len(mention)} characters, fewer than {cfg.min_chars}"))
        elif len(mention) > cfg.max_chars:
            # an official term of the pair's own code is never rejected: a long title (O80's carries its
            # coding instruction) is warned, so a reviewer decides whether to train on it
            entry = self.resources.terminology.find(item.raw_code)
            official = entry is not None and item.norm in self.resources.official_terms.of(entry.code)
            out.append(self._fail("too_long", f"the mention has {len(mention)} characters, more than {cfg.max_chars}"
                                  + (f"; it is an official term of {entry.code}, so it is kept" if official else ""),
                                  severity="warn" if official else None))
        elif not _LETTER.search(mention):
            out.append(self._fail("no_letters", "the mention has no letters, only digits or symbols"))
        elif cfg.markup and (kind := markup_kind(mention)) is not None:
            out.append(self._fail("markup", f"the mention contains {kind}: markup or code, not clinical language"))
        elif cfg.nonsense:
            unknown, looked = unknown_words(mention, self.vocabulary)
            if looked >= 2 and len(unknown) > looked * (1 - cfg.nonsense_max_known):
                # real words the labels lack ("marihuana") are still a language the detector recognises
                confidence = language_detector(tuple(self.config.languages)).confidences([mention])[0]
                if max(confidence.values(), default=0.0) < cfg.nonsense_max_confidence:
                    out.append(self._fail(
                        "nonsense", f"{len(unknown)} of {looked} words are words of no language the terminology's "
                                    f"labels know ({', '.join(unknown[:5])}) and no configured language is "
                                    f"recognised (best confidence {max(confidence.values()):.2f}): not clinical language"))
        try:
            entry = self.resources.terminology.get(item.raw_code)
        except ClinassayInputError as exc:
            suggestions = getattr(exc, "suggestions", None)
            reason = "unknown_code" if suggestions is not None else "malformed_code"
            hint = f" (did you mean {', '.join(suggestions[:3])}?)" if suggestions else ""
            out.append(self._fail(reason, f"code '{item.raw_code}' is not an ICD-10-CM code: {exc}{hint}"))
            return out
        if entry.kind in ("chapter", "block"):
            out.append(self._fail("not_a_code", f"'{item.raw_code}' is a {entry.kind} of ICD-10-CM ({entry.title}), "
                                                f"not a code: give a category or a code of it"))
            return out
        item.code, item.entry = entry.code, entry
        if mention and normalize_text(mention).replace(" ", "") in {
            normalize_text(entry.code).replace(" ", ""), normalize_text(item.raw_code).replace(" ", "")
        }:
            out.append(self._fail("mention_is_code", f"the mention is just the code {entry.code}"))
        if cfg.require_billable and not entry.billable:
            out.append(self._fail("not_billable",
                                  f"{entry.code} ({entry.title}) is a {entry.kind} header, not a billable code",
                                  severity=cfg.billable_severity))
        return out
