"""The per-language regression gate: fires on a planted regression, stays quiet without one, lists
languages the baseline lacks; and `clinassay evaluate` writes metrics.json and exits 1 on a regression."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import pytest

from clinassay.retrieval.gate import compare, format_gate
from clinassay.retrieval.metrics import ranking_metrics
from clinassay.retrieval.predictions import PredictionRow, load_predictions
from test_retrieval_support import DATA, evaluation


def _stages(ranks_by_language: dict[str, list[int]]) -> dict:
    ranks = [r for rs in ranks_by_language.values() for r in rs]
    langs = [lang for lang, rs in ranks_by_language.items() for _ in rs]
    return {"biencoder": ranking_metrics(ranks, langs, bootstrap_samples=0)}


def _metrics(ranks_by_language: dict[str, list[int]]):
    return evaluation(_stages(ranks_by_language))


BASE = {"es": [1, 1, 2, 0], "fr": [1, 3, 0, 0], "pt": [2, 2, 1, 1]}


def test_gate_quiet_without_regression():
    result = compare(_metrics(BASE), _metrics(BASE))
    assert result.passed and not result.regressions
    assert "gate: PASS" in format_gate(result)


def test_gate_fires_on_planted_regression_in_one_language_and_shows_lifts():
    worse = dict(BASE, fr=[0, 0, 0, 0], es=[1, 1, 1, 1])  # fr collapses, es improves
    result = compare(_metrics(worse), _metrics(BASE))
    assert not result.passed
    assert {(c.language, c.metric) for c in result.regressions} >= {("fr", "mrr@10"), ("fr", "r@5")}
    assert "es" not in {c.language for c in result.regressions}
    assert any(c.language == "es" and c.status == "lift" for c in result.lifts)
    text = format_gate(result)
    assert "REGRESSION" in text and "regressions in fr" in text
    data = result.to_dict()
    assert data["passed"] is False and "fr" in data["regressing_languages"]


def test_gate_tolerance_and_missing_languages():
    base = _stages(BASE)
    cur = copy.deepcopy(base)
    cur["biencoder"]["languages"]["es"]["mrr@10"] -= 0.009  # inside the default 0.01
    cur["biencoder"]["languages"]["it"] = cur["biencoder"]["languages"]["pt"]
    cur["biencoder"]["overall"]["n"] += cur["biencoder"]["languages"]["pt"]["n"]
    cur, base = evaluation(cur), evaluation(base)
    result = compare(cur, base)
    assert result.passed
    assert result.missing_in_baseline == ["it"]
    assert "baseline lacks" in format_gate(result)
    assert not compare(cur, base, tolerance=0.005).passed


def test_gate_compares_final_stages():
    base = _metrics(BASE)
    cur = evaluation({**_stages(BASE), "reranker": _stages(dict(BASE, pt=[0, 0, 0, 0]))["biencoder"]})
    result = compare(cur, base)
    assert result.stage == "reranker" and result.baseline_stage == "biencoder"
    assert {c.language for c in result.regressions} == {"overall", "pt"}


def test_gate_module_does_not_import_torch():
    code = "import sys, clinassay.retrieval.gate, clinassay.retrieval.metrics, clinassay.retrieval.metrics_file, clinassay.retrieval.corpus, clinassay.retrieval.evalset; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_evaluate_cli_writes_metrics_and_gates(tmp_path, fake_terminology, capsys):
    from clinassay.cli import main

    out = tmp_path / "bm25"
    assert main(["evaluate", "--model", "bm25", "--eval-set", str(DATA / "eval.tsv"), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    stage = metrics["stages"]["biencoder"]
    assert stage["overall"]["n"] == 16 and set(stage["languages"]) == {"es", "fr", "pt", "en"}
    assert set(stage["overall"]) >= {"mrr@10", "r@1", "r@3", "r@5", "r@10", "ci95"}
    assert len(metrics["eval_set"]["sha256"]) == 64 and len(metrics["model"]["sha256"]) == 64
    assert "sentence-transformers" in metrics["versions"] and "seed" in metrics
    rows = load_predictions(out)  # one typed row per item, the reranker's fields only with --rerank
    assert rows is not None and len(rows) == 16 and rows[0].item == ("infección urinaria", "N39.0", "es")
    assert all(row.rank_reranker is None for row in rows)
    assert "rank_reranker" not in (out / "predictions.jsonl").read_text(encoding="utf-8")
    printed = capsys.readouterr().out
    assert "MRR@10" in printed and "biencoder" in printed

    # the same model against its own metrics: quiet
    again = tmp_path / "again"
    assert main(["evaluate", "--model", "bm25", "--eval-set", str(DATA / "eval.tsv"), "--out", str(again),
                 "--baseline", str(out / "metrics.json")]) == 0
    assert json.loads((again / "metrics.json").read_text())["comparison"]["passed"] is True

    # a baseline planted to be better in French: the gate fires and names French
    planted = json.loads((out / "metrics.json").read_text())
    for metric in ("mrr@10", "r@5"):
        planted["stages"]["biencoder"]["languages"]["fr"][metric] = 1.0
    (tmp_path / "planted.json").write_text(json.dumps(planted))
    capsys.readouterr()
    gated = tmp_path / "gated"
    assert main(["evaluate", "--model", "bm25", "--eval-set", str(DATA / "eval.tsv"), "--out", str(gated),
                 "--baseline", str(tmp_path / "planted.json")]) == 1
    printed = capsys.readouterr().out
    assert "REGRESSION" in printed and "regressions in fr" in printed
    comparison = json.loads((gated / "metrics.json").read_text())["comparison"]
    assert comparison["passed"] is False and comparison["regressing_languages"] == ["fr"]


def test_evaluate_cli_bad_inputs_exit_2(tmp_path, fake_terminology):
    from clinassay.cli import main

    assert main(["evaluate", "--model", "bm25", "--eval-set", str(tmp_path / "missing.tsv"), "--out", str(tmp_path / "o")]) == 2
    (tmp_path / "notjson.json").write_text("{")
    assert main(["evaluate", "--model", "bm25", "--eval-set", str(DATA / "eval.tsv"), "--out", str(tmp_path / "o"),
                 "--baseline", str(tmp_path / "notjson.json")]) == 2


def test_a_metrics_json_with_a_wrong_key_is_refused_by_evaluate_and_report(tmp_path, fake_terminology, capsys):
    """metrics.json is read through its schema: a key it does not know, or one it lacks, is exit 2 with
    the key named, both as `evaluate --baseline` and as `report --eval`; never a traceback, never a guess."""
    from clinassay.cli import main

    out = tmp_path / "bm25"
    assert main(["evaluate", "--model", "bm25", "--eval-set", str(DATA / "eval.tsv"), "--out", str(out)]) == 0
    written = json.loads((out / "metrics.json").read_text())
    assert written["schema_version"] == 1
    wrong_key = copy.deepcopy(written)
    slice_ = wrong_key["stages"]["biencoder"]["languages"]["fr"]
    slice_["mrr@100"] = slice_.pop("mrr@10")
    no_key = copy.deepcopy(written)
    del no_key["eval_set"]["sha256"]
    audit = DATA.parent / "reports" / "audit_small"
    for document, key in ((wrong_key, "stages.biencoder.languages.fr.mrr@10"), (no_key, "eval_set.sha256")):
        folder = tmp_path / "odd"
        folder.mkdir(exist_ok=True)
        (folder / "metrics.json").write_text(json.dumps(document))
        capsys.readouterr()
        assert main(["evaluate", "--model", "bm25", "--eval-set", str(DATA / "eval.tsv"), "--out", str(tmp_path / "gated"),
                     "--baseline", str(folder / "metrics.json")]) == 2
        assert not (tmp_path / "gated").exists()  # refused before any work
        assert main(["report", str(audit), "--eval", str(folder), "--out", str(tmp_path / "r.html")]) == 2
        assert main(["report", str(folder / "metrics.json"), "--out", str(tmp_path / "r.html")]) == 2
        errors = capsys.readouterr().err.splitlines()
        assert len(errors) == 3 and "Traceback" not in "".join(errors)
        assert all("is not a clinassay metrics.json (schema 1): " + key in line for line in errors)


def test_a_bad_predictions_row_is_refused_by_evaluate_naming_the_line_and_key(tmp_path, fake_terminology, capsys):
    """The baseline's predictions.jsonl is read through its schema too: a row with a wrong value, a key it
    does not know, a rank its top codes contradict, or broken JSON is exit 2 naming the file, the line
    and the key, before any work; never a traceback, never a row silently skipped."""
    from clinassay.cli import main

    out = tmp_path / "bm25"
    assert main(["evaluate", "--model", "bm25", "--eval-set", str(DATA / "eval.tsv"), "--out", str(out)]) == 0
    lines = (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    third = json.loads(lines[2])
    hit = next(json.loads(line) for line in lines if 1 <= json.loads(line)["rank_biencoder"] <= 5)
    row_error = " is not a clinassay predictions row: "
    cases = [
        ({**third, "rank_biencoder": "first"}, row_error + "rank_biencoder: Input should be a valid integer"),
        ({**third, "score": 0.5}, row_error + "score: Extra inputs are not permitted"),
        ({k: v for k, v in third.items() if k != "top_biencoder"}, row_error + "top_biencoder: Field required"),
        ({**hit, "rank_biencoder": 2 if hit["rank_biencoder"] == 1 else 1},
         row_error + "top level: Value error, rank_biencoder is"),
        ({**third, "rank_reranker": 1, "top_reranker": [third["code"]]}, ": rank_reranker: present, but not on line 1"),
        ("{", row_error + "not valid JSON"),
    ]
    for row, message in cases:
        folder = tmp_path / "odd"
        folder.mkdir(exist_ok=True)
        (folder / "metrics.json").write_bytes((out / "metrics.json").read_bytes())
        bad = row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)
        (folder / "predictions.jsonl").write_text("\n".join([*lines[:2], bad, *lines[3:]]) + "\n", encoding="utf-8")
        capsys.readouterr()
        assert main(["evaluate", "--model", "bm25", "--eval-set", str(DATA / "eval.tsv"), "--out", str(tmp_path / "gated"),
                     "--baseline", str(folder / "metrics.json")]) == 2, message
        assert not (tmp_path / "gated").exists()  # refused before any work
        errors = capsys.readouterr().err.splitlines()
        assert len(errors) == 1 and "Traceback" not in errors[0]
        assert f"{folder / 'predictions.jsonl'}:3{message}" in errors[0], (message, errors[0])


def test_a_reranked_run_writes_both_stages_per_row_and_reads_them_back(tmp_path):
    """With the reranker, every row holds both stages' rank and top codes; they read back as written."""
    from types import SimpleNamespace

    from clinassay.retrieval.evalset import EvalItem
    from clinassay.retrieval.evaluator import evaluate
    from clinassay.retrieval.predictions import write_predictions

    codes = ["A00", "B00", "C00", "D00", "E00", "F00", "G00"]

    class Ranker:  # stage 1 ranks the codes in order; the reranker reverses the shortlist
        config = SimpleNamespace(reranker=SimpleNamespace(candidates_top_k=10))
        corpus = SimpleNamespace(codes=codes, languages=("es", "en"))

        def stage1(self, mentions, k):
            return [[(code, 1.0 - i / 10) for i, code in enumerate(codes)] for _ in mentions]

        def rerank(self, mentions, first, languages):
            return [list(reversed(row)) for row in first]

    items = [EvalItem(mention="m1", code="B00", language="es"), EvalItem(mention="m2", code="G00", language="en")]
    _, rows = evaluate(Ranker(), items, rerank=True, bootstrap_samples=0)
    assert [(row.rank_biencoder, row.rank_reranker) for row in rows] == [(2, 6), (7, 1)]
    assert rows[1].top_reranker == ["G00", "F00", "E00", "D00", "C00"]
    write_predictions(tmp_path, rows)
    assert load_predictions(tmp_path) == rows


