"""Importers: DATASUS CSVs and plain TSV, good and broken files, precedence over WHO labels."""

import shutil
from pathlib import Path

import pytest

from clinassay.terminology import ClinassayInputError, load_terminology
from clinassay.terminology.imports import ImportFileError, import_datasus, import_tsv, imported_tables, remove_import

DATA = Path(__file__).parent / "data" / "terminology"
SHARED_DATASUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "terminology" / "pt_datasus"


@pytest.fixture(scope="session")
def parsed_cache(tmp_path_factory) -> Path:
    cache = tmp_path_factory.getbasetemp() / "terminology-cache"
    load_terminology(cache_dir=cache)
    return cache


@pytest.fixture
def cache(tmp_path, parsed_cache) -> Path:
    """A cache of its own (imports must not leak between tests), reusing the parsed core."""
    own = tmp_path / "terminology"
    own.mkdir()
    for core in parsed_cache.glob("core-*.pickle"):
        shutil.copy(core, own / core.name)
    return own


def test_datasus_import_labels_and_sex(cache) -> None:
    table = import_datasus(DATA / "datasus_good", cache_dir=cache)
    assert len(table.labels["pt"]) == 10 and table.sex == {"N400": "male", "N951": "female", "K210": "female"}
    term = load_terminology(cache_dir=cache)
    label = term.label("N39.0", "pt")
    assert (label.source, label.precision) == ("datasus", "exact") and "(teste)" in label.text
    assert term.label("E11.65", "pt").source == "datasus" and term.label("E11.65", "pt").precision == "subcategory"
    assert term.label("E11.9", "pt").precision == "category"  # DATASUS test table lacks E119
    assert term.label("N40.0", "pt").source == "datasus"
    assert term.label("J45.909", "pt").source == "who"  # not in the imported table: WHO still answers
    assert term.sex_restriction("K21.0") == "female"  # the imported restriction wins
    assert term.sex_restriction("K21.9") is None


def test_broken_datasus_imports_nothing(cache) -> None:
    with pytest.raises(ImportFileError) as info:
        import_datasus(DATA / "datasus_broken", cache_dir=cache)
    message = str(info.value)
    assert "CID-10-SUBCATEGORIAS.csv:4: SUBCAT 'N3X' is not a 4-character subcategory" in message
    assert "CID-10-SUBCATEGORIAS.csv:5: RESTRSEXO '7'" in message
    assert message.startswith("nothing was imported")
    assert imported_tables(cache) == []
    assert load_terminology(cache_dir=cache).label("N39.0", "pt").source == "who"


def test_datasus_missing_files(cache, tmp_path) -> None:
    with pytest.raises(ClinassayInputError, match="lacks CID-10-SUBCATEGORIAS.csv"):
        import_datasus(tmp_path, cache_dir=cache)


def test_tsv_import_and_precedence(cache) -> None:
    table = import_tsv(DATA / "good.tsv", cache_dir=cache)
    assert table.name == "good" and table.source == "import:good"
    term = load_terminology(cache_dir=cache)
    ca = term.label("N39.0", "ca")
    assert (ca.text, ca.precision, ca.source) == ("Infecció del tracte urinari, localització no especificada", "exact", "import:good")
    assert term.label("E11.65", "ca").precision == "category"
    assert term.label("N39.0", "es").source == "import:good"  # imported beats WHO at equal precision
    assert term.label("S22.49XA", "es").precision == "exact"
    assert term.label("J45.909", "es").source == "who"
    assert remove_import("good", cache_dir=cache)
    assert load_terminology(cache_dir=cache).label("N39.0", "ca") is None


def test_broken_tsv_imports_nothing(cache) -> None:
    with pytest.raises(ImportFileError) as info:
        import_tsv(DATA / "broken.tsv", name="cat", cache_dir=cache)
    message = str(info.value)
    assert "broken.tsv:3: malformed ICD-10 code 'N3..9'" in message
    assert "broken.tsv:4: expected 3 tab-separated fields" in message
    assert imported_tables(cache) == []


def test_tsv_rejects_conflicts_and_bad_names(cache, tmp_path) -> None:
    conflicting = tmp_path / "conflict.tsv"
    conflicting.write_text("N39.0\tca\tU\nn390\tca\tV\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="conflict.tsv:2: n390 \\(ca\\) already has another label"):
        import_tsv(conflicting, cache_dir=cache)
    latin1 = tmp_path / "latin1.tsv"
    latin1.write_bytes("N39.0\tca\tInfecció\n".encode("latin-1"))
    with pytest.raises(ImportFileError, match="latin1.tsv:1: not UTF-8"):
        import_tsv(latin1, cache_dir=cache)
    with pytest.raises(ClinassayInputError, match="import name"):
        import_tsv(DATA / "good.tsv", name="Bad Name", cache_dir=cache)


@pytest.mark.skipif(not SHARED_DATASUS.is_dir(), reason="../shared/data/terminology/pt_datasus is not present")
def test_real_datasus_copy(cache) -> None:
    table = import_datasus(SHARED_DATASUS, cache_dir=cache)
    assert len(table.labels["pt"]) > 14_000
    assert len(table.sex) > 800
    term = load_terminology(cache_dir=cache)
    assert term.label("N39.0", "pt").text == "Infecção do trato urinário de localização não especificada"
    assert term.sex_restriction("N40.0") == "male"
