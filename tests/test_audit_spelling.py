"""The spelling check: misspelt near-words are flagged in the six languages with a plain suggestion;
clinical words a general dictionary lacks, acronyms, names and far-off tokens are not; without the
hunspell dictionaries the check says so and keeps working on the terminology's words."""

from __future__ import annotations

import logging
import time

import pytest

from clinassay.audit import AuditConfig
from clinassay.audit.checks import AuditResources
from clinassay.audit.checks.spelling import SpellingCheck
from clinassay.audit.items import Chunk, Item
from clinassay.audit.spelling import cognate_key, find_dictionaries, spelling_tokens

needs_dictionaries = pytest.mark.skipif(
    bool(find_dictionaries("es")[1] or find_dictionaries("pt")[1]),
    reason="the Debian hunspell dictionaries are not installed (make setup / .ci/run installs them)")


def _check(terminology, **spelling) -> SpellingCheck:
    config = AuditConfig(spelling=spelling) if spelling else AuditConfig()
    return SpellingCheck(config, AuditResources(terminology=terminology))


def _run(check: SpellingCheck, pairs: list[tuple[str, str]]):
    items = [Item(n, {}, mention, "R69", language, "gen") for n, (mention, language) in enumerate(pairs, 1)]
    return check.check_chunk(Chunk(items))


def test_tokens_keep_catalan_geminate_l_and_drop_words_glued_to_digits() -> None:
    assert list(spelling_tokens("col·lecistitis T2DM, l'infection")) == [
        ("col·lecistitis", "collecistitis"), ("l", "l"), ("infection", "infection")]


def test_cognate_keys_meet_across_languages_and_short_stems_do_not() -> None:
    assert cognate_key("esplenicas") == cognate_key("splenic")
    assert cognate_key("leucocitosis") == cognate_key("leukocytosis")
    assert cognate_key("infeccion") == cognate_key("infection")
    assert cognate_key("caso") != cognate_key("casa")


@needs_dictionaries
def test_the_issue_examples_are_flagged_with_a_plain_suggestion(terminology) -> None:
    check = _check(terminology)
    found = _run(check, [("anemia esferocrítica hereditaria", "es"), ("infección tardéria de urinosa", "es"),
                         ("pneumção bacteriana", "pt")])
    words = [[f.neighbour["word"] for f in findings] for findings in found]
    assert words[0] == ["esferocrítica"] and "tardéria" in words[1] and words[2] == ["pneumção"]
    detail = found[2][0].detail
    assert detail.startswith("'pneumção' is not a Portuguese word; did you mean '") and detail.endswith("'?")
    assert all(f.reason == "misspelling" and f.severity == "fail" and 0 < f.score <= 1 for fs in found for f in fs)


@needs_dictionaries
@pytest.mark.parametrize("mention, language", [
    ("insuffisance cardiaque congestivve", "fr"),   # a doubled letter: cognates ignore doubling, this must not
    ("dolore toracicco oppressivo", "it"),
    ("community acquired pnuemonia", "en"),
    ("acute apendicitis", "en"),                    # English has no cognate step
    ("infecció del tracte uirnari", "ca"),
])
def test_misspellings_in_other_languages(terminology, mention, language) -> None:
    assert _run(_check(terminology), [(mention, language)])[0], mention


@needs_dictionaries
@pytest.mark.parametrize("mention, language", [
    ("colecistitis aguda litiásica", "es"),          # not in es_ES: a terminology / cognate word
    ("adenopatías retroperitoneales metastásicas", "es"),  # inflection, prefix, adjective of 'metástasis'
    ("hepatoesplenomegalia", "es"),                   # combining form + word
    ("EPOC reagudizada", "es"),                       # acronym
    ("enfermedad de Crohn", "es"),                    # a name inside the mention
    ("tratamiento con dapagliflozina", "es"),         # far from every word: a drug, not a misspelling
    ("infeccion urinaria", "es"),                     # a missing accent is not a misspelling
    ("pneumònia adquirida a la comunitat", "ca"),
    ("infecção do trato urinário", "pt"),
    ("douleur thoracique constrictive", "fr"),
    ("dolore toracico oppressivo", "it"),
    ("Fournier gangrene of the scrotum", "en"),
])
def test_correct_clinical_mentions_are_not_flagged(terminology, mention, language) -> None:
    assert _run(_check(terminology), [(mention, language)]) == [[]]


