"""Layers that point one way: sources -> staging -> metrics -> roi, no cycle between packages, and the
statistics in `statistics/` a leaf that imports nothing of the pipeline but month arithmetic (so they can be read,
tested and reused without windows, DuckDB or Dagster). Read from the source, not by importing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "crm_roi_pipeline"
LEAF_MAY_IMPORT = {"crm_roi_pipeline.months", "crm_roi_pipeline.statistics"}


def _pipeline_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [])
        found |= {n for n in names if n.startswith("crm_roi_pipeline")}
    return found


def test_the_statistics_import_nothing_above_them():
    offenders = {
        f"{path.name} imports {name}"
        for path in (PACKAGE / "statistics").glob("*.py")
        for name in _pipeline_imports(path)
        if not any(name == allowed or name.startswith(allowed + ".") for allowed in LEAF_MAY_IMPORT)
    }
    assert offenders == set()


def test_month_arithmetic_is_a_leaf():
    assert _pipeline_imports(PACKAGE / "months.py") == set()


# The layers, from the bottom: each may import the ones below it (and the shared top-level modules: errors,
# settings, resources, months, ...), never one above. Sources know nothing of staging; staging nothing of the
# metrics; the metrics nothing of the ROI.
LAYERS = ["sources", "staging", "metrics", "roi"]


def _node(module: str) -> str:
    """The package (sources, staging, ...) or top-level module a `crm_roi_pipeline...` name belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        source = _node(".".join(rel.parts).removesuffix(".__init__"))
        graph.setdefault(source, set()).update(
            _node(name) for name in _pipeline_imports(path) if _node(name) != source
        )
    return graph


def test_no_import_cycle_between_packages():
    graph = _package_graph()
    cycles = []

    def walk(node: str, trail: list[str]) -> None:
        for target in sorted(graph.get(node, ())):
            if target in trail:
                cycles.append(" -> ".join(trail[trail.index(target):] + [target]))
            elif len(trail) < len(graph):
                walk(target, trail + [target])

    for start in graph:
        walk(start, [start])
    assert cycles == []


def test_each_layer_imports_only_the_layers_below_it():
    graph = _package_graph()
    upward = {
        f"{layer} imports {target}"
        for i, layer in enumerate(LAYERS)
        for target in graph.get(layer, ())
        if target in LAYERS[i + 1:] or target == "definitions"
    }
    assert upward == set()
    assert graph["statistics"] <= {"months"}  # the statistics: a leaf


def test_the_walk_sees_a_cycle_when_there_is_one(tmp_path, monkeypatch):
    """The cycle test can fail: two modules importing each other's packages are found."""
    fake = tmp_path / "crm_roi_pipeline"
    (fake / "a").mkdir(parents=True)
    (fake / "b").mkdir()
    (fake / "a" / "x.py").write_text("from crm_roi_pipeline.b.y import f\n")
    (fake / "b" / "y.py").write_text("from crm_roi_pipeline.a import x\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["PACKAGE"]), "PACKAGE", fake)
    with pytest.raises(AssertionError, match="a -> b -> a"):
        test_no_import_cycle_between_packages()


def test_staging_calls_the_source_interface_instead_of_probing_it():
    text = (PACKAGE / "staging" / "assets.py").read_text()
    assert "hasattr(source" not in text
