"""Labels: English titles, WHO labels attached at each precision, the .po quirks, coverage."""

from pathlib import Path

import pytest

from clinassay.terminology import ClinassayInputError, Label, load_terminology
from clinassay.terminology.coverage import coverage, language_coverage
from clinassay.terminology.who import read_who_labels

DATA = Path(__file__).parent / "data" / "terminology"


@pytest.fixture(scope="session")
def term(tmp_path_factory):
    return load_terminology(cache_dir=tmp_path_factory.getbasetemp() / "terminology-cache")


def test_english_is_the_icd10cm_title(term) -> None:
    assert term.label("N39.0", "en") == Label(
        "Urinary tract infection, site not specified", "en", "exact", "icd10cm", "N39.0"
    )


def test_exact_label(term) -> None:
    label = term.label("n390", "es")
    assert label == Label("Infección de vías urinarias, sitio no especificado", "es", "exact", "who", "N39.0")


def test_subcategory_label(term) -> None:
    label = term.label("E11.65", "es")
    assert (label.precision, label.matched_code, label.source) == ("subcategory", "E11.6", "who")
    assert label.text.startswith("Diabetes mellitus tipo 2")
    assert term.label("S22.49XA", "fr").precision == "subcategory"


def test_category_label(term) -> None:
    label = term.label("A07.1", "es")  # Giardiasis: WHO Spanish lacks A07.1, has A07
    assert (label.precision, label.matched_code) == ("category", "A07")


def test_missing_labels_stay_missing(term) -> None:
    assert term.label("N39.0", "ca") is None  # no offline Catalan table
    assert term.label("I10", "es") is None  # the Spanish .po says 'nan' here
    assert term.label("N39.0", "it") is None  # only ~430 Italian labels


def test_chapter_and_block_labels(term) -> None:
    assert term.label("14", "es").text == "Enfermedades del aparato genitourinario"
    assert term.label("N30-N39", "fr").text == "Autres maladies de l'appareil urinaire"


def test_labels_and_languages(term) -> None:
    labels = term.labels("N39.0")
    assert set(labels) == {"en", "es", "pt", "fr"}
    assert "ç" in labels["pt"].text and "ă" not in labels["pt"].text


def test_unknown_language_is_an_input_error(term) -> None:
    with pytest.raises(ClinassayInputError, match="'xx'"):
        term.label("N39.0", "xx")
    assert term.label("N39.0", "pt_BR").language == "pt"


def test_po_quirks_are_cleaned() -> None:
    fr_codes, fr_groups, fr_fixed = read_who_labels(DATA / "quirks.po", "fr")
    assert fr_codes["A000"] == "Choléra à Vibrio cholerae 01, biovar cholerae"  # hierarchy fragment completed
    assert "I10" not in fr_codes  # 'nan'
    assert "R51" not in fr_codes  # untranslated
    assert "N390" not in fr_codes  # empty
    assert "K210" not in fr_codes  # fuzzy
    assert fr_codes["A391"] == "Syndrome de Waterhouse-Friderichsen"  # asterisk reference dropped
    assert fr_codes["W000"] == "Chute de plain-pied due à la glace et la neige, domicile"
    assert fr_groups == {"14": "Maladies de l'appareil génito-urinaire", "N30-N39": "Autres maladies de l'appareil urinaire"}
    assert fr_fixed == 2
    pt_codes, _, pt_fixed = read_who_labels(DATA / "quirks.po", "pt")
    assert pt_codes["L010"] == "Impetigo [qualquer localização] [qualquer microorganismo]"
    assert pt_fixed == 1


def test_coverage_is_honest(term) -> None:
    by_language = {c.language: c for c in coverage(term)}
    assert by_language["en"].share == 1.0
    assert by_language["ca"].labelled == 0 and "Catalan" in by_language["ca"].gap
    assert by_language["it"].labelled < 2_000 and "Italian" in by_language["it"].gap
    es = language_coverage(term, "es")
    assert es.labelled == sum(es.by_precision.values()) and 0.8 < es.share < 1.0
    assert es.by_precision["subcategory"] > es.by_precision["exact"]
