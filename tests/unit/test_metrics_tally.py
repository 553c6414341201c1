"""The tallies of relay.metrics put into their series, at each collection, exactly what the
prometheus_client children would hold had each increment and observation gone to them (they
write a histogram's buckets and sum, prometheus_client's own attributes: this pins them)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from relay.metrics import CounterTally, HistogramTally, _Tallies

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
VALUES = [0.0, 0.005, 0.0051, 0.01, 0.3, 1.0, 7.5, 30.0, 31.0, 1e9, 0.02, 0.5]


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for metric in registry.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }


def _pair(tallied: bool) -> tuple[CollectorRegistry, Counter, Histogram, _Tallies]:
    registry = CollectorRegistry()
    tallies = _Tallies()
    if tallied:
        registry.register(tallies)  # first, as relay.metrics registers its own
    counter = Counter("c", "c", ["k"], registry=registry)
    histogram = Histogram("h", "h", ["k"], buckets=BUCKETS, registry=registry)
    return registry, counter, histogram, tallies


def test_tallies_show_at_each_collection_what_the_children_would() -> None:
    theirs, counter, histogram, _ = _pair(tallied=False)
    ours, our_counter, our_histogram, tallies = _pair(tallied=True)
    count = tallies.add(CounterTally(our_counter.labels("a")))
    observe = tallies.add(HistogramTally(our_histogram.labels("a")))
    for chunk in (VALUES[:3], [], VALUES[3:9], VALUES[9:]):  # collections in between
        for value in chunk:
            counter.labels("a").inc()
            histogram.labels("a").observe(value)
            count.inc()
            observe.observe(value)
        counter.labels("a").inc(2.5)
        count.inc(2.5)
        assert _samples(ours) == _samples(theirs)


def test_nothing_reaches_the_series_before_a_collection() -> None:
    registry, counter, _, tallies = _pair(tallied=True)
    count = tallies.add(CounterTally(counter.labels("a")))
    count.inc()
    assert counter.labels("a")._value.get() == 0
    assert registry.get_sample_value("c_total", {"k": "a"}) == 1
    assert counter.labels("a")._value.get() == 1
