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


def test_the_condition_a_code_first_note_names_is_warned_not_rejected(auditor_factory, terminology):
    """F02.80 (dementia in other diseases) says "Code first: Alzheimer's (G30.-)": CodiEsp codes
    "enfermedad de Alzheimer" F02.80 beside G30.9. An official term of G30 there is a warning naming G30;
    the same term on a manifestation code whose note does not cite it (L99, skin) is still rejected."""
    mention = terminology.label("G30.9", "es").text
    decision = _audit(auditor_factory(), mention, "F02.80")
    assert decision.accepted, decision.findings
    warned = [f for f in decision.findings if f.reason == "code_first"]
    assert warned and warned[0].severity == "warn" and warned[0].neighbour["code"].startswith("G30")
    assert not _audit(auditor_factory(), mention, "L99").accepted


def test_another_codes_term_written_in_the_codes_own_title_is_not_rejected_outright(auditor_factory):
    """'Pseudomonas aeruginosa' is a term of A41.52 (sepsis) and every word of it is in B96.5's title,
    'Pseudomonas (aeruginosa) (mallei) (pseudomallei) as the cause of diseases classified elsewhere':
    CodiEsp codes it B96.5, and it was rejected as same_chapter. On a code whose terms lack its words
    (N39.0) it still is."""
    assert _audit(auditor_factory(), "Pseudomonas aeruginosa", "B96.5").accepted
    rejected = _audit(auditor_factory(), "Pseudomonas aeruginosa", "N39.0")
    assert not rejected.accepted and rejected.findings[0].neighbour["code"] == "A41.52"


def test_one_word_for_a_code_that_needs_three_is_warned_less_specific(auditor_factory):
    """The embedded Gemma's 'duodenal' -> K26.3 (Acute duodenal ulcer without hemorrhage or perforation)
    passed without a finding: now a less_specific warning. Clinicians' 'hematuria' -> R31.9 (Hematuria,
    unspecified) and acronyms ('ITU' -> N39.0) are not warned."""
    warned = _audit(auditor_factory(), "duodenal", "K26.3")
    brief = [f for f in warned.findings if f.neighbour and f.neighbour.get("distance") == "brief"]
    assert warned.accepted and brief and brief[0].severity == "warn" and brief[0].reason == "less_specific"
    for mention, code in (("hematuria", "R31.9"), ("ITU", "N39.0")):
        findings = _audit(auditor_factory(), mention, code).findings
        assert not [f for f in findings if f.neighbour and f.neighbour.get("distance") == "brief"], findings


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


def test_the_standing_measures_how_far_the_codes_block_and_chapter_are_from_the_best_categories(terminology):
    """The hierarchy features: a right code's block and chapter hold the best category (gap 0); a code of
    another block of the same chapter is a block gap only; a code of another chapter is both gaps."""
    from clinassay.audit.fit import CorpusFit
    from clinassay.audit.text import normalize_text

    fit = CorpusFit(terminology, languages=["es", "en"])
    mention = normalize_text("infarto agudo de miocardio")
    right, same_chapter, other_chapter = (fit.score([(None, mention, code, "es")])[0]
                                          for code in ("I21.9", "I10", "J18.9"))
    names = ["lex_block_gap", "lex_chapter_gap"]
    assert right.features(names).tolist() == [0.0, 0.0]
    block_gap, chapter_gap = same_chapter.features(names)
    assert block_gap > 0 and chapter_gap == 0.0
    block_gap, chapter_gap = other_chapter.features(names)
    assert block_gap >= chapter_gap > 0
    assert "lex_chapter_gap" in load_fit_models().variants[LEXICAL].category.features


