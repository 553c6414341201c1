"""EnvelopeBatcher: packing, linger, splitting refused envelopes, cancellation.

The sender is a fake of the ``Deliverer`` (its own tests are test_timeback_delivery.py): it
answers like the sandbox's envelope intake (an envelope is atomic, one bad event refuses all),
with no HTTP, so that thousands of interleavings run in a second; the same paths against the
real sandbox over HTTP are tests/integration/test_pipeline_envelopes.py.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.metrics import REGISTRY
from relay.resilience import Attempts, RetriesExhausted
from relay.resilience.gate import GateConfig, RequestGate
from relay.sandbox.events import _split
from relay.timeback.client import SendResult
from relay.timeback.envelopes import EnvelopeBatcher, envelope
from relay.timeback.errors import EventRejected, RequestRejected
from relay.timeback.responses import Outcome

SENSOR = "https://api.alpha-1edtech.ai/applications/1.0/app-1"


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    payload: bytes


def event(event_id: str, *, bad: bool = False, kind: str = "GradeEvent") -> Event:
    body = {"id": event_id, "type": kind, "bad": bad}
    return Event(event_id, kind, orjson.dumps(body))


def record(name: str, *flags: int) -> list[Event]:
    """Events ``name/0``, ``name/1``...; True flags the bad ones."""
    return [event(f"{name}/{i}", bad=bool(bad)) for i, bad in enumerate(flags)]


class FakeApi:
    """Answers like the sandbox: an envelope with a bad event is refused whole (400); a lone bad
    event is refused with its own id in the body; ``hang`` holds requests until released."""

    def __init__(
        self, rng: random.Random | None = None, *, refuse: type[Exception] = RequestRejected
    ):
        self.rng = rng
        self.refuse = refuse
        self.requests: list[list[str]] = []  # event ids per request, in the order sent
        self.accepted: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.duplicates: set[str] = set()
        self.hang: asyncio.Event | None = None
        self.arrived = asyncio.Event()  # set by the first request
        self.buggy: set[str] = set()  # event ids whose requests raise a (processing) bug
        self.partial: int | None = None  # a 2xx status answering envelopes (207, or 200 + body)

    async def deliver(
        self, payload: bytes, *, event_type: str, attempts: Attempts | None = None
    ) -> SendResult:
        body = orjson.loads(payload)
        assert "data" not in body, "a lone event is sent bare"
        return await self._answer([body], attempts)

    async def deliver_envelope(
        self,
        payload: bytes,
        *,
        event_types: Sequence[str],
        attempts: Attempts | None = None,
        canary: bytes | None = None,
    ) -> SendResult:
        body = orjson.loads(payload)
        events, _, issues = _split(body, 1000)  # the sandbox's own envelope check
        assert issues == [] and len(events) >= 2
        assert [e["type"] for e in events] == list(event_types)
        return await self._answer(events, attempts)

    async def _answer(self, events: list[dict[str, Any]], attempts: Attempts | None) -> SendResult:
        ids = [e["id"] for e in events]
        self.requests.append(ids)
        self.arrived.set()
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            for _ in range(self.rng.randrange(4) if self.rng else 0):
                await asyncio.sleep(0)  # interleave with other requests
            if self.hang is not None:
                await self.hang.wait()
        finally:
            self.in_flight -= 1
        if attempts is not None:
            attempts.count += 1
        if any(i in self.buggy for i in ids):
            raise KeyError("a bug in answering this request")
        if self.partial is not None and len(ids) > 1:
            self.accepted.append(ids[0])  # only the first is kept, and the answer says so
            failed = [{"id": i, "status": 500} for i in ids[1:]]
            return SendResult(
                self.partial, Outcome.DELIVERED, body=orjson.dumps({"results": failed})
            )
        bad = [e["id"] for e in events if e["bad"]]
        if bad:
            if attempts is not None:
                attempts.failed()
            what = ids[0] if len(ids) == 1 else f"envelope of {len(ids)} events"
            if self.refuse is RetriesExhausted:
                raise RetriesExhausted(RuntimeError("HTTP 500"), 3, 1.0, 1.0, what)
            raise EventRejected(f"refused {what}", status=400, body=what)
        if any(i in self.duplicates for i in ids):
            return SendResult(409, Outcome.DUPLICATE)
        self.accepted.extend(ids)
        return SendResult(202, Outcome.DELIVERED)


def batcher(
    api: FakeApi, *, max_events: int = 4, linger: float = 0.0, requests: int = 8
) -> EnvelopeBatcher:
    return EnvelopeBatcher(
        api, sensor=SENSOR, max_events=max_events, linger=linger, max_requests=requests
    )


async def deliver_all(
    b: EnvelopeBatcher, records: list[list[Event]]
) -> list[list[SendResult] | BaseException]:
    outcomes = await asyncio.gather(
        *(b.send(r, Attempts()) for r in records), return_exceptions=True
    )
    return list(outcomes)


def test_the_envelope_is_the_events_bytes_joined_and_the_sandbox_takes_its_shape() -> None:
    from datetime import UTC, datetime

    events = record("r", False, False)
    raw = envelope(SENSOR, [e.payload for e in events], datetime(2026, 1, 2, 3, 4, 5, 6000, UTC))
    body = orjson.loads(raw)
    assert body == {
        "sensor": SENSOR,
        "sendTime": "2026-01-02T03:04:05.006Z",
        "dataVersion": "http://purl.imsglobal.org/ctx/caliper/v1p2",
        "data": [orjson.loads(e.payload) for e in events],
    }
    assert b",".join(e.payload for e in events) in raw  # not serialized again
    assert _split(body, 2)[2] == [] and _split(body, 1)[2] != []  # the sandbox's own limit


async def test_records_are_packed_whole_into_full_envelopes() -> None:
    api = FakeApi()
    b = batcher(api, max_events=4)
    outcomes = await deliver_all(b, [record("a", 0, 0), record("b", 0, 0), record("c", 0, 0, 0)])
    assert api.requests == [["a/0", "a/1", "b/0", "b/1"], ["c/0", "c/1", "c/2"]]
    assert all(isinstance(o, list) and len(o) in (2, 3) for o in outcomes)


async def test_a_record_that_would_straddle_two_envelopes_starts_the_next() -> None:
    api = FakeApi()
    outcomes = await deliver_all(
        batcher(api, max_events=4), [record("a", 0, 0, 0), record("b", 0, 0)]
    )
    assert api.requests == [["a/0", "a/1", "a/2"], ["b/0", "b/1"]]
    assert not any(isinstance(o, BaseException) for o in outcomes)


async def test_a_lone_event_is_sent_bare() -> None:
    api = FakeApi()
    [result] = await batcher(api).send(record("a", False), Attempts())
    assert api.requests == [["a/0"]] and result.outcome is Outcome.DELIVERED


async def test_an_envelope_waits_its_linger_for_more_events() -> None:
    api = FakeApi()
    b = batcher(api, max_events=10, linger=0.2)
    first = asyncio.create_task(b.send(record("a", False), Attempts()))
    await asyncio.sleep(0.05)
    assert api.requests == [] and b.waiting == 1  # lingering
    second = asyncio.create_task(b.send(record("b", False), Attempts()))
    await asyncio.gather(first, second)
    assert api.requests == [["a/0", "b/0"]]


def envelopes(outcome: str) -> float:
    """As a scrape reads it: a collection adds the tallied counts first (relay.metrics)."""
    labels = {"outcome": outcome}
    return REGISTRY.get_sample_value("timeback_relay_envelopes_total", labels) or 0.0


async def test_a_refused_envelope_is_split_until_the_bad_event_is_alone() -> None:
    api = FakeApi()
    records = [record("a", 0, 0), record("b", 0, 1), record("c", 0, 0), record("d", 0, 0)]
    split, delivered = envelopes("split"), envelopes("delivered")
    outcomes = await deliver_all(batcher(api, max_events=8), records)
    assert (envelopes("split") - split, envelopes("delivered") - delivered) == (3, 2)
    assert api.requests == [
        ["a/0", "a/1", "b/0", "b/1", "c/0", "c/1", "d/0", "d/1"],
        ["a/0", "a/1", "b/0", "b/1"],  # refused: first half first
        ["a/0", "a/1"],
        ["b/0", "b/1"],
        ["b/0"],
        ["b/1"],  # alone: its own answer is its record's
        ["c/0", "c/1", "d/0", "d/1"],
    ]
    assert sorted(api.accepted) == ["a/0", "a/1", "b/0", "c/0", "c/1", "d/0", "d/1"]
    failed = outcomes[1]
    assert isinstance(failed, RequestRejected) and (failed.status, failed.body) == (400, "b/1")
    assert all(isinstance(o, list) for i, o in enumerate(outcomes) if i != 1)


async def test_an_envelope_out_of_retries_is_split_too() -> None:
    api = FakeApi(refuse=RetriesExhausted)
    outcomes = await deliver_all(batcher(api), [record("a", 0), record("b", 1), record("c", 0)])
    assert isinstance(outcomes[1], RetriesExhausted) and "b/0" in str(outcomes[1])
    assert sorted(api.accepted) == ["a/0", "c/0"]


async def test_a_record_fails_with_its_first_bad_event_once_all_are_answered() -> None:
    api = FakeApi()
    outcome = (await deliver_all(batcher(api), [record("a", 0, 1, 1)]))[0]
    assert isinstance(outcome, RequestRejected) and outcome.body == "a/1"
    assert sorted(api.accepted) == ["a/0"] and ["a/2"] in api.requests  # every one answered


async def test_a_duplicate_envelope_is_split_to_learn_which_were_duplicates() -> None:
    api = FakeApi()
    api.duplicates = {"a/1"}
    [results] = await deliver_all(batcher(api), [record("a", 0, 0)])
    assert isinstance(results, list)
    assert [r.outcome for r in results] == [Outcome.DELIVERED, Outcome.DUPLICATE]
    assert api.requests == [["a/0", "a/1"], ["a/0"], ["a/1"]]


async def test_a_bug_in_one_request_strikes_only_the_record_whose_event_caused_it() -> None:
    """Issue 23 item 4: the envelope is split like a refusal, so the bug reaches one record."""
    api = FakeApi()
    api.buggy.add("b/0")
    outcomes = await deliver_all(batcher(api, max_events=4), [record("a", 0, 0), record("b", 0, 0)])
    assert isinstance(outcomes[1], KeyError)
    assert isinstance(outcomes[0], list) and len(outcomes[0]) == 2
    assert {"a/0", "a/1", "b/1"} <= set(api.accepted)


@pytest.mark.parametrize("status", [200, 207])
async def test_an_answer_taking_part_of_an_envelope_is_split(status: int) -> None:
    """Issue 23 item 5: a 2xx listing failed events (or any 207) counts nothing as taken."""
    api = FakeApi()
    api.partial = status
    outcomes = await deliver_all(batcher(api, max_events=4), [record("a", 0, 0), record("b", 0, 0)])
    assert all(isinstance(o, list) for o in outcomes)
    assert set(api.accepted) == {"a/0", "a/1", "b/0", "b/1"}  # each sent alone in the end
    assert ["a/1"] in api.requests and ["b/1"] in api.requests


async def test_envelope_attempts_are_charged_once_to_each_record() -> None:
    api = FakeApi()
    b = batcher(api)
    a_attempts, b_attempts = Attempts(), Attempts()
    await asyncio.gather(
        b.send(record("a", 0, 0), a_attempts),
        b.send(record("b", 1), b_attempts),
        return_exceptions=True,
    )
    # a: the envelope and its refused half [a/0, a/1] re-sent as one taken envelope: 2;
    # b: the envelope, then b/0 alone: 2
    assert api.requests == [["a/0", "a/1", "b/0"], ["a/0", "a/1"], ["b/0"]]
    assert (a_attempts.count, b_attempts.count) == (2, 2)
    assert a_attempts.first_failure is not None and b_attempts.first_failure is not None


async def test_requests_in_flight_are_bounded() -> None:
    api = FakeApi(random.Random(3))
    records = [record(f"r{i}", 0, 0) for i in range(40)]
    outcomes = await deliver_all(batcher(api, max_events=2, requests=3), records)
    assert api.most_in_flight == 3 and len(api.requests) == 40
    assert not any(isinstance(o, BaseException) for o in outcomes)


async def test_a_cancelled_record_withdraws_its_waiting_events() -> None:
    api = FakeApi()
    b = batcher(api, max_events=10, linger=0.1)
    cancelled = asyncio.create_task(b.send(record("a", 0, 0), Attempts()))
    kept = asyncio.create_task(b.send(record("b", 0), Attempts()))
    await asyncio.sleep(0)
    cancelled.cancel()
    [result] = await kept
    assert api.requests == [["b/0"]] and result.outcome is Outcome.DELIVERED
    assert b.waiting == 0 and cancelled.cancelled()


async def test_a_record_cancelled_in_flight_leaves_the_others_their_answer() -> None:
    api = FakeApi()
    api.hang = asyncio.Event()
    b = batcher(api, max_events=3)
    cancelled = asyncio.create_task(b.send(record("a", 0), Attempts()))
    kept = asyncio.create_task(b.send(record("b", 1, 0), Attempts()))
    await api.arrived.wait()
    cancelled.cancel()
    await asyncio.sleep(0)
    api.hang.set()  # the envelope is refused (b/0 is bad) and split: a/0 is left out
    with pytest.raises(RequestRejected):
        await kept
    assert api.requests == [["a/0", "b/0", "b/1"], ["b/0"], ["b/1"]]
    assert api.accepted == ["b/1"] and cancelled.cancelled()


async def test_closing_cancels_what_waits_and_what_is_in_flight() -> None:
    api = FakeApi()
    api.hang = asyncio.Event()
    b = batcher(api, max_events=2, linger=10)
    flying = asyncio.create_task(b.send(record("a", 0, 0), Attempts()))
    waiting = asyncio.create_task(b.send(record("b", 0), Attempts()))
    await api.arrived.wait()
    await b.aclose()
    for task in (flying, waiting):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert api.requests == [["a/0", "a/1"]] and b.waiting == 0
    with pytest.raises(RuntimeError, match="closed"):
        await b.send(record("c", 0), Attempts())


class GatedApi(FakeApi):
    """Each request passes a real ``RequestGate`` first, as ``TimeBackClient.send_event`` does."""

    def __init__(self, gate: RequestGate) -> None:
        super().__init__()
        self.gate = gate

    async def _answer(self, events: list[dict[str, Any]], attempts: Attempts | None) -> SendResult:
        async with self.gate.slot() as slot:
            result = await super()._answer(events, attempts)
            slot.answered(result.status)
        return result


async def test_an_envelope_held_by_the_rate_limit_fills_up_while_it_waits() -> None:
    """An envelope is closed when its request may leave, not before it waits at the gate: the
    events that come while the rate limit holds it join it. The gate's clock stands still and
    its sleeps wait for ``opened`` (no wall time): the burst's one token goes to the first
    event; every later request waits until the test opens the gate, 30 events later."""
    opened = asyncio.Event()

    async def held(_: float) -> None:
        await opened.wait()

    gate = RequestGate(GateConfig(rate=1, burst=1), clock=lambda: 0.0, sleep=held)
    api = GatedApi(gate)
    b = EnvelopeBatcher(api, sensor=SENSOR, max_events=10, linger=0, max_requests=8, gate=gate)
    sends = []
    for i in range(30):
        sends.append(asyncio.create_task(b.send(record(f"r{i}", 0), Attempts())))
        await asyncio.sleep(0.002)  # records come one by one, each past the linger
    opened.set()
    outcomes = await asyncio.gather(*sends)
    assert all(len(o) == 1 for o in outcomes)
    assert [len(r) for r in api.requests] == [1, 10, 10, 9]  # before the fix: 30 of 1
    assert sorted(api.accepted) == sorted(f"r{i}/0" for i in range(30))


# Records of 1-3 events (True: the API refuses that event), envelopes of 3-8 events.
RECORDS = st.lists(st.lists(st.booleans(), min_size=1, max_size=3), min_size=1, max_size=30)


@settings(max_examples=200, deadline=None)
@given(records=RECORDS, max_events=st.integers(3, 8), seed=st.integers(0, 2**16))
def test_any_bad_events_among_good_ones(
    records: list[list[bool]], max_events: int, seed: int
) -> None:
    """Every good event is delivered exactly once, every bad one is refused alone and reaches
    its record (its first bad one), and a record's events reach the API in its order."""
    api = FakeApi(random.Random(seed))
    events = [record(f"r{n}", *flags) for n, flags in enumerate(records)]

    async def run() -> list[list[SendResult] | BaseException]:
        return await deliver_all(batcher(api, max_events=max_events, requests=4), events)

    outcomes = asyncio.run(run())
    good = [e.id for r in events for e in r if not orjson.loads(e.payload)["bad"]]
    assert Counter(api.accepted) == Counter(good)
    bad = {e.id for r in events for e in r if orjson.loads(e.payload)["bad"]}
    assert {ids[0] for ids in api.requests if len(ids) == 1 and ids[0] in bad} == bad
    for flags, outcome, evs in zip(records, outcomes, events, strict=True):
        if any(flags):
            assert isinstance(outcome, RequestRejected)
            assert outcome.body == evs[flags.index(True)].id
        else:
            assert isinstance(outcome, list) and len(outcome) == len(flags)
        taken = [i for i in api.accepted if i.split("/")[0] == evs[0].id.split("/")[0]]
        assert taken == sorted(taken, key=lambda i: int(i.split("/")[1]))


