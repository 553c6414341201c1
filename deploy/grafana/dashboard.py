"""The Grafana dashboard as typed code (grafana-foundation-sdk): timeback-relay.json is its output.

    python deploy/grafana/dashboard.py            # writes deploy/grafana/timeback-relay.json
    python deploy/grafana/dashboard.py --check    # exits 1 when the JSON is stale

A row is a list of lines, a line a list of panels placed left to right (widths in Grafana's 24
columns); ids and grid positions follow from that order. To add a row, append a ``Row`` to
``ROWS``; to add a panel, put a ``timeseries(...)`` or ``stat(...)`` in a line. Every query
selects ``SEL`` (the dashboard's job and instance variables); tests/unit/test_deploy_observability
checks that every metric it names exists, tests/integration/test_observability runs every query.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common, prometheus
from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.builders import stat as stat_kind
from grafana_foundation_sdk.builders import timeseries as timeseries_kind
from grafana_foundation_sdk.cog import variants
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as kinds
from grafana_foundation_sdk.models import dashboard as model

OUTPUT = Path(__file__).resolve().parent / "timeback-relay.json"
SEL = '{job=~"$job", instance=~"$instance"}'
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
ValueMap = dict[str, tuple[str, str | None]]  # value -> (text, colour)
Steps = Sequence[tuple[float | None, str]]  # (from, colour); the first from None


@dataclass(frozen=True)
class Q:
    """One Prometheus query of a panel, and its legend."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Placed:
    """A panel and the room it takes (Grafana's grid: 24 columns)."""

    width: int
    height: int
    panel: timeseries_kind.Panel | stat_kind.Panel


@dataclass(frozen=True)
class Row:
    title: str
    lines: list[list[Placed]]


def stat(
    title: str, description: str, unit: str, query: Q, *, steps: Steps,
    mappings: ValueMap | None = None, width: int = 4,
) -> Placed:  # fmt: skip
    """A single value of the Overview row, its background coloured by ``steps``."""
    panel = (
        stat_kind.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .mappings([_value_map(mappings)] if mappings else [])
        .thresholds(_thresholds(steps))
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False))
        .color_mode(kinds.BigValueColorMode.BACKGROUND)
        .graph_mode(kinds.BigValueGraphMode.AREA)
        .text_mode(kinds.BigValueTextMode.AUTO)
        .justify_mode(kinds.BigValueJustifyMode.AUTO)
        .orientation(kinds.VizOrientation.AUTO)
        .targets(_targets([query]))
    )
    return Placed(width, 4, panel)


def timeseries(
    title: str, description: str, unit: str, queries: Sequence[Q], *, width: int,
    stacked: bool = False, max: float | None = None, decimals: int | None = None,
    mappings: ValueMap | None = None, color: str | None = None,
) -> Placed:  # fmt: skip
    """A graph over time, from 0, with a table legend (last and max) under it."""
    panel = (
        timeseries_kind.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .draw_style(kinds.GraphDrawStyle.LINE)
        .line_width(1)
        .fill_opacity(10)
        .show_points(kinds.VisibilityMode.NEVER)
        .span_nulls(False)
        .stacking(
            common.StackingConfig()
            .mode(kinds.StackingMode.NORMAL if stacked else kinds.StackingMode.NONE)
            .group("A")
        )
        .min(0)
        .legend(
            common.VizLegendOptions()
            .show_legend(True)
            .display_mode(kinds.LegendDisplayMode.TABLE)
            .placement(kinds.LegendPlacement.BOTTOM)
            .calcs(["lastNotNull", "max"])
        )
        .tooltip(
            common.VizTooltipOptions()
            .mode(kinds.TooltipDisplayMode.MULTI)
            .sort(kinds.SortOrder.DESCENDING)
        )
        .targets(_targets(queries))
    )
    if max is not None:
        panel.max(max)
    if decimals is not None:
        panel.decimals(decimals)
    if mappings:
        panel.mappings([_value_map(mappings)])
    if color:
        panel.color_scheme(board.FieldColor().mode(model.FieldColorModeId.FIXED).fixed_color(color))
    return Placed(width, 8, panel)


def _targets(queries: Sequence[Q]) -> list[Builder[variants.Dataquery]]:
    return [
        prometheus.Dataquery()
        .ref_id(chr(ord("A") + n))
        .expr(q.expr)
        .legend_format(q.legend)
        .range()
        .datasource(DATASOURCE)
        for n, q in enumerate(queries)
    ]


