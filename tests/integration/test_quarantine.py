"""The strike count of processing bugs (relay/pipeline/quarantine.py) against the real broker:
it survives the process (a new ``Strikes`` reads what an earlier one wrote), is per consumer
group and per record bytes, and a record is quarantined only once it met ``after`` bugs before."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from relay.pipeline.quarantine import Quarantine, Strikes
from relay.pipeline.record import SourceRecord

pytestmark = pytest.mark.integration


class PayloadBug(KeyError):
    """A bug whose message quotes the payload."""


@pytest.fixture
def strike_topic(kafka_bootstrap: str) -> Iterator[str]:
    """A name only: the store creates the topic itself."""
    name = f"strikes-{uuid.uuid4().hex[:10]}"
    yield name
    AdminClient({"bootstrap.servers": kafka_bootstrap}).delete_topics([name])


def _record(offset: int, value: bytes = b"payload") -> SourceRecord:
    return SourceRecord("activity", 0, offset, None, b"student-1", value)


async def test_strikes_survive_the_process_per_group_and_per_record_bytes(
    kafka_bootstrap: str, strike_topic: str
) -> None:
    config = {"bootstrap.servers": kafka_bootstrap}
    first = Strikes(config, strike_topic, "relay-group")
    assert await first.count(_record(7)) == 0
    await first.add(_record(7), 1)
    await first.add(_record(7), 2)

    restarted = Strikes(config, strike_topic, "relay-group")  # a new process
    assert await restarted.count(_record(7)) == 2
    assert await restarted.count(_record(8)) == 0
    assert await restarted.count(_record(7, b"other bytes")) == 0  # a recreated topic's record
    assert await Strikes(config, strike_topic, "other-group").count(_record(7)) == 0

    admin = AdminClient(config)
    resource = ConfigResource(ConfigResource.Type.TOPIC, strike_topic)
    described = admin.describe_configs([resource])[resource].result(timeout=30)
    assert described["cleanup.policy"].value == "compact,delete"


async def test_a_record_is_quarantined_after_its_runs_with_the_bug_type_only(
    kafka_bootstrap: str, strike_topic: str
) -> None:
    config = {"bootstrap.servers": kafka_bootstrap}
    bug = PayloadBug("student-1 secret payload field")
    verdicts = []
    for _run in range(3):  # each run: a new process meets the bug once
        quarantine = Quarantine(Strikes(config, strike_topic, "g"), after=2)
        verdicts.append(await quarantine.verdict(_record(3), bug))
    assert verdicts[:2] == [None, None]
    rejection = verdicts[2]
    assert rejection is not None
    assert (rejection.stage, rejection.reason) == ("relay", "processing-bug")
    assert "PayloadBug" in rejection.detail and "secret" not in rejection.detail


async def test_without_a_reachable_store_nothing_is_quarantined(strike_topic: str) -> None:
    unreachable = {"bootstrap.servers": "127.0.0.1:1", "socket.connection.setup.timeout.ms": 1000}
    quarantine = Quarantine(Strikes(unreachable, strike_topic, "g"), after=1)
    assert await quarantine.verdict(_record(3), RuntimeError("bug")) is None


async def test_after_zero_never_quarantines(kafka_bootstrap: str, strike_topic: str) -> None:
    quarantine = Quarantine(Strikes({"bootstrap.servers": kafka_bootstrap}, strike_topic, "g"), 0)
    assert await quarantine.verdict(_record(3), RuntimeError("bug")) is None