def test_search_cli_prints_codes_titles_scores(fake_terminology, capsys):
    from clinassay.cli import main

    assert main(["search", "--model", "bm25", "cálculo del riñón", "--language", "es", "-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "cálculo del riñón"
    assert lines[1].split()[:2] == ["1", "N20.0"] and "Calculus of kidney" in lines[1]
    assert len(lines) == 4
    assert main(["search", "--model", "bm25", "fiebre", "--json", "-k", "1"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload[0]["hits"][0]["code"] == "R50.9"


def _predictions(ranks_by_language: dict[str, list[int]]) -> list[PredictionRow]:
    return [PredictionRow(mention=f"{lang} mention {i}", code="X00", language=lang, rank_biencoder=r, top_biencoder=[])
            for lang, ranks in ranks_by_language.items() for i, r in enumerate(ranks)]


def test_paired_test_p_values():
    from clinassay.retrieval.metrics import paired_drop_p_value

    one_flip = paired_drop_p_value(np.r_[np.ones(24), 0.0], np.ones(25))
    assert one_flip == pytest.approx(0.5)  # one item of 25 lost: no evidence
    ten_flips = paired_drop_p_value(np.r_[np.ones(15), np.zeros(10)], np.ones(25))
    assert ten_flips == pytest.approx(1 / 1024)  # ten lost, none gained: exact enumeration
    many = paired_drop_p_value(np.r_[np.zeros(30), np.ones(10)], np.r_[np.ones(30), np.zeros(10)])
    assert 0.001 < many < 0.01  # 30 lost, 10 gained: sampled, well below 0.05
    assert paired_drop_p_value(np.ones(5), np.ones(5)) == 1.0


def test_gate_does_not_fail_on_one_item_of_25_but_does_on_a_real_drop():
    base = {"en": [3] * 14 + [0] * 11, "es": [1] * 25}
    one_item = dict(base, en=[3] * 13 + [0] * 12)  # R@5 0.56 -> 0.52, the CI chain's en
    result = compare(_metrics(one_item), _metrics(base), significance=0.05,
                     current_predictions=_predictions(one_item), baseline_predictions=_predictions(base))
    assert result.paired and result.passed
    drops = result.not_significant
    assert {(c.language, c.metric) for c in drops} >= {("en", "r@5")}
    assert all(c.p_value is not None and c.p_value > 0.05 for c in drops)
    assert "drop, not significant (p=0.500)" in format_gate(result)
    assert result.to_dict()["passed"] is True

    collapse = dict(base, en=[0] * 25)
    result = compare(_metrics(collapse), _metrics(base), significance=0.05,
                     current_predictions=_predictions(collapse), baseline_predictions=_predictions(base))
    assert not result.passed and {c.language for c in result.regressions} == {"overall", "en"}
    assert all(c.p_value is not None and c.p_value <= 0.05 for c in result.regressions)

    # the same one-item drop fails when the gate is told to use the tolerance alone
    strict = compare(_metrics(one_item), _metrics(base), significance=1.0,
                     current_predictions=_predictions(one_item), baseline_predictions=_predictions(base))
    assert not strict.passed


def test_gate_without_per_item_ranks_says_the_tolerance_decided():
    base = {"en": [3] * 14 + [0] * 11}
    one_item = {"en": [3] * 13 + [0] * 12}
    result = compare(_metrics(one_item), _metrics(base), significance=0.05, current_predictions=_predictions(one_item))
    assert not result.paired and not result.passed
    assert "no paired test: a run has no per-item ranks" in format_gate(result)
    other = _predictions(one_item)
    other[3] = other[3].model_copy(update={"mention": "something else"})
    result = compare(_metrics(one_item), _metrics(base), significance=0.05,
                     current_predictions=other, baseline_predictions=_predictions(base))
    assert not result.paired and "item 4 differs" in (result.unpaired_reason or "")


def test_one_run_compares_its_reranker_with_its_own_stage_1():
    """`evaluate --rerank` records whether stage 2 holds every language against stage 1, item by item: a
    language the reranker breaks is a regression, one item of 25 is not."""
    from clinassay.retrieval.metrics_file import GateComparison

    first = {"es": [2] * 25, "it": [1] * 25}
    second = {"es": [1] * 25, "it": [1] * 24 + [3]}  # es lifted; it: one item of 25 dropped to rank 3
    ranks = [r for rs in second.values() for r in rs]
    langs = [lang for lang, rs in second.items() for _ in rs]
    run = evaluation({**_stages(first), "reranker": ranking_metrics(ranks, langs, bootstrap_samples=0)})
    rows = [row.model_copy(update={"rank_reranker": r, "top_reranker": []})
            for row, r in zip(_predictions(first), ranks)]
    result = compare(run, run, baseline_name="stage 1", significance=0.05, current_predictions=rows,
                     baseline_predictions=rows, stage="reranker", baseline_stage="biencoder")
    assert (result.stage, result.baseline_stage, result.paired, result.passed) == ("reranker", "biencoder", True, True)
    assert {(c.language, c.metric) for c in result.not_significant} == {("it", "mrr@10")}
    assert {c.language for c in result.lifts} >= {"es"}
    text = format_gate(result, title="reranker against stage 1", verdict="reranker against stage 1")
    assert text.startswith("reranker against stage 1: reranker vs stage 1 (biencoder)")
    assert text.endswith("reranker against stage 1: PASS")
    assert GateComparison.model_validate(result.to_dict()).passed

    broken = [row.model_copy(update={"rank_reranker": 0}) if row.language == "it" else row for row in rows]
    run = evaluation({**_stages(first), "reranker": ranking_metrics([r.rank_reranker for r in broken], langs,
                                                                     bootstrap_samples=0)})
    result = compare(run, run, significance=0.05, current_predictions=broken, baseline_predictions=broken,
                     stage="reranker", baseline_stage="biencoder")
    assert not result.passed and {c.language for c in result.regressions} == {"overall", "it"}


def test_comparing_a_stage_a_run_lacks_is_refused():
    from clinassay.terminology.errors import ClinassayInputError

    with pytest.raises(ClinassayInputError, match="no 'reranker' stage"):
        compare(_metrics(BASE), _metrics(BASE), stage="reranker", baseline_stage="biencoder")
