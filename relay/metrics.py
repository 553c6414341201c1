"""The metric catalogue, in one place (the health behind /livez and /readyz: ``relay.health``).

Every metric is ``timeback_relay_*`` on one registry, ``REGISTRY``, which /metrics serves and which
faust's own prometheus sensor joins. Labels are bounded sets (stage, reason, type, endpoint,
status class, topic, partition): student ids, event ids and URLs are never labels.
"""

from __future__ import annotations

import functools
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric

REGISTRY = CollectorRegistry(auto_describe=True)
_P = "timeback_relay_"


# -- tallies: the per-record and per-request series, counted without a lock ----------------------
#
# A prometheus_client child takes a lock and checks its state on every ``inc`` or ``observe``:
# a few of those per record and per request are a share of the relay's CPU. The series updated
# that often are tallied instead: plain numbers, added up by the event loop's thread alone, and
# added to their series when the registry is collected (``_Tallies``, registered first), so a
# scrape, or ``REGISTRY.get_sample_value``, reads what the series would hold. The counts are
# copied, never reset, so an increment racing a collection is not lost.


class _Flushable(Protocol):
    def flush(self) -> None: ...


F = TypeVar("F", bound=_Flushable)


class _Tallies:
    """A collector of no series of its own: collecting flushes every tally into its series."""

    def __init__(self) -> None:
        self._tallies: list[_Flushable] = []
        self._lock = threading.Lock()

    def add(self, tally: F) -> F:
        with self._lock:
            self._tallies.append(tally)
        return tally

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            for tally in self._tallies:
                tally.flush()
        return []


_TALLIES = _Tallies()
REGISTRY.register(_TALLIES)  # first: a collection flushes, then reads the series


class CounterTally:
    """A counter child's increments (``inc``: an addition), added to it at each collection."""

    __slots__ = ("_child", "_flushed", "total")

    def __init__(self, child: Counter) -> None:
        self._child = child
        self.total: float = 0
        self._flushed: float = 0

    def inc(self, amount: float = 1) -> None:
        self.total += amount

    def flush(self) -> None:
        total = self.total  # read once: the loop's thread may be counting on
        if total != self._flushed:
            self._child.inc(total - self._flushed)
            self._flushed = total


class HistogramTally:
    """A histogram child's observations (``observe``: a bucket's count and the sum), added to it
    at each collection. It writes the child's buckets and sum (prometheus_client's own
    attributes, pinned by tests/unit/test_metrics_tally.py): they take no bulk update."""

    __slots__ = ("_bounds", "_child", "_counts", "_flushed", "_flushed_sum", "_sum")

    def __init__(self, child: Histogram) -> None:
        self._child: Any = child
        self._bounds = tuple(child._upper_bounds)  # the last is +Inf: every value has a bucket
        self._counts = [0] * len(self._bounds)
        self._flushed = [0] * len(self._bounds)
        self._sum = 0.0
        self._flushed_sum = 0.0

    def observe(self, amount: float) -> None:
        self._counts[bisect_left(self._bounds, amount)] += 1
        self._sum += amount

    def flush(self) -> None:
        counts, total = list(self._counts), self._sum
        for i, (count, flushed) in enumerate(zip(counts, self._flushed, strict=True)):
            if count != flushed:
                self._child._buckets[i].inc(count - flushed)
        self._flushed = counts
        if total != self._flushed_sum:
            self._child._sum.inc(total - self._flushed_sum)
            self._flushed_sum = total


def counted(counter: Counter) -> Callable[..., CounterTally]:
    """``counter``'s tally per label values (positional, in label order), made once each."""
    return functools.cache(lambda *labels: _TALLIES.add(CounterTally(counter.labels(*labels))))


def observed(histogram: Histogram) -> Callable[..., HistogramTally]:
    """``histogram``'s tally per label values (positional, in label order), made once each."""
    return functools.cache(lambda *labels: _TALLIES.add(HistogramTally(histogram.labels(*labels))))


def tallied(histogram: Histogram) -> HistogramTally:
    """The tally of a histogram without labels."""
    return _TALLIES.add(HistogramTally(histogram))


