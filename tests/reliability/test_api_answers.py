"""One event, one answer: issue 16 item 5, and the trusted sinks' "a 409 for one event",
"partial multi-event failure (202 then 500 / 413)" and "a hung API reply".

One relay run (module-scoped, to keep the suite short) behind tests/reliability/fault_proxy.py,
in front of the real sandbox. Among ordinary traffic, planted records whose event gets a fixed
answer, each the last record of its own student so nothing of its key waits behind it:

- 409: the proxy answers 409 every time; the relay counts it delivered (DUPLICATE), sends it
  once, never dead-letters it.
- drip: its first attempt gets a 200 whose body drips a byte a second (each read well under
  RELAY_HTTP_TIMEOUT); the relay must give up on the reply after a total deadline and deliver
  the event on a retry.
- 500-then-202: a QuestionAnswered (two events) whose second event gets 500 twice; both events
  are delivered, the first one once.
- 413: a QuestionAnswered whose second event gets 413: dead-lettered as deliver/api-rejected
  naming both event ids; the first event stays delivered once.

A failure looks like: the dripped event still not delivered 15 s after the rest; a duplicate of
the partial record's first event; a missing or misfiled dead letter; a 409 dead-lettered.
(The one-event 403/404/3xx/401 trials are test_wedged_partition.py.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from relay.tools.traffic import TrafficGenerator
from tests.conftest import topic_factory
from tests.integration.conftest import running_sandbox
from tests.reliability.conftest import Report
from tests.reliability.fault_proxy import FaultProxy
from tests.reliability.harness import requires_relay, wait_for
from tests.reliability.ledger import Expected, Figures, expectations
from tests.reliability.scenario import Scenario

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(240)]

HTTP_TIMEOUT = 2.0  # RELAY_HTTP_TIMEOUT: the dripped reply's reads each take 1 s, under it


@dataclass
class Run:
    s: Scenario
    proxy: FaultProxy
    planted: dict[str, Expected]
    figures: Figures | None = None

    def letter(self, name: str) -> tuple[str, str] | None:
        value = self.planted[name].value
        return next((x.reason for x in self.s.dlq_watch.letters if x.value == value), None)

    def accepted(self, name: str) -> list[int]:
        return [self.s.watch.accepted[i] for i in self.planted[name].event_ids]


def _last_of_each_student(records: list[Expected]) -> list[Expected]:
    last: dict[bytes | None, Expected] = {}
    for r in records:
        last[r.key] = r
    return list(last.values())


@pytest.fixture(scope="module")
def run(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    with topic_factory(kafka_bootstrap) as make_topic, running_sandbox() as box:
        proxy = FaultProxy(box.url).start()
        workdir: Path = tmp_path_factory.mktemp("api-answers")
        s = Scenario.create("api-answers", kafka_bootstrap, make_topic, box, workdir, 3)
        s.sandbox = box
        try:
            yield _drive(s, proxy)
        finally:
            s.close()
            proxy.stop()


def _drive(s: Scenario, proxy: FaultProxy) -> Run:
    plan = TrafficGenerator(students=8, seed=171).plan(120)
    singles = TrafficGenerator(students=2, types=("XpEarned",), seed=172).plan(10)
    doubles = TrafficGenerator(students=4, types=("QuestionAnswered",), seed=173).plan(16)
    for p in (plan, singles, doubles):
        s.seed_roster(p)
    single_records, double_records = expectations(singles), expectations(doubles)
    lasts = _last_of_each_student(single_records)
    pairs = _last_of_each_student(double_records)[:2]
    assert len(lasts) == 2 and len(pairs) == 2 and all(len(p.event_ids) == 2 for p in pairs)
    planted = dict(zip(["409", "drip"], lasts, strict=False))
    p413 = pairs[1]
    planted["500-then-202"] = pairs[0]
    planted["413"] = Expected(p413.key, p413.value, p413.event_id, p413.record_type, "413",
                              ("deliver", "api-rejected"), p413.event_ids)  # fmt: skip
    proxy.answer(planted["409"].event_ids[0], 409)
    proxy.drip(planted["drip"].event_ids[0], times=1)
    proxy.answer(planted["500-then-202"].event_ids[1], 500, times=2)
    proxy.answer(p413.event_ids[1], 413)
    records = expectations(plan) + [planted["413"] if r is p413 else r for r in single_records
                                    + double_records]  # fmt: skip

    relay = s.relay("a", RELAY_HTTP_TIMEOUT=str(HTTP_TIMEOUT))
    relay.env["RELAY_API_BASE_URL"] = proxy.url
    relay.start()
    relay.wait_assigned()
    s.produce(records, wait=True)
    run = Run(s, proxy, planted)
    # Everything but the 409 and the dripped record delivered, the 413 dead-lettered.
    stuck = {id(planted[n]) for n in ("409", "drip")}
    wanted = [i for r in records if r.valid and id(r) not in stuck for i in r.event_ids]

    def settled() -> bool:
        s.poll()
        return s.watch.delivered(wanted) == len(wanted) and run.letter("413") is not None

    with contextlib.suppress(AssertionError):  # the figures tell
        wait_for(settled, 60, "the other records", relay.check_alive, interval=0.5)
    # The dripped event: a total deadline of a few RELAY_HTTP_TIMEOUT, then a retry delivers it.
    drip_ids = planted["drip"].event_ids
    with contextlib.suppress(AssertionError):
        wait_for(lambda: s.progress() > 0 and s.watch.delivered(drip_ids) == 1, 15, "drip")
    run.figures = s.finish()
    run.figures.notes.update(
        proxy_faulted=dict(proxy.hits),
        planted={n: str(run.letter(n)) for n in planted},
    )
    return run


def test_figures(run: Run, report: Report) -> None:
    assert run.figures is not None
    report(run.figures)
    # Every rule fired at least once, or a trial below proves nothing.
    assert all(run.proxy.hits[r.event_ids[-1 if n in ("413", "500-then-202") else 0]]
               for n, r in run.planted.items()), run.proxy.hits  # fmt: skip
    assert run.figures.dlq_unexpected == 0, run.figures.problems


def test_a_409_for_one_event_counts_as_delivered(run: Run) -> None:
    assert run.letter("409") is None, "a 409 is as good as delivered: never a dead letter"
    assert run.proxy.hits[run.planted["409"].event_ids[0]] == 1, "sent once, not retried"


def test_a_dripping_reply_is_cut_off_and_retried(run: Run) -> None:
    assert run.accepted("drip") == [1], "the dripped event was never delivered"


def test_a_multi_event_record_with_a_500_then_202_is_delivered_once(run: Run) -> None:
    assert run.accepted("500-then-202") == [1, 1], "each event exactly once at the sandbox"
    assert run.letter("500-then-202") is None


def test_a_multi_event_record_with_a_413_is_dead_lettered_naming_its_events(run: Run) -> None:
    assert run.letter("413") == ("deliver", "api-rejected")
    value = run.planted["413"].value
    letter = next(x for x in run.s.dlq_watch.letters if x.value == value)
    assert letter.headers["relay.http.status"] == b"413"
    assert letter.headers["relay.event_ids"].decode().split(",") == list(
        run.planted["413"].event_ids
    )
    # The first event had been accepted (202) before the second was refused: it stays delivered
    # once; a replay of the dead letter gets a 409 for it.
    assert run.accepted("413") == [1, 0]
