"""Fault specs: validation, merging, seeded decisions and outage windows (with a fake clock)."""

from __future__ import annotations

from typing import Any

import pytest

from relay.sandbox.faults import RESET, UNAVAILABLE, Faults


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def decisions(faults: Faults, n: int = 200, path: str = "/events/1.0") -> list[Any]:
    return [faults.before(path, faults.applies(path)) for _ in range(n)]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"bogus": 1}, "unknown fault keys"),
        ({"seed": "7"}, "seed: must be an integer"),
        ({"paths": ["events"]}, "paths: must be a list of path prefixes"),
        ({"latency_ms": {"fixed": -1}}, "latency_ms.fixed: must be between"),
        ({"latency_ms": {"slow": 1}}, "latency_ms: unknown keys"),
        ({"error_rates": {"200": 0.5}}, "error_rates: unknown keys"),
        ({"error_rates": {"500": 1.5}}, "error_rates.500: must be between"),
        ({"error_rates": {"500": 0.6, "503": 0.6}}, "add up to more than 1"),
        ({"rate_limit": {"retry_after_s": 2}}, "rate_limit: malformed"),
        ({"outages": [{"duration_s": 5, "mode": "teapot"}]}, r"outages\[0\].mode"),
        ({"outages": {"duration_s": 5}}, "outages: must be a list"),
        ({"ack_lost": {"rate": True}}, "ack_lost.rate: must be a number"),
        ({"token_ttl_s": 0}, "token_ttl_s: must be between"),
        ({"token_endpoint_down": "yes"}, "token_endpoint_down: must be '503' or 'reset'"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_bad_specs_are_refused_and_change_nothing(spec: Any, message: str) -> None:
    faults = Faults({"error_rates": {"503": 0.25}})
    with pytest.raises(ValueError, match=message):
        faults.merge(spec)
    assert faults.show()["faults"] == {"error_rates": {"503": 0.25}}


def test_merge_replaces_keys_and_null_clears() -> None:
    faults = Faults({"error_rates": {"500": 0.1}, "token_ttl_s": 5})
    faults.merge({"error_rates": {"503": 0.2}, "token_ttl_s": None, "token_endpoint_down": 503})
    assert faults.show()["faults"] == {
        "error_rates": {"503": 0.2},
        "token_endpoint_down": "503",
    }
    faults.merge({"token_endpoint_down": False})
    assert "token_endpoint_down" not in faults.show()["faults"]
    assert faults.token_ttl_s is None
    faults.clear()
    assert faults.show()["faults"] == {}


def test_same_seed_same_decisions_and_rates_roughly_hold() -> None:
    spec = {"seed": 7, "error_rates": {"500": 0.2, "503": 0.3}, "rate_limit": {"rate": 0.1}}
    first, second = decisions(Faults(spec), 1000), decisions(Faults(spec), 1000)
    assert first == second
    statuses = [d.status if d else None for d in first]
    assert 50 < statuses.count(429) < 150
    assert 120 < statuses.count(500) < 290
    assert 190 < statuses.count(503) < 410
    other = decisions(Faults({**spec, "seed": 8}), 1000)
    assert other != first


def test_rate_limit_carries_retry_after() -> None:
    failure = Faults({"rate_limit": {"rate": 1.0, "retry_after_s": 2.5}}).before("/x", True)
    assert failure is not None and failure.status == 429
    assert failure.headers == {"Retry-After": "3"}
    assert failure.body == {"error": "rate_limited", "retry_after_s": 2.5}


def test_paths_limit_where_faults_apply_and_inspection_is_never_faulted() -> None:
    faults = Faults({"paths": ["/events/1.0"], "error_rates": {"500": 1.0}})
    assert faults.applies("/events/1.0") and faults.applies("/events/1.0/")
    assert not faults.applies("/rostering/1.0/users")
    assert not faults.applies("/sandbox/1.0/stats")
    assert faults.before("/rostering/1.0/users", False) is None
    assert not Faults().applies("/sandbox/1.0/faults")


def test_outage_windows_start_when_set_and_end() -> None:
    clock = Clock()
    faults = Faults(clock=clock)
    faults.merge(
        {
            "outages": [
                {"start_in_s": 10, "duration_s": 5, "mode": "reset"},
                {"start_in_s": 20, "duration_s": 5},
            ]
        }
    )
    timeline = {}
    for t in (0, 9.9, 10, 14.9, 15, 20, 24.9, 25):
        clock.now = 1000.0 + t
        timeline[t] = faults.before("/events/1.0", True)
    assert timeline == {
        0: None,
        9.9: None,
        10: RESET,
        14.9: RESET,
        15: None,
        20: UNAVAILABLE,
        24.9: UNAVAILABLE,
        25: None,
    }
    clock.now = 1021.0
    assert faults.show()["active_outages"] == [{"mode": "503", "ends_in_s": 4.0}]


def test_token_endpoint_down_applies_to_the_token_path_even_outside_paths() -> None:
    faults = Faults({"paths": ["/events/1.0"], "token_endpoint_down": "reset"})
    assert faults.before("/auth/1.0/token", faults.applies("/auth/1.0/token")) is RESET
    assert faults.before("/events/1.0", True) is None


def test_latency_is_fixed_plus_seeded_jitter() -> None:
    faults = Faults({"seed": 3, "latency_ms": {"fixed": 50, "jitter": 200}})
    samples = [faults.latency_s() for _ in range(200)]
    assert all(0.05 <= s <= 0.25 for s in samples)
    assert max(samples) - min(samples) > 0.1
    assert Faults({"latency_ms": {"fixed": 80}}).latency_s() == pytest.approx(0.08)


def test_ack_lost_draws_its_mode() -> None:
    assert Faults({"ack_lost": {"rate": 1.0}}).ack_lost() is UNAVAILABLE
    assert Faults({"ack_lost": {"rate": 1.0, "mode": "reset"}}).ack_lost() is RESET
    assert Faults({"ack_lost": {"rate": 0.0}}).ack_lost() is None


def test_throttle_answers_429_past_its_rate_and_refills() -> None:
    clock = Clock()
    faults = Faults({"throttle": {"rps": 10, "burst": 5, "retry_after_s": 2}}, clock=clock)
    first = decisions(faults, 8)
    assert first[:5] == [None] * 5
    assert all(d is not None and d.status == 429 for d in first[5:])
    assert first[5].headers == {"Retry-After": "2"}
    clock.now += 0.35  # three tokens and a half
    assert [d is None for d in decisions(faults, 4)] == [True, True, True, False]


def test_capacity_queues_requests_past_its_rate() -> None:
    clock = Clock()
    faults = Faults({"capacity": {"rps": 100}}, clock=clock)
    waits = [faults.latency_s() for _ in range(5)]  # five at once: each waits for the ones before
    assert waits == pytest.approx([0.01, 0.02, 0.03, 0.04, 0.05])
    clock.now += 1.0  # idle: the queue is empty again
    assert faults.latency_s() == pytest.approx(0.01)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"throttle": {"burst": 5}}, "throttle: malformed"),
        ({"throttle": {"rps": 0}}, "throttle.rps: must be between"),
        ({"capacity": {"rps": 10, "slope": 1}}, "capacity: unknown keys"),
    ],
)
def test_busy_api_models_are_validated(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Faults(spec)
