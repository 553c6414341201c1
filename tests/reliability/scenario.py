"""One reliability scenario: fresh topics, a sandbox, relay replicas, a producer, and the wait.

s = Scenario.create("crash", kafka_bootstrap, make_topic, sandbox, tmp_path, partitions=3)
s.seed_roster(plan)
relay = s.relay("a").start()
s.produce(expected, rate=500)           # in a background thread
s.wait_complete(timeout=240)            # every valid id at the sandbox, every planted in DLQ
figures = s.finish(trials=5)            # stop the relays, read the DLQ, reconcile
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException, Producer

from relay.sandbox import seed
from relay.tools.traffic import TrafficPlan
from tests.reliability.harness import RelayProcess, relay_env, wait_for
from tests.reliability.ledger import DlqWatch, Expected, Figures, SandboxWatch, reconcile

MAX_MESSAGE = 4_000_000  # the local broker takes 4 MiB (message.max.bytes=4194304)


class Scenario:
    def __init__(
        self, name: str, bootstrap: str, topic: str, dlq: str, sandbox: Any, workdir: Path
    ) -> None:
        self.name = name
        self.bootstrap, self.topic, self.dlq = bootstrap, topic, dlq
        self.group = f"reliability-{name}-{uuid.uuid4().hex[:8]}"
        self.sandbox = sandbox
        self.workdir = workdir
        self.expected: list[Expected] = []
        self.relays: list[RelayProcess] = []
        self.watch = SandboxWatch(sandbox)
        self.dlq_watch = DlqWatch(bootstrap, dlq)
        self.produced = 0
        # merged into the producer's configuration (e.g. a secured listener's credentials)
        self.producer_config: dict[str, Any] = {}
        self.producer_error: BaseException | None = None
        self._producer_thread: threading.Thread | None = None
        self._planted: set[bytes] = set()
        self._valid_ids: list[str] = []
        self.started = time.monotonic()

    @classmethod
    def create(
        cls,
        name: str,
        bootstrap: str,
        make_topic: Callable[..., str],
        sandbox: Any,
        workdir: Path,
        partitions: int = 3,
    ) -> Scenario:
        topic = make_topic(f"rel-{name}", partitions=partitions)
        dlq = make_topic(f"rel-{name}-dlq", partitions=1)
        return cls(name, bootstrap, topic, dlq, sandbox, workdir)

    # -- set-up --------------------------------------------------------------------------------

    def seed_roster(self, plan: TrafficPlan) -> None:
        """Courses, classes, test students and enrollments, so the sandbox processes events."""
        with self.sandbox.api() as http:
            for course in plan.courses:
                _put(
                    http,
                    "courses",
                    "course",
                    seed.course(course.id, course.title, (course.subject,)),
                )
                klass = seed.klass(f"{course.id}-class", course.id)
                _put(http, "classes", "class", klass)
            for n, student in enumerate(plan.students):
                _put(http, "users", "user", seed.student(student, "Reliability", f"S{n}"))
                ident = f"{student}-{plan.enrollments[student]}"
                record = seed.enrollment(ident, student, f"{plan.enrollments[student]}-class")
                _put(http, "enrollments", "enrollment", record)

    def env(self, **overrides: str) -> dict[str, str]:
        return relay_env(
            bootstrap=self.bootstrap,
            topic=self.topic,
            dlq=self.dlq,
            group=self.group,
            api_url=self.sandbox.url,
            **overrides,
        )

    def relay(self, name: str, **overrides: str) -> RelayProcess:
        """A replica (not started). Static membership: its instance id is its name."""
        overrides.setdefault("RELAY_GROUP_INSTANCE_ID", f"{self.name}-{name}")
        relay = RelayProcess(name, self.env(**overrides), self.workdir / "relays" / name)
        self.relays.append(relay)
        return relay

    # -- traffic -------------------------------------------------------------------------------

    def expect(self, records: Iterable[Expected]) -> list[Expected]:
        records = list(records)
        self.expected.extend(records)
        for r in records:
            if r.valid:
                self._valid_ids.extend(r.event_ids)
            else:
                self._planted.add(r.value)
        return records

    def tolerate_dead_letter(self, record: Expected) -> None:
        """A valid record whose dead letter is one of the trial's acceptable outcomes: ``poll``
        does not refuse it (the figures still count it, as lost and dlq_unexpected)."""
        self._planted.add(record.value)

    def produce(self, records: Iterable[Expected], rate: float = 0.0, wait: bool = False) -> None:
        """Produce ``records`` (keyed by student) at ``rate``/s in a background thread; they are
        expected from now on. ``wait``: return only once the broker acknowledged them all."""
        batch = self.expect(records)
        self.join_producer()
        thread = threading.Thread(target=self._produce, args=(batch, rate), daemon=True)
        self._producer_thread = thread
        thread.start()
        if wait:
            self.join_producer()

    def join_producer(self, timeout: float = 300.0) -> None:
        if self._producer_thread is not None:
            self._producer_thread.join(timeout)
            assert not self._producer_thread.is_alive(), "the producer did not finish"
            self._producer_thread = None
        if self.producer_error is not None:
            raise AssertionError(f"producing failed: {self.producer_error}")

    def _produce(self, records: list[Expected], rate: float) -> None:
        producer = Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "message.max.bytes": MAX_MESSAGE,
                "log_level": 2,  # quiet while a broker restart is under test
            }
            | self.producer_config
        )
        errors: list[str] = []

        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(str(err))

        try:
            started = time.monotonic()
            for n, record in enumerate(records, 1):
                while True:
                    try:
                        producer.produce(
                            self.topic, record.value, record.key, on_delivery=delivered
                        )
                        break
                    except BufferError:
                        producer.poll(0.1)
                producer.poll(0)
                self.produced += 1
                if rate > 0:
                    ahead = n / rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
            if producer.flush(120) or errors:
                raise KafkaException(f"{len(errors)} records not acknowledged: {errors[:3]}")
        except BaseException as exc:
            self.producer_error = exc

    # -- progress ------------------------------------------------------------------------------

    def poll(self) -> None:
        self.watch.poll()
        self.dlq_watch.poll()
        unexpected = [x for x in self.dlq_watch.letters if x.value not in self._planted]
        if unexpected:
            first = unexpected[0]
            raise AssertionError(
                f"{len(unexpected)} dead letters of records that are not planted, first "
                f"{first.reason}: headers {_safe_headers(first.headers)}"
            )

    def progress(self) -> float:
        """Share of the expected Caliper events the sandbox has accepted."""
        self.poll()
        if not self._valid_ids:
            return 1.0
        return self.watch.delivered(self._valid_ids) / len(self._valid_ids)

    def complete(self) -> bool:
        if self.progress() < 1.0:
            return False
        dead = {x.value for x in self.dlq_watch.letters}
        return self._planted <= dead

    def wait_progress(
        self, share: float, timeout: float, alive: Iterable[RelayProcess] = ()
    ) -> None:
        relays = list(alive)
        wait_for(
            lambda: self.progress() >= share,
            timeout,
            f"{share:.0%} of the events at the sandbox",
            lambda: self._check(relays),
        )

    def wait_complete(self, timeout: float, alive: Iterable[RelayProcess] = ()) -> None:
        """Until every valid record's events are at the sandbox and every planted record is in
        the DLQ. ``alive``: replicas that must not exit meanwhile."""
        relays = list(alive)
        try:
            wait_for(self.complete, timeout, "every record delivered or dead-lettered",
                     lambda: self._check(relays), interval=0.5)  # fmt: skip
        except AssertionError as exc:
            figures = self.reconcile()
            detail = "\n".join([str(exc), figures.line(), *figures.problems])
            raise AssertionError(detail) from None

    def _check(self, relays: list[RelayProcess]) -> None:
        for relay in relays:
            relay.check_alive()
        if self.producer_error is not None:
            raise AssertionError(f"producing failed: {self.producer_error}")

    # -- the end -------------------------------------------------------------------------------

    def stop_relays(self) -> dict[str, int | None]:
        """SIGTERM every replica still running; the exit status of each (None: was dead)."""
        return {r.name: r.terminate() if r.alive else None for r in self.relays}

    def reconcile(self, trials: int = 1) -> Figures:
        self.watch.poll()
        figures = reconcile(
            self.name, self.expected, self.watch, self.dlq_watch.letters, trials=trials
        )
        figures.seconds = time.monotonic() - self.started
        return figures

    def finish(self, trials: int = 1) -> Figures:
        """Stop every replica (so no late duplicate is missed), read the whole DLQ, reconcile."""
        self.join_producer()
        exits = self.stop_relays()
        self.dlq_watch.drain()
        figures = self.reconcile(trials)
        figures.notes["sigterm_exit"] = exits
        return figures

    def close(self) -> None:
        for relay in self.relays:
            relay.close()
        self.dlq_watch.close()


def _put(http: Any, collection: str, wrapper: str, record: dict[str, Any]) -> None:
    response = http.put(
        f"/rostering/1.0/{collection}/{record['sourcedId']}", json={wrapper: record}
    )
    response.raise_for_status()


def _safe_headers(headers: dict[str, bytes]) -> dict[str, str]:
    return {
        k: v[:120].decode(errors="replace") for k, v in headers.items() if k.startswith("relay.")
    }
