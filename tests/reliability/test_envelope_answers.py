"""Issue 23 item 5: a 2xx to an envelope that did not take every event of it.

A proxy in front of the real sandbox stores only ``data[0]`` of each envelope (forwarded bare;
the rest never reaches the sandbox) and answers the relay with per-event results: the first
event's status, a 500 for each of the others, as a 200 or as a 207 Multi-Status. A lone event is
forwarded as it is. The relay must not count the unlisted events as delivered: the envelope is
split until each event goes alone.

Passes when every record's events are at the sandbox, nothing is dead-lettered and the proxy did
answer partially. A failure looks like: lost > 0 (events acknowledged on a 2xx that dropped them).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp import web

from relay.tools.traffic import TrafficGenerator
from tests.integration.conftest import SandboxFactory
from tests.reliability.conftest import Report, ScenarioFactory
from tests.reliability.fault_proxy import EVENTS, FaultProxy
from tests.reliability.harness import requires_relay
from tests.reliability.ledger import expectations

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(150)]

RECORDS = 200


class FirstOnly(FaultProxy):
    """Stores only the first event of an envelope and says so in a per-event answer."""

    def __init__(self, upstream: str, status: int) -> None:
        super().__init__(upstream)
        self.status = status
        self.partial = 0  # envelopes answered with only data[0] stored

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        events = _envelope_events(body) if request.path.rstrip("/") == EVENTS else None
        if request.method != "POST" or not events or len(events) < 2:
            return await self._forward(request, body)
        first = await self._forward(request, orjson.dumps(events[0]))
        if not 200 <= first.status < 300:
            return first
        self.partial += 1
        results = [{"id": events[0].get("id"), "status": first.status}] + [
            {"id": e.get("id"), "status": 500, "error": "not stored"} for e in events[1:]
        ]
        return web.json_response({"results": results}, status=self.status)


def _envelope_events(body: bytes) -> list[dict[str, Any]] | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    events = data.get("data") if isinstance(data, dict) else None
    return [e for e in events if isinstance(e, dict)] if isinstance(events, list) else None


@pytest.mark.parametrize("status", [200, 207])
def test_an_envelope_answer_taking_part_of_it_loses_nothing(
    status: int, scenario: ScenarioFactory, sandbox_factory: SandboxFactory, report: Report
) -> None:
    box = sandbox_factory()
    proxy = FirstOnly(box.url, status).start()
    try:
        s = scenario(f"envelope-{status}", box, partitions=3)
        plan = TrafficGenerator(students=20, seed=235).plan(RECORDS)
        s.seed_roster(plan)
        relay = s.relay("a", RELAY_EVENTS_PER_REQUEST="20", RELAY_MAX_IN_FLIGHT="4")
        relay.env["RELAY_API_BASE_URL"] = proxy.url
        relay.start()
        relay.wait_assigned()
        s.produce(expectations(plan), wait=True)
        s.wait_complete(timeout=90, alive=[relay])
        figures = s.finish()
        figures.notes.update(answer=status, partial_answers=proxy.partial)
        report(figures)
    finally:
        proxy.stop()

    assert proxy.partial > 0, "no envelope was answered partially: the trial proves nothing"
    assert figures.lost == 0, figures.problems
    assert not figures.dlq_by_reason, figures.dlq_by_reason
    assert figures.ok, figures.problems
