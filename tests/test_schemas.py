"""docs/schemas/ is generated from the artifact models; a model change without regenerating fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinassay.schemas import artifacts, schema_text

SCHEMAS = Path(__file__).resolve().parents[1] / "docs" / "schemas"


@pytest.mark.parametrize("name", sorted(artifacts()))
def test_published_schema_matches_its_model(name):
    published = SCHEMAS / name
    assert published.is_file(), f"{published} missing: run python -m clinassay.schemas docs/schemas"
    assert published.read_text(encoding="utf-8") == schema_text(artifacts()[name]), (
        f"{name} is stale: run python -m clinassay.schemas docs/schemas"
    )


def test_every_published_schema_has_a_model():
    assert {p.name for p in SCHEMAS.glob("*.schema.json")} == set(artifacts())


def test_the_summary_schema_declares_every_key():
    from clinassay.audit.summary import AuditSummary

    schema = AuditSummary.model_json_schema()
    assert schema["additionalProperties"] is False
    assert {"verdict", "counts", "gate", "checks", "matrix", "bias", "provenance", "schema_version"} <= set(
        schema["properties"]
    )


def test_the_metrics_schema_keeps_the_keys_metrics_json_has():
    from clinassay.retrieval.metrics_file import MetricsFile

    schema = MetricsFile.model_json_schema(mode="serialization")
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {
        "schema_version",
        "stages",
        "distinct",
        "coverage",
        "seconds",
        "eval_set",
        "model",
        "seed",
        "versions",
        "comparison",
        "reranker_vs_stage1",
    }
    slice_ = schema["$defs"]["SliceFigures"]
    assert slice_["additionalProperties"] is False
    assert set(slice_["properties"]) == {"n", "mrr@10", "ndcg@10", "r@1", "r@3", "r@5", "r@10", "ci95"}


def test_the_predictions_schema_keeps_the_keys_evaluate_writes():
    from clinassay.retrieval.predictions import PredictionRow

    schema = PredictionRow.model_json_schema(mode="serialization")
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {
        "mention",
        "code",
        "language",
        "rank_biencoder",
        "top_biencoder",
        "rank_reranker",
        "top_reranker",
    }
    assert set(schema["required"]) == {"mention", "code", "language", "rank_biencoder", "top_biencoder"}
