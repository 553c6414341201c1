"""Fixtures of the reliability suite: the sandbox (from the integration suite), scenarios, and the
figures each test measured, written to tests/reliability/results/ and summed up at the end."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import TopicFactory
from tests.integration.conftest import sandbox, sandbox_factory  # noqa: F401
from tests.reliability.ledger import Figures
from tests.reliability.scenario import Scenario

RESULTS = Path(__file__).parent / "results"
_MEASURED: list[Figures] = []

ScenarioFactory = Callable[..., Scenario]
Report = Callable[[Figures], None]


@pytest.fixture
def scenario(
    kafka_bootstrap: str, make_topic: TopicFactory, tmp_path: Path
) -> Iterator[ScenarioFactory]:
    """``scenario(name, sandbox, partitions=3)``: fresh topics and a Scenario (closed after)."""
    made: list[Scenario] = []

    def create(name: str, box: object, partitions: int = 3) -> Scenario:
        s = Scenario.create(name, kafka_bootstrap, make_topic, box, tmp_path / name, partitions)
        made.append(s)
        return s

    yield create
    for s in made:
        s.close()


@pytest.fixture
def report(request: pytest.FixtureRequest, record_property: Callable[..., None]) -> Report:
    """Record a test's figures: printed, a JSON file under results/, the junit properties and
    the summary at the end of the session."""

    def write(figures: Figures) -> None:
        _MEASURED.append(figures)
        data = figures.as_dict()
        for key, value in data.items():
            record_property(key, value)
        RESULTS.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
        print("\n" + figures.line())

    return write


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _MEASURED:
        return
    terminalreporter.section("reliability figures")
    header = (
        f"{'test':<22}{'trials':>7}{'records':>9}{'planted':>8}{'lost':>6}{'dups':>6}"
        f"{'dlq':>6}{'dlq dups':>9}{'secs':>8}  dead-lettered by reason"
    )
    terminalreporter.write_line(header)
    for f in _MEASURED:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(f.dlq_by_reason.items())) or "-"
        terminalreporter.write_line(
            f"{f.test:<22}{f.trials:>7}{f.records:>9}{f.planted:>8}{f.lost:>6}{f.duplicates:>6}"
            f"{f.dlq_total:>6}{f.dlq_duplicates:>9}{f.seconds:>8.1f}  {reasons}"
        )
