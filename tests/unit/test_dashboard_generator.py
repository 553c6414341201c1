"""deploy/grafana/timeback-relay.json is the output of deploy/grafana/dashboard.py, never edited by
hand: a change to the dashboard is a change to the generator, then ``python
deploy/grafana/dashboard.py``."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

GENERATOR = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboard.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dashboard_generator", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_committed_dashboard_is_the_generators_output() -> None:
    generator = _generator()
    assert generator.OUTPUT.read_text() == generator.render(), (
        "run: python deploy/grafana/dashboard.py"
    )


def test_layout_places_lines_under_each_other_with_unique_ids() -> None:
    generator = _generator()
    rows = [
        generator.Row("A", [[generator.timeseries(t, "", "short", [], width=12) for t in "ab"]]),
        generator.Row("B", [[generator.stat("b", "", "short", generator.Q("x"), steps=[])]]),
    ]
    panels = generator.build(rows)["panels"]
    placed = [(p["type"], p["id"], tuple(p["gridPos"].values())) for p in panels]
    assert [(kind, pid) for kind, pid, _ in placed] == [
        ("row", 1), ("timeseries", 2), ("timeseries", 3), ("row", 4), ("stat", 5),
    ]  # fmt: skip
    assert [grid for _, _, grid in placed] == [
        (1, 24, 0, 0), (8, 12, 0, 1), (8, 12, 12, 1), (1, 24, 0, 9), (4, 4, 0, 10),
    ]  # fmt: skip
    assert json.dumps(generator.build(rows)) == json.dumps(generator.build(rows))
