"""Known faults planted into copies of a user's own pairs, each copy marked with its kind and with where
its planted text came from, so that calibration (audit/calibration.py) can say what the audit catches.

The planted text must not come only from the cue lists the checks use (audit/lexicon.py): a check that
recognises its own list would look perfect. So negation, laterality and sex are planted from two
sources, reported apart:

- `check_cues`: a cue taken from (or matched by) the lists the rules read — what the rules were written for;
- `own`: this module's phrasings, chosen to be ordinary clinical writing the lists do not hold: other
  constructions ("se ha descartado X", "sin datos que sugieran X", "on ne retrouve pas de X", "X was not
  confirmed"), abbreviations ("izda.", "sx", "lt"), other words for the sex ("señora", "gentleman").
  tests/test_audit_calibration.py checks that none of them is an entry of (or matched by) those lists.

The other kinds name their phrasing by construction: the terminology (code swaps, labels in another
language), the edit made (misspellings, near duplicates), the identifier type, the nonsense generator.
Every draw is seeded per (seed, kind, pair): the same seed gives the same plants, and adding a kind
changes no other kind's plants.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, Literal, Sequence

from clinassay.audit.text import normalize_text
from clinassay.terminology.protocol import TerminologyLike

FaultKind = Literal["other_chapter", "same_chapter", "sibling", "negation", "laterality", "sex", "wrong_language",
                    "near_duplicate", "eval_leak", "identifier", "misspelling", "nonsense"]
FAULT_KINDS: tuple[FaultKind, ...] = ("other_chapter", "same_chapter", "sibling", "negation", "laterality", "sex",
                                      "wrong_language", "near_duplicate", "eval_leak", "identifier", "misspelling",
                                      "nonsense")
DESCRIPTIONS: dict[str, str] = {
    "other_chapter": "code swapped for one of another chapter",
    "same_chapter": "code swapped for another category of the same chapter",
    "sibling": "code swapped for a sibling in the same category",
    "negation": "a negation of the finding added, in the pair's language",
    "laterality": "the side the mention states flipped against the code's side",
    "sex": "the other sex stated for a sex-specific code",
    "wrong_language": "the mention replaced by a label of its code in another language",
    "near_duplicate": "a near duplicate of another sampled pair (same code)",
    "eval_leak": "an evaluation mention leaked in (with --eval-set)",
    "identifier": "an identifier added (national ID, phone, name, record number, e-mail)",
    "misspelling": "one character edit in a content word",
    "nonsense": "the mention replaced by text that is not clinical language",
}
INTENDED: dict[str, tuple[str, frozenset[str] | None]] = {
    # the check (and reasons) meant to catch each kind; a copy caught by another check still counts as caught
    "other_chapter": ("consistency", frozenset({"other_chapter", "same_chapter", "sibling", "sibling_term", "excludes1", "jury"})),
    "same_chapter": ("consistency", frozenset({"other_chapter", "same_chapter", "sibling", "sibling_term", "excludes1", "jury"})),
    "sibling": ("consistency", frozenset({"other_chapter", "same_chapter", "sibling", "sibling_term", "excludes1", "jury"})),
    "negation": ("consistency", frozenset({"negated"})),
    "laterality": ("consistency", frozenset({"laterality"})),
    "sex": ("consistency", frozenset({"sex"})),
    "wrong_language": ("language", None),
    "near_duplicate": ("duplicate", None),
    "eval_leak": ("leakage", None),
    "identifier": ("phi", None),
    "misspelling": ("spelling", None),
    "nonsense": ("validity", None),
}

# ---- negation: this module's own phrasings ({m} is the mention) -------------------------------------------
OWN_NEGATION: dict[str, list[str]] = {
    "es": ["se ha descartado {m}", "sin datos que sugieran {m}", "no compatible con {m}", "no se confirma {m}",
           "se excluyó {m}"],
    "ca": ["s'ha descartat {m}", "sense dades que suggereixin {m}", "no compatible amb {m}", "no es confirma {m}"],
    "pt": ["foi afastada a hipótese de {m}", "sem dados que sugiram {m}", "não compatível com {m}",
           "não se confirma {m}"],
    "fr": ["on ne retrouve pas de {m}", "pas d'argument en faveur de {m}", "non compatible avec {m}",
           "l'hypothèse de {m} a été écartée"],
    "it": ["è stata esclusa la diagnosi di {m}", "nessun dato a favore di {m}", "non compatibile con {m}",
           "non si conferma {m}"],
    "en": ["{m} was not confirmed", "no features to suggest {m}", "not consistent with {m}",
           "findings argue against {m}", "negative workup for {m}"],
}

# ---- laterality: side words by language; full words (the rules' lists match them) and abbreviations ------
# (right form, left form) pairs; a mention's word is replaced by its opposite, keeping gender and number
SIDE_WORDS: dict[str, list[tuple[str, str]]] = {
    "es": [("derecho", "izquierdo"), ("derecha", "izquierda"), ("derechos", "izquierdos"), ("derechas", "izquierdas")],
    "ca": [("dret", "esquerre"), ("dreta", "esquerra"), ("drets", "esquerres"), ("dretes", "esquerres")],
    "pt": [("direito", "esquerdo"), ("direita", "esquerda"), ("direitos", "esquerdos"), ("direitas", "esquerdas")],
    "fr": [("droit", "gauche"), ("droite", "gauche"), ("droits", "gauches"), ("droites", "gauches")],
    "it": [("destro", "sinistro"), ("destra", "sinistra"), ("destri", "sinistri"), ("destre", "sinistre")],
    "en": [("right", "left")],
}
SIDE_PHRASE: dict[str, tuple[str, str]] = {  # appended when the mention names no side: (right, left)
    "es": ("lado derecho", "lado izquierdo"), "ca": ("costat dret", "costat esquerre"),
    "pt": ("lado direito", "lado esquerdo"), "fr": ("côté droit", "côté gauche"),
    "it": ("lato destro", "lato sinistro"), "en": ("right side", "left side"),
}
OWN_SIDE: dict[str, tuple[str, str]] = {  # abbreviations clinicians write: (right, left)
    "es": ("der.", "izda."), "ca": ("dta.", "esq."), "pt": ("dir.", "esq."), "fr": ("côté D", "côté G"),
    "it": ("dx", "sx"), "en": ("rt", "lt"),
}

# ---- sex: the other sex stated; (male, female) templates --------------------------------------------------
CUE_SEX: dict[str, tuple[str, str]] = {
    "es": ("{m} en varón", "{m} en mujer"), "ca": ("{m} en home", "{m} en dona"),
    "pt": ("{m} em homem", "{m} em mulher"), "fr": ("{m} chez un homme", "{m} chez une femme"),
    "it": ("{m} in uomo", "{m} in donna"), "en": ("{m} in a man", "{m} in a woman"),
}
OWN_SEX: dict[str, tuple[str, str]] = {
    "es": ("{m} en un señor de 58 años", "{m} en una señora de 58 años"),
    "ca": ("{m} en un senyor de 58 anys", "{m} en una senyora de 58 anys"),
    "pt": ("{m} num senhor de 58 anos", "{m} numa senhora de 58 anos"),
    "fr": ("{m} chez un monsieur de 58 ans", "{m} chez une dame de 58 ans"),
    "it": ("{m} in un signore di 58 anni", "{m} in una signora di 58 anni"),
    "en": ("{m} in a 58-year-old gentleman", "{m} in a 58-year-old lady"),
}

# ---- identifiers --------------------------------------------------------------------------------------------
IDENTIFIER_TYPES = ("national_id", "phone", "name", "record_number", "email")
NAMES: dict[str, list[str]] = {  # full names, not the most common first names a detector would list
    "es": ["Iker Etxeberria", "Rocío Valdés", "Aitana Ferrer", "Unai Lasa"],
    "ca": ["Pau Vilaró", "Laia Puigdomènech", "Arnau Soler", "Berta Roig"],
    "pt": ["Thiago Sousa", "Inês Valadares", "Rodrigo Matos", "Leonor Brandão"],
    "fr": ["Gaëlle Roux", "Théo Lemoine", "Margaux Perrin", "Baptiste Girard"],
    "it": ["Niccolò Ferri", "Ilaria Conti", "Tommaso Galli", "Beatrice Longo"],
    "en": ["Brandon Hayes", "Megan Holloway", "Tyler Brooks", "Ashley Whitmore"],
}
PHONE: dict[str, str] = {"es": "tel. 6{0}{1} {2}{3}{4} {5}{6}{7}", "ca": "tel. 6{0}{1} {2}{3}{4} {5}{6}{7}",
                         "pt": "tel. 91{0} {1}{2}{3} {4}{5}{6}", "fr": "tél. 06 {0}{1} {2}{3} {4}{5} {6}{7}",
                         "it": "tel. 33{0} {1}{2}{3} {4}{5}{6}{7}", "en": "phone ({0}{1}{2}) {3}{4}{5}-{6}{7}{0}{1}"}
RECORD: dict[str, str] = {"es": "NHC {0}", "ca": "NHC {0}", "pt": "prontuário {0}", "fr": "dossier {0}",
                          "it": "cartella {0}", "en": "MRN {0}"}
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"

# ---- nonsense -------------------------------------------------------------------------------------------------
NONSENSE_TYPES = ("syllables", "keyboard", "everyday")
_SYLLABLES = ("bra", "tel", "qui", "mon", "sor", "fu", "lan", "dre", "pi", "zo", "ven", "gha", "tru", "mel", "xo")
_KEYBOARD = ("asdfg", "qwerty", "zxcvb", "hjkl", "poiuy", "mnbvc", "wert", "dfgh")
EVERYDAY: dict[str, list[str]] = {
    "es": ["mañana vamos al mercado con los niños", "el tren de las nueve llega tarde", "me gusta el café con leche"],
    "ca": ["demà anem al mercat amb els nens", "el tren de les nou arriba tard", "m'agrada el cafè amb llet"],
    "pt": ["amanhã vamos ao mercado com as crianças", "o comboio das nove chega atrasado", "gosto de café com leite"],
    "fr": ["demain nous allons au marché avec les enfants", "le train de neuf heures arrive en retard",
           "j'aime le café au lait"],
    "it": ["domani andiamo al mercato con i bambini", "il treno delle nove arriva in ritardo", "mi piace il caffè con il latte"],
    "en": ["tomorrow we are going to the market with the kids", "the nine o'clock train is late",
           "I like my coffee with milk"],
}

# ---- misspellings -----------------------------------------------------------------------------------------------
EDITS = ("substitution", "deletion", "transposition", "doubling")
_KEYS = ["qwertyuiop", "asdfghjklñ", "zxcvbnm"]
_NEIGHBOURS: dict[str, str] = {}
for _r, _row in enumerate(_KEYS):
    for _c, _ch in enumerate(_row):
        near = [_row[j] for j in (_c - 1, _c + 1) if 0 <= j < len(_row)]
        for other in (_r - 1, _r + 1):
            if 0 <= other < len(_KEYS):
                near += [_KEYS[other][j] for j in (_c - 1, _c) if 0 <= j < len(_KEYS[other])]
        _NEIGHBOURS[_ch] = "".join(sorted(set(near) - {"ñ"}))
_FUNCTION_WORDS = frozenset("""para como entre sobre desde hasta contra segun durante mediante with without from
into about other dans avec pour sans sous entre dentro della delle degli nella nelle senza sobre pelas pelos
numa então""".split())
_TOKEN = re.compile(r"[^\W\d_]+", re.UNICODE)


@dataclass(frozen=True)
class Planted:
    """One faulty copy of an original: its kind, where its planted text came from, and the pair itself."""

    kind: FaultKind
    phrasing: str
    base: int  # index of the original in the sample
    record: dict[str, Any]


def _rng(seed: int, kind: str, index: int) -> random.Random:
    return random.Random(f"clinassay-calibration:{seed}:{kind}:{index}")


def _lower_first(mention: str) -> str:
    """"Neumonía" -> "neumonía" inside a sentence; acronyms ("ITU", "EPOC") stay as written."""
    if len(mention) > 1 and mention[0].isupper() and mention[1].islower():
        return mention[0].lower() + mention[1:]
    return mention


def _with_mention(template: str, mention: str) -> str:
    return template.format(m=mention if template.startswith("{m}") else _lower_first(mention))


def _dni(rng: random.Random) -> str:
    number = rng.randrange(10_000_000, 99_999_999)
    return f"DNI {number}{_DNI_LETTERS[number % 23]}"


def _cpf(rng: random.Random) -> str:
    digits = [rng.randrange(10) for _ in range(9)]
    for weight in (10, 11):
        total = sum(d * w for d, w in zip(digits, range(weight, 1, -1)))
        digits.append((total * 10 % 11) % 10)
    s = "".join(map(str, digits))
    return f"CPF {s[:3]}.{s[3:6]}.{s[6:9]}-{s[9:]}"


def national_id(language: str, rng: random.Random) -> str:
    """A well-formed national ID of the pair's country (DNI with its check letter, CPF with its check
    digits, NIR, codice fiscale, SSN)."""
    if language in ("es", "ca"):
        return _dni(rng)
    if language == "pt":
        return _cpf(rng)
    if language == "fr":
        return f"NIR 1 {rng.randrange(40, 99)} {rng.randrange(1, 12):02d} 75 {rng.randrange(100, 999)} {rng.randrange(100, 999)} {rng.randrange(10, 97)}"
    if language == "it":
        letters = "".join(rng.choice("BCDFGLMNPRSTVZ") for _ in range(6))
        return f"CF {letters}{rng.randrange(40, 99)}{rng.choice('ABCDEHLMPRST')}{rng.randrange(10, 31)}F{rng.randrange(100, 999)}{rng.choice('ABCDEFGHJKLMNPRSTVWXYZ')}"
    return f"SSN {rng.randrange(100, 899)}-{rng.randrange(10, 99)}-{rng.randrange(1000, 9999)}"


def identifier(language: str, kind: str, rng: random.Random) -> str:
    lang = language if language in NAMES else "en"
    if kind == "national_id":
        return national_id(lang, rng)
    if kind == "phone":
        return PHONE[lang].format(*[rng.randrange(10) for _ in range(8)])
    if kind == "name":
        return rng.choice(NAMES[lang])
    if kind == "record_number":
        return RECORD[lang].format(rng.randrange(1_000_000, 9_999_999))
    first, last = normalize_text(rng.choice(NAMES[lang])).split()[:2]
    return f"{first}.{last}@{rng.choice(['gmail.com', 'correo.net', 'mail.org'])}"


def nonsense(language: str, kind: str, rng: random.Random) -> str:
    if kind == "syllables":
        return " ".join("".join(rng.choice(_SYLLABLES) for _ in range(rng.randrange(2, 4)))
                        for _ in range(rng.randrange(3, 5)))
    if kind == "keyboard":
        return " ".join(rng.sample(_KEYBOARD, 3))
    return rng.choice(EVERYDAY.get(language, EVERYDAY["en"]))


def misspell(mention: str, rng: random.Random) -> tuple[str, str] | None:
    """One edit in a content word (5+ letters, not an acronym, not a function word), never its first
    letter: (new mention, edit), or None when the mention has no such word."""
    words = [m for m in _TOKEN.finditer(mention)
             if len(m.group()) >= 5 and not m.group().isupper() and m.group().lower() not in _FUNCTION_WORDS]
    if not words:
        return None
    match = rng.choice(words)
    word = match.group()
    positions = [i for i in range(1, len(word)) if word[i].lower() in _NEIGHBOURS]
    if not positions:
        return None
    edit = rng.choice(EDITS)
    i = rng.choice(positions)
    if edit == "substitution":
        new = word[:i] + rng.choice(_NEIGHBOURS[word[i].lower()]) + word[i + 1:]
    elif edit == "deletion":
        new = word[:i] + word[i + 1:]
    elif edit == "transposition":
        i = min(i, len(word) - 2)
        new = word[:i] + word[i + 1] + word[i] + word[i + 2:]
    else:
        new = word[:i] + word[i] + word[i:]
    if new == word:
        new, edit = word[:i] + word[i] + word[i:], "doubling"
    return mention[:match.start()] + new + mention[match.end():], edit


def surface_variant(mention: str, rng: random.Random) -> str:
    """The same mention after normalisation, written differently (case, a full stop, accents)."""
    from clinassay.audit.text import strip_accents

    options = [mention.upper() + ".", mention[:1].upper() + mention[1:] + ".", strip_accents(mention) + " ."]
    options = [o for o in options if o != mention and normalize_text(o) == normalize_text(mention)]
    return rng.choice(options) if options else mention + "."


def inflected(mention: str, rng: random.Random) -> str | None:
    """One content word's number changed ("infección urinaria" -> "infecciones urinaria"-like slips are
    what near duplicates are: the last word of 4+ letters gains or loses its plural 's')."""
    words = [m for m in _TOKEN.finditer(mention) if len(m.group()) >= 4 and not m.group().isupper()]
    if not words:
        return None
    match = words[-1]
    word = match.group()
    new = word[:-1] if word.endswith("s") and len(word) >= 5 else word + ("s" if word[-1] in "aeiouáéíóú" else "es")
    return mention[:match.start()] + new + mention[match.end():]


class Planter:
    """Plants every kind into copies of the sampled originals; constructing it loads nothing."""

    def __init__(self, terminology: TerminologyLike, *, languages: Sequence[str], eval_items: Sequence[Any] = ()) -> None:
        self.terminology = terminology
        self.languages = list(languages)
        self.eval_items = list(eval_items)
        self._swapper = None

    @property
    def swapper(self):
        if self._swapper is None:
            from clinassay.audit.faults import CodeSwapper

            self._swapper = CodeSwapper(self.terminology)
        return self._swapper

    def kinds(self) -> tuple[FaultKind, ...]:
        return tuple(k for k in FAULT_KINDS if k != "eval_leak" or self.eval_items)

    def plant(self, originals: Sequence[dict[str, Any]], *, seed: int = 0) -> list[Planted]:
        """One copy per original and kind where the kind applies (a sex only for sex-specific codes, a side
        only where a side can contradict the code), in kind order."""
        out: list[Planted] = []
        for kind in self.kinds():
            for index, original in enumerate(originals):
                made = self.plant_one(kind, original, _rng(seed, kind, index))
                if made is None:
                    continue
                record, phrasing = made
                record = {**original, **record, "id": f"{original['id']}-{kind}", "fault": kind,
                          "phrasing": phrasing, "base": original["id"]}
                out.append(Planted(kind, phrasing, index, record))
        return out

    def plant_one(self, kind: FaultKind, pair: dict[str, Any], rng: random.Random) -> tuple[dict[str, Any], str] | None:
        """The changed fields of the faulty copy and its phrasing source, or None where `kind` does not apply."""
        mention, language = pair["mention"], pair["language"]
        lang = language if language in OWN_NEGATION else "en"
        entry = self.terminology.find(pair["code"])
        if kind in ("other_chapter", "same_chapter", "sibling"):
            if entry is None:
                return None
            wrong = self.swapper.swap(entry.code, kind, rng)
            return ({"code": wrong, "gold_code": entry.code}, "terminology") if wrong else None
        if kind == "negation":
            source = rng.choice(("check_cues", "own"))
            return {"mention": self._negated(mention, lang, source, rng)}, source
        if kind == "laterality":
            return self._flip_side(pair, entry, lang, rng)
        if kind == "sex":
            return self._other_sex(mention, entry, lang, rng)
        if kind == "wrong_language":
            return self._other_language(mention, entry, language, rng)
        if kind == "near_duplicate":
            if rng.random() < 0.5:
                return {"mention": surface_variant(mention, rng)}, "surface"
            new = inflected(mention, rng)
            return ({"mention": new}, "inflection") if new else ({"mention": surface_variant(mention, rng)}, "surface")
        if kind == "eval_leak":
            item = rng.choice(self.eval_items)
            if rng.random() < 0.5:
                return {"mention": item.mention, "code": item.code, "language": item.language}, "verbatim"
            return {"mention": surface_variant(item.mention, rng), "code": item.code, "language": item.language}, "surface"
        if kind == "identifier":
            what = rng.choice(IDENTIFIER_TYPES)
            return {"mention": f"{mention}, {identifier(lang, what, rng)}"}, what
        if kind == "misspelling":
            made = misspell(mention, rng)
            return ({"mention": made[0]}, made[1]) if made else None
        if kind == "nonsense":
            what = rng.choice(NONSENSE_TYPES)
            return {"mention": nonsense(lang, what, rng)}, what
        raise ValueError(f"The 'kind' parameter of Planter.plant_one must be one of {FAULT_KINDS}. Got {kind!r} instead.")

    # ---- per kind ----
    @staticmethod
    def _negated(mention: str, lang: str, source: str, rng: random.Random) -> str:
        if source == "own":
            return _with_mention(rng.choice(OWN_NEGATION[lang]), mention)
        from clinassay.audit.lexicon import NEGATION

        cues = NEGATION[lang]
        pre = [c for c in cues["pre"] if " " in c] or cues["pre"]
        if rng.random() < 0.7 or not cues["post"]:
            return f"{rng.choice(pre)} {_lower_first(mention)}"
        return f"{mention} {rng.choice(cues['post'])}"

    def _flip_side(self, pair: dict[str, Any], entry: Any, lang: str,
                   rng: random.Random) -> tuple[dict[str, Any], str] | None:
        """The mention made to state the side opposite the code's. A code without a side whose category
        has right and left codes becomes its right (or left) sibling, and the mention states the other side."""
        from clinassay.audit.clinical_rules import code_side

        if entry is None:
            return None
        mention, changes = pair["mention"], {}
        side = code_side(entry.title)
        if side not in ("right", "left"):
            if side is not None or self._states_side(mention, lang):
                return None
            sided = [c for c in self.terminology.siblings(entry.code)
                     if (e := self.terminology.find(c)) is not None and e.billable and code_side(e.title) in ("right", "left")]
            if not sided:
                return None
            chosen = rng.choice(sided)
            side = code_side(self.terminology.find(chosen).title)
            changes = {"code": chosen, "gold_code": entry.code}
        opposite = "left" if side == "right" else "right"
        source = rng.choice(("check_cues", "own"))
        column = 1 if opposite == "left" else 0
        new, replaced = mention, False
        for pair_words in SIDE_WORDS[lang]:
            word, other = pair_words[1 - column], pair_words[column]
            pattern = re.compile(rf"\b{re.escape(word)}\b", re.IGNORECASE)
            if pattern.search(new):
                new = pattern.sub(other if source == "check_cues" else OWN_SIDE[lang][column], new)
                replaced = True
        if not replaced:
            phrase = SIDE_PHRASE[lang][column] if source == "check_cues" else OWN_SIDE[lang][column]
            new = f"{mention} {phrase}" if lang != "en" or source == "own" else f"{mention}, {phrase}"
        return {**changes, "mention": new}, source

    @staticmethod
    def _states_side(mention: str, lang: str) -> bool:
        norm = normalize_text(mention)
        words = {w for pair in SIDE_WORDS[lang] for w in pair}
        return any(w in words for w in norm.split())

    def _other_sex(self, mention: str, entry: Any, lang: str,
                   rng: random.Random) -> tuple[dict[str, Any], str] | None:
        from clinassay.audit.clinical_rules import sex_of_code

        restriction = sex_of_code(entry.code, self.terminology) if entry is not None else None
        if restriction is None:
            return None
        source = rng.choice(("check_cues", "own"))
        templates = (CUE_SEX if source == "check_cues" else OWN_SEX)[lang]
        return {"mention": _with_mention(templates[0 if restriction == "female" else 1], mention)}, source

    def _other_language(self, mention: str, entry: Any, language: str,
                        rng: random.Random) -> tuple[dict[str, Any], str] | None:
        """A label of the code in another configured language (English titles where none is configured)."""
        if entry is None:
            return None
        norm = normalize_text(mention)
        candidates = []
        for other in [l for l in self.languages if l != language] or ["en"]:
            label = self.terminology.label(entry.code, other)
            if label is not None and label.text and normalize_text(label.text) != norm:
                candidates.append((other, label.text))
        if not candidates:
            return None
        other, text = rng.choice(candidates)
        return {"mention": text}, f"label_{other}"
