"""The lexicon the spelling check looks words up in, one per language: every form of the distribution's
hunspell dictionaries (expanded once with spylls) united with the terminology's own words in that
language, so that a clinical word a general dictionary lacks ("colecistitis") is never called a
misspelling. Built once per (dictionaries, terminology) and cached on disk as a memory-mapped marisa
trie: a lookup is a trie membership test, and loading a language takes milliseconds.

Words are compared accent-free and case-free (`spelling_tokens`): a missing accent is a style matter
in clinical notes, not a misspelling. General dictionaries lack most clinical words and the labels are
few (Italian: ~400 words), so a word is also known when it is the cognate of a clinical word of its
language or of English (ICD-10-CM, hunspell-en-med: `cognate_key`), the adjective of a known noun, a
clinical prefix or combining form + a known word, or (when no word is one edit away) a participle of a
known noun or a known stem + a closing combining form ('trombosada', 'anexectomía'). Measured on CodiEsp (bench/audit_spelling.py): the
cognates took the share of correct mentions flagged from 10.8% to 1.3%.
"""

from __future__ import annotations

import logging
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Iterator

from clinassay.audit.text import strip_accents
from clinassay.terminology.cache import file_digest, read_pickle, write_pickle
from clinassay.terminology.protocol import TerminologyLike

log = logging.getLogger(__name__)

LEXICON_FORMAT = "spelling-v1"
"""Bump when what goes into a lexicon changes, so old caches are rebuilt."""

DEFAULT_DICTIONARY_DIRS: tuple[str, ...] = ("/usr/share/hunspell", "/usr/share/myspell", "/usr/share/myspell/dicts")

# language -> dictionaries that make up its lexicon; each is (names to try for the .dic, names for the .aff).
# en_med_glut (hunspell-en-med) is a word list written for en_US's affix rules.
HUNSPELL: dict[str, tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]] = {
    "es": ((("es_ES", "es"), ("es_ES", "es")),),
    "ca": ((("ca", "ca_ES"), ("ca", "ca_ES")),),
    "pt": ((("pt_PT",), ("pt_PT",)), (("pt_BR",), ("pt_BR",))),
    "fr": ((("fr", "fr_FR"), ("fr", "fr_FR")),),
    "it": ((("it_IT", "it"), ("it_IT", "it")),),
    "en": ((("en_US",), ("en_US",)), (("en_med_glut",), ("en_US",))),
}
DEBIAN_PACKAGES: dict[str, str] = {
    "es": "hunspell-es", "ca": "hunspell-ca", "pt": "hunspell-pt-pt hunspell-pt-br",
    "fr": "hunspell-fr-comprehensive", "it": "hunspell-it", "en": "hunspell-en-us hunspell-en-med",
}
MEDICAL_DICTIONARY = "en_med_glut"
"""hunspell-en-med: English medical words, whose cognates count as clinical words in every language."""
LANGUAGE_NAMES = {"es": "Spanish", "ca": "Catalan", "pt": "Portuguese", "fr": "French", "it": "Italian", "en": "English"}

_TOKEN = re.compile(r"[^\W\d_]+(?:(?<=[lL])[·•.](?=[lL])[^\W\d_]+)*", re.UNICODE)  # Catalan "l·l" stays one word
_JOINERS = str.maketrans("", "", "·•.")


def normalize_word(word: str) -> str:
    """Case-free and accent-free; Catalan 'col·lecistitis' -> 'collecistitis'."""
    return strip_accents(word.casefold()).translate(_JOINERS)


def spelling_tokens(text: str) -> Iterator[tuple[str, str]]:
    """(as written, normalised) for each word of letters; a word glued to a digit ('T2DM') is no word."""
    for match in _TOKEN.finditer(text):
        start, end = match.span()
        if (start and text[start - 1].isdigit()) or (end < len(text) and text[end].isdigit()):
            continue
        yield match.group(0), normalize_word(match.group(0))


@lru_cache(maxsize=100_000)
def usage_zipf(word: str, language: str) -> float:
    """How often `word` is written in `language` (wordfreq's large list, Zipf scale; 0 when never seen).
    Dictionaries lack much of clinical writing ('acúfenos', 'yugal'); a word people write is a word."""
    import wordfreq

    return float(wordfreq.zipf_frequency(word, language, wordlist="large"))


# --- finding the dictionaries --------------------------------------------------------------------------


