"""A real Prometheus scrapes the relay; every dashboard query and alert expression is evaluated.

Prometheus is the Debian package's binary (deploy/prometheus/install.sh installs it when missing),
started on a free port with temporary storage, a 1 s scrape interval, the scrape job of
deploy/prometheus/prometheus.yml pointed at the process under test, and deploy/prometheus/alerts.yml
as its rule file. Queries go through its HTTP API (/api/v1/query); Grafana's variables are
substituted as Grafana would ($__rate_interval, $job, $instance).

- ``test_harness_*``: the relay's metric catalogue served by a small exporter subprocess that
  drives every metric: every panel returns data, every alert expression evaluates, every rule
  loads healthy, and the alerts react (a failed dead-letter write fires, a dead target shows up).
- ``test_end_to_end_*``: ``relay run`` against the local Kafka and the sandbox, with records
  produced by ``relay.contract.encode``: the throughput, latency and lag panels return data.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
import yaml

from bench.ports import free_port
from tests.conftest import TopicFactory
from tests.unit.test_deploy_observability import (
    ALERTS,
    PROMETHEUS_CONFIG,
    alert_exprs,
    dashboard_panel_exprs,
    find_prometheus_tool,
    iter_panels,
    load_alert_rules,
    load_dashboard,
    variable_selectors,
)

pytestmark = pytest.mark.integration

RENDER_PANELS = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "render_panels.py"
JOB = "timeback-relay"  # the job name of deploy/prometheus/prometheus.yml, which the alerts select
GRAFANA_RANGES = {"$__rate_interval": "1m", "$__range": "5m", "$__interval": "15s"}


# -- a real Prometheus ---------------------------------------------------------------------------


@dataclass
class Prometheus:
    url: str
    target: str
    process: subprocess.Popen[bytes]
    log: Path

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", (path, params, body)
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar, as one sample) of ``expr``; fails on any error."""
        data = self.api("query", query=expr)
        if data["resultType"] == "vector":
            result: list[dict[str, Any]] = data["result"]
            return result
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        raise AssertionError(f"{expr}: unexpected result type {data['resultType']}")

    def grafana_query(self, expr: str) -> list[dict[str, Any]]:
        """``expr`` as Grafana would send it with job and instance set to this target."""
        for variable, value in GRAFANA_RANGES.items():
            expr = expr.replace(variable, value)
        expr = expr.replace("$job", JOB).replace("$instance", self.target)
        assert "$" not in expr, f"an unknown Grafana variable is left in {expr}"
        return self.query(expr)

    def wait_for(self, expr: str, timeout: float, alive: Callable[[], None] = lambda: None) -> Any:
        """Poll ``expr`` until it returns data; its result."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            alive()
            result = self.query(expr)
            if result:
                return result
            time.sleep(0.5)
        raise AssertionError(f"no data for {expr} within {timeout:g}s; log tail:\n{self.tail()}")

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])


def prometheus_config(target: str) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with the target, a 1 s cadence and an absolute rule path."""
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(ALERTS)]
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": [target]}]
    return config


@pytest.fixture
def start_prometheus(tmp_path: Path) -> Iterator[Callable[[str], Prometheus]]:
    binary = find_prometheus_tool("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed and cannot be (needs root and apt-get)")
    started: list[Prometheus] = []

    def start(target: str) -> Prometheus:
        workdir = tmp_path / f"prometheus-{len(started)}"
        workdir.mkdir()
        config = workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(prometheus_config(target)))
        port = free_port()
        log = workdir / "prometheus.log"
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        prometheus = Prometheus(f"http://127.0.0.1:{port}", target, process, log)
        started.append(prometheus)
        _wait_http(f"{prometheus.url}/-/ready", 60, process, log)
        return prometheus

    yield start
    for prometheus in started:
        _stop(prometheus.process)


