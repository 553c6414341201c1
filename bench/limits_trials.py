"""The trials of issue 24 (rate limits, adaptive concurrency, coming back fast), for real.

Each trial: a fresh topic with a backlog, a sandbox process with the trial's faults (``throttle``:
a real rate limit answering 429 + Retry-After; ``capacity``: latency grows with load past it;
outages; the token endpoint down), ``relay run`` as a process, sampled every 0.25 s from both
sides (the sandbox's accepted and faulted counts, the relay's /metrics), then reconciled by event
id against the backlog: lost (an event id never received), duplicates (received more than once),
dead letters by reason.

    python -m bench.limits_trials [--only NAME,...] [--records N]

LIMITS_BASELINE_SOURCE=<a source tree> runs that tree's relay instead (the sandbox stays
this one's), to compare with the relay before the gate.

Figures go to stdout as JSON lines and to bench/results/limits_trials.json; each trial's time
series to bench/results/limits_series/<name>.json (bench/limits_plot.py draws one of them).
Everything started is stopped by pid. Record counts are scaled to keep each run under ~90 s.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from bench.common import say, traffic
from bench.drain import produce_backlog
from bench.ports import free_port
from bench.procs import ROOT, Relay, Sandbox, Topics, kafka_broker, relay_env
from bench.s1_pipeline import Chain
from relay.sandbox.testing import SandboxControl

RESULTS = ROOT / "bench" / "results"
SERIES = RESULTS / "limits_series"
P = "timeback_relay_"
INTERVAL = 0.25
EVENTS = "/events/1.0"


@dataclass
class Point:
    """One sample: seconds since the relay started, cumulative counts, the gate's state."""

    t: float
    accepted: float  # events the sandbox took (cumulative)
    faulted: float  # requests the sandbox faulted: 429s, outage 503s... (cumulative)
    acked: float = 0.0
    limit: float = 0.0  # the relay's in-flight limit
    rate: float = 0.0  # the relay's rate limit now (0: none)
    latency_sum: float = 0.0  # events request latency (histogram sum, count)
    latency_count: float = 0.0
    dlq: float = 0.0


@dataclass
class Trial:
    name: str
    records: int
    env: dict[str, Any]  # RELAY_* extras (lower-case names)
    faults: dict[str, Any] = field(default_factory=dict)  # sandbox faults from the start
    # (t, faults) with t in seconds from the first event accepted (the relay is delivering)
    schedule: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    resume_after: float | None = None  # t (same origin) the API answers again: resume from it
    events_per_request: int = 1
    timeout: float = 120.0


def trials(records: int) -> list[Trial]:
    n20 = {"events_per_request": 20}
    n: dict[str, Any] = {"events_per_request": 20}
    lat = {"latency_ms": {"fixed": 20, "jitter": 0}}
    # The 300 requests/s is more than the relay reaches on this 2-core machine shared
    # by seven jobs (~150 events/s, CPU-bound): at 300 the relay, not the API, would be the
    # bottleneck. 100 requests/s with 50 ms base latency keeps the API the limit.
    cap = {"capacity": {"rps": 100}, "latency_ms": {"fixed": 50, "jitter": 0}}
    cap20 = {"capacity": {"rps": 8}, "latency_ms": {"fixed": 50, "jitter": 0}}
    throttle = {"throttle": {"rps": 200, "burst": 20, "retry_after_s": 1}}
    limiter190 = {"max_requests_per_second": 190, "max_requests_burst": 20}
    outage30 = [(3.0, {"outages": [{"start_in_s": 0, "duration_s": 30, "mode": "503"}]})]
    return [
        # 1. the API limits to 200 requests/s (429 + Retry-After)
        Trial("throttle-fixed", records, {}, throttle | lat),
        # the sizing rule: 0.95 x the API's rate, its burst (20) at most
        Trial("throttle-fixed-limiter", records, limiter190, throttle | lat),
        Trial("throttle-adaptive", records, {"concurrency": "adaptive"}, throttle | lat),
        # 2. latency grows with load past 300 requests/s
        Trial("capacity-fixed", records, {}, cap),
        Trial("capacity-adaptive", records, {"concurrency": "adaptive"}, cap),
        # 3. a 30 s outage with the backlog waiting: the catch-up held to the rate / capacity
        Trial("outage-limiter", records, {"max_requests_per_second": 150}, lat, outage30, 33),
        Trial("outage-adaptive", records, {"concurrency": "adaptive"}, cap, outage30, 33),
        # 4. the same with envelopes of 20 events: the limits count requests
        Trial(
            "throttle-limiter-n20",
            records,
            {"max_requests_per_second": 9} | n20,
            {"throttle": {"rps": 10, "burst": 10, "retry_after_s": 1}} | lat,
            events_per_request=20,
        ),
        Trial("capacity-adaptive-n20", records, {"concurrency": "adaptive"} | n20, cap20, **n),
        Trial("capacity-fixed-n20", records, n20, cap20, **n),
        # 5. coming back fast, per fault kind (defaults; 100 requests/s so the backlog lasts)
        *resume_trials(records),
    ]


