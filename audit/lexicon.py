"""Word lists for the clinical rules, in the six languages, written accent-free and lower-case because
they match `normalize_text` output. Kept as data in one place so they can be reviewed by a clinician."""

from __future__ import annotations

import re

# Negation cues that negate the finding when the mention starts with them ("sin fiebre").
NEGATION_START: dict[str, list[str]] = {
    "es": ["sin", "no", "niega", "negativo para", "negativa para", "ausencia de", "descarta", "descartado",
           "descartada", "se descarta", "no hay", "no se"],
    "ca": ["sense", "no", "nega", "negatiu per", "negativa per", "absencia de", "es descarta", "descartat",
           "descartada"],
    "pt": ["sem", "nao", "nega", "negativo para", "negativa para", "ausencia de", "descarta", "descartado",
           "descartada"],
    "fr": ["pas de", "pas d", "sans", "absence de", "absence d", "aucun", "aucune", "nie", "negatif pour",
           "negative pour", "exclu", "exclue"],
    "it": ["senza", "non", "nega", "assenza di", "negativo per", "negativa per", "escluso", "esclusa",
           "nessun", "nessuna"],
    "en": ["no", "without", "denies", "denied", "negative for", "absence of", "not", "free of", "ruled out"],
}
# Cues that negate wherever they appear ("... no evidence of pneumonia").
NEGATION_ANYWHERE: dict[str, list[str]] = {
    "es": ["sin evidencia de", "no evidencia de", "sin signos de", "sin datos de", "negativo para",
           "negativa para", "se descarta", "descartado", "descartada", "niega", "no presenta", "no se observa",
           "no se observan", "no hay"],
    "ca": ["sense evidencia de", "sense signes de", "es descarta", "descartat", "descartada", "nega",
           "no presenta", "no s observa", "no hi ha"],
    "pt": ["sem evidencia de", "sem sinais de", "negativo para", "negativa para", "descartado", "descartada",
           "nega", "nao apresenta", "nao ha"],
    "fr": ["pas de", "pas d", "absence de", "absence d", "aucun signe de", "aucune", "negatif pour",
           "negative pour", "exclu", "exclue", "ne presente pas", "n a pas", "sans signe de"],
    "it": ["non evidenza di", "nessun segno di", "assenza di", "negativo per", "negativa per", "escluso",
           "esclusa", "nega", "non presenta", "senza segni di"],
    "en": ["no evidence of", "no signs of", "no sign of", "negative for", "ruled out", "rules out", "denies",
           "denied", "without evidence of", "absence of", "free of"],
}
# A code whose own title is about an absence or a negative finding expects negation words.
NEGATIVE_TITLE = re.compile(
    r"\b(without|absence|absent|not|no|non|negative|lack|lacking|missing|ruled out|failure to|unable|agenesis|aplasia|loss|anodontia|hypodontia|alopecia|atrophy)\b"
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
_FEMALE_ANATOMY = [r"uter\w*", r"ovari\w*", r"ovaire\w*", r"ovaio", r"ovaie", r"(?<!tunica )vagin\w*", r"vulv\w*",
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
NEGATION_START_RE = {lang: re.compile(r"^(?:" + "|".join(re.escape(c) for c in cues) + r")\b")
                     for lang, cues in NEGATION_START.items()}
NEGATION_ANYWHERE_RE = {lang: re.compile(r"\b(?:" + "|".join(re.escape(c) for c in cues) + r")\b")
                        for lang, cues in NEGATION_ANYWHERE.items()}
