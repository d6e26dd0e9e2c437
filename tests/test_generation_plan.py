"""The sampling plan and the prompts it renders: stable keys, balanced codes, grounded prompts."""

import pytest

from clinassay.generation.config import GenerationConfig, ModelConfig
from clinassay.generation.plan import build_plan, read_codes_file, stratified_sample
from clinassay.generation.prompts import render_prompt
from clinassay.generation.requests import prompt_context
from clinassay.terminology.errors import ClinassayInputError


@pytest.fixture
def term(tree_terminology):
    return tree_terminology


def _config(**kw):
    base = dict(languages=["es", "en"], mentions_per_code=3, sample=4,
                models=[ModelConfig(name="m1", model="openai/stub")])
    base.update(kw)
    return GenerationConfig(**base)


def test_stratified_sample_alternates_chapters_and_is_deterministic(term):
    codes = stratified_sample(term, 4, seed=1)
    assert [term.get(c).chapter for c in codes] == ["1", "14", "1", "14"]
    assert codes == stratified_sample(term, 4, seed=1)
    assert all(term.get(c).billable for c in codes)
    # a chapter that runs out leaves its turns to the other
    assert len(stratified_sample(term, 20, seed=1)) == 8  # all billable codes, no repeats


def test_stratified_sample_can_be_restricted_to_chapters(term):
    codes = stratified_sample(term, 4, seed=1, chapters=["14"])
    assert codes and all(term.get(c).chapter == "14" for c in codes)
    with pytest.raises(ClinassayInputError, match="unknown chapters"):
        stratified_sample(term, 4, seed=1, chapters=["99"])


def test_stratified_sample_can_keep_to_or_keep_out_labelled_codes(terminology):
    """`labelled_in`: only codes the terminology labels in those languages (what the terminology generator
    can write); `reserve_labelled_in`: none of a scarce language's labelled codes, left for held-out sets."""

    def exact(code, language):
        label = terminology.label(code, language)
        return label is not None and label.precision == "exact"

    italian = stratified_sample(terminology, 40, seed=3, labelled_in=["it"])
    assert len(italian) == 40 and all(exact(c, "it") for c in italian)
    spread = stratified_sample(terminology, 300, seed=3, labelled_in=["es", "pt"], reserve_labelled_in=["it"])
    assert len(spread) == 300
    assert all(exact(c, "es") or exact(c, "pt") for c in spread) and not any(exact(c, "it") for c in spread)
    assert len({terminology.get(c).chapter for c in spread}) > 10  # still across chapters


def test_a_model_can_cover_only_the_head_of_the_sample(term):
    config = _config(models=[ModelConfig(name="m1", model="openai/stub", max_codes=2),
                             ModelConfig(name="m2", model="openai/stub")])
    plan = build_plan(term, config)
    per_model = {name: {r.code for r in plan.requests if r.model == name} for name in ("m1", "m2")}
    assert per_model["m1"] == set(plan.codes[:2]) and per_model["m2"] == set(plan.codes)


def test_codes_file_normalises_and_names_bad_lines(term, tmp_path):
    f = tmp_path / "codes.txt"
    f.write_text("# my codes\nn39.0\nA00.1  # cholera\n\nN39.0\n", encoding="utf-8")
    assert read_codes_file(term, f) == ["N39.0", "A00.1"]
    f.write_text("N39.0\nZZZ\n", encoding="utf-8")
    with pytest.raises(ClinassayInputError, match="codes.txt:2"):
        read_codes_file(term, f)


def test_plan_size_and_keys_are_stable_and_unique(term):
    config = _config(samples_per_code=2, tasks=["positive", "hard_negative"])
    plan = build_plan(term, config)
    assert len(plan.codes) == 4
    with_siblings = sum(1 for c in plan.codes if term.siblings(c))
    # codes x languages x samples, positives for all codes, hard negatives where siblings exist
    assert len(plan.requests) == (4 + with_siblings) * 2 * 2
    keys = [r.key for r in plan.requests]
    assert len(set(keys)) == len(keys)
    assert keys == [r.key for r in build_plan(term, config).requests]
    assert build_plan(term, _config(samples_per_code=2, tasks=["positive", "hard_negative"], seed=7)).requests[0].key not in keys
    neg = [r for r in plan.requests if r.task == "hard_negative"]
    assert all(r.negative_of and r.code in term.siblings(r.negative_of) for r in neg)


