"""The Grafana dashboard and the alert rules use only metrics the relay exports, correctly typed.

Every PromQL expression of deploy/grafana/timeback-relay.json (panel targets and template
variables) and deploy/prometheus/alerts.yml is scanned for metric names; each must be a series of
``relay.metrics.REGISTRY`` (a counter as ``<name>_total``, a histogram as ``_bucket``/``_sum``/
``_count``), or a series Prometheus records itself (``up``). Renaming a metric in the catalogue
fails here. ``promtool`` checks the rules and the config and runs the alert unit tests in
deploy/prometheus/alerts_test.yml (it is installed from the Debian package when missing).

The helpers at the top are shared with tests/integration/test_observability.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from relay.metrics import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "timeback-relay.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERTS_TEST = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
INSTALL_SCRIPT = ROOT / "deploy" / "prometheus" / "install.sh"

# Series Prometheus writes itself for every target: not the relay's to export.
PROMETHEUS_SERIES = {"up": "gauge"}
# What a range-vector function may be applied to: counters (and histogram parts) only.
COUNTER_FUNCTIONS = {"rate", "irate", "increase", "resets"}

# -- PromQL: the metric names an expression uses ------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"(?<![\w.:$])[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
}


@dataclass(frozen=True)
class MetricUse:
    """One metric reference: its name, the function directly around it, and whether a range
    selector (``[5m]``, not a subquery) follows it."""

    name: str
    function: str | None
    ranged: bool


def metric_uses(expr: str) -> list[MetricUse]:
    """Every metric reference in a PromQL expression (Grafana ``$variables`` allowed)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("{}", text)  # label matchers carry label names, not metrics
    text = _GROUPING.sub(" ", text)  # by (...), on (...), group_left (...): label names
    uses = []
    for match in _IDENT.finditer(text):
        name, rest = match.group(), text[match.end() :]
        if name in _KEYWORDS or re.match(r"\s*\(", rest):
            continue  # a keyword or a function call
        before = re.search(r"([a-zA-Z_]+)\s*\(\s*$", text[: match.start()])
        ranged = re.match(r"\s*(?:\{\})?\s*\[[^\]:]*\]", rest) is not None
        uses.append(MetricUse(name, before.group(1) if before else None, ranged))
    return uses


def metric_names(expr: str) -> set[str]:
    return {use.name for use in metric_uses(expr)}


def exported_series(registry: CollectorRegistry = REGISTRY) -> dict[str, str]:
    """Series name -> kind ("counter", "histogram", "gauge", ...) of everything ``registry`` can
    export, including labelled metrics that have no children yet."""
    series: dict[str, str] = {}
    for family in registry.collect():
        if family.type == "counter":
            series[family.name + "_total"] = "counter"
        elif family.type == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                series[family.name + suffix] = "histogram"
        elif family.type == "summary":
            for suffix in ("_sum", "_count", ""):
                series[family.name + suffix] = "summary"
        else:
            series[family.name] = family.type
        for sample in family.samples:  # e.g. faust's sensor, or _created series
            series.setdefault(sample.name, family.type)
    return series


def problems(expr: str, series: dict[str, str]) -> list[str]:
    """Unknown metric names and counters/gauges used the wrong way in ``expr``."""
    found = []
    for use in metric_uses(expr):
        kind = series.get(use.name) or PROMETHEUS_SERIES.get(use.name)
        if kind is None:
            found.append(f"{use.name}: not exported by the relay")
        elif kind in ("counter", "histogram", "summary") and use.name.endswith(
            ("_total", "_bucket", "_sum", "_count")
        ):
            if not (use.ranged and use.function in COUNTER_FUNCTIONS):
                found.append(f"{use.name}: a counter must be read through rate()/increase()")
        elif kind == "gauge" and use.function in COUNTER_FUNCTIONS:
            found.append(f"{use.name}: {use.function}() of a gauge")
    return found


# -- the dashboard and the rules as (id, expression) pairs --------------------------------------


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))  # collapsed rows keep theirs inside


