"""The benchmark report: machine facts, one result per scenario, a table and a JSON file.

Shape (read by others): ``{"machine": {...}, "scenarios": {"S1": {"value": 12.3,
"unit": "us/record", "target": 50, "met": true, "issue": 9, "detail": {...}}, ...},
"targets": {...}}``; a result with a second bar also has ``goal`` and ``goal_met``. A scenario
may give more than one result (S6a, S6b). Every bar comes from ``bench.targets.TARGETS``, which
the file also carries whole under ``targets``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.targets import TARGETS, Target, target

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Result:
    """One row of the report; its bar comes from ``bench.targets.TARGETS`` by name."""

    name: str
    title: str
    value: float
    unit: str
    detail: dict[str, Any] = field(default_factory=dict)
    failed: bool = False  # the scenario broke: its value means nothing and meets no bar

    @property
    def bar(self) -> Target:
        return target(self.name)

    @property
    def met(self) -> bool:
        return not self.failed and self.bar.met(self.value)

    @property
    def goal_met(self) -> bool | None:
        reached = self.bar.goal_met(self.value)
        return reached if reached is None or not self.failed else False

    def as_json(self) -> dict[str, Any]:
        bar = self.bar
        data: dict[str, Any] = {"title": self.title, "value": self.value, "unit": self.unit,
                                "target": bar.bar, "better": bar.better, "met": self.met,
                                "issue": bar.issue}  # fmt: skip
        if bar.goal is not None:
            data |= {"goal": bar.goal, "goal_met": self.goal_met}
        return data | {"detail": self.detail}


def machine() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for dist in ("faust-streaming", "aiokafka", "confluent-kafka", "fastavro", "httpx", "orjson"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "processor": platform.machine(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": versions,
    }


def write(
    results: list[Result], path: Path | None = None, extra: dict[str, Any] | None = None
) -> Path:
    """``extra``: more top-level sections (e.g. ``experiments``) next to machine and scenarios."""
    path = path or RESULTS / "latest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": machine(),
        "scenarios": {r.name: r.as_json() for r in results},
        "targets": {name: asdict(bar) for name, bar in TARGETS.items()},  # the whole table
    }
    report |= extra or {}
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def show(results: list[Result], console: Console | None = None) -> None:
    table = Table(title="timeback-relay benchmark")
    for column in ("scenario", "what", "value", "target", "met"):
        table.add_column(column, justify="right" if column in ("value", "target") else "left")
    for r in results:
        met = "[green]yes[/]" if r.met else "[red]no[/]"
        if r.goal_met is not None:
            met += ", goal [green]yes[/]" if r.goal_met else ", goal [red]no[/]"
        table.add_row(r.name, r.title, f"{r.value:,.2f} {r.unit}", r.bar.describe(), met)
    (console or Console(width=140)).print(table)
