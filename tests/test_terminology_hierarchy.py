"""The parsed ICD-10-CM FY2026 classification: completeness, hierarchy, 7th-character codes, lookup
errors and sex restrictions. Reads the installed `simple-icd-10-cm` package (parsed once per session)."""

from pathlib import Path

import pytest

from clinassay.terminology import Code, MalformedCodeError, UnknownCodeError, load_terminology
from clinassay.terminology.icd10cm import read_code_list
from clinassay.terminology.sex import STRUCTURAL_SEX_RESTRICTIONS
from clinassay.terminology import sources


@pytest.fixture(scope="session")
def term(tmp_path_factory):
    return load_terminology(cache_dir=tmp_path_factory.getbasetemp() / "terminology-cache")


def test_counts_match_the_cms_code_list(term) -> None:
    listed = {c for c in read_code_list(sources.icd10cm_code_list()) if "-" not in c and not c.isdigit()}
    parsed = {c.replace(".", "") for c in term.codes() if term.get(c).kind in ("category", "code")}
    assert parsed == listed
    assert len(term.chapters()) == 22
    assert 74_000 <= len(term.billable_codes()) <= 75_500


def test_a_code_record(term) -> None:
    code = term.get("n390")
    assert isinstance(code, Code)
    assert (code.code, code.kind, code.parent, code.billable, code.chapter) == ("N39.0", "code", "N39", True, "14")
    assert code.title == "Urinary tract infection, site not specified"
    assert "pyuria (R82.81)" in code.excludes1
    assert any(n.startswith("Use additional code") for n in code.notes)


def test_hierarchy_up_and_down(term) -> None:
    assert term.ancestors("N39.0") == ["N39", "N30-N39", "14"]
    assert term.get("N39").kind == "category" and not term.get("N39").billable
    assert "N39.0" in term.get("N39").children
    assert term.get("N30-N39").kind == "block" and term.get("N30-N39").parent == "14"
    assert term.get("14").kind == "chapter" and term.get("14").parent is None
    assert term.siblings("N39.0") == ["N39.3", "N39.4", "N39.8", "N39.9"]
    assert "2" in term.siblings("1") and "1" not in term.siblings("1")
    assert term.chapter_of("S22.49XA") == "19"


def test_seventh_character_codes(term) -> None:
    parent = term.get("S22.49")
    assert not parent.billable
    assert parent.children == ("S22.49XA", "S22.49XB", "S22.49XD", "S22.49XG", "S22.49XK", "S22.49XS")
    code = term.get("s2249xa")
    assert code.billable and code.parent == "S22.49"
    assert code.title == "Multiple fractures of ribs, unspecified side, initial encounter for closed fracture"
    assert term.ancestors("S22.49XA") == ["S22.49", "S22.4", "S22", "S20-S29", "19"]
    assert "S22.49XA" in term.billable_codes()
    assert term.find("T07.XXXA") is not None  # category-level placeholder padding


def test_inclusion_terms_and_excludes2(term) -> None:
    assert "Classical cholera" in term.get("A00.0").inclusion_terms
    assert term.get("S22").excludes2  # fracture of clavicle (S42.0-)


def test_one_category_blocks_do_not_collide(term) -> None:
    assert term.get("B99").kind == "category"
    assert term.get("B99-B99").kind == "block"
    assert term.get("B99").parent == "B99-B99"


def test_unknown_code_suggests_neighbours(term) -> None:
    with pytest.raises(UnknownCodeError) as info:
        term.get("N39.7")
    assert info.value.suggestions[:2] == ["N39.0", "N39.3"]
    assert "did you mean N39.0" in str(info.value)
    with pytest.raises(UnknownCodeError) as info:
        term.get("S22.49XZ")
    assert "S22.49XA" in info.value.suggestions


def test_malformed_and_find(term) -> None:
    with pytest.raises(MalformedCodeError):
        term.get("N3")
    assert term.find("N3") is None and term.find("N39.7") is None
    assert "n39.0" in term and "N39.7" not in term


def test_structural_sex_list_matches_the_classification(term) -> None:
    for node, (_sex, title) in STRUCTURAL_SEX_RESTRICTIONS.items():
        assert term.get(node).title == title


@pytest.mark.parametrize(
    "code, sex",
    [("O80", "female"), ("N40.0", "male"), ("C61", "male"), ("C53.9", "female"), ("N95.1", "female"),
     ("Z33.1", "female"), ("N39.0", None), ("C50.911", None), ("S22.49XA", None)],
)
def test_structural_sex_restrictions(term, code, sex) -> None:
    assert term.sex_restriction(code) == sex


def test_warm_load_reads_the_cache(tmp_path_factory, monkeypatch) -> None:
    from clinassay.terminology import terminology as module

    cache = tmp_path_factory.getbasetemp() / "terminology-cache"
    load_terminology(cache_dir=cache)
    assert list(Path(cache).glob("core-*.pickle"))
    module.forget_loaded()
    monkeypatch.setattr(module, "_build_core", lambda *a: pytest.fail("warm load parsed the sources again"))
    assert load_terminology(cache_dir=cache).get("N39.0").code == "N39.0"
