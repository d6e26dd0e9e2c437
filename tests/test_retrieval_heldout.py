import pytest

from clinassay.retrieval.heldout import heldout_label_items


def test_heldout_labels_avoid_excluded_codes_and_trivial_queries(terminology) -> None:
    pool = [c for c in terminology.billable_codes() if c.startswith("N3")]
    exclude = {"N39.0", "N30.00"}
    items = heldout_label_items(terminology, codes=pool, languages=["es", "fr", "en", "ca"], per_language=5,
                                exclude=exclude, seed=1)
    by_language = {lang: [i for i in items if i.language == lang] for lang in ("es", "fr", "en", "ca")}
    assert len(by_language["es"]) == 5 and len(by_language["fr"]) == 5
    assert by_language["ca"] == []  # no Catalan table offline: nothing invented
    assert not {i.code for i in items} & exclude
    for item in items:
        if item.language == "en":
            assert item.mention.casefold() != terminology.get(item.code).title.casefold()
            assert item.mention in terminology.get(item.code).inclusion_terms
        else:
            label = terminology.label(item.code, item.language)
            assert label.precision == "exact" and label.text == item.mention


def test_heldout_is_deterministic_per_seed(terminology) -> None:
    pool = [c for c in terminology.billable_codes() if c.startswith("J")]
    a = heldout_label_items(terminology, codes=pool, languages=["pt"], per_language=8, seed=3)
    b = heldout_label_items(terminology, codes=pool, languages=["pt"], per_language=8, seed=3)
    c = heldout_label_items(terminology, codes=pool, languages=["pt"], per_language=8, seed=4)
    assert a == b and a != c


# --- clinician-style held-out sets ------------------------------------------------------------------

from pathlib import Path  # noqa: E402

DATASUS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "terminology" / "pt_datasus"


@pytest.fixture(scope="module")
def clinician(terminology):
    from clinassay.retrieval.heldout import clinician_heldout_items

    codes = list(terminology.billable_codes())
    planned = codes[::7]  # stands in for a generation plan
    items, stats = clinician_heldout_items(terminology, codes=codes, languages=["es", "ca", "pt", "fr", "it", "en"],
                                           exclude=planned, seed=3, datasus_dir=DATASUS if DATASUS.is_dir() else None)
    return codes, set(planned), items, stats


def test_clinician_heldout_has_200_items_per_language_and_names_catalan(clinician) -> None:
    _, _, items, stats = clinician
    for language in ("es", "pt", "fr", "it", "en"):
        assert sum(i.language == language for i in items) >= 200, (language, stats["per_language"][language])
    assert stats["no_evaluation_data"] == ["ca"] and stats["per_language"]["ca"]["items"] == 0
    # mostly clinician-like queries, not label lookups (Italian, with 405 labels offline, has the most)
    for language in ("es", "pt", "fr", "en"):
        kinds = stats["per_language"][language]["kinds"]
        assert kinds.get("label", 0) == 0 and kinds["abbreviation"] >= 5, (language, kinds)
    assert stats["per_language"]["it"]["kinds"]["label"] <= 0.6 * 250


def test_clinician_heldout_codes_are_held_out_with_siblings_and_queries_are_not_titles(terminology, clinician) -> None:
    codes, planned, items, _ = clinician
    corpus = set(codes)
    assert not {i.code for i in items} & planned
    for item in items:
        assert any(s in corpus for s in terminology.siblings(item.code)), item
        if item.language == "en":
            assert item.mention.casefold() != terminology.get(item.code).title.casefold(), item
    assert len({(i.code, i.language) for i in items}) == len(items)  # one item per code and language


@pytest.mark.skipif(not DATASUS.is_dir(), reason="DATASUS CID-10 not under ../shared/data")
def test_clinician_heldout_takes_datasus_abbreviations_for_portuguese(clinician) -> None:
    from clinassay.retrieval.heldout import datasus_abbreviations

    abbreviated = datasus_abbreviations(DATASUS)
    assert abbreviated["A001"] == "Colera dev Vibrio cholerae 01 biot El Tor"
    _, _, items, stats = clinician
    assert stats["datasus"] and stats["per_language"]["pt"]["kinds"]["datasus_abbreviated"] >= 50
    assert any(i.language == "pt" and i.mention in abbreviated.values() for i in items)


def test_clinician_heldout_is_deterministic_and_validates(terminology) -> None:
    from clinassay.retrieval.heldout import clinician_heldout_items

    codes = [c for c in terminology.billable_codes() if c.startswith(("J", "N"))]
    first, _ = clinician_heldout_items(terminology, codes=codes, languages=["es"], per_language=30, seed=1)
    again, _ = clinician_heldout_items(terminology, codes=codes, languages=["es"], per_language=30, seed=1)
    assert first == again and len(first) == 30
    with pytest.raises(ValueError, match="per_language"):
        clinician_heldout_items(terminology, codes=codes, languages=["es"], per_language=0)
