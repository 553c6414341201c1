"""Health: each component reports as its own source; /readyz and /livez can say why."""

from __future__ import annotations

from relay.health import Health
from relay.resilience import CircuitState


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_not_ready_until_assigned_and_a_token_with_the_reasons() -> None:
    health = Health()
    assert not health.ready
    assert set(health.reasons()) == {"assigned", "token_valid"}
    health.report("assigned", True, source="consumer")
    health.report("token_valid", True, source="token")
    assert health.ready and health.reasons() == {}


def test_two_breakers_never_overwrite_each_other() -> None:
    health = Health()
    events, rostering = health.circuit_observer("events"), health.circuit_observer("rostering")
    events(CircuitState.CLOSED, CircuitState.OPEN)
    rostering(CircuitState.CLOSED, CircuitState.OPEN)
    events(CircuitState.HALF_OPEN, CircuitState.CLOSED)
    assert not health.circuit_closed  # rostering's circuit is still open
    assert health.reasons()["circuit_closed"] == "circuit rostering is open"
    rostering(CircuitState.HALF_OPEN, CircuitState.CLOSED)
    assert health.circuit_closed


def test_liveness_says_why() -> None:
    clock = Clock()
    health = Health(stall_after=10, clock=clock)
    clock.now = 11
    assert health.live(lagging=False)  # idle without lag is fine
    assert "no record acknowledged for 11 s" in (health.liveness(lagging=True) or "")
    health.progressed()
    assert health.live(lagging=True)
    health.broke("processing t[0]@5 raised KeyError", source="t[0]")
    assert health.liveness(lagging=False) == health.broken == "processing t[0]@5 raised KeyError"
