"""Issue 23 item 8: a short broker restart must not drown the relay's log.

The Kafka broker this session owns is stopped for about 2 s under a running ``relay run`` with
records flowing. Both Kafka clients complain while it is away (aiokafka under faust, librdkafka
under the dead-letter producer): "connection refused", "node not ready", once per reconnect
attempt per connection. Repeated lines of one kind are summed up: the first is logged as it
came, then one line per kind and interval says how many were left out. Nothing is lost.

Counted: the relay's ERROR (and worse) lines, its JSON lines and librdkafka's own
``%0-3|`` lines on stderr alike. A failure looks like: hundreds of ERROR lines for a
two-second outage (about 1,050 in the fault mix of the issue), or no summary line.

Needs a broker the session starts (run without RELAY_KAFKA_BOOTSTRAP); skipped otherwise.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter

import pytest

from relay.tools.traffic import TrafficGenerator
from tests.conftest import Broker
from tests.integration.conftest import SandboxFactory
from tests.reliability.conftest import Report, ScenarioFactory
from tests.reliability.harness import requires_relay
from tests.reliability.ledger import expectations

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(600)]

RECORDS = 1500
DOWN_FOR_S = 2.0
ERROR_BOUND = 60  # ERROR lines a 2 s restart may cost: a few per kind, not one per attempt
LIBRDKAFKA = re.compile(r"^%(\d)\|")  # librdkafka's own stderr format: %<syslog level>|...


def error_lines(log: str) -> list[str]:
    """The relay's lines at ERROR or worse: JSON at ERROR/CRITICAL, librdkafka's at 0-3."""
    found = []
    for line in log.splitlines():
        raw = LIBRDKAFKA.match(line)
        if raw is not None:
            if int(raw.group(1)) <= 3:
                found.append(line)
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("ERROR", "CRITICAL"):
            found.append(line)
    return found


def kinds(lines: list[str]) -> Counter[str]:
    """Lines by logger (librdkafka's by facility), for the figures."""
    counted: Counter[str] = Counter()
    for line in lines:
        if LIBRDKAFKA.match(line):
            counted["librdkafka:" + line.split("|")[2]] += 1
        else:
            counted[json.loads(line)["logger"]] += 1
    return counted


def test_a_two_second_broker_restart_writes_a_bounded_log(
    kafka: Broker, scenario: ScenarioFactory, sandbox_factory: SandboxFactory, report: Report
) -> None:
    if kafka.env is None:
        pytest.skip("the broker at RELAY_KAFKA_BOOTSTRAP is not ours to restart")
    s = scenario("log-storm", sandbox_factory(), partitions=3)
    plan = TrafficGenerator(students=12, invalid_ratio=0.02, seed=238).plan(RECORDS)
    s.seed_roster(plan)
    relay = s.relay("a").start()
    relay.wait_assigned()
    s.produce(expectations(plan), rate=100)  # ~15 s of traffic: the restart lands in it
    s.wait_progress(0.2, timeout=120, alive=[relay])

    before = len(error_lines(relay.logs()))
    kafka.script("stop")
    time.sleep(DOWN_FOR_S)
    kafka.script("start")
    s.wait_complete(timeout=300, alive=[relay])
    figures = s.finish()  # SIGTERM: the summaries of open intervals are written at exit
    log = relay.logs()
    errors = error_lines(log)[before:]
    figures.notes.update(
        error_lines_before_restart=before,
        error_lines_from_restart=len(errors),
        error_kinds=dict(kinds(errors).most_common(12)),
    )
    report(figures)

    assert relay.starts == 1
    assert figures.lost == 0 and figures.dlq_unexpected == 0, figures.problems
    assert len(errors) <= ERROR_BOUND, f"{len(errors)} ERROR lines: {kinds(errors)}"
    summaries = [json.loads(x) for x in errors if '"repeated"' in x]
    assert summaries, "no summary line says how many repeated lines were left out"
    assert all(x["repeated"] > 0 and x.get("first") for x in summaries), summaries[:3]