@dataclass(frozen=True)
class DictionaryFile:
    name: str
    dic: Path
    aff: Path


def find_dictionaries(language: str, dirs: Iterable[str | Path] = DEFAULT_DICTIONARY_DIRS) -> tuple[list[DictionaryFile], list[str]]:
    """The hunspell dictionaries installed for `language`, and the names of those that are missing."""
    found, missing = [], []
    folders = [Path(d).expanduser() for d in dirs]
    for dic_names, aff_names in HUNSPELL[language]:
        dic = next((f / f"{n}.dic" for f in folders for n in dic_names if (f / f"{n}.dic").is_file()), None)
        aff = next((f / f"{n}.aff" for f in folders for n in aff_names if (f / f"{n}.aff").is_file()), None)
        if dic is None or aff is None:
            missing.append(dic_names[0])
        else:
            found.append(DictionaryFile(dic_names[0], dic, aff))
    return found, missing


@contextmanager
def _read_file(path: Path, **kwargs: str) -> Iterator[object]:
    """spylls' FileReader over `path`, with every handle it opened closed afterwards: it opens one per
    encoding it tries and closes none (a ResourceWarning on stderr each time a lexicon is built)."""
    from spylls.hunspell.readers.file_reader import FileReader

    handles: list = []

    class ClosingReader(FileReader):
        def _open(self, path, encoding):
            handles.append(super()._open(path, encoding))
            return handles[-1]

    try:
        yield ClosingReader(str(path), **kwargs)
    finally:
        for handle in handles:
            handle.close()


def expand_dictionary(dictionary: DictionaryFile) -> Iterator[tuple[str, bool]]:
    """Every word form the dictionary accepts through its affix rules (stem, one or two suffixes, a
    prefix, a prefix crossed with a suffix), each with whether it is a stem; repeats are possible.
    Affixes that add an apostrophe or hyphen ("l'", "-lo") are left out: the tokenizer splits there
    anyway, and they multiply the forms tenfold (pt_BR: 10 million instead of 2.8)."""
    from spylls.hunspell import readers

    with _read_file(dictionary.aff) as reader:
        aff, context = readers.read_aff(reader)
    with _read_file(dictionary.dic, encoding=context.encoding) as reader:
        dic = readers.read_dic(reader, aff=aff, context=context)
    skip = {f for f in (aff.FORBIDDENWORD, aff.ONLYINCOMPOUND) if f}
    needaffix = aff.NEEDAFFIX
    suffixes = {flag: [s for s in group if not s.add or s.add.isalpha()] for flag, group in aff.SFX.items()}
    prefixes = {flag: [p for p in group if p.add.isalpha()] for flag, group in aff.PFX.items()}

    def suffixed(stem: str, flags) -> Iterator[tuple[object, str]]:
        for flag in flags:
            for s in suffixes.get(flag, ()):
                if stem.endswith(s.strip) and s.cond_regexp.search(stem):
                    yield s, stem[: len(stem) - len(s.strip)] + s.add

    for word in dic.words:
        flags = word.flags
        if flags & skip:
            continue
        stem = word.stem
        if not (needaffix and needaffix in flags):
            yield stem, True
        level1 = []
        for s, form in suffixed(stem, flags):
            if not (needaffix and needaffix in s.flags):
                yield form, False
            level1.append((s, form))
            for _, form2 in suffixed(form, s.flags):
                yield form2, False
        for flag in flags:
            for p in prefixes.get(flag, ()):
                if not (stem.startswith(p.strip) and p.cond_regexp.search(stem)):
                    continue
                yield p.add + stem[len(p.strip):], False
                if p.crossproduct:
                    for s, form in level1:
                        if s.crossproduct and form.startswith(p.strip) and p.cond_regexp.search(form):
                            yield p.add + form[len(p.strip):], False


# --- the terminology's words ---------------------------------------------------------------------------


def terminology_texts(terminology: TerminologyLike, language: str) -> Iterator[str]:
    """What the terminology says in `language`: for English the ICD-10-CM titles, inclusion terms and
    notes; elsewhere the WHO and imported labels (Catalan has none)."""
    if language == "en":
        for code in terminology.codes():
            node = terminology.get(code)
            yield node.title
            yield from node.inclusion_terms
            yield from node.includes
            yield from node.excludes1
            yield from node.excludes2
            yield from node.notes
        return
    if language not in terminology.languages():
        return
    for code in terminology.codes():
        label = terminology.label(code, language)
        if label is not None:
            yield label.text


