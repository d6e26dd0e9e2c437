"""The clinical rules in all six languages, and the cases they must leave alone."""

from __future__ import annotations

import pytest

from clinassay.audit import clinical_rules as rules
from clinassay.audit.checks.phi import find_phi
from clinassay.audit.text import normalize_text


@pytest.mark.parametrize("language, mention", [
    ("es", "sin fiebre"), ("es", "niega dolor torácico"), ("ca", "sense febre"), ("pt", "sem febre"),
    ("fr", "pas de fièvre"), ("it", "senza febbre"), ("en", "no evidence of fever"), ("en", "denies fever"),
    ("fr", "absence de fièvre"), ("it", "febbre esclusa"), ("pt", "febre descartada"), ("es", "se descarta fiebre"),
])
def test_negated_findings(terminology, language, mention) -> None:
    hit = rules.negation(normalize_text(mention), terminology.get("R50.9"), language)
    assert hit is not None and hit[0] == "negated"


@pytest.mark.parametrize("language, mention, code", [
    ("es", "diabetes mellitus tipo 2 sin complicaciones", "E11.9"),  # the title itself says "without"
    ("es", "linfoma no Hodgkin", "C85.90"),
    ("es", "fiebre sin foco", "R50.9"),
    ("en", "fever of unknown origin", "R50.9"),
])
def test_negation_leaves_expected_wording_alone(terminology, language, mention, code) -> None:
    assert rules.negation(normalize_text(mention), terminology.get(code), language) is None


@pytest.mark.parametrize("language, mention", [
    ("es", "catarata senil nuclear ojo izquierdo"), ("ca", "cataracta nuclear ull esquerre"),
    ("pt", "catarata nuclear olho esquerdo"), ("fr", "cataracte nucléaire oeil gauche"),
    ("it", "cataratta nucleare occhio sinistro"), ("en", "nuclear cataract, left eye"),
    ("es", "catarata nuclear bilateral"),
])
def test_laterality_contradictions(terminology, language, mention) -> None:
    hit = rules.laterality(normalize_text(mention), terminology.get("H25.11"), language)  # right eye
    assert hit is not None and hit[0] == "laterality"


@pytest.mark.parametrize("mention", ["catarata nuclear ojo derecho", "catarata nuclear", "cataratta nucleare destra"])
def test_laterality_agreement(terminology, mention) -> None:
    assert rules.laterality(normalize_text(mention), terminology.get("H25.11"), "es") is None


@pytest.mark.parametrize("language, mention, code", [
    ("es", "hiperplasia prostática en mujer", "N40.0"), ("en", "enlarged prostate in a pregnant patient", "N40.0"),
    ("es", "endometriosis en varón", "N80.00"), ("it", "endometriosi uterina nell'uomo", "N80.00"),
    ("pt", "câncer de próstata em mulher", "C61"), ("fr", "grossesse chez un homme", "O26.90"),
])
def test_sex_restricted_codes(terminology, language, mention, code) -> None:
    entry = terminology.find(code) or terminology.get(terminology.siblings(code)[0])
    hit = rules.sex(normalize_text(mention), entry, language, terminology=terminology)
    assert hit is not None and hit[0] == "sex", (code, entry.code)


@pytest.mark.parametrize("mention, code, better", [
    ("diabetes mellitus tipo 1", "E11.9", "E10"), ("type 1 diabetes mellitus", "E11.9", "E10"),
    ("cistitis aguda con hematuria", "N30.00", "N30.01"),
])
def test_sibling_terms_name_the_better_code(terminology, mention, code, better) -> None:
    from clinassay.audit.semantic import candidate_codes

    hit = rules.SiblingTerms(terminology, lambda c: candidate_codes(terminology, c, limit=10)).check(
        normalize_text(mention), terminology.get(code), "es")
    assert hit is not None and hit[0] == "sibling_term" and hit[3]["code"].startswith(better)
    assert f"fits {hit[3]['code']} better than {code}" in hit[2]


@pytest.mark.parametrize("mention, code", [("diabetes mellitus tipo 2", "E11.9"), ("hepatitis C crónica", "B18.2"),
                                           ("hepatitis B", "B19.10"), ("cistitis aguda sin hematuria", "N30.00")])
def test_sibling_terms_leave_correct_pairs_alone(terminology, mention, code) -> None:
    from clinassay.audit.semantic import candidate_codes

    checker = rules.SiblingTerms(terminology, lambda c: candidate_codes(terminology, c, limit=10))
    assert checker.check(normalize_text(mention), terminology.get(code), "es") is None


def test_excludes1_and_title_copy(terminology) -> None:
    entry = terminology.get("N39.0")
    hit = rules.excludes1(normalize_text("pyuria"), entry, "en", min_similarity=0.92)
    assert hit is not None and hit[3] == {"code": "R82.81", "title": "pyuria (R82.81)"}
    assert rules.excludes1(normalize_text("urinary tract infection"), entry, "en", min_similarity=0.92) is None
    copy = rules.title_copy(normalize_text("urinary tract infection, site not specified"), entry, "en",
                            terminology=terminology)
    assert copy is not None and copy[0] == "title_copy"


