"""Portable artifacts (issue 16, items 1 and 7): a trained MODEL_DIR and its `clinassay export` load
with the plain sentence-transformers classes and score as `clinassay search` does; the card is a Hub
card; an audit's accepted/rejected pairs and a pairs file export to Parquet that `datasets` loads.

The model tests train minilm-en for two steps per stage on the 16-code test terminology (once per
module); the data tests need no model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml

from audit_fixtures import write_audit_folder
from test_retrieval_support import DATA

QUERIES = ["Calculus of kidney", "infección urinaria"]


def _index_atol() -> float:
    """How closely plain fp32 sentence-transformers reproduces the index's vectors and scores: exactly
    (1e-4) where the corpus is encoded in fp32, to bf16 rounding where `[retrieval.corpus] engine = "auto"`
    encodes it under bf16 autocast (a CPU with native bf16; measured on one: 1.3e-3 per vector element,
    6e-4 per score)."""
    from clinassay.retrieval.models import native_bf16

    return 3e-3 if native_bf16("cpu") else 1e-4
REPORT_DATA = DATA.parent / "reports"


def _front_matter(readme: str) -> dict:
    assert readme.startswith("---\n"), readme[:80]
    return yaml.safe_load(readme.split("---\n", 2)[1])


def _search_json(capsys, model, *args) -> list[dict]:
    from clinassay.cli import main

    capsys.readouterr()
    assert main(["search", "--model", str(model), *QUERIES, "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def _plain_stage1(model, corpus, k: int) -> list[list[tuple[str, float]]]:
    """Stage 1 by hand with the plain class: cosine of the query to every label text, a code scored by
    its best label (what the faiss index computes)."""
    queries = model.encode_query(QUERIES, normalize_embeddings=True)
    texts = model.encode_document(list(corpus.texts), normalize_embeddings=True)
    scores = queries @ texts.T
    ranked = []
    for row in scores:
        best: dict[str, float] = {}
        for text_id, score in enumerate(row):
            for code_id in corpus.text_codes[text_id]:
                code = corpus.codes[code_id]
                best[code] = max(best.get(code, -2.0), float(score))
        ranked.append(sorted(best.items(), key=lambda item: -item[1])[:k])
    return ranked


# a tiny trained model ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory, labelled_terminology):
    from clinassay import terminology
    from clinassay.cli import main

    term = labelled_terminology
    original = terminology.load_terminology
    terminology.load_terminology = lambda *a, **k: term
    tmp = tmp_path_factory.mktemp("export")
    records = [{"mention": label.text, "code": code, "language": language, "model": "terminology:who"}
               for code in term.billable_codes() for language, label in term.labels(code).items() if language != "en"]
    audit = write_audit_folder(tmp / "audit", records)
    (tmp / "config.toml").write_text(
        "[retrieval]\nbase_model = 'minilm-en'\n"
        f"cache_dir = '{tmp / 'cache'}'\n"
        "[retrieval.biencoder]\nmax_steps = 2\nbatch_size = 4\neval_steps = 2\ndev_fraction = 0.2\nmined_negatives = 0\n"
        "learning_rate = 1e-3\n"
        "[retrieval.reranker]\nmax_steps = 2\nbatch_size = 2\nnegatives = 2\ncandidates_top_k = 5\nmax_seq_length = 48\n"
    )
    try:
        code = main(["train", str(audit), "--out", str(tmp / "model"), "--config", str(tmp / "config.toml")])
        assert code == 0
        assert main(["evaluate", "--model", str(tmp / "model"), "--eval-set", str(DATA / "eval.tsv"),
                     "--out", str(tmp / "eval"), "--rerank"]) == 0
        yield tmp
    finally:
        terminology.load_terminology = original


@pytest.fixture(scope="module")
def exported(trained):
    from clinassay.cli import main

    code = main(["export", str(trained / "model"), "--to", str(trained / "hub"), "--eval", str(trained / "eval"),
                 "--dataset", "my-org/icd10-pairs", "--name", "my-org/icd10-retriever"])
    assert code == 0
    return trained / "hub"


@pytest.mark.slow
def test_model_dir_biencoder_is_the_whole_router_model(trained):
    """MODEL_DIR/biencoder holds both routes: the plain class encodes queries as clinassay does (the
    trained route) and codes as the index holds them (the base model's route, no cache needed)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Router

    from clinassay.retrieval.index import CodeIndex
    from clinassay.retrieval.models import load_encoder

    path = trained / "model" / "biencoder"
    model = SentenceTransformer(str(path), device="cpu")
    assert isinstance(model[0], Router) and set(model[0].sub_modules) == {"query", "document"}
    ours = load_encoder(str(path), device="cpu")
    np.testing.assert_allclose(model.encode_query(QUERIES, normalize_embeddings=True), ours.encode(QUERIES, kind="query"),
                               atol=1e-5)
    index = CodeIndex.load(trained / "model" / "index")
    stored = index.index.reconstruct_n(0, index.index.ntotal)
    documents = model.encode_document(list(index.corpus.texts), normalize_embeddings=True)
    np.testing.assert_allclose(documents, stored, atol=_index_atol())
    np.testing.assert_allclose(ours.encode(list(index.corpus.texts), kind="passage"), stored, atol=_index_atol())
    # the two routes differ: training moved the query side only
    assert not np.allclose(model.encode_query(QUERIES[:1]), model.encode_document(QUERIES[:1]), atol=1e-4)


@pytest.mark.slow
def test_exported_folder_scores_as_clinassay_search(trained, exported, capsys):
    """`SentenceTransformer(DIR)` alone reproduces `clinassay search`'s codes and scores, on MODEL_DIR
    and on the exported folder (which clinassay searches too)."""
    from sentence_transformers import SentenceTransformer

    from clinassay.retrieval.index import CodeIndex

    corpus = CodeIndex.load(exported / "index").corpus
    plain = _plain_stage1(SentenceTransformer(str(exported), device="cpu"), corpus, k=5)
    for model in (trained / "model", exported):
        found = _search_json(capsys, model, "-k", "5")
        for row, hits in zip(plain, found):
            assert [h["code"] for h in hits["hits"]][:3] == [c for c, _ in row][:3]
            np.testing.assert_allclose([h["score"] for h in hits["hits"]], [s for _, s in row], atol=_index_atol())


@pytest.mark.slow
def test_exported_reranker_scores_as_clinassay_search(exported, tmp_path, capsys):
    """`CrossEncoder(DIR/reranker)` scores the shortlist as `clinassay search --rerank` does: with the
    fusion weight at 1 (the reranker alone) the printed scores are the plain class's."""
    from sentence_transformers.cross_encoder import CrossEncoder

    from clinassay.retrieval.index import CodeIndex

    alone = tmp_path / "alone"
    shutil.copytree(exported, alone)
    fusion = json.loads((alone / "reranker" / "fusion.json").read_text())
    (alone / "reranker" / "fusion.json").write_text(json.dumps({**fusion, "weight": 1.0}))
    corpus = CodeIndex.load(alone / "index").corpus
    reranker = CrossEncoder(str(exported / "reranker"), device="cpu")
    found = _search_json(capsys, alone, "--rerank", "-k", "5", "--language", "en")
    for mention, hits in zip(QUERIES, found):
        codes = [h["code"] for h in hits["hits"]]
        plain = reranker.predict([(mention, corpus.document(code, "en")) for code in codes])
        np.testing.assert_allclose([h["score"] for h in hits["hits"]], plain, atol=1e-4)
        assert list(plain) == sorted(plain, reverse=True)
    # with the fitted weight, the reranked codes are still the shortlist's
    fused = _search_json(capsys, exported, "--rerank", "-k", "5", "--language", "en")
    assert [sorted(h["code"] for h in r["hits"]) for r in fused] == [sorted(h["code"] for h in r["hits"]) for r in found]


@pytest.mark.slow
def test_export_layout_and_hub_card(trained, exported):
    for part in ("modules.json", "router_config.json", "config_sentence_transformers.json", "reranker/config.json",
                 "reranker/fusion.json", "index/codes.faiss", "model_card.json", "README.md"):
        assert (exported / part).exists(), part
    assert not (exported / "biencoder").exists()
    assert (exported / "model_card.json").read_bytes() == (trained / "model" / "model_card.json").read_bytes()
    meta = _front_matter((exported / "README.md").read_text(encoding="utf-8"))
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert meta["license"] == "apache-2.0" and meta["library_name"] == "sentence-transformers"
    assert meta["datasets"] == ["my-org/icd10-pairs"]
    assert {"es", "fr", "pt", "en"} <= set(meta["language"])
    assert {"sentence-transformers", "icd-10", "clinassay"} <= set(meta["tags"])
    (entry,) = meta["model-index"]
    assert entry["name"] == "my-org/icd10-retriever"
    metrics = json.loads((trained / "eval" / "metrics.json").read_text())
    by_slice = {(r["task"]["name"], r["dataset"]["config"]): {m["type"]: m["value"] for m in r["metrics"]}
                for r in entry["results"]}
    for stage, name in (("biencoder", "stage 1 (bi-encoder)"), ("reranker", "stage 1 + reranker")):
        for language, values in metrics["stages"][stage]["languages"].items():
            got = by_slice[(f"ICD-10 code retrieval, {name}", language)]
            assert got["mrr@10"] == pytest.approx(values["mrr@10"]) and got["ndcg@10"] == pytest.approx(values["ndcg@10"])
        assert by_slice[(f"ICD-10 code retrieval, {name}", "all")]["r@10"] == pytest.approx(metrics["stages"][stage]["overall"]["r@10"])
    # the training run's own README is a Hub card too (no evaluation yet: no model-index)
    own = _front_matter((trained / "model" / "README.md").read_text(encoding="utf-8"))
    assert own["base_model"] == "sentence-transformers/all-MiniLM-L6-v2" and "model-index" not in own


@pytest.mark.slow
def test_an_older_run_still_searches_and_exports_whole(trained, tmp_path, capsys):
    """A MODEL_DIR from before the Router was saved whole (biencoder/ = the query route alone): search
    is unchanged, and export adds the base model as the document route."""
    from sentence_transformers import SentenceTransformer

    from clinassay.cli import main

    old = tmp_path / "old"
    shutil.copytree(trained / "model", old, ignore=shutil.ignore_patterns("biencoder"))
    router_model = SentenceTransformer(str(trained / "model" / "biencoder"), device="cpu")
    query_side = SentenceTransformer(modules=list(router_model[0].sub_modules["query"]), device="cpu")
    query_side.prompts = dict(router_model.prompts)
    query_side.save(str(old / "biencoder"))
    assert _search_json(capsys, old, "-k", "5") == _search_json(capsys, trained / "model", "-k", "5")
    assert main(["export", str(old), "--to", str(tmp_path / "hub"), "--eval", str(trained / "eval")]) == 0
    assert "rebuilt whole from the base model" in capsys.readouterr().out
    rebuilt = SentenceTransformer(str(tmp_path / "hub"), device="cpu")
    np.testing.assert_allclose(rebuilt.encode_query(QUERIES), router_model.encode_query(QUERIES), atol=1e-5)
    np.testing.assert_allclose(rebuilt.encode_document(QUERIES), router_model.encode_document(QUERIES), atol=1e-5)


@pytest.mark.slow
def test_export_refuses_what_it_cannot_vouch_for(trained, tmp_path, capsys):
    from clinassay.cli import main
    from clinassay.retrieval.index import CodeIndex

    model = trained / "model"
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert main(["export", str(model), "--to", str(tmp_path / "full")]) == 2  # not empty
    assert main(["export", str(model), "--to", str(model / "hub")]) == 2  # inside the source
    other = tmp_path / "other-eval"
    other.mkdir()
    metrics = json.loads((trained / "eval" / "metrics.json").read_text())
    metrics["model"]["sha256"] = "0" * 64
    (other / "metrics.json").write_text(json.dumps(metrics))
    assert main(["export", str(model), "--to", str(tmp_path / "a"), "--eval", str(other)]) == 2
    assert "another model" in capsys.readouterr().err
    # an index that another model built: the plain class cannot reproduce it, so no folder is published
    broken = tmp_path / "broken"
    shutil.copytree(model, broken)
    index = CodeIndex.load(broken / "index")
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(index.index.ntotal, index.index.d)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    CodeIndex.build(index.corpus, vectors).save(broken / "index")
    assert main(["export", str(broken), "--to", str(tmp_path / "b")]) == 2
    assert "index was built by another model" in capsys.readouterr().err
    assert not (tmp_path / "b").exists() and not list(tmp_path.glob(".b.partial-*"))
    assert main(["export", str(model), "--to", str(tmp_path / "c"), "--dataset", "x/y"]) == 0  # and a good one passes


# data ----------------------------------------------------------------------------------------------
ACCEPTED = [
    {"mention": "cistitis aguda", "code": "N30.00", "language": "es", "model": "gemini", "seed": 3, "cost_usd": 0.001,
     "reasons": [{"check": "spelling", "reason": "unknown_word", "score": 0.4, "detail": "cistitis?", "severity": "warn"}]},
    {"mention": "infection urinaire", "code": "N39.0", "language": "fr", "model": "terminology:who",
     "argilla_id": 17, "tool": {"name": "other"}},
]
REJECTED = [{"mention": "dolor", "code": "N39.0", "language": "es", "model": "gemini", "task": "hard_negative",
             "negative_of": "N30.00"}]


def test_audit_exports_to_parquet_that_datasets_loads(tmp_path):
    from datasets import load_dataset

    from clinassay.cli import main

    audit = write_audit_folder(tmp_path / "audit", ACCEPTED, rejected=REJECTED)
    assert main(["export", str(audit), "--to", str(tmp_path / "ds"), "--license", "cc-by-4.0"]) == 0
    assert (tmp_path / "ds" / "data" / "accepted-00000-of-00001.parquet").is_file()
    data = load_dataset(str(tmp_path / "ds"))
    assert set(data) == {"accepted", "rejected"}
    assert data["accepted"].num_rows == 2 and data["rejected"].num_rows == 1
    first, second = data["accepted"][0], data["accepted"][1]
    assert (first["mention"], first["code"], first["language"], first["seed"], first["accepted"]) == \
        ("cistitis aguda", "N30.00", "es", 3, True)
    assert first["reasons"][0]["check"] == "spelling" and first["reasons"][0]["severity"] == "warn"
    assert json.loads(second["extra"]) == {"argilla_id": 17, "tool": {"name": "other"}}
    rejected = data["rejected"][0]
    assert rejected["accepted"] is False and rejected["task"] == "hard_negative" and rejected["negative_of"] == "N30.00"
    assert rejected["reasons"][0]["check"] == "validity" and rejected["reasons"][0]["score"] == 1.0
    assert data["accepted"].features["cost_usd"].dtype == "float64"
    meta = _front_matter((tmp_path / "ds" / "README.md").read_text(encoding="utf-8"))
    assert meta["license"] == "cc-by-4.0" and meta["language"] == ["es", "fr"]
    assert [f["split"] for f in meta["configs"][0]["data_files"]] == ["accepted", "rejected"]


def test_an_audit_without_rejections_exports_its_accepted_split(tmp_path):
    """datasets cannot load a split of no rows: an empty split is left out of the folder and its card."""
    from datasets import load_dataset

    from clinassay.audit.export import export_audit

    audit = write_audit_folder(tmp_path / "audit", ACCEPTED)
    result = export_audit(audit, tmp_path / "ds")
    assert [(s.name, s.rows) for s in result.splits] == [("accepted", 2)]
    data = load_dataset(str(tmp_path / "ds"))
    assert set(data) == {"accepted"} and data["accepted"].num_rows == 2
    assert not (tmp_path / "ds" / "data" / "rejected-00000-of-00001.parquet").exists()


def test_a_pairs_file_exports_and_its_bad_lines_are_counted(tmp_path, capsys):
    import pyarrow.parquet as pq

    from clinassay.cli import main

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join([json.dumps(ACCEPTED[1]), "{not json", json.dumps({"mention": "x"}),
                                json.dumps(REJECTED[0]), ""]) + "\n", encoding="utf-8")
    assert main(["export", str(pairs), "--to", str(tmp_path / "ds")]) == 0
    assert "train 2 (2 lines that are not pairs skipped)" in capsys.readouterr().out
    table = pq.read_table(tmp_path / "ds" / "data" / "train-00000-of-00001.parquet")
    assert table.column("line").to_pylist() == [1, 4]
    assert table.column("accepted").to_pylist() == [None, None]


