"""``relay demo``: the whole system on one machine, with demo traffic and a verified summary.

Starts the TimeBack sandbox (in this process), seeds its roster through the API, creates fresh
topics on the local Kafka, starts the relay (``relay run``, a subprocess), produces the records
while a live panel shows the relay's own metrics, then verifies through
``/xp/1.0/users/{id}/entries`` that every student's XP materialized and that the dead-letter topic
holds exactly the planted invalid records. Exit status 1 if anything valid was not delivered.

The records are single-object framed (no Schema Registry) unless ``--registry-url`` names one
(``make run REGISTRY=1`` starts deploy/local/registry's): then each record type's schema is
registered there under its full name and the records are Confluent-framed with its id.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import httpx
from confluent_kafka.admin import AdminClient, NewTopic
from rich.console import Console
from rich.live import Live
from rich.table import Table

from relay import wiring
from relay.config import Settings, load_settings
from relay.contract.catalogue import default_catalogue
from relay.contract.wire import SINGLE_OBJECT_HEADER, SINGLE_OBJECT_MAGIC, frame_confluent
from relay.errors import ConfigError
from relay.ops.dead_letters import dead_letters
from relay.sandbox import seed
from relay.sandbox.config import Delay, SandboxConfig
from relay.sandbox.server import SandboxThread
from relay.sandbox.testing import SandboxControl
from relay.timeback.client import TimeBackClient
from relay.tools.demo_panel import RelayStats, panel
from relay.tools.produce import confluent_config, make_producer, produce_records
from relay.tools.reconcile import Reconciliation, materialized_xp, reconcile
from relay.tools.traffic import TrafficGenerator, TrafficPlan

CLIENT_ID, CLIENT_SECRET, APP_ID = "sandbox-client", "sandbox-secret", "sandbox-app"
ACTIVITY_BASE = "https://demo-app.example"
COMMIT_WAIT = 5.0  # seconds to let the last commits (every second) reach the lag gauge


@dataclass(frozen=True)
class DemoOptions:
    count: int
    rate: float
    students: int
    partitions: int
    invalid_ratio: float
    outage_at: float | None
    outage_for: float
    timeout: float
    web_port: int
    registry_url: str | None = None


class Demo:
    def __init__(self, options: DemoOptions, settings: Settings, console: Console) -> None:
        self.o, self.settings, self.console = options, settings, console
        run = uuid.uuid4().hex[:8]
        self.topic, self.dlq = f"demo-{run}.activity", f"demo-{run}.activity.dlq"
        self.group = f"timeback-relay-demo-{run}"
        self.workdir = Path(".demo") / run
        self.sandbox: SandboxThread | None = None
        self.relay: subprocess.Popen[bytes] | None = None
        self.produced = 0

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> int:
        plan = TrafficGenerator(
            students=self.o.students, invalid_ratio=self.o.invalid_ratio, seed=int(time.time())
        ).plan(self.o.count)
        if self.o.registry_url:
            plan = confluent_framed(plan, self.o.registry_url)
            self.console.print(f"framing: Confluent, schema ids from {self.o.registry_url}")
        self.sandbox = SandboxThread(SandboxConfig(processing_delay=Delay(0.5))).start()
        self.console.print(f"sandbox: {self.sandbox.url}  (client {CLIENT_ID}, app {APP_ID})")
        asyncio.run(self._seed(plan))
        self._create_topics()
        self._start_relay()
        producer = threading.Thread(target=self._produce, args=(plan,), daemon=True)
        started = time.monotonic()
        if self.o.outage_at is not None:
            self._schedule_outage()
        producer.start()
        stats = self._watch(plan)
        elapsed = time.monotonic() - started
        SandboxControl(self.sandbox.url).process()  # settle what the sandbox still holds
        result = asyncio.run(self._reconcile(plan))
        self._summary(plan, result, stats, elapsed)
        return 0 if result.ok else 1

    async def _seed(self, plan: TrafficPlan) -> None:
        async with self._client() as api:
            for collection, record in roster(plan):
                await api.put(collection, record["sourcedId"], record)
        self.console.print(
            f"roster: {len(plan.students)} test students, "
            f"{len(plan.courses)} courses, classes and enrollments"
        )

    def _create_topics(self) -> None:
        admin = AdminClient(confluent_config(self.settings))
        topics = [NewTopic(self.topic, self.o.partitions, 1), NewTopic(self.dlq, 1, 1)]
        for future in admin.create_topics(topics, operation_timeout=30).values():
            future.result(timeout=60)
        self.console.print(f"topics: {self.topic} ({self.o.partitions} partitions), {self.dlq}")

    def _relay_env(self) -> dict[str, str]:
        assert self.sandbox is not None
        registry = {"RELAY_SCHEMA_REGISTRY_URL": self.o.registry_url} if self.o.registry_url else {}
        return dict(
            os.environ,
            RELAY_KAFKA_BOOTSTRAP=self.settings.kafka_bootstrap,
            RELAY_TOPICS=self.topic,
            RELAY_DLQ_TOPIC=self.dlq,
            RELAY_GROUP_ID=self.group,
            RELAY_API_BASE_URL=self.sandbox.url,
            RELAY_ALLOW_INSECURE_HTTP="true",
            RELAY_CLIENT_ID=CLIENT_ID,
            RELAY_CLIENT_SECRET=CLIENT_SECRET,
            RELAY_APP_ID=APP_ID,
            RELAY_ACTIVITY_BASE_URL=ACTIVITY_BASE,
            RELAY_WEB_PORT=str(self.o.web_port),
            RELAY_WEB_HOST="127.0.0.1",
            RELAY_RETRY_CAP="5",
            **registry,
        )

    def _start_relay(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "relay.log").open("wb")
        self.relay = subprocess.Popen(
            [sys.executable, "-m", "relay.cli", "run"],
            # faust's data dir (empty: no tables) beside the log, not in the working directory
            env=self._relay_env() | {"FAUST_DATADIR": str(self.workdir / "faust-data")},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the demo, which stops the relay itself
        )
        self.console.print(
            f"relay: pid {self.relay.pid}, logs {self.workdir / 'relay.log'}, "
            f"metrics {self.metrics_url}"
        )

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.o.web_port}/metrics"

    def _produce(self, plan: TrafficPlan) -> None:
        def sent(n: int) -> None:
            self.produced = n

        produce_records(
            make_producer(self.settings), self.topic, plan.records, rate=self.o.rate, on_sent=sent
        )

    def _schedule_outage(self) -> None:
        assert self.sandbox is not None and self.o.outage_at is not None
        outage = {"start_in_s": self.o.outage_at, "duration_s": self.o.outage_for, "mode": "503"}
        SandboxControl(self.sandbox.url).faults(outages=[outage])
        self.console.print(
            f"outage: the API answers 503 from t+{self.o.outage_at:g}s for {self.o.outage_for:g}s"
        )

    def _watch(self, plan: TrafficPlan) -> RelayStats | None:
        """Live panel until every record is acknowledged (delivered or dead-lettered) and, for a
        few seconds more at most, until its offsets are committed (consumer lag 0)."""
        deadline = time.monotonic() + self.o.timeout
        settled_by: float | None = None
        stats: RelayStats | None = None
        previous: RelayStats | None = None
        with httpx.Client() as http, Live(console=self.console, refresh_per_second=4) as live:
            while time.monotonic() < deadline:
                self._check_relay_alive()
                current = RelayStats.scrape(http, self.metrics_url)
                if current is not None:
                    previous, stats = stats, current
                live.update(panel(stats, previous, self.produced, len(plan.records)))
                if stats is not None and stats.acked >= len(plan.records):
                    settled_by = settled_by or time.monotonic() + COMMIT_WAIT
                    if stats.lag == 0 or time.monotonic() > settled_by:
                        return stats
                time.sleep(0.5)
        self.console.print(f"[red]timed out after {self.o.timeout:g}s[/]")
        return stats

    def _check_relay_alive(self) -> None:
        if self.relay is not None and self.relay.poll() is not None:
            tail = (self.workdir / "relay.log").read_text(errors="replace").splitlines()[-15:]
            raise click.ClickException(
                f"the relay exited with {self.relay.returncode}:\n" + "\n".join(tail)
            )

    async def _reconcile(self, plan: TrafficPlan) -> Reconciliation:
        async with self._client() as api:
            xp = await materialized_xp(api, plan.students)
        letters = dead_letters(confluent_config(self.settings), self.dlq)
        return reconcile(plan, xp, letters)

    def _client(self) -> TimeBackClient:
        assert self.sandbox is not None
        return TimeBackClient(
            wiring.client_config(
                load_settings(
                    api_base_url=self.sandbox.url,
                    allow_insecure_http=True,
                    client_id=CLIENT_ID,
                    client_secret=CLIENT_SECRET,
                    app_id=APP_ID,
                )
            )
        )

    # -- the summary ---------------------------------------------------------------------------

    def _summary(
        self, plan: TrafficPlan, result: Reconciliation, stats: RelayStats | None, elapsed: float
    ) -> None:
        self.console.print(_xp_table(result))
        self.console.print(_dlq_table(result))
        events = stats.delivered if stats else 0
        self.console.print(
            f"{len(plan.records):,} records ({len(plan.invalid())} planted invalid) in "
            f"{elapsed:.1f}s: {len(plan.records) / elapsed:,.0f} records/s, "
            f"{events:,.0f} Caliper events delivered ({events / elapsed:,.0f}/s); "
            f"circuit opened {stats.circuit_opened if stats else 0:.0f}x"
        )
        self.console.print(
            f"metrics were at {self.metrics_url}; relay logs in "
            f"{self.workdir / 'relay.log'}; DLQ topic {self.dlq}"
        )
        verdict = "[green]OK: nothing lost[/]" if result.ok else "[red]MISMATCH[/]"
        self.console.print(verdict)

    def stop(self) -> None:
        if self.relay is not None and self.relay.poll() is None:
            self.relay.send_signal(signal.SIGTERM)
            try:
                self.relay.wait(self.settings.shutdown_grace + 5)
            except subprocess.TimeoutExpired:
                self.relay.kill()
        if self.sandbox is not None:
            self.sandbox.stop()


def confluent_framed(plan: TrafficPlan, registry_url: str) -> TrafficPlan:
    """The plan with every single-object record of a known schema Confluent-framed: the same Avro
    body behind ``0x00`` + the id the registry gives the schema under its full name (the record
    name strategy). Planted records of unknown framing or fingerprint keep their bytes."""
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

    client, catalogue = SchemaRegistryClient({"url": registry_url}), default_catalogue()
    ids: dict[bytes, int] = {}
    records = []
    for record in plan.records:
        fingerprint = record.value[2:SINGLE_OBJECT_HEADER]
        entry = catalogue.entry_by_fingerprint(fingerprint)
        if record.value[:2] != SINGLE_OBJECT_MAGIC or entry is None:
            records.append(record)
            continue
        if fingerprint not in ids:
            ids[fingerprint] = _register(client, entry.full_name, Schema(entry.text, "AVRO"))
        value = frame_confluent(ids[fingerprint], record.value[SINGLE_OBJECT_HEADER:])
        records.append(dataclasses.replace(record, value=value))
    return dataclasses.replace(plan, records=records)


def _register(client: Any, subject: str, schema: Any) -> int:
    try:
        return int(client.register_schema(subject, schema))
    except Exception as exc:  # unreachable, refused, incompatible: the demo cannot go on
        raise click.ClickException(
            f"the Schema Registry did not register {subject}: {type(exc).__name__}: {exc} "
            "(make registry-up starts the local one)"
        ) from None


def roster(plan: TrafficPlan) -> list[tuple[str, dict[str, Any]]]:
    """The plan's roster as (collection, record) PUTs, in dependency order: owned courses, a
    class each, test students (``metadata.isTestUser``), and their enrollments."""
    records: list[tuple[str, dict[str, Any]]] = []
    for course in plan.courses:
        records.append(("courses", seed.course(course.id, course.title, (course.subject,))))
        records.append(("classes", seed.klass(f"{course.id}-class", course.id)))
    for n, student in enumerate(plan.students):
        course_id = plan.enrollments[student]
        records.append(("users", seed.student(student, "Demo", f"Student{n}")))
        records.append(
            (
                "enrollments",
                seed.enrollment(f"{student}-{course_id}", student, f"{course_id}-class"),
            )
        )
    return records


def _xp_table(result: Reconciliation) -> Table:
    table = Table(title="XP per student: expected vs materialized in the TimeBack ledger")
    for column in ("student", "expected", "materialized", ""):
        table.add_column(column, justify="left" if column == "student" else "right")
    for student, want in sorted(result.expected_xp.items()):
        got = result.materialized_xp.get(student, 0.0)
        mark = "[green]ok[/]" if abs(want - got) < 1e-6 else "[red]differs[/]"
        table.add_row(student, f"{want:,.1f}", f"{got:,.1f}", mark)
    return table


def _dlq_table(result: Reconciliation) -> Table:
    table = Table(title="Dead-letter topic: planted vs dead-lettered, by stage/reason")
    for column in ("stage/reason", "planted", "dead-lettered"):
        table.add_column(column, justify="left" if column == "stage/reason" else "right")
    for key in sorted(set(result.planted) | set(result.dead_lettered)):
        table.add_row("/".join(key), str(result.planted[key]), str(result.dead_lettered[key]))
    if result.missing or result.wrong_reason or result.unexpected:
        table.caption = (
            f"missing {len(result.missing)}, wrong reason "
            f"{len(result.wrong_reason)}, unexpected {len(result.unexpected)}"
        )
    return table


@click.command(name="demo")
@click.option("--count", default=2000, show_default=True, help="records to produce")
@click.option("--rate", default=200.0, show_default=True, help="records per second")
@click.option("--students", default=20, show_default=True)
@click.option("--partitions", default=3, show_default=True, help="partitions of the demo topic")
@click.option("--invalid-ratio", default=0.01, show_default=True, help="planted invalid share")
@click.option("--outage-at", type=float, default=None, help="API outage start (s after start)")
@click.option("--outage-for", type=float, default=10.0, show_default=True, help="outage length")
@click.option("--timeout", default=600.0, show_default=True, help="give up after (s)")
@click.option("--web-port", default=6066, show_default=True, help="the relay's /metrics port")
@click.option(
    "--registry-url",
    default=None,
    help="a Schema Registry's Confluent API base: Confluent framing through it (default: "
    "single-object framing, no registry)",
)
def demo_command(**options: Any) -> None:
    """Run Kafka's records through the relay into the sandbox and verify nothing was lost."""
    console = Console()
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    demo = Demo(DemoOptions(**options), settings, console)
    try:
        status = demo.run()
    except KeyboardInterrupt:
        console.print("interrupted: stopping the relay and the sandbox")
        status = 130
    finally:
        demo.stop()
    sys.exit(status)
