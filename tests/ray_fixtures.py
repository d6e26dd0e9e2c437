"""Inputs and comparisons shared by the distributed-audit tests (tests/test_ray_*.py).

`pairs_file` writes the labelled bad pairs and the small clean set plus what only crosses partitions:
an id given again under another code, exact copies under another spelling of the code, a near copy,
malformed and blank lines, a BOM, one generator with more distinct prompt ids than the tally keeps."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data" / "audit"
_spec = importlib.util.spec_from_file_location("audit_fakes", DATA / "fakes.py")
fakes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fakes)


def pair_lines() -> list[str]:
    lines: list[str] = []
    for path in (DATA / "bad_pairs.jsonl", DATA / "pairs_small.jsonl"):
        lines += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    extra = [
        {"id": "clean-001", "mention": "colecistitis aguda", "code": "K81.0", "language": "es", "model": "x"},
        {"id": "again-1", "mention": "infección del tracto urinario de repetición", "code": "n390", "language": "es",
         "model": "x"},
        {"id": "again-2", "mention": "Infección del tracto urinario, de repetición", "code": "N39.0",
         "language": "es", "model": "y"},
        {"mention": "neumonía adquirida en comunidad", "code": "J18.9", "language": "es", "model": "y"},
        {"id": "p01", "mention": "dolor torácico opresivo", "code": "R07.9", "language": "es", "model": "y"},
    ]
    extra += [{"mention": f"hipertensión arterial esencial {i}", "code": "I10", "language": "es", "model": "many",
               "prompt_id": f"prompt-{i:02d}", "litellm_model": "openai/x"} for i in range(60)]
    lines += [json.dumps(r, ensure_ascii=False) for r in extra]
    lines.insert(3, "{not json")
    lines.insert(10, "")
    lines.insert(40, json.dumps([1, 2]))
    return lines


def pairs_file(path: Path) -> Path:
    path.write_bytes(b"\xef\xbb\xbf" + ("\n".join(pair_lines()) + "\n").encode("utf-8"))
    return path


def decision_rows(decisions) -> list[tuple[int, bool, Any]]:
    from clinassay.audit.reader import Malformed

    out = []
    for d in decisions:
        if isinstance(d, Malformed):
            out.append((d.line, False, d.to_json()))
        else:
            out.append((d.line, d.accepted, d.to_json()))
    return out


TIMING_KEYS = {"near_search_seconds"}


def comparable(summary: Any) -> dict[str, Any]:
    """A summary as JSON without what measures time (it differs between any two runs)."""
    data = summary.model_dump(mode="json") if hasattr(summary, "model_dump") else json.loads(json.dumps(summary))
    data.pop("timings_s", None)
    data.pop("seconds", None)

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in TIMING_KEYS}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(data)


sys_modules_name = "audit_fakes"


def register_fakes_by_value() -> None:
    """Ray workers cannot import the test doubles by name: ship their code with them."""
    import sys

    import ray.cloudpickle

    sys.modules.setdefault(sys_modules_name, fakes)
    ray.cloudpickle.register_pickle_by_value(sys.modules[sys_modules_name])


def split_into_shards(path: Path, folder: Path, parts: int) -> Path:
    """The file cut at line boundaries into `parts` shards named in order (the BOM stays in the first)."""
    lines = path.read_bytes().splitlines(keepends=True)
    folder.mkdir(parents=True, exist_ok=True)
    size = -(-len(lines) // parts)
    for k in range(parts):
        (folder / f"part-{k:03d}.jsonl").write_bytes(b"".join(lines[k * size:(k + 1) * size]))
    return folder


def audit_files(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in ("accepted.jsonl", "rejected.jsonl", "malformed.jsonl")}
