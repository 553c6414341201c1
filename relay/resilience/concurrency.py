"""How many requests may be in flight: fixed, or found by AIMD on what the API shows.

``ConcurrencyLimit`` is a semaphore whose size moves between 1 and ``max_limit``. Every answer
is ``observe``d with its round-trip time (of this attempt alone, never of a retry sequence) and
whether it was back pressure: 429, 503, a timeout, a refused or reset connection. Decisions are
taken once per window (about one round trip, at least ``MIN_WINDOW``), never per answer, so 64
requests answered 429 together count as one signal, not 64 cuts.

- adaptive: slow start (the limit doubles each window in which it was reached) up to the
  slow-start threshold, then +1 per such window while the window's mean RTT stays near the
  baseline. The baseline is the lowest window mean of the last ``BASELINE_HORIZON`` seconds, so
  queueing at the API cannot drag it up with it; "near" is ``TOLERANCE`` of it, or
  ``DEVIATION_SCALE`` times the window-to-window spread when the API is jittery, never more
  than ``MAX_RISE`` x the baseline (a spread measured against a rising RTT would otherwise
  widen "near" as fast as the queue grows, and the limit would never come down).
  A window past that: x ``RTT_DECREASE``; a window with back pressure: x ``BACKOFF_DECREASE``.
  Every ``REMEASURE_EVERY`` seconds the limit drops to 1 and slow-starts back, so that the
  baseline is re-measured unloaded (as Envoy's gradient controller re-measures its minRTT).
- fixed: the limit is ``max_limit`` (the relay's behaviour before adaptive concurrency).

When adaptive, ``OUTAGE_RUN`` failures or 429/503s in a row (an outage), and a pause the API
asked for (``restart``, from the gate), drop the limit to 1, and it slow-starts back to the limit
learnt before: a recovering API gets 1, 2, 4, 8... requests a round trip, not the whole backlog
at the same instant. A fixed limit stays where it is (``restart``).
Knows nothing of HTTP or Kafka.
"""

from __future__ import annotations

import asyncio
import enum
import math
import time
from collections import deque
from collections.abc import Callable

MIN_WINDOW = 0.05  # seconds: the shortest decision window (fast APIs answer in ~1 ms)
BASELINE_HORIZON = 30.0  # seconds of window means the baseline RTT is the minimum of
REMEASURE_EVERY = 20.0  # seconds between drops to 1 in flight that re-measure the baseline
TOLERANCE = 0.5  # a window mean up to 1.5 x the baseline is "near" it
DEVIATION_SCALE = 3.0  # ... or up to the baseline + 3 x the spread of uncongested windows
DEVIATION_ALPHA = 0.2  # EWMA weight of one window in that spread
MAX_RISE = 2.0  # ... but never past 2 x the baseline, however jittery
RTT_DECREASE = 0.9  # the limit's cut when the RTT rises (queueing at the API)
BACKOFF_DECREASE = 0.5  # its cut on back pressure (429/503, timeouts, refused connections)
OUTAGE_RUN = 5  # failures in a row, no answer between: an outage


class Mode(enum.StrEnum):
    FIXED = "fixed"
    ADAPTIVE = "adaptive"


class Signal(enum.Enum):
    """What one attempt showed of the API."""

    OK = "ok"  # answered, not overloaded (a 4xx refusal of this request included)
    BACK_PRESSURE = "back-pressure"  # 429, 503 (answered: the API is up but full)
    FAILED = "failed"  # no answer, or a 5xx other than 503


