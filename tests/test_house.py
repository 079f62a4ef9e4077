"""The house's rules (docs/architecture.md §14), checked on the import statements of every module —
including imports inside functions, which a run-time check would miss."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute names (``from a import b`` gives a and a.b)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


GRAPH = {
    _module_name(p): _imports(p)
    for package in ("tdn", "analysis")
    for p in sorted((ROOT / package).rglob("*.py"))
}


def _offenders(prefix: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    return {
        module: sorted(i for i in imports if i.split(".")[0] in forbidden or i.startswith(forbidden))
        for module, imports in GRAPH.items()
        if module == prefix or module.startswith(prefix + ".")
        if any(i.split(".")[0] in forbidden or i.startswith(forbidden) for i in imports)
    }


def test_the_graph_was_read() -> None:
    assert "tdn.video.clip" in GRAPH and "tdn.network.model" in GRAPH and "analysis.ablate" in GRAPH
    assert "tdn.network.model" in GRAPH["tdn.network.checkpoint"]


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("tdn", ("app", "streamlit", "plotly")),
        (
            "tdn.video",
            ("tdn.network", "tdn.interpret", "tdn.training", "tdn.inference", "tdn.cli", "torch.nn"),
        ),
        ("tdn.network", ("tdn.video", "tdn.interpret", "tdn.training", "tdn.inference", "tdn.cli")),
        ("tdn.interpret", ("tdn.training", "tdn.cli")),
        ("tdn.training", ("tdn.interpret", "tdn.cli")),
        ("tdn.contract", ("tdn.video", "tdn.network", "torch")),
        ("analysis", ("tdn.cli", "app", "streamlit")),
    ],
)
def test_arrows_point_one_way(package: str, forbidden: tuple[str, ...]) -> None:
    assert _offenders(package, forbidden) == {}


def test_no_submodule_shares_a_name_with_a_public_attribute_of_its_package() -> None:
    import tdn

    clashes = []
    for info in pkgutil.walk_packages(tdn.__path__, "tdn."):
        if not info.ispkg:
            continue
        package = importlib.import_module(info.name)
        public = set(getattr(package, "__all__", ()))
        children = {m.name for m in pkgutil.iter_modules(package.__path__)}
        clashes += [f"{info.name}.{c}" for c in children & public]
    children = {m.name for m in pkgutil.iter_modules(tdn.__path__)}
    clashes += [f"tdn.{c}" for c in children & set(tdn.__all__)]
    assert clashes == []


def test_library_modules_stay_small() -> None:
    sizes = {
        m: len((ROOT / (m.replace(".", "/") + ".py")).read_text().splitlines())
        for m in GRAPH
        if (ROOT / (m.replace(".", "/") + ".py")).is_file()
    }
    assert max(sizes.values()) <= 600, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]