def terminology_words(terminology: TerminologyLike, language: str) -> dict[str, str]:
    """normalised word -> the word as the terminology writes it (lower-case)."""
    out: dict[str, str] = {}
    seen: set[str] = set()
    for text in terminology_texts(terminology, language):
        if text in seen:
            continue
        seen.add(text)
        for written, norm in spelling_tokens(text):
            out.setdefault(norm, written.lower())
    return out


# --- the lexicon ---------------------------------------------------------------------------------------

_CLINICAL, _GENERAL, _COGNATE = b"t", b"d", b"c"
_COGNATE_MARK = "~"  # cognate keys live in the same trie under a prefix no word has

# Clinical words are Greek/Latin cognates across the six languages: 'esplénicas', 'splenic' and
# 'esplénica' share one key. The endings are inflections and their cross-language equivalents,
# longest first; the letter rules undo spelling conventions (ph/f, y/i, k/c, silent h).
_ENDINGS: tuple[tuple[str, str], ...] = tuple(sorted(
    [(e, "tion") for e in ("ciones", "cions", "cion", "cio", "coes", "cao", "zioni", "zione", "tions", "tion")]
    + [(e, "ic") for e in ("icos", "icas", "ico", "ica", "iques", "ique", "ici", "iche", "ics", "ical", "ic")]
    + [(e, "ous") for e in ("osos", "osas", "oso", "osa", "ous", "eux", "euse", "euses")]
    + [(e, "osis") for e in ("osis", "oses", "ose", "osi")]
    + [(e, "itis") for e in ("itis", "ites", "ite", "iti")]
    + [(e, "al") for e in ("ales", "als", "aux", "ale", "ali", "al")]
    + [(e, "ia") for e in ("ias", "ia", "ies", "ie", "y")]
    + [(e, "ism") for e in ("ismos", "ismo", "ismes", "isme", "isms", "ism", "isma", "ismas", "ysm", "ysms")]
    + [(e, "esis") for e in ("esia", "esias", "esis", "esie", "esi")]
    + [(e, "") for e in ("os", "as", "es", "o", "a", "e", "s", "i")],
    key=lambda pair: -len(pair[0])))
_LETTERS: tuple[tuple[str, str], ...] = (("ph", "f"), ("th", "t"), ("rh", "r"), ("ch", "c"), ("ae", "e"), ("oe", "e"),
                                         ("h", ""), ("y", "i"), ("k", "c"))