def resume_trials(records: int) -> list[Trial]:
    paced = {"max_requests_per_second": 100}
    lat = {"latency_ms": {"fixed": 20, "jitter": 0}}
    short_tokens = {"token_ttl_s": 3} | lat
    down = {"token_endpoint_down": "503"}
    up = {"token_endpoint_down": None}
    every429 = {"rate_limit": {"rate": 1.0, "retry_after_s": 2}}
    no429 = {"rate_limit": None}
    outage = {"outages": [{"start_in_s": 0, "duration_s": 20, "mode": "reset"}]}
    return [
        Trial("resume-outage", records, paced, lat, [(3, outage), (3 + 20, {})], 23),
        Trial("resume-token-down", records, paced, short_tokens, [(3, down), (23, up)], 23),
        Trial("resume-throttle", records, paced, lat, [(3, every429), (23, no429)], 23),
        Trial(
            "resume-token-down-then-throttle",
            records,
            paced,
            short_tokens,
            [(3, down), (18, up | every429), (33, no429)],
            33,
        ),
        # the defaults (fixed 64 in flight, no rate limit)
        Trial("resume-outage-defaults", records, {}, lat, [(3, outage), (23, {})], 23),
        Trial("resume-token-down-defaults", records, {}, short_tokens, [(3, down), (23, up)], 23),
    ]


# --- one run ------------------------------------------------------------------------------------


def run(trial: Trial, bootstrap: str, topics: Topics) -> dict[str, Any]:
    say(f"trial {trial.name}: {trial.records} records, faults {trial.faults}, env {trial.env}")
    plan = traffic(trial.records, seed=zlib.crc32(trial.name.encode()) % 1000)
    topic = topics.create(f"limits-{trial.name}", 4)
    produce_backlog(bootstrap, topic, plan)
    chain = Chain()
    expected = {orjson.loads(e.payload)["id"] for r in plan.records for e in chain.full(r.value)}
    # processing far in the future: the trial is about delivery, not the sandbox's processing
    sandbox = Sandbox(f"sandbox-{trial.name}", 3600.0, max(1, trial.events_per_request))
    relay = None
    try:
        with SandboxControl(sandbox.url) as control:
            control.faults({"paths": [EVENTS], **trial.faults})
            dlq = topics.create(f"limits-{trial.name}-dlq", 1)
            env = relay_env(bootstrap, topic, dlq, sandbox.url, free_port(), **trial.env)
            env["RELAY_LOG_LEVEL"] = "INFO"
            if base := os.environ.get("LIMITS_BASELINE_SOURCE"):
                # the relay of another source tree (the commit before the gate) for comparison
                env["PYTHONPATH"] = base
            relay = Relay(f"relay-{trial.name}", env)
            points = watch(trial, relay, control, len(expected))
            received = Counter(
                e["id"] for e in control.events() if e.get("fate") != "rejected_at_validation"
            )
        return summarize(trial, points, expected, received)
    finally:
        if relay is not None:
            relay.stop()
        sandbox.stop()


def watch(trial: Trial, relay: Relay, control: SandboxControl, events: int) -> list[Point]:
    """Sample until every event is accepted and every record acknowledged (or the timeout);
    apply the schedule's faults on time (from the first event accepted)."""
    started = time.monotonic()
    schedule = sorted(trial.schedule, key=lambda step: step[0])
    first: float | None = None
    points: list[Point] = []
    with httpx.Client() as http:
        while time.monotonic() - started < trial.timeout:
            relay.check_alive()
            t = time.monotonic() - started
            while schedule and first is not None and schedule[0][0] <= t - first:
                spec = schedule.pop(0)[1]
                control.faults(spec) if spec else control.faults({"outages": None})
            stats = control.stats()
            point = Point(round(t, 3), stats["accepted"], stats["faulted"])
            scrape(http, relay, point)
            points.append(point)
            if first is None and point.accepted > 0:
                first = t
            if point.accepted >= events and point.acked >= trial.records:
                break
            time.sleep(INTERVAL)
    return points


def scrape(http: httpx.Client, relay: Relay, point: Point) -> None:
    try:
        text = http.get(relay.metrics_url, timeout=2).text
    except httpx.HTTPError:
        return
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == P + "records_acked_total":
                point.acked += s.value
            elif s.name == P + "request_concurrency_limit":
                point.limit = s.value
            elif s.name == P + "request_rate_limit":
                point.rate = s.value
            elif s.name == P + "dlq_writes_total":
                point.dlq += s.value
            elif s.labels.get("endpoint") == "events":
                if s.name == P + "http_request_duration_seconds_sum":
                    point.latency_sum = s.value
                elif s.name == P + "http_request_duration_seconds_count":
                    point.latency_count = s.value


