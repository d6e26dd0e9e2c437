"""The fit check's query adapter (audit/query_adapter.py): stored as fitted, applied to the category side
only, used only with the fit variant fitted on it; and its trainer (retrieval/adapter_training.py) learns
a ranking the raw vectors miss."""

from __future__ import annotations

import numpy as np
import pytest

from clinassay.audit.fit_model import FitModels, FittedPoint, FitVariant, LogisticModel, query_adapter_for
from clinassay.audit.query_adapter import load_query_adapter, make_adapter, save_query_adapter


@pytest.mark.parametrize("with_member", [True, False])
def test_an_adapter_round_trips_with_its_digest_and_normalises(tmp_path, with_member):
    rng = np.random.default_rng(0)
    member = np.eye(8) - 0.1 * rng.standard_normal((8, 8)) if with_member else None
    adapter = make_adapter("enc", np.eye(8) + 0.1 * rng.standard_normal((8, 8)), member)
    save_query_adapter(adapter, tmp_path)
    loaded = load_query_adapter("enc", tmp_path)
    assert loaded is not None and loaded.digest == adapter.digest and loaded.encoder == "enc"
    np.testing.assert_array_equal(loaded.category, adapter.category)
    vectors = rng.standard_normal((5, 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)  # mention vectors come normalised
    for side in ("category", "member"):
        np.testing.assert_allclose(np.linalg.norm(loaded.apply(vectors, side), axis=1), 1.0, rtol=1e-6)
    if not with_member:  # no member map: members see the raw vector
        np.testing.assert_array_equal(loaded.apply(vectors, "member"), vectors.astype(np.float32))
    assert load_query_adapter("other", tmp_path) is None
    assert make_adapter("enc", adapter.category).digest != make_adapter("enc", adapter.category, np.eye(8)).digest


def _models(adapter_digest):
    model = LogisticModel(features=["lex_gap"], mean=[0.0], scale=[1.0], coef=[1.0], intercept=0.0)
    points = {p: FittedPoint(category=0.5, member=0.5, false_reject_target=0.05, fitted={})
              for p in ("lenient", "balanced", "strict", "review")}
    variant = FitVariant(category=model, member=model, operating_points=points)
    return FitModels(fitted_on="t", command="t", variants={
        "lexical": variant, "enc": variant.model_copy(update={"query_adapter": adapter_digest})})


def test_the_adapter_is_used_only_with_the_variant_fitted_on_it(tmp_path):
    adapter = make_adapter("enc", np.eye(4))
    save_query_adapter(adapter, tmp_path)
    assert query_adapter_for("enc", _models(adapter.digest), tmp_path).digest == adapter.digest
    assert query_adapter_for("enc", _models("0123456789abcdef"), tmp_path) is None  # fitted on another adapter
    assert query_adapter_for("enc", _models(None), tmp_path) is None  # fitted on raw vectors
    assert query_adapter_for("unfitted", _models(adapter.digest), tmp_path) is None


def test_a_variant_fitted_on_other_vectors_falls_back_to_the_lexical_models(terminology):
    from clinassay.audit import AuditConfig
    from clinassay.audit.fit import CorpusFit
    from clinassay.audit.misfit import MisfitJudge

    fit = CorpusFit(terminology, languages=["es"], adapter=make_adapter("enc", np.eye(4), np.eye(4)))
    judge = MisfitJudge(terminology, fit, AuditConfig(), _models("0123456789abcdef"), encoder_name="enc")
    assert judge.adapter_mismatch and judge.dense_name == "lexical"
    assert judge.info()["adapter_mismatch"] is True
    same = MisfitJudge(terminology, fit, AuditConfig(), _models(fit.adapter.digest), encoder_name="enc")
    assert not same.adapter_mismatch and same.dense_name == "enc"


def test_each_map_moves_its_own_side(terminology):
    """A category map that swaps two axes sends a mention to another category and leaves the member
    scores (sibling check) as they were; a member map moves those alone."""
    from clinassay.audit.fit import CorpusFit
    from clinassay.audit.text import normalize_text

    class Axes:
        name = fingerprint = "axes"

        def encode(self, texts, *, kind="query", batch_size=64, show_progress=False):
            out = np.zeros((len(texts), 4), dtype=np.float32)
            for row, text in enumerate(texts):
                low = text.casefold()
                out[row, 0 if "urin" in low else 1 if "pneumon" in low or "neumon" in low else 3] = 1.0
            return out

    raw = CorpusFit(terminology, Axes(), languages=["es", "en"])
    swap = np.eye(4)[[1, 0, 2, 3]]
    adapted = CorpusFit(terminology, Axes(), languages=["es", "en"], adapter=make_adapter("axes", swap))
    members = CorpusFit(terminology, Axes(), languages=["es", "en"], adapter=make_adapter("axes", np.eye(4), swap))
    vec = Axes().encode(["infección urinaria"])[0]
    row = [(vec, normalize_text("infección urinaria"), "N39.0", "es")]
    before, after, member_moved = raw.score(row)[0], adapted.score(row)[0], members.score(row)[0]
    assert before.category_rank < after.category_rank  # the swapped axis now points at pneumonia texts
    assert before.own_code == after.own_code and before.best_member == after.best_member
    assert member_moved.category_rank == before.category_rank and member_moved.own_code < before.own_code


def test_the_trainer_learns_a_ranking_the_raw_vectors_miss():
    pytest.importorskip("torch")
    from clinassay.retrieval.adapter_training import train_query_adapter

    rng = np.random.default_rng(1)
    dim, n_categories = 16, 12
    centres = rng.standard_normal((n_categories, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    texts = np.repeat(centres, 2, axis=0)  # two texts per category
    starts = list(range(0, 2 * n_categories, 2))
    mix = np.eye(dim) + 0.8 * rng.standard_normal((dim, dim))  # queries live in a distorted space
    targets = rng.integers(0, n_categories, 600)
    queries = (centres[targets] + 0.05 * rng.standard_normal((600, dim))) @ np.linalg.inv(mix)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)

    def top1(q):
        scores = q @ texts.T
        return float(np.mean(scores.reshape(len(q), n_categories, 2).max(axis=2).argmax(axis=1) == targets))

    matrix = train_query_adapter(queries, targets.tolist(), [(texts, starts)], epochs=60, lr=1e-2, l2=0.0)
    adapted = queries @ matrix
    adapted /= np.linalg.norm(adapted, axis=1, keepdims=True)
    assert top1(adapted) > top1(queries) + 0.2 and top1(adapted) > 0.9
    # the same queries split over two candidate sets (as members of two categories): each learns its own
    halves = [(texts[:n_categories], starts[: n_categories // 2]), (texts[n_categories:], starts[: n_categories // 2])]
    half = n_categories // 2
    group_of = (targets >= half).astype(int)
    matrix = train_query_adapter(queries, (targets % half).tolist(), halves, group_of.tolist(), epochs=60, lr=1e-2,
                                 l2=0.0)
    assert matrix.shape == (dim, dim) and not np.allclose(matrix, np.eye(dim))


def test_the_shipped_adapter_is_the_one_the_shipped_models_were_fitted_with():
    """bench/fit_operating_points.py writes both files; refitting one without the other would silently
    send every me5-small audit to the lexical models."""
    from clinassay.audit.fit_model import load_fit_models

    models = load_fit_models()
    adapter = query_adapter_for("me5-small", models)
    assert adapter is not None and adapter.member is not None
    assert adapter.digest == models.variants["me5-small"].query_adapter
    assert models.variants["me5-small+reference"].query_adapter == adapter.digest
    assert adapter.category.shape == adapter.member.shape == (384, 384)
