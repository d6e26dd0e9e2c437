"""Real coded mentions as evidence (audit/references.py CodedReference, audit/misfit.py): a mention that
clinicians wrote, word for word, is judged by the codes they gave it; `clinassay audit --reference` uses
the file for it."""

from __future__ import annotations

import json

import pytest

from clinassay.audit import AuditConfig, Auditor
from clinassay.audit.reader import parse_record
from clinassay.audit.references import CodedReference, LabelledMention

FIT_REASONS = {"other_chapter", "same_chapter", "sibling"}


REFERENCE = [
    LabelledMention("HTA", "I10", "es", 2),
    LabelledMention("hta", "I10", "es", 3),
    LabelledMention("ITU", "N39.0", "es", 4),
    LabelledMention("diabetes mellitus tipo 2", "E11.9", "es", 5),
    LabelledMention("masa renal", "N28.89", "es", 6),
    LabelledMention("masa renal", "N28.89", "es", 7),
    LabelledMention("masa renal", "C64.9", "es", 8),
]


def _audit(terminology, mention, code, language="es", *, reference=True):
    auditor = Auditor(AuditConfig(embeddings=False), terminology=terminology,
                      reference=CodedReference.from_mentions(REFERENCE, path="ref.tsv") if reference else None)
    record = {"mention": mention, "code": code, "language": language, "model": "gen"}
    decision = auditor.audit_chunk([parse_record(1, record)])[0]
    return decision, next(c for c in auditor.checks if c.name == "consistency").info()["fit"]


def test_attestation_counts_codes_and_their_refinements():
    ref = CodedReference.from_mentions(REFERENCE)
    masa = ref.attested("masa renal", "es")
    assert masa.codes == (("N28.89", 2), ("C64.9", 1)) and masa.total == 3
    assert masa.times("N28") == 2 and masa.times("C64.9") == 1 and masa.in_category("C64") == 1
    assert ref.attested("hta", "es").total == 2  # "HTA" and "hta" normalise to one text
    assert ref.attested("hta", "pt") is None  # per language


def test_an_abbreviation_clinicians_wrote_fits_its_code(terminology):
    """Without the reference, "HTA" (hipertensión arterial) resembles no code text: it is only warned."""
    bare, _ = _audit(terminology, "HTA", "I10", reference=False)
    assert [f.reason for f in bare.findings] == ["unverified"]
    decision, info = _audit(terminology, "HTA", "I10")
    assert decision.accepted and not decision.findings
    assert info["reference"]["path"] == "ref.tsv" and info["reference"]["verdicts"] == {"fits": 1}


def test_a_code_clinicians_never_gave_the_mention_is_rejected_citing_the_reference(terminology):
    decision, info = _audit(terminology, "ITU", "J45.909")  # urinary tract infection coded as asthma
    assert not decision.accepted
    finding = next(f for f in decision.findings if f.reason in FIT_REASONS)
    assert finding.reason == "other_chapter" and finding.neighbour["code"] == "N39.0"
    assert finding.neighbour["evidence"] == "reference"
    assert "clinicians coded 'ITU' as N39.0" in finding.detail and "1 of 1 in the reference" in finding.detail
    assert info["reference"]["verdicts"] == {"category": 1}


def test_a_sibling_of_the_attested_code_is_a_sibling_finding(terminology):
    decision, _ = _audit(terminology, "diabetes mellitus tipo 2", "E11.65")
    finding = next(f for f in decision.findings if f.reason in FIT_REASONS)
    assert finding.reason == "sibling" and finding.neighbour["code"] == "E11.9"


def test_any_code_clinicians_gave_fits_and_so_does_a_refinement(terminology):
    for code in ("N28.89", "N28.8", "C64.9", "C64.1"):  # N28.8 is what N28.89 refines; C64.1 a sibling of C64.9
        decision, _ = _audit(terminology, "masa renal", code)
        fit = [f for f in decision.findings if f.reason in FIT_REASONS]
        if code == "C64.1":
            assert [f.reason for f in fit] == ["sibling"] and fit[0].neighbour["code"] == "C64.9"
        else:
            assert not fit, decision.findings


