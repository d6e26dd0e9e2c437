"""Both views of an evaluation set (every occurrence, distinct (mention, code) pairs) in the metrics,
the gate, the evaluate table and the report; languages without evaluation data named."""

from __future__ import annotations

import json

from clinassay.retrieval.evalset import EvalItem
from clinassay.retrieval.evaluator import distinct_positions
from clinassay.retrieval.gate import compare, format_gate
from clinassay.retrieval.metrics import format_metrics_table, ranking_metrics
from test_retrieval_support import DATA, evaluation


def _block(ranks_by_language: dict[str, list[int]]) -> dict:
    ranks = [r for rs in ranks_by_language.values() for r in rs]
    langs = [lang for lang, rs in ranks_by_language.items() for _ in rs]
    return {"biencoder": ranking_metrics(ranks, langs, bootstrap_samples=0)}


def _both(occurrence: dict[str, list[int]], distinct: dict[str, list[int]] | None):
    return evaluation(_block(occurrence), None if distinct is None else _block(distinct))


def test_distinct_positions_count_a_pair_once_whatever_its_case_and_spacing():
    items = [EvalItem("Fiebre", "R50.9", "es"), EvalItem("fiebre ", "R50.9", "es"), EvalItem("fiebre", "R50.9", "pt"),
             EvalItem("fiebre", "A01.0", "es"), EvalItem("dolor  torácico", "R07.9", "es"), EvalItem("Dolor torácico", "R07.9", "es")]
    assert distinct_positions(items) == [0, 2, 3, 4]


def test_gate_fires_on_a_regression_only_the_distinct_view_shows():
    base = _both({"es": [1, 1, 1, 2]}, {"es": [1, 2, 3]})
    # the repeated mention still ranks first, the long tail collapsed
    cur = _both({"es": [1, 1, 1, 2]}, {"es": [1, 0, 0]})
    result = compare(cur, base)
    assert not result.passed
    assert {c.view for c in result.regressions} == {"distinct"}
    assert result.views == ["occurrence", "distinct"] and result.views_not_compared == []
    text = format_gate(result)
    assert "regressions in es, overall (distinct view)" in text
    assert result.to_dict()["regressing_views"] == ["distinct"]
    # the same drop in the occurrence view only
    cur = _both({"es": [0, 0, 0, 2]}, {"es": [1, 2, 3]})
    assert {c.view for c in compare(cur, base).regressions} == {"occurrence"}


def test_gate_says_which_view_an_old_baseline_lacks():
    base = _both({"es": [1, 2]}, None)  # a metrics.json written before the distinct view
    result = compare(_both({"es": [1, 2]}, {"es": [0, 0]}), base)
    assert result.passed and result.views == ["occurrence"] and result.views_not_compared == ["distinct"]
    assert "views one of the two files lacks (not gated): distinct" in format_gate(result)


def test_table_shows_both_views_with_intervals_and_languages_without_data():
    metrics = _both({"es": [1, 1, 3]}, {"es": [1, 3]})
    metrics = metrics.model_copy(update={"coverage": metrics.coverage.model_copy(update={"no_evaluation_data": ["ca"]})})
    table = format_metrics_table(metrics)
    lines = table.splitlines()
    assert "NDCG@10" in lines[0] and "95% CI" in lines[0]
    assert any(line.split()[:4] == ["occurrence", "biencoder", "overall", "3"] for line in lines)
    assert any(line.split()[:4] == ["distinct", "biencoder", "overall", "2"] for line in lines)
    assert any(line.split()[:4] == ["distinct", "biencoder", "es", "2"] and "-" in line.split()[5] for line in lines)
    assert "ca: no evaluation data" in table


def test_evaluate_writes_both_views_and_the_report_shows_them(tmp_path, fake_terminology, capsys):
    from clinassay.cli import main
    from clinassay.reports.retrieval_sections import retrieval_of
    from clinassay.reports.sources import load_eval_output

    rows = (DATA / "eval.tsv").read_text(encoding="utf-8").splitlines()
    repeated = rows + [rows[7]] * 9 + [rows[7].replace("fiebre", "Fiebre")]  # "fiebre" 11 times in all
    eval_set = tmp_path / "eval.tsv"
    eval_set.write_text("\n".join(repeated) + "\n", encoding="utf-8")
    out = tmp_path / "bm25"
    assert main(["evaluate", "--model", "bm25", "--eval-set", str(eval_set), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stages"]["biencoder"]["overall"]["n"] == 26
    distinct = metrics["distinct"]["stages"]["biencoder"]
    assert metrics["distinct"]["items"] == 16 and distinct["overall"]["n"] == 16
    assert distinct["languages"]["es"]["n"] == 8 and metrics["stages"]["biencoder"]["languages"]["es"]["n"] == 18
    assert set(distinct["overall"]) >= {"mrr@10", "ndcg@10", "r@1", "r@5", "r@10", "ci95"}
    printed = capsys.readouterr().out
    assert any(line.split()[:2] == ["distinct", "biencoder"] for line in printed.splitlines())
    assert any(line.split()[:2] == ["occurrence", "biencoder"] for line in printed.splitlines())

    # a baseline better only on distinct pairs in Spanish: exit 1, and the comparison names the view
    planted = json.loads((out / "metrics.json").read_text())
    planted["distinct"]["stages"]["biencoder"]["languages"]["es"]["mrr@10"] = 1.0
    (tmp_path / "planted.json").write_text(json.dumps(planted))
    gated = tmp_path / "gated"
    assert main(["evaluate", "--model", "bm25", "--eval-set", str(eval_set), "--out", str(gated),
                 "--baseline", str(tmp_path / "planted.json")]) == 1
    comparison = json.loads((gated / "metrics.json").read_text())["comparison"]
    assert comparison["regressing_views"] == ["distinct"] and comparison["regressing_languages"] == ["es"]

    section = retrieval_of([load_eval_output(gated)], tolerance=0.01)
    run = section.runs[0]
    assert [t.stage for t in run.stages] == ["biencoder", "biencoder, distinct (mention, code) pairs"]
    assert any(c.status == "regression" and c.stage == "biencoder, distinct (mention, code) pairs" and c.language == "es"
               for c in run.comparison)
    assert run.gate_passed is False
