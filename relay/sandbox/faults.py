"""Injected faults: latency, error rates, 429s, outage windows, lost acks, token endpoint down,
and two models of a busy API: ``throttle`` (a real rate limit: past ``rps`` requests per second,
429 with ``Retry-After``) and ``capacity`` (the API serves ``rps`` requests per second; past
that they queue, so latency grows with the load, as a saturated server's does).

A fault spec: docs/partner-api.md#sandbox-faults. Specs merge key by key (``null`` clears a
key); ``outages`` start counting when they are set. One seeded ``random.Random`` makes every
decision, drawing only for knobs that are set, so a seed and a request sequence give the same
faults every time. Faults fire before the request is read, so a faulted request changes nothing;
``ack_lost`` is the exception: the request is handled, then the reply is lost.
"""

from __future__ import annotations

import asyncio
import math
import random
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

from aiohttp import web
from aiohttp.typedefs import Middleware

from relay.sandbox.responses import json_response

TOKEN_PATH: Final = "/auth/1.0/token"
INSPECTION_PREFIX: Final = "/sandbox/"
KEYS: Final = frozenset(
    {
        "seed",
        "paths",
        "latency_ms",
        "error_rates",
        "rate_limit",
        "outages",
        "ack_lost",
        "token_ttl_s",
        "token_endpoint_down",
        "throttle",
        "capacity",
    }
)
FailMode = Literal["503", "reset"]


@dataclass(frozen=True, slots=True)
class Outage:
    start: float  # clock time
    end: float
    mode: FailMode


@dataclass(frozen=True, slots=True)
class Failure:
    """A faulted reply: a status (with headers and body) or, for ``reset``, a dropped connection."""

    status: int | None  # None: reset the connection
    body: dict[str, Any] | None = None
    headers: dict[str, str] | None = None


RESET: Final = Failure(None)
UNAVAILABLE: Final = Failure(503, {"error": "service_unavailable"})