# --- the figures --------------------------------------------------------------------------------


def summarize(
    trial: Trial, points: list[Point], expected: set[str], received: Counter[str]
) -> dict[str, Any]:
    SERIES.mkdir(parents=True, exist_ok=True)
    (SERIES / f"{trial.name}.json").write_text(
        json.dumps({"trial": asdict(trial), "points": [asdict(p) for p in points]})
    )
    last = points[-1]
    lost = len(expected - set(received))
    result: dict[str, Any] = {
        "trial": trial.name,
        "records": trial.records,
        "events": len(expected),
        "events_per_request": trial.events_per_request,
        "env": trial.env,
        "finished": last.accepted >= len(expected) and last.acked >= trial.records,
        "seconds": last.t,
        "lost": lost,
        "duplicates": sum(n - 1 for n in received.values() if n > 1),
        "dlq": last.dlq,
    }
    result |= steady(points, len(expected), trial.events_per_request)
    if trial.resume_after is not None:
        origin = _at(points, lambda p: p.accepted > 0)
        result |= resume(points, trial.resume_after + (origin.t if origin else 0.0))
    say(f"  {json.dumps(result)}")
    return result


def steady(points: list[Point], events: int, per_request: int) -> dict[str, Any]:
    """Throughput, 429 share, latency and limit between 20 % and 90 % of the events accepted
    (after convergence: the first fifth is the climb)."""
    low = _at(points, lambda p: p.accepted >= 0.2 * events)
    high = _at(points, lambda p: p.accepted >= 0.9 * events)
    if low is None or high is None or high.t <= low.t:
        return {"steady": None}
    seconds = high.t - low.t
    requests = (high.accepted - low.accepted) / per_request
    faulted = high.faulted - low.faulted
    calls = high.latency_count - low.latency_count
    window = [p for p in points if low.t <= p.t <= high.t]
    return {
        "events_per_s": round((high.accepted - low.accepted) / seconds, 1),
        "requests_per_s": round(requests / seconds, 1),
        "faulted_share": round(faulted / (requests + faulted), 4) if requests else None,
        "latency_ms": round(1000 * (high.latency_sum - low.latency_sum) / calls, 1)
        if calls
        else None,
        "limit_mean": round(sum(p.limit for p in window) / len(window), 1),
        "peak_events_per_s": peak(points, 2.0),
    }


def peak(points: list[Point], span: float) -> float:
    """The highest event rate over any ``span`` seconds."""
    best = 0.0
    j = 0
    for i, p in enumerate(points):
        while points[j].t < p.t - span:
            j += 1
        if p.t - points[j].t >= span / 2 and i > j:
            best = max(best, (p.accepted - points[j].accepted) / (p.t - points[j].t))
    return round(best, 1)


def resume(points: list[Point], back_at: float) -> dict[str, Any]:
    """Seconds from the API answering again to the first event accepted after it, and the
    event rate over the following 10 s."""
    before = _at(points, lambda p: p.t >= back_at)
    if before is None:
        return {"resume_s": None}
    first = _at(points, lambda p: p.t > back_at and p.accepted > before.accepted)
    if first is None:
        return {"resume_s": None}
    later = _at(points, lambda p: p.t >= first.t + 10) or points[-1]
    rate = (later.accepted - first.accepted) / max(later.t - first.t, 1e-9)
    return {
        "resume_s": round(first.t - back_at, 2),
        "after_resume_events_per_s": round(rate, 1),
        "catch_up_peak_events_per_s": peak([p for p in points if p.t >= first.t], 2.0),
    }


def _at(points: list[Point], test: Callable[[Point], bool]) -> Point | None:
    return next((p for p in points if test(p)), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated trial names (or prefixes)")
    parser.add_argument("--records", type=int, default=4000, help="backlog per trial")
    args = parser.parse_args()
    wanted = [w for w in args.only.split(",") if w]
    chosen = [
        t for t in trials(args.records) if not wanted or any(t.name.startswith(w) for w in wanted)
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "limits_trials.json"
    results = json.loads(out.read_text()) if out.exists() else {}
    with kafka_broker() as bootstrap:
        topics = Topics(bootstrap)
        try:
            for trial in chosen:
                results[trial.name] = run(trial, bootstrap, topics)
                out.write_text(json.dumps(results, indent=1))
                print(json.dumps(results[trial.name]), flush=True)
        finally:
            topics.delete_all()


if __name__ == "__main__":
    main()
