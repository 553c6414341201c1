"""How `make test` shares the suite among its pytest-xdist workers (``--dist loadfile``).

A work unit is a test file (a module fixture is set up once), except that the files on the secured
cluster (``cluster`` fixture: three brokers, session scope) are one unit: the cluster starts once,
on one worker, not on every worker that meets one of those files. A file that starts using the
cluster without being listed here only costs a second cluster. (``--dist loadgroup`` with
``xdist_group`` marks would say this in the tests, but pytest-xdist 3.8 groups by writing
``item._nodeid``, which pytest 9 no longer reads: every test became a unit of its own.)

xdist hands a free worker the next unit in the order of the collection, or, by default, largest
number of tests first; that put the trials last (a few tests per file, each up to a minute and a
half) and left one worker running the cluster trials alone at the end. So the workers order the
units by an estimated cost, longest first, and the Makefile passes ``--no-loadscope-reorder`` to
keep that order: the unit tests (milliseconds each) come last and fill the workers' ends. The cost
is a rough guess per test from what it starts, never a measurement; a wrong guess only costs
balance, not a result. Without xdist nothing here changes what runs or in which order.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling

CLUSTER_UNIT = "kafka-cluster"
CLUSTER_FILES = frozenset({
    "tests/integration/test_cluster_security.py",
    "tests/reliability/test_cluster_trials.py",
    "tests/reliability/test_scram_rotation.py",
})  # fmt: skip
# Rough seconds per test, by the slowest thing it needs (a guess to order by, not a figure): a
# trial, a broker or registry (JVMs), the sandbox (in-process HTTP), nothing.
TRIAL_S, SERVER_S, SANDBOX_S, PLAIN_S = 30.0, 3.0, 0.3, 0.05
SERVERS = {"kafka", "kafka_bootstrap", "make_topic", "schema_registry", "registry_factory"}
SANDBOX = {"sandbox", "sandbox_factory", "http"}


def unit_of(nodeid: str) -> str:
    """The work unit of a test: the cluster's, or its file."""
    path = nodeid.split("::", 1)[0]
    return CLUSTER_UNIT if path in CLUSTER_FILES else path


class FileScheduling(LoadScopeScheduling):
    """``--dist loadfile``, with the cluster's files as one unit."""

    def _split_scope(self, nodeid: str) -> str:
        return unit_of(nodeid)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> LoadScopeScheduling | None:
    if config.getoption("dist") == "loadfile":
        return FileScheduling(config, log)
    return None  # xdist's own


def cost(item: pytest.Item) -> float:
    """A guess of ``item``'s seconds, to hand out the longest units first."""
    names = set(item.fixturenames)
    if item.get_closest_marker("reliability") or "cluster" in names:
        return TRIAL_S
    if names & SERVERS:
        return SERVER_S
    return SANDBOX_S if names & SANDBOX else PLAIN_S


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not hasattr(config, "workerinput"):  # an xdist worker's collection is the schedule's order
        return
    units: dict[str, list[pytest.Item]] = defaultdict(list)
    for item in items:
        units[unit_of(item.nodeid)].append(item)
    weight = {unit: sum(cost(i) for i in members) for unit, members in units.items()}
    # stable: units of equal weight, and the tests inside a unit, keep their collection order
    items[:] = [i for unit in sorted(units, key=lambda u: -weight[u]) for i in units[unit]]
