"""The statistics in `uplift/` are a leaf: they import nothing of the pipeline but month arithmetic, so they
can be read, tested and reused without windows, DuckDB or Dagster. Read from the source, not by importing."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "crm_roi_pipeline"
LEAF_MAY_IMPORT = {"crm_roi_pipeline.months", "crm_roi_pipeline.uplift"}


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
        for path in (PACKAGE / "uplift").glob("*.py")
        for name in _pipeline_imports(path)
        if not any(name == allowed or name.startswith(allowed + ".") for allowed in LEAF_MAY_IMPORT)
    }
    assert offenders == set()


def test_month_arithmetic_is_a_leaf():
    assert _pipeline_imports(PACKAGE / "months.py") == set()