def _thresholds(steps: Steps) -> board.ThresholdsConfig:
    return (
        board.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=colour) for value, colour in steps])
    )


def _value_map(values: ValueMap) -> model.ValueMap:
    return model.ValueMap(
        options={k: model.ValueMappingResult(text=t, color=c) for k, (t, c) in values.items()}
    )


ROWS = [
    Row(
        "Overview",
        [
            [
                stat(
                    "Ready replicas",
                    (
                        "Processes whose /readyz reports ready (assigned, token valid, circuit "
                        "closed, DLQ producer healthy)."
                    ),
                    "short",
                    Q(f"sum(timeback_relay_ready{SEL})"),
                    steps=[(None, "red"), (1, "green")],
                ),
                stat(
                    "Assigned partitions",
                    "Partitions assigned across the selected processes.",
                    "short",
                    Q(f"sum(timeback_relay_assigned_partitions{SEL})"),
                    steps=[(None, "green")],
                ),
                stat(
                    "Consumer lag",
                    ("Records waiting: end offset minus committed offset, summed over partitions."),
                    "short",
                    Q(f"sum(max by (topic, partition) (timeback_relay_consumer_lag{SEL}))"),
                    steps=[(None, "green"), (1000, "orange"), (10000, "red")],
                ),
                stat(
                    "Circuit",
                    "Worst circuit breaker state among the selected processes.",
                    "short",
                    Q(f"max(timeback_relay_circuit_state{SEL})"),
                    steps=[(None, "green"), (1, "red")],
                    mappings={
                        "0": ("closed", "green"),
                        "1": ("open", "red"),
                        "2": ("half-open", "orange"),
                    },
                ),
                stat(
                    "DLQ write failures",
                    (
                        "Failed dead-letter writes in the time range: each blocks its partition "
                        "(risk of loss). Must be 0."
                    ),
                    "short",
                    Q(f"sum(increase(timeback_relay_dlq_write_failures_total{SEL}[$__range]))"),
                    steps=[(None, "green"), (1, "red")],
                ),
                stat(
                    "Token expires in",
                    "Time until the soonest-expiring access token among the selected processes.",
                    "s",
                    Q(f"min(timeback_relay_token_expiry_timestamp_seconds{SEL} > 0) - time()"),
                    steps=[(None, "red"), (60, "orange"), (300, "green")],
                ),
            ],
        ],
    ),
    Row(
        "Throughput",
        [
            [
                timeseries(
                    "Records: consumed, decoded, acknowledged, rejected",
                    (
                        "Records per second read from the input topics, decoded, acknowledged in "
                        "offset order, and rejected (dead-lettered)."
                    ),
                    "reqps",
                    [
                        Q(
                            (
                                f"sum(rate(timeback_relay_records_consumed_total{SEL}[$__rate_interval]))"
                            ),
                            "consumed",
                        ),
                        Q(
                            (
                                f"sum(rate(timeback_relay_records_decoded_total{SEL}[$__rate_interval]))"
                            ),
                            "decoded",
                        ),
                        Q(
                            f"sum(rate(timeback_relay_records_acked_total{SEL}[$__rate_interval]))",
                            "acknowledged",
                        ),
                        Q(
                            (
                                f"sum(rate(timeback_relay_records_rejected_total{SEL}[$__rate_interval]))"
                            ),
                            "rejected",
                        ),
                    ],
                    width=12,
                ),
                timeseries(
                    "Caliper events sent by outcome",
                    (
                        "Events per second by outcome: delivered (2xx), duplicate (409, already "
                        "there), rejected (400/413/422, dead-lettered). With "
                        "RELAY_EVENTS_PER_REQUEST above 1, also envelopes per second: delivered, "
                        "or split (refused, out of retries or 409; sent again in halves)."
                    ),
                    "reqps",
                    [
                        Q(
                            (
                                "sum by (outcome) "
                                f"(rate(timeback_relay_events_sent_total{SEL}[$__rate_interval]))"
                            ),
                            "{{outcome}}",
                        ),
                        Q(
                            (
                                "sum by (outcome) "
                                f"(rate(timeback_relay_envelopes_total{SEL}[$__rate_interval]))"
                            ),
                            "envelopes {{outcome}}",
                        ),
                    ],
                    width=12,
                ),
            ],
            [
                timeseries(
                    "Caliper events sent by type",
                    "Events per second by Caliper event type.",
                    "reqps",
                    [
                        Q(
                            (
                                "sum by (type) "
                                f"(rate(timeback_relay_events_sent_total{SEL}[$__rate_interval]))"
                            ),
                            "{{type}}",
                        )
                    ],
                    width=12,
                    stacked=True,
                ),
                timeseries(
                    "Records decoded by record type",
                    "Decoded and validated records per second by activity record type.",
                    "reqps",
                    [
                        Q(
                            (
                                "sum by (record_type) "
                                f"(rate(timeback_relay_records_decoded_total{SEL}[$__rate_interval]))"
                            ),
                            "{{record_type}}",
                        )
                    ],
                    width=12,
                    stacked=True,
                ),
            ],
        ],
    ),
    Row(
        "Latency",
        [
            [
                timeseries(
                    "Delivery lag (activity time to delivered)",
                    (
                        "Quantiles of the time from the activity's occurred_at to the API "
                        "accepting its event."
                    ),
                    "s",
                    [
                        Q(
                            (
                                "histogram_quantile(0.5, sum by (le) "
                                f"(rate(timeback_relay_delivery_lag_seconds_bucket{SEL}[$__rate_interval])))"
                            ),
                            "p50",
                        ),
                        Q(
                            (
                                "histogram_quantile(0.9, sum by (le) "
                                f"(rate(timeback_relay_delivery_lag_seconds_bucket{SEL}[$__rate_interval])))"
                            ),
                            "p90",
                        ),
                        Q(
                            (
                                "histogram_quantile(0.99, sum by (le) "
                                f"(rate(timeback_relay_delivery_lag_seconds_bucket{SEL}[$__rate_interval])))"
                            ),
                            "p99",
                        ),
                    ],
                    width=12,
                ),
                timeseries(
                    "Partner API latency by endpoint",
                    "Quantiles of Partner API request latency (each attempt, retries included).",
                    "s",
                    [
                        Q(
                            (
                                "histogram_quantile(0.5, sum by (le, endpoint) "
                                f"(rate(timeback_relay_http_request_duration_seconds_bucket{SEL}[$__rate_interval])))"
                            ),
                            "p50 {{endpoint}}",
                        ),
                        Q(
                            (
                                "histogram_quantile(0.95, sum by (le, endpoint) "
                                f"(rate(timeback_relay_http_request_duration_seconds_bucket{SEL}[$__rate_interval])))"
                            ),
                            "p95 {{endpoint}}",
                        ),
                        Q(
                            (
                                "histogram_quantile(0.99, sum by (le, endpoint) "
                                f"(rate(timeback_relay_http_request_duration_seconds_bucket{SEL}[$__rate_interval])))"
                            ),
                            "p99 {{endpoint}}",
                        ),
                    ],
                    width=12,
                ),
            ],
            [
                timeseries(
                    "Mean Partner API latency by endpoint",
                    "Average request latency (sum / count).",
                    "s",
                    [
                        Q(
                            (
                                "sum by (endpoint) "
                                f"(rate(timeback_relay_http_request_duration_seconds_sum{SEL}"
                                "[$__rate_interval])) "
                                "/ sum by (endpoint) "
                                f"(rate(timeback_relay_http_request_duration_seconds_count{SEL}"
                                "[$__rate_interval]))"
                            ),
                            "{{endpoint}}",
                        )
                    ],
                    width=12,
                ),
                timeseries(
                    "Mean delivery lag",
                    "Average delivery lag (sum / count).",
                    "s",
                    [
                        Q(
                            (
                                f"sum(rate(timeback_relay_delivery_lag_seconds_sum{SEL}"
                                "[$__rate_interval])) "
                                "/ "
                                f"sum(rate(timeback_relay_delivery_lag_seconds_count{SEL}"
                                "[$__rate_interval]))"
                            ),
                            "mean",
                        )
                    ],
                    width=12,
                ),
            ],
        ],
    ),
    Row(
        "Partner API",
        [
            [
                timeseries(
                    "Responses by status class",
                    (
                        "Partner API requests per second by status class (error: no response, e.g. "
                        "timeout or reset)."
                    ),
                    "reqps",
                    [
                        Q(
                            (
                                "sum by (status_class) "
                                f"(rate(timeback_relay_http_requests_total{SEL}[$__rate_interval]))"
                            ),
                            "{{status_class}}",
                        )
                    ],
                    width=12,
                    stacked=True,
                ),
                timeseries(
                    "Retries by cause",
                    (
                        "Transient failures retried per second, by endpoint and cause (status "
                        "code, timeout, connect)."
                    ),
                    "reqps",
                    [
                        Q(
                            (
                                "sum by (endpoint, cause) "
                                f"(rate(timeback_relay_retries_total{SEL}[$__rate_interval]))"
                            ),
                            "{{endpoint}} {{cause}}",
                        )
                    ],
                    width=12,
                    stacked=True,
                ),
            ],
            [
                timeseries(
                    "Circuit state",
                    (
                        "0 closed, 1 open, 2 half-open, per process. While open, consumption "
                        "pauses and nothing is dead-lettered."
                    ),
                    "short",
                    [Q(f"max by (instance) (timeback_relay_circuit_state{SEL})", "{{instance}}")],
                    width=8,
                    max=2,
                    decimals=0,
                    mappings={"0": ("closed", None), "1": ("open", None), "2": ("half-open", None)},
                ),
                timeseries(
                    "Circuit transitions",
                    "Circuit breaker state changes in each interval, by the state entered.",
                    "short",
                    [
                        Q(
                            (
                                "sum by (to) "
                                f"(increase(timeback_relay_circuit_transitions_total{SEL}[$__rate_interval]))"
                            ),
                            "to {{to}}",
                        )
                    ],
                    width=8,
                ),
                timeseries(
                    "Systemic errors",
                    (
                        "Configuration or permission failures (403, 404 on /events, repeated 401; "
                        "a Kafka login the brokers refuse): never dead-lettered, always a "
                        "configuration fix."
                    ),
                    "short",
                    [
                        Q(
                            (
                                "sum by (endpoint, status) "
                                f"(increase(timeback_relay_systemic_errors_total{SEL}[$__rate_interval]))"
                            ),
                            "{{endpoint}} {{status}}",
                        ),
                        Q(
                            (
                                "sum by (instance) "
                                f"(increase(timeback_relay_kafka_auth_failures_total{SEL}[$__rate_interval]))"
                            ),
                            "{{instance}} Kafka login refused",
                        ),
                    ],
                    width=8,
                ),
            ],
        ],
    ),
    Row(
        "Dead letters",
        [
            [
                timeseries(
                    "DLQ writes by reason",
                    "Records written to the dead-letter topic per second, by reason.",
                    "reqps",
                    [
                        Q(
                            (
                                "sum by (reason) "
                                f"(rate(timeback_relay_dlq_writes_total{SEL}[$__rate_interval]))"
                            ),
                            "{{reason}}",
                        )
                    ],
                    width=8,
                    stacked=True,
                ),
                timeseries(
                    "Rejections by stage and reason",
                    "Records rejected per second, by pipeline stage and reason.",
                    "reqps",
                    [
                        Q(
                            (
                                "sum by (stage, reason) "
                                f"(rate(timeback_relay_records_rejected_total{SEL}[$__rate_interval]))"
                            ),
                            "{{stage}} / {{reason}}",
                        )
                    ],
                    width=8,
                    stacked=True,
                ),
                timeseries(
                    "DLQ write failures",
                    (
                        "Failed dead-letter writes per interval, per process. Any value above 0 "
                        "blocks a partition."
                    ),
                    "short",
                    [
                        Q(
                            (
                                "sum by (instance) "
                                f"(increase(timeback_relay_dlq_write_failures_total{SEL}[$__rate_interval]))"
                            ),
                            "{{instance}}",
                        ),
                        Q(
                            (
                                "sum by (instance, error) "
                                f"(increase(timeback_relay_dlq_permanent_failures_total{SEL}[$__rate_interval]))"
                            ),
                            "{{instance}} permanent: {{error}}",
                        ),
                    ],
                    width=8,
                    color="red",
                ),
            ],
        ],
    ),
    Row(
        "Consumer",
        [
            [
                timeseries(
                    "Consumer lag per partition",
                    "End offset minus committed offset for each assigned partition.",
                    "short",
                    [
                        Q(
                            f"max by (topic, partition) (timeback_relay_consumer_lag{SEL})",
                            "{{topic}} [{{partition}}]",
                        )
                    ],
                    width=12,
                ),
                timeseries(
                    "In flight and pending",
                    (
                        "Records being processed (bounded by RELAY_MAX_IN_FLIGHT) and records read "
                        "but not yet acknowledged (bounded by RELAY_MAX_PENDING): pending far "
                        "above in flight means one slow record holds back its partition's "
                        "acknowledgements."
                    ),
                    "short",
                    [
                        Q(
                            f"sum by (instance) (timeback_relay_in_flight{SEL})",
                            "in flight {{instance}}",
                        ),
                        Q(
                            f"sum by (instance) (timeback_relay_pending{SEL})",
                            "pending {{instance}}",
                        ),
                    ],
                    width=6,
                ),
                timeseries(
                    "Assigned partitions and rebalances per process",
                    "Partitions assigned to each process of the consumer group.",
                    "short",
                    [
                        Q(
                            f"sum by (instance) (timeback_relay_assigned_partitions{SEL})",
                            "{{instance}}",
                        ),
                        Q(
                            (
                                "sum by (instance) "
                                f"(increase(timeback_relay_rebalances_total{SEL}[$__rate_interval]))"
                            ),
                            "rebalances {{instance}}",
                        ),
                    ],
                    width=6,
                    decimals=0,
                ),
            ],
        ],
    ),
    Row(
        "Token and enrichment",
        [
            [
                timeseries(
                    "Token refreshes by outcome",
                    "Access token requests per interval, ok and failed.",
                    "short",
                    [
                        Q(
                            (
                                "sum by (outcome) "
                                f"(increase(timeback_relay_token_refreshes_total{SEL}[$__rate_interval]))"
                            ),
                            "{{outcome}}",
                        )
                    ],
                    width=8,
                ),
                timeseries(
                    "Token expires in",
                    "Seconds until each process's access token expires (no line: no token).",
                    "s",
                    [
                        Q(
                            f"(timeback_relay_token_expiry_timestamp_seconds{SEL} > 0) - time()",
                            "{{instance}}",
                        )
                    ],
                    width=8,
                ),
                timeseries(
                    "Course lookups by source and result",
                    (
                        "Course resolutions per second: from the record, the course map, the cache "
                        "or the rostering API."
                    ),
                    "reqps",
                    [
                        Q(
                            (
                                "sum by (source, result) "
                                f"(rate(timeback_relay_course_lookups_total{SEL}[$__rate_interval]))"
                            ),
                            "{{source}} {{result}}",
                        )
                    ],
                    width=8,
                    stacked=True,
                ),
            ],
            [
                timeseries(
                    "Course-lookup cache hit ratio",
                    (
                        "Share of course lookups answered by the cache among those that needed a "
                        "lookup (cache + api)."
                    ),
                    "percentunit",
                    [
                        Q(
                            (
                                'sum(rate(timeback_relay_course_lookups_total{job=~"$job", '
                                'instance=~"$instance", source="cache"}[$__rate_interval])) / '
                                'sum(rate(timeback_relay_course_lookups_total{job=~"$job", '
                                'instance=~"$instance", source=~"cache|api"}[$__rate_interval]))'
                            ),
                            "hit ratio",
                        )
                    ],
                    width=8,
                    max=1,
                ),
            ],
            [
                timeseries(
                    "Events held by a systemic answer",
                    (
                        "Events whose delivery waits on a 403, 404, 3xx or repeated 401 (each "
                        "blocks its student's later records and its partition's commits); /readyz "
                        "reports api_accepting=false while any is held. One event's own refusal is "
                        "dead-lettered once the API accepts others."
                    ),
                    "short",
                    [Q(f"sum by (status) (timeback_relay_events_held{SEL})", "HTTP {{status}}")],
                    width=12,
                ),
                timeseries(
                    "API failure rate (brownout)",
                    (
                        "Share of event POSTs failing transiently over RELAY_BROWNOUT_WINDOW; at "
                        "RELAY_BROWNOUT_RATE or more, retry budgets pause (nothing is "
                        "dead-lettered for a brownout)."
                    ),
                    "percentunit",
                    [
                        Q(
                            f"max by (instance) (timeback_relay_api_failure_rate{SEL})",
                            "{{instance}}",
                        )
                    ],
                    width=12,
                    max=1,
                ),
            ],
        ],
    ),
    Row(
        "Rate limits and concurrency",
        [
            [
                timeseries(
                    "Requests in flight and the concurrency limit",
                    (
                        "The in-flight limit of API requests (RELAY_MAX_IN_FLIGHT when fixed, "
                        "the AIMD limit when adaptive; after an outage or a pause the API asked "
                        "for, it restarts at 1 and climbs) and the requests in flight."
                    ),
                    "short",
                    [
                        Q(
                            f"max by (instance) (timeback_relay_request_concurrency_limit{SEL})",
                            "limit {{instance}}",
                        ),
                        Q(
                            f"max by (instance) (timeback_relay_requests_in_flight{SEL})",
                            "in flight {{instance}}",
                        ),
                    ],
                    width=8,
                ),
                timeseries(
                    "Rate limit and tokens",
                    (
                        "Requests per second the limiter allows now "
                        "(RELAY_MAX_REQUESTS_PER_SECOND; lower while it climbs back after an "
                        "outage; 0: none) and the tokens in its bucket."
                    ),
                    "short",
                    [
                        Q(
                            f"max by (instance) (timeback_relay_request_rate_limit{SEL})",
                            "rate {{instance}}",
                        ),
                        Q(
                            f"max by (instance) (timeback_relay_request_tokens{SEL})",
                            "tokens {{instance}}",
                        ),
                    ],
                    width=8,
                ),
                timeseries(
                    "Pauses the API asked for",
                    (
                        "Answers (429, 503, Retry-After) that paused every request of a process, "
                        "per second by status, and the seconds of pause left. Sustained: the API "
                        "is rate-limiting the relay (alert TimebackRelayRateLimitedByApi)."
                    ),
                    "short",
                    [
                        Q(
                            "sum by (instance, status) (rate(timeback_relay_api_pauses_total"
                            f"{SEL}[$__rate_interval]))",
                            "{{status}} {{instance}}",
                        ),
                        Q(
                            f"max by (instance) (timeback_relay_request_pause_seconds{SEL})",
                            "pause left (s) {{instance}}",
                        ),
                    ],
                    width=8,
                ),
            ],
            [
                timeseries(
                    "Requests that waited, by reason",
                    (
                        "API requests per second held before being sent, by what held them most: "
                        "pause (Retry-After), concurrency (the in-flight limit), rate (the token "
                        "bucket)."
                    ),
                    "reqps",
                    [
                        Q(
                            "sum by (reason) (rate(timeback_relay_limiter_waits_total"
                            f"{SEL}[$__rate_interval]))",
                            "{{reason}}",
                        )
                    ],
                    width=12,
                ),
                timeseries(
                    "Mean wait of requests that waited",
                    "Seconds a request that waited spent waiting (the limiter's wait histogram).",
                    "s",
                    [
                        Q(
                            "sum(rate(timeback_relay_limiter_wait_seconds_sum"
                            f"{SEL}[$__rate_interval])) / sum(rate("
                            f"timeback_relay_limiter_wait_seconds_count{SEL}[$__rate_interval]))",
                            "mean wait",
                        )
                    ],
                    width=12,
                ),
            ],
        ],
    ),
]