# source
RECORDS_CONSUMED = Counter(
    _P + "records_consumed", "Records read from the input topics", ["topic"], registry=REGISTRY
)
RECORDS_DECODED = Counter(
    _P + "records_decoded", "Records decoded and validated", ["record_type"], registry=REGISTRY
)
RECORDS_REJECTED = Counter(
    _P + "records_rejected",
    "Records that cannot be delivered (dead-lettered), by stage and reason",
    ["stage", "reason"],
    registry=REGISTRY,
)
RECORDS_ACKED = Counter(
    _P + "records_acked", "Records acknowledged in offset order", ["topic"], registry=REGISTRY
)

# sink
EVENTS_SENT = Counter(
    _P + "events_sent",
    "Caliper events sent, by type and outcome (delivered, duplicate, rejected)",
    ["type", "outcome"],
    registry=REGISTRY,
)
ENVELOPES = Counter(
    _P + "envelopes",
    "Caliper envelopes sent (RELAY_EVENTS_PER_REQUEST above 1), by outcome: delivered, or split "
    "(refused, out of retries or 409: its events sent again in halves)",
    ["outcome"],
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    _P + "http_requests",
    "HTTP requests to the Partner API by endpoint and status class (2xx..5xx, error)",
    ["endpoint", "status_class"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    _P + "http_request_duration_seconds",
    "Partner API request latency",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
RETRIES = Counter(
    _P + "retries",
    "Transient failures retried, by endpoint and cause (status code, timeout, connect)",
    ["endpoint", "cause"],
    registry=REGISTRY,
)
IN_FLIGHT = Gauge(
    _P + "in_flight", "Records being processed now (at most RELAY_MAX_IN_FLIGHT)", registry=REGISTRY
)
PENDING = Gauge(
    _P + "pending",
    "Records read and not yet acknowledged: processing, waiting for the student's previous "
    "record, or done and waiting for an earlier offset (at most RELAY_MAX_PENDING)",
    registry=REGISTRY,
)
CIRCUIT_STATE = Gauge(
    _P + "circuit_state", "Circuit breaker: 0 closed, 1 open, 2 half-open", registry=REGISTRY
)
CIRCUIT_TRANSITIONS = Counter(
    _P + "circuit_transitions", "Circuit breaker state changes", ["to"], registry=REGISTRY
)
SYSTEMIC_ERRORS = Counter(
    _P + "systemic_errors",
    "Configuration or permission failures (403, 404 on /events, repeated 401)",
    ["endpoint", "status"],
    registry=REGISTRY,
)
EVENTS_HELD = Gauge(
    _P + "events_held",
    "Events whose delivery is held by a systemic answer (403, 404 on /events, 3xx, repeated "
    "401): each blocks its student's later records and its partition's commits",
    ["status"],
    registry=REGISTRY,
)
API_FAILURE_RATE = Gauge(
    _P + "api_failure_rate",
    "Share of event POSTs that failed transiently over the last RELAY_BROWNOUT_WINDOW seconds; "
    "at RELAY_BROWNOUT_RATE or more retry budgets pause",
    registry=REGISTRY,
)
TOKEN_REFRESHES = Counter(
    _P + "token_refreshes", "Token requests by outcome (ok, failed)", ["outcome"], registry=REGISTRY
)
TOKEN_EXPIRY = Gauge(
    _P + "token_expiry_timestamp_seconds",
    "Unix time at which the current access token expires (0: none)",
    registry=REGISTRY,
)
DELIVERY_LAG = Histogram(
    _P + "delivery_lag_seconds",
    "Activity time (occurred_at) to delivery acknowledged by the API",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
    registry=REGISTRY,
)

# the request gate (relay.resilience.gate): rate, shared pause, in-flight limit
REQUEST_CONCURRENCY_LIMIT = Gauge(
    _P + "request_concurrency_limit",
    "API requests allowed in flight now: RELAY_MAX_IN_FLIGHT when fixed, the AIMD limit when "
    "adaptive (after an outage or a pause it restarts at 1 and climbs)",
    registry=REGISTRY,
)
REQUESTS_IN_FLIGHT = Gauge(
    _P + "requests_in_flight",
    "API requests in flight now (an envelope is one request)",
    registry=REGISTRY,
)
REQUEST_RATE_LIMIT = Gauge(
    _P + "request_rate_limit",
    "Requests per second the rate limiter allows now (RELAY_MAX_REQUESTS_PER_SECOND, lower "
    "while it climbs back after an outage; 0: no rate limit)",
    registry=REGISTRY,
)
REQUEST_TOKENS = Gauge(
    _P + "request_tokens",
    "Tokens in the rate limiter's bucket (requests that may start at once, at most "
    "RELAY_MAX_REQUESTS_BURST)",
    registry=REGISTRY,
)
REQUEST_PAUSE_SECONDS = Gauge(
    _P + "request_pause_seconds",
    "Seconds every API request still waits because the API said so (a 429, or a 5xx with "
    "Retry-After)",
    registry=REGISTRY,
)
API_PAUSES = Counter(
    _P + "api_pauses",
    "Answers (a 429, or a 5xx with Retry-After) that paused every API request of the process, "
    "by status",
    ["status"],
    registry=REGISTRY,
)
LIMITER_WAITS = Counter(
    _P + "limiter_waits",
    "API requests that waited before being sent, by what held them most: pause (the API's "
    "Retry-After), concurrency (the in-flight limit) or rate (the token bucket)",
    ["reason"],
    registry=REGISTRY,
)
LIMITER_WAIT_SECONDS = Histogram(
    _P + "limiter_wait_seconds",
    "Seconds an API request that waited spent waiting before being sent",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)

# dead letters
DLQ_WRITES = Counter(
    _P + "dlq_writes", "Records written to the dead-letter topic", ["reason"], registry=REGISTRY
)
DLQ_WRITE_FAILURES = Counter(
    _P + "dlq_write_failures",
    "Dead-letter writes that failed (the partition is blocked until one succeeds)",
    registry=REGISTRY,
)
DLQ_PERMANENT_FAILURES = Counter(
    _P + "dlq_permanent_failures",
    "Dead-letter writes refused for a reason no retry fixes (record too large for the topic,"
    " write denied, topic missing), by Kafka error name; the partition stays blocked",
    ["error"],
    registry=REGISTRY,
)

# kafka
KAFKA_AUTH_FAILURES = Counter(
    _P + "kafka_auth_failures",
    "Kafka logins the brokers refused at start (SASL credentials, TLS certificates); the relay "
    "is not ready meanwhile",
    registry=REGISTRY,
)

# enrichment
COURSE_LOOKUPS = Counter(
    _P + "course_lookups",
    "Course resolutions by source (record, map, cache, api) and result",
    ["source", "result"],
    registry=REGISTRY,
)

# consumer
CONSUMER_LAG = Gauge(
    _P + "consumer_lag",
    "End offset minus committed offset, per assigned partition",
    ["topic", "partition"],
    registry=REGISTRY,
)
ASSIGNED_PARTITIONS = Gauge(
    _P + "assigned_partitions", "Partitions assigned to this process", registry=REGISTRY
)
REBALANCES = Counter(
    _P + "rebalances_total",
    "Partition assignments received (each rebalance this process took part in)",
    registry=REGISTRY,
)
READY = Gauge(_P + "ready", "1 when /readyz reports ready", registry=REGISTRY)


# The per-record, per-request and per-event metrics, tallied (above) per label values
# (positional, in label order): a dict look-up and an addition, where ``labels(...).inc()``
# parses keywords and takes locks on every call. Label sets are bounded, so are the caches.
EVENTS_SENT_BY = counted(EVENTS_SENT)  # (type, outcome)
HTTP_REQUESTS_BY = counted(HTTP_REQUESTS)  # (endpoint, status class)
HTTP_LATENCY_BY = observed(HTTP_LATENCY)  # (endpoint,)
RETRIES_BY = functools.cache(RETRIES.labels)  # (endpoint, cause): per failure, not tallied
ENVELOPES_BY = counted(ENVELOPES)  # (outcome,)
RECORDS_CONSUMED_BY = counted(RECORDS_CONSUMED)  # (topic,)
RECORDS_ACKED_BY = counted(RECORDS_ACKED)  # (topic,)
RECORDS_DECODED_BY = counted(RECORDS_DECODED)  # (record type,)
COURSE_LOOKUPS_BY = counted(COURSE_LOOKUPS)  # (source, result)
DELIVERY_LAG_TALLY = tallied(DELIVERY_LAG)

_STATUS_CLASSES = {n: f"{n}xx" for n in range(1, 6)}


def status_class(status: int | None) -> str:
    """``2xx``..``5xx`` for a response, ``error`` when there was none (timeout, reset)."""
    if not status:
        return "error"
    return _STATUS_CLASSES.get(status // 100) or f"{status // 100}xx"