class Faults:
    """The current fault spec and the seeded RNG that draws against it."""

    def __init__(
        self, spec: dict[str, Any] | None = None, clock: Callable[[], float] = time.monotonic
    ):
        self._clock = clock
        self._spec: dict[str, Any] = {}
        self._outages: list[Outage] = []
        self._rng = random.Random(0)
        self.faulted = 0  # faulted replies (stats)
        self._throttle_tokens = 0.0  # the throttle's bucket
        self._throttle_stamp = clock()
        self._served_until = 0.0  # capacity: when the (virtual) server is free again
        if spec:
            self.merge(spec)

    # --- the spec -----------------------------------------------------------------------------

    def merge(self, spec: Any) -> None:
        """Merge ``spec`` into the current one; ValueError (nothing changed) if any part is bad."""
        if not isinstance(spec, dict):
            raise ValueError("a fault spec must be a JSON object")
        unknown = sorted(set(spec) - KEYS)
        if unknown:
            raise ValueError(f"unknown fault keys {unknown}; known: {sorted(KEYS)}")
        cleaned = {key: _validate(key, value) for key, value in spec.items()}
        for key, value in cleaned.items():
            if value is None:
                self._spec.pop(key, None)
            else:
                self._spec[key] = value
        if cleaned.get("throttle"):
            self._throttle_tokens = cleaned["throttle"]["burst"]
            self._throttle_stamp = self._clock()
        if "seed" in cleaned:
            self._rng = random.Random(cleaned["seed"])
        if "outages" in cleaned:
            now = self._clock()
            self._outages = [
                Outage(now + o["start_in_s"], now + o["start_in_s"] + o["duration_s"], o["mode"])
                for o in cleaned["outages"] or []
            ]

    def clear(self) -> None:
        self._spec.clear()
        self._outages.clear()
        self._rng = random.Random(0)

    def show(self) -> dict[str, Any]:
        now = self._clock()
        active = [
            {"mode": o.mode, "ends_in_s": round(o.end - now, 3)}
            for o in self._outages
            if o.start <= now < o.end
        ]
        return {"faults": dict(self._spec), "active_outages": active, "faulted": self.faulted}

    @property
    def token_ttl_s(self) -> float | None:
        value = self._spec.get("token_ttl_s")
        return None if value is None else float(value)

    # --- decisions ----------------------------------------------------------------------------

    def applies(self, path: str) -> bool:
        if path.startswith(INSPECTION_PREFIX):
            return False
        prefixes = self._spec.get("paths")
        return prefixes is None or any(path.startswith(p) for p in prefixes)

    def latency_s(self) -> float:
        latency = self._spec.get("latency_ms")
        queued = self._queueing_s()
        if not latency:
            return queued
        jitter = latency.get("jitter", 0)
        extra = self._rng.uniform(0, jitter) if jitter else 0.0
        return queued + (latency.get("fixed", 0) + extra) / 1000.0

    def _queueing_s(self) -> float:
        """``capacity``: one server taking 1/rps seconds per request, first come first served;
        this request's wait for it and its own service time."""
        capacity = self._spec.get("capacity")
        if not capacity:
            return 0.0
        now = self._clock()
        self._served_until = max(now, self._served_until) + 1.0 / capacity["rps"]
        return self._served_until - now

    def _throttled(self) -> Failure | None:
        """``throttle``: a token bucket of ``rps`` per second; an empty one answers 429."""
        throttle = self._spec.get("throttle")
        if not throttle:
            return None
        now = self._clock()
        elapsed, self._throttle_stamp = now - self._throttle_stamp, now
        tokens = min(throttle["burst"], self._throttle_tokens + elapsed * throttle["rps"])
        if tokens >= 1:
            self._throttle_tokens = tokens - 1
            return None
        self._throttle_tokens = tokens
        wait = throttle["retry_after_s"]
        return Failure(
            429,
            {"error": "rate_limited", "retry_after_s": wait},
            {"Retry-After": str(math.ceil(wait))},
        )

    def before(self, path: str, matched: bool) -> Failure | None:
        """The failure that replaces this request's reply, if any (drawn before it is read)."""
        now = self._clock()
        if matched:
            for outage in self._outages:
                if outage.start <= now < outage.end:
                    return _failure(outage.mode)
        down = self._spec.get("token_endpoint_down")
        if down and path == TOKEN_PATH:
            return _failure(down)
        if not matched:
            return None
        throttled = self._throttled()
        if throttled is not None:
            return throttled
        limit = self._spec.get("rate_limit")
        if limit and self._rng.random() < limit["rate"]:
            wait = limit["retry_after_s"]
            return Failure(
                429,
                {"error": "rate_limited", "retry_after_s": wait},
                {"Retry-After": str(math.ceil(wait))},
            )
        rates = self._spec.get("error_rates")
        if rates:
            draw = self._rng.random()
            for status, rate in sorted(rates.items()):
                if draw < rate:
                    return Failure(int(status), {"error": f"injected_{status}"})
                draw -= rate
        return None

    def ack_lost(self) -> Failure | None:
        lost = self._spec.get("ack_lost")
        if lost and self._rng.random() < lost["rate"]:
            return _failure(lost["mode"])
        return None


def _failure(mode: str) -> Failure:
    return RESET if mode == "reset" else UNAVAILABLE


# --- validation of one key ----------------------------------------------------------------------


def _validate(key: str, value: Any) -> Any:
    if value is None or (key == "token_endpoint_down" and value is False):
        return None
    check = _CHECKS[key]
    try:
        return check(value)
    except (TypeError, KeyError) as exc:
        raise ValueError(f"{key}: malformed ({exc})") from None


def _number(value: Any, name: str, *, low: float = 0.0, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}: must be a number")
    if not low <= value <= high:
        raise ValueError(f"{name}: must be between {low} and {high}")
    return float(value)


