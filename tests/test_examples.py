"""The shipped example configurations stay valid, and the CodiEsp one evaluates on the shared copy."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from clinassay.cli import main
from clinassay.config import load_config

ROOT = Path(__file__).resolve().parents[1]
CODIESP_DEV = ROOT.parent / "shared" / "data" / "codiesp" / "dev"


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.toml")), ids=lambda p: p.name)
def test_example_config_is_valid(path: Path) -> None:
    config = load_config(path)
    assert config.generation.models
    assert (ROOT / "runs") in config.run.out.resolve().parents  # runs land in the ignored runs/ folder


def test_provider_example_reads_keys_from_the_environment_only() -> None:
    config = load_config(ROOT / "examples" / "providers.toml")
    remote = [m for m in config.generation.models if m.kind == "litellm" and not m.api_base]
    assert remote and all(m.api_key_env for m in remote)


@pytest.mark.skipif(not CODIESP_DEV.is_dir(), reason="CodiEsp dev copy not found beside the project (../shared/data/codiesp)")
def test_codiesp_example_evaluates_a_baseline_on_the_shared_copy(tmp_path: Path) -> None:
    full = tmp_path / "codiesp-dev.tsv"
    assert main(["data", "import-codiesp", str(CODIESP_DEV), "--out", str(full)]) == 0
    header, *rows = full.read_text(encoding="utf-8").splitlines()
    sample = tmp_path / "sample.tsv"
    sample.write_text("\n".join([header, *random.Random(0).sample(rows, 200)]) + "\n", encoding="utf-8")
    out = tmp_path / "bm25"
    config = ROOT / "examples" / "codiesp.toml"
    assert main(["evaluate", "--model", "bm25", "--eval-set", str(sample), "--out", str(out), "--config", str(config)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    spanish = metrics["stages"]["biencoder"]["languages"]["es"]
    assert spanish["n"] == 200 and 0.0 < spanish["r@10"] <= 1.0