_ES_START = re.compile(r"^es(?=[bcdfgklmnpqrstvz])")
_DOUBLE = re.compile(r"(.)\1+")  # 'amoxicilina' / 'amoxicillin', 'cardiorrespiratoria' / 'cardiorespiratory'
# prefixes and Greek/Latin combining forms that make a clinical word of a word ('exfumador',
# 'retroperitoneal', 'neumoperitoneo', 'linfoadenopatía'), accent-free, in the six languages' spellings
CLINICAL_PREFIXES: tuple[str, ...] = tuple(sorted({
    "ex", "pre", "pos", "post", "peri", "para", "retro", "intra", "extra", "infra", "supra", "sub", "hiper", "hipo",
    "hyper", "hypo", "iper", "ipo", "anti", "pseudo", "seudo", "trans", "inter", "multi", "poli", "poly", "semi",
    "neo", "micro", "macro", "mono", "auto", "contra", "endo", "epi", "meta", "pan", "bi", "tri", "des", "dis", "re",
    "hemi", "neumo", "pneumo", "hemo", "emo", "haemo", "linfo", "lymfo", "lympho", "angio", "arterio", "radio",
    "quimio", "chimio", "chemo", "cardio", "gastro", "entero", "hepato", "epato", "nefro", "nephro", "neuro",
    "osteo", "artro", "arthro", "dermo", "fibro", "mio", "myo", "onco", "oto", "oro", "rino", "naso", "vaso",
    "cito", "cyto", "histo", "uro", "procto", "cisto", "cysto", "bronco", "broncho", "traqueo", "laringo",
    "faringo", "espleno", "spleno", "pielo", "uretero", "retino", "oftalmo", "glomerulo", "trombo", "thrombo",
    "cerebro", "cranio", "costo", "toraco", "thoraco", "abdomino", "lumbo", "sacro", "ileo", "gluco", "glico",
    "lipo", "adeno", "condro", "chondro", "sero", "hidro", "hydro", "immuno", "inmuno", "imuno", "cervico",
    "dorso", "teno", "tendino", "musculo", "vesico", "colecisto", "coledoco", "esofago", "oesophago", "pancreato",
    "tetra", "meso", "craneo", "inguino", "palmo", "espino", "recto", "sigmo", "uretro", "reno",
}, key=len, reverse=True))
# adjectives made of a clinical noun ('quimioterápica' <- 'quimioterapia', 'miccional' <- 'micción'):
# the adjective's ending, and the endings its noun may have
ADJECTIVE_ENDINGS: tuple[str, ...] = tuple(sorted({
    "ico", "ica", "icos", "icas", "ici", "iche", "ique", "iques", "ic", "al", "ales", "ais", "aux", "ale", "ali",
    "ar", "ares", "ari", "aire", "aires", "eo", "ea", "eos", "eas", "ei", "ee", "eal", "ional", "ionales", "ionais",
    "ionaux", "ionale", "ionali", "idad", "idade", "itat", "ite", "ita", "ity", "ivo", "iva", "ivos", "ivas",
}, key=len, reverse=True))
NOUN_ENDINGS: tuple[str, ...] = ("", "a", "o", "e", "ia", "is", "ion", "io", "y", "ie", "um", "us")
# participles and nouns of action made of a clinical noun, each ending with the ending of its noun:
# 'trombosada' <- 'trombosis', 'histerectomizada' / 'anemización' <- 'histerectomía' / 'anemia',
# 'enfisematosa' <- 'enfisema'
DERIVED_ENDINGS: tuple[tuple[str, str], ...] = tuple(sorted(
    [(f"os{e}", "osis") for e in ("ado", "ada", "ados", "adas", "ato", "ata", "e", "ee")]
    + [(f"iz{e}", "ia") for e in ("ado", "ada", "ados", "adas", "acion", "aciones", "acao", "acoes")]
    + [(f"izz{e}", "ia") for e in ("ato", "ata", "ati", "ate", "azione")]
    + [(f"is{e}", "ie") for e in ("e", "ee", "ation")]
    + [(f"atos{e}", "a") for e in ("o", "a", "os", "as")],
    key=lambda pair: -len(pair[0])))
# closing combining forms: a known word's stem + one of these is a clinical word ('anexectomía' <- 'anexo',
# 'rectorragia' <- 'recto'), accent-free, in the six languages' spellings
CLINICAL_SUFFIXES: tuple[str, ...] = tuple(sorted({
    f"{form}{plural}" for form in (
        "ectomia", "ectomie", "ectomy", "tomia", "tomie", "tomy", "stomia", "stomie", "plastia", "plastie", "plasty",
        "scopia", "scopie", "scopy", "grafia", "graphie", "graphy", "rragia", "rragie", "rrhagia", "rrhagie", "rrafia",
        "rraphie", "pexia", "pexie", "algia", "algie", "emia", "emie", "uria", "urie", "patia", "pathie", "penia",
        "penie", "megalia", "megalie", "ectasia", "ectasie", "trofia", "trophie", "plejia", "plegia", "plegie", "itis",
        "oma", "lisis", "lyse", "cele")
    for plural in ("", "s")
}, key=len, reverse=True))
MIN_COGNATE_STEM = 4


def cognate_key(norm: str) -> str | None:
    """The spelling-convention-free stem + canonical ending of a normalised word, or None when the stem
    is too short to say anything ('caso' and 'casa' must not meet)."""
    stem, ending = norm, ""
    for suffix, canonical in _ENDINGS:
        if norm.endswith(suffix) and len(norm) - len(suffix) >= MIN_COGNATE_STEM:
            stem, ending = norm[: -len(suffix)], canonical
            break
    for old, new in _LETTERS:
        stem = stem.replace(old, new)
    stem = _DOUBLE.sub(r"\1", _ES_START.sub("s", stem))
    return _COGNATE_MARK + stem + ending if len(stem) >= MIN_COGNATE_STEM else None