def dashboard_panel_exprs(dashboard: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """(``panel title / refId``, expr) of every query of every panel."""
    dashboard = dashboard or load_dashboard()
    return [
        (f"{panel['title']} / {target['refId']}", target["expr"])
        for panel in iter_panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]


_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?P<selector>.+?)\s*,\s*(?P<label>\w+)\s*\)\s*$")


def variable_selectors(dashboard: dict[str, Any] | None = None) -> list[tuple[str, str, str]]:
    """(variable name, series selector, label) of every ``label_values`` template variable."""
    dashboard = dashboard or load_dashboard()
    found = []
    for var in dashboard["templating"]["list"]:
        if var["type"] != "query":
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        match = _LABEL_VALUES.match(query)
        assert match, f"variable {var['name']}: expected label_values(selector, label): {query}"
        found.append((var["name"], match["selector"], match["label"]))
    return found


def load_alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def alert_exprs() -> list[tuple[str, str]]:
    return [(rule["alert"], rule["expr"]) for rule in load_alert_rules()]


# -- promtool ------------------------------------------------------------------------------------


@cache
def find_prometheus_tool(name: str) -> str | None:
    """The path of ``prometheus`` or ``promtool``, installing the Debian package when it is
    missing and we may (root with apt-get); None when that is impossible."""
    if shutil.which(name) is None and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["bash", str(INSTALL_SCRIPT)], check=False, timeout=900)
    return shutil.which(name)


@pytest.fixture(scope="session")
def promtool() -> str:
    path = find_prometheus_tool("promtool")
    if path is None:
        pytest.skip("promtool is not installed and cannot be (needs root and apt-get)")
    return path


# -- tests: the checker itself -------------------------------------------------------------------