class CheckedBatcher(EnvelopeBatcher):
    """Compares, at every scheduling, the envelope sizes kept as events come and go with those
    packing every waiting event afresh gives (the batcher's own ``_packing``); a difference is
    noted and set right, so that the run goes on to its end."""

    checks = 0
    drifts: list[tuple[list[int], list[int]]] = []

    def _schedule(self) -> None:
        kept, afresh = list(self._sizes), list(self._packing())
        if kept != afresh:
            CheckedBatcher.drifts.append((kept, afresh))
            self._sizes = self._packing()
        CheckedBatcher.checks += 1
        super()._schedule()


@settings(max_examples=100, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 12), min_size=1, max_size=40),
    max_events=st.integers(2, 8),
    seed=st.integers(0, 2**16),
)
def test_packing_kept_as_events_come_and_go_is_packing_afresh(
    sizes: list[int], max_events: int, seed: int
) -> None:
    """Records of any size (some larger than an envelope) come while requests are in flight,
    some are cancelled while they wait: the kept sizes never drift from a fresh packing."""
    rng = random.Random(seed)
    api = FakeApi(rng)
    CheckedBatcher.checks, CheckedBatcher.drifts = 0, []

    async def run() -> None:
        b = CheckedBatcher(api, sensor=SENSOR, max_events=max_events, linger=0, max_requests=2)
        sends = []
        for n, size in enumerate(sizes):
            sends.append(asyncio.create_task(b.send(record(f"r{n}", *[0] * size), Attempts())))
            for _ in range(rng.randrange(3)):
                await asyncio.sleep(0)
            if len(sends) > 1 and rng.random() < 0.2:  # the last one always gets its turn
                sends[rng.randrange(len(sends) - 1)].cancel()
        await asyncio.gather(*sends, return_exceptions=True)
        assert b.waiting == 0

    asyncio.run(run())
    assert CheckedBatcher.checks >= 1 and CheckedBatcher.drifts == []
