"""The response table, backoff, Retry-After and the circuit breaker (pure, fake time); the
breaker's state reaches Health through its ``on_change``."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.health import Health
from relay.metrics import CIRCUIT_STATE
from relay.resilience import Backoff, CircuitBreaker, CircuitState
from relay.timeback.responses import Outcome, classify, envelope_taken, parse_retry_after

# --- the response table (docs/operations.md#partner-api-answers), one row per case ----------------

TABLE = [
    (200, "events", Outcome.DELIVERED),
    (201, "events", Outcome.DELIVERED),
    (202, "events", Outcome.DELIVERED),
    (204, "events", Outcome.DELIVERED),  # other 2xx
    (409, "events", Outcome.DUPLICATE),
    (400, "events", Outcome.REJECTED),
    (413, "events", Outcome.REJECTED),
    (422, "events", Outcome.REJECTED),
    (410, "events", Outcome.REJECTED),  # other 4xx
    (401, "events", Outcome.UNAUTHORIZED),
    (403, "events", Outcome.SYSTEMIC),
    (403, "rostering", Outcome.SYSTEMIC),
    (404, "events", Outcome.SYSTEMIC),  # wrong base URL
    (404, "rostering", Outcome.REJECTED),  # "not found": the caller decides
    (404, "xp", Outcome.REJECTED),
    (408, "events", Outcome.TRANSIENT),
    (425, "events", Outcome.TRANSIENT),
    (429, "events", Outcome.TRANSIENT),
    (500, "events", Outcome.TRANSIENT),
    (502, "events", Outcome.TRANSIENT),
    (503, "events", Outcome.TRANSIENT),
    (504, "events", Outcome.TRANSIENT),
    (599, "events", Outcome.TRANSIENT),  # other 5xx
    (302, "events", Outcome.SYSTEMIC),  # a redirect means a wrong URL: not followed
]


@pytest.mark.parametrize(("status", "endpoint", "outcome"), TABLE)
def test_classify_row(status: int, endpoint: str, outcome: Outcome) -> None:
    assert classify(status, endpoint=endpoint) is outcome


def test_classify_defaults_to_events() -> None:
    assert classify(404) is Outcome.SYSTEMIC


# --- backoff ----------------------------------------------------------------------------------


@given(
    base=st.floats(0.001, 10),
    cap=st.floats(0.001, 100),
    attempt=st.integers(0, 10_000),
    seed=st.integers(0, 2**32),
)
def test_backoff_full_jitter_bounds(base: float, cap: float, attempt: int, seed: int) -> None:
    backoff = Backoff(base, cap, rng=random.Random(seed))
    delay = backoff.delay(attempt)
    assert 0 <= delay <= min(cap, base * 2 ** min(attempt, 64))
    assert delay <= cap


def test_backoff_grows_then_caps() -> None:
    backoff = Backoff(0.5, 30)
    assert [backoff.ceiling(a) for a in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]


def test_backoff_is_jittered() -> None:
    backoff = Backoff(1, 100, rng=random.Random(1))
    assert len({backoff.delay(5) for _ in range(20)}) == 20


def test_backoff_rejects_nonpositive() -> None:
    with pytest.raises(ValueError):
        Backoff(0, 1)


# --- Retry-After ----------------------------------------------------------------------------

NOW = datetime(2026, 1, 15, 14, 30, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2.0),
        (" 120 ", 120.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-5", 0.0),  # negative: retry now
        ("999999", 300.0),  # capped
        (None, None),
        ("", None),
        ("soon", None),
        ("2 seconds", None),
        ("nan", None),
        ("inf", None),
        ("Thu, 15 Jan 2026 14:30:30 GMT", 30.0),
        ("Thu, 15 Jan 2026 14:29:00 GMT", 0.0),  # in the past
        ("Fri, 16 Jan 2026 14:30:00 GMT", 300.0),  # a day ahead: capped
        ("Thu, 32 Jan 2026 14:30:30 GMT", None),  # not a date
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW, cap=300) == expected


@given(seconds=st.integers(-(10**6), 10**9), cap=st.floats(0.1, 1000))
def test_retry_after_seconds_always_within_bounds(seconds: int, cap: float) -> None:
    result = parse_retry_after(str(seconds), now=NOW, cap=cap)
    assert result is not None
    assert 0 <= result <= cap
    assert result == min(max(seconds, 0), cap)


@given(offset=st.integers(-(10**6), 10**6))
def test_retry_after_http_date_within_bounds(offset: int) -> None:
    header = format_datetime(NOW + timedelta(seconds=offset), usegmt=True)
    assert parse_retry_after(header, now=NOW, cap=300) == min(max(offset, 0), 300)


@given(st.text(max_size=40))
def test_retry_after_never_raises(value: str) -> None:
    result = parse_retry_after(value, now=NOW, cap=60)
    assert result is None or 0 <= result <= 60


# --- circuit breaker --------------------------------------------------------------------------


class FakeTime:
    """A monotonic clock that moves only when told; sleepers wake when it passes their deadline."""

    def __init__(self) -> None:
        self.now = 0.0
        self._moved = asyncio.Event()
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        deadline = self.now + seconds
        while self.now < deadline:
            moved = self._moved
            await moved.wait()

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self._moved.set()
        self._moved = asyncio.Event()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def breaker(t: FakeTime, **kw: object) -> CircuitBreaker:
    changes: list[tuple[CircuitState, CircuitState]] = []
    health = Health()
    report = health.circuit_observer("events")

    def changed(old: CircuitState, new: CircuitState) -> None:
        changes.append((old, new))
        report(old, new)

    b = CircuitBreaker(
        3,
        5.0,
        clock=t.clock,
        sleep=t.sleep,
        on_change=changed,
        **kw,  # type: ignore[arg-type]
    )
    b.changes = changes  # type: ignore[attr-defined]
    b.health = health  # type: ignore[attr-defined]
    return b


async def test_closed_lets_everyone_through() -> None:
    t = FakeTime()
    b = breaker(t)
    await asyncio.wait_for(b.wait_allowed(), 1)
    assert b.state is CircuitState.CLOSED


async def test_opens_after_consecutive_failures_only() -> None:
    t = FakeTime()
    b = breaker(t)
    b.record_failure()
    b.record_failure()
    b.record_success()  # breaks the run
    b.record_failure()
    b.record_failure()
    assert b.state is CircuitState.CLOSED
    b.record_failure()
    assert b.state is CircuitState.OPEN
    assert b.health.circuit_closed is False  # type: ignore[attr-defined]
    assert CIRCUIT_STATE._value.get() == 1


async def test_open_waits_then_one_probe_closes() -> None:
    t = FakeTime()
    b = breaker(t)
    for _ in range(3):
        b.record_failure()

    async def attempt() -> None:
        await b.wait_allowed()
        assert b.state is CircuitState.HALF_OPEN  # this caller is the probe
        b.record_success()

    task = asyncio.create_task(attempt())
    await settle()
    assert not task.done()  # open: blocked, not failing
    t.advance(4.9)
    await settle()
    assert not task.done()
    t.advance(0.2)
    await asyncio.wait_for(task, 1)
    assert b.state is CircuitState.CLOSED
    assert b.changes == [  # type: ignore[attr-defined]
        (CircuitState.CLOSED, CircuitState.OPEN),
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.CLOSED),
    ]


async def test_half_open_allows_exactly_one_probe_with_concurrent_waiters() -> None:
    t = FakeTime()
    b = breaker(t)
    for _ in range(3):
        b.record_failure()
    t.advance(5)
    allowed: list[int] = []
    release = asyncio.Event()

    async def caller(i: int) -> None:
        await b.wait_allowed()
        allowed.append(i)
        await release.wait()  # the attempt is "in flight"
        b.record_success()

    tasks = [asyncio.create_task(caller(i)) for i in range(10)]
    await settle()
    assert len(allowed) == 1  # one probe; nine wait
    assert b.state is CircuitState.HALF_OPEN
    release.set()  # the probe succeeds: the circuit closes and every waiter goes
    await asyncio.wait_for(asyncio.gather(*tasks), 1)
    assert sorted(allowed) == list(range(10))
    assert b.state is CircuitState.CLOSED
    assert b.health.circuit_closed is True  # type: ignore[attr-defined]
    assert CIRCUIT_STATE._value.get() == 0


async def test_probe_failure_reopens_for_longer_and_waiters_keep_waiting() -> None:
    t = FakeTime()
    b = breaker(t, max_open_for=12.0)
    for _ in range(3):
        b.record_failure()
    t.advance(5)
    verdict: asyncio.Queue[bool] = asyncio.Queue()
    allowed: list[int] = []

    async def caller(i: int) -> None:
        await b.wait_allowed()
        allowed.append(i)
        if await verdict.get():
            b.record_success()
        else:
            b.record_failure()

    tasks = [asyncio.create_task(caller(i)) for i in range(5)]
    await settle()
    assert len(allowed) == 1
    verdict.put_nowait(False)  # probe fails
    await settle()
    assert b.state is CircuitState.OPEN
    assert b.reopen_in == pytest.approx(10.0)  # doubled
    assert len(allowed) == 1  # the waiters went back to waiting on the open circuit
    t.advance(9.9)
    await settle()
    assert len(allowed) == 1
    t.advance(0.2)
    await settle()
    assert len(allowed) == 2  # the next single probe
    verdict.put_nowait(False)
    await settle()
    assert b.reopen_in == pytest.approx(12.0)  # capped at max_open_for
    t.advance(12.1)
    await settle()
    assert len(allowed) == 3
    for _ in range(3):
        verdict.put_nowait(True)
    await asyncio.wait_for(asyncio.gather(*tasks), 1)
    assert b.state is CircuitState.CLOSED
    # Closing resets the open period.
    for _ in range(3):
        b.record_failure()
    assert b.reopen_in == pytest.approx(5.0)


async def test_cancelled_probe_frees_the_slot() -> None:
    t = FakeTime()
    b = breaker(t)
    for _ in range(3):
        b.record_failure()
    t.advance(5)
    probe_in_flight = asyncio.Event()

    async def probe() -> None:
        await b.wait_allowed()
        probe_in_flight.set()
        try:
            await asyncio.Event().wait()
        finally:
            b.abandon()

    first = asyncio.create_task(probe())
    await probe_in_flight.wait()
    second = asyncio.create_task(b.wait_allowed())
    await settle()
    assert not second.done()
    first.cancel()
    await asyncio.wait_for(second, 1)  # took over as the probe
    assert b.state is CircuitState.HALF_OPEN


async def test_probe_task_ending_without_verdict_frees_the_slot() -> None:
    t = FakeTime()
    b = breaker(t)
    for _ in range(3):
        b.record_failure()
    t.advance(5)
    await asyncio.create_task(b.wait_allowed())  # a probe task that ends silently
    await settle()
    await asyncio.wait_for(asyncio.create_task(b.wait_allowed()), 1)


async def test_stale_results_do_not_decide_while_open_or_half_open() -> None:
    t = FakeTime()
    b = breaker(t)
    for _ in range(3):
        b.record_failure()
    b.record_success()  # a request from before the opening finally answered
    assert b.state is CircuitState.OPEN
    t.advance(5)
    probe_allowed = asyncio.Event()
    done = asyncio.Event()

    async def probe() -> None:
        await b.wait_allowed()
        probe_allowed.set()
        await done.wait()
        b.record_success()

    task = asyncio.create_task(probe())
    await probe_allowed.wait()
    b.record_failure()  # not the probe: ignored
    assert b.state is CircuitState.HALF_OPEN
    done.set()
    await task
    assert b.state is CircuitState.CLOSED


def test_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(0, 1)
    with pytest.raises(ValueError):
        CircuitBreaker(1, 0)


@pytest.mark.parametrize(
    ("status", "body", "taken"),
    [
        (202, b"", True),  # the documented answer
        (200, b'{"status": "ok"}', True),
        (202, b"accepted", True),
        (207, b"", False),  # Multi-Status: some events were not taken
        (200, b'{"errors": [{"id": "e2"}]}', False),
        (200, b'{"failed": ["e2"]}', False),
        (200, b'{"errors": []}', True),
        (200, b'{"results": [{"id": "e1", "status": 202}, {"id": "e2", "status": 500}]}', False),
        (200, b'{"results": [{"id": "e1", "status": 202}, {"id": "e2", "status": 201}]}', True),
        (200, b'{"data": [{"id": "e2", "error": "invalid"}]}', False),
        (200, b'{"results": [{"id": "e1", "st', False),  # cut at the cap: cannot tell
    ],
)
def test_envelope_taken(status: int, body: bytes, taken: bool) -> None:
    assert envelope_taken(status, body) is taken