def test_an_official_term_is_never_rejected_by_the_reference(terminology):
    """A reference that coded an official term elsewhere (a coder's error) does not overrule the
    classification: "Hypertension" is I10's own title."""
    ref = CodedReference.from_mentions([LabelledMention("Essential (primary) hypertension", "N39.0", "en", 2)])
    auditor = Auditor(AuditConfig(embeddings=False), terminology=terminology, reference=ref)
    decision = auditor.audit_chunk([parse_record(1, {"mention": "Essential (primary) hypertension", "code": "I10",
                                                     "language": "en", "model": "gen"})])[0]
    assert decision.accepted and not [f for f in decision.findings if f.reason in FIT_REASONS]


def test_clinassay_audit_uses_the_reference_file(tmp_path, terminology):
    from clinassay.audit.auditor import run_audit

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps(p) for p in [
        {"mention": "ITU", "code": "N39.0", "language": "es", "model": "gen"},
        {"mention": "ITU", "code": "J45.909", "language": "es", "model": "gen"},
    ]) + "\n", encoding="utf-8")
    reference = tmp_path / "reference.tsv"
    reference.write_text("mention\tcode\tlanguage\n" + "".join(f"{r.mention}\t{r.code}\t{r.language}\n" for r in REFERENCE),
                         encoding="utf-8")
    outcome = run_audit(pairs, tmp_path / "out", config=AuditConfig(embeddings=False), terminology=terminology,
                        reference_path=reference)
    rejected = [json.loads(line) for line in (tmp_path / "out" / "rejected.jsonl").read_text().splitlines()]
    assert [r["record"]["code"] if "record" in r else r["code"] for r in rejected] == ["J45.909"], rejected
    assert outcome.summary.counts.accepted == 1


def test_a_mention_clinicians_wrote_is_not_called_misspelt(terminology):
    typo = [LabelledMention("abceso intrabadominal", "K65.1", "es", 2)]
    for reference in (None, CodedReference.from_mentions(typo)):
        auditor = Auditor(AuditConfig(embeddings=False), terminology=terminology, reference=reference)
        decision = auditor.audit_chunk([parse_record(1, {"mention": "abceso intrabadominal", "code": "K65.1",
                                                         "language": "es", "model": "gen"})])[0]
        spelling = [f for f in decision.findings if f.check == "spelling"]
        assert bool(spelling) == (reference is None), decision.findings


def test_calibrate_audits_with_the_reference_it_is_given(tmp_path, terminology):
    """`clinassay calibrate --reference`: the planted copies are audited with the same evidence as the
    audit will use, and the calibration says which reference that was."""
    from clinassay.audit.calibration import calibrate

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps({"mention": m, "code": c, "language": "es", "model": "gen"}) for m, c in [
        ("ITU", "N39.0"), ("HTA", "I10"), ("diabetes mellitus tipo 2", "E11.9"), ("masa renal", "N28.89"),
    ]) + "\n", encoding="utf-8")
    reference = tmp_path / "reference.tsv"
    reference.write_text("mention\tcode\tlanguage\n" + "".join(f"{r.mention}\t{r.code}\t{r.language}\n" for r in REFERENCE),
                         encoding="utf-8")
    result, rows = calibrate(pairs, config=AuditConfig(embeddings=False), terminology=terminology, sample=4, seed=0,
                             reference_path=reference)
    assert result.reference == str(reference) and result.false_rejects.k == 0
    swapped = [r for r in rows if r.get("fault") in ("other_chapter", "same_chapter") or
               r.get("kind") in ("other_chapter", "same_chapter")]
    assert swapped and all(not r["accepted"] for r in swapped), swapped


def test_a_near_mention_carries_how_its_neighbours_were_coded():
    """Not word for word: the nearest reference mentions' codes, weighted by similarity, become features."""
    ref = CodedReference.from_mentions(REFERENCE)
    mention = "diabetes mellitus tipo 2 descompensada"
    own, sibling, other = ref.standings([mention] * 3, ["E11.9", "E11.65", "I10"], ["es"] * 3)
    assert own.similarity > 0.5 and own.own_code == own.own_category == pytest.approx(own.similarity, abs=1e-5)
    assert own.other_category == 0.0 and not own.nearest
    assert sibling.own_code == 0.0 and sibling.own_category > 0.5
    assert sibling.sibling == pytest.approx(sibling.own_category, abs=1e-5)
    assert other.own_category == 0.0 and other.other_category > 0.5
    assert (other.nearest, other.nearest_code) == ("diabetes mellitus tipo 2", "E11.9")


