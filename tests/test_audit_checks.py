"""Every audit check honours the same contract, and the suite enumerates them: a check added to
audit.checks.CHECKS without a case here fails `test_every_check_has_a_case`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from clinassay.audit import CHECK_NAMES, CHECKS, AuditConfig, Auditor
from clinassay.audit.reader import parse_record
from clinassay.audit.references import EvalSet, LabelledMention

DATA = Path(__file__).parent / "data" / "audit"
_spec = importlib.util.spec_from_file_location("audit_fakes", DATA / "fakes.py")
fakes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fakes)


def _pair(mention, code, language="es", **extra):
    return {"mention": mention, "code": code, "language": language, "model": "gen", **extra}


# check name -> (pairs fed in order, index of the pair that must be flagged, expected reason)
CASES = {
    "validity": ([_pair("infección urinaria", "X99.99")], 0, "unknown_code"),
    "language": ([_pair("infecció del tracte urinari de repetició", "N39.0")], 0, "wrong_language"),
    "phi": ([_pair("ITU, paciente con DNI 12345678Z", "N39.0")], 0, "dni_nie"),
    "spelling": ([_pair("neumonía adqirida en la comunidad", "J18.9")], 0, "misspelling"),
    "consistency": ([_pair("sin fiebre", "R50.9")], 0, "negated"),
    "leakage": ([_pair("Infección urinaria!", "N39.0")], 0, "equal"),
    "duplicate": ([_pair("infección urinaria baja", "N39.0"), _pair("Infeccion  urinaria baja.", "N39.0")], 1,
                  "exact_duplicate"),
}
CLEAN = _pair("infección del tracto urinario de repetición", "N39.0")


def _auditor(terminology, encoder=None):
    eval_set = EvalSet([LabelledMention("infección urinaria", "N39.0", "es", 2)], path="eval.tsv")
    return Auditor(AuditConfig(), terminology=terminology, encoder=encoder, eval_set=eval_set)


def test_every_check_has_a_case() -> None:
    assert set(CASES) == set(CHECK_NAMES), f"add a case for {set(CHECK_NAMES) - set(CASES)}"
    assert len(CHECK_NAMES) == len(set(CHECK_NAMES))


@pytest.mark.parametrize("check", [c.name for c in CHECKS])
def test_check_flags_its_case_with_the_common_contract(check, terminology) -> None:
    pairs, flagged, reason = CASES[check]
    auditor = _auditor(terminology)
    decisions = auditor.audit_chunk([parse_record(i + 1, p) for i, p in enumerate(pairs + [CLEAN])])
    findings = [f for f in decisions[flagged].findings if f.check == check]
    assert findings, f"{check} did not flag {pairs[flagged]}: {decisions[flagged].findings}"
    assert any(f.reason == reason for f in findings)
    for f in findings:
        assert 0.0 <= f.score <= 1.0 and f.detail and f.severity in ("warn", "fail")
    assert not [f for f in decisions[-1].findings if f.check == check], "the clean pair was flagged"
    summary = next(c for c in auditor.checks if c.name == check).summary().to_json()
    assert summary["flagged"] >= 1 and 0.0 <= summary["summary"] <= 1.0 and isinstance(summary["info"], dict)
    assert summary["reasons"][reason] >= 1


@pytest.mark.parametrize("check_cls", CHECKS)
def test_constructors_do_no_work(check_cls) -> None:
    """Constructors store parameters; nothing loads (no terminology access, no model)."""

    class Exploding:
        def __getattr__(self, name):
            raise AssertionError(f"constructor touched terminology.{name}")

    from clinassay.audit.checks import AuditResources

    check_cls(AuditConfig(), AuditResources(terminology=Exploding()))


def test_embedding_checks_with_an_injected_encoder(terminology) -> None:
    encoder = fakes.FakeEncoder(aliases={"urinary infection, lower tract": "infección urinaria",
                                         "infección baja del tracto urinario": "infección del tracto urinario baja"})
    auditor = _auditor(terminology, encoder)
    pairs = [
        _pair("infección del tracto urinario baja", "N39.0"),
        _pair("infección baja del tracto urinario", "N39.0"),  # near duplicate of the first (same vector)
        _pair("urinary infection, lower tract", "N39.0", language="en"),  # translates the eval item
    ]
    decisions = auditor.audit_chunk([parse_record(i + 1, p) for i, p in enumerate(pairs)])
    assert decisions[0].accepted
    near = [f for f in decisions[1].findings if f.reason == "near_duplicate"]
    assert near and near[0].neighbour["id"] == decisions[0].record["id"]
    leak = [f for f in decisions[2].findings if f.check == "leakage"]
    assert leak and leak[0].reason == "translation" and leak[0].neighbour["eval_line"] == 2
    assert leak[0].severity == "fail"
    consistency = next(c for c in auditor.checks if c.name == "consistency")
    assert consistency.info()["fit"]["checked"] == 3


def test_fit_check_names_the_better_sibling(terminology) -> None:
    """A mention that is a sibling's title, coded to N39.0, is told which code fits it."""
    title = terminology.get("N39.3").title
    config = AuditConfig.model_validate({"languages": ["en"], "fit": {"operating_point": "strict"}})
    auditor = Auditor(config, terminology=terminology, encoder=fakes.FakeEncoder())
    decision = auditor.audit_chunk([parse_record(1, _pair(title.lower(), "N39.0", language="en"))])[0]
    better = [f for f in decision.findings if f.reason == "sibling"]
    assert better, decision.findings
    assert better[0].neighbour["code"] == "N39.3" and better[0].neighbour["distance"] == "sibling"
    assert "fits N39.3 Stress incontinence" in better[0].detail and "better than N39.0" in better[0].detail


