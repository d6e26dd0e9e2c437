"""The rule half of the `consistency` check: cheap, explainable contradictions between a mention and
its code (negated findings, opposite laterality, the other sex, an excludes1 note, a copied title).

Each rule takes the mention's normalised text, the code's terminology entry and the language, and
returns a (reason, score, detail, neighbour) tuple or None.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Callable

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from clinassay.audit import lexicon as lx
from clinassay.audit.negation import analyse as analyse_negation
from clinassay.audit.text import normalize_text
from clinassay.terminology.protocol import TerminologyLike

RuleHit = tuple[str, float, str, dict[str, Any] | None]

# Sex-specific ICD-10-CM codes the terminology's structural list (terminology.sex) does not name, matched
# by prefix of the dotted code; titles quoted so they can be checked against the classification.
_EXTRA_SEX: dict[str, tuple[str, str]] = {
    "D07.0": ("female", "Carcinoma in situ of endometrium"),
    "D07.1": ("female", "Carcinoma in situ of vulva"),
    "D07.2": ("female", "Carcinoma in situ of vagina"),
    "D07.4": ("male", "Carcinoma in situ of penis"),
    "D07.5": ("male", "Carcinoma in situ of prostate"),
    "Z36": ("female", "Encounter for antenatal screening of mother"),
    "Z37": ("female", "Outcome of delivery"),
    "Z39": ("female", "Encounter for maternal postpartum care and examination"),
    "Z3A": ("female", "Weeks of gestation"),
}
_TITLE_FEMALE = re.compile(r"\bfemales?\b")
_TITLE_MALE = re.compile(r"\bmales?\b")
# Titles that say "male"/"female" of someone else than the patient, or of an undetermined sex.
_TITLE_SEX_NOT_PATIENT = re.compile(r"\b(partner|perpetrator|friend|cousin|parent|pseudohermaphroditism|factor)\b")


def _title_sex(title: str) -> str | None:
    """The sex a title names for its patient: "..., right female breast", "urethral stricture, male"."""
    title = title.lower()
    female, male = bool(_TITLE_FEMALE.search(title)), bool(_TITLE_MALE.search(title))
    if female == male or _TITLE_SEX_NOT_PATIENT.search(title):
        return None  # neither, or both ("Stress incontinence (female) (male)")
    return "female" if female else "male"


def sex_of_code(code: str, terminology: TerminologyLike) -> str | None:
    """The terminology's restriction (imported tables, then the classification's structure), else the
    few codes it does not list, else what the code's title or its parents' up to the category say
    ("C50.911 ... right female breast", "N35.01 Post-traumatic urethral stricture, male")."""
    restriction = terminology.sex_restriction(code)
    if restriction:
        return restriction
    for prefix, (sex_, _title) in _EXTRA_SEX.items():
        if code.startswith(prefix):
            return sex_
    node = terminology.find(code)
    while node is not None and node.kind in ("category", "code"):
        found = _title_sex(node.title)
        if found:
            return found
        node = terminology.find(node.parent) if node.parent else None
    return None


# ---- negation ----------------------------------------------------------------------------------------

def _stems_of(text: str) -> set[str]:
    return {t[:5] for t in normalize_text(text).split() if len(t) >= 4 and t not in _STOP}


@lru_cache(maxsize=65536)
def _title_expects_negation(title: str) -> bool:
    """A term about an absence ("without hematuria", "Immunization not carried out", agenesis, Z03 "...
    ruled out") fits a negated finding. Pseudo-triggers ("site not specified") do not count."""
    norm = normalize_text(title)
    return bool(lx.ABSENCE_TITLE.search(norm) or analyse_negation(norm, "en").negations)


def code_expects_negation(entry: Any) -> bool:
    """The code's title or one of its inclusion terms is about an absence, or the code is a congenital
    malformation (a congenital absence, "ausencia de vesícula seminal", is the malformation) or an
    external cause."""
    if entry.code[:1] in ("Q", "V", "W", "X", "Y"):
        return True  # external causes describe an event: "sin colisión", "sin motor" are its circumstances
    return any(
        _title_expects_negation(text) for text in (entry.title, *getattr(entry, "inclusion_terms", ())))


def negation(norm: str, entry: Any, language: str, *, terminology: TerminologyLike | None = None) -> RuleHit | None:
    """A mention that negates its finding ("se descarta infección urinaria", "sin fiebre") is not a case
    of the code. When part of the mention stays affirmed ("fiebre sin foco", "sin fiebre pero con ITU"),
    only a negation of a word of the code's own title (or of its label in `language`, given the
    terminology) counts."""
    if code_expects_negation(entry):
        return None
    context = analyse_negation(norm, language)
    if not context.negations:
        return None
    hit = context.negations[0] if not context.affirmed else None
    if hit is None:
        own = _stems_of(entry.title)
        if terminology is not None and language != "en":
            label = terminology.label(entry.code, language)
            if label is not None and label.text:
                own |= _stems_of(label.text)
        hit = next((n for n in context.negations if _stems_of(" ".join(n.scope)) & own), None)
    if hit is None:
        return None
    return ("negated", 0.9,
            f"the mention negates the finding ('{hit.trigger}' {' '.join(hit.scope)}): a negated finding is "
            f"not a case of {entry.code} ({entry.title})", None)


def _sides(norm: str) -> set[str]:
    sides = set()
    if lx.RIGHT_RE.search(norm):
        sides.add("right")
    if lx.LEFT_RE.search(norm):
        sides.add("left")
    if lx.BILATERAL_RE.search(norm):
        sides.add("bilateral")
    return sides


def code_side(title: str) -> str | None:
    """The side a code's English title names; a named side wins over 'bilateral' ("bilateral ..., left side")."""
    title = title.lower()
    right, left, both = (bool(r.search(title)) for r in (lx.TITLE_RIGHT, lx.TITLE_LEFT, lx.TITLE_BILATERAL))
    if right and not left:
        return "right"
    if left and not right:
        return "left"
    if both and not (right or left):
        return "bilateral"
    return None


def _has_bilateral_sibling(code: str, terminology: TerminologyLike) -> bool:
    for sibling in terminology.siblings(code):
        entry = terminology.find(sibling)
        if entry is not None and code_side(entry.title) == "bilateral":
            return True
    return False


def laterality(norm: str, entry: Any, language: str, *, terminology: TerminologyLike | None = None) -> RuleHit | None:
    side = code_side(entry.title)
    if side is None:
        return None
    said = _sides(norm)
    if not said or side in said:
        return None
    if side == "bilateral" and said == {"right", "left"}:
        return None  # "right and left" is bilateral
    if side in ("right", "left") and said == {"right", "left"}:
        return None  # ambiguous ("right ... left"), not a contradiction we can call
    if said == {"bilateral"} and terminology is not None and not _has_bilateral_sibling(entry.code, terminology):
        return None  # no bilateral code exists: coders code each side, so a bilateral mention is right here
    return ("laterality", 0.95,
            f"the mention says {' and '.join(sorted(said))} but {entry.code} is {side} ({entry.title})", None)


def sex(norm: str, entry: Any, language: str, *, terminology: TerminologyLike) -> RuleHit | None:
    restriction = sex_of_code(entry.code, terminology)
    if restriction is None:
        return None
    other = lx.MALE_RE if restriction == "female" else lx.FEMALE_RE
    pattern = other.get(language)
    match = pattern.search(norm) if pattern else None
    if match is None:
        return None
    return ("sex", 0.95,
            f"{entry.code} ({entry.title}) applies to {restriction} patients only, but the mention says "
            f"'{match.group(0)}'", None)


_CODE_REF = re.compile(r"\(([A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?)(?:[-–][^)]*)?\)")


def _note_text(note: str) -> tuple[str, str | None]:
    ref = _CODE_REF.search(note)
    text = _CODE_REF.sub(" ", note)
    text = re.sub(r"\bNOS\b", " ", text)
    return normalize_text(text), (ref.group(1) if ref else None)


TYPO_MIN_LENGTH = 5  # words this long may differ from the note's by one edit (a typo) and still match


def same_words(norm: str, text: str) -> bool:
    """Whether two normalised texts say the same words, a typo apart: word for word equal, except words of
    5+ letters one edit apart. A character ratio alone calls 'aneurysm of external carotid artery' the same
    as '... internal ...', 'exogenous' the same as 'endogenous' and 'nonthrombocytopenic' the same as
    'thrombocytopenic': in clinical text one word turns the concept into its opposite."""
    words, other = norm.split(), text.split()
    return len(words) == len(other) and all(
        a == b or (min(len(a), len(b)) >= TYPO_MIN_LENGTH and Levenshtein.distance(a, b) <= 1)
        for a, b in zip(words, other))


def excludes1(norm: str, entry: Any, language: str, *, min_similarity: float) -> RuleHit | None:
    """The mention is, a typo apart, a concept an Excludes1 note of the code sends elsewhere."""
    best: tuple[float, str, str | None] | None = None
    for note in getattr(entry, "excludes1", ()) or ():
        text, ref = _note_text(note)
        if not text or not same_words(norm, text):
            continue
        score = fuzz.ratio(norm, text) / 100.0
        if best is None or score > best[0]:
            best = (score, note, ref)
    if best is None or best[0] < min_similarity:
        return None
    score, note, ref = best
    neighbour = {"code": ref, "title": note} if ref else None
    return ("excludes1", score,
            f"the mention matches an Excludes1 note of {entry.code}: '{note}' is coded elsewhere"
            + (f" ({ref})" if ref else ""), neighbour)


def title_copy(norm: str, entry: Any, language: str, *, terminology: TerminologyLike) -> RuleHit | None:
    titles = {normalize_text(entry.title)}
    label = terminology.label(entry.code, language) if language != "en" else None
    if label is not None and getattr(label, "text", None):
        titles.add(normalize_text(label.text))
    if norm in titles:
        return ("title_copy", 0.5,
                f"the mention only copies the title of {entry.code}: it teaches a retriever nothing new", None)
    return None


RULES: dict[str, Callable[..., RuleHit | None]] = {
    "negation": negation,
    "laterality": laterality,
    "sex": sex,
    "excludes1": excludes1,
    "title_copy": title_copy,
}


# ---- sibling terms: a word that only a sibling's title has ("stress", "type 1", "with hematuria") ----
_STOP = set("""a an and or of the with without in on to for by due other unspecified specified not elsewhere classified
site part type nos de del la el los las y o con sin en por para un una otro otra otros otras especificado
especificada no sitio parte tipo d e et ou avec sans le les des du au une autre autres precise di il lo gli le e o
con senza per uno altro altri altra specificato specificata do da das dos com sem em um uma outro outra outros
especificada especificado parte""".split())


_WITHOUT = {"without", "sin", "sans", "senza", "sem", "sense"}


def _without_stems(text: str) -> set[str]:
    """Stems a title excludes: 'Acute cystitis without hematuria' -> {'hemat'}."""
    tokens = normalize_text(text).split()
    excluded = {i + 1 for i, t in enumerate(tokens[:-1]) if t in _WITHOUT and len(tokens[i + 1]) >= 3}
    elsewhere = {t[:5] for i, t in enumerate(tokens) if i not in excluded}
    return {tokens[i][:5] for i in excluded} - elsewhere  # "hepatitis C without hepatic coma": not 'hepat'



def _stems(text: str) -> set[str]:
    out = set()
    for token in normalize_text(text).split():
        if token.isdigit():
            out.add(token)
        elif len(token) >= 3 and token not in _STOP:
            out.add(token[:5])
    return out


class SiblingTerms:
    """For each code (and language), the stems of its title/label; cached because siblings repeat."""

    def __init__(self, terminology: TerminologyLike, candidates: Callable[[str], list[str]]) -> None:
        self.terminology = terminology
        self.candidates = candidates
        self._stems: dict[tuple[str, str], set[str]] = {}
        self._without: dict[tuple[str, str], set[str]] = {}

    def stems(self, code: str, language: str) -> set[str]:
        key = (code, language)
        if key not in self._stems:
            entry = self.terminology.find(code)
            texts = [entry.title] if entry is not None else []
            if language != "en":
                label = self.terminology.label(code, language)
                if label is not None and getattr(label, "precision", "") == "exact" and label.text:
                    texts.append(label.text)
            self._stems[key] = set().union(*(_stems(t) for t in texts)) if texts else set()
            self._without[key] = set().union(*(_without_stems(t) for t in texts)) if texts else set()
        return self._stems[key]

    def without(self, code: str, language: str) -> set[str]:
        self.stems(code, language)
        return self._without[(code, language)]

    def check(self, norm: str, entry: Any, language: str) -> RuleHit | None:
        said = _stems(norm)
        own = self.stems(entry.code, language)
        excluded = self.without(entry.code, language) & said  # the title says "without X", the mention says X
        if excluded and _WITHOUT & set(norm.split()) | {"no", "non", "nao", "pas"} & set(norm.split()):
            excluded = set()  # the mention itself negates something: leave it to the negation rule
        if not excluded and not any(s.isdigit() for s in said - own):
            return None  # neither axis can fire: skip the candidates (most pairs stop here)
        best: tuple[int, str, set[str]] | None = None
        for other in self.candidates(entry.code):
            theirs = self.stems(other, language)
            only_theirs, only_own = (theirs - own) & said, (own - theirs) & said
            # two reliable axes: numbers (type 1 vs 2, stage 3) and "with X" vs the code's "without X"
            only_theirs = {s for s in only_theirs if s.isdigit()}
            only_theirs |= {s for s in excluded if s in theirs and s not in self.without(other, language)}
            if only_theirs and not only_own:
                if best is None or len(only_theirs) > best[0]:
                    best = (len(only_theirs), other, only_theirs)
        if best is None:
            return None
        _, other, words = best
        title = self.terminology.find(other).title
        return ("sibling_term", 0.8,
                f"fits {other} better than {entry.code}: the mention says '{', '.join(sorted(words))}', which only "
                f"{other} ({title}) has, not {entry.code} ({entry.title})", {"code": other, "title": title})
