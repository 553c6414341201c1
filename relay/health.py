"""Health: what /livez and /readyz say, and why.

One ``Health`` per runtime, injected into the components that have something to say: the token
manager (token obtained, refused, lost), each circuit breaker (through its ``on_change``), the
dead-letter writer (writes failing, recovered), the consumer (partitions assigned) and the
dispatcher (a processing bug blocked a partition), the deliverer (events held by a systemic
answer: 403, 404, 3xx, a second 401), the Kafka login watch (the brokers refuse the relay's
credentials). Each reports a ``Condition`` (the names are Health's) as a
``source``, so two breakers are two sources and never overwrite each other; a condition holds
while none of its sources reports it false. The views read ``readiness()``, ``reasons()`` and
``liveness()``; the READY gauge follows every report.

Reasons are the components' own messages, which never carry secrets.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

from relay.metrics import READY
from relay.resilience.breaker import CircuitState, OnChange


class Condition(enum.StrEnum):
    """The readiness conditions: /readyz is ready when every one holds."""

    ASSIGNED = "assigned"  # the consumer has partitions
    TOKEN_VALID = "token_valid"  # the API's access token is valid
    CIRCUIT_CLOSED = "circuit_closed"  # every circuit breaker is closed
    DLQ_HEALTHY = "dlq_healthy"  # dead letters can be written
    API_ACCEPTING = "api_accepting"  # no event held by a systemic answer
    KAFKA_LOGIN = "kafka_login"  # the brokers accept the relay's login


class _Condition:
    """A readiness condition read as an attribute: ``health.token_valid``."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.condition = Condition(name)

    def __get__(self, health: Health, owner: type | None = None) -> bool:
        return not health._faults[self.condition]


class Health:
    assigned = _Condition()
    token_valid = _Condition()
    circuit_closed = _Condition()
    dlq_healthy = _Condition()
    api_accepting = _Condition()  # no event held by a systemic answer
    kafka_login = _Condition()  # the brokers accept the relay's credentials (auth_watch.py)

    def __init__(
        self, *, stall_after: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stall_after = stall_after
        self._clock = clock
        self._faults: dict[Condition, dict[str, str]] = {condition: {} for condition in Condition}
        self._faults[Condition.ASSIGNED]["consumer"] = "no partitions assigned yet"
        self._faults[Condition.TOKEN_VALID]["token"] = "no access token yet"
        self._broken: dict[str, str] = {}  # source -> why the process must be restarted
        self.last_progress = clock()  # last acknowledgement or budget spent (or start)
        self._publish()

    # -- reports ------------------------------------------------------------------------------

    def report(self, condition: Condition, ok: bool, why: str = "", *, source: str = "") -> None:
        """``condition`` holds (or not, because ``why``) as far as ``source`` knows."""
        faults = self._faults[condition]  # KeyError: not a readiness condition
        if ok:
            faults.pop(source, None)
        else:
            faults[source] = why or f"{condition} is false"
        self._publish()

    def broke(self, why: str, *, source: str = "processing") -> None:
        """Only a restart helps (a partition is blocked): liveness fails, saying ``why``."""
        self._broken[source] = why

    def progressed(self) -> None:
        self.last_progress = self._clock()

    def spending(self) -> None:
        """A record spent retry budget (it failed while the API took others): it ends delivered
        or dead-lettered within that budget, so the process is working, not stalled. Without
        this, a budget longer than ``stall_after`` would restart the relay before the record's
        dead letter, and the restarted relay would start its budget again, forever."""
        self.last_progress = self._clock()

    def circuit_observer(self, name: str) -> OnChange:
        """An ``on_change`` for the breaker called ``name``."""

        def changed(old: CircuitState, new: CircuitState) -> None:
            closed = new is CircuitState.CLOSED
            why = f"circuit {name} is {new.value}"
            self.report(Condition.CIRCUIT_CLOSED, closed, why, source=name)

        return changed

    # -- readiness ----------------------------------------------------------------------------

    def readiness(self) -> dict[str, bool]:
        return {condition.value: not faults for condition, faults in self._faults.items()}

    def reasons(self) -> dict[str, str]:
        """Why each false condition is false (empty when ready)."""
        return {c.value: "; ".join(f.values()) for c, f in self._faults.items() if f}

    @property
    def ready(self) -> bool:
        return not any(self._faults.values())

    def _publish(self) -> None:
        READY.set(1 if self.ready else 0)

    # -- liveness -----------------------------------------------------------------------------

    @property
    def broken(self) -> str | None:
        return "; ".join(self._broken.values()) or None

    def liveness(self, lagging: bool) -> str | None:
        """None while live; else why not: a bug blocked a partition, or for ``stall_after``
        seconds while there is lag no record was acknowledged nor spent retry budget."""
        if self._broken:
            return self.broken
        idle = self._clock() - self.last_progress
        if lagging and idle >= self.stall_after:
            return (
                f"no record acknowledged for {idle:.0f} s while the consumer lags, "
                "and none is spending its retry budget"
            )
        return None

    def live(self, lagging: bool) -> bool:
        return self.liveness(lagging) is None
