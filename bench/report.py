"""The benchmark report: machine facts, one result per scenario, a table and a JSON file.

Shape (read by others): ``{"machine": {...}, "scenarios": {"S1": {"value": 12.3,
"unit": "us/record", "target": 50, "met": true, "detail": {...}}, ...}}``; a result with a second
bar also has ``goal`` and ``goal_met``. A scenario may give more than one result (S6a, S6b).
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
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Result:
    name: str
    title: str
    value: float
    unit: str
    target: float
    better: Literal["lower", "higher"]
    detail: dict[str, Any] = field(default_factory=dict)
    goal: float | None = None  # a second, harder bar (the target is the first)

    def _reaches(self, bar: float) -> bool:
        return self.value <= bar if self.better == "lower" else self.value >= bar

    @property
    def met(self) -> bool:
        return self._reaches(self.target)

    @property
    def goal_met(self) -> bool | None:
        return None if self.goal is None else self._reaches(self.goal)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("name")
        data["met"] = self.met
        if self.goal is None:
            data.pop("goal")
        else:
            data["goal_met"] = self.goal_met
        return data


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
    report = {"machine": machine(), "scenarios": {r.name: r.as_json() for r in results}}
    report |= extra or {}
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def show(results: list[Result], console: Console | None = None) -> None:
    table = Table(title="timeback-relay benchmark")
    for column in ("scenario", "what", "value", "target", "met"):
        table.add_column(column, justify="right" if column in ("value", "target") else "left")
    for r in results:
        bound = "<=" if r.better == "lower" else ">="
        target = f"{bound} {r.target:g}" + (f" (goal {r.goal:g})" if r.goal is not None else "")
        met = "[green]yes[/]" if r.met else "[red]no[/]"
        if r.goal is not None:
            met += ", goal [green]yes[/]" if r.goal_met else ", goal [red]no[/]"
        table.add_row(r.name, r.title, f"{r.value:,.2f} {r.unit}", target, met)
    (console or Console(width=140)).print(table)
