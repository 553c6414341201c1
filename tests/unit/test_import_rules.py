"""The import rules of the package layout (issue 22 step 5), read from the source with ``ast``:
only ``relay.pipeline`` imports faust, the record's path imports no operator tool, and the
Kafka client modules know neither the pipeline nor the tools."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

RELAY = Path(__file__).resolve().parents[2] / "relay"


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names; relative imports are not used here)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def modules(package: str) -> list[Path]:
    return sorted((RELAY / package).rglob("*.py"))


def offending(paths: list[Path], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {
        str(p.relative_to(RELAY.parent)): sorted(
            n for n in imports(p) if n.split(".")[0] in forbidden or n.startswith(forbidden)
        )
        for p in paths
    }
    return {path: names for path, names in found.items() if names}


def test_only_the_pipeline_imports_faust() -> None:
    outside = [p for p in RELAY.rglob("*.py") if "pipeline" not in p.relative_to(RELAY).parts]
    assert offending(outside, ("faust", "aiokafka")) == {}


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("pipeline", ("relay.ops", "relay.tools")),
        ("kafka", ("relay.pipeline", "relay.ops", "relay.tools")),
    ],
)
def test_a_package_imports_nothing_above_it(package: str, forbidden: tuple[str, ...]) -> None:
    assert offending(modules(package), forbidden) == {}
