"""Stage-2 score fusion: the reranker's weight against stage 1, fitted on the dev split."""

import json

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")

from clinassay.retrieval.reranker import FUSION_FILE, fit_fusion_weight, load_fusion_weight, rerank_candidates, save_fusion


class FakeCorpus:
    def document(self, code, language):
        return code


class FakeCrossEncoder:
    """Scores a (mention, document) pair from a fixed table: the 'reranker' of these tests."""

    def __init__(self, table):
        self.table = table

    def predict(self, pairs, **_):
        return np.array([self.table.get(doc, 0.0) for _, doc in pairs], dtype=np.float32)


SHORTLIST = [("A", 0.90), ("B", 0.85), ("C", 0.10)]


def test_weight_one_is_the_reranker_alone_and_zero_is_stage_one():
    model = FakeCrossEncoder({"A": 0.0, "B": 5.0, "C": 1.0})
    alone = rerank_candidates(model, ["m"], [SHORTLIST], corpus=FakeCorpus(), languages=["es"], fusion_weight=1.0)
    assert [c for c, _ in alone[0]] == ["B", "C", "A"]
    stage1 = rerank_candidates(model, ["m"], [SHORTLIST], corpus=FakeCorpus(), languages=["es"], fusion_weight=0.0)
    assert [c for c, _ in stage1[0]] == ["A", "B", "C"]


def test_fused_scores_mix_both_stages():
    # stage 1 barely prefers A over B; the reranker clearly prefers B: half and half puts B first, C last
    model = FakeCrossEncoder({"A": 0.0, "B": 5.0, "C": 0.0})
    fused = rerank_candidates(model, ["m"], [SHORTLIST], corpus=FakeCorpus(), languages=["es"], fusion_weight=0.5)
    assert [c for c, _ in fused[0]] == ["B", "A", "C"]


def test_fitted_weight_follows_the_dev_split(tmp_path):
    shortlists = [SHORTLIST, SHORTLIST]
    helpful = FakeCrossEncoder({"A": 0.0, "B": 5.0, "C": 0.0})  # gold is B: the reranker knows better
    fit = fit_fusion_weight(helpful, ["m1", "m2"], ["B", "B"], shortlists, corpus=FakeCorpus(), languages=["es", "es"])
    assert fit["weight"] > 0.0 and fit["dev_mrr@10"][fit["weight"]] == 1.0
    harmful = FakeCrossEncoder({"A": 0.0, "B": 0.0, "C": 5.0})  # gold is A: stage 1 knows better
    fit = fit_fusion_weight(harmful, ["m1", "m2"], ["A", "A"], shortlists, corpus=FakeCorpus(), languages=["es", "es"])
    assert fit["weight"] <= 0.5 and fit["dev_mrr@10"][1.0] < fit["dev_mrr@10"][0.0]
    save_fusion(tmp_path, fit)
    assert load_fusion_weight(tmp_path) == fit["weight"]
    assert json.loads((tmp_path / FUSION_FILE).read_text())["dev_queries"] == 2


def test_models_trained_before_fusion_rerank_alone(tmp_path):
    assert load_fusion_weight(tmp_path) == 1.0