def _wait_http(url: str, timeout: float, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise AssertionError(f"{process.args!r} exited with {process.returncode}:\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer 200 within {timeout:g}s")


def _stop(process: subprocess.Popen[bytes], grace: float = 10) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _values(result: list[dict[str, Any]]) -> list[float]:
    return [float(sample["value"][1]) for sample in result]


def _panel(title: str) -> list[str]:
    exprs = [expr for where, expr in dashboard_panel_exprs() if where.startswith(f"{title} / ")]
    assert exprs, f"no panel titled {title!r}"
    return exprs


def _assert_everything_evaluates(prometheus: Prometheus) -> dict[str, list[dict[str, Any]]]:
    """Every panel query, template variable and alert expression: evaluated without error."""
    results = {where: prometheus.grafana_query(expr) for where, expr in dashboard_panel_exprs()}
    for name, selector, label in variable_selectors():
        series = prometheus.api("series", **{"match[]": selector.replace("$job", JOB)})
        assert {s.get(label) for s in series} - {None}, f"variable {name}: no {label} values"
    for alert, expr in alert_exprs():
        results[f"alert {alert}"] = prometheus.query(expr)
    return results


def _assert_rules_healthy(prometheus: Prometheus) -> None:
    """Every alert rule loaded and evaluated by Prometheus' rule manager without error."""
    deadline = time.monotonic() + 30
    while True:
        groups = prometheus.api("rules", type="alert")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        evaluated = all(r["lastEvaluation"] > "0001-01-01T00:00:00Z" for r in rules)
        if evaluated or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert {r["name"] for r in rules} == {r["alert"] for r in load_alert_rules()}
    for rule in rules:
        assert rule["health"] == "ok", (rule["name"], rule.get("lastError"))


# -- the harness: the catalogue served by a small exporter ---------------------------------------

EXPORTER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from prometheus_client import start_http_server
    from relay import metrics as m

    start_http_server(int(sys.argv[1]), addr="127.0.0.1", registry=m.REGISTRY)
    trigger, failed = Path(sys.argv[2]), False
    m.READY.set(1)
    m.ASSIGNED_PARTITIONS.set(2)
    m.CIRCUIT_STATE.set(0)
    m.TOKEN_REFRESHES.labels(outcome="ok").inc()
    m.TOKEN_EXPIRY.set(time.time() + 3600)
    n = 0
    while True:
        n += 1
        m.RECORDS_CONSUMED.labels(topic="t").inc(10)
        m.RECORDS_DECODED.labels(record_type="timeback.activity.XpEarned").inc(9)
        m.RECORDS_REJECTED.labels(stage="decode", reason="unknown-framing").inc()
        m.RECORDS_ACKED.labels(topic="t").inc(10)
        m.EVENTS_SENT.labels(type="GradeEvent", outcome="delivered").inc(9)
        m.ENVELOPES.labels(outcome="delivered").inc()
        m.REBALANCES.inc(n % 2)
        m.HTTP_REQUESTS.labels(endpoint="events", status_class="2xx").inc(9)
        m.HTTP_REQUESTS.labels(endpoint="events", status_class="5xx").inc()
        m.RETRIES.labels(endpoint="events", cause="503").inc()
        m.SYSTEMIC_ERRORS.labels(endpoint="events", status="403")
        m.EVENTS_HELD.labels(status="403").set(n % 2)
        m.API_FAILURE_RATE.set((n % 10) / 10)
        m.CIRCUIT_TRANSITIONS.labels(to="open").inc(n % 2)
        m.HTTP_LATENCY.labels(endpoint="events").observe(0.02 + (n % 5) / 100)
        m.DELIVERY_LAG.observe(0.5 + n % 3)
        m.DLQ_WRITES.labels(reason="unknown-framing").inc()
        m.DLQ_PERMANENT_FAILURES.labels(error="MSG_SIZE_TOO_LARGE")
        m.COURSE_LOOKUPS.labels(source="cache", result="hit").inc(3)
        m.COURSE_LOOKUPS.labels(source="api", result="found").inc()
        m.IN_FLIGHT.set(n % 7)
        m.REQUEST_CONCURRENCY_LIMIT.set(1 + n % 64)
        m.REQUESTS_IN_FLIGHT.set(n % 7)
        m.REQUEST_RATE_LIMIT.set(100)
        m.REQUEST_TOKENS.set(n % 100)
        m.REQUEST_PAUSE_SECONDS.set(n % 2)
        m.API_PAUSES.labels(status="429").inc()
        m.LIMITER_WAITS.labels(reason="rate").inc()
        m.LIMITER_WAIT_SECONDS.observe(0.01 * (1 + n % 5))
        m.CONSUMER_LAG.labels(topic="t", partition="0").set(100 + n)
        m.CONSUMER_LAG.labels(topic="t", partition="1").set(50)
        if not failed and trigger.exists():
            m.DLQ_WRITE_FAILURES.inc()
            failed = True
        time.sleep(0.2)
    """
)


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The catalogue on a free port; one dead-letter write fails once ``fail-dlq`` exists."""
    port = free_port()
    script = tmp_path / "exporter.py"
    script.write_text(EXPORTER)
    log = tmp_path / "exporter.log"
    process = subprocess.Popen(
        [sys.executable, str(script), str(port), str(tmp_path / "fail-dlq")],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/metrics", 30, process, log)
        yield f"127.0.0.1:{port}", process
    finally:
        _stop(process)


def test_harness_every_panel_returns_data_and_every_alert_evaluates(
    start_prometheus: Callable[[str], Prometheus],
    exporter: tuple[str, subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    target, _ = exporter
    prometheus = start_prometheus(target)
    prometheus.wait_for(f'count_over_time(timeback_relay_ready{{job="{JOB}"}}[1m]) >= 5', 60)

    results = _assert_everything_evaluates(prometheus)
    empty = [where for where, r in results.items() if not r and not where.startswith("alert ")]
    assert empty == [], "panels without data although the exporter drives every metric"
    # p50 of latencies spread over 0.02..0.06 s, interpolated in the (0.025, 0.05] bucket
    (p50,) = _values(prometheus.grafana_query(_panel("Partner API latency by endpoint")[0]))
    assert 0.025 < p50 <= 0.05
    lag = prometheus.grafana_query(_panel("Consumer lag per partition")[0])
    assert sorted(s["metric"]["partition"] for s in lag) == ["0", "1"]

    # a dead-letter write fails: the alert without a `for` fires
    assert results["alert TimebackRelayDeadLetterWriteFailing"] == []
    (tmp_path / "fail-dlq").touch()
    firing = prometheus.wait_for(
        'ALERTS{alertname="TimebackRelayDeadLetterWriteFailing", alertstate="firing"}', 30
    )
    assert firing[0]["metric"]["instance"] == target
    _assert_rules_healthy(prometheus)

    # the picture of the panels (deploy/grafana/render_panels.py): one chart per time series
    picture = tmp_path / "dashboard.svg"
    render = [str(RENDER_PANELS), f"--prometheus={prometheus.url}", f"--instance={target}"]
    subprocess.run([sys.executable, *render, "--minutes=1", f"--out={picture}"], check=True)
    svg, ns = ElementTree.parse(picture).getroot(), "{http://www.w3.org/2000/svg}"
    charts = [g for g in svg.iter(f"{ns}g") if g.get("id", "").startswith("panel-")]
    timeseries = [p for p in iter_panels(load_dashboard()["panels"]) if p["type"] == "timeseries"]
    assert len(charts) == len(timeseries)
    lines = [[g for g in c.iter(f"{ns}g") if g.get("id", "").startswith("series-")] for c in charts]
    assert all(any(line.find(f"{ns}path") is not None for line in found) for found in lines)


def test_harness_target_down_matches_the_down_alert(
    start_prometheus: Callable[[str], Prometheus],
    exporter: tuple[str, subprocess.Popen[bytes]],
) -> None:
    target, process = exporter
    prometheus = start_prometheus(target)
    (down,) = alert_exprs_named("TimebackRelayDown")
    prometheus.wait_for(f'up{{job="{JOB}"}} == 1', 30)
    assert prometheus.query(down) == []
    _stop(process)
    result = prometheus.wait_for(down, 30)
    assert result[0]["metric"]["instance"] == target


def alert_exprs_named(name: str) -> list[str]:
    return [expr for alert, expr in alert_exprs() if alert == name]


# -- end to end: `relay run` between the local Kafka and the sandbox -----------------------------

VALID, INVALID = 60, 2
APP_ID, CLIENT_ID, CLIENT_SECRET = "sandbox-app", "sandbox-client", "sandbox-secret"


def _records(count: int) -> list[tuple[bytes, bytes]]:
    """(key, value) of ``count`` XpEarned records of a few students, framed by the encoder."""
    from relay.contract import encode

    students = [str(uuid.uuid4()) for _ in range(6)]
    now = datetime.now(UTC)
    records = []
    for n in range(count):
        student = students[n % len(students)]
        value = {
            "event_id": str(uuid.uuid4()),
            "occurred_at": now - timedelta(seconds=2),
            "student_id": student,
            "activity": {"id": f"obs-math-5/lessons/{n % 4}", "name": f"Lesson {n % 4}"},
            "xp": float(1 + n % 10),
            "course_id": "obs-math-5",
            "subject": "Math",
        }
        records.append((student.encode(), encode("XpEarned", value)))
    return records


@pytest.fixture
def relay_run(
    tmp_path: Path, kafka_bootstrap: str, make_topic: TopicFactory, sandbox: Any
) -> Iterator[tuple[str, str, subprocess.Popen[bytes], Path]]:
    """``relay run`` (a subprocess) on a fresh 2-partition topic; (target, topic, process, log)."""
    topic, dlq = make_topic("obs", partitions=2), make_topic("obs-dlq")
    port = free_port()
    env = dict(
        os.environ,
        RELAY_KAFKA_BOOTSTRAP=kafka_bootstrap,
        RELAY_TOPICS=topic,
        RELAY_DLQ_TOPIC=dlq,
        RELAY_GROUP_ID=f"obs-{uuid.uuid4().hex[:8]}",
        RELAY_API_BASE_URL=sandbox.url,
        RELAY_ALLOW_INSECURE_HTTP="true",
        RELAY_CLIENT_ID=CLIENT_ID,
        RELAY_CLIENT_SECRET=CLIENT_SECRET,
        RELAY_APP_ID=APP_ID,
        RELAY_ACTIVITY_BASE_URL="https://obs-app.example",
        RELAY_WEB_HOST="127.0.0.1",
        RELAY_WEB_PORT=str(port),
        RELAY_SHUTDOWN_GRACE="5",
        RELAY_LOG_LEVEL="INFO",
    )
    log = tmp_path / "relay.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "relay.cli", "run"],
        env=env,
        cwd=tmp_path,  # faust's data directory and no stray .env
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/metrics", 90, process, log)
        yield f"127.0.0.1:{port}", topic, process, log
    finally:
        _stop(process, grace=15)


@pytest.mark.skipif(
    importlib.util.find_spec("relay.pipeline.worker") is None,
    reason="`relay run` is not written yet (relay/pipeline/worker.py is missing)",
)
def test_end_to_end_panels_return_data_during_a_relay_run(
    start_prometheus: Callable[[str], Prometheus],
    relay_run: tuple[str, str, subprocess.Popen[bytes], Path],
    kafka_bootstrap: str,
) -> None:
    from confluent_kafka import Producer

    target, topic, process, log = relay_run

    def alive() -> None:
        if process.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise AssertionError(f"relay run exited with {process.returncode}:\n{tail}")

    prometheus = start_prometheus(target)
    prometheus.wait_for(f'up{{job="{JOB}"}} == 1', 30, alive)
    # assigned partitions before producing, so the lag gauge has both partitions
    prometheus.wait_for("sum(timeback_relay_assigned_partitions) == 2", 90, alive)

    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 5})
    records = _records(VALID)
    records[10:10] = [(b"bad", b"\x7fnot a framed record")] * INVALID  # unknown-framing
    for n, (key, value) in enumerate(records):
        producer.produce(topic, value, key)
        if n % 10 == 9:  # spread over a few scrapes, so rates have more than one sample
            producer.flush(30)
            time.sleep(0.3)
    assert producer.flush(30) == 0

    total = VALID + INVALID
    prometheus.wait_for(f"sum(timeback_relay_records_acked_total) >= {total}", 120, alive)

    results = _assert_everything_evaluates(prometheus)

    # throughput
    consumed = prometheus.grafana_query(
        _panel("Records: consumed, decoded, acknowledged, rejected")[0]
    )
    assert _values(consumed) and _values(consumed)[0] > 0
    sent = prometheus.grafana_query(_panel("Caliper events sent by outcome")[0])
    assert {s["metric"]["outcome"] for s in sent} >= {"delivered"}
    # latency: quantiles are numbers (NaN would mean no observation in the window); the token
    # endpoint was called once at start, so only the events endpoint must have a recent quantile
    for expr in _panel("Delivery lag (activity time to delivered)"):
        values = _values(prometheus.grafana_query(expr))
        assert values and not any(math.isnan(v) for v in values), expr
    for expr in _panel("Partner API latency by endpoint"):
        by_endpoint = {
            s["metric"]["endpoint"]: float(s["value"][1]) for s in prometheus.grafana_query(expr)
        }
        assert "events" in by_endpoint and not math.isnan(by_endpoint["events"]), expr
    # consumer lag: one series per partition of the topic
    lag = prometheus.grafana_query(_panel("Consumer lag per partition")[0])
    assert sorted((s["metric"]["topic"], s["metric"]["partition"]) for s in lag) == [
        (topic, "0"),
        (topic, "1"),
    ]
    # the planted records went to the dead-letter topic, by reason
    dlq = prometheus.grafana_query(_panel("DLQ writes by reason")[0])
    assert "unknown-framing" in {s["metric"]["reason"] for s in dlq}

    # a healthy run trips none of these
    for alert in (
        "TimebackRelayDown",
        "TimebackRelayDeadLetterWriteFailing",
        "TimebackRelayCircuitOpen",
        "TimebackRelayTokenRefreshFailing",
        "TimebackRelaySystemicApiErrors",
    ):
        assert results[f"alert {alert}"] == [], alert
    _assert_rules_healthy(prometheus)
    # the assignment was counted; faust's own sensor is on (RELAY_FAUST_METRICS defaults true)
    assert prometheus.query("sum(timeback_relay_rebalances_total) >= 1")
    assert prometheus.query('count({__name__=~"faust_.+"})')