@needs_dictionaries
def test_derived_words_and_closing_combining_forms_are_words_unless_a_word_is_one_edit_away(terminology) -> None:
    """CodiEsp's 'anexectomía', 'rectorragia', 'trombosada', 'histerectomizada', 'enfisematosa' are in no
    dictionary and were rejected as misspellings: each is a known word + a combining form or a derivation.
    A typo that reads the same way ('sacroma': 'sarcoma' mistyped; 'trataado') is still one."""
    words = [("antecedentes de anexectomía unilateral", "es"), ("rectorragia", "es"), ("vena renal trombosada", "es"),
             ("paciente histerectomizada", "es"), ("colecistitis enfisematosa", "es"), ("plaquetopenia", "es"),
             ("anemización", "es")]
    typos = [("sacroma de Ewing", "es"), ("trataado con quimioterapia", "es")]
    found = _run(_check(terminology), words + typos)
    assert found[: len(words)] == [[]] * len(words)
    assert [f[0].neighbour["suggestion"] for f in found[len(words):]] == ["sarcoma", "tratado"]


@needs_dictionaries
def test_words_people_write_are_words_unless_they_are_a_common_words_typo(terminology) -> None:
    """CodiEsp's 'acúfenos', 'yugal', 'narinas' are in no hunspell dictionary and were flagged; wordfreq
    has seen each written in Spanish. 'diabetis' and 'aquise' are seen too, as typos of far more common
    words: still flagged."""
    words_in_use = [("acúfenos bilaterales", "es"), ("lesión mucosa yugal", "es"), ("narinas obstruidas", "es")]
    typos = [("diabetis mellitus tipo 2", "es"), ("pneumonie aquise en communauté", "fr")]
    check = _check(terminology)
    found = _run(check, words_in_use + typos)
    assert found[:3] == [[], [], []]
    assert [f[0].neighbour["suggestion"] for f in found[3:]] == ["diabetes", "acquise"]
    assert check.info()["known_from_usage"] == 3
    assert all(_run(_check(terminology, usage_zipf=None), words_in_use))


@needs_dictionaries
def test_a_word_far_from_every_word_and_never_written_is_warned(terminology) -> None:
    """The embedded Gemma's 'uroglo' and 'ammonitaciones' are no near-miss of any word, so the misspelling
    rule passed them silently; so is a rare clinical term ('orquiepididimitis'), hence a warning."""
    mentions = [("envejecimiento del uroglo", "es"), ("ammonitaciones de la columna", "es"),
                ("orquiepididimitis crónica", "es"), ("infección del tracto urinario", "es")]
    check = _check(terminology)
    found = _run(check, mentions)
    assert [[(f.reason, f.severity, f.neighbour["word"]) for f in fs] for fs in found] == [
        [("unknown_word", "warn", "uroglo")], [("unknown_word", "warn", "ammonitaciones")],
        [("unknown_word", "warn", "orquiepididimitis")], []]
    assert check.info()["unknown_words_warned"] == 3
    assert _run(_check(terminology, unknown_word_severity=None), mentions[:1]) == [[]]


@needs_dictionaries
def test_pairs_in_another_language_are_left_to_the_language_check(terminology) -> None:
    from clinassay.audit.findings import Finding

    check = _check(terminology)
    item = Item(1, {}, "malaltia renal crònica", "N18.9", "es", "gen")
    item.findings.append(Finding("language", "wrong_language", 0.9, "written in ca", "fail"))
    assert check.check_chunk(Chunk([item])) == [[]]
    assert check.summary().info["skipped_other_language"] == 1


@needs_dictionaries
def test_lookups_are_fast_once_the_lexicon_is_loaded(terminology) -> None:
    check = _check(terminology)
    mentions = [("insuficiencia cardiaca congestiva descompensada", "es"), ("neumonía adqirida en la comunidad", "es"),
                ("hipertensión arterial esencial de larga evolución", "es")] * 300
    check.lexicon("es")
    started = time.perf_counter()
    found = _run(check, mentions)
    rate = len(mentions) / (time.perf_counter() - started)
    assert sum(bool(f) for f in found) == 300
    assert rate > 1000, f"{rate:.0f} pairs/s"


def test_without_dictionaries_the_check_says_so_once_and_uses_the_terminology(terminology, tmp_path, caplog) -> None:
    check = _check(terminology, dictionary_dirs=[str(tmp_path / "none")], cache_dir=str(tmp_path / "cache"))
    with caplog.at_level(logging.WARNING, logger="audit.checks.spelling"):
        found = _run(check, [("infección urinaria", "es"), ("infeccion urinarai", "es"), ("neumonía", "es")])
    warnings = [r for r in caplog.records if "no hunspell dictionary" in r.getMessage()]
    assert len(warnings) == 1 and "hunspell-es" in warnings[0].getMessage()
    assert found[0] == [] and found[2] == []
    assert [f.neighbour["word"] for f in found[1]] == ["urinarai"]  # 'urinaria' is a terminology word
    info = check.summary().info
    assert "no hunspell dictionary for Spanish" in info["dictionaries_missing"]
    assert info["lexicons"]["es"]["dictionaries"] == [] and info["lexicons"]["es"]["clinical_words"] > 1000


def test_disabled_check_says_nothing(terminology) -> None:
    assert _run(_check(terminology, enabled=False), [("neumonía adqirida", "es")]) == [[]]