@dataclass
class Lexicon:
    """Words of one language. `in` is a trie lookup; `nearest` finds a word one edit away (candidates
    looked up in the trie) or, for long words, two edits away (rapidfuzz over a length bucket of stems
    and clinical words, so the search stays bounded)."""

    language: str
    trie: object  # marisa_trie.BytesTrie: normalised word -> b"t"|b"d" + the written form when it differs
    targets_path: Path
    dictionaries: list[str]
    missing: list[str]
    clinical_words: int
    words: int
    _targets: dict[int, list[str]] | None = field(default=None, repr=False)
    _near: dict[tuple[str, int], tuple[str, int] | None] = field(default_factory=dict, repr=False)

    def __contains__(self, norm: str) -> bool:
        return norm in self.trie

    def holds_as_written(self, word: str) -> bool:
        """The word, accents and all, is a form the lexicon holds ('ácaros'; not 'insuficiència', whose
        accent-free form is Spanish too): for deciding a language, where accents are the evidence."""
        written = word.casefold()
        norm = normalize_word(written)
        return any((v[1:].decode("utf-8") or norm) == written for v in self.trie.get(norm) or ())

    def writes(self, word: str) -> bool:
        """`holds_as_written`, or a clinical prefix + a word it holds as written ('bicúspide',
        'parauretral'): a compound keeps the accents of the word it is made of."""
        return self.holds_as_written(word) or _prefixed(word.casefold(), self.holds_as_written)

    def knows(self, norm: str) -> bool:
        """A word of the language: a dictionary form or clinical word, the cognate of a clinical word in
        this language or in English ('esplénicas', 'leucocitosis'), or an adjective of a known noun.
        English itself has no cognate step: its dictionaries are rich, and the cognate key's tolerance
        (doubled letters) would let 'apendicitis' pass."""
        if norm in self.trie or (self.language != "en" and self._cognate(norm)):
            return True
        for ending in ADJECTIVE_ENDINGS:
            stem = norm[: -len(ending)]
            if norm.endswith(ending) and len(stem) >= MIN_COGNATE_STEM and any(
                    stem + noun in self.trie or (self.language != "en" and self._cognate(stem + noun)) for noun in NOUN_ENDINGS):
                return True
        return False

    def undoubled(self, norm: str) -> str | None:
        """The word this one is with a doubled letter written once ('congestivve', 'cardiacca'), or None:
        looked at before cognates, whose keys ignore doubling."""
        for i in range(1, len(norm)):
            if norm[i] == norm[i - 1] and (candidate := norm[:i] + norm[i + 1:]) in self.trie:
                return candidate
        return None

    def compound(self, norm: str) -> bool:
        """A clinical prefix or combining form + a known word ('exfumador', 'neumoperitoneo'); or, when no
        word is one edit away ('sacroma' is 'sarcoma' mistyped, not a tumour of the sacrum), a word derived
        from a known noun ('trombosada') or a known word's stem + a closing combining form ('anexectomía')."""
        return _prefixed(norm, self.knows) or (self._derived(norm) and self.nearest(norm, 1) is None)

    def _derived(self, norm: str) -> bool:
        for ending, noun in DERIVED_ENDINGS:
            stem = norm[: -len(ending)]
            if norm.endswith(ending) and len(stem) >= MIN_COGNATE_STEM and stem + noun in self.trie:
                return True
        for suffix in CLINICAL_SUFFIXES:
            stem = norm[: -len(suffix)]
            if not norm.endswith(suffix):
                continue
            stems = [s for s in (stem, stem[:-1] if stem.endswith("o") else "") if len(s) >= MIN_COGNATE_STEM]
            if any(s + noun in self.trie for s in stems for noun in NOUN_ENDINGS):  # 'plaquetopenia' <- 'plaqueta'
                return True
        return False

    def near_cognate(self, norm: str) -> str | None:
        """The clinical word whose cognate key is one edit from this word's ('esferocrítica' ->
        'spherocytic'), written as the terminology or the medical dictionary writes it, or None."""
        key = cognate_key(norm)
        if key is None:
            return None
        for candidate in sorted(_edits1(key[1:])):
            values = self.trie.get(_COGNATE_MARK + candidate)
            if values:
                return values[0][1:].decode("utf-8") or candidate
        return None

    def _cognate(self, norm: str) -> bool:
        key = cognate_key(norm)
        return key is not None and key in self.trie

    def display(self, norm: str) -> str:
        values = self.trie.get(norm) or [b""]
        best = min(values, key=lambda v: v[:1] != _CLINICAL)
        return best[1:].decode("utf-8") or norm

    def _rank(self, norm: str) -> int:
        """0 for a clinical word, 1 for a general one: a suggestion prefers the terminology's words."""
        return 0 if any(v[:1] == _CLINICAL for v in self.trie.get(norm) or ()) else 1

    def nearest(self, norm: str, max_distance: int) -> tuple[str, int] | None:
        """(normalised word, edit distance) of the closest lexicon word within `max_distance`, or None."""
        key = (norm, max_distance)
        if key in self._near:
            return self._near[key]
        found = None
        hits = sorted({c for c in _edits1(norm) if c in self.trie}, key=lambda c: (self._rank(c), c))
        if hits:
            found = (hits[0], 1)
        elif max_distance >= 2:
            found = self._within_two(norm)
        if len(self._near) > 200_000:
            self._near.clear()
        self._near[key] = found
        return found

    def _within_two(self, norm: str) -> tuple[str, int] | None:
        from rapidfuzz import process
        from rapidfuzz.distance import Levenshtein

        if self._targets is None:
            self._targets = read_pickle(self.targets_path) or {}
        best = None
        for length in range(len(norm) - 2, len(norm) + 3):
            keys = self._targets.get(length)
            if not keys:
                continue
            for word, dist, _index in process.extract(norm, keys, scorer=Levenshtein.distance, score_cutoff=2, limit=8):
                rank = (dist, self._rank(word), abs(len(word) - len(norm)), word)
                if best is None or rank < best[0]:
                    best = (rank, word, int(dist))
        return (best[1], best[2]) if best else None