def test_an_edited_audit_or_a_bad_source_is_refused(tmp_path, capsys):
    from clinassay.cli import main

    audit = write_audit_folder(tmp_path / "audit", ACCEPTED, rejected=REJECTED)
    with open(audit / "accepted.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(REJECTED[0]) + "\n")
    assert main(["export", str(audit), "--to", str(tmp_path / "ds")]) == 2
    assert "not the file the audit wrote" in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()
    assert main(["export", str(tmp_path / "missing.jsonl"), "--to", str(tmp_path / "ds")]) == 2
    (tmp_path / "folder").mkdir()
    assert main(["export", str(tmp_path / "folder"), "--to", str(tmp_path / "ds")]) == 2
    assert main(["export", str(audit), "--to", str(tmp_path / "ds"), "--eval", str(tmp_path)]) == 2


def test_the_evaluation_clinassay_run_wrote_beside_the_model_is_found(tmp_path):
    """RUN/train/model -> RUN/evaluate/candidate/metrics.json, when that evaluation names this model."""
    from clinassay.retrieval.export import card_sha256, run_evaluation

    model = tmp_path / "train" / "model"
    (model / "index").mkdir(parents=True)
    (model / "model_card.json").write_text('{"base_model": "minilm-en"}')
    assert run_evaluation(model) is None
    candidate = tmp_path / "evaluate" / "candidate"
    candidate.mkdir(parents=True)
    metrics = json.loads((REPORT_DATA / "eval_baseline" / "metrics.json").read_text())
    (candidate / "metrics.json").write_text(json.dumps({**metrics, "model": {**metrics["model"], "sha256": "0" * 64}}))
    assert run_evaluation(model) is None  # another model's
    (candidate / "metrics.json").write_text(json.dumps({**metrics, "model": {**metrics["model"], "sha256": card_sha256(model)}}))
    assert run_evaluation(model) == (candidate / "metrics.json").resolve()
    logged: list[str] = []
    (candidate / "metrics.json").write_text(json.dumps({"stages": {}, "model": {"sha256": card_sha256(model)}}))
    assert run_evaluation(model, log=logged.append) is None  # not a metrics.json: not listed, and said so
    assert "not a clinassay metrics.json (schema 1): " in logged[0]
