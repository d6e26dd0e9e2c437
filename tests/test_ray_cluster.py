"""The Ray audit on a two-node cluster on this machine (`ray start --head` + `ray start --address`, both on
127.0.0.1), through the CLI, and with an audit worker killed mid-partition: every pair still gets exactly
one decision, the local engine's. Slow: two Ray nodes start, and every actor loads the audit's models."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from ray_fixtures import audit_files, comparable, fakes, pairs_file, register_fakes_by_value  # noqa: E402

pytestmark = pytest.mark.slow
RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop_nodes(*marks: str) -> None:
    """Stop this cluster's processes only (by id: those whose command line names its folder or address;
    `ray stop` would stop every Ray on the machine)."""
    for _ in range(2):
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if any(mark in cmdline for mark in marks):
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                except OSError:
                    pass
        time.sleep(1)


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    if ray.is_initialized():
        ray.shutdown()
    port = _free_port()
    # a throwaway cluster on 127.0.0.1, without token authentication (tests/conftest.py sets the mode for
    # the whole session), so the second node and the drivers (this process, the CLI) need no token file
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    temp = tmp_path_factory.mktemp("ray")
    address = f"127.0.0.1:{port}"
    try:
        subprocess.run([RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
                        "--include-dashboard=false", f"--temp-dir={temp}", "--disable-usage-stats"], check=True,
                       env=env, capture_output=True)
        subprocess.run([RAY, "start", f"--address={address}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
                        "--disable-usage-stats"], check=True, env=env, capture_output=True)
        yield address
    finally:
        _stop_nodes(str(temp), f"127.0.0.1:{port}")


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "clinassay", *args], capture_output=True, text=True, env=env)


def test_cli_audit_on_two_nodes_decides_as_the_local_engine(tmp_path, two_nodes) -> None:
    path = pairs_file(tmp_path / "pairs.jsonl")
    local = _cli("audit", str(path), "--out", str(tmp_path / "local"), "--no-embeddings", "--no-report")
    distributed = _cli("audit", str(path), "--out", str(tmp_path / "ray"), "--no-embeddings", "--no-report",
                       "--engine", "ray", "--address", two_nodes)
    assert local.returncode in (0, 1) and "Traceback" not in local.stderr
    assert distributed.returncode == local.returncode, distributed.stderr[-2000:]
    assert audit_files(tmp_path / "ray") == audit_files(tmp_path / "local")
    ray.init(address=two_nodes, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    finally:
        ray.shutdown()


class SlowEncoder(fakes.FakeEncoder):
    """The fake encoder, slow, writing its process id where the test can find it (to kill it)."""

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = folder

    def encode(self, texts, **kw):
        Path(self.folder, str(os.getpid())).touch()
        time.sleep(1.0)
        return super().encode(texts, **kw)


def test_a_worker_killed_mid_audit_still_gives_every_pair_one_decision(tmp_path, two_nodes) -> None:
    from clinassay.audit import AuditConfig, run_audit
    from clinassay.audit.distributed import RayAuditEngine
    from clinassay.audit.engines import LocalEngine

    register_fakes_by_value()
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    path = pairs_file(tmp_path / "pairs.jsonl")
    config = AuditConfig(embeddings=True, chunk_size=16)
    local = run_audit(path, tmp_path / "local", config=config, encoder=fakes.FakeEncoder(), engine=LocalEngine())
    pids = tmp_path / "pids"
    pids.mkdir()
    killed: list[int] = []

    def kill_one() -> None:
        deadline = time.time() + 600
        while time.time() < deadline and not killed:
            found = [int(p.name) for p in pids.iterdir()]
            if found:
                time.sleep(1.5)  # inside its partition, between chunks
                os.kill(found[0], signal.SIGKILL)
                killed.append(found[0])
            time.sleep(0.2)

    # the driver joins on loopback, like the nodes: after an earlier local ray.init in this process, Ray
    # would reuse the address it detected then (the machine's interface), where the workers cannot reach
    # the owner of the driver's objects (OwnerDiedError in _read_ranges, seen in CI)
    ray.init(address=two_nodes, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        killer = threading.Thread(target=kill_one, daemon=True)
        killer.start()
        engine = RayAuditEngine(workers=2, partition_pairs=100, range_mb=0.004, encoder=SlowEncoder(str(pids)))
        distributed = run_audit(path, tmp_path / "ray", config=config, encoder=fakes.FakeEncoder(), engine=engine)
        killer.join(timeout=5)
    finally:
        ray.shutdown()
    assert killed, "no audit worker was seen encoding"
    assert len(list(pids.iterdir())) >= 2  # the killed actor was replaced by a new process
    assert audit_files(tmp_path / "ray") == audit_files(tmp_path / "local")
    assert comparable(distributed.summary) == comparable(local.summary)
    shutil.rmtree(pids)
