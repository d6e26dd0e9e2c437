"""Training rows without torch: dev split by code, hard negatives (generator's, siblings, mined),
reranker groups; and the dense search path end to end with a fake encoder."""

from __future__ import annotations


import pytest

from clinassay.generation.records import Pair
from clinassay.retrieval.training_data import examples_from_pairs, reranker_groups, split_by_code, stage1_rows
from test_retrieval_support import DATA, FakeEncoder


@pytest.fixture(scope="module")
def term(labelled_terminology):
    return labelled_terminology


def _pairs():
    return [
        Pair(mention="cistitis aguda", code="N30.00", language="es", model="a"),
        Pair(mention="cistitis con sangre", code="N30.01", language="es", model="b", task="hard_negative", negative_of="N30.00"),
        Pair(mention="cistitis con sangre", code="N30.01", language="es", model="b"),
        Pair(mention="calcul du rein", code="N20.0", language="fr", model="a"),
        Pair(mention="fever", code="R50.9", language="en", model="a"),
        Pair(mention="dor de cabeça", code="R51.9", language="pt", model="a"),
    ]


def test_examples_merge_duplicates_and_keep_generator_negatives():
    examples = examples_from_pairs(_pairs())
    assert len(examples) == 5
    hard = next(e for e in examples if e.code == "N30.01")
    assert hard.hard_negatives == ("N30.00",)


def test_split_by_code_never_shares_a_code():
    examples = examples_from_pairs(_pairs())
    split = split_by_code(examples, dev_fraction=0.4, seed=1)
    assert split.dev and split.train
    assert not {e.code for e in split.dev} & {e.code for e in split.train}
    assert split_by_code(examples, dev_fraction=0.4, seed=1).dev == split.dev  # seeded


def test_stage1_rows_order_of_negatives(term):
    examples = examples_from_pairs(_pairs())
    rows = stage1_rows(examples, term=term, corpus_codes=term.billable_codes(), mined={0: ["N39.0", "I10"]},
                       sibling_negatives=1, mined_negatives=1)
    assert all(set(r) == {"anchor", "positive", "negative_1", "negative_2"} for r in rows)
    by_anchor = {r["anchor"]: r for r in rows}
    # the generator's confusable code comes first, then a sibling
    assert by_anchor["cistitis con sangre"]["positive"] == "Acute cystitis with hematuria"
    assert by_anchor["cistitis con sangre"]["negative_1"] == "Acute cystitis without hematuria"
    # example 0: its sibling N30.01 then the first mined neighbour
    assert by_anchor["cistitis aguda"]["negative_1"] == "Acute cystitis with hematuria"
    assert by_anchor["cistitis aguda"]["negative_2"] == "Urinary tract infection, site not specified"


def test_reranker_groups_use_stage1_candidates(term):
    examples = examples_from_pairs(_pairs())
    candidates = [["N30.00", "N30.01", "N39.0", "I10"] for _ in examples]
    groups = reranker_groups(examples, candidates, documents=lambda c, lang: f"{c}/{lang}", negatives=2)
    assert len(groups) == len(examples)
    first = next(g for g in groups if g["anchor"] == "cistitis aguda")
    assert first["positive"] == "N30.00/es" and first["negative_1"] == "N30.01/es" and first["negative_2"] == "N39.0/es"


def test_reranker_groups_take_siblings_the_shortlist_lacks(term):
    from clinassay.retrieval.training_data import siblings_of

    examples = [e for e in examples_from_pairs(_pairs()) if e.mention == "cistitis aguda"]
    shortlist = [["N30.00", "N39.0", "I10", "R50.9"]]  # stage 1 never proposed a sibling
    plain = reranker_groups(examples, shortlist, documents=lambda c, lang: c, negatives=3)
    assert [plain[0][f"negative_{j}"] for j in (1, 2, 3)] == ["N39.0", "I10", "R50.9"]
    kin = reranker_groups(examples, shortlist, documents=lambda c, lang: c, negatives=3,
                          siblings=lambda code: siblings_of(term, code), sibling_negatives=1)
    negatives = [kin[0][f"negative_{j}"] for j in (1, 2, 3)]
    assert negatives[0] in siblings_of(term, "N30.00") and negatives[0].startswith("N30.")
    assert negatives[1:] == ["N39.0", "I10"] and "N30.00" not in negatives


def test_fusion_is_fitted_on_clinician_style_items_of_dev_codes_only(terminology):
    from clinassay.retrieval.corpus import build_corpus
    from clinassay.retrieval.train import FUSION_MIN_ITEMS, fusion_items
    from clinassay.retrieval.training_data import Example, Split

    from clinassay.retrieval.corpus import select_codes
    from clinassay.retrieval.training_data import title_of

    corpus = build_corpus(terminology, languages=["en", "es"], codes=select_codes(terminology, billable_only=True, chapters=["14"]))
    dev_codes = [c for c in corpus.codes if c.startswith(("N3", "N1", "N2", "N4"))]
    dev = [Example(mention=title_of(terminology, c), code=c, language=lang) for c in dev_codes for lang in ("en", "es")]
    items, name = fusion_items(terminology, corpus, Split(train=[], dev=dev), limit=500, seed=1)
    assert len(items) >= FUSION_MIN_ITEMS and name.endswith("clinician-style items of dev codes"), name
    assert {i.code for i in items} <= set(dev_codes)
    # not the dev pairs themselves, nor any corpus label of the code: acronyms, short forms, inclusion terms
    texts = {(t.casefold(), code) for t, codes in zip(corpus.texts, corpus.text_codes) for code in codes}
    assert not any((i.mention.casefold(), corpus.codes.index(i.code)) in texts for i in items)
    few, name = fusion_items(terminology, corpus, Split(train=[], dev=dev[:2]), limit=500, seed=1)
    assert few == dev[:2] and "dev-split pairs" in name


def test_dense_retriever_with_fake_encoder_and_cache(term, tmp_path, monkeypatch):
    import clinassay.retrieval.searcher as searcher
    from clinassay.retrieval.config import RetrievalConfig
    from clinassay.retrieval.corpus import build_corpus
    from clinassay.retrieval.evalset import load_eval_set
    from clinassay.retrieval.evaluator import evaluate
    from clinassay.retrieval.index import cached_corpus_embeddings

    monkeypatch.setattr(searcher, "load_encoder_any", lambda name: FakeEncoder())
    config = RetrievalConfig(cache_dir=tmp_path, bootstrap_samples=50)
    retriever = searcher.Retriever.load("fake", config=config, corpus=build_corpus(term, languages=("en", "es", "fr", "pt")))
    hits = retriever.search("Cálculo del riñón", language="es", k=3)[0]
    assert hits[0].code == "N20.0" and hits[0].title == "Calculus of kidney" and hits[0].rank == 1
    metrics, predictions = evaluate(retriever, load_eval_set(DATA / "eval.tsv"), bootstrap_samples=50)
    assert metrics.stages["biencoder"].overall.n == 16
    assert metrics.stages["biencoder"].overall.r_at_10 > 0.5
    assert len(predictions) == 16 and predictions[0].top_biencoder and predictions[0].rank_reranker is None
    assert cached_corpus_embeddings(FakeEncoder(), retriever.corpus, cache_dir=tmp_path) is not None
    with pytest.raises(Exception, match="no reranker"):
        retriever.search("fiebre", rerank=True)
