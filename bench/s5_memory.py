"""S5: peak resident memory of ``relay run`` draining a backlog (issue 9: 200,000 records).

The backlog is in Kafka before the relay starts, so the relay reads as fast as it can deliver:
whatever it buffers (fetched batches, the in-flight window, metrics, caches) is at its largest.
Peak = VmHWM of the relay process (/proc/<pid>/status) once every record is acknowledged.
Bar (bench/targets.py): <= 250 MB.
"""

from __future__ import annotations

from bench.common import say
from bench.lab import Lab
from bench.report import Result


def run(lab: Lab) -> Result:
    sizes = lab.sizes
    say(f"S5: backlog of {sizes.s5_records:,} records, in flight {sizes.in_flight}")
    backlog = lab.backlog("s5", sizes.s5_records, seed=51)
    sandbox = lab.sandbox("s5", backlog.plan)
    relay = lab.drain("s5", backlog, sandbox.url)
    rss = [s.rss_kb for s in relay.samples if s.rss_kb]  # not the zero before the first scrape
    return Result(
        "S5",
        f"peak RSS draining {sizes.s5_records:,} records",
        round(relay.peak_rss_kb / 1024, 1),
        "MB",
        {
            "rss_mb_at_quarters": _quarters(rss),
            "drained": relay.finished,
            "relay": relay.summary(),
        },
    )


def _quarters(rss_kb: list[int]) -> list[float]:
    """Resident set (MB) at the start, each quarter and the end of the drain: growth or plateau."""
    if not rss_kb:
        return []
    last = len(rss_kb) - 1
    return [round(rss_kb[last * i // 4] / 1024, 1) for i in range(5)]
