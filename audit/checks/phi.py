"""phi: synthetic training data must not carry realistic identifiers. Looks for names (after an
honorific, or a common first name followed by a surname), dates, phone numbers, e-mail and postal
addresses, national IDs (DNI/NIE, NIF, CPF, NIR, codice fiscale, SSN) and medical record numbers.

Patterns run on the original text (case matters for names); eponyms ("enfermedad de Crohn") are not
names of patients and do not match.
"""

from __future__ import annotations

import re
from typing import Callable

from clinassay.audit.checks.base import Check
from clinassay.audit.findings import Finding
from clinassay.audit.items import Chunk

_MONTHS = ("enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|noviembre|diciembre|"
           "gener|febrer|marc|març|maig|juny|juliol|setembre|octubre|novembre|desembre|"
           "janeiro|fevereiro|março|maio|junho|julho|setembro|outubro|dezembro|"
           "janvier|février|fevrier|mars|avril|mai|juin|juillet|août|aout|septembre|octobre|décembre|decembre|"
           "gennaio|febbraio|aprile|maggio|giugno|luglio|settembre|ottobre|dicembre|"
           "january|february|march|april|june|july|august|september|october|november|december|"
           "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec")
_DATE = re.compile(
    r"\b\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})\b"
    r"|\b(?:19|20)\d{2}[/.-]\d{1,2}[/.-]\d{1,2}\b"
    rf"|\b\d{{1,2}}(?:º|°|er)?\s+(?:de\s+|d')?(?i:{_MONTHS})\b(?:\s+(?:de\s+|del\s+)?(?:19|20)\d{{2}})?"
    rf"|\b(?i:{_MONTHS})\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{{2}}\b"
)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_PHONE = re.compile(r"(?<![\w/.-])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]?\d{2,4}){2,4}(?![\w/-])")
_DNI = re.compile(r"\b\d{8}[- ]?[A-Z]\b")
_NIE = re.compile(r"\b[XYZ][- ]?\d{7}[- ]?[A-Z]\b")
_NIF = re.compile(r"\b[ABCDEFGHJNPQRSUVW]-?\d{7}[0-9A-J]\b")
_CPF = re.compile(r"\b\d{3}\.\d{3}\.\d{3}-\d{2}\b|\b\d{11}\b")
_NIR = re.compile(r"\b[12]\s?\d{2}\s?(?:0[1-9]|1[0-2]|[2-9]\d)\s?(?:\d{2}|2A|2B)\s?\d{3}\s?\d{3}(?:\s?\d{2})?\b")
_CF = re.compile(r"\b[A-Z]{6}\d{2}[A-EHLMPRST]\d{2}[A-Z]\d{3}[A-Z]\b")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_RECORD = re.compile(
    r"(?i:\b(?:NHC|N\.H\.C\.|HC|MRN|NUHSA|CIP|SIP|NSS|historia\s+cl[ií]nica|hist[oò]ria\s+cl[ií]nica|"
    r"prontu[aá]rio|dossier|cartella(?:\s+clinica)?|medical\s+record|record|expediente|episodio|episodi|"
    r"patient\s+id|id\s+paciente)\b)\s*(?:n[º°o]\.?|num(?:ero|\.)?|number|#|:|-)?\s*\d[\d-]{4,}"
    r"|#\s?\d{5,}"
)
_STREET = re.compile(
    r"(?i:\b(?:calle|c/|avenida|avda\.?|av\.|plaza|pza\.?|paseo|carrer|c\.|passeig|rua|travessa|largo|rue|"
    r"boulevard|bd|avenue|chemin|viale|piazza|corso|via|street|road|lane|drive))\s+"
    r"(?:(?:de|del|la|da|do|das|dos|des|du|di|della|delle|dei|degli|of|the)\s+){0,2}[A-ZÁÉÍÓÚÀÈÒÇ][\w'ºª.-]+(?:\s+[A-ZÁÉÍÓÚÀÈÒÇ][\w'-]+)*,?\s*"
    r"(?:n[º°o]\.?\s*)?\d{1,4}\b"
    r"|\b\d{1,5}\s+[A-Z][a-z]+\s+(?:Street|St\.|Road|Rd\.|Avenue|Ave\.|Lane|Drive|Boulevard)\b"
    r"|(?i:\b(?:C\.P\.|CP|CEP|code\s+postal|codice\s+postale)\s*:?\s*\d{4,5}(?:-\d{3})?\b)"
)
_HONORIFIC = re.compile(
    r"\b(?:Sr|Sra|Srta|Dr|Dra|Dña|Doña|Don|Sig|Sig\.ra|Signor|Signora|Dott|Dott\.ssa|Mme|Mlle|Monsieur|Madame|"
    r"Mr|Mrs|Ms|Miss|Senhor|Senhora|Sr\.ª|Dª|En|Na)\.?\s+[A-ZÁÉÍÓÚÀÈÒÇ][a-záéíóúàèòçñü]+"
)
_FIRST_NAMES = ("José|Juan|Antonio|Manuel|Francisco|David|Javier|Carlos|Daniel|Miguel|Pedro|Pablo|Jorge|Luis|"
                "Sergio|Alejandro|Fernando|Rafael|Ángel|Jordi|Josep|Joan|Pere|Marc|Xavier|João|Paulo|Lucas|"
                "Gabriel|Rafaela|Jean|Pierre|Michel|Philippe|Nicolas|François|Giuseppe|Giovanni|Marco|Luca|"
                "Andrea|Francesco|Alessandro|Matteo|John|James|Robert|Michael|William|Richard|Thomas|"
                "María|Maria|Carmen|Ana|Isabel|Laura|Lucía|Cristina|Marta|Elena|Sara|Paula|Montserrat|Núria|"
                "Mercè|Anna|Júlia|Beatriz|Fernanda|Mariana|Juliana|Marie|Nathalie|Isabelle|Sophie|Claire|"
                "Giulia|Francesca|Chiara|Valentina|Federica|Mary|Patricia|Jennifer|Linda|Elizabeth|Susan|Sarah")
