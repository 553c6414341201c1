"""``FaustSensor`` exports the same faust_* series, with the same values, as faust's own
``PrometheusMonitor`` fed the same per-message calls (each on a registry of its own), at every
collection: it adds its per-message counts to the series when the registry is collected."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import faust
from faust.sensors import Monitor
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from faust.types import TP
from prometheus_client import CollectorRegistry

from relay.pipeline.faust_sensor import FaustSensor, FlushOnCollect, LeanSensors, install
from relay.pipeline.worker import create_app  # noqa: F401  (the module that installs it)


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for metric in registry.collect()
        for s in metric.samples
        if not s.name.endswith("_created") and "runtime_ms" not in s.name  # clock-dependent
    }


def _feed(monitor: PrometheusMonitor, streams: list[object], messages: range) -> None:
    """Messages over two topics and three partitions, through two streams, some acknowledged."""
    for n in messages:
        tp = TP(f"topic-{n % 2}", n % 3)
        message = SimpleNamespace(tp=tp, offset=100 + n, time_in=None)
        stream = streams[n % 2]
        monitor.track_tp_end_offset(tp, 200 + n)
        monitor.on_message_in(tp, 100 + n, message)  # type: ignore[arg-type]
        state = monitor.on_stream_event_in(tp, 100 + n, stream, None)  # type: ignore[arg-type]
        monitor.on_stream_event_out(tp, 100 + n, stream, None, state)  # type: ignore[arg-type]
        if n % 4:
            monitor.on_message_out(tp, 100 + n, message)  # type: ignore[arg-type]


class _Agent:
    """A stream's owner as the monitor sees it (weakly referenced)."""


def _ours(registry: CollectorRegistry) -> FaustSensor:
    flush = FlushOnCollect()
    registry.register(flush)  # ahead of the series, as install() does
    flush.sensor = FaustSensor(metrics=FaustMetrics.create(registry, "faust"))
    return flush.sensor


def test_the_same_series_and_values_as_faust_s_own_sensor_at_each_scrape() -> None:
    app = faust.App("sensor-test", broker="kafka://localhost:1", store="memory://")
    streams: list[object] = [app.stream(app.channel()), app.stream(app.channel())]
    for stream in streams:
        stream.task_owner = _Agent()  # type: ignore[attr-defined]
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    faust_s, sensor = PrometheusMonitor(metrics=FaustMetrics.create(theirs, "faust")), _ours(ours)
    for messages in (range(12), range(12, 13), range(13, 13), range(13, 40)):  # between scrapes
        _feed(faust_s, streams, messages)
        _feed(sensor, streams, messages)
        expected = _samples(theirs)
        for series in ("messages_received_per_topics_partition", "topic_partition_end_offset"):
            assert any(name == f"faust_{series}" for name, _ in expected)
        assert _samples(ours) == expected


def test_install_makes_it_the_app_s_monitor_on_the_given_registry() -> None:
    app = faust.App("sensor-install", broker="kafka://localhost:1", store="memory://")
    registry = CollectorRegistry()
    install(app, registry, pattern="/faust/metrics", prefix="faust")
    assert isinstance(app.monitor, FaustSensor)
    tp = TP("t", 0)
    app.monitor.on_message_in(tp, 7, SimpleNamespace(tp=tp, offset=7, time_in=None))  # type: ignore[arg-type]
    assert (
        registry.get_sample_value(
            "faust_messages_received_per_topics_partition", {"topic": "t", "partition": "0"}
        )
        == 7
    )


def test_a_noack_stream_s_events_show_the_same_and_leave_no_state() -> None:
    """The relay's agent reads a noack stream, whose events faust never reports out: the
    series are faust's own, and no per-event state is built for nobody to read."""
    app = faust.App("sensor-noack", broker="kafka://localhost:1", store="memory://")
    streams = [_noack(app), _noack(app)]
    for stream in streams:
        stream.task_owner = _Agent()
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    faust_s, sensor = PrometheusMonitor(metrics=FaustMetrics.create(theirs, "faust")), _ours(ours)
    for n in range(9):
        tp = TP(f"topic-{n % 2}", n % 3)
        for monitor in (faust_s, sensor):
            state = monitor.on_stream_event_in(tp, n, streams[n % 2], None)  # type: ignore[arg-type]
        assert state is None  # ours
    assert _samples(ours) == _samples(theirs)


def test_install_makes_the_app_s_sensor_delegate_lean() -> None:
    app = faust.App("sensor-lean", broker="kafka://localhost:1", store="memory://")
    delegate = app.sensors
    install(app, CollectorRegistry(), pattern="/faust/metrics", prefix="faust")
    assert app.sensors is delegate and isinstance(delegate, LeanSensors)
    delegate.add(app.monitor)  # as faust does when the app starts
    acking, noack = app.stream(app.channel()), _noack(app)
    acking.task_owner = noack.task_owner = _Agent()  # type: ignore[assignment]
    tp = TP("t", 0)
    assert delegate.on_stream_event_in(tp, 1, noack, None) is None  # type: ignore[arg-type]
    state = delegate.on_stream_event_in(tp, 2, acking, None)  # type: ignore[arg-type]
    assert state is not None and set(state) == {app.monitor}  # faust's, for its event out
    delegate.add(Monitor())  # two sensors: faust's delegate, as it is
    assert set(delegate.on_stream_event_in(tp, 3, noack, None) or {}) == set(delegate)  # type: ignore[arg-type]


def _noack(app: faust.App) -> Any:
    """A stream of its own channel that acknowledges nothing (as the relay's agent reads)."""
    return app.stream(app.channel()).noack()  # type: ignore[attr-defined]