def test_jury_records_verdicts_through_the_router(terminology) -> None:
    """Three judges, configured like generation's models, answer through generation's LLM client (LiteLLM's
    Router; `mock_response` in their litellm_params stands in for the provider): two say no."""
    judges = [{"name": f"judge{i}", "model": "openai/gpt-4o-mini", "litellm_params": {"mock_response": reply}}
              for i, reply in enumerate(["NO, this is not it", "no", "Yes"])]
    config = AuditConfig.model_validate({"fit": {"enabled": False},  # the jury is asked about pairs nothing rejected
                                         "jury": {"enabled": True, "models": judges}})
    auditor = Auditor(config, terminology=terminology)
    decisions = auditor.audit_chunk([parse_record(1, _pair("dolor de cabeza", "N39.0")),
                                     parse_record(2, _pair("cefalea tensional", "G44.209"))])
    for decision in decisions:
        jury = [f for f in decision.findings if f.reason == "jury"]
        assert jury and jury[0].severity == "warn" and len(jury[0].neighbour["verdicts"]) == 3
        assert abs(jury[0].score - 2 / 3) < 1e-6
        assert [v["fits"] for v in jury[0].neighbour["verdicts"]] == [False, False, True]
    info = next(c for c in auditor.checks if c.name == "consistency").info()["jury"]
    assert info["pairs"] == 2


def test_a_jury_model_string_is_a_deterministic_one_word_judge() -> None:
    judge = AuditConfig.model_validate({"jury": {"models": ["openai/gpt-4o-mini"], "timeout_s": 5}}).jury.models[0]
    assert (judge.name, judge.temperature, judge.max_tokens, judge.structured_output, judge.timeout_s) == \
        ("openai/gpt-4o-mini", 0.0, 16, False, 5.0)


def test_a_judge_that_fails_abstains() -> None:
    from clinassay.audit.jury import Question, ask_jury
    from clinassay.generation.config import LiteLLMModel

    failing = LiteLLMModel(name="down", model="openai/gpt-4o-mini", num_retries=0, structured_output=False,
                           litellm_params={"mock_response": "litellm.InternalServerError"})
    [[verdict]] = ask_jury([Question("cefalea", "R51.9", "Headache", "es")], [failing])
    assert verdict.fits is None and verdict.raw.startswith("error: ")
