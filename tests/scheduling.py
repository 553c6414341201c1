"""How `make test` shares the suite among its pytest-xdist workers (``--dist loadgroup``).

A work unit is a test file, as with ``--dist loadfile`` (a module fixture is set up once), except
that the files using the secured cluster (``cluster`` fixture: three brokers, session scope) are one
unit: the cluster starts once, on one worker, not on every worker that meets one of those files.

xdist hands a free worker the next unit in the order of the collection, or, by default, largest
number of tests first; that put the trials last (a few tests per file, each up to a minute and a
half) and left one worker running the cluster trials alone at the end. So the units are put in
order of an estimated cost, longest first, and the Makefile passes ``--no-loadscope-reorder`` to
keep that order: the unit tests (milliseconds each) come last and fill the workers' ends. The cost
is a rough guess per test from what it starts, never a measurement; a wrong guess only costs
balance, not a result. Without xdist nothing here changes what runs.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

CLUSTER_GROUP = "kafka-cluster"
# Rough seconds per test, by the slowest thing it needs (a guess to order by, not a figure): a
# trial, a broker or registry (JVMs), the sandbox (in-process HTTP), nothing.
TRIAL_S, SERVER_S, SANDBOX_S, PLAIN_S = 30.0, 3.0, 0.3, 0.05
SERVERS = {"kafka", "kafka_bootstrap", "make_topic", "schema_registry", "registry_factory"}
SANDBOX = {"sandbox", "sandbox_factory", "http"}


def unit_of(item: pytest.Item) -> str:
    """The xdist group of ``item``: the cluster's, or its file."""
    return CLUSTER_GROUP if "cluster" in item.fixturenames else item.nodeid.split("::", 1)[0]


def cost(item: pytest.Item) -> float:
    """A guess of ``item``'s seconds, to hand out the longest units first."""
    names = set(item.fixturenames)
    if item.get_closest_marker("reliability") or "cluster" in names:
        return TRIAL_S
    if names & SERVERS:
        return SERVER_S
    return SANDBOX_S if names & SANDBOX else PLAIN_S


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("dist", "no") != "loadgroup":
        return
    units: dict[str, list[pytest.Item]] = defaultdict(list)
    for item in items:
        unit = unit_of(item)
        item.add_marker(pytest.mark.xdist_group(unit))
        units[unit].append(item)
    weight = {unit: sum(cost(i) for i in members) for unit, members in units.items()}
    # stable: files of equal weight, and the tests inside a file, keep their collection order
    items[:] = [i for unit in sorted(units, key=lambda u: -weight[u]) for i in units[unit]]
