"""Confluent-framed records and the Schema Registry: issue 16 item 7 (ordering on a cold cache)
and the trusted sinks' registry outage. The registry is the real Apicurio (deploy/local/registry),
where the schemas are registered and the ids issued; its 503s and slow answers come from
tests/registry_proxy.py in front of it, the faults the real server cannot be asked to produce.

- Cold cache (item 7): the registry answers after 0.3-0.6 s and 503s half the time. The XpEarned
  schema id is warmed first; then ten students each get a QuestionAnswered (schema id not cached
  yet) followed by an XpEarned (cached). Per student the sandbox must receive the events in
  production order. A failure looks like: a student's XpEarned event arriving before the
  QuestionAnswered produced before it ("overtaken" > 0).
- Outage: the registry is down (every request 503) for the first 6 s, cold cache. Nothing may be
  dead-lettered (a registry outage is transient) and everything is delivered afterwards. A
  failure: lost > 0 or a dead letter.
- Credentials in the registry URL (issue 16 item 9): ``http://user:pass@host``, registry down for
  3 s so errors are logged; the password must not appear in the relay's output. A failure: it
  does.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka.schema_registry import Schema

from relay.contract.catalogue import default_catalogue
from relay.contract.wire import SINGLE_OBJECT_HEADER, frame_confluent
from relay.tools.traffic import TrafficGenerator, TrafficPlan
from tests.integration.conftest import SandboxFactory
from tests.registry import Registry
from tests.registry_proxy import RegistryProxy
from tests.reliability.conftest import Report, ScenarioFactory
from tests.reliability.harness import requires_relay
from tests.reliability.ledger import Expected, expectations
from tests.reliability.scenario import Scenario

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(180)]

TYPES = ("XpEarned", "QuestionAnswered", "AssessmentProgress", "ResourceViewed", "SessionChanged")
SECRET = "registry-pass-must-not-leak"
IDS: dict[str, int] = {}  # schema id of each record type, issued by the real registry


def _registry(schema_registry: Registry, seed: int) -> RegistryProxy:
    """The real registry holding every record type's schema (record name subjects), behind a
    proxy whose faults the trials turn on."""
    catalogue, client = default_catalogue(), schema_registry.client()
    for t in TYPES:
        full_name = f"timeback.activity.{t}"
        schema = Schema(catalogue.entry(full_name).text, "AVRO")
        IDS[t] = client.register_schema(full_name, schema)
    return RegistryProxy(schema_registry.base, seed=seed).start()


def _confluent(record: Expected) -> Expected:
    """The same record, Confluent-framed (the Avro body is the same bytes)."""
    value = frame_confluent(IDS[record.record_type], record.value[SINGLE_OBJECT_HEADER:])
    return Expected(record.key, value, record.event_id, record.record_type, record.kind,
                    record.reason, record.event_ids)  # fmt: skip


def _plan(seed: int, types: tuple[str, ...], count: int, students: int = 1) -> TrafficPlan:
    """Activity times an hour back: a one-type plan's clock can run past "now" otherwise."""
    start = datetime.now(UTC) - timedelta(hours=1)
    return TrafficGenerator(students=students, types=types, seed=seed, start=start).plan(count)


def _arrival(s: Scenario) -> dict[str, int]:
    """Event id -> position of its first receipt at the sandbox."""
    first: dict[str, int] = {}
    for n, (ident, _, _) in enumerate(s.watch.receipts):
        if ident is not None:
            first.setdefault(ident, n)
    return first


