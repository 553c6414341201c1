"""Deliverer: the retry loop under a breaker and a budget, with a scripted sender and fake time."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import pytest

from relay.errors import TransientError
from relay.health import Health
from relay.metrics import EVENTS_HELD, REGISTRY, RETRIES
from relay.pipeline.stages import rejection_of
from relay.resilience import Backoff, CircuitBreaker, CircuitState, RetriesExhausted
from relay.timeback.client import SendResult
from relay.timeback.delivery import Deliverer
from relay.timeback.errors import (
    ApiSystemicError,
    ApiTransientError,
    EventRejected,
    RequestRejected,
)
from relay.timeback.responses import Outcome

OK = SendResult(202, Outcome.DELIVERED)


class AutoTime:
    """Fake monotonic time: sleeping advances the clock instantly (and yields)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class Sender:
    """Answers ``send_event`` from a script; each attempt takes ``latency`` fake seconds."""

    def __init__(self, time: AutoTime, *script: SendResult | BaseException, latency: float = 0):
        self.time = time
        self.script = list(script)
        self.latency = latency
        self.calls = 0
        self.times: list[float] = []

    async def send_event(self, payload: bytes, *, event_type: str) -> SendResult:
        self.calls += 1
        self.times.append(self.time.now)
        self.time.now += self.latency
        answer = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer


GOOD = b'{"id": "good"}'  # an event the API takes, every time


class Canaried(Sender):
    """A ``Sender`` whose script answers every request but ``GOOD``'s, which is always taken:
    the API works for other events (the Deliverer's canary is ``GOOD`` sent again)."""

    def __init__(self, time: AutoTime, *script: SendResult | BaseException, latency: float = 0):
        super().__init__(time, *script, latency=latency)
        self.canaries = 0

    async def send_event(self, payload: bytes, *, event_type: str) -> SendResult:
        if payload == GOOD:
            self.canaries += event_type.startswith("canary")
            return OK
        return await super().send_event(payload, event_type=event_type)


async def taking_others(d: Deliverer) -> Deliverer:
    """``d`` once the API took an event: that event is its canary from now on."""
    await d.deliver(GOOD, event_type="GradeEvent")
    return d


def transient(cause: str = "503", retry_after: float | None = None) -> ApiTransientError:
    return ApiTransientError(
        f"HTTP {cause}", endpoint="events", cause=cause, retry_after=retry_after
    )