def build(rows: Sequence[Row] = ROWS) -> dict[str, Any]:
    """The dashboard's JSON model, as Grafana imports it."""
    dashboard = (
        board.Dashboard("timeback-relay")
        .uid("timeback-relay")
        .description(
            "Kafka to TimeBack Partner API relay: throughput, latency, API responses, dead "
            "letters, consumer lag, tokens and course lookups."
        )
        .tags(["timeback-relay", "kafka", "caliper"])
        .timezone("browser")
        .editable()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .refresh("30s")
        .time("now-1h", "now")
        .with_variable(
            board.DatasourceVariable("datasource").label("Data source").type("prometheus")
        )
        .with_variable(_instances("job", "Job", "label_values(timeback_relay_ready, job)"))
        .with_variable(
            _instances(
                "instance", "Instance", 'label_values(timeback_relay_ready{job=~"$job"}, instance)'
            )
        )
    )
    next_id, y = 1, 0
    for row in rows:
        dashboard.with_row(
            board.Row(row.title).id(next_id).grid_pos(model.GridPos(h=1, w=24, x=0, y=y))
        )
        next_id, y = next_id + 1, y + 1
        for line in row.lines:
            x = 0
            for placed in line:
                placed.panel.id(next_id).grid_pos(
                    model.GridPos(h=placed.height, w=placed.width, x=x, y=y)
                )
                dashboard.with_panel(placed.panel)
                next_id, x = next_id + 1, x + placed.width
            y += max(placed.height for placed in line)
    encoded: dict[str, Any] = json.loads(JSONEncoder().encode(dashboard.build()))
    encoded["id"] = None  # for import: the SDK leaves an unset id out, Grafana wants it null
    return encoded


def _instances(name: str, label: str, query: str) -> board.QueryVariable:
    """A job or instance selector: several at once, all by default."""
    return (
        board.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".+")
        .current(model.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    wanted = render()
    if "--check" in argv:
        if OUTPUT.read_text() != wanted:
            print(f"{OUTPUT} is stale: run python deploy/grafana/dashboard.py")
            return 1
        return 0
    OUTPUT.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
