"""The audit and the embedding step run through a distributed-style map unchanged.

`ProcessPoolExecutor.map` over shards has the shape of Ray Data's `map_batches` or Spark's
`mapPartitions`: each worker builds its own auditor/encoder and calls the same per-chunk function the
single-process audit calls. The per-pair decisions must be identical; duplicates are the one
cross-shard state, so the shards are cut by code (a duplicate shares its code) — the same
partitioning docs/scaling.md recommends.
"""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data" / "audit"


def _lines() -> list[tuple[int, str]]:
    rows = []
    for path in (DATA / "bad_pairs.jsonl", DATA / "pairs_small.jsonl"):
        rows += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return list(enumerate(rows, start=1))


def audit_shard(lines: list[tuple[int, str]]) -> list[tuple[int, bool, list[str]]]:
    """What a worker runs: parse its shard, audit it with the same per-chunk function, return decisions."""
    from clinassay.audit import AuditConfig, Auditor
    from clinassay.audit.reader import Malformed, parse_line

    auditor = Auditor(AuditConfig(embeddings=False))
    out = []
    for decision in auditor.audit_chunk([parse_line(n, text) for n, text in lines]):
        if isinstance(decision, Malformed):
            out.append((decision.line, False, ["malformed"]))
        else:
            out.append((decision.line, decision.accepted, sorted(f"{f.check}:{f.reason}" for f in decision.findings)))
    return out


def _code_of(text: str) -> str:
    try:
        return str(json.loads(text).get("code", "")).upper().replace(".", "").strip()
    except (json.JSONDecodeError, AttributeError):
        return ""


def test_audit_through_a_process_map_equals_the_single_process_audit() -> None:
    lines = _lines()
    single = sorted(audit_shard(lines))

    shards: dict[int, list[tuple[int, str]]] = {}
    for n, text in lines:
        shards.setdefault(hash(_code_of(text)) % 3, []).append((n, text))
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        mapped = sorted(d for shard in pool.map(audit_shard, shards.values()) for d in shard)

    assert mapped == single
    assert any(not accepted for _, accepted, _ in single) and any(accepted for _, accepted, _ in single)


def embed_shard(texts: list[str]) -> np.ndarray:
    from clinassay.retrieval.models import load_encoder

    return load_encoder("minilm-en").encode(texts, kind="query", batch_size=16)


@pytest.mark.slow
def test_embedding_through_a_process_map_equals_one_call() -> None:
    texts = [json.loads(text)["mention"] for _, text in _lines() if _code_of(text)][:60]
    whole = embed_shard(texts)
    shards = [texts[i : i + 20] for i in range(0, len(texts), 20)]
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        mapped = np.vstack(list(pool.map(embed_shard, shards)))
    assert mapped.shape == whole.shape
    assert np.allclose(mapped, whole, atol=1e-5)
