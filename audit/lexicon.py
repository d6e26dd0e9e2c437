"""Word lists for the clinical rules, in the six languages, written accent-free and lower-case because
they match `normalize_text` output. Kept as data in one place so they can be reviewed by a clinician."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clinassay.terminology.protocol import TerminologyLike

# ---- negation (NegEx / ConText style, see audit/negation.py) -------------------------------------------
# Per language:
#   pre        negate what follows ("se descarta X", "sin X", "no evidence of X")
#   post       negate what precedes them ("X descartada", "X ruled out")
#   pseudo     look like triggers but do not negate ("sin especificar", "not elsewhere classified")
#   uncertain  hedges, kept apart from negation ("no se descarta", "posible", "rule out")
#   terminate  end a trigger's scope ("pero", "but")
#   filler     words that are neither finding nor cue ("paciente sin fiebre" negates the whole mention)
# Written accent-free and lower-case (normalize_text output: "n'a pas" -> "n a pas"). Longer cues win
# over shorter ones at the same position, so "no se descarta" (uncertain) beats "no" (pre).
NEGATION: dict[str, dict[str, list[str]]] = {
    "es": {
        "pre": ["se descarta", "se descartan", "se descarto", "se descartaron", "descartandose", "descarta",
                "se excluye", "sin evidencia de", "sin evidencias de", "sin signos de", "sin datos de",
                "sin hallazgos de", "sin indicios de", "sin imagenes de", "sin presencia de", "ausencia de",
                "no hay", "no habia", "no presenta", "no presentaba", "no presento", "no se observa",
                "no se observan", "no se objetiva", "no se objetivan", "no se evidencia", "no se evidencian",
                "no se aprecia", "no se aprecian", "no se detecta", "no se detectan", "no se identifica",
                "no se identifican", "no muestra", "no refiere", "no evidencia de", "no signos de", "niega",
                "niegan", "negando", "negativo para", "negativa para", "negativos para", "negativas para",
                "libre de", "libres de", "exento de", "exenta de",
                "sin", "no", "ni", "nunca"],
        "post": ["descartado", "descartada", "descartados", "descartadas", "fue descartado", "fue descartada",
                 "excluido", "excluida", "no objetivado", "no objetivada", "no detectado", "no detectada"],
        "pseudo": ["sin especificar", "no especificado", "no especificada", "no especificados", "no especificadas",
                   "sin otra especificacion", "sin especificacion", "no clasificado en otra parte",
                   "no clasificada en otra parte", "no clasificados en otra parte", "no clasificadas en otra parte",
                   "no clasificable", "no clasificables", "no solo", "no solamente", "sin cambios",
                   "sin cambio", "no hodgkin", "no filiado", "no filiada", "no obstante", "sin mas", "no especifico",
                   "no especifica", "no especificos", "no especificas", "con o sin"],
        "uncertain": ["no se descarta", "no se descartan", "no se puede descartar", "no descartado",
                      "no descartada", "sin descartar", "a descartar", "descartar", "posible", "posibles",
                      "probable", "probables", "sospecha de", "sospecha", "sospechoso de", "compatible con",
                      "sugestivo de", "sugestiva de", "sugerente de", "dudoso", "dudosa", "impresiona de"],
        "terminate": ["pero", "aunque", "sino", "excepto", "salvo", "con", "presenta", "refiere", "secundario a",
                      "secundaria a", "debido a", "por"],
        "filler": ["paciente", "el", "la", "los", "las", "se", "que", "y"],
    },
    "ca": {
        "pre": ["es descarta", "es descarten", "es va descartar", "descarta", "s exclou", "sense evidencia de",
                "sense signes de", "sense dades de", "sense indicis de", "absencia de", "no hi ha", "no hi havia",
                "no presenta", "no presentava", "no s observa", "no s observen", "no s objectiva",
                "no s objectiven", "no s evidencia", "no s aprecia", "no es detecta", "no mostra", "no refereix",
                "nega", "neguen", "negatiu per", "negativa per", "negatius per", "lliure de",
                "sense", "no", "ni", "mai"],
        "post": ["descartat", "descartada", "descartats", "descartades", "exclos", "exclosa"],
        "pseudo": ["no especificat", "no especificada", "no especificats", "no especificades", "sense especificar",
                   "sense especificacio", "no classificat en altres llocs", "no classificada en altres llocs",
                   "no classificat en cap altre lloc", "no classificada en cap altre lloc", "no hodgkin",
                   "sense canvis", "no nomes", "no obstant", "no especific", "no especifica", "no especifics",
                   "no especifiques", "amb o sense"],
        "uncertain": ["no es descarta", "no es pot descartar", "no descartat", "no descartada", "a descartar",
                      "descartar", "possible", "possibles", "probable", "probables", "sospita de", "sospita",
                      "compatible amb", "suggestiu de", "suggestiva de", "dubtos", "dubtosa"],
        "terminate": ["pero", "tot i que", "encara que", "sino", "excepte", "amb", "presenta", "refereix",
                      "secundari a", "secundaria a", "per"],
        "filler": ["pacient", "el", "la", "els", "les", "es", "que", "i"],
    },
    "pt": {
        "pre": ["descarta se", "descartou se", "foi descartado", "foi descartada", "exclui se", "sem evidencia de",
                "sem evidencias de", "sem sinais de", "sem indicios de", "sem achados de", "ausencia de",
                "nao ha", "nao havia", "nao apresenta", "nao apresentava", "nao se observa", "nao se observam",
                "nao se evidencia", "nao se evidenciam", "nao se detecta", "nao se identifica", "nao mostra",
                "nao refere", "nega", "negam", "negativo para", "negativa para", "negativos para", "livre de",
                "isento de", "isenta de",
                "sem", "nao", "nem", "nunca"],
        "post": ["descartado", "descartada", "descartados", "descartadas", "excluido", "excluida",
                 "nao detectado", "nao detectada"],
        "pseudo": ["nao especificado", "nao especificada", "nao especificados", "nao especificadas",
                   "sem especificacao", "sem outra especificacao", "nao classificado em outra parte",
                   "nao classificada em outra parte", "nao classificados em outra parte",
                   "nao classificadas em outra parte", "nao hodgkin", "sem alteracoes", "sem alteracao",
                   "nao so", "nao apenas", "nao somente", "nao especifico", "nao especifica",
                   "nao especificos", "nao especificas", "com ou sem"],
        "uncertain": ["nao se descarta", "nao se pode descartar", "nao descartado", "nao descartada",
                      "a descartar", "descartar", "possivel", "possiveis", "provavel", "provaveis",
                      "suspeita de", "suspeita", "suspeito de", "compativel com", "sugestivo de",
                      "sugestiva de", "duvidoso", "duvidosa"],
        "terminate": ["mas", "porem", "contudo", "embora", "entretanto", "exceto", "com", "apresenta", "refere",
                      "secundario a", "secundaria a", "devido a", "por"],
        "filler": ["paciente", "doente", "o", "a", "os", "as", "que", "e"],
    },
    "fr": {
        "pre": ["absence de", "absence d", "pas de", "pas d", "aucun", "aucune", "aucun signe de",
                "ne presente pas", "ne presentait pas", "n a pas", "n y a pas", "il n y a pas", "n est pas",
                "negatif pour", "negative pour", "negatifs pour", "nie", "nient", "sans signe de",
                "sans signes de", "sans evidence de", "sans argument pour", "on elimine", "on exclut",
                "elimination de", "exclusion de",
                "sans", "ni", "jamais"],
        "post": ["exclu", "exclue", "exclus", "exclues", "elimine", "eliminee", "ecarte", "ecartee",
                 "non retrouve", "non retrouvee", "absent", "absente", "absents", "absentes"],
        "pseudo": ["sans precision", "sans autre indication", "sans autre precision", "non precise",
                   "non precisee", "non precises", "non precisees", "non specifie", "non specifiee",
                   "non specifies", "non specifiees", "non classe ailleurs", "non classee ailleurs",
                   "non classes ailleurs", "non classees ailleurs", "sans modification", "sans changement",
                   "pas seulement", "non seulement", "non hodgkinien", "non hodgkiniens", "non hodgkin",
                   "pas toujours", "non specifique", "non specifiques", "avec ou sans"],
        "uncertain": ["pas exclu", "pas exclue", "non exclu", "non exclue", "n est pas exclu",
                      "n est pas exclue", "ne peut etre exclu", "ne peut etre exclue", "possible", "possibles",
                      "probable", "probables", "suspicion de", "suspicion d", "suspect", "suspecte",
                      "evocateur de", "evocatrice de", "compatible avec", "a eliminer", "a exclure",
                      "douteux", "douteuse"],
        "terminate": ["mais", "cependant", "bien que", "toutefois", "pourtant", "neanmoins", "sauf", "avec",
                      "presente", "secondaire a", "due a", "du a", "par"],
        "filler": ["patient", "patiente", "le", "la", "les", "l", "il", "elle", "y", "et"],
    },
    "it": {
        "pre": ["si esclude", "si escludono", "escluso", "esclusa", "non evidenza di", "nessuna evidenza di",
                "nessun segno di", "nessun segni di", "senza segni di", "senza evidenza di", "assenza di",
                "non presenta", "non presentava", "non si osserva", "non si osservano", "non si evidenzia",
                "non si evidenziano", "non si rileva", "non si rilevano", "non mostra", "non riferisce", "nega",
                "negano", "negativo per", "negativa per", "negativi per", "libero da", "libera da",
                "senza", "non", "nessun", "nessuno", "nessuna", "mai"],
        "post": ["escluso", "esclusa", "esclusi", "escluse", "non rilevato", "non rilevata", "assente",
                 "assenti"],
        "pseudo": ["non specificato", "non specificata", "non specificati", "non specificate",
                   "non classificato altrove", "non classificata altrove", "non classificati altrove",
                   "non classificate altrove", "non hodgkin", "senza modificazioni", "senza variazioni",
                   "non solo", "non soltanto", "senza specificazione", "non specifico",
                   "non specifica", "non specifici", "non specifiche", "con o senza"],
        "uncertain": ["non si esclude", "non si puo escludere", "non escluso", "non esclusa", "da escludere",
                      "escludere", "possibile", "possibili", "probabile", "probabili", "sospetto", "sospetta",
                      "sospetto di", "compatibile con", "suggestivo di", "suggestiva di", "dubbio", "dubbia"],
        "terminate": ["ma", "pero", "tuttavia", "sebbene", "anche se", "eccetto", "tranne", "con", "presenta",
                      "riferisce", "secondario a", "secondaria a", "dovuto a", "dovuta a", "per"],
        "filler": ["paziente", "il", "lo", "la", "i", "gli", "le", "si", "che", "e"],
    },
    "en": {
        "pre": ["no evidence of", "no signs of", "no sign of", "no findings of", "no history of",
                "negative for", "was negative for", "ruled out", "rules out", "denies", "denied", "denying",
                "without evidence of", "without signs of", "without any", "absence of", "free of",
                "there is no", "there was no", "no suspicious", "not demonstrated", "fails to reveal",
                "no new", "not due to",
                "no", "not", "without", "never", "nor"],
        "post": ["ruled out", "was ruled out", "has been ruled out", "is ruled out", "excluded",
                 "was excluded", "is excluded", "not seen", "not present", "not found", "not detected",
                 "was negative", "is absent", "absent"],
        "pseudo": ["not specified", "not otherwise specified", "not elsewhere classified", "no change",
                   "no changes", "no significant change", "not only", "no increase", "not certain whether",
                   "not necessarily", "gram negative", "not drug resistant", "with or without"],
        "uncertain": ["cannot be ruled out", "can not be ruled out", "cannot rule out", "can not rule out",
                      "not ruled out", "not excluded", "cannot be excluded", "can not be excluded",
                      "to be ruled out", "rule out", "to rule out", "r o", "possible", "possibly", "probable",
                      "probably", "suspected", "suspicion of", "suspicious for", "questionable", "likely",
                      "unlikely", "concerning for", "differential diagnosis"],
        "terminate": ["but", "however", "although", "though", "yet", "except", "apart from", "with", "presents",
                      "reports", "secondary to", "due to", "caused by", "which"],
        "filler": ["patient", "pt", "the", "a", "an", "and", "there", "is", "has", "had"],
    },
}
# Words of a code's own title that make negation expected (the code is about an absence); a title
# negation found by the English triggers counts too ("Immunization not carried out").
ABSENCE_TITLE = re.compile(
    r"\b(without|absence|absent|negative|lack|lacking|missing|ruled out|failure to|unable|agenesis|aplasia|"
    r"atresia|loss|anodontia|hypodontia|edentulism|alopecia|amenorrhea|anuria|apnea|aphonia|anosmia|ageusia|"
    r"areflexia|anhidrosis|azoospermia|aspermia|anovulatory|asystole|aphakia|aniridia|anophthalmos|undescended|"
    r"unerupted|underdosing|underimmunization|homelessness|non\w*)\b"  # non-: "noncollision", "nontoxic", "non-Hodgkin"
)

RIGHT = [r"derech[oa]s?", r"dch[oa]", r"drets?", r"dreta", r"dretes", r"direit[oa]s?", r"droite?s?",
         r"destr[oaie]", r"right"]
LEFT = [r"izquierd[oa]s?", r"izq", r"izqd[oa]", r"esquerr[ae]s?", r"esquerd[oa]s?", r"gauches?",
        r"sinistr[oaie]", r"left"]
BILATERAL = [r"bilateral(es)?", r"bilaterale?", r"bilaterali", r"bilateraux", r"bilaterales?", r"ambos", r"ambas",
             r"ambdos", r"ambdues", r"les deux", r"entrambi", r"entrambe", r"both"]


def _alternation(patterns: list[str]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(patterns) + r")\b")


RIGHT_RE, LEFT_RE, BILATERAL_RE = _alternation(RIGHT), _alternation(LEFT), _alternation(BILATERAL)
TITLE_RIGHT, TITLE_LEFT, TITLE_BILATERAL = (re.compile(r"\bright\b"), re.compile(r"\bleft\b"),
                                            re.compile(r"\bbilateral\b"))

# Words that place a mention in one sex. Anatomy stems hold in every language; the rest per language.
_FEMALE_ANATOMY = [r"uter\w*", r"ovari\w*", r"ovaire\w*", r"ovaio", r"ovaie", r"(?<!tunica )(?<!tunique )vagin\w*", r"vulv\w*",
                   r"endometri\w*", r"cervix", r"placent\w*", r"trompas? de falopio", r"salping\w*"]
_MALE_ANATOMY = [r"prostat\w*", r"testic\w*", r"testis", r"testicul\w*", r"testicol\w*", r"escrot\w*",
                 r"scrot\w*", r"epididim\w*", r"epididym\w*", r"penis", r"penile", r"pene", r"peneana?"]
FEMALE: dict[str, list[str]] = {
    "es": [r"mujer(es)?", r"femenin[oa]", r"embaraz\w*", r"gestante", r"gestacion\w*", r"puerper\w*"],
    "ca": [r"dona", r"dones", r"femenin[oa]", r"femeni", r"embaras\w*", r"gestant", r"puerperi\w*"],
    "pt": [r"mulher(es)?", r"feminin[oa]", r"gravidez", r"gravida", r"gestante", r"gestacao", r"puerper\w*"],
    "fr": [r"femmes?", r"feminin\w*", r"grossesse", r"enceinte", r"puerper\w*"],
    "it": [r"donna", r"donne", r"femminil\w*", r"gravidanza", r"incinta", r"puerper\w*"],
    "en": [r"wom[ae]n", r"female", r"pregnan\w*", r"postpartum", r"puerper\w*"],
}
MALE: dict[str, list[str]] = {
    "es": [r"varon(es)?", r"hombres?", r"masculin[oa]"],
    "ca": [r"home", r"homes", r"masculin[oa]", r"masculi"],
    "pt": [r"homem", r"homens", r"masculin[oa]"],
    "fr": [r"hommes?", r"masculin\w*"],
    "it": [r"uomo", r"uomini", r"maschil\w*"],
    "en": [r"man", r"men", r"male"],
}
FEMALE_RE = {lang: _alternation(words + _FEMALE_ANATOMY) for lang, words in FEMALE.items()}
MALE_RE = {lang: _alternation(words + _MALE_ANATOMY) for lang, words in MALE.items()}


# ---- the terminology's own vocabulary ------------------------------------------------------------------
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
NAME_SHAPE = re.compile(r"\b[A-Z][^\W\d_]+(?:['’]s\b|(?:-[A-Z][^\W\d_]+)+)")
"""Proper-name shapes: a capitalised possessive ("Crohn's", without the 's) or a hyphenated pair of names."""
MIN_VOCABULARY = 2000
"""Fewer distinct label words than this (Italian's 405 WHO labels, Catalan's none) is no vocabulary to vote with."""


@dataclass(frozen=True)
class Vocabulary:
    """The words of the terminology's labels per language (English: titles and inclusion terms), and the
    words it writes capitalised (proper names and genera: "Crohn", "Salmonella")."""

    words: dict[str, frozenset[str]]  # casefolded, accents kept: Catalan "insuficiència" is not Spanish
    plain: frozenset[str]  # every language's words without accents
    prefixes: frozenset[str]  # 5-letter prefixes of `plain`
    eponyms: frozenset[str]  # normalize_text form

    def has(self, language: str) -> bool:
        return len(self.words.get(language, ())) >= MIN_VOCABULARY

    def knows(self, word: str) -> bool:
        """`word` (normalize_text form) is some language's label word, or has 5+ letters and starts like
        one ("infeccio", "urinari")."""
        return word in self.plain or (len(word) >= 5 and word[:5] in self.prefixes)


def vocabulary_words(text: str) -> list[str]:
    """The words of a text as the vocabulary holds them: casefolded, accents kept."""
    return _WORD.findall(text.casefold())


def _add(text: str, words: set[str], capitalised: set[str] | None = None, lower: set[str] | None = None) -> None:
    from clinassay.audit.text import normalize_text

    words.update(vocabulary_words(text))
    if capitalised is None or lower is None:
        return
    for i, token in enumerate(_WORD.findall(text)):
        if token.islower():
            lower.add(normalize_text(token))
        elif token[0].isupper() and not token.isupper() and i > 0:
            capitalised.add(normalize_text(token))
    for match in NAME_SHAPE.finditer(text):  # a title's first word too: "Crohn's disease", "Minkowski-Chauffard"
        capitalised.update(normalize_text(re.sub(r"['’]s$", "", match.group(0))).split())


@lru_cache(maxsize=2)
def label_vocabulary(terminology: TerminologyLike) -> Vocabulary:
    """Built once per terminology (3-5 s): every code's labels in every language it has. Eponyms come from
    the English titles only, whose sentence case is reliable: a word they capitalise and never write in
    lower case inside a title, or a name-shaped first word ("Crohn's disease", "Minkowski-Chauffard syndrome")."""
    from clinassay.audit.text import strip_accents

    capitalised: set[str] = set()
    lower: set[str] = set()
    english: set[str] = set()
    texts: dict[str, set[str]] = {}
    languages = [lang for lang in terminology.languages() if lang != "en"]
    for code in terminology.codes():
        entry = terminology.find(code)
        _add(entry.title, english, capitalised, lower)
        for term in entry.inclusion_terms:
            _add(term, english, capitalised, lower)
        for language in languages:
            label = terminology.label(code, language)
            if label is not None and label.text:
                texts.setdefault(language, set()).add(label.text)
    words = {"en": frozenset(english)}
    for language, found in texts.items():
        bag: set[str] = set()
        for text in found:
            _add(text, bag)
        words[language] = frozenset(bag)
    plain = frozenset(strip_accents(w) for bag in words.values() for w in bag)
    return Vocabulary(words, plain, frozenset(w[:5] for w in plain if len(w) >= 5), frozenset(capitalised - lower))
