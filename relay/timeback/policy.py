"""What a Partner API answer means, and how to wait before asking again.

- ``classify``: the response table of DESIGN.md, one status code to one ``Outcome``.
- ``Backoff``: exponential backoff with full jitter.
- ``parse_retry_after``: the ``Retry-After`` header (seconds or HTTP-date), capped.
- ``CircuitBreaker``: turns a run of failures into a pause, probing the API one request at a time.
- ``ApiTransientError`` / ``ApiSystemicError``: the relay's errors, plus which endpoint failed and
  why (a bounded ``cause`` for metric labels). Messages never carry secrets.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import random
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from relay.errors import SystemicError, TransientError
from relay.metrics import CIRCUIT_STATE, CIRCUIT_TRANSITIONS, HEALTH

log = logging.getLogger(__name__)

# --- classification -------------------------------------------------------------------------


class Outcome(enum.StrEnum):
    """What one API response means for the request that caused it."""

    DELIVERED = "delivered"
    DUPLICATE = "duplicate"  # 409: the API already has it; as good as delivered
    REJECTED = "rejected"  # this request can never succeed as it is
    UNAUTHORIZED = "unauthorized"  # 401: drop the token, refresh once, retry
    SYSTEMIC = "systemic"  # the relay is misconfigured or lacks a scope
    TRANSIENT = "transient"  # retry later


TRANSIENT_STATUSES = frozenset({408, 425, 429})


def classify(status: int, *, endpoint: str = "events") -> Outcome:
    """The response table of DESIGN.md. ``endpoint`` matters for 404 only.

    A 404 on ``events`` means the base URL is wrong (systemic); elsewhere (rostering, xp) it is
    "not found", reported as ``REJECTED`` for the caller to interpret.
    """
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if status == 409:
        return Outcome.DUPLICATE
    if status == 401:
        return Outcome.UNAUTHORIZED
    if status == 403 or (status == 404 and endpoint == "events"):
        return Outcome.SYSTEMIC
    if status in TRANSIENT_STATUSES or 500 <= status < 600:
        return Outcome.TRANSIENT
    if 400 <= status < 500:
        return Outcome.REJECTED
    # 1xx and 3xx never reach us (httpx does not follow redirects): a proxy or a wrong URL.
    return Outcome.SYSTEMIC


class ApiTransientError(TransientError):
    """A transient failure of one request; ``cause`` is ``"503"``, ``"timeout"``, ``"connect"``."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        cause: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.endpoint = endpoint
        self.cause = cause
        self.status = status


class ApiSystemicError(SystemicError):
    """The API refused the relay itself (403, 404 on /events, a second 401, bad credentials)."""

    def __init__(self, message: str, *, endpoint: str, status: int | None = None) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.status = status


# --- backoff and Retry-After ----------------------------------------------------------------


class Backoff:
    """Exponential backoff with full jitter: ``uniform(0, min(cap, base * 2**attempt))``.

    Full jitter spreads retries of many records evenly, so a recovering API is not hit by a
    synchronised wave (AWS architecture blog, "Exponential Backoff and Jitter").
    """

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        if base <= 0 or cap <= 0:
            raise ValueError("backoff base and cap must be > 0")
        self.base = base
        self.cap = cap
        self._rng = rng or random.Random()

    def ceiling(self, attempt: int) -> float:
        # The exponent is bounded so a long outage never overflows a float.
        return min(self.cap, self.base * 2 ** min(max(attempt, 0), 64))

    def delay(self, attempt: int) -> float:
        return self._rng.uniform(0, self.ceiling(attempt))

    def __repr__(self) -> str:
        return f"Backoff(base={self.base}, cap={self.cap})"


_SECONDS = re.compile(r"^[+-]?\d+(\.\d+)?$")


def parse_retry_after(value: str | None, *, now: datetime, cap: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP-date), in [0, cap].

    Returns None when the header is absent or unreadable: the caller then uses its own backoff.
    """
    if value is None:
        return None
    text = value.strip()
    seconds = float(text) if _SECONDS.match(text) else _seconds_until(text, now)
    if seconds is None or not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), cap)


def _seconds_until(text: str, now: datetime) -> float | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:  # pragma: no cover - older Pythons returned None instead of raising
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive result means "-0000"
        when = when.replace(tzinfo=UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return (when - now).total_seconds()


# --- circuit breaker ------------------------------------------------------------------------


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
        HEALTH.circuit_closed = state is CircuitState.CLOSED
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
