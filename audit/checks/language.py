"""language: is the mention written in the language that was asked for? Lingua, restricted to the
configured languages (it tells Catalan from Spanish), gives a confidence per language; py3langid is the
light fallback. Short clinical strings fool every detector (eponyms, Latin, words shared across
languages), so a mismatch is only called when the signals agree: eponyms and acronyms are masked before
detection, fewer than two content words (not names, not words every language's labels share) is
"undetermined", the detector must be sure, and the terminology's own label vocabulary must not support
the requested language (a term made of English label words is English, whatever the detector says), nor
its dictionary (a mention every word of which the requested language's spelling lexicon holds is usable in
that language, even when it reads as another one too)."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from typing import Any

from clinassay.audit.checks.base import Check
from clinassay.audit.findings import Finding
from clinassay.audit.items import Chunk
from clinassay.audit.lexicon import NAME_SHAPE, Vocabulary, label_vocabulary, vocabulary_words
from clinassay.audit.spelling import configured_lexicon
from clinassay.audit.text import normalize_text, strip_accents, words

_LINGUA_NAMES = {"es": "SPANISH", "ca": "CATALAN", "pt": "PORTUGUESE", "fr": "FRENCH", "it": "ITALIAN", "en": "ENGLISH"}


class _Lingua:
    backend = "lingua"

    def __init__(self, languages: tuple[str, ...]) -> None:
        from lingua import Language, LanguageDetectorBuilder

        self._langs = {getattr(Language, _LINGUA_NAMES[code]): code for code in languages}
        self._detector = LanguageDetectorBuilder.from_languages(*self._langs).with_preloaded_language_models().build()

    def confidences(self, texts: list[str]) -> list[dict[str, float]]:
        results = self._detector.compute_language_confidence_values_in_parallel(texts)
        return [{self._langs[c.language]: c.value for c in row} for row in results]

    def segments(self, text: str) -> list[tuple[str, int]]:
        return [(self._langs[r.language], r.word_count) for r in self._detector.detect_multiple_languages_of(text)]


class _LangId:
    backend = "py3langid"

    def __init__(self, languages: tuple[str, ...]) -> None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        self._identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        self._identifier.set_languages(list(languages))
        self._languages = languages

    def confidences(self, texts: list[str]) -> list[dict[str, float]]:
        out = []
        for text in texts:
            ranked = dict(self._identifier.rank(text))
            total = sum(ranked.get(l, 0.0) for l in self._languages) or 1.0
            out.append({l: float(ranked.get(l, 0.0)) / total for l in self._languages})
        return out

    def segments(self, text: str) -> list[tuple[str, int]]:
        return []


@lru_cache(maxsize=4)
def language_detector(languages: tuple[str, ...], backend: str = "auto"):
    """Built once per language set (loading lingua's models takes a second)."""
    if backend in ("auto", "lingua"):
        try:
            return _Lingua(languages)
        except ImportError:
            if backend == "lingua":
                raise
    return _LangId(languages)


def _is_name(token: str, first: bool, title_case: bool, vocabulary: Vocabulary) -> bool:
    if len(token) >= 2 and token.isupper():
        return True  # an acronym (HIV, EPOC, LLA)
    if normalize_text(token) in vocabulary.eponyms:
        return True
    return token[0].isupper() and not first and not title_case  # a capital inside a sentence-case mention


def mask_names(text: str, vocabulary: Vocabulary) -> tuple[str, list[str]]:
    """The text without proper names, acronyms and name-shaped words ("Minkowski-Chauffard"), and the
    words left as the vocabulary holds them: eponyms tell nothing about the language of a mention."""
    text = NAME_SHAPE.sub(" ", text)
    tokens = words(text)
    long = [t for t in tokens if len(t) >= 3]
    title_case = len(long) >= 2 and sum(t[0].isupper() for t in long) > len(long) / 2
    kept = [t for i, t in enumerate(tokens) if not _is_name(t, i == 0, title_case, vocabulary)]
    masked = " ".join(kept)
    return masked, vocabulary_words(masked)


def vocabulary_supports(tokens: list[str], requested: str, detected: str, vocabulary: Vocabulary) -> bool:
    """True when the label vocabulary backs the requested language against the detected one: every word is
    a label word of the requested language, or it knows more of them than the detected language does."""
    if not tokens or not vocabulary.has(requested):
        return False
    own = sum(t in vocabulary.words[requested] for t in tokens)
    if own == len(tokens):
        return True
    return vocabulary.has(detected) and own > sum(t in vocabulary.words[detected] for t in tokens)


class LanguageCheck(Check):
    name = "language"
    summary_meaning = "share of pairs written in another language than requested (or mixing languages)"
    merged = ("confusion", "conf_sum", "conf_n", "too_short", "undetermined", "vetoed", "vetoed_by_reference",
              "vetoed_by_dictionary")

    def __init__(self, config, resources) -> None:
        super().__init__(config, resources)
        self.confusion: Counter = Counter()
        self.conf_sum: Counter = Counter()
        self.conf_n: Counter = Counter()
        self.too_short = 0
        self.undetermined = 0
        self.vetoed = 0
        self.vetoed_by_reference = 0
        self.vetoed_by_dictionary = 0
        self._backend: str | None = None  # the detector that ran (known without loading it again)

    def check_chunk(self, chunk: Chunk) -> list[list[Finding]]:
        cfg = self.config.language
        langs = tuple(self.config.languages)
        out: list[list[Finding]] = [[] for _ in chunk.items]
        todo = []
        vocabulary: Vocabulary | None = None
        for i, item in enumerate(chunk.items):
            if item.language not in langs or not item.mention.strip():
                continue
            n_words = len([w for w in words(item.mention) if len(w) >= 3])  # content words: 'de', 'la' tell little
            if n_words < cfg.min_words:
                self.too_short += 1
                continue
            if vocabulary is None:
                vocabulary = label_vocabulary(self.resources.terminology)
            masked, tokens = mask_names(item.mention, vocabulary)
            shared = [bag for lang, bag in vocabulary.words.items() if vocabulary.has(lang)]
            content = [t for t in tokens if len(t) >= 3 and not all(t in bag for bag in shared)]
            if len(content) < cfg.min_content_words:
                self.undetermined += 1
                continue
            todo.append((i, n_words, masked, [t for t in tokens if len(t) >= 2]))
        if not todo:
            return out
        detector = language_detector(langs)
        self._backend = detector.backend
        confidences = detector.confidences([masked for _, _, masked, _ in todo])
        for (i, n_words, _masked, tokens), conf in zip(todo, confidences):
            item = chunk.items[i]
            detected = max(conf, key=conf.get) if conf else item.language
            requested_conf = conf.get(item.language, 0.0)
            self.confusion[f"{item.language}->{detected}"] += 1
            self.conf_sum[item.language] += requested_conf
            self.conf_n[item.language] += 1
            if (detected != item.language and conf[detected] >= cfg.min_confidence
                    and conf[detected] - requested_conf >= cfg.min_margin):
                if cfg.vocabulary_vote and vocabulary_supports(tokens, item.language, detected, vocabulary):
                    self.vetoed += 1
                    continue
                if cfg.vocabulary_vote and self._clinicians_words(tokens, item.language):
                    self.vetoed_by_reference += 1
                    continue
                if cfg.dictionary_vote and self._dictionary_words(tokens, item.language):
                    self.vetoed_by_dictionary += 1
                    continue
                out[i].append(Finding(
                    self.name, "wrong_language", float(conf[detected]),
                    f"written in {detected} (confidence {conf[detected]:.2f}), not in {item.language} "
                    f"(confidence {requested_conf:.2f})", cfg.severity, {"detected": detected}))
                continue
            if cfg.mixed and n_words >= cfg.mixed_min_words and requested_conf < cfg.mixed_below_confidence:
                # segmenting is ~5x slower than scoring: only texts the scorer is unsure about can be mixed
                spans = [(lang, n) for lang, n in detector.segments(item.mention) if n >= 3]
                others = {lang for lang, _ in spans if lang != item.language}
                if len({lang for lang, _ in spans}) >= 2 and others:
                    out[i].append(Finding(
                        self.name, "mixed_language", 0.6,
                        f"mixes {item.language} with {', '.join(sorted(others))}", cfg.mixed_severity,
                        {"segments": [{"language": l, "words": n} for l, n in spans]}))
        return out

    def _clinicians_words(self, tokens: list[str], language: str) -> bool:
        """Every word is one clinicians wrote in this language in the coded reference (`--reference`): a
        detector's guess on a short string does not outweigh real usage ("parestesias en ambas extremidades
        inferiores" reads as Portuguese to it; every word of it is in CodiEsp train's Spanish)."""
        reference = self.resources.reference
        if reference is None or not tokens:
            return False
        known = reference.words(language)
        return all(strip_accents(t) in known for t in tokens)

    def _dictionary_words(self, tokens: list[str], language: str) -> bool:
        """Every word, as written with its accents, is a word of the requested language: its hunspell
        dictionary or the terminology's own words in it, or a clinical prefix + one of them ('bicúspide'),
        not a cognate or a near word. Short clinical strings often read as two languages at once; one made
        only of words of the requested language is usable in it. A language that borrows another's words (Catalan takes Spanish clinical words) has no say here."""
        spelling = self.config.spelling
        if not tokens or spelling.borrow.get(language):
            return False
        lexicon = configured_lexicon(language, spelling, self.resources.terminology)
        if lexicon.missing:  # without its dictionaries a language knows only its labels' words
            return False
        return all(lexicon.writes(t) for t in tokens)

    def summary_value(self) -> float:
        return self.stats.flagged / self.seen if self.seen else 0.0

    def take_state(self) -> dict[str, Any]:
        return {**super().take_state(), "backend": self._backend}

    def merge_state(self, state: dict[str, Any]) -> None:
        super().merge_state(state)
        self._backend = self._backend or state["backend"]

    def info(self) -> dict[str, Any]:
        return {
            "backend": self._backend or language_detector(tuple(self.config.languages)).backend,
            "too_short_to_tell": self.too_short,
            "undetermined": self.undetermined,
            "kept_by_label_vocabulary": self.vetoed,
            "kept_by_reference_vocabulary": self.vetoed_by_reference,
            "kept_by_dictionary": self.vetoed_by_dictionary,
            "mean_confidence_requested": {l: round(self.conf_sum[l] / self.conf_n[l], 4) for l in self.conf_n},
            "requested_to_detected": dict(self.confusion.most_common()),
        }