_FIRST_NAME = re.compile(rf"\b(?:{_FIRST_NAMES})\s+[A-ZÁÉÍÓÚÀÈÒÇ][a-záéíóúàèòçñü]+")
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def _dni_valid(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    nie = {"X": "0", "Y": "1", "Z": "2"}.get(text[0])
    if nie:
        digits = nie + digits
    return bool(digits) and _DNI_LETTERS[int(digits) % 23] == text[-1]


def _cpf_valid(text: str) -> bool:
    d = [int(c) for c in re.sub(r"\D", "", text)]
    if len(d) != 11 or len(set(d)) == 1:
        return False
    for n in (9, 10):
        total = sum(d[i] * (n + 1 - i) for i in range(n))
        if (total * 10 % 11) % 10 != d[n]:
            return False
    return True


def _phone_ok(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    return 9 <= len(digits) <= 15


# (reason, config flag, pattern, validator or None, plain-language label)
_DETECTORS: list[tuple[str, str, re.Pattern[str], Callable[[str], bool] | None, str]] = [
    ("email", "emails", _EMAIL, None, "an e-mail address"),
    ("ssn", "national_ids", _SSN, None, "a US social security number"),
    ("dni_nie", "national_ids", _NIE, _dni_valid, "a Spanish NIE"),
    ("dni_nie", "national_ids", _DNI, _dni_valid, "a Spanish DNI"),
    ("nif", "national_ids", _NIF, None, "a Spanish NIF"),
    ("codice_fiscale", "national_ids", _CF, None, "an Italian codice fiscale"),
    ("cpf", "national_ids", _CPF, _cpf_valid, "a Brazilian CPF"),
    ("nir", "national_ids", _NIR, None, "a French NIR (social security number)"),
    ("record_number", "record_numbers", _RECORD, None, "a medical record number"),
    ("date", "dates", _DATE, None, "a date"),
    ("phone", "phones", _PHONE, _phone_ok, "a phone number"),
    ("address", "addresses", _STREET, None, "a postal address"),
    ("name", "names", _HONORIFIC, None, "a person's name"),
    ("name", "names", _FIRST_NAME, None, "a person's name"),
]


def find_phi(text: str, *, enabled: Callable[[str], bool] = lambda flag: True) -> list[tuple[str, str, str, float]]:
    """(reason, matched text, label, score) for each kind of identifier found, strongest first."""
    found: dict[str, tuple[str, str, str, float]] = {}
    covered: list[tuple[int, int]] = []
    for reason, flag, pattern, validator, label in _DETECTORS:
        if reason in found or not enabled(flag):
            continue
        for match in pattern.finditer(text):
            start, end = match.span()
            if any(start < e and s < end for s, e in covered):
                continue  # already explained by a more specific identifier
            value = match.group(0)
            score = 1.0 if validator else 0.9
            if validator is not None and not validator(value):
                if reason not in ("cpf", "dni_nie"):
                    continue
                score = 0.7  # right shape, wrong check digit: still looks real
            found[reason] = (reason, value, label, score)
            covered.append((start, end))
            break
    return list(found.values())


class PhiCheck(Check):
    name = "phi"
    summary_meaning = "share of pairs whose mention carries an identifier (name, date, phone, address, ID)"

    def check_chunk(self, chunk: Chunk) -> list[list[Finding]]:
        cfg = self.config.phi
        enabled = lambda flag: bool(getattr(cfg, flag))  # noqa: E731
        out = []
        for item in chunk.items:
            hits = find_phi(item.mention, enabled=enabled) if item.mention else []
            out.append([
                Finding(self.name, reason, score, f"the mention contains {label} ('{_mask(value)}')", cfg.severity)
                for reason, value, label, score in hits
            ])
        return out


def _mask(value: str) -> str:
    """Show the shape of what was found without repeating a possibly real identifier in full."""
    return value if len(value) <= 4 else value[:2] + "…" + value[-2:]
