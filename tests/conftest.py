"""Session-wide fixtures: a real Kafka 4.x broker and uniquely named topics.

The broker is the one at RELAY_KAFKA_BOOTSTRAP when that is set (a developer's running broker,
`make kafka-up`); otherwise the session starts its own with deploy/local/kafka/kafka-local.sh on
free ports in a temporary directory, and stops it at the end.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.ports import free_ports

# The secured 3-broker cluster (``cluster`` fixture) and the Schema Registry (``schema_registry``,
# ``registry_factory``), started only when a test asks for them; how `make test` shares the files
# among its workers (tests/scheduling.py).
pytest_plugins = ["tests.kafka_cluster", "tests.registry", "tests.scheduling"]

ROOT = Path(__file__).resolve().parents[1]
KAFKA_SCRIPT = ROOT / "deploy" / "local" / "kafka" / "kafka-local.sh"


@dataclass(frozen=True)
class Broker:
    bootstrap: str
    env: dict[str, str] | None  # the script's environment when this session started it

    def script(self, command: str, timeout: float = 120) -> None:
        """Run the broker script (stop/start/restart) for a broker this session owns."""
        if self.env is None:
            pytest.skip("the broker at RELAY_KAFKA_BOOTSTRAP is not ours to restart")
        subprocess.run([str(KAFKA_SCRIPT), command], env=self.env, check=True, timeout=timeout)


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    external = os.environ.get("RELAY_KAFKA_BOOTSTRAP")
    if external:
        yield Broker(external, None)
        return
    run_dir = tmp_path_factory.mktemp("kafka")
    broker_port, controller_port = free_ports(2)
    env = dict(
        os.environ,
        KAFKA_RUN_DIR=str(run_dir),
        KAFKA_PORT=str(broker_port),
        KAFKA_CONTROLLER_PORT=str(controller_port),
    )
    # The first run on a fresh machine downloads the broker jars from Maven Central.
    subprocess.run([str(KAFKA_SCRIPT), "start"], env=env, check=True, timeout=900)
    try:
        yield Broker(f"127.0.0.1:{env['KAFKA_PORT']}", env)
    finally:
        subprocess.run([str(KAFKA_SCRIPT), "stop"], env=env, check=False, timeout=120)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka: Broker) -> str:
    return kafka.bootstrap


TopicFactory = Callable[..., str]


@contextlib.contextmanager
def topic_factory(bootstrap: str) -> Iterator[TopicFactory]:
    """Create uniquely named topics, deleted when the block ends: ``create("in", partitions=3)``,
    ``create("dlq", config={"max.message.bytes": "2048"})``. The ``make_topic`` fixture, and what
    a module-scoped fixture uses for topics of its own."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    created: list[str] = []

    def create(prefix: str = "t", partitions: int = 1, config: dict[str, str] | None = None) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        new = NewTopic(name, partitions, 1, config=config or {})
        admin.create_topics([new], operation_timeout=30)[name].result(timeout=60)
        created.append(name)
        return name

    try:
        yield create
    finally:
        if created:
            for future in admin.delete_topics(created, operation_timeout=30).values():
                # best effort: a leftover topic only costs disk in a temporary directory
                with contextlib.suppress(Exception):
                    future.result(timeout=30)


@pytest.fixture
def make_topic(kafka_bootstrap: str) -> Iterator[TopicFactory]:
    """Create uniquely named topics (deleted afterwards): ``make_topic("in", partitions=3)``."""
    with topic_factory(kafka_bootstrap) as create:
        yield create