@pytest.mark.parametrize("mention, code", [
    ("aneurysm of external carotid artery", "I72.0"),  # note: '... internal carotid artery NOS (I67.1)'
    ("exogenous lipoid pneumonia", "J69.1"),  # note: 'endogenous lipoid pneumonia (J84.89)'
    ("nonthrombocytopenic hemorrhagic purpura", "D69.0"),  # note: 'thrombocytopenic hemorrhagic purpura (D69.3)'
    ("benign neoplasm of cartilage of nose", "D14.0"),  # note: '... cartilage of ear (D21.0)'
])
def test_excludes1_is_not_fooled_by_one_telling_word(terminology, mention, code) -> None:
    """A character ratio of 0.92 matched these to the code's own Excludes1 notes: one word apart, the
    opposite concept. Found in the CodiEsp recipe's audit, where they are official terms of the code."""
    assert rules.excludes1(normalize_text(mention), terminology.get(code), "en", min_similarity=0.92) is None


def test_excludes1_still_matches_a_note_a_typo_apart(terminology) -> None:
    entry = terminology.get("I72.0")
    hit = rules.excludes1(normalize_text("aneurysm of internal carotid arteri"), entry, "en", min_similarity=0.92)
    assert hit is not None and hit[3]["code"] == "I67.1"
    assert rules.same_words("piuria", "pyuria")  # a typo of a long word
    assert not rules.same_words("cyst of ear", "cyst of eye") and not rules.same_words("type ii", "type i")  # short: exact


@pytest.mark.parametrize("mention, code, language", [
    ("Problemas relacionados con atención de salud no disponible o inaccesible", "Z75.3", "es"),  # WHO label
    ("Exogenous lipoid pneumonia", "J69.1", "en"),  # the title
])
def test_an_official_term_of_the_code_is_never_rejected_by_a_rule(terminology, mention, code, language) -> None:
    from clinassay.audit import AuditConfig, Auditor
    from clinassay.audit.reader import parse_record

    auditor = Auditor(AuditConfig(embeddings=False), terminology=terminology)
    record = {"mention": mention, "code": code, "language": language, "model": "terminology:who"}
    decision = auditor.audit_chunk([parse_record(1, record)])[0]
    assert decision.accepted, decision.findings
    assert {f.reason for f in decision.findings} <= {"title_copy"}


def test_a_long_official_title_is_warned_not_rejected(terminology) -> None:
    """O80's inclusion term (334 characters, it carries a coding instruction) is over `max_chars`: an
    official term of its own code, so the length is a warning. The same text for another code fails."""
    from clinassay.audit import AuditConfig, Auditor
    from clinassay.audit.reader import parse_record

    auditor = Auditor(AuditConfig(embeddings=False), terminology=terminology)
    title = max(terminology.get("O80").inclusion_terms, key=len)
    assert len(title) > auditor.config.validity.max_chars
    own, other = (auditor.audit_chunk([parse_record(1, {"mention": title, "code": code, "language": "en",
                                                        "model": "terminology:icd10cm"})])[0] for code in ("O80", "O82"))
    assert own.accepted, own.findings
    assert [(f.reason, f.severity) for f in own.findings if f.check == "validity"] == [("too_long", "warn")]
    assert not other.accepted and any(f.reason == "too_long" and f.severity == "fail" for f in other.findings)


@pytest.mark.parametrize("text, kind", [
    ("Sr. García con neumonía", "name"), ("paciente José Martínez con ITU", "name"), ("ingreso 12/03/2019", "date"),
    ("fractura el 3 de marzo de 2020", "date"), ("tel. 612 345 678", "phone"), ("juan.perez@gmail.com", "email"),
    ("DNI 12345678Z", "dni_nie"), ("NIE X1234567L", "dni_nie"), ("NIF B12345678", "nif"),
    ("CPF 529.982.247-25", "cpf"), ("NIR 1 85 05 78 006 084 36", "nir"), ("CF RSSMRA85T10A562S", "codice_fiscale"),
    ("SSN 123-45-6789", "ssn"), ("NHC 1234567", "record_number"), ("calle Mayor 12, Madrid", "address"),
    ("Rua das Flores 123", "address"), ("12 Baker Street", "address"),
])
def test_phi_kinds(text, kind) -> None:
    assert kind in {reason for reason, *_ in find_phi(text)}


@pytest.mark.parametrize("text", ["enfermedad de Crohn", "síndrome de Down", "diabetes mellitus tipo 2", "T2N0M0",
                                  "hernia discal L4-L5", "TA 140/90", "ITU por E. coli >100.000 UFC/ml",
                                  "PSA 12.5 ng/ml", "via biliare dilatata 2 cm", "fractura de Colles"])
def test_phi_leaves_clinical_text_alone(text) -> None:
    assert find_phi(text) == []


@pytest.mark.parametrize("backend", ["lingua", "py3langid"])
def test_language_backends_score_the_configured_languages(backend) -> None:
    from clinassay.audit.checks.language import language_detector

    detector = language_detector(("es", "ca", "en"), backend)
    english, catalan = detector.confidences(["chest pain radiating to the left arm",
                                             "infecció del tracte urinari de repetició"])
    assert set(english) == {"es", "ca", "en"} and abs(sum(english.values()) - 1.0) < 1e-6
    assert max(english, key=english.get) == "en" and max(catalan, key=catalan.get) == "ca"
