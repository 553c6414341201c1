"""A producer app that is not Python: examples/node-producer (kafkajs and
@kafkajs/confluent-schema-registry from npm, nothing of the relay's) registers the relay's .avsc
files with the real Schema Registry and produces every record type; ``relay run`` delivers them.

Reconciled against the sandbox: every record's first Caliper event (its deterministic id) was
received, the XP ledger holds the XpEarned total, nothing was dead-lettered. Skipped only where
node or npm is missing; ``make node-producer`` (which ``make test`` runs) installs the packages
from the committed package-lock.json, and so does this test's set-up when they are missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from relay.caliper.ids import event_id
from relay.config import DEFAULT_ID_NAMESPACE
from relay.contract.activity import NAMESPACE
from tests.conftest import ROOT, TopicFactory
from tests.integration.conftest import SandboxFactory
from tests.integration.pipeline_helpers import (
    ledger_total,
    letters,
    running_relay,
    seed_students,
    wait_acked,
)
from tests.registry import RegistryFactory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
EXAMPLE = ROOT / "examples" / "node-producer"
STUDENTS = ["node-student-1", "node-student-2"]
PER_TYPE = 2
XP_EACH = 2.5  # what producer.js puts in every XpEarned


@pytest.fixture(scope="module")
def node_producer() -> Path:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not found: the Node.js producer cannot run here")
    if not (EXAMPLE / "node_modules" / "kafkajs").is_dir():
        subprocess.run(
            ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=EXAMPLE,
            check=True,
            timeout=240,
            capture_output=True,
        )
    return EXAMPLE / "producer.js"


def test_a_node_app_feeds_the_relay_through_the_registry(
    node_producer: Path,
    kafka_bootstrap: str,
    make_topic: TopicFactory,
    sandbox_factory: SandboxFactory,
    registry_factory: RegistryFactory,
    tmp_path: Path,
) -> None:
    # A registry of its own, as a new deployment's: the session's holds subjects other tests
    # created without a compatibility rule, which Apicurio reports as NONE (Confluent: 404), and
    # the Node client refuses to register under a subject whose rule is not the one it asks for.
    schema_registry = registry_factory()
    box = sandbox_factory()
    seed_students(box, STUDENTS)
    topic, dlq = make_topic("node", partitions=2), make_topic("node-dlq")
    with running_relay(tmp_path, kafka_bootstrap, topic, dlq, box.url,
                       RELAY_SCHEMA_REGISTRY_URL=schema_registry.url) as relay:  # fmt: skip
        run = subprocess.run(
            ["node", str(node_producer)],
            env=dict(
                os.environ,
                KAFKA_BOOTSTRAP=kafka_bootstrap,
                TOPIC=topic,
                SCHEMA_REGISTRY_URL=schema_registry.url,
                SUBJECT_STRATEGY="record",  # several types on one topic (producer.js says why)
                STUDENTS=",".join(STUDENTS),
                PER_TYPE=str(PER_TYPE),
            ),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        produced = [json.loads(line) for line in run.stdout.splitlines()]
        wait_acked(relay, len(produced))

    types = {p["type"] for p in produced}
    assert types == {
        "XpEarned", "QuestionAnswered", "AssessmentProgress", "ResourceViewed", "SessionChanged",
    }, "every record type"  # fmt: skip
    assert len(produced) == len(types) * len(STUDENTS) * PER_TYPE
    assert letters(kafka_bootstrap, dlq) == []
    box.process()
    received = {e["id"] for e in box.events()}
    missing = [
        p for p in produced
        if event_id(DEFAULT_ID_NAMESPACE, f"{NAMESPACE}.{p['type']}", p["event_id"], 0)
        not in received
    ]  # fmt: skip
    assert missing == [], f"{len(missing)} records never reached the sandbox: {missing[:3]}"
    assert ledger_total(box, STUDENTS) == XP_EACH * len(STUDENTS) * PER_TYPE
