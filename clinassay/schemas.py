"""The artifacts a pair passes through, as JSON Schemas: `python -m clinassay.schemas docs/schemas`.

Each model is owned by the package that writes the file; this module only lists them, so that
docs/schemas/ is generated from the code (tests/test_schemas.py fails when it is stale)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel


def artifacts() -> dict[str, type[BaseModel]]:
    """File name in docs/schemas -> the model that reads and writes it."""
    from clinassay.audit.calibration import Calibration
    from clinassay.audit.manifest import Manifest
    from clinassay.audit.summary import AuditSummary
    from clinassay.generation.records import Pair, Reject
    from clinassay.retrieval.metrics_file import GateComparison, MetricsFile
    from clinassay.retrieval.predictions import PredictionRow

    return {
        "pair.schema.json": Pair,  # generate -> pairs.jsonl (one per line); audit's input
        "reject.schema.json": Reject,  # generate -> pairs.rejects.jsonl
        "audit-summary.schema.json": AuditSummary,  # audit -> summary.json
        "audit-manifest.schema.json": Manifest,  # audit -> manifest.json (what train verifies)
        "calibration.schema.json": Calibration,  # calibrate -> calibration.json
        "retrieval-metrics.schema.json": MetricsFile,  # evaluate -> metrics.json (gate, export, report)
        "retrieval-gate.schema.json": GateComparison,  # evaluate --baseline -> metrics.json "comparison"
        "retrieval-prediction.schema.json": PredictionRow,  # evaluate -> predictions.jsonl (one per line; paired gate)
    }


def schema_text(model: type[BaseModel]) -> str:
    return (
        json.dumps(model.model_json_schema(mode="serialization"), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    )


def write_schemas(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in artifacts().items():
        path = folder / name
        path.write_text(schema_text(model), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # python -m clinassay.schemas docs/schemas
    for path in write_schemas(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/schemas")):
        print(path)