@pytest.mark.parametrize("warn_from", ["review", "strict"])
def test_a_pair_a_stricter_point_would_reject_is_warned_not_passed_silently(auditor_factory, warn_from):
    """'hemopericardio secundario a rotura de infarto' -> G25.83 (a movement disorder) passes the balanced
    lexical models; strict and review reject it, so balanced warns it `doubtful_fit` (from review by
    default), naming the code that fits."""
    pair = ("hemopericardio secundario a rotura de infarto", "G25.83")
    decision = _audit(auditor_factory(**({} if warn_from == "review" else {"warn_from": warn_from})), *pair)
    assert decision.accepted
    doubtful = [f for f in decision.findings if f.reason == "doubtful_fit"]
    assert doubtful and doubtful[0].severity == "warn" and doubtful[0].detail.startswith(f"{warn_from} would reject it")
    assert doubtful[0].neighbour["code"].startswith("I")
    assert not _audit(auditor_factory(warn_from=None), *pair).findings
    strict = _audit(auditor_factory(operating_point="strict"), *pair)
    assert not strict.accepted and not [f for f in strict.findings if f.reason == "doubtful_fit"]


def test_stricter_operating_points_reject_at_least_as_much(auditor_factory):
    models = load_fit_models()
    for variant in models.variants.values():
        points = variant.operating_points
        assert points["lenient"].category >= points["balanced"].category >= points["strict"].category
        targets = [points[p].false_reject_target for p in ("lenient", "balanced", "strict", "review")]
        assert targets == sorted(targets) and len(set(targets)) == 4
        # review (the default warn_from) flags, on the data it was fitted on, at least what strict rejects
        for kind, share in points["strict"].fitted.items():
            assert points["review"].fitted[kind] >= share, kind
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


# ---- the learned verifier (retrieval/verifier.py), injected: the audit asks it only through its protocol ----

class _TrigramEncoder:
    """Hashed character trigrams: a deterministic stand-in for an encoder, no model."""

    def __init__(self, name: str, verifier=None) -> None:
        self.name, self.verifier, self.fingerprint = name, verifier, f"{name}-trigram"

    def encode(self, texts, *, kind="query", batch_size=64, show_progress=False):
        import hashlib

        import numpy as np

        out = np.zeros((len(texts), 128), dtype=np.float32)
        for row, text in enumerate(texts):
            padded = f"  {text.casefold()}  "
            for i in range(len(padded) - 2):
                out[row, int(hashlib.md5(padded[i:i + 3].encode()).hexdigest()[:6], 16) % 128] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


class _FakeVerifier:
    """Says the claimed code's text fits (`prefers="own"`) or that the alternative does (`"other"`)."""

    name = "fake-verifier"

    def __init__(self, own_texts: set[str], prefers: str) -> None:
        self.own_texts, self.sign, self.asked = own_texts, 1.0 if prefers == "own" else -1.0, []

    def score(self, pairs):
        import numpy as np

        self.asked.extend(pairs)
        return np.array([3.0 * self.sign if text in self.own_texts else -3.0 * self.sign for _, text in pairs])


def _models_with_verifier():
    from clinassay.audit.fit_model import FitModels, FittedPoint, FitVariant, LogisticModel, VerifierGate

    def model(feature, coef, intercept):
        return LogisticModel(features=[feature], mean=[0.0], scale=[1.0], coef=[coef], intercept=intercept)

    points = {p: FittedPoint(category=0.5, member=0.5, false_reject_target=0.05, fitted={}) for p in
              ("lenient", "balanced", "strict", "review")}
    base = FitVariant(category=model("lex_gap", 4.0, -2.0), member=model("lex_member_gap", 4.0, -2.0),
                      operating_points=points)
    verified = FitVariant(category=model("ver_category_gap", 2.0, 0.0), member=model("ver_member_gap", 2.0, 0.0),
                          operating_points=points,
                          verifier=VerifierGate(verifier="fake-verifier", base="trigram", category=0.3, member=0.3,
                                                asked={}))
    return FitModels(fitted_on="test", command="test", variants={LEXICAL: base, "trigram": base,
                                                                 "trigram+fake-verifier": verified})