def test_positive_prompt_is_grounded_in_the_terminology(term):
    prompt = render_prompt("positive", prompt_context(term, "N39.0", "es"))
    text = prompt.text
    assert "N39.0" in text and "Urinary tract infection, site not specified" in text
    assert "Infección de vías urinarias" in text  # native label when known
    assert "N39.3 Stress incontinence" in text  # siblings, so mentions avoid them
    assert "pyelonephritis" in text  # excludes
    assert "N39 Other disorders of urinary system" in text  # parent
    assert "Spanish" in text and '{"mentions"' in text
    assert prompt.prompt_id == "positive/instruct/v1"
    assert len(prompt.prompt_hash) == 16


def test_subcategory_labels_are_not_shown_as_the_code_title(term):
    text = render_prompt("positive", prompt_context(term, "N39.41", "es")).text
    assert "Otras incontinencias" not in text


def test_hard_negative_prompt_names_both_codes(term):
    text = render_prompt("hard_negative", prompt_context(term, "A00.0", "fr", other="A00.1")).text
    assert "A00.0" in text and "A00.1 Cholera due to Vibrio cholerae 01, biovar eltor" in text
    assert "Cholera eltor" in text and "French" in text


def test_fewshot_prompt_ends_inside_a_list(term):
    prompt = render_prompt("positive", prompt_context(term, "N39.0", "pt"), style="fewshot")
    assert prompt.text.endswith('Mentions: ["') and prompt.prefill == '["'
    assert "Infecção do trato urinário" in prompt.text


def test_terminology_generator_plans_real_labels_only(term):
    config = _config(languages=["en", "es", "ca"], models=[ModelConfig(name="terminology", model="terminology")],
                     codes_file=None)
    plan = build_plan(term, config, codes=["N39.0", "A00.0"])
    got = {(r.code, r.language): r.static_mentions for r in plan.requests}
    assert got[("A00.0", "en")] == (("Cholera due to Vibrio cholerae 01, biovar cholerae", "icd10cm"),
                                    ("Classical cholera", "icd10cm"))
    assert got[("N39.0", "es")] == (("Infección de vías urinarias, sitio no especificado", "who"),)
    assert ("N39.0", "ca") not in got and ("A00.0", "es") not in got  # no native label: no request


def test_api_key_in_config_is_refused():
    with pytest.raises(ValueError, match="NAME of an environment variable"):
        ModelConfig(name="x", model="openai/gpt-4o-mini", api_key_env="sk-abc123-def")


def test_unknown_fallback_is_refused():
    with pytest.raises(ValueError, match="fallbacks"):
        GenerationConfig(models=[ModelConfig(name="a", model="openai/x", fallbacks=["b"])])


@pytest.mark.parametrize(
    "task, code, language, other, style, snapshot",
    [
        ("positive", "N39.0", "es", None, "instruct", "prompt_positive_N39.0_es.txt"),
        ("hard_negative", "A00.0", "fr", "A00.1", "instruct", "prompt_hard_negative_A00.0_fr.txt"),
        ("positive", "N39.0", "pt", None, "fewshot", "prompt_positive_fewshot_N39.0_pt.txt"),
    ],
)
def test_rendered_prompts_are_pinned(term, task, code, language, other, style, snapshot):
    """A prompt change is deliberate: it changes every request key (and so what a resume redoes)."""
    from pathlib import Path

    expected = (Path(__file__).parent / "data" / "generation" / snapshot).read_text(encoding="utf-8")
    text = render_prompt(task, prompt_context(term, code, language, n=5, other=other), style=style).text
    assert text + "\n" == expected
