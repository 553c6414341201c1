"""The secured, replicated cluster of deploy/local/kafka/kafka-cluster.sh, for the tests that need
one: 3 brokers on free ports in a temporary directory, started (session scope) only when a test
asks for the ``cluster`` fixture, stopped at the end of the session.

    cluster.relay_env("scram")          # RELAY_KAFKA_* of the relay's SCRAM user (SASL_SSL)
    cluster.relay_env("mtls")           # ... of its client certificate (SSL)
    names = cluster.topics("check")     # fresh input + DLQ topics (RF 3) and a group, with ACLs
    cluster.kill(2); cluster.start(2)   # SIGKILL a broker, start it again
    cluster.set_password("u", "p", "SCRAM-SHA-256")  # a user whose sessions last SHA256_REAUTH_S
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from confluent_kafka.admin import AdminClient

from bench.ports import free_ports
from tests.conftest import ROOT

CLUSTER_SCRIPT = ROOT / "deploy" / "local" / "kafka" / "kafka-cluster.sh"
CLUSTER_ADMIN = ROOT / "deploy" / "local" / "kafka" / "cluster_admin.py"
Identity = Literal["scram", "mtls", "operator"]
SHA256_REAUTH_S = 10  # connections.max.reauth.ms of SCRAM-SHA-256 logins, in seconds
_ENV_FILES = {
    "scram": "relay-scram.env",
    "mtls": "relay-mtls.env",
    "operator": "operator-scram.env",
}


@dataclass(frozen=True)
class Names:
    """Input topic, dead-letter topic and consumer group of one test."""

    topic: str
    dlq: str
    group: str


def read_env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key: value for key, value in pairs}


class Cluster:
    def __init__(self, run_dir: Path, env: dict[str, str]) -> None:
        self.run_dir = run_dir
        self.env = env
        self.ca_file = run_dir / "tls" / "ca.pem"

    def script(self, *args: str, timeout: float = 180) -> None:
        subprocess.run([str(CLUSTER_SCRIPT), *args], env=self.env, check=True, timeout=timeout)

    def start(self, *nodes: int) -> None:
        self.script("start", *map(str, nodes), timeout=900)

    def stop(self, *nodes: int) -> None:
        self.script("stop", *map(str, nodes))

    def kill(self, node: int) -> None:
        self.script("kill", str(node))

    def bootstrap(self, listener: Literal["PLAINTEXT", "SASL", "SSL"]) -> str:
        ports = self.env[f"KAFKA_CLUSTER_{listener}_PORTS"].split(",")
        return ",".join(f"127.0.0.1:{p}" for p in ports)

    @property
    def admin_bootstrap(self) -> str:
        """The PLAINTEXT listeners: the tests' own super-user clients."""
        return self.bootstrap("PLAINTEXT")

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.admin_bootstrap})

    def relay_env(self, identity: Identity = "scram") -> dict[str, str]:
        """The RELAY_KAFKA_* settings of an identity (topics and group are the test's own)."""
        env = read_env_file(self.run_dir / _ENV_FILES[identity])
        return {k: v for k, v in env.items() if k.startswith("RELAY_KAFKA_")}

    def client_config(self, identity: Identity) -> dict[str, Any]:
        """confluent-kafka configuration of an identity, made by the relay's own mapping."""
        from relay.config import Settings
        from relay.kafka.settings import confluent_config

        values = {k.removeprefix("RELAY_").lower(): v for k, v in self.relay_env(identity).items()}
        return confluent_config(Settings(_env_file=None, **values))  # type: ignore[call-arg]

    def settle_leaders(self, topic: str, timeout: float = 60.0) -> None:
        """Move every partition of ``topic`` to its preferred leader and wait until it is there.
        After a node restarts, the controller moves its partitions back to it on its own
        (auto.leader.rebalance.enable, checked every 300 s): a leader read before that may
        change in the middle of a trial."""
        from confluent_kafka import ElectionType, TopicPartition

        admin = self.admin()
        deadline = time.monotonic() + timeout
        while True:
            metadata = admin.list_topics(topic, timeout=30).topics[topic].partitions
            away = [p for p, m in metadata.items() if m.leader != m.replicas[0]]
            if not away:
                return
            assert time.monotonic() < deadline, f"{topic} {away} not at their preferred leaders"
            future = admin.elect_leaders(ElectionType.PREFERRED,
                                         [TopicPartition(topic, p) for p in away])  # fmt: skip
            with contextlib.suppress(Exception):  # a replica not yet in sync: try again
                future.result(timeout=30)
            time.sleep(0.5)

    def leaders(self, topic: str) -> dict[int, int]:
        """Partition -> the node that leads it (-1: none)."""
        metadata = self.admin().list_topics(topic, timeout=30).topics[topic]
        return {p: m.leader for p, m in metadata.partitions.items()}

    def coordinator(self, group: str) -> int:
        """The node coordinating ``group``: the leader of its __consumer_offsets partition
        (Kafka's ``abs(group.hashCode()) % partitions``)."""
        h = 0
        for char in group:
            h = (31 * h + ord(char)) & 0xFFFFFFFF
        offsets = self.leaders("__consumer_offsets")
        return offsets[(h & 0x7FFFFFFF) % len(offsets)]

    def create_led_by(self, names: Names, leader: int, partitions: int = 3) -> None:
        """The input topic (``partitions``) and the DLQ (1 partition) with ``leader`` as every
        partition's preferred leader, then the relay's grants."""
        from confluent_kafka.admin import NewTopic

        replicas = [leader, *(n for n in (1, 2, 3) if n != leader)]
        admin = self.admin()
        new = [
            NewTopic(
                topic,
                count,  # with a replica assignment: its partition count, no replication factor
                replica_assignment=[replicas] * count,
                config={"min.insync.replicas": "2"},
            )
            for topic, count in ((names.topic, partitions), (names.dlq, 1))
        ]
        for future in admin.create_topics(new, operation_timeout=60).values():
            future.result(timeout=60)
        self.grant(names, partitions=partitions)

    def admin_tool(self, *args: str) -> None:
        command = [sys.executable, str(CLUSTER_ADMIN), "--bootstrap", self.admin_bootstrap, *args]
        subprocess.run(command, check=True, timeout=120, capture_output=True)

    def topics(
        self,
        prefix: str,
        *,
        partitions: int = 3,
        principal: str | None = None,
        group: bool = True,
        dlq: bool = True,
        strikes: bool = True,
    ) -> Names:
        """Fresh topics (RF 3, min.insync 2) and a group, granted to the relay's principals (or
        to ``principal`` only); ``group`` / ``dlq`` False leave that grant out, ``strikes``
        False the strike topic (``<dlq>.strikes``) and its grants."""
        names = self.names(prefix)
        self.grant(
            names,
            partitions=partitions,
            principal=principal,
            group=group,
            dlq=dlq,
            strikes=strikes,
        )
        return names

    @staticmethod
    def names(prefix: str) -> Names:
        tag = uuid.uuid4().hex[:8]
        return Names(f"{prefix}-{tag}", f"{prefix}-{tag}-dlq", f"{prefix}-{tag}-group")

    def grant(
        self,
        names: Names,
        *,
        partitions: int = 3,
        principal: str | None = None,
        group: bool = True,
        dlq: bool = True,
        strikes: bool = True,
    ) -> None:
        args = ["grant", "--topics", names.topic, "--dlq", names.dlq, "--group", names.group]
        args += ["--partitions", str(partitions)]
        args += ["--principal", principal] if principal else []
        args += [] if group else ["--no-group"]
        args += [] if dlq else ["--no-dlq"]
        args += [] if strikes else ["--no-strikes"]
        self.admin_tool(*args)

    def set_password(self, user: str, password: str, mechanism: str = "SCRAM-SHA-512") -> None:
        """Create a SCRAM user or change its password (effective for new logins; SCRAM-SHA-256
        sessions end within KAFKA_CLUSTER_SHA256_REAUTH_MS, SHA-512 ones never)."""
        self.admin_tool("user", "--name", user, "--password", password, "--mechanism", mechanism)


def cluster_env(run_dir: Path) -> dict[str, str]:
    """The script's environment: 12 distinct free ports and the run directory."""
    ports = free_ports(12)
    env = dict(os.environ, KAFKA_RUN_DIR=str(run_dir), KAFKA_PYTHON=sys.executable)
    env["KAFKA_CLUSTER_SHA256_REAUTH_MS"] = str(SHA256_REAUTH_S * 1000)
    for n, kind in enumerate(("PLAINTEXT", "SASL", "SSL", "CONTROLLER")):
        env[f"KAFKA_CLUSTER_{kind}_PORTS"] = ",".join(map(str, ports[3 * n : 3 * n + 3]))
    return env


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    run_dir = tmp_path_factory.mktemp("kafka-cluster")
    c = Cluster(run_dir, cluster_env(run_dir))
    try:
        c.start()
        yield c
    finally:
        subprocess.run([str(CLUSTER_SCRIPT), "stop"], env=c.env, check=False, timeout=180)