class MaxRandom(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b  # the top of the jitter range: deterministic delays


def deliverer(
    sender: Sender,
    time: AutoTime,
    *,
    budget: float = 100,
    threshold: int = 5,
    open_for: float = 10,
    cap: float = 8,
    retry_after_cap: float = 60,
    canary_after: float = 0,
) -> Deliverer:
    """A Deliverer on ``time``; a canary at the first failure without evidence unless
    ``canary_after`` says otherwise (the default of relay run waits a quarter of the budget)."""
    breaker = CircuitBreaker(threshold, open_for, clock=time.clock, sleep=time.sleep)
    backoff = Backoff(1, cap, rng=MaxRandom())
    return Deliverer(
        sender, breaker, backoff, budget, retry_after_cap, sleep=time.sleep, clock=time.clock,
        canary_after=canary_after,
    )  # fmt: skip


def sent(event_type: str, outcome: str) -> float:
    """As a scrape reads it: a collection adds the tallied counts first (relay.metrics)."""
    labels = {"type": event_type, "outcome": outcome}
    return REGISTRY.get_sample_value("timeback_relay_events_sent_total", labels) or 0.0


async def test_first_attempt_delivers() -> None:
    t = AutoTime()
    before = sent("GradeEvent", "delivered")
    result = await deliverer(Sender(t, OK), t).deliver(b"{}", event_type="GradeEvent")
    assert result == SendResult(202, Outcome.DELIVERED, attempts=1)
    assert sent("GradeEvent", "delivered") == before + 1
    assert t.sleeps == []


async def test_duplicate_counts_as_taken() -> None:
    t = AutoTime()
    before = sent("GradeEvent", "duplicate")
    sender = Sender(t, SendResult(409, Outcome.DUPLICATE))
    result = await deliverer(sender, t).deliver(b"{}", event_type="GradeEvent")
    assert result.outcome is Outcome.DUPLICATE
    assert sent("GradeEvent", "duplicate") == before + 1


async def test_transient_failures_back_off_then_deliver() -> None:
    t = AutoTime()
    retries = RETRIES.labels(endpoint="events", cause="503")._value.get()
    sender = Sender(t, transient(), transient(), transient(), OK)
    d = deliverer(sender, t)
    result = await d.deliver(b"{}", event_type="ViewEvent")
    assert result.attempts == 4
    assert t.sleeps == [1, 2, 4]  # full jitter at its ceiling: base * 2**attempt
    assert RETRIES.labels(endpoint="events", cause="503")._value.get() == retries + 3
    assert d.breaker.state is CircuitState.CLOSED


async def test_retry_after_is_honoured_and_capped() -> None:
    t = AutoTime()
    sender = Sender(t, transient("429", retry_after=5), transient("429", retry_after=500), OK)
    await deliverer(sender, t, retry_after_cap=30).deliver(b"{}", event_type="ViewEvent")
    assert t.sleeps == [5, 30]  # max(backoff, Retry-After), Retry-After capped


async def test_budget_exhausted_is_a_rejection_naming_the_cause() -> None:
    t = AutoTime()
    sender = Canaried(t, transient("timeout"), latency=2)
    d = await taking_others(deliverer(sender, t, budget=20, threshold=100))
    with pytest.raises(RetriesExhausted) as caught:
        await d.deliver(b"{}", event_type="X")
    rejection = rejection_of(caught.value)  # the pipeline's name for it
    assert (rejection.stage, rejection.reason) == ("deliver", "retries-exhausted")
    assert "timeout" in rejection.detail
    # attempts 2 s each, sleeps 1, 2, 4, 8 (capped): 2+1+2+2+2+4+2 = 15, then 15+2+8 > 20
    assert t.sleeps == [1, 2, 4]
    assert sender.calls == 4
    assert t.now <= 20


async def test_waiting_for_an_open_circuit_costs_no_budget() -> None:
    t = AutoTime()
    # Fails twice (opening the circuit for 1000 s), then the API is back.
    sender = Sender(t, transient(), transient(), OK)
    d = deliverer(sender, t, budget=10, threshold=2, open_for=1000)
    result = await d.deliver(b"{}", event_type="X")
    assert result.attempts == 3
    assert t.now >= 1000  # it waited out the open circuit...
    assert d.breaker.state is CircuitState.CLOSED  # ...and its success, as the probe, closed it


async def test_systemic_is_retried_slowly_and_never_dead_lettered() -> None:
    t = AutoTime()
    forbidden = ApiSystemicError("HTTP 403", endpoint="events", status=403)
    sender = Sender(t, *[forbidden] * 50, OK)
    d = deliverer(sender, t, budget=10, threshold=3, open_for=5, cap=8)
    result = await d.deliver(b"{}", event_type="X")  # 50 systemic failures, far past the budget
    assert result.attempts == 51
    gaps = [b - a for a, b in zip(sender.times, sender.times[1:], strict=False)]
    assert min(gaps) >= 8  # slow: at least the backoff cap between attempts
    assert d.breaker.state is CircuitState.CLOSED


async def test_systemic_answers_never_open_the_circuit() -> None:
    # The API answered (if with a refusal): a few held events must not pause everyone else.
    t = AutoTime()
    forbidden = ApiSystemicError("HTTP 403", endpoint="events", status=403)
    states: list[CircuitState] = []
    d = deliverer(Sender(t, *[forbidden] * 10, OK), t, threshold=2)
    d.breaker._on_change = lambda old, new: states.append(new)
    await d.deliver(b"{}", event_type="X")
    assert states == []
    assert d.breaker.state is CircuitState.CLOSED


class Gate:
    """Fake time whose sleeps wait for ``opened``: a test runs other deliveries meanwhile."""

    def __init__(self, time: AutoTime) -> None:
        self.time = time
        self.opened = asyncio.Event()
        self.sleeping = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.time.now += seconds
        self.sleeping.set()
        await self.opened.wait()


class OneRefused:
    """Refuses the payload ``b"bad"`` with ``error`` every time; takes every other one."""

    def __init__(self, time: AutoTime, error: Exception) -> None:
        self.time, self.error = time, error

    async def send_event(self, payload: bytes, *, event_type: str) -> SendResult:
        self.time.now += 0.1
        if payload == b"bad":
            raise self.error
        return OK


@pytest.mark.parametrize("status", [403, 404, 301, 401])
async def test_a_systemic_answer_for_one_event_while_others_are_taken_is_its_own(
    status: int,
) -> None:
    t, health = AutoTime(), Health()
    gate = Gate(t)
    refused = ApiSystemicError(f"HTTP {status}", endpoint="events", status=status)
    breaker = CircuitBreaker(5, 10, clock=t.clock, sleep=t.sleep)
    d = Deliverer(
        OneRefused(t, refused), breaker, Backoff(1, 8), 100, 60,
        health=health, sleep=gate.sleep, clock=t.clock,
    )  # fmt: skip
    held = asyncio.create_task(d.deliver(b"bad", event_type="X"))
    await gate.sleeping.wait()  # its first answer: held, and /readyz says so
    assert not health.api_accepting
    assert f"HTTP {status}" in health.reasons()["api_accepting"]
    assert EVENTS_HELD.labels(status=str(status))._value.get() == 1
    await d.deliver(b"good", event_type="X")  # sent after it, and taken
    gate.opened.set()
    with pytest.raises(RequestRejected) as caught:
        await held
    assert caught.value.status == status
    assert rejection_of(caught.value).reason == "api-rejected"
    assert health.api_accepting
    assert EVENTS_HELD.labels(status=str(status))._value.get() == 0


async def test_a_systemic_answer_to_every_request_is_held_and_reported() -> None:
    t, health = AutoTime(), Health()
    forbidden = ApiSystemicError("HTTP 403", endpoint="events", status=403)
    held_meanwhile: list[bool] = []

    async def sleep(seconds: float) -> None:
        held_meanwhile.append(health.api_accepting)
        await t.sleep(seconds)

    breaker = CircuitBreaker(5, 10, clock=t.clock, sleep=t.sleep)
    sender = Sender(t, *[forbidden] * 20, OK)
    d = Deliverer(sender, breaker, Backoff(1, 8), 1, 60, health=health, sleep=sleep, clock=t.clock)
    result = await d.deliver(b"{}", event_type="X")  # nothing else taken: never its own fault
    assert result.attempts == 21
    assert held_meanwhile == [False] * 20
    assert health.api_accepting  # released once taken


async def test_a_brownout_pauses_the_budget() -> None:
    t = AutoTime()
    # 30 failures at the 0.5 s cap: all within the 30 s window of the others' failures
    sender = Canaried(t, *[transient()] * 30, OK)
    d = await taking_others(deliverer(sender, t, budget=2, threshold=1000, cap=0.5))
    for ok in [True] * 5 + [False] * 4:  # other records: 40 % failing lately
        d.rate.record(ok=ok)
    result = await d.deliver(b"{}", event_type="X")  # 30 failures, far past a 2 s budget
    assert result.attempts == 31


async def test_one_record_failing_while_the_others_get_through_spends_its_budget() -> None:
    t = AutoTime()
    sender = Canaried(t, transient())
    d = await taking_others(deliverer(sender, t, budget=2, threshold=1000))
    for _ in range(200):  # the others' successes: a low failure rate
        d.rate.record(ok=True)
    with pytest.raises(RetriesExhausted):
        await d.deliver(b"{}", event_type="X")


async def test_one_event_failing_alone_is_proven_its_own_by_a_canary() -> None:
    """Issue 23 item 1: the only request left is the failing event's. Each failure sends the
    last event the API took again; taken, the failure is the event's own: its budget runs, and
    the circuit stays closed however many times it fails (default threshold of 5)."""
    t = AutoTime()
    sender = Canaried(t, transient("500"))
    d = await taking_others(deliverer(sender, t, budget=30))
    with pytest.raises(RetriesExhausted):
        await d.deliver(b"{}", event_type="X")
    assert sender.calls > 5 and sender.canaries >= sender.calls - 1  # a canary per failure
    assert d.breaker.state is CircuitState.CLOSED
    assert d.rate.rate <= 0.5  # GOOD once, the event's failures once: no brownout


async def test_a_canary_waits_until_the_request_has_failed_alone_for_a_while() -> None:
    """A canary is a duplicate at the API: a request failing with no other evidence sends one
    only once it has failed for ``canary_after`` seconds (a blip at the tail of a backlog clears
    before then); the bad event is still dead-lettered, its budget counted from the canary on."""
    t = AutoTime()
    sender = Canaried(t, transient("500"))
    d = await taking_others(deliverer(sender, t, budget=30, cap=4, canary_after=10))
    first_canary_at: list[float] = []
    send = sender.send_event

    async def noting(payload: bytes, *, event_type: str) -> SendResult:
        if event_type.startswith("canary") and not first_canary_at:
            first_canary_at.append(t.now)
        return await send(payload, event_type=event_type)

    sender.send_event = noting  # type: ignore[method-assign]
    with pytest.raises(RetriesExhausted):
        await d.deliver(b"{}", event_type="X")
    assert first_canary_at and first_canary_at[0] >= 10  # none in the first 10 s of failures
    assert sender.canaries >= 1
    assert t.now <= 10 + 30 + 4  # canary_after + budget + one backoff cap: bounded


async def test_one_event_failing_while_nothing_is_taken_spends_no_budget() -> None:
    """Before any event was taken there is no canary: nothing shows the API works, so the event
    waits (an outage with one record in flight is no reason to dead-letter it)."""
    t = AutoTime()
    sender = Canaried(t, *[transient("500")] * 50, OK)
    d = deliverer(sender, t, budget=2, threshold=1000, cap=1)
    result = await d.deliver(b"{}", event_type="X")
    assert result.attempts == 51 and sender.canaries == 0


async def test_a_failing_canary_is_no_evidence() -> None:
    """The API down for everyone: the canary fails too, the budget does not run and the
    circuit opens (a failure of the API, not of the event)."""
    t = AutoTime()
    sender = Canaried(t, *[transient("503")] * 20, OK)
    d = await taking_others(deliverer(sender, t, budget=2, threshold=3, open_for=5))
    sender.send_event = sender_down(sender, until=21)  # type: ignore[method-assign]
    result = await d.deliver(b"{}", event_type="X")
    assert result.attempts == 21  # never exhausted: far past 2 s of fake time
    assert t.now > 2


def sender_down(sender: Canaried, until: int) -> Callable[..., Awaitable[SendResult]]:
    """``sender.send_event`` failing every request, the canary too, for ``until`` scripted
    answers."""
    inner = Canaried.send_event.__get__(sender)

    async def send_event(payload: bytes, *, event_type: str) -> SendResult:
        if payload == GOOD and sender.calls < until:
            raise transient("503")
        return await inner(payload, event_type=event_type)

    return send_event


async def test_an_envelope_failing_while_others_are_taken_is_given_up_at_once() -> None:
    """No budget for an envelope: its first failure while the API takes others raises, for
    the batcher to split it (one bad event must not hold N records for a whole budget)."""
    t = AutoTime()
    sender = Canaried(t, transient("500"))
    d = await taking_others(deliverer(sender, t, budget=900))
    with pytest.raises(RetriesExhausted):
        await d.deliver_envelope(b"{}", event_types=["X"] * 20, canary=b"{}")
    assert sender.calls == 1


async def test_spending_budget_keeps_liveness() -> None:
    """A record spending its budget is no stall: Health hears of each charged failure."""
    t = AutoTime()
    health = Health(stall_after=5, clock=t.clock)
    sender = Canaried(t, transient("500"), latency=1)
    breaker = CircuitBreaker(5, 10, clock=t.clock, sleep=t.sleep)
    d = Deliverer(
        sender, breaker, Backoff(1, 2, rng=MaxRandom()), 60, 60,
        health=health, sleep=t.sleep, clock=t.clock,
    )  # fmt: skip
    await taking_others(d)
    with pytest.raises(RetriesExhausted):
        await d.deliver(b"{}", event_type="X")
    assert t.now >= 60  # twelve stall limits, and yet:
    assert health.liveness(lagging=True) is None


async def test_rejection_propagates_and_counts_as_the_api_answering() -> None:
    t = AutoTime()
    before = sent("X", "rejected")
    refused = EventRejected("bad", status=400, body="{}")
    d = deliverer(Sender(t, transient(), refused), t, threshold=2)
    with pytest.raises(RequestRejected) as caught:
        await d.deliver(b"{}", event_type="X")
    assert caught.value is refused
    assert sent("X", "rejected") == before + 1
    d.breaker.record_failure()  # the run of failures was reset by the rejection
    assert d.breaker.state is CircuitState.CLOSED


async def test_plain_transient_error_is_retried() -> None:
    t = AutoTime()
    d = deliverer(Sender(t, TransientError("registry down"), OK), t)
    assert (await d.deliver(b"{}", event_type="X")).attempts == 2


async def test_cancellation_propagates_during_an_attempt() -> None:
    t = AutoTime()
    started = asyncio.Event()

    class Hanging:
        async def send_event(self, payload: bytes, *, event_type: str) -> SendResult:
            started.set()
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    d = deliverer(Sender(t, OK), t)
    d._client = Hanging()
    task = asyncio.create_task(d.deliver(b"{}", event_type="X"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancellation_propagates_during_backoff() -> None:
    sleeping = asyncio.Event()
    t = AutoTime()

    async def slow_sleep(seconds: float) -> None:
        sleeping.set()
        await asyncio.Event().wait()

    d = deliverer(Sender(t, transient()), t)
    d.retry.sleep = slow_sleep
    task = asyncio.create_task(d.deliver(b"{}", event_type="X"))
    await sleeping.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancelled_probe_lets_another_record_probe() -> None:
    t = AutoTime()
    gate = asyncio.Event()
    probing = asyncio.Event()

    class Api:
        calls = 0

        async def send_event(self, payload: bytes, *, event_type: str) -> SendResult:
            self.calls += 1
            if self.calls == 1:
                raise transient()  # opens the circuit (threshold 1)
            if self.calls == 2:
                probing.set()
                await gate.wait()  # the probe hangs until cancelled
            return OK

    d = deliverer(Sender(t, OK), t, threshold=1, open_for=5)
    d._client = Api()
    probe = asyncio.create_task(d.deliver(b"a", event_type="X"))
    await probing.wait()
    other = asyncio.create_task(d.deliver(b"b", event_type="X"))
    for _ in range(10):
        await asyncio.sleep(0)
    assert not other.done()  # waits behind the probe
    probe.cancel()
    assert (await asyncio.wait_for(other, 1)).outcome is Outcome.DELIVERED
    assert d.breaker.state is CircuitState.CLOSED


async def test_a_long_outage_dead_letters_nothing() -> None:
    t = AutoTime()
    # Down for 200 attempts (hours of fake time with growing open periods), then back.
    sender = Sender(t, *[transient("503")] * 200, OK, latency=1)
    d = deliverer(sender, t, budget=10, threshold=2, open_for=5)
    result = await d.deliver(b"{}", event_type="X")
    assert result.attempts == 201
    assert t.now > 10 * 60  # far beyond the budget, all of it in an open circuit or probing
    assert d.breaker.state is CircuitState.CLOSED


class Naming(Sender):
    """A ``Sender`` that also notes what each request was called (the client's messages)."""

    def __init__(self, time: AutoTime, *script: SendResult | BaseException) -> None:
        super().__init__(time, *script)
        self.names: list[str] = []

    async def send_event(self, payload: bytes, *, event_type: str) -> SendResult:
        self.names.append(event_type)
        return await super().send_event(payload, event_type=event_type)


async def test_a_delivered_envelope_counts_each_of_its_events() -> None:
    t = AutoTime()
    sender = Naming(t, transient(), OK)
    grades, views = sent("GradeEvent", "delivered"), sent("ViewEvent", "delivered")
    types = ["GradeEvent", "ViewEvent", "GradeEvent"]
    result = await deliverer(sender, t).deliver_envelope(b"{}", event_types=types)
    assert result == SendResult(202, Outcome.DELIVERED, attempts=2)  # retried as one request
    assert sender.names == ["envelope of 3 events"] * 2
    assert (sent("GradeEvent", "delivered"), sent("ViewEvent", "delivered")) == (
        grades + 2,
        views + 1,
    )


@pytest.mark.parametrize("answer", [SendResult(409, Outcome.DUPLICATE), "rejected"])
async def test_a_refused_or_duplicate_envelope_counts_nothing(answer: object) -> None:
    # Its events go again in smaller requests (relay.timeback.envelopes), counted there.
    t = AutoTime()
    refused = RequestRejected(
        "the API refused the envelope", endpoint="events", status=400, body=""
    )
    sender = Sender(t, refused if answer == "rejected" else answer)  # type: ignore[arg-type]
    before = {o: sent("AssessmentEvent", o) for o in ("delivered", "duplicate", "rejected")}
    d = deliverer(sender, t)
    if answer == "rejected":
        with pytest.raises(RequestRejected):
            await d.deliver_envelope(b"{}", event_types=["AssessmentEvent"] * 2)
    else:
        result = await d.deliver_envelope(b"{}", event_types=["AssessmentEvent"] * 2)
        assert result.outcome is Outcome.DUPLICATE
    assert {o: sent("AssessmentEvent", o) for o in before} == before


async def test_a_held_envelope_holds_each_of_its_events() -> None:
    t, health = AutoTime(), Health()
    gate = Gate(t)
    forbidden = ApiSystemicError("HTTP 403", endpoint="events", status=403)
    breaker = CircuitBreaker(5, 10, clock=t.clock, sleep=t.sleep)
    d = Deliverer(
        OneRefused(t, forbidden), breaker, Backoff(1, 8), 100, 60,
        health=health, sleep=gate.sleep, clock=t.clock,
    )  # fmt: skip
    held = asyncio.create_task(d.deliver_envelope(b"bad", event_types=["X"] * 20))
    await gate.sleeping.wait()
    assert EVENTS_HELD.labels(status="403")._value.get() == 20
    await d.deliver(b"good", event_type="X")
    gate.opened.set()
    with pytest.raises(RequestRejected, match="envelope of 20 events alone"):
        await held
    assert EVENTS_HELD.labels(status="403")._value.get() == 0 and health.api_accepting


async def test_busy_traffic_proves_a_failure_its_own_without_a_canary() -> None:
    """A request started after the failing attempt is still in flight when it fails, and is
    taken soon after: that is the evidence, and no event is sent twice (no canary)."""
    t = AutoTime()
    fail, release = asyncio.Event(), asyncio.Event()

    class Busy(Canaried):
        async def send_event(self, payload: bytes, *, event_type: str) -> SendResult:
            if payload == b"other":
                await release.wait()
                return OK
            if payload == b"{}" and not fail.is_set():
                await fail.wait()
                raise transient("500")
            return await super().send_event(payload, event_type=event_type)

    sender = Busy(t, OK)
    d = await taking_others(deliverer(sender, t, budget=100))
    t.now = 5
    failing = asyncio.create_task(d.deliver(b"{}", event_type="X"))
    await asyncio.sleep(0)
    t.now = 6  # the other request starts after the failing attempt did
    other = asyncio.create_task(d.deliver(b"other", event_type="X"))
    await asyncio.sleep(0)
    fail.set()
    await asyncio.sleep(0.05)
    release.set()
    results = await asyncio.gather(failing, other)
    assert results[0].attempts == 2
    assert sender.canaries == 0


async def test_a_lone_bad_event_probing_after_an_outage_cannot_hold_the_circuit_open() -> None:
    """An outage opens the circuit; it ends, but the only request left is a bad event, so it
    is every probe. Its first probe failure re-opens the circuit (the outage may go on); the
    next sends a canary, which is taken: the circuit closes and the event's budget runs."""
    t = AutoTime()
    sender = Canaried(t, transient("500"))
    d = await taking_others(deliverer(sender, t, budget=30, threshold=2, open_for=5))
    sender.send_event = sender_down(sender, until=10)  # type: ignore[method-assign]
    with pytest.raises(RetriesExhausted):
        await d.deliver(b"{}", event_type="X")
    assert d.breaker.state is CircuitState.CLOSED
    assert sender.canaries >= 1