def _only(value: Any, name: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{name}: must be an object")
    unknown = set(value) - keys
    if unknown:
        raise ValueError(f"{name}: unknown keys {sorted(unknown)}; known: {sorted(keys)}")
    return value


def _mode(value: Any, name: str) -> FailMode:
    mode = str(value)
    if mode not in ("503", "reset"):
        raise ValueError(f"{name}: must be '503' or 'reset'")
    return mode  # type: ignore[return-value]


def _seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("seed: must be an integer")
    return value


def _paths(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(
        isinstance(p, str) and p.startswith("/") for p in value
    ):
        raise ValueError("paths: must be a list of path prefixes starting with '/'")
    return value


def _latency(value: Any) -> dict[str, float]:
    spec = _only(value, "latency_ms", {"fixed", "jitter"})
    return {k: _number(v, f"latency_ms.{k}", high=60_000) for k, v in spec.items()}


def _error_rates(value: Any) -> dict[str, float]:
    spec = _only(value, "error_rates", {str(s) for s in range(400, 600)})
    rates = {k: _number(v, f"error_rates.{k}", high=1.0) for k, v in spec.items()}
    if sum(rates.values()) > 1.0 + 1e-9:
        raise ValueError("error_rates: the rates add up to more than 1")
    return rates


def _rate_limit(value: Any) -> dict[str, float]:
    spec = _only(value, "rate_limit", {"rate", "retry_after_s"})
    return {
        "rate": _number(spec["rate"], "rate_limit.rate", high=1.0),
        "retry_after_s": _number(spec.get("retry_after_s", 1), "rate_limit.retry_after_s"),
    }


def _throttle(value: Any) -> dict[str, float]:
    spec = _only(value, "throttle", {"rps", "burst", "retry_after_s"})
    rps = _number(spec["rps"], "throttle.rps", low=0.001)
    return {
        "rps": rps,
        "burst": _number(spec.get("burst", max(1.0, rps)), "throttle.burst", low=1.0),
        "retry_after_s": _number(spec.get("retry_after_s", 1), "throttle.retry_after_s"),
    }


def _capacity(value: Any) -> dict[str, float]:
    spec = _only(value, "capacity", {"rps"})
    return {"rps": _number(spec["rps"], "capacity.rps", low=0.001)}


def _outages(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise ValueError("outages: must be a list")
    out = []
    for i, item in enumerate(value):
        spec = _only(item, f"outages[{i}]", {"start_in_s", "duration_s", "mode"})
        out.append(
            {
                "start_in_s": _number(spec.get("start_in_s", 0), f"outages[{i}].start_in_s"),
                "duration_s": _number(spec["duration_s"], f"outages[{i}].duration_s"),
                "mode": _mode(spec.get("mode", "503"), f"outages[{i}].mode"),
            }
        )
    return out


def _ack_lost(value: Any) -> dict[str, Any]:
    spec = _only(value, "ack_lost", {"rate", "mode"})
    return {
        "rate": _number(spec["rate"], "ack_lost.rate", high=1.0),
        "mode": _mode(spec.get("mode", "503"), "ack_lost.mode"),
    }


def _ttl(value: Any) -> float:
    return _number(value, "token_ttl_s", low=0.001)


_CHECKS: Final[dict[str, Callable[[Any], Any]]] = {
    "seed": _seed,
    "paths": _paths,
    "latency_ms": _latency,
    "error_rates": _error_rates,
    "rate_limit": _rate_limit,
    "outages": _outages,
    "ack_lost": _ack_lost,
    "token_ttl_s": _ttl,
    "token_endpoint_down": lambda v: _mode(v, "token_endpoint_down"),
    "throttle": _throttle,
    "capacity": _capacity,
}


# --- the middleware -----------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def fault_middleware(faults: Faults) -> Middleware:
    """Apply ``faults`` to every API request; inspection (``/sandbox/``) is never faulted."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith(INSPECTION_PREFIX):
            return await handler(request)
        matched = faults.applies(path)
        delay = faults.latency_s() if matched else 0.0
        if delay:
            await asyncio.sleep(delay)
        failure = faults.before(path, matched)
        if failure is None:
            response = await handler(request)
            if not (matched and 200 <= response.status < 300):
                return response
            failure = faults.ack_lost()
            if failure is None:
                return response
        faults.faulted += 1
        return fail(request, failure)

    return middleware


def fail(request: web.Request, failure: Failure) -> web.StreamResponse:
    if failure.status is not None:
        return json_response(failure.body or {}, status=failure.status, headers=failure.headers)
    reset_connection(request)
    return web.Response(status=503)  # never written: the connection is gone


def reset_connection(request: web.Request) -> None:
    """Close the connection abruptly (a TCP RST: linger 0), as a crashed proxy would."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
