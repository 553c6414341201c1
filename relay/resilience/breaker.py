"""The circuit breaker: a run of failures becomes a pause, probing one request at a time."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable

from relay.metrics import CIRCUIT_STATE, CIRCUIT_TRANSITIONS

log = logging.getLogger(__name__)


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


_GAUGE = {CircuitState.CLOSED: 0, CircuitState.OPEN: 1, CircuitState.HALF_OPEN: 2}

OnChange = Callable[[CircuitState, CircuitState], None]


class CircuitBreaker:
    """Closed → open after ``failure_threshold`` consecutive failures; open → half-open after
    ``open_for`` seconds; in half-open exactly one probe runs while every other caller waits.
    A probe success closes the circuit; a probe failure re-opens it for twice as long (up to
    ``max_open_for``), so a long outage is probed less and less often.

    Callers ``await wait_allowed()`` before each attempt, then report ``record_success()`` or
    ``record_failure()``; an attempt that ends without a verdict (cancelled) calls ``abandon()``.
    Verdicts are matched to the probe by asyncio task: results of requests that started before
    the circuit opened are ignored while it is open or half-open.

    ``on_change(old, new)`` is told of every transition: the runtime reports it to Health (so
    two breakers report as two sources, never overwriting each other).
    """

    def __init__(
        self,
        failure_threshold: int,
        open_for: float,
        *,
        max_open_for: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_change: OnChange | None = None,
    ) -> None:
        if failure_threshold < 1 or open_for <= 0:
            raise ValueError("failure_threshold must be >= 1 and open_for > 0")
        self.failure_threshold = failure_threshold
        self.open_for = open_for
        self.max_open_for = max(max_open_for if max_open_for is not None else 60.0, open_for)
        self._clock = clock
        self._sleep = sleep
        self._on_change = on_change
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._current_open_for = open_for
        self._opened_at = 0.0
        self._probe: asyncio.Task[object] | None = None
        self._changed = asyncio.Event()

    @property
    def state(self) -> CircuitState:
        return self._state

    @property
    def reopen_in(self) -> float:
        """Seconds until an open circuit lets a probe through (0 unless open)."""
        if self._state is not CircuitState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self._current_open_for - self._clock())

    async def wait_allowed(self) -> None:
        """Return when this caller may send: at once while closed; else wait (no budget spent)."""
        while True:
            if self._state is CircuitState.CLOSED:
                return
            if self._state is CircuitState.OPEN:
                remaining = self.reopen_in
                if remaining > 0:
                    await self._sleep(remaining)
                    continue
                self._become_probe()
                return
            # Half-open: a probe is out. Take over if it vanished, else wait for its verdict.
            if self._probe is None or self._probe.done():
                self._become_probe()
                return
            await self._changed.wait()

    def record_success(self) -> None:
        if self._state is CircuitState.CLOSED:
            self._failures = 0
        elif self._is_probe():
            self._current_open_for = self.open_for
            self._failures = 0
            self._set(CircuitState.CLOSED)

    def record_failure(self) -> None:
        if self._state is CircuitState.CLOSED:
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._open()
        elif self._is_probe():
            self._current_open_for = min(self._current_open_for * 2, self.max_open_for)
            self._open()

    def abandon(self) -> None:
        """The current task's attempt ended without a verdict: let another caller probe."""
        if self._is_probe():
            self._probe = None
            self._notify()

    def _probe_ended(self, task: asyncio.Task[object]) -> None:
        if self._probe is task:
            self._probe = None
            self._notify()

    def _is_probe(self) -> bool:
        return (
            self._state is CircuitState.HALF_OPEN
            and self._probe is not None
            and self._probe is _current_task()
        )

    def _become_probe(self) -> None:
        self._probe = task = _current_task()
        if task is not None:  # a probe task that ends without a verdict frees the slot
            task.add_done_callback(self._probe_ended)
        if self._state is not CircuitState.HALF_OPEN:
            self._set(CircuitState.HALF_OPEN)

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._failures = 0
        self._set(CircuitState.OPEN)

    def _set(self, state: CircuitState) -> None:
        old, self._state = self._state, state
        if state is not CircuitState.HALF_OPEN:
            self._probe = None
        CIRCUIT_STATE.set(_GAUGE[state])
        CIRCUIT_TRANSITIONS.labels(to=state.value).inc()
        log.info("circuit %s -> %s", old.value, state.value)
        if self._on_change is not None:
            self._on_change(old, state)
        self._notify()

    def _notify(self) -> None:
        # Wake every waiter; they re-check the state. A fresh Event serves the next round.
        self._changed.set()
        self._changed = asyncio.Event()

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(state={self._state.value}, failures={self._failures}, "
            f"threshold={self.failure_threshold}, open_for={self._current_open_for})"
        )


def _current_task() -> asyncio.Task[object] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop: a synchronous caller can never be the probe
        return None