class ConcurrencyLimit:
    """A resizable semaphore: ``acquire``/``release`` around each request, ``observe`` each."""

    def __init__(
        self,
        max_limit: int,
        mode: Mode = Mode.FIXED,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_limit < 1:
            raise ValueError("max_limit must be >= 1")
        self.max_limit = max_limit
        self.mode = mode
        self._clock = clock
        adaptive = mode is Mode.ADAPTIVE
        self._limit = 1.0 if adaptive else float(max_limit)  # adaptive starts low and climbs
        self._threshold = float(max_limit)  # slow start doubles up to here
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._failures_in_a_row = 0
        # the current window
        self._window_start = clock()
        self._rtt_sum = 0.0
        self._answers = 0
        self._pressure = False
        self._reached = False  # the limit was reached at some point of the window
        # RTT history (adaptive)
        self._means: deque[tuple[float, float]] = deque()  # (window end, mean RTT)
        self._mean_rtt: float | None = None
        self._spread = 0.0
        self._remeasure_at = clock() + REMEASURE_EVERY

    @property
    def limit(self) -> int:
        return max(1, math.floor(self._limit))

    @property
    def baseline(self) -> float | None:
        """The lowest window mean RTT of the horizon (None before the first window)."""
        return min(m for _, m in self._means) if self._means else None

    # --- the semaphore ----------------------------------------------------------------------

    async def acquire(self) -> None:
        if self.try_acquire():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted just as it was cancelled: pass it on
            else:
                self._waiters.remove(waiter)
            raise

    def try_acquire(self) -> bool:
        """A place at once if one is free and nobody queues for it (no waiting)."""
        if self.in_flight < self.limit and not self._waiters:
            self._take()
            return True
        return False

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _take(self) -> None:
        self.in_flight += 1
        if self.in_flight >= self.limit:
            self._reached = True

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._take()
                waiter.set_result(None)

    # --- what the API shows -------------------------------------------------------------------

    def observe(self, signal: Signal, rtt: float) -> bool:
        """One attempt's outcome and round-trip time (seconds); True when it made a run of
        failures long enough to call it an outage (the limit restarts at 1)."""
        if signal is not Signal.OK:  # 503s during an outage are back pressure and failure
            self._failures_in_a_row += 1
            if self._failures_in_a_row == OUTAGE_RUN:
                self._outage()
                return True
        else:
            self._failures_in_a_row = 0
        if signal is Signal.OK:
            self._rtt_sum += rtt
            self._answers += 1
        else:
            self._pressure = True
        if self._clock() - self._window_start >= self._window_length():
            self._decide()
        return False

    def _window_length(self) -> float:
        return max(MIN_WINDOW, self._mean_rtt or 0.0)

    def restart(self, learnt: float = 1.0) -> None:
        """Adaptive: down to 1 in flight, to slow-start back to ``learnt`` x the present limit
        (an outage: all of it; a 429: half). Fixed: nothing. A fixed limit never queues a
        request (the dispatcher admits no more than it), so the circuit's probe is never
        stuck behind requests that passed the circuit before it opened."""
        if self.mode is Mode.FIXED:
            return
        self._threshold = max(self._limit * learnt, 2.0)
        self._limit = 1.0
        self._new_window()

    def _outage(self) -> None:
        self.restart()

    def _decide(self) -> None:
        now = self._clock()
        if self._pressure:
            if self.mode is Mode.ADAPTIVE:
                self._cut(BACKOFF_DECREASE)
        elif self._answers:
            mean = self._rtt_sum / self._answers
            previous = self._mean_rtt if self._mean_rtt is not None else mean
            self._mean_rtt = 0.8 * previous + 0.2 * mean
            self._spread += DEVIATION_ALPHA * (abs(mean - previous) - self._spread)
            if self.mode is Mode.ADAPTIVE and self._congested(now, mean):
                self._cut(RTT_DECREASE)
            elif self._reached:
                self._grow()
        if self.mode is Mode.ADAPTIVE and now >= self._remeasure_at:
            # Under lasting load every window is queued, and the baseline (a minimum over the
            # horizon) would rise to the queued RTT. Down to 1 for a few round trips shows the
            # unloaded RTT again; slow start returns to the limit within log2(limit) windows.
            self._remeasure_at = now + REMEASURE_EVERY
            self.restart()
            return
        self._new_window()

    def _congested(self, now: float, mean: float) -> bool:
        while self._means and self._means[0][0] < now - BASELINE_HORIZON:
            self._means.popleft()
        self._means.append((now, mean))
        base = min(m for _, m in self._means)
        near = max(base * (1 + TOLERANCE), base + DEVIATION_SCALE * self._spread)
        return mean > min(near, base * MAX_RISE)

    def _cut(self, ratio: float) -> None:
        self._limit = max(1.0, self._limit * ratio)
        self._threshold = self._limit  # out of slow start: climb by one from here

    def _grow(self) -> None:
        if self._limit < self._threshold:
            self._limit = min(self._limit * 2, self._threshold)
        elif self.mode is Mode.ADAPTIVE:
            self._limit += 1
        self._limit = min(self._limit, float(self.max_limit))
        self._wake()

    def _new_window(self) -> None:
        self._window_start = self._clock()
        self._rtt_sum = 0.0
        self._answers = 0
        self._pressure = False
        self._reached = self.in_flight >= self.limit

    def __repr__(self) -> str:
        return (
            f"ConcurrencyLimit({self.mode.value}, limit={self.limit}/{self.max_limit}, "
            f"in_flight={self.in_flight})"
        )
