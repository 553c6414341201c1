"""The relay on the secured, replicated cluster (deploy/local/kafka/kafka-cluster.sh): SASL_SSL with
SCRAM-SHA-512 and mutual TLS, the CA file and hostname verification on, ACLs enforced.

- ``relay check`` passes for both identities, and names the fix of each failure mode: a wrong
  password, an unknown CA, a refused client certificate, an ACL that denies the group or the
  dead-letter topic, a missing topic.
- ``relay produce`` (the operator's SCRAM user), ``relay run`` (the relay's SCRAM user or its
  client certificate), ``relay dlq inspect`` / ``replay`` (the operator) end to end, reconciled
  by event id against the sandbox.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from relay.kafka.topics import read_topic
from relay.tools.traffic import TrafficGenerator
from tests.integration.conftest import SandboxFactory, SandboxHandle
from tests.kafka_cluster import Cluster, Identity, Names
from tests.reliability.harness import APP_ID, CLIENT_ID, CLIENT_SECRET, requires_relay
from tests.reliability.ledger import expectations
from tests.reliability.poison import PoisonCorpus
from tests.reliability.scenario import Scenario

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

WRONG = "wrong-Quokka-991"


def relay_cli(args: list[str], env: dict[str, str], timeout: float = 120):  # type: ignore[no-untyped-def]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    return subprocess.run(
        [sys.executable, "-m", "relay.cli", *args],
        env=clean | {"COLUMNS": "200"} | env,  # rich wraps at COLUMNS
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def names_env(names: Names) -> dict[str, str]:
    return {
        "RELAY_TOPICS": names.topic,
        "RELAY_DLQ_TOPIC": names.dlq,
        "RELAY_GROUP_ID": names.group,
    }


def check_env(
    cluster: Cluster, identity: Identity, names: Names, box: SandboxHandle
) -> dict[str, str]:
    return (
        cluster.relay_env(identity)
        | names_env(names)
        | {
            "RELAY_API_BASE_URL": box.url,
            "RELAY_ALLOW_INSECURE_HTTP": "true",
            "RELAY_CLIENT_ID": CLIENT_ID,
            "RELAY_CLIENT_SECRET": CLIENT_SECRET,
            "RELAY_APP_ID": APP_ID,
        }
    )


@pytest.fixture(scope="module")
def granted(cluster: Cluster) -> Names:
    """Topics, group and ACLs exactly as the relay needs them (shared by the check tests)."""
    return cluster.topics("check")


@pytest.mark.parametrize("identity", ["scram", "mtls"])
def test_check_passes(
    cluster: Cluster, granted: Names, sandbox: SandboxHandle, identity: Identity
) -> None:
    result = relay_cli(["check"], check_env(cluster, identity, granted, sandbox))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ kafka" in result.stdout and "✓ group" in result.stdout
    assert "✓ quarantine" in result.stdout and "all checks passed" in result.stdout


NO_CLIENT_CERT = {
    "RELAY_KAFKA_SSL_CERT_FILE": "",
    "RELAY_KAFKA_SSL_KEY_FILE": "",
    "RELAY_KAFKA_SSL_KEY_PASSWORD": "",
}


@pytest.mark.parametrize(
    ("identity", "change", "failed", "problem", "fix"),
    [
        pytest.param("scram", {"RELAY_KAFKA_SASL_PASSWORD": WRONG}, "kafka",
                     "refused the SASL login of user 'relay'", "RELAY_KAFKA_SASL_PASSWORD",
                     id="wrong-password"),
        pytest.param("scram", {"RELAY_KAFKA_SSL_CA_FILE": ""}, "kafka", "(unknown CA)",
                     "RELAY_KAFKA_SSL_CA_FILE", id="unknown-ca-sasl-ssl"),
        pytest.param("mtls", {"RELAY_KAFKA_SSL_CA_FILE": ""}, "kafka", "(unknown CA)",
                     "RELAY_KAFKA_SSL_CA_FILE", id="unknown-ca-mtls"),
        pytest.param("mtls", NO_CLIENT_CERT, "kafka", "refused the relay's client certificate",
                     "RELAY_KAFKA_SSL_CERT_FILE", id="no-client-certificate"),
    ],
)  # fmt: skip
def test_connection_failures_name_the_fix(
    cluster: Cluster,
    granted: Names,
    sandbox: SandboxHandle,
    identity: Identity,
    change: dict[str, str],
    failed: str,
    problem: str,
    fix: str,
) -> None:
    env = check_env(cluster, identity, granted, sandbox) | change
    result = relay_cli(["check", "--timeout", "5"], env)
    assert result.returncode == 1, result.stdout
    assert f"✗ {failed}: " in result.stdout, result.stdout
    assert problem in result.stdout and f"fix: {fix}" in result.stdout, result.stdout
    secrets = [WRONG, *(v for k, v in env.items() if k.endswith("PASSWORD") and v)]
    assert not [s for s in secrets if s in result.stdout + result.stderr], "a secret was printed"


@pytest.mark.parametrize("identity", ["scram", "mtls"])
def test_acl_denying_the_group_names_the_grant(
    cluster: Cluster, sandbox: SandboxHandle, identity: Identity
) -> None:
    names = cluster.topics("nogroup", group=False)
    result = relay_cli(["check"], check_env(cluster, identity, names, sandbox))
    who = "User:relay" if identity == "scram" else "User:CN=relay-mtls"
    assert result.returncode == 1
    assert f"✗ group: the broker's ACLs deny {who} READ on group {names.group}" in result.stdout
    assert f"--allow-principal {who} --operation Read --group {names.group}" in result.stdout


def test_acl_denying_the_dead_letter_topic_names_the_grant(
    cluster: Cluster, sandbox: SandboxHandle
) -> None:
    names = cluster.topics("nodlq", dlq=False)
    result = relay_cli(["check"], check_env(cluster, "scram", names, sandbox))
    assert result.returncode == 1
    assert (
        f"✗ topics: the broker's ACLs deny User:relay WRITE on topic {names.dlq}" in result.stdout
    )
    assert "correct RELAY_DLQ_TOPIC" in result.stdout


def test_a_strike_topic_the_relay_may_not_use_or_create_is_named(
    cluster: Cluster, sandbox: SandboxHandle
) -> None:
    names = cluster.topics("nostrikes", strikes=False)  # missing, and no CREATE for the relay
    result = relay_cli(["check"], check_env(cluster, "scram", names, sandbox))
    assert result.returncode == 1, result.stdout
    # Kafka hides from a principal without DESCRIBE whether the topic exists
    denied = f"the broker's ACLs deny User:relay access to the strike topic {names.dlq}.strikes"
    assert f"✗ quarantine: {denied}" in result.stdout
    assert "READ and WRITE" in result.stdout and "RELAY_QUARANTINE_TOPIC" in result.stdout


def test_a_strike_topic_the_relay_may_only_read_names_the_write_grant(
    cluster: Cluster, sandbox: SandboxHandle
) -> None:
    names = cluster.topics("readstrikes", strikes=False)
    strikes = f"{names.dlq}.strikes"
    admin = cluster.admin()
    new = NewTopic(strikes, 1, 3, config={"cleanup.policy": "compact,delete"})
    admin.create_topics([new])[strikes].result(timeout=60)
    read = AclBinding(ResourceType.TOPIC, strikes, ResourcePatternType.LITERAL, "User:relay",
                      "*", AclOperation.READ, AclPermissionType.ALLOW)  # fmt: skip
    for future in admin.create_acls([read]).values():
        future.result(timeout=60)
    result = relay_cli(["check"], check_env(cluster, "scram", names, sandbox))
    assert result.returncode == 1, result.stdout
    assert f"✗ quarantine: the broker's ACLs deny User:relay WRITE on topic {strikes}" in (
        result.stdout
    )
    assert "correct RELAY_QUARANTINE_TOPIC" in result.stdout


def test_missing_topic_is_named(cluster: Cluster, sandbox: SandboxHandle) -> None:
    names = cluster.topics("gone")
    admin = cluster.admin()  # referenced until the deletion is done
    admin.delete_topics([names.topic])[names.topic].result(timeout=60)
    result = relay_cli(["check"], check_env(cluster, "scram", names, sandbox))
    assert result.returncode == 1
    assert f"✗ topics: topic {names.topic} does not exist" in result.stdout
    assert "correct RELAY_TOPICS" in result.stdout


# -- end to end ---------------------------------------------------------------------------------

RECORDS, STUDENTS, SEED = 300, 10, 11
POISON = ("random-bytes", "truncated-avro", "unknown-fingerprint", "nan-xp", "unknown-subject")


@requires_relay
@pytest.mark.parametrize("identity", ["mtls"])  # SCRAM: the failover trial (tests/reliability)
def test_produce_run_and_dlq_over_the_secured_cluster(
    cluster: Cluster, sandbox_factory: SandboxFactory, tmp_path: Path, identity: Identity
) -> None:
    box = sandbox_factory()
    names = cluster.topics(f"e2e-{identity}")
    plan = TrafficGenerator(students=STUDENTS, seed=SEED).plan(RECORDS)  # same seed, same ids
    s = Scenario(f"e2e-{identity}", cluster.admin_bootstrap, names.topic, names.dlq, box, tmp_path)
    s.group = names.group  # the group the ACLs name
    try:
        s.seed_roster(plan)
        s.expect(expectations(plan))
        operator = cluster.relay_env("operator") | names_env(names)
        produced = relay_cli(
            ["produce", "--count", str(RECORDS), "--students", str(STUDENTS), "--seed", str(SEED),
             "--rate", "0"],
            operator,
        )  # fmt: skip
        assert produced.returncode == 0, produced.stderr
        # planted poison (random bytes: `relay produce` cannot repeat them), over the admin listener
        student = plan.students[0]
        course = next(c for c in plan.courses if c.id == plan.enrollments[student])
        s.produce(PoisonCorpus(student, course.id, course.subject).corpus(POISON), wait=True)
        relay = s.relay("a", **cluster.relay_env(identity)).start()
        s.wait_complete(timeout=240, alive=[relay])
        figures = s.finish()
        assert figures.lost == 0 and figures.dlq_missing == 0, figures.problems
        assert figures.dlq_unexpected == 0 and figures.dlq_wrong_reason == 0, figures.problems
        planted = len(POISON)
        assert figures.dlq_total == planted
        assert figures.notes["sigterm_exit"] == {"a": 0}

        inspected = relay_cli(["dlq", "inspect"], operator)
        assert inspected.returncode == 0, inspected.stderr
        assert f"{names.dlq}: {planted} dead letters" in inspected.stdout
        replayed = relay_cli(["dlq", "replay"], operator)
        assert replayed.returncode == 0, replayed.stderr
        assert f"replayed {planted} records" in replayed.stdout
        admin = {"bootstrap.servers": cluster.admin_bootstrap}
        # the input topic: the records, the poison, and the poison again (replayed)
        assert len(read_topic(admin, names.topic)) == RECORDS + 2 * planted
    finally:
        s.close()
