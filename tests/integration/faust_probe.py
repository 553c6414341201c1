"""A minimal faust app for test_kafka_stack: consumes PROBE_TOPIC with the aiokafka transport
and appends each value to PROBE_OUT. Run as ``python -m tests.integration.faust_probe worker``."""

from __future__ import annotations

import os
from pathlib import Path

import faust

app = faust.App(
    os.environ["PROBE_GROUP"],
    broker=f"kafka://{os.environ['PROBE_BOOTSTRAP']}",
    store="memory://",
    web_enabled=False,
    topic_disable_leader=True,
    consumer_auto_offset_reset="earliest",
    broker_commit_every=1,
    broker_commit_interval=0.2,
    # a SIGKILLed member holds its partitions until its session times out: keep that short
    broker_session_timeout=6,
    broker_heartbeat_interval=1,
)
topic = app.topic(os.environ["PROBE_TOPIC"], value_type=bytes, value_serializer="raw")


@app.agent(topic)
async def record(stream: faust.StreamT[bytes]) -> None:
    out = Path(os.environ["PROBE_OUT"])
    async for value in stream:
        with out.open("a") as file:  # noqa: ASYNC230 - a tiny local append in a test probe
            file.write(value.decode() + "\n")


if __name__ == "__main__":
    app.main()
