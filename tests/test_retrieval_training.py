"""Both training stages, for a few steps of the small English model on a 16-code terminology:
MODEL_DIR layout, model card, search through the trained model with and without reranking, and an
evaluation gated against the zero-shot baseline. Marked slow (a minute or two on 2 cores)."""

from __future__ import annotations

import json

import pytest

from test_retrieval_support import DATA

pytestmark = pytest.mark.slow


def _audited(tmp_path, term):
    records = []
    for code in term.billable_codes():
        for language, label in term.labels(code).items():
            if language == "en":
                continue
            records.append({"mention": label.text, "code": code, "language": language, "model": "terminology:who"})
    records.append({"mention": "cistitis con hematuria", "code": "N30.01", "language": "es", "model": "fake-llm",
                    "task": "hard_negative", "negative_of": "N30.00"})
    from audit_fixtures import write_audit_folder

    return write_audit_folder(tmp_path / "audit", records)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, labelled_terminology):
    from clinassay import terminology
    term = labelled_terminology
    original = terminology.load_terminology
    terminology.load_terminology = lambda *a, **k: term
    tmp = tmp_path_factory.mktemp("train")
    (tmp / "config.toml").write_text(
        "[retrieval]\nbase_model = 'minilm-en'\n"
        f"cache_dir = '{tmp / 'cache'}'\n"
        "[retrieval.biencoder]\nmax_steps = 4\nbatch_size = 2\neval_steps = 2\ndev_fraction = 0.2\nmined_negatives = 0\n"
        "[retrieval.reranker]\nmax_steps = 3\nbatch_size = 2\nnegatives = 2\ncandidates_top_k = 5\n"
    )
    from clinassay.cli import main

    code = main(["train", str(_audited(tmp, term)), "--out", str(tmp / "model"), "--config", str(tmp / "config.toml")])
    yield tmp, code
    terminology.load_terminology = original


def test_model_dir_holds_both_stages_index_and_card(trained):
    tmp, code = trained
    assert code == 0
    model = tmp / "model"
    for part in ("biencoder/modules.json", "reranker/config.json", "index/codes.faiss", "model_card.json", "README.md"):
        assert (model / part).exists(), part
    card = json.loads((model / "model_card.json").read_text())
    assert card["base_model"] == "minilm-en"
    assert len(card["audit"]["manifest_sha256"]) == 64
    assert card["data"]["languages"]["es"] > 0 and card["data"]["generators"]["fake-llm"] == 1
    assert card["config"]["biencoder"]["max_steps"] == 4
    assert card["evaluation"]["biencoder"]["global_step"] == 4
    assert "dev" in card["evaluation"]["biencoder"]


def test_search_and_evaluate_trained_model(trained, capsys):
    from clinassay.cli import main
    from clinassay.retrieval.searcher import Retriever

    tmp, _ = trained
    retriever = Retriever.load(tmp / "model")
    hits = retriever.search(["Calculus of kidney", "fever"], language="en", k=3, rerank=True)
    assert len(hits) == 2 and all(len(h) == 3 for h in hits)
    assert main(["search", "--model", str(tmp / "model"), "Calculus of kidney", "--rerank", "-k", "2"]) == 0
    assert "Calculus" in capsys.readouterr().out
    out = tmp / "eval"
    assert main(["evaluate", "--model", str(tmp / "model"), "--eval-set", str(DATA / "eval.tsv"), "--out", str(out), "--rerank"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["stages"]) == {"biencoder", "reranker"}
    assert metrics["stages"]["reranker"]["overall"]["n"] == 16
