"""Issue 16 item 9 (memory): a response body is read whole before the 2 KiB the relay keeps.

tests/reliability/fault_proxy.py answers one event with a 400 whose JSON body is 128 MiB. The
relay must dead-letter the record (deliver/api-rejected, the body header capped at 2,000
characters) without holding the whole body: its peak resident set (VmHWM, /proc) may grow by less
than GROWTH_BOUND_MIB. A failure looks like: growth of about the body's size or more (httpx reads
``response.content`` whole; ``capped_body`` slices it afterwards).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.tools.traffic import TrafficGenerator
from tests.integration.conftest import SandboxFactory
from tests.reliability.conftest import Report, ScenarioFactory
from tests.reliability.fault_proxy import FaultProxy
from tests.reliability.harness import requires_relay
from tests.reliability.ledger import Expected, expectations

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(120)]

BODY_MIB = 128
GROWTH_BOUND_MIB = 32


def _hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for pid {pid}")


def test_a_huge_error_body_is_never_held_whole(
    scenario: ScenarioFactory, sandbox_factory: SandboxFactory, report: Report
) -> None:
    box = sandbox_factory()
    proxy = FaultProxy(box.url).start()
    try:
        s = scenario("huge-body", box, partitions=1)
        plan = TrafficGenerator(students=1, types=("XpEarned",), seed=251).plan(40)
        s.seed_roster(plan)
        first = expectations(plan)[0]
        record = Expected(first.key, first.value, first.event_id, first.record_type, "huge-body",
                          ("deliver", "api-rejected"), first.event_ids)  # fmt: skip
        proxy.answer(record.event_ids[0], 400, body_bytes=BODY_MIB << 20)
        relay = s.relay("a")
        relay.env["RELAY_API_BASE_URL"] = proxy.url
        relay.start()
        relay.wait_ready()
        assert relay.proc is not None
        before = _hwm_kib(relay.proc.pid)
        s.produce([record], wait=True)
        s.wait_complete(timeout=60, alive=[relay])
        growth = (_hwm_kib(relay.proc.pid) - before) / 1024
        letter = next(x for x in s.dlq_watch.letters if x.value == record.value)
        figures = s.finish()
        figures.notes.update(body_mib=BODY_MIB, peak_rss_growth_mib=round(growth, 1))
        report(figures)
    finally:
        proxy.stop()

    assert letter.reason == ("deliver", "api-rejected")
    assert len(letter.headers["relay.http.body"]) <= 2000, "the body header is capped"
    assert growth < GROWTH_BOUND_MIB, f"peak RSS grew {growth:.0f} MiB for a {BODY_MIB} MiB body"
