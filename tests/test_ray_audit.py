"""The audit on a local Ray cluster started by the tests: the same files and summary as the local engine,
from one file and from a folder of shards (`clinassay[ray]`; skipped when Ray is not installed)."""

from __future__ import annotations

import subprocess
import sys

import pytest

ray = pytest.importorskip("ray")

from clinassay.audit import AuditConfig, run_audit  # noqa: E402
from clinassay.audit.distributed import RayAuditEngine  # noqa: E402
from clinassay.audit.engines import LocalEngine  # noqa: E402
from ray_fixtures import DATA, audit_files, comparable, fakes, pairs_file, register_fakes_by_value, split_into_shards  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    register_fakes_by_value()
    yield ray
    ray.shutdown()


def _engine(encoder=None) -> RayAuditEngine:
    # small partitions and ranges, so that even this file is cut into several of each
    return RayAuditEngine(workers=2, num_cpus=0.5, partition_pairs=100, range_mb=0.004, encoder=encoder)


@pytest.mark.slow
def test_ray_audit_writes_what_the_local_audit_writes(tmp_path, cluster, terminology) -> None:
    path = pairs_file(tmp_path / "pairs.jsonl")
    config = AuditConfig(embeddings=True, chunk_size=32)
    encoder = fakes.FakeEncoder()
    local = run_audit(path, tmp_path / "local", config=config, terminology=terminology, encoder=encoder,
                      eval_path=DATA / "bad_eval.tsv", engine=LocalEngine())
    engine = _engine(fakes.FakeEncoder())
    distributed = run_audit(path, tmp_path / "ray", config=config, terminology=terminology, encoder=encoder,
                            eval_path=DATA / "bad_eval.tsv", engine=engine)
    assert engine.figures["partitions"] >= 2 and engine.figures["ranges"] >= 2 and engine.figures["repeated_ids"] >= 2
    assert audit_files(tmp_path / "ray") == audit_files(tmp_path / "local")
    assert comparable(distributed.summary) == comparable(local.summary)
    assert local.summary.counts.rejected > 0 and local.summary.counts.accepted > 0
    assert local.summary.checks["leakage"].flagged > 0  # the broadcast evaluation set was used

    # a folder of shards is the file they concatenate to: same lines, same hash, same decisions
    shards = split_into_shards(path, tmp_path / "shards", 3)
    from_shards = run_audit(shards, tmp_path / "ray-shards", config=config, terminology=terminology,
                            encoder=encoder, eval_path=DATA / "bad_eval.tsv", engine=_engine(fakes.FakeEncoder()))
    assert audit_files(tmp_path / "ray-shards") == audit_files(tmp_path / "local")
    assert from_shards.summary.provenance.input.sha256 == local.summary.provenance.input.sha256
    left, right = comparable(from_shards.summary), comparable(local.summary)
    left["provenance"]["input"].pop("path"), right["provenance"]["input"].pop("path")
    assert left == right


def test_ray_is_not_imported_by_the_cli_or_the_audit() -> None:
    code = ("import sys; from clinassay.cli import app; import clinassay.audit, clinassay.audit.distributed, "
            "clinassay.audit.engines; assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
    help_text = subprocess.run([sys.executable, "-m", "clinassay", "audit", "--help"], capture_output=True,
                               text=True, check=True).stdout
    assert "--engine" in help_text and "--address" in help_text