def _prefixed(word: str, known: Callable[[str], bool]) -> bool:
    """A clinical prefix or combining form + a word `known` accepts."""
    return any(word.startswith(prefix) and len(word) - len(prefix) >= MIN_COGNATE_STEM and known(word[len(prefix):])
               for prefix in CLINICAL_PREFIXES)


_ALPHABET = "abcdefghijklmnopqrstuvwxyz"


def _edits1(word: str) -> Iterator[str]:
    """Every string one deletion, transposition, substitution or insertion away (Norvig's candidates)."""
    letters = _ALPHABET + "".join(sorted({c for c in word if c not in _ALPHABET}))
    for i in range(len(word) + 1):
        head, tail = word[:i], word[i:]
        if tail:
            yield head + tail[1:]
            if len(tail) > 1:
                yield head + tail[1] + tail[0] + tail[2:]
            for c in letters:
                if c != tail[0]:
                    yield head + c + tail[1:]
        for c in letters:
            yield head + c + tail


def _cache_root(explicit: str | Path | None) -> Path:
    if explicit is not None:
        return Path(explicit).expanduser()
    from clinassay.terminology.cache import cache_root

    return cache_root() / "spelling"


def _digest(language: str, files: list[DictionaryFile], terminology: TerminologyLike, borrow: tuple[str, ...],
            min_target: int) -> str:
    imports = [(t.source, sorted((lang, len(labels)) for lang, labels in t.labels.items())) for t in terminology.imports]
    salt = repr((LEXICON_FORMAT, language, [str(f.dic) for f in files], terminology.source_digest, imports, borrow, min_target))
    return file_digest(*(p for f in files for p in (f.dic, f.aff)), Path(__file__), salt=salt)


_LOADED: dict[tuple[str, str], Lexicon] = {}


def load_lexicon(language: str, terminology: TerminologyLike, *,
                 dictionary_dirs: Iterable[str | Path] = DEFAULT_DICTIONARY_DIRS, borrow: Iterable[str] = (),
                 cache_dir: str | Path | None = None, min_target: int = 6) -> Lexicon:
    """The lexicon of `language`, from the disk cache when its inputs did not change, else built
    (a few seconds: pt_BR and it_IT expand to ~3 million forms) and cached. One instance per process."""
    import marisa_trie

    dictionary_dirs = tuple(dictionary_dirs)
    files, missing = find_dictionaries(language, dictionary_dirs)
    medical = [f for f in find_dictionaries("en", dictionary_dirs)[0] if f.name == MEDICAL_DICTIONARY]
    borrow = tuple(sorted(set(borrow) - {language}))
    digest = _digest(language, [*files, *medical], terminology, borrow, min_target)
    if (language, digest) in _LOADED:
        return _LOADED[(language, digest)]
    folder = _cache_root(cache_dir)
    trie_path, targets_path, meta_path = (folder / f"{language}-{digest}.{ext}" for ext in ("marisa", "targets", "meta"))
    meta = read_pickle(meta_path)
    trie = marisa_trie.BytesTrie()
    if isinstance(meta, dict) and trie_path.is_file() and targets_path.is_file():
        try:
            trie.mmap(str(trie_path))
        except (OSError, RuntimeError):
            meta = None
    else:
        meta = None
    if meta is None:
        trie, meta = _build(language, files, medical, terminology, borrow, min_target)
        _store(trie, meta, folder, language, digest)
    lexicon = Lexicon(language, trie, targets_path, [f.name for f in files], missing,
                      meta["clinical_words"], meta["words"])
    if not trie_path.is_file():  # a read-only cache: keep the targets in memory
        lexicon._targets = meta["targets"]
    _LOADED[(language, digest)] = lexicon
    return lexicon


