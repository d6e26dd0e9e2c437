"""spelling: misspelt near-words ("pneumção", "tardéria de urinosa") read as clinical text to a model
and teach it words no clinician writes. A word is flagged when the pair's language knows it nowhere
(hunspell dictionary forms + the terminology's own words, audit/spelling.py) yet it is one edit (two
for long words) from a word that is known, unless people write it (wordfreq) and it is no rare typo of a
far more common word. A token far from every word is no misspelling: it is warned `unknown_word` when
nobody writes it either (a made-up word, or a clinical term no list has), else left alone; so are
acronyms and capitalised names inside the mention (eponyms, brands). With a coded reference
(`--reference`), the words clinicians wrote there are known words too, and a mention they wrote word for
word is not checked at all."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from clinassay.audit.checks.base import Check
from clinassay.audit.findings import Finding
from clinassay.audit.items import Chunk, Item
from clinassay.audit.spelling import (DEBIAN_PACKAGES, HUNSPELL, LANGUAGE_NAMES, Lexicon, configured_lexicon, spelling_tokens,
                                      usage_zipf)

log = logging.getLogger(__name__)


class _Unknown:
    """A word far from every word the lexicon knows (not a near-miss of one)."""


UNKNOWN = _Unknown()


class SpellingCheck(Check):
    name = "spelling"
    summary_meaning = ("share of checked pairs with a misspelt word (a non-word one or two edits from a known word; "
                       "rejected) or an unknown one (far from every word and never seen written; warned)")
    merged = ("words_checked", "unknown_far", "skipped_pairs", "attested_pairs", "reference_words_used", "known_from_usage",
              "unknown_warned",
              "flagged_words")

    def __init__(self, config, resources) -> None:
        super().__init__(config, resources)
        self._lexicons: dict[str, Lexicon] = {}
        self.words_checked = 0
        self.unknown_far = 0  # not a word, and not near one either: left alone
        self.skipped_pairs = 0
        self.attested_pairs = 0  # mentions the coded reference has, word for word: clinicians wrote them
        self.reference_words_used = 0  # words no lexicon has that clinicians wrote in the reference
        self.known_from_usage = 0  # words no lexicon has that wordfreq has seen written in the language
        self.unknown_warned = 0  # words far from every known word, and never seen written: warned
        self.flagged_words: Counter = Counter()
        self._merged_lexicons: dict[str, dict[str, Any]] = {}  # lexicons other partitions' checks loaded

    def lexicon(self, language: str) -> Lexicon:
        lexicon = self._lexicons.get(language)
        if lexicon is None:
            cfg = self.config.spelling
            lexicon = self._lexicons[language] = configured_lexicon(language, cfg, self.resources.terminology)
            if lexicon.missing:
                log.warning("spelling: no hunspell dictionary %s for %s in %s: only the terminology's words are "
                            "known, so far fewer misspellings are found (install %s)", ", ".join(lexicon.missing),
                            LANGUAGE_NAMES[language], ", ".join(cfg.dictionary_dirs), DEBIAN_PACKAGES[language])
        return lexicon

    def check_chunk(self, chunk: Chunk) -> list[list[Finding]]:
        cfg = self.config.spelling
        if not cfg.enabled:
            return [[] for _ in chunk.items]
        return [self._check(item) if self._applies(item) else [] for item in chunk.items]

    def _applies(self, item: Item) -> bool:
        """Pairs in another language than asked would be all 'misspelt': the language check has said it."""
        if item.language not in self.config.languages or item.language not in HUNSPELL or not item.mention.strip():
            return False
        if any(f.check == "language" for f in item.findings):
            self.skipped_pairs += 1
            return False
        reference = self.resources.reference
        if reference is not None and reference.attested(item.norm, item.language) is not None:
            self.attested_pairs += 1  # "abceso intrabadominal" is how clinicians write it: not the LLM's typo
            return False
        return True

    def _check(self, item: Item) -> list[Finding]:
        cfg = self.config.spelling
        lexicon = self.lexicon(item.language)
        has_lower = any(c.islower() for c in item.mention)
        out: list[Finding] = []
        for position, (written, norm) in enumerate(spelling_tokens(item.mention)):
            if len(norm) < cfg.min_letters or not _plain_word(written, position, has_lower):
                continue
            self.words_checked += 1
            if norm in lexicon:
                continue
            reference = self.resources.reference
            if reference is not None and norm in reference.words(item.language):
                # "yugal", "anexectomía", "narinas" are in no hunspell dictionary; clinicians write them. A
                # clinician's one-off typo becomes a word too: an LLM making the very same one is rare
                self.reference_words_used += 1
                continue
            found = self._misspelt(lexicon, norm)
            if found is UNKNOWN:
                if cfg.unknown_word_severity is not None and not self._written(written, item.language):
                    self.unknown_warned += 1
                    out.append(Finding(
                        self.name, "unknown_word", 0.3,
                        f"'{written}' is in no {LANGUAGE_NAMES[item.language]} dictionary, the terminology or "
                        "wordfreq's list, nor near a word that is: a made-up word, or a clinical term none of them has",
                        cfg.unknown_word_severity, {"word": written}))
                continue
            if found is None:
                continue
            suggestion, distance, similarity = found
            if self._in_use(written, suggestion, item.language):
                self.known_from_usage += 1
                continue
            self.flagged_words[norm] += 1
            out.append(Finding(
                self.name, "misspelling", similarity,
                f"'{written}' is not {_a(LANGUAGE_NAMES[item.language])} word; did you mean '{suggestion}'?",
                cfg.severity, {"word": written, "suggestion": suggestion, "edits": distance}))
        return out

    def _in_use(self, written: str, suggestion: str, language: str) -> bool:
        """People write this word in this language (wordfreq), and not as a rare typo of the suggested
        word: 'acúfenos' (Zipf 1.6) is a word, 'diabetis' (1.4, next to 'diabetes' at 3.8) is a typo."""
        return self._written(written, language) and \
            usage_zipf(suggestion, language) - usage_zipf(written, language) < self.config.spelling.usage_typo_margin

    def _written(self, word: str, language: str) -> bool:
        """wordfreq has seen the word written in the language at least `usage_zipf` (off: never)."""
        threshold = self.config.spelling.usage_zipf
        return threshold is not None and usage_zipf(word, language) >= threshold

    def _misspelt(self, lexicon: Lexicon, norm: str) -> tuple[str, int, float] | None | _Unknown:
        """(suggestion, edits, similarity) when `norm` reads as a misspelling of a known word, None when it
        is a word, UNKNOWN when it is far from every word."""
        cfg = self.config.spelling
        doubled = lexicon.undoubled(norm)
        if doubled is not None:
            return lexicon.display(doubled), 1, round(1.0 - 1 / len(norm), 4)
        if lexicon.knows(norm) or lexicon.compound(norm):
            return None
        if len(norm) >= cfg.cognate_min_letters:
            clinical = lexicon.near_cognate(norm)  # 'esferocrítica': one edit from the cognate of 'spherocytic'
            if clinical is not None:
                return clinical, 1, round(1.0 - 1 / len(norm), 4)
        near = lexicon.nearest(norm, 2 if len(norm) >= cfg.long_word else 1)
        if near is None:
            self.unknown_far += 1
            return UNKNOWN
        word, distance = near
        return lexicon.display(word), distance, round(1.0 - distance / max(len(norm), len(word)), 4)

    def _lexicon_figures(self) -> dict[str, dict[str, Any]]:
        loaded = {
            lang: {"words": lex.words, "clinical_words": lex.clinical_words, "dictionaries": lex.dictionaries,
                   **({"missing": lex.missing, "install": DEBIAN_PACKAGES[lang]} if lex.missing else {})}
            for lang, lex in self._lexicons.items()
        }
        return dict(sorted({**self._merged_lexicons, **loaded}.items()))

    def take_state(self) -> dict[str, Any]:
        return {**super().take_state(), "lexicons": self._lexicon_figures()}

    def merge_state(self, state: dict[str, Any]) -> None:
        super().merge_state(state)
        self._merged_lexicons.update(state["lexicons"])  # the same lexicon wherever it was loaded

    def info(self) -> dict[str, Any]:
        lexicons = self._lexicon_figures()
        # ties broken by the word, so that the ten listed do not depend on the order pairs were seen in
        most_flagged = sorted(self.flagged_words.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        out: dict[str, Any] = {
            "words_checked": self.words_checked,
            "unknown_far_from_any_word": self.unknown_far,
            "skipped_other_language": self.skipped_pairs,
            "skipped_attested_in_reference": self.attested_pairs,
            "known_from_reference": self.reference_words_used,
            "known_from_usage": self.known_from_usage,
            "unknown_words_warned": self.unknown_warned,
            "lexicons": lexicons,
            "most_flagged": dict(most_flagged),
        }
        missing = {lang: v["missing"] for lang, v in lexicons.items() if "missing" in v}
        if missing:
            out["dictionaries_missing"] = (
                "no hunspell dictionary for " + ", ".join(f"{LANGUAGE_NAMES[l]} ({', '.join(m)})" for l, m in missing.items())
                + ": only the terminology's words are known there (apt-get install "
                + " ".join(DEBIAN_PACKAGES[l] for l in missing) + ")")
        if "ca" in lexicons:
            out["catalan"] = ("the terminology has no Catalan labels: Catalan words come from the Catalan dictionary"
                              + (" and the " + "/".join(self.config.spelling.borrow.get("ca", [])) + " clinical vocabulary"
                                 if self.config.spelling.borrow.get("ca") else ""))
        return out


def _plain_word(written: str, position: int, has_lower: bool) -> bool:
    """Only ordinary words are spell-checked: not an acronym ('EPOC', 'HbA'), not a capitalised name
    inside the mention ('enfermedad de Crohn'); a mention written all in capitals is read as words."""
    if written.islower():
        return True
    if written.isupper():
        return not has_lower and len(written) > 5
    if written[0].isupper() and written[1:].islower():
        return position == 0
    return False


def _a(name: str) -> str:
    return ("an " if name[0] in "AEIOU" else "a ") + name
