"""`clinassay calibrate`: planted faults on the user's own pairs (audit/planting.py, audit/calibration.py).
Every kind is planted on a tiny set, the counts add up, a seed gives the same sample and plants, the
planting's own phrasings are not the rules' cue lists, and [audit.gate] min_recall fails with exit 1."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from clinassay.audit import AuditConfig
from clinassay.audit.calibration import CALIBRATION, CALIBRATION_PAIRS, calibrate, load_calibration, sample_originals, wilson
from clinassay.audit.planting import (CUE_SEX, FAULT_KINDS, OWN_NEGATION, OWN_SEX, OWN_SIDE, SIDE_PHRASE, SIDE_WORDS, Planter)
from clinassay.audit.text import normalize_text
from clinassay.cli import main

PAIRS = [
    ("infección del tracto urinario de repetición", "N39.0", "es"),
    ("neumonía adquirida en la comunidad", "J18.9", "es"),
    ("hiperplasia benigna de próstata", "N40.0", "es"),  # male only
    ("endometriosis ovárica", "N80.1", "es"),  # female only
    ("artrosis primaria de rodilla derecha", "M17.11", "es"),  # right knee
    ("otitis media aguda", "H66.90", "es"),  # no side; its siblings have one
    ("diabetes mellitus tipo 2", "E11.9", "es"),
    ("insuficiencia cardíaca congestiva", "I50.9", "es"),
    ("hipertensión arterial esencial", "I10", "es"),
    ("dolor torácico opresivo", "R07.9", "es"),
    ("acute appendicitis", "K35.80", "en"),
    ("pneumonie communautaire", "J18.9", "fr"),
]
EVAL = [("infección urinaria baja", "N39.0", "es"), ("neumonía basal derecha", "J18.9", "es"),
        ("cardiopatía isquémica crónica", "I25.9", "es")]
FAST = {"embeddings": False}


def _write(tmp: Path, config: dict | None = None) -> tuple[Path, Path, Path]:
    pairs = tmp / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"mention": m, "code": c, "language": l, "model": "gen", "id": f"u{i}"},
                                        ensure_ascii=False) + "\n" for i, (m, c, l) in enumerate(PAIRS)),
                     encoding="utf-8")
    eval_set = tmp / "eval.tsv"
    eval_set.write_text("mention\tcode\tlanguage\n" + "".join(f"{m}\t{c}\t{l}\n" for m, c, l in EVAL), encoding="utf-8")
    toml = tmp / "clinassay.toml"
    lines = ["[audit]", "embeddings = false"]
    for section, values in (config or {}).items():
        lines.append(f"[audit.{section}]")
        lines += [f"{k} = {_toml(v)}" for k, v in values.items()]
    toml.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return pairs, eval_set, toml


def _toml(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {v}" for k, v in value.items()) + "}"
    return repr(value)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory, terminology):
    tmp = tmp_path_factory.mktemp("calibration")
    pairs, eval_set, _ = _write(tmp)
    result, rows = calibrate(pairs, config=AuditConfig.model_validate(FAST), terminology=terminology,
                             eval_path=eval_set, sample=50, seed=1)
    return result, rows


def test_every_kind_is_planted_on_a_tiny_set(calibrated):
    result, rows = calibrated
    assert {k.kind for k in result.kinds} == set(FAULT_KINDS) and not result.not_planted
    copies = [r for r in rows if r["role"] == "copy"]
    assert {r["fault"] for r in copies} == set(FAULT_KINDS)
    for kind in ("laterality", "sex"):  # both phrasing sources, where the tiny set allows them
        assert {r["phrasing"] for r in copies if r["fault"] == kind} <= {"check_cues", "own"}
    sex = [r for r in copies if r["fault"] == "sex"]
    assert {r["code"] for r in sex} == {"N40.0", "N80.1"}
    lateral = {r["base"]: r for r in copies if r["fault"] == "laterality"}
    bases = {r["id"]: r for r in rows if r["role"] == "original"}
    assert {"M17.11", "H66.90"} <= {bases[b]["code"] for b in lateral}  # (I50.9 too: I50.1 is left ventricular)
    assert "diabetes" not in " ".join(bases[b]["mention"] for b in lateral)  # E11 has no sided code
    for base, copy in lateral.items():
        if bases[base]["code"] == "H66.90":  # the sideless code became a sided sibling, the mention the other side
            assert copy["code"] in ("H66.91", "H66.92") and copy["gold_code"] == "H66.90"
            side = "izquierd|izda" if copy["code"] == "H66.91" else "derech|der\\."
            assert re.search(side, copy["mention"]), copy
    leaks = [r for r in copies if r["fault"] == "eval_leak"]
    assert all(normalize_text(r["mention"]) in {normalize_text(m) for m, _, _ in EVAL} for r in leaks)


def test_counts_add_up(calibrated):
    result, rows = calibrated
    assert result.originals == len(PAIRS) == result.false_rejects.n
    assert result.copies == sum(k.planted for k in result.kinds)
    assert result.audited == result.originals + result.copies == len(rows)
    for kind in result.kinds:
        assert kind.caught.n + kind.base_rejected == kind.planted
        assert kind.by_intended_check <= kind.caught.k <= kind.caught.n
        assert sum(p.planted for p in kind.phrasings) == kind.planted
        assert sum(p.caught.n for p in kind.phrasings) == kind.caught.n
        assert sum(p.caught.k for p in kind.phrasings) == kind.caught.k
    copies = [r for r in rows if r["role"] == "copy"]
    for kind in result.kinds:
        mine = [r for r in copies if r["fault"] == kind.kind]
        assert sum(not r["accepted"] for r in mine) >= kind.caught.k
        assert len(mine) == kind.planted
    rejected = [r for r in rows if r["role"] == "original" and not r["accepted"]]
    assert result.false_rejects.k == len(rejected)


def test_the_same_seed_gives_the_same_sample_and_plants(tmp_path, terminology):
    pairs, eval_set, _ = _write(tmp_path)
    from clinassay.audit.references import read_labelled

    items = read_labelled(eval_set)
    planter = Planter(terminology, languages=["es", "en", "fr", "pt"], eval_items=items)

    def draw(seed):
        originals, _ = sample_originals(pairs, size=6, seed=seed)
        return originals, [(p.kind, p.phrasing, p.record) for p in planter.plant(originals, seed=seed)]

    first, again, other = draw(7), draw(7), draw(8)
    assert first == again
    assert [o["mention"] for o in first[0]] != [o["mention"] for o in other[0]]
    assert [o["source_id"] for o in first[0]] == [o["source_id"] for o in again[0]]


def test_wilson_interval():
    share = wilson(8, 10)
    assert share.share == 0.8 and 0.49 < share.low < 0.50 and 0.94 < share.high < 0.95  # 0.490, 0.943
    assert wilson(0, 0).share is None
    assert wilson(0, 20).low == 0.0 and wilson(20, 20).high == 1.0


def _lexicon_entries(language: str) -> set[str]:
    from clinassay.audit.lexicon import NEGATION

    return {cue for kind in ("pre", "post", "pseudo", "uncertain") for cue in NEGATION[language][kind]}


@pytest.mark.parametrize("language", sorted(OWN_NEGATION))
def test_own_phrasings_are_not_the_rules_cue_lists(language):
    from clinassay.audit.lexicon import FEMALE_RE, LEFT_RE, MALE_RE, RIGHT_RE

    entries = _lexicon_entries(language)
    for template in OWN_NEGATION[language]:
        phrase = normalize_text(template.replace("{m}", " "))
        assert phrase not in entries, template
    right, left = OWN_SIDE[language]
    assert not RIGHT_RE.search(normalize_text(right)) and not LEFT_RE.search(normalize_text(left))
    for word_right, word_left in SIDE_WORDS[language]:  # the check_cues side words are the rules' own
        assert RIGHT_RE.search(word_right) and LEFT_RE.search(normalize_text(word_left))
    assert RIGHT_RE.search(normalize_text(SIDE_PHRASE[language][0]))
    male, female = (normalize_text(t.replace("{m}", " ")) for t in OWN_SEX[language])
    assert not MALE_RE[language].search(male) and not FEMALE_RE[language].search(female)
    male, female = (normalize_text(t.replace("{m}", " ")) for t in CUE_SEX[language])
    assert MALE_RE[language].search(male) and FEMALE_RE[language].search(female)


def test_recall_is_reported_per_phrasing_source(calibrated):
    result, _ = calibrated
    negation = next(k for k in result.kinds if k.kind == "negation")
    assert {p.phrasing for p in negation.phrasings} <= {"check_cues", "own"} and negation.phrasings
    language = next(k for k in result.kinds if k.kind == "wrong_language")
    assert all(re.fullmatch(r"label_[a-z]{2}", p.phrasing) for p in language.phrasings)


def test_cli_writes_calibration_and_min_recall_fails_with_exit_1(tmp_path):
    # the identifier check switched off blinds the audit to identifiers: the gate must notice
    blind = {"phi": {k: False for k in ("names", "dates", "phones", "emails", "addresses", "national_ids",
                                         "record_numbers")},
             "gate": {"min_recall": {"identifier": 0.95, "misspelling": 0.0}}}
    pairs, eval_set, toml = _write(tmp_path, blind)
    out = tmp_path / "out"
    code = main(["calibrate", str(pairs), "--out", str(out), "--config", str(toml), "--sample", "20", "--seed", "2"])
    assert code == 1
    result = load_calibration(out / CALIBRATION)
    gate = {g.kind: g for g in result.gate}
    assert not gate["identifier"].passed and gate["identifier"].recall < 0.95 and gate["misspelling"].passed
    assert not result.passed
    lines = (out / CALIBRATION_PAIRS).read_text(encoding="utf-8").splitlines()
    assert len(lines) == result.audited

    seeing = {"gate": {"min_recall": {"misspelling": 0.0}}}
    pairs, eval_set, toml = _write(tmp_path, seeing)
    assert main(["calibrate", str(pairs), "--out", str(out), "--config", str(toml), "--eval-set", str(eval_set)]) == 0
    assert load_calibration(out / CALIBRATION).passed


def test_a_required_kind_that_cannot_be_planted_fails(tmp_path):
    pairs, _, toml = _write(tmp_path, {"gate": {"min_recall": {"eval_leak": 0.5}}})  # no --eval-set: nothing leaks
    out = tmp_path / "out"
    assert main(["calibrate", str(pairs), "--out", str(out), "--config", str(toml)]) == 1
    check = load_calibration(out / CALIBRATION).gate[0]
    assert check.kind == "eval_leak" and check.recall is None and not check.passed


def test_an_unknown_kind_in_min_recall_is_bad_input(tmp_path):
    pairs, _, toml = _write(tmp_path, {"gate": {"min_recall": {"negatoin": 0.5}}})
    assert main(["calibrate", str(pairs), "--out", str(tmp_path / "out"), "--config", str(toml)]) == 2


def test_the_report_of_the_audit_folder_shows_what_the_audit_catches(tmp_path):
    from clinassay.reports.render import write_report

    pairs, eval_set, toml = _write(tmp_path, {"gate": {"min_recall": {"misspelling": 0.0}}})
    out = tmp_path / "audit"
    main(["audit", str(pairs), "--out", str(out), "--config", str(toml), "--no-report"])
    assert main(["calibrate", str(pairs), "--out", str(out), "--config", str(toml), "--sample", "8"]) == 0
    assert (out / "summary.json").is_file()  # calibration leaves the audit's own files alone
    result = load_calibration(out / CALIBRATION)
    write_report(out, out / "report.html", eval_dirs=[], fmt="html")
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="calibration"' in html and "What this audit catches on your data" in html
    for kind in result.kinds:
        assert f'data-kind="{kind.kind}"' in html
    assert "measured with another audit configuration" not in html
    write_report(out, out / "report.md", eval_dirs=[], fmt="markdown")
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "What this audit catches on your data" in markdown and "misspelling (✅" in markdown

    # calibrated with another configuration than the audit's: the report says so
    _, _, other = _write(tmp_path, {"consistency": {"negation": False}})
    main(["calibrate", str(pairs), "--out", str(out), "--config", str(other), "--sample", "8"])
    write_report(out, out / "report.html", eval_dirs=[], fmt="html")
    assert "measured with another audit configuration" in (out / "report.html").read_text(encoding="utf-8")

    (out / CALIBRATION).write_text('{"schema_version": 99}', encoding="utf-8")
    write_report(out, out / "report.html", eval_dirs=[], fmt="html")  # an unreadable calibration is a note
    assert "calibration.json could not be read" in (out / "report.html").read_text(encoding="utf-8")