def configured_lexicon(language: str, config, terminology: TerminologyLike) -> Lexicon:
    """The lexicon of `language` as `[audit.spelling]` (`config`) asks for it: the one the spelling check
    and the language check's dictionary vote both read."""
    return load_lexicon(language, terminology, dictionary_dirs=config.dictionary_dirs,
                        borrow=config.borrow.get(language, ()), cache_dir=config.cache_dir,
                        min_target=max(2, config.long_word - 2))


def _build(language: str, files: list[DictionaryFile], medical: list[DictionaryFile], terminology: TerminologyLike,
           borrow: tuple[str, ...], min_target: int):
    import marisa_trie

    general: dict[str, str] = {}
    stems: set[str] = set()
    for dictionary in files:
        for written, norm, is_stem in _dictionary_words(dictionary):
            if norm not in general:
                general[norm] = written
            if is_stem:
                stems.add(norm)
    clinical: dict[str, str] = {}
    for lang in (language, *borrow):
        for norm, written in terminology_words(terminology, lang).items():
            clinical.setdefault(norm, written)
    # cognate keys (first source wins): this language's clinical words, then English clinical words
    # (ICD-10-CM, then the medical dictionary)
    cognates: dict[str, str] = {}
    sources = [clinical.items(), terminology_words(terminology, "en").items()]
    sources += [((norm, written) for written, norm, _ in _dictionary_words(d)) for d in medical]
    for source in sources:
        for norm, written in source:
            key = cognate_key(norm)
            if key is not None and key not in cognates:
                cognates[key] = written
    entries = [(norm, _CLINICAL + (w.encode() if w != norm else b"")) for norm, w in clinical.items()]
    entries += [(norm, _GENERAL + (w.encode() if w != norm else b"")) for norm, w in general.items() if norm not in clinical]
    entries += [(key, _COGNATE + written.encode()) for key, written in cognates.items()]
    targets: dict[int, list[str]] = {}
    for norm in sorted(stems | set(clinical)):
        if len(norm) >= min_target:
            targets.setdefault(len(norm), []).append(norm)
    meta = {"format": LEXICON_FORMAT, "clinical_words": len(clinical), "words": len(entries) - len(cognates),
            "cognates": len(cognates), "targets": targets}
    return marisa_trie.BytesTrie(entries), meta


def _dictionary_words(dictionary: DictionaryFile) -> Iterator[tuple[str, str, bool]]:
    """(written lower-case, normalised, is a stem) for every word of every form of the dictionary."""
    for form, is_stem in expand_dictionary(dictionary):
        pairs = ((form, normalize_word(form)),) if form.isalpha() else spelling_tokens(form)
        for written, norm in pairs:
            yield written.lower(), norm, is_stem


def _store(trie, meta: dict, folder: Path, language: str, digest: str) -> None:
    """Trie, targets and metadata, each written atomically; the metadata last (it marks a complete set)."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{language}-", suffix=".tmp")
        os.close(fd)
        try:
            trie.save(tmp)
            os.replace(tmp, folder / f"{language}-{digest}.marisa")
        finally:
            Path(tmp).unlink(missing_ok=True)
        write_pickle(folder / f"{language}-{digest}.targets", meta["targets"])
        write_pickle(folder / f"{language}-{digest}.meta", {k: v for k, v in meta.items() if k != "targets"})
        for stale in folder.glob(f"{language}-*.*"):
            if digest not in stale.name:
                stale.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not cache the %s spelling lexicon in %s (%s): it is rebuilt next time", language, folder, exc)


def forget_loaded() -> None:
    """Drop the process-wide lexicons (tests that change the dictionaries)."""
    _LOADED.clear()