def test_a_cold_registry_cache_never_reorders_a_students_records(
    scenario: ScenarioFactory,
    sandbox_factory: SandboxFactory,
    report: Report,
    schema_registry: Registry,
) -> None:
    registry = _registry(schema_registry, 241)
    try:
        s = scenario("cold-cache", sandbox_factory(), partitions=3)
        # Plans of 40 (a short plan's last records can lie in the future), a few records used.
        warm = [_confluent(r) for r in expectations(_plan(241, ("XpEarned",), 40))[:3]]
        pairs: list[tuple[Expected, Expected]] = []
        for n in range(10):
            question = expectations(_plan(300 + n, ("QuestionAnswered",), 40))[0]
            plan = _plan(300 + n, ("XpEarned",), 40)  # same seed: the same student
            xp = expectations(plan)[0]
            assert xp.key == question.key
            pairs.append((_confluent(question), _confluent(xp)))
            s.seed_roster(plan)
        s.seed_roster(_plan(241, ("XpEarned",), 40))
        relay = s.relay("a", RELAY_SCHEMA_REGISTRY_URL=registry.url).start()
        relay.wait_assigned()
        s.produce(warm, wait=True)
        s.wait_progress(1.0, timeout=60, alive=[relay])  # the XpEarned schema id is cached
        registry.latency, registry.fail_rate = (0.3, 0.6), 0.5
        s.produce([r for pair in pairs for r in pair], wait=True)
        s.wait_complete(timeout=90, alive=[relay])
        arrival = _arrival(s)
        overtaken = sum(1 for q, x in pairs if arrival[x.event_ids[0]] < arrival[q.event_ids[0]])
        figures = s.finish()
        figures.notes.update(overtaken=overtaken, pairs=len(pairs), registry_503=registry.failed,
                             registry_calls=dict(registry.calls))  # fmt: skip
        report(figures)
    finally:
        registry.stop()

    assert figures.lost == 0 and figures.ok, figures.problems
    assert overtaken == 0, f"{overtaken} of {len(pairs)} students' records were reordered"


def test_a_registry_outage_dead_letters_nothing(
    scenario: ScenarioFactory,
    sandbox_factory: SandboxFactory,
    report: Report,
    schema_registry: Registry,
) -> None:
    registry = _registry(schema_registry, 242)
    try:
        s = scenario("registry-down", sandbox_factory(), partitions=3)
        plan = TrafficGenerator(students=10, seed=242).plan(200)
        s.seed_roster(plan)
        records = [_confluent(r) for r in expectations(plan)]
        registry.down = True
        relay = s.relay("a", RELAY_SCHEMA_REGISTRY_URL=registry.url).start()
        relay.wait_assigned()
        s.produce(records, wait=True)
        time.sleep(6)
        during = s.progress()
        registry.down = False
        s.wait_complete(timeout=90, alive=[relay])
        figures = s.finish()
        figures.notes.update(delivered_during_outage=during, registry_503=registry.failed)
        report(figures)
    finally:
        registry.stop()

    assert registry.failed > 0, "the outage was never seen"
    assert during < 1.0, "everything was delivered during the outage: the cache was not cold"
    assert figures.lost == 0 and figures.dlq_total == 0, figures.problems
    assert figures.ok


def test_registry_url_credentials_never_reach_the_logs(
    scenario: ScenarioFactory, sandbox_factory: SandboxFactory, schema_registry: Registry
) -> None:
    registry = _registry(schema_registry, 243)
    try:
        s = scenario("registry-secret", sandbox_factory(), partitions=1)
        plan = TrafficGenerator(students=2, seed=243).plan(60)
        s.seed_roster(plan)
        registry.down = True  # failures and retries: where a URL is likeliest to be logged
        url = registry.url.replace("http://", f"http://relay-user:{SECRET}@")
        relay = s.relay("a", RELAY_SCHEMA_REGISTRY_URL=url).start()
        relay.wait_assigned()
        s.produce([_confluent(r) for r in expectations(plan)], wait=True)
        time.sleep(3)
        registry.down = False
        s.wait_complete(timeout=60, alive=[relay])
        s.finish()
        logs = relay.logs()
    finally:
        registry.stop()

    assert registry.failed > 0, "the registry was never down: the trial proves nothing"
    assert SECRET not in logs, "the registry URL's password reached the logs"