def test_an_attested_mention_or_an_unknown_language_has_no_near_standing():
    ref = CodedReference.from_mentions(REFERENCE)
    assert ref.standings(["itu", "diabetes mellitus tipo 2", "diabetes"], ["N39.0", "E11.9", "E11.9"],
                         ["es", "es", "pt"]) == [None, None, None]


def test_the_reference_pickles_without_its_ngram_indexes():
    """Ray ships the reference to workers: the indexes are rebuilt there, not pickled."""
    import pickle

    ref = CodedReference.from_mentions(REFERENCE)
    before = ref.standings(["masa renal izquierda"], ["N28.89"], ["es"])
    copy = pickle.loads(pickle.dumps(ref))
    assert not copy._indexes and not copy._words and copy.standings(["masa renal izquierda"], ["N28.89"], ["es"]) == before


def test_the_audit_decides_unattested_mentions_with_the_reference_variant(terminology):
    """With a reference, a mention clinicians did not write word for word is decided by the variant fitted
    with the near-match features, and a category finding cites the similar mention."""
    decision, info = _audit(terminology, "diabetes mellitus tipo 2 descompensada", "I10")
    assert "lexical+reference" in info["variant"]["referenced"] and info["reference"]["near_scored"] == 1
    finding = next(f for f in decision.findings if f.reason in FIT_REASONS)
    assert not decision.accepted and finding.reason == "other_chapter"
    assert "clinicians coded the similar 'diabetes mellitus tipo 2' as E11.9" in finding.detail
    right, _ = _audit(terminology, "diabetes mellitus tipo 2 descompensada", "E11.9")
    assert not [f for f in right.findings if f.reason in FIT_REASONS]


def test_a_word_clinicians_wrote_in_the_reference_is_a_word(terminology):
    """'yugal' is in no hunspell dictionary: flagged without a reference, known with one that has it in
    another mention (the mention itself is not attested word for word). wordfreq has seen it written,
    which keeps it without a reference: that vote is off here."""
    reference = CodedReference.from_mentions([LabelledMention("ulcera yugal derecha", "K12.39", "es", 2)])
    config = AuditConfig.model_validate({"embeddings": False, "spelling": {"usage_zipf": None}})
    for ref in (None, reference):
        auditor = Auditor(config, terminology=terminology, reference=ref)
        decision = auditor.audit_chunk([parse_record(1, {"mention": "lesión mucosa yugal", "code": "K13.70",
                                                         "language": "es", "model": "gen"})])[0]
        spelling = [f for f in decision.findings if f.check == "spelling"]
        assert bool(spelling) == (ref is None), decision.findings
        if ref is not None:
            info = next(c for c in auditor.checks if c.name == "spelling").info()
            assert info["known_from_reference"] == 1 and info["skipped_attested_in_reference"] == 0


def test_a_mention_in_words_clinicians_wrote_is_not_called_another_language(terminology):
    """The detector reads "parestesias en ambas extremidades inferiores" as Portuguese; every word of it
    is in the reference's Spanish, so the language check keeps it (and says so in its info). Every word of
    it is in Spanish dictionaries too, which keep it without a reference: that vote is off here."""
    reference = CodedReference.from_mentions([
        LabelledMention("parestesias en manos", "R20.2", "es", 2),
        LabelledMention("edema en ambas extremidades inferiores", "R60.0", "es", 3)])
    config = AuditConfig.model_validate({"embeddings": False, "language": {"dictionary_vote": False}})
    for ref in (None, reference):
        auditor = Auditor(config, terminology=terminology, reference=ref)
        decision = auditor.audit_chunk([parse_record(1, {"mention": "parestesias en ambas extremidades inferiores",
                                                         "code": "R20.2", "language": "es", "model": "gen"})])[0]
        language = [f for f in decision.findings if f.check == "language"]
        assert bool(language) == (ref is None), decision.findings
    info = next(c for c in auditor.checks if c.name == "language").info()
    assert info["kept_by_reference_vocabulary"] == 1


def test_a_portuguese_mention_is_still_portuguese_beside_a_spanish_reference(terminology):
    reference = CodedReference.from_mentions([LabelledMention("infeccion del tracto urinario", "N39.0", "es", 2)])
    auditor = Auditor(AuditConfig(embeddings=False), terminology=terminology, reference=reference)
    decision = auditor.audit_chunk([parse_record(1, {"mention": "infecção do trato urinário de repetição",
                                                     "code": "N39.0", "language": "es", "model": "gen"})])[0]
    assert [f.reason for f in decision.findings if f.check == "language"] == ["wrong_language"]
