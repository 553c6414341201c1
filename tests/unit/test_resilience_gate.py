"""The request gate: token bucket, shared pause, fixed and adaptive in-flight limits (fake clock;
no network: these are the pure parts, the trials in bench/limits_trials.py run them for real)."""

from __future__ import annotations

import asyncio

import pytest

from relay.resilience.concurrency import (
    MIN_WINDOW,
    OUTAGE_RUN,
    ConcurrencyLimit,
    Mode,
    Signal,
)
from relay.resilience.gate import DEFAULT_PAUSE, GateConfig, RequestGate
from relay.resilience.limiter import RAMP_FLOOR, Pause, TokenBucket


class FakeTime:
    """A clock that moves only when told; sleepers wake once it passes their deadline."""

    def __init__(self) -> None:
        self.now = 0.0
        self._moved = asyncio.Event()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        deadline = self.now + seconds
        while self.now < deadline:
            moved = self._moved
            await moved.wait()

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self._moved.set()
        self._moved = asyncio.Event()


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


# --- token bucket ---------------------------------------------------------------------------


async def test_bucket_lets_a_burst_through_then_meters_the_rate() -> None:
    t = FakeTime()
    bucket = TokenBucket(10, 3, clock=t.clock, sleep=t.sleep)
    assert [await bucket.acquire() for _ in range(3)] == [0, 0, 0]
    waiters = [asyncio.create_task(bucket.acquire()) for _ in range(2)]
    await settle()
    assert not any(w.done() for w in waiters)
    t.advance(0.1)  # one token
    await settle()
    assert [w.done() for w in waiters] == [True, False]  # in arrival order
    t.advance(0.1)
    await settle()
    assert waiters[1].done() and waiters[1].result() == pytest.approx(0.2)


async def test_a_cancelled_waiter_gives_its_token_back() -> None:
    t = FakeTime()
    bucket = TokenBucket(10, 1, clock=t.clock, sleep=t.sleep)
    await bucket.acquire()
    waiter = asyncio.create_task(bucket.acquire())
    await settle()
    assert bucket.tokens == pytest.approx(-1)
    waiter.cancel()
    await settle()
    assert bucket.tokens == pytest.approx(0)


def test_a_restarted_bucket_climbs_from_a_tenth_of_the_rate() -> None:
    t = FakeTime()
    bucket = TokenBucket(100, 100, ramp=5, clock=t.clock)
    bucket.restart()
    assert bucket.tokens == 0  # nothing saved up leaves as a burst
    assert bucket.current_rate() == pytest.approx(100 * RAMP_FLOOR)
    t.now += 2.5
    assert bucket.current_rate() == pytest.approx(50)
    t.now += 2.5
    assert bucket.current_rate() == 100


def test_bucket_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="rate must be > 0"):
        TokenBucket(0, 1)


# --- pause ----------------------------------------------------------------------------------


async def test_a_pause_holds_everyone_and_only_lengthens() -> None:
    t = FakeTime()
    pause = Pause(clock=t.clock, sleep=t.sleep)
    assert pause.extend(2.0)
    assert not pause.extend(1.0)  # never shortened
    waiters = [asyncio.create_task(pause.wait()) for _ in range(3)]
    t.advance(1.0)
    await settle()
    assert pause.extend(3.0)  # a second 429 while they wait: until t=4
    t.advance(1.5)
    await settle()
    assert not any(w.done() for w in waiters)
    t.advance(1.5)
    await settle()
    assert all(w.done() for w in waiters)


# --- concurrency ----------------------------------------------------------------------------


def run_window(
    limit: ConcurrencyLimit, t: FakeTime, rtt: float, signal: Signal = Signal.OK
) -> None:
    """One decision window in which the limit was reached and every answer took ``rtt``."""
    limit._reached = True
    t.now += max(MIN_WINDOW, rtt) * 1.01  # past the window (float sums drift)
    limit.observe(signal, rtt)


def test_fixed_limit_stays_at_the_maximum_under_back_pressure() -> None:
    t = FakeTime()
    limit = ConcurrencyLimit(64, Mode.FIXED, clock=t.clock)
    for _ in range(5):
        run_window(limit, t, 0.05, Signal.BACK_PRESSURE)
        run_window(limit, t, 0.05)
    assert limit.limit == 64


def test_adaptive_slow_starts_then_adds_one_per_window() -> None:
    t = FakeTime()
    limit = ConcurrencyLimit(64, Mode.ADAPTIVE, clock=t.clock)
    seen = [limit.limit]
    for _ in range(8):
        run_window(limit, t, 0.05)
        seen.append(limit.limit)
    assert seen == [1, 2, 4, 8, 16, 32, 64, 64, 64]


def test_adaptive_halves_on_back_pressure_and_then_climbs_by_one() -> None:
    t = FakeTime()
    limit = ConcurrencyLimit(64, Mode.ADAPTIVE, clock=t.clock)
    for _ in range(5):
        run_window(limit, t, 0.05)
    assert limit.limit == 32
    # 20 of the 60 answers of one window are 429s: one cut, not 20
    for i in range(59):
        limit.observe(Signal.BACK_PRESSURE if i % 3 == 0 else Signal.OK, 0.05)
    run_window(limit, t, 0.05, Signal.BACK_PRESSURE)
    assert limit.limit == 16
    run_window(limit, t, 0.05)
    run_window(limit, t, 0.05)
    assert limit.limit == 18


