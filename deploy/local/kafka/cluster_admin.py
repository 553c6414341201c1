"""Topics, ACLs and SCRAM users of the local cluster (kafka-cluster.sh), over its admin listener.

The broker jars carry no CLI tools (kafka-topics, kafka-acls live in kafka-tools), so this uses
confluent-kafka's AdminClient, over the PLAINTEXT listener whose principal is a super user.

    cluster_admin.py --bootstrap H:P grant --topics a,b --dlq a.dlq --group g [--principal User:x]
    cluster_admin.py --bootstrap H:P user --name relay --password NEW [--mechanism SCRAM-SHA-512]

``grant`` creates the topics if missing (replication factor 3, min.insync.replicas=2) and gives
each relay principal exactly what the relay needs: READ on the input topics and on its group,
WRITE on the dead-letter topic, READ and WRITE on the quarantine's strike topic (``--strikes``,
default ``<dlq>.strikes``, created compacted with one partition). The operator principal
(``relay dlq``, ``relay produce``) may read the dead-letter topic and write the input topics.
``--no-group`` / ``--no-dlq`` leave a grant out, ``--no-strikes`` the strike topic and its grants
(the failure modes of ``relay check``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from confluent_kafka.error import KafkaError, KafkaException

RELAY_PRINCIPALS = ("User:relay", "User:CN=relay-mtls")
OPERATOR_PRINCIPAL = "User:relay-operator"
TIMEOUT = 60.0


def csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def create_topics(admin: AdminClient, names: Iterable[str], partitions: int) -> None:
    new = [NewTopic(name, partitions, 3, config={"min.insync.replicas": "2"}) for name in names]
    for name, future in admin.create_topics(new, operation_timeout=TIMEOUT).items():
        try:
            future.result(timeout=TIMEOUT)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise SystemExit(f"topic {name}: {exc}") from None


def create_strike_topic(admin: AdminClient, name: str) -> None:
    """The quarantine's strike topic as the relay would create it (relay/pipeline/quarantine)."""
    config = {"cleanup.policy": "compact,delete", "min.insync.replicas": "2"}
    future = admin.create_topics([NewTopic(name, 1, 3, config=config)], operation_timeout=TIMEOUT)
    try:
        future[name].result(timeout=TIMEOUT)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise SystemExit(f"topic {name}: {exc}") from None


def allow(
    principal: str,
    kind: ResourceType,
    name: str,
    operation: AclOperation,
    pattern: ResourcePatternType = ResourcePatternType.LITERAL,
) -> AclBinding:
    return AclBinding(kind, name, pattern, principal, "*", operation, AclPermissionType.ALLOW)


def relay_acls(
    principal: str, topics: list[str], dlq: str, group: str, *, with_group: bool, with_dlq: bool
) -> list[AclBinding]:
    acls = [allow(principal, ResourceType.TOPIC, t, AclOperation.READ) for t in topics]
    if with_group:
        acls.append(allow(principal, ResourceType.GROUP, group, AclOperation.READ))
    if with_dlq:
        acls.append(allow(principal, ResourceType.TOPIC, dlq, AclOperation.WRITE))
    return acls


def operator_acls(principal: str, topics: list[str], dlq: str) -> list[AclBinding]:
    acls = [allow(principal, ResourceType.TOPIC, t, AclOperation.WRITE) for t in topics]
    acls.append(allow(principal, ResourceType.TOPIC, dlq, AclOperation.READ))
    # `relay dlq` reads with a throw-away group id (no commits): reconcile-<uuid>
    acls.append(
        allow(
            principal,
            ResourceType.GROUP,
            "reconcile-",
            AclOperation.READ,
            ResourcePatternType.PREFIXED,
        )
    )
    return acls


def grant(admin: AdminClient, args: argparse.Namespace) -> None:
    topics = csv(args.topics)
    create_topics(admin, [*topics, args.dlq], args.partitions)
    acls: list[AclBinding] = []
    for principal in args.principal or RELAY_PRINCIPALS:
        acls += relay_acls(
            principal,
            topics,
            args.dlq,
            args.group,
            with_group=not args.no_group,
            with_dlq=not args.no_dlq,
        )
    if not args.principal:
        acls += operator_acls(OPERATOR_PRINCIPAL, topics, args.dlq)
    if not args.no_strikes:
        strikes = args.strikes or f"{args.dlq}.strikes"
        create_strike_topic(admin, strikes)
        acls += [
            allow(principal, ResourceType.TOPIC, strikes, operation)
            for principal in args.principal or RELAY_PRINCIPALS
            for operation in (AclOperation.READ, AclOperation.WRITE)
        ]
    for future in admin.create_acls(acls, request_timeout=TIMEOUT).values():
        future.result(timeout=TIMEOUT)
    wait_for_group_coordinator(args.bootstrap, args.group, topics[0])


def wait_for_group_coordinator(bootstrap: str, group: str, topic: str) -> None:
    """The first group request creates __consumer_offsets; an offset fetch (retried while the
    coordinator moves or loads) makes that happen now, not under the first consumer."""
    deadline = time.monotonic() + TIMEOUT
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        while True:
            try:
                consumer.committed([TopicPartition(topic, 0)], timeout=15)
                return
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.5)
    finally:
        consumer.close()


def upsert_user(admin: AdminClient, args: argparse.Namespace) -> None:
    mechanism = ScramMechanism[args.mechanism.replace("-", "_")]
    upsertion = UserScramCredentialUpsertion(
        args.name, ScramCredentialInfo(mechanism, 4096), args.password.encode()
    )
    for future in admin.alter_user_scram_credentials([upsertion]).values():
        future.result(timeout=TIMEOUT)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="the PLAINTEXT (admin) listeners")
    commands = parser.add_subparsers(dest="command", required=True)
    g = commands.add_parser("grant", help="create topics and the relay's ACLs")
    g.add_argument("--topics", required=True, help="input topics, comma-separated")
    g.add_argument("--dlq", required=True, help="dead-letter topic")
    g.add_argument("--group", required=True, help="the relay's consumer group")
    g.add_argument("--partitions", type=int, default=3)
    g.add_argument("--principal", action="append", help="grant to this principal only")
    g.add_argument("--no-group", action="store_true", help="leave out READ on the group")
    g.add_argument("--no-dlq", action="store_true", help="leave out WRITE on the DLQ topic")
    g.add_argument("--strikes", help="the quarantine's strike topic (default <dlq>.strikes)")
    g.add_argument("--no-strikes", action="store_true", help="no strike topic, no grant on it")
    u = commands.add_parser("user", help="create a SCRAM user or change its password")
    u.add_argument("--name", required=True)
    u.add_argument("--password", required=True)
    u.add_argument(
        "--mechanism", default="SCRAM-SHA-512", choices=["SCRAM-SHA-256", "SCRAM-SHA-512"]
    )
    args = parser.parse_args(argv)
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    try:
        grant(admin, args) if args.command == "grant" else upsert_user(admin, args)
    except KafkaException as exc:
        sys.exit(f"cluster_admin {args.command}: {exc}")


if __name__ == "__main__":
    main()