def test_metric_uses_reads_names_not_labels_functions_or_variables() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, endpoint) (rate(a_bucket{job=~"$job", x="{b}"}'
        "[$__rate_interval]))) / on (job) group_left (instance) max(c) offset 5m > 1e-9 "
        "and bool time() unless deriv((sum(d))[10m:1m]) > 0"
    )
    uses = {u.name: u for u in metric_uses(expr)}
    assert set(uses) == {"a_bucket", "c", "d"}
    assert uses["a_bucket"] == MetricUse("a_bucket", "rate", True)
    assert uses["c"] == MetricUse("c", "max", False)
    assert uses["d"].ranged is False  # a subquery range belongs to the expression, not to d


def test_problems_catches_unknown_names_and_misused_types() -> None:
    series = {"x_total": "counter", "g": "gauge", "h_bucket": "histogram"}
    assert problems("sum(rate(x_total[5m])) + g + rate(h_bucket[1m])", series) == []
    assert problems("rate(renamed_total[5m])", series) == [
        "renamed_total: not exported by the relay"
    ]
    assert problems("x_total > 0", series) == [
        "x_total: a counter must be read through rate()/increase()"
    ]
    assert problems("rate(g[5m])", series) == ["g: rate() of a gauge"]


def test_exported_series_names_counters_and_histograms_as_prometheus_stores_them() -> None:
    series = exported_series()
    assert series["timeback_relay_records_consumed_total"] == "counter"
    assert "timeback_relay_records_consumed" not in series
    assert series["timeback_relay_delivery_lag_seconds_bucket"] == "histogram"
    assert series["timeback_relay_consumer_lag"] == "gauge"


# -- tests: the dashboard ------------------------------------------------------------------------


@pytest.mark.parametrize(("where", "expr"), dashboard_panel_exprs())
def test_dashboard_query_uses_only_exported_metrics(where: str, expr: str) -> None:
    assert metric_names(expr), f"{where}: no metric in {expr!r}"
    assert problems(expr, exported_series()) == [], where


def test_dashboard_variables_select_exported_metrics() -> None:
    selectors = variable_selectors()
    assert {name for name, _, _ in selectors} == {"job", "instance"}
    for name, selector, _label in selectors:
        assert problems(selector, exported_series()) == [], name


def test_dashboard_is_importable_with_a_datasource_variable() -> None:
    dashboard = load_dashboard()
    assert dashboard["uid"] == "timeback-relay" and dashboard["id"] is None
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = list(iter_panels(dashboard["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            # every panel follows the job and instance variables
            assert 'job=~"$job"' in target["expr"], panel["title"]
            assert 'instance=~"$instance"' in target["expr"], panel["title"]


def test_dashboard_panels_do_not_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in iter_panels(load_dashboard()["panels"]):
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_dashboard_shows_every_metric_of_the_catalogue() -> None:
    used = {name for _, expr in dashboard_panel_exprs() for name in metric_names(expr)}
    relay_series = {n for n in exported_series() if n.startswith("timeback_relay_")}
    families = {re.sub(r"_(total|bucket|sum|count|created)$", "", n) for n in relay_series}
    shown = {re.sub(r"_(total|bucket|sum|count)$", "", n) for n in used}
    assert families - shown == set(), "catalogue metrics without a panel"


def test_dashboard_has_the_latency_quantiles() -> None:
    exprs = [expr for _, expr in dashboard_panel_exprs()]
    for histogram in ("delivery_lag_seconds", "http_request_duration_seconds"):
        quantiles = [e for e in exprs if "histogram_quantile(" in e and f"{histogram}_bucket" in e]
        assert len(quantiles) >= 3, histogram
        assert all("by (le" in e for e in quantiles), histogram


# -- tests: the alert rules ----------------------------------------------------------------------


@pytest.mark.parametrize(("alert", "expr"), alert_exprs())
def test_alert_uses_only_exported_metrics(alert: str, expr: str) -> None:
    assert metric_names(expr), alert
    assert problems(expr, exported_series()) == [], alert


def test_alerts_cover_the_operational_risks() -> None:
    rules = {rule["alert"]: rule for rule in load_alert_rules()}
    by_metric: dict[str, list[str]] = {}
    for name, rule in rules.items():
        for metric in metric_names(rule["expr"]):
            by_metric.setdefault(metric, []).append(name)
    assert by_metric["up"] == ["TimebackRelayDown"]
    assert "timeback_relay_dlq_writes_total" in metric_names(
        rules["TimebackRelayDeadLetterRateHigh"]["expr"]
    )
    assert metric_names(rules["TimebackRelayDeadLetterWriteFailing"]["expr"]) == {
        "timeback_relay_dlq_write_failures_total"
    }
    assert rules["TimebackRelayDeadLetterWriteFailing"].get("for", "0s") == "0s"
    assert rules["TimebackRelayCircuitOpen"]["for"] == "5m"
    assert rules["TimebackRelayLagGrowing"]["for"] == "15m"
    assert metric_names(rules["TimebackRelayNoDeliveries"]["expr"]) == {
        "timeback_relay_events_sent_total",
        "timeback_relay_consumer_lag",
    }
    assert 'outcome="failed"' in rules["TimebackRelayTokenRefreshFailing"]["expr"]


def test_every_alert_has_severity_summary_and_runbook() -> None:
    for rule in load_alert_rules():
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert len(rule["annotations"]["runbook"].split()) >= 10, rule["alert"]


def test_local_prometheus_config_scrapes_the_relay_port_and_loads_the_alerts() -> None:
    from relay.config import Settings

    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "timeback-relay"  # the alerts select job="timeback-relay"
    assert job["static_configs"][0]["targets"] == [
        f"127.0.0.1:{Settings.model_fields['web_port'].default}"
    ]


# -- tests: promtool -----------------------------------------------------------------------------


def _promtool(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_check_rules(promtool: str) -> None:
    result = _promtool(promtool, "check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(load_alert_rules())} rules found" in result.stdout


def test_promtool_check_config(promtool: str) -> None:
    result = _promtool(promtool, "check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_alert_unit_tests(promtool: str, tmp_path: Path) -> None:
    """deploy/prometheus/alerts_test.yml: synthetic series, which alerts fire and when (and the
    rendered summaries), against a copy of alerts.yml without the runbooks (prose, not logic)."""
    rules = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["annotations"].pop("runbook")
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    shutil.copy(ALERTS_TEST, tmp_path / "alerts_test.yml")
    result = _promtool(promtool, "test", "rules", str(tmp_path / "alerts_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    tested = {
        case["alertname"]
        for test in yaml.safe_load(ALERTS_TEST.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    }
    assert tested == {rule["alert"] for rule in load_alert_rules()}, "every alert has a unit test"
