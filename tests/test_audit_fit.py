"""The fit check: a mention must fit its code against the whole classification (audit/fit.py,
audit/misfit.py, audit/fit_model.py), and the seeded code swaps it is measured with (audit/faults.py)."""

from __future__ import annotations

import random

import pytest

from clinassay.audit import AuditConfig, Auditor
from clinassay.audit.faults import SWAP_KINDS, CodeSwapper, swap_sets
from clinassay.audit.fit_model import LEXICAL, load_fit_models
from clinassay.audit.reader import parse_record

FIT_REASONS = {"other_chapter", "same_chapter", "sibling"}


@pytest.fixture(scope="module")
def terminology():
    from clinassay.terminology import load_terminology

    return load_terminology()


@pytest.fixture(scope="module")
def auditor_factory(terminology):
    def make(**fit):
        config = AuditConfig.model_validate({"embeddings": False, "fit": fit})
        return Auditor(config, terminology=terminology)

    return make


def _audit(auditor, mention, code, language="es"):
    record = {"mention": mention, "code": code, "language": language, "model": "gen"}
    return auditor.audit_chunk([parse_record(1, record)])[0]


@pytest.mark.parametrize("mention, code, better, level", [
    ("infarto agudo de miocardio", "J18.9", "I21", "other_chapter"),
    ("apendicitis aguda", "N39.0", "K35", "other_chapter"),
    ("neumonía", "J45.909", "J18", "same_chapter"),
])
def test_a_code_from_elsewhere_is_rejected_naming_the_code_that_fits(auditor_factory, mention, code, better, level):
    decision = _audit(auditor_factory(), mention, code)
    fit = [f for f in decision.findings if f.reason in FIT_REASONS]
    assert not decision.accepted and fit, decision.findings
    assert fit[0].reason == level and fit[0].neighbour["code"] == better
    assert better in fit[0].detail and f"{code} is" in fit[0].detail


@pytest.mark.parametrize("mention, code", [
    ("infección del tracto urinario", "N39.0"),
    ("infarto agudo de miocardio", "I21.9"),
    ("apendicitis aguda", "K35.80"),
    ("Basophilic leukopenia", "D72.818"),  # an inclusion term of D72.818, close to D72.824 Basophilia
])
def test_right_pairs_and_official_terms_have_no_fit_finding(auditor_factory, mention, code):
    decision = _audit(auditor_factory(), mention, code, "en" if mention[0].isupper() else "es")
    assert not [f for f in decision.findings if f.reason in FIT_REASONS], decision.findings


def test_no_official_term_is_ever_told_it_fits_another_code(auditor_factory, terminology):
    """Titles, inclusion terms and Spanish labels of 300 random billable codes, each as a mention of
    its own code: the fit check says nothing about any of them."""
    rng = random.Random(3)
    codes = rng.sample(terminology.billable_codes(), 300)
    auditor = auditor_factory(operating_point="strict")
    pairs = []
    for code in codes:
        entry = terminology.get(code)
        pairs.append({"mention": entry.title, "code": code, "language": "en"})
        pairs.extend({"mention": t, "code": code, "language": "en"} for t in entry.inclusion_terms[:2])
        label = terminology.label(code, "es")
        if label is not None and label.precision == "exact":
            pairs.append({"mention": label.text, "code": code, "language": "es"})
    decisions = auditor.audit_chunk([parse_record(i + 1, p) for i, p in enumerate(pairs)])
    told = [(d.record["mention"], d.record["code"], [f.detail for f in d.findings if f.reason in FIT_REASONS])
            for d in decisions if any(f.reason in FIT_REASONS for f in d.findings)]
    assert len(pairs) > 300 and told == []


def test_stricter_operating_points_reject_at_least_as_much(auditor_factory):
    models = load_fit_models()
    for variant in models.variants.values():
        points = variant.operating_points
        assert points["lenient"].category >= points["balanced"].category >= points["strict"].category
        assert points["lenient"].false_reject_target < points["balanced"].false_reject_target < points["strict"].false_reject_target
    assert LEXICAL in models.variants and models.command.startswith("python bench/fit_operating_points.py")


def test_an_unfitted_encoder_falls_back_to_the_lexical_models():
    name, _ = load_fit_models().variant("some-other-encoder")
    assert name == LEXICAL


def test_the_summary_carries_the_fit_distribution_per_generator_and_language(auditor_factory):
    auditor = auditor_factory()
    pairs = [{"mention": "infarto agudo de miocardio", "code": "J18.9", "language": "es", "model": "g1"},
             {"mention": "infección urinaria", "code": "N39.0", "language": "es", "model": "g2"}]
    auditor.audit_chunk([parse_record(i + 1, p) for i, p in enumerate(pairs)])
    info = next(c for c in auditor.checks if c.name == "consistency").info()["fit"]
    assert set(info["histogram"]) == {"g1", "g2"} and sum(info["histogram"]["g1"]["es"]) == 1
    assert info["findings"].get("other_chapter") == 1 and len(info["bins"]) == 11


def test_unverifiable_mentions_are_warned_not_passed_silently(auditor_factory):
    decision = _audit(auditor_factory(), "qqzx", "J18.9")
    assert any(f.reason == "unverified" and f.severity == "warn" for f in decision.findings)


def test_swaps_are_seeded_disjoint_and_at_their_distance(terminology):
    swapper = CodeSwapper(terminology)
    rng = random.Random(0)
    for kind in SWAP_KINDS:
        wrong = swapper.swap("N39.0", kind, rng)
        entry = terminology.get(wrong)
        assert wrong != "N39.0" and entry.billable
        if kind == "sibling":
            assert wrong[:3] == "N39"
        elif kind == "same_chapter":
            assert wrong[:3] != "N39" and entry.chapter == terminology.get("N39.0").chapter
        else:
            assert entry.chapter != terminology.get("N39.0").chapter
    pairs = [{"mention": f"mención {i}", "code": c, "language": "es"}
             for i, c in enumerate(["N39.0", "I21.9", "J18.9", "K35.80", "E11.9"] * 8)]
    first = swap_sets(pairs, swapper, per_kind=5, seed=7)
    assert first == swap_sets(pairs, swapper, per_kind=5, seed=7)
    mentions = [p["mention"] for group in first.values() for p in group]
    assert len(mentions) == len(set(mentions)) == 20
    assert all(p["code"] != p["gold_code"] for k in SWAP_KINDS for p in first[k])
