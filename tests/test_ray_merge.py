"""The distributed audit without Ray: partitions cut by code, audited by two reused workers, their states
merged into one auditor, give the local audit's decisions and summary exactly (audit/state.py,
audit/distributed.py's plain functions). These run without the `ray` extra."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from clinassay.audit import AuditConfig, Auditor
from clinassay.audit.distributed import PartitionAuditor, read_range
from clinassay.audit.engines import LocalEngine
from clinassay.audit.references import EvalSet, read_labelled
from clinassay.audit.source import PairsSource
from clinassay.audit.state import merge_value
from clinassay.audit.tally import Reservoir
from ray_fixtures import DATA, comparable, decision_rows, fakes, pairs_file


def _eval_set() -> EvalSet:
    return EvalSet(read_labelled(DATA / "bad_eval.tsv"), path="bad_eval.tsv")


def _local(path: Path, config: AuditConfig, terminology, encoder):
    auditor = Auditor(config, terminology=terminology, encoder=encoder, eval_set=_eval_set())
    decisions = decision_rows(LocalEngine().decisions(PairsSource(path), auditor))
    return decisions, auditor.summarize()


def _partitioned(path: Path, config: AuditConfig, terminology, encoder, partitions: int):
    rows = defaultdict(list)
    ids = defaultdict(list)
    for byte_range in PairsSource(path).scan(range_bytes=2000).ranges:
        batch = read_range(byte_range, partitions)
        for n, raw, first, part, given in zip(*(batch[k] for k in ("line", "raw", "first", "part", "id"))):
            rows[part].append((n, raw, first))
            if given:
                ids[given].append(n)
    repeated = {given: min(lines) for given, lines in ids.items() if len(lines) > 1}
    eval_set = _eval_set()
    workers = [PartitionAuditor(config, encoder=encoder, eval_set=eval_set, repeated_ids=repeated,
                                terminology=terminology) for _ in range(2)]
    driver = Auditor(config, terminology=terminology, encoder=encoder, eval_set=eval_set)
    decisions = []
    for k, part in enumerate(sorted(rows, reverse=True)):  # an order unlike the input's
        for _, kind, obj in workers[k % 2].audit(rows[part]):
            if kind == "state":
                driver.merge_state(obj)
            else:
                decisions.append(obj)
    decisions.sort(key=lambda d: d.line)
    return decision_rows(decisions), driver.summarize(), repeated


@pytest.mark.parametrize("embeddings", [False, True], ids=["rules", "fake-embeddings"])
def test_partitioned_audit_merges_into_the_local_audit(tmp_path, terminology, embeddings) -> None:
    path = pairs_file(tmp_path / "pairs.jsonl")
    config = AuditConfig(embeddings=embeddings, chunk_size=16)
    encoder = fakes.FakeEncoder() if embeddings else None
    local_decisions, local_summary = _local(path, config, terminology, encoder)
    decisions, summary, repeated = _partitioned(path, config, terminology, encoder, partitions=5)

    assert [d[0] for d in decisions] == [d[0] for d in local_decisions]
    assert decisions == local_decisions
    assert comparable(summary) == comparable(local_summary)
    # what the comparison covers: ids repeated across codes, duplicates, malformed lines, the capped prompt ids
    assert repeated["clean-001"] == 1 and "p01" in repeated
    reasons = {f["reason"] for _, _, d in local_decisions for f in d.get("reasons", [])}
    assert {"duplicate_id", "exact_duplicate"} <= reasons
    assert {4, 41} <= {m.line for m in local_summary.malformed}  # the two planted unreadable lines
    generators = {g.name: g for g in local_summary.provenance.generators}
    assert len(generators["many"].prompt_ids) == 50
    if embeddings:
        assert "near_duplicate" in reasons or local_summary.checks["duplicate"].info.get("diversity_mean") is not None


def test_a_partition_merged_twice_is_refused(tmp_path, terminology) -> None:
    """A code audited in two partitions would have its duplicates compared in neither: the merge says so."""
    path = pairs_file(tmp_path / "pairs.jsonl")
    config = AuditConfig(embeddings=True, chunk_size=64)
    worker = PartitionAuditor(config, encoder=fakes.FakeEncoder(), terminology=terminology)
    lines = [r for byte_range in PairsSource(path).scan(range_bytes=None).ranges for r in byte_range.lines()
             if r[1].strip()]
    state = [obj for _, kind, obj in worker.audit(lines) if kind == "state"][0]
    again = [obj for _, kind, obj in worker.audit(lines) if kind == "state"][0]
    driver = Auditor(config, terminology=terminology, encoder=fakes.FakeEncoder())
    driver.merge_state(state)
    assert state.checks["duplicate"]["finished"]
    with pytest.raises(ValueError, match="two partitions"):
        driver.merge_state(again)


def test_bottom_k_samples_merge_into_the_sample_of_the_whole() -> None:
    whole = Reservoir(10, seed="es")
    parts = [Reservoir(10, seed="es") for _ in range(3)]
    for line in range(1, 500):
        whole.add(f"m{line}", key=line)
        parts[line % 3].add(f"m{line}", key=line)
    merged = Reservoir(10, seed="es")
    for part in parts:
        merged.merge(part)
    assert merged.items == whole.items and merged.seen == whole.seen == 499
    assert len(whole.items) == 10 and whole.items == sorted(whole.items, key=lambda m: int(m[1:]))
    other = Reservoir(10, seed="pt")
    for line in range(1, 500):
        other.add(f"m{line}", key=line)
    assert other.items != whole.items  # a seed per language: not the same lines in every language


def test_merge_rules() -> None:
    from collections import Counter

    merged = merge_value({"a": 1, "c": Counter(x=1), "h": [1, 0], "s": {1}},
                         {"a": 2, "b": 1.5, "c": Counter(x=2, y=1), "h": [0, 3], "s": {2}})
    assert merged == {"a": 3, "b": 1.5, "c": Counter(x=3, y=1), "h": [1, 3], "s": {1, 2}}
    with pytest.raises(TypeError):
        merge_value(True, False)
    with pytest.raises(ValueError):
        merge_value([1], [1, 2])