def _verified_audit(monkeypatch, terminology, prefers, *, wanted=True):
    from clinassay.audit.checks import consistency
    from clinassay.audit.fit import verifier_text

    monkeypatch.setattr(consistency, "load_fit_models", _models_with_verifier)
    own = {verifier_text(terminology, "J18.9", "es"), verifier_text(terminology, "N39.0", "es")}
    verifier = _FakeVerifier(own, prefers)
    config = AuditConfig.model_validate({"fit": {"verifier": wanted}, "duplicate": {"near": False}})
    auditor = Auditor(config, terminology=terminology, encoder=_TrigramEncoder("trigram", verifier))
    pairs = [{"mention": "infarto agudo de miocardio", "code": "J18.9", "language": "es", "model": "g"},
             {"mention": "infección del tracto urinario", "code": "N39.0", "language": "es", "model": "g"}]
    decisions = auditor.audit_chunk([parse_record(i + 1, p) for i, p in enumerate(pairs)])
    info = next(c for c in auditor.checks if c.name == "consistency").info()["fit"]
    return [[f.reason for f in d.findings if f.reason in FIT_REASONS] for d in decisions], verifier, info


def test_the_verifier_decides_the_pairs_its_gate_sends_it(monkeypatch, terminology):
    swapped_told, verifier, info = _verified_audit(monkeypatch, terminology, "other")
    assert swapped_told[0] == ["other_chapter"] and info["verifier"]["used"] and info["variant"]["verified"]
    # the right pair's base probability is below the gate: the verifier is never asked about it
    assert swapped_told[1] == [] and {m for m, _ in verifier.asked} == {"infarto agudo de miocardio"}
    assert info["verifier"]["asked"] == 1 and len(verifier.asked) >= 2  # its own code and the better category
    # the same wrong pair passes when the verifier says the claimed code fits: its logits, not the base, decided
    vouched, _, _ = _verified_audit(monkeypatch, terminology, "own")
    assert vouched[0] == []


def test_the_verifier_is_asked_only_when_configured(monkeypatch, terminology):
    told, verifier, info = _verified_audit(monkeypatch, terminology, "own", wanted=False)
    assert verifier.asked == [] and not info["verifier"]["used"] and told[0] == ["other_chapter"]  # the base decides


def test_verifier_training_rows_come_from_the_terminology_without_copies(terminology):
    from clinassay.audit.fit import OfficialTerms
    from clinassay.audit.text import normalize_text
    from clinassay.retrieval.verifier import VerifierSpec, training_rows

    rows = training_rows(terminology, VerifierSpec(groups=40, negatives=3, seed=5))
    positives = [r for r in rows if r["label"] == 1.0]
    assert len(positives) == 40 and len(rows) <= 40 * 4 and len(rows) > 40 * 3
    assert all(r["mention"].casefold() != r["text"].casefold() for r in positives)
    assert rows == training_rows(terminology, VerifierSpec(groups=40, negatives=3, seed=5))  # seeded
    official = OfficialTerms(terminology)
    titles = {terminology.get(c).title: c for c in terminology.codes()}
    for row in rows:
        if row["label"] == 0.0:
            negative = titles.get(row["text"].rsplit(" (", 1)[-1].rstrip(")")) or titles.get(row["text"])
            if negative is not None:
                assert normalize_text(row["mention"]) not in official.of(negative)


def test_an_untrained_verifier_is_a_plain_input_error(tmp_path, monkeypatch):
    from clinassay.cli import main
    from clinassay.retrieval.verifier import VerifierMissingError, load_verifier

    monkeypatch.setenv("CLINASSAY_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(VerifierMissingError, match="clinassay train-verifier"):
        load_verifier()
    config = tmp_path / "c.toml"
    config.write_text("[audit.fit]\nverifier = true\n", encoding="utf-8")
    pairs = tmp_path / "p.jsonl"
    pairs.write_text('{"mention": "neumonía", "code": "J18.9", "language": "es"}\n', encoding="utf-8")
    assert main(["audit", str(pairs), "--out", str(tmp_path / "o"), "--config", str(config), "--no-report"]) == 2
