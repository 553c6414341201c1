"""Every bar the benchmark holds a figure to, in one table: the scenario modules measure, this
decides whether a figure is ``met``.

A row's name is the result's (``S6b``, ``S6b (N=20)``); a batched row without an entry of its
own (``S2 (N=20)``) is held to its scenario's bar. ``issue`` says which issue set the bar; issue
21's bars replaced earlier ones where they overlap (S6b, S8).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal


@dataclass(frozen=True)
class Target:
    bar: float  # the first bar: what ``met`` means
    better: Literal["lower", "higher"]
    goal: float | None = None  # a second, harder bar
    issue: int = 9
    note: str = ""  # how to read the bar

    def _reaches(self, value: float, bar: float) -> bool:
        return value <= bar if self.better == "lower" else value >= bar

    def met(self, value: float) -> bool:
        return self._reaches(value, self.bar)

    def goal_met(self, value: float) -> bool | None:
        return None if self.goal is None else self._reaches(value, self.goal)

    def describe(self) -> str:
        bound = "<=" if self.better == "lower" else ">="
        return f"{bound} {self.bar:.3g}" + ("" if self.goal is None else f" (goal {self.goal:g})")


TARGETS: Final[dict[str, Target]] = {
    "S1": Target(50.0, "lower", note="us of CPU per record, decode..serialize, one core"),
    "S1 checker": Target(1 / 3, "lower", issue=21, note="the Caliper rule checker's share of S1"),
    "S2": Target(0.8, "higher", note="relay / bare httpx loop, sandbox"),
    "S3": Target(0.8, "higher", note="throughput / (in flight / 50 ms), sandbox"),
    "S4": Target(10.0, "higher", note="relay / naive relay"),
    "S5": Target(250.0, "lower", note="peak RSS in MB"),
    "S6a": Target(200.0, "lower", goal=150.0, issue=15, note="us of CPU per record, Go sink"),
    "S6b": Target(0.35, "higher", goal=0.5, issue=21, note="relay / bare aiohttp loop"),
    "S6b (N=20)": Target(0.7, "higher", issue=21, note="envelopes of 20 / the same loop"),
    "S6c": Target(2.0, "higher", issue=15, note="the Go sink's headroom over the relay"),
    "S7a": Target(1.0, "higher", issue=15, note="the compiled peer: a limit line"),
    "S7b": Target(10.0, "higher", issue=15, note="the compiled peer: a limit line"),
    "S7c": Target(1.0, "higher", issue=21, note="relay / Camel, JVM warmed (S7c JIT)"),
    "S7c JIT": Target(0.1, "lower", issue=21, note="HotSpot compiling's share of Camel's CPU"),
    "S7d": Target(10.0, "higher", issue=15, note="stated against Kafka Connect"),
    "S8": Target(0.85, "higher", issue=21, note="throughput / (in flight / 50 ms) up to 64"),
    "S9a": Target(1.0, "higher", issue=21, note="relay / Quix Streams app, no latency"),
    "S9b": Target(1.0, "higher", issue=21, note="relay / Quix Streams app, 50 ms"),
}


def target(name: str) -> Target:
    """The bar of a result named ``name``: its own row, its scenario's for a batched row, or
    the scenario's first row for a scenario that failed (a row named ``S6`` for S6a..S6c)."""
    if name in TARGETS:
        return TARGETS[name]
    scenario = name.split(" (N=", 1)[0]
    if scenario in TARGETS:
        return TARGETS[scenario]
    first = next((row for row in TARGETS if row.startswith(name)), None)
    if first is not None:
        return TARGETS[first]
    raise KeyError(f"no target for benchmark row {name!r}: add it to bench/targets.py TARGETS")
