import pytest

from clinassay.retrieval.heldout import heldout_label_items
from clinassay.terminology import load_terminology


@pytest.fixture(scope="module")
def term():
    return load_terminology()


def test_heldout_labels_avoid_excluded_codes_and_trivial_queries(term) -> None:
    pool = [c for c in term.billable_codes() if c.startswith("N3")]
    exclude = {"N39.0", "N30.00"}
    items = heldout_label_items(term, codes=pool, languages=["es", "fr", "en", "ca"], per_language=5,
                                exclude=exclude, seed=1)
    by_language = {lang: [i for i in items if i.language == lang] for lang in ("es", "fr", "en", "ca")}
    assert len(by_language["es"]) == 5 and len(by_language["fr"]) == 5
    assert by_language["ca"] == []  # no Catalan table offline: nothing invented
    assert not {i.code for i in items} & exclude
    for item in items:
        if item.language == "en":
            assert item.mention.casefold() != term.get(item.code).title.casefold()
            assert item.mention in term.get(item.code).inclusion_terms
        else:
            label = term.label(item.code, item.language)
            assert label.precision == "exact" and label.text == item.mention


def test_heldout_is_deterministic_per_seed(term) -> None:
    pool = [c for c in term.billable_codes() if c.startswith("J")]
    a = heldout_label_items(term, codes=pool, languages=["pt"], per_language=8, seed=3)
    b = heldout_label_items(term, codes=pool, languages=["pt"], per_language=8, seed=3)
    c = heldout_label_items(term, codes=pool, languages=["pt"], per_language=8, seed=4)
    assert a == b and a != c