def test_adaptive_backs_off_when_the_round_trip_grows_past_the_baseline() -> None:
    t = FakeTime()
    limit = ConcurrencyLimit(64, Mode.ADAPTIVE, clock=t.clock)
    for _ in range(4):
        run_window(limit, t, 0.05)  # baseline 50 ms
    before = limit.limit
    run_window(limit, t, 0.06)  # near the baseline: still growing
    assert limit.limit > before
    grown = limit.limit
    run_window(limit, t, 0.2)  # queueing at the API: 4x the baseline
    assert limit.limit < grown


@pytest.mark.parametrize("signal", [Signal.FAILED, Signal.BACK_PRESSURE])
def test_an_outage_restarts_adaptive_at_one_and_slow_starts_back(signal: Signal) -> None:
    t = FakeTime()
    limit = ConcurrencyLimit(64, Mode.ADAPTIVE, clock=t.clock)
    for _ in range(6):
        run_window(limit, t, 0.05)
    assert limit.limit == 64
    outage = [limit.observe(signal, 0.01) for _ in range(OUTAGE_RUN)]
    assert outage[-1] and not any(outage[:-1])
    assert limit.limit == 1
    seen = []
    for _ in range(7):
        run_window(limit, t, 0.05)
        seen.append(limit.limit)
    assert seen == [2, 4, 8, 16, 32, 64, 64]


def test_a_fixed_limit_stays_through_an_outage() -> None:
    # it never queues a request, so the circuit's probe never waits behind stale ones
    t = FakeTime()
    limit = ConcurrencyLimit(64, Mode.FIXED, clock=t.clock)
    assert [limit.observe(Signal.FAILED, 0.01) for _ in range(OUTAGE_RUN)][-1]
    assert limit.limit == 64


async def test_waiters_get_places_as_the_limit_allows() -> None:
    t = FakeTime()
    limit = ConcurrencyLimit(4, Mode.ADAPTIVE, clock=t.clock)  # starts at 1
    await limit.acquire()
    waiters = [asyncio.create_task(limit.acquire()) for _ in range(3)]
    await settle()
    assert limit.in_flight == 1 and not any(w.done() for w in waiters)
    t.now += MIN_WINDOW
    limit.observe(Signal.OK, 0.01)  # window reached its limit: doubles to 2
    await settle()
    assert limit.in_flight == 2 and sum(w.done() for w in waiters) == 1
    waiters[2].cancel()
    limit.release()
    await settle()
    assert limit.in_flight == 2 and waiters[1].done()


# --- the gate -------------------------------------------------------------------------------


async def test_one_429_pauses_every_request_for_its_retry_after() -> None:
    t = FakeTime()
    gate = RequestGate(GateConfig(max_in_flight=8), clock=t.clock, sleep=t.sleep)
    async with gate.slot() as slot:
        slot.answered(429, 3.0)
    assert gate.pause.remaining == pytest.approx(3.0)
    others = [asyncio.create_task(_one_request(gate)) for _ in range(5)]
    t.advance(2.0)
    await settle()
    assert not any(o.done() for o in others)
    t.advance(1.0)
    await settle()
    assert all(o.done() for o in others)


async def test_a_429_without_retry_after_pauses_for_the_default_a_bare_503_does_not() -> None:
    t = FakeTime()
    gate = RequestGate(clock=t.clock, sleep=t.sleep)
    async with gate.slot() as slot:
        slot.answered(503)  # a failure (a brownout): the breaker's business, not a pause
    assert gate.pause.remaining == 0
    async with gate.slot() as slot:
        slot.answered(503, 2.0)  # a 503 that says for how long
    assert gate.pause.remaining == pytest.approx(2.0)
    t.advance(2.0)
    async with gate.slot() as slot:
        slot.answered(429)
    assert gate.pause.remaining == pytest.approx(DEFAULT_PAUSE)


async def test_a_refusal_raised_after_the_answer_is_no_failure() -> None:
    t = FakeTime()
    gate = RequestGate(clock=t.clock, sleep=t.sleep)
    for _ in range(OUTAGE_RUN):
        with pytest.raises(ValueError):
            async with gate.slot() as slot:
                slot.answered(422)
                raise ValueError("refused")
    assert gate.concurrency.limit == 64 and gate.concurrency.in_flight == 0


async def test_a_run_of_errors_restarts_the_limit_and_the_bucket_low() -> None:
    t = FakeTime()
    config = GateConfig(max_in_flight=8, mode=Mode.ADAPTIVE, rate=100)
    gate = RequestGate(config, clock=t.clock, sleep=t.sleep)
    for _ in range(OUTAGE_RUN):
        with pytest.raises(ConnectionError):
            async with gate.slot():
                raise ConnectionError("refused")
    assert gate.concurrency.limit == 1
    assert gate.bucket is not None
    t.now += 30  # the outage lasts: the bucket fills, but the first answer empties it
    await _one_request(gate)
    assert gate.bucket.current_rate() == pytest.approx(100 * RAMP_FLOOR)
    assert gate.bucket.tokens <= 0


async def _one_request(gate: RequestGate) -> None:
    async with gate.slot() as slot:
        slot.answered(200)


async def test_a_paced_request_takes_one_token_not_two() -> None:
    """``paced`` takes the token before the request exists (an envelope is packed after it);
    the first slot of the same task takes none, a retry's slot takes its own."""
    t = FakeTime()
    gate = RequestGate(GateConfig(rate=1, burst=2), clock=t.clock, sleep=t.sleep)
    assert gate.bucket is not None
    async with gate.paced():
        assert gate.bucket.tokens == 1
        async with gate.slot() as slot:  # the request the token was taken for
            slot.answered(202)
        assert gate.bucket.tokens == 1
        async with gate.slot() as slot:  # a retry
            slot.answered(202)
    assert gate.bucket.tokens == 0
