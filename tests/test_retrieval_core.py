"""Corpus, pooled index, metrics, evaluation sets and the refusal of unaudited data: fast, no torch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clinassay.retrieval.audited_data import UnauditedDataError, load_audited, verify_audit_dir
from clinassay.retrieval.corpus import build_corpus
from clinassay.retrieval.evalset import import_codiesp, load_eval_set
from clinassay.retrieval.metrics import rank_of, ranking_metrics, slice_metrics
from clinassay.terminology.errors import ClinassayInputError
from test_retrieval_support import DATA, FakeEncoder


@pytest.fixture(scope="module")
def term(labelled_terminology):
    return labelled_terminology


def test_corpus_has_one_document_per_code_and_shares_label_texts(term):
    corpus = build_corpus(term, languages=("en", "es"))
    assert len(corpus.codes) == 16
    # "Cistitis aguda" is the Spanish label of two codes: encoded once, owned by both
    shared = [owners for text, owners in zip(corpus.texts, corpus.text_codes) if text == "Cistitis aguda"]
    assert [sorted(corpus.codes[i] for i in o) for o in shared] == [["N30.00", "N30.01"]]
    assert corpus.document("N39.0", "es").startswith("Infección de vías urinarias")
    assert corpus.document("N39.0", "en") == "Urinary tract infection, site not specified"


def test_corpus_restrictions_and_errors(term):
    assert set(build_corpus(term, chapters=["09"]).codes) == {"I10", "I21.9", "I50.9", "I50.1"}
    assert build_corpus(term, codes=["n390", "I10"]).codes == ("N39.0", "I10")
    with pytest.raises(ClinassayInputError, match="Z99.9"):
        build_corpus(term, codes=["Z99.9"])
    with pytest.raises(ClinassayInputError, match="empty"):
        build_corpus(term, chapters=["22"])


def test_fingerprint_changes_with_content(term):
    a = build_corpus(term, languages=("en", "es"))
    b = build_corpus(term, languages=("en", "fr"))
    assert a.fingerprint == build_corpus(term, languages=("en", "es")).fingerprint
    assert a.fingerprint != b.fingerprint


def test_index_pools_labels_per_code_and_round_trips(term, tmp_path):
    from clinassay.retrieval.index import CodeIndex, cached_corpus_embeddings, corpus_embeddings

    corpus = build_corpus(term, languages=("en", "es", "fr"))
    encoder = FakeEncoder()
    assert cached_corpus_embeddings(encoder, corpus, cache_dir=tmp_path / "cache") is None
    vectors = corpus_embeddings(encoder, corpus, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(cached_corpus_embeddings(encoder, corpus, cache_dir=tmp_path / "cache"), vectors)
    index = CodeIndex.build(corpus, vectors)
    hits = index.search(encoder.encode(["Cystite aiguë", "Calculus of kidney"]), k=5)
    assert {hits[0][0][0], hits[0][1][0]} == {"N30.00", "N30.01"}  # the shared label ranks both codes
    assert hits[1][0][0] == "N20.0" and hits[1][0][1] == pytest.approx(1.0, abs=1e-5)
    assert len({code for code, _ in hits[0]}) == 5  # each code once
    index.save(tmp_path / "index")
    again = CodeIndex.load(tmp_path / "index")
    assert again.search(encoder.encode(["Calculus of kidney"]), k=3) == index.search(encoder.encode(["Calculus of kidney"]), k=3)
    hnsw = CodeIndex.build(corpus, vectors, kind="hnsw")
    assert hnsw.search(encoder.encode(["Calculus of kidney"]), k=1)[0][0][0] == "N20.0"


def test_corpus_encoding_resumes_after_a_crash_and_adopts_a_whole_corpus_file(term, tmp_path):
    """The corpus's vectors are the embedding cache's shards: a crash loses at most the shard being encoded,
    and a cache written as one `<fingerprint>-<corpus>.npy` file is taken over instead of re-encoded."""
    from clinassay.retrieval.encoder_cache import EmbeddingCache
    from clinassay.retrieval.index import corpus_embeddings

    corpus = build_corpus(term, languages=("en", "es", "fr"))
    texts, encoder = list(corpus.texts), FakeEncoder()
    half = len(texts) // 2
    EmbeddingCache(tmp_path / "crashed").put(encoder, texts[:half], encoder.encode(texts[:half], kind="passage"))
    encoded = []
    real_encode = encoder.encode
    encoder.encode = lambda batch, **kw: encoded.extend(batch) or real_encode(batch, **kw)
    vectors = corpus_embeddings(encoder, corpus, cache_dir=tmp_path / "crashed")
    assert sorted(encoded) == sorted(texts[half:])  # only what the crash had not written
    np.testing.assert_array_equal(vectors, real_encode(texts, kind="passage"))

    legacy = tmp_path / "legacy" / f"{encoder.fingerprint}-{corpus.fingerprint}.npy"
    legacy.parent.mkdir()
    np.save(legacy, real_encode(texts, kind="passage"))
    encoded.clear()
    np.testing.assert_array_equal(corpus_embeddings(encoder, corpus, cache_dir=legacy.parent), vectors)
    assert encoded == [] and not legacy.exists()


def test_metrics_from_ranks():
    s = slice_metrics([1, 2, 0, 5, 11], bootstrap_samples=200)
    assert s["n"] == 5
    assert s["mrr@10"] == pytest.approx((1 + 0.5 + 0.2) / 5)
    assert s["r@1"] == pytest.approx(0.2) and s["r@5"] == pytest.approx(0.6) and s["r@10"] == pytest.approx(0.6)
    lo, hi = s["ci95"]["mrr@10"]
    assert lo <= s["mrr@10"] <= hi
    m = ranking_metrics([1, 0, 3], ["es", "es", "fr"], bootstrap_samples=0)
    assert m["languages"]["es"]["n"] == 2 and m["languages"]["fr"]["r@3"] == 1.0
    assert rank_of("B", ["A", "B"]) == 2 and rank_of("C", ["A"]) == 0


def test_eval_set_formats(tmp_path):
    from clinassay.terminology import normalize_code

    items = load_eval_set(DATA / "eval.tsv", normalize=normalize_code)
    assert len(items) == 16 and items[0].code == "N39.0" and items[0].language == "es"
    jsonl = tmp_path / "e.jsonl"
    jsonl.write_text(json.dumps({"mention": "fiebre", "code": "r509", "language": "ES"}) + "\n", encoding="utf-8")
    assert load_eval_set(jsonl, normalize=normalize_code)[0].code == "R50.9"
    bad = tmp_path / "bad.tsv"
    bad.write_text("text\tcode\nfoo\tN39.0\n", encoding="utf-8")
    with pytest.raises(ClinassayInputError, match="mention"):
        load_eval_set(bad)


def test_import_codiesp_keeps_diagnoses_and_counts_drops(term, tmp_path):
    split = tmp_path / "dev"
    split.mkdir()
    (split / "devX.tsv").write_text(
        "doc1\tDIAGNOSTICO\tn39.0\tinfecciones del tracto urinario\t1 2\n"
        "doc1\tPROCEDIMIENTO\tbt41zzz\tecografía renal\t3 4\n"
        "doc1\tDIAGNOSTICO\tz99.89\talgo raro\t5 6\n"
        "doc2\tDIAGNOSTICO\ti10\thipertensión\t7 8\n",
        encoding="utf-8",
    )
    items, stats = import_codiesp(split, term)
    assert [(i.code, i.language) for i in items] == [("N39.0", "es"), ("I10", "es")]
    assert stats["dropped_absent_from_icd10cm"] == 1 and stats["procedures_skipped"] == 1


def _audit_dir(tmp_path, *, verdict="pass", tamper=False, manifest=True):
    from clinassay.audit.config import GateConfig
    from audit_fixtures import write_audit_folder

    audit = tmp_path / "audit"
    lines = [{"mention": "infección urinaria", "code": "N39.0", "language": "es", "model": "terminology:who"}]
    gate = GateConfig() if verdict == "pass" else GateConfig(min_accepted_per_language=2)
    write_audit_folder(audit, lines, gate=gate)
    accepted = audit / "accepted.jsonl"
    if not manifest:
        (audit / "manifest.json").unlink()
    if tamper:
        with open(accepted, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"mention": "x", "code": "I10", "language": "es"}) + "\n")
    return audit


def test_training_data_must_come_from_a_passing_audit(tmp_path):
    good = _audit_dir(tmp_path / "a")
    data = load_audited(good)
    assert data.sizes()["languages"] == {"es": 1} and data.sizes()["generators"] == {"terminology:who": 1}
    with pytest.raises(UnauditedDataError, match="manifest.json not found"):
        verify_audit_dir(_audit_dir(tmp_path / "b", manifest=False))
    with pytest.raises(UnauditedDataError, match="did not pass"):
        verify_audit_dir(_audit_dir(tmp_path / "c", verdict="fail"))
    with pytest.raises(UnauditedDataError, match="changed after the audit"):
        verify_audit_dir(_audit_dir(tmp_path / "d", tamper=True))


def test_train_cli_refuses_unaudited_data_with_exit_2(tmp_path, capsys):
    from clinassay.cli import main

    for name, kwargs in (("none", {"manifest": False}), ("fail", {"verdict": "fail"}), ("tamper", {"tamper": True})):
        audit = _audit_dir(tmp_path / name, **kwargs)
        assert main(["train", str(audit), "--out", str(tmp_path / name / "model")]) == 2
        assert "refusing to train" in capsys.readouterr().err
        assert not (tmp_path / name / "model").exists()
