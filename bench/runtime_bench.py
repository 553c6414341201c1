"""The relay's own per-record path, in process: ``Runtime.submit`` → dispatcher → stages → a
sink that takes every event at once → acknowledgement. No Kafka, no HTTP; CPU per record.
Records are submitted in passes of ``stream_pace.YIELD_EVERY`` with a yield to the event loop
between, as the agent's paced stream admits them, so the workers run as they do under faust.

    python -m bench.runtime_bench [records] [--envelopes N] [--rounds R] [--profile]

``--envelopes N``: the sink is the ``EnvelopeBatcher`` (envelopes of N) over a sender that takes
every request at once, so the batcher's packing is measured too; without it, ``bench.variants``'
``null-sink``. ``--profile``: a cProfile of the last round, the 35 costliest functions by own
time. Each round is a fresh Runtime over the same records; the median round is printed (with
every round), beside the decode → map → check chain alone (``bench.s6_cpu.chain_cpu_us``) when
``--chain`` is given. Figures are this machine's at this moment: compare side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import pstats
import statistics
import time
from typing import Any

from bench.common import bench_settings, traffic
from bench.variants import apply
from relay.pipeline.record import SourceRecord
from relay.pipeline.stream_pace import YIELD_EVERY
from relay.resilience import Attempts
from relay.timeback.client import SendResult
from relay.timeback.responses import Outcome

TAKEN = SendResult(202, Outcome.DELIVERED)


class TakingSender:
    """An ``EnvelopeSender`` that takes every request at once (the batcher's side of it)."""

    async def deliver(
        self, payload: bytes, *, event_type: str, attempts: Attempts | None = None
    ) -> SendResult:
        return TAKEN

    async def deliver_envelope(
        self, payload: bytes, *, event_types: Any, attempts: Attempts | None = None, **_: Any
    ) -> SendResult:
        return TAKEN


def _envelopes(events: int) -> None:
    """The batcher of ``events`` over ``TakingSender`` in the runtime's sink's place."""
    from relay import wiring

    original = wiring.envelope_batcher
    wiring.sink = lambda settings, deliverer, gate=None: original(settings, TakingSender())
    del events  # the settings carry it (RELAY_EVENTS_PER_REQUEST)


async def _round(records: list[SourceRecord], envelopes: int) -> float:
    from relay.pipeline.runtime import Runtime

    overrides: dict[str, Any] = {"max_in_flight": 64}
    if envelopes > 1:
        overrides |= {"events_per_request": envelopes, "batch_linger": 0.005}
    settings = bench_settings(**overrides)
    done = asyncio.Event()
    count = 0

    def ack(_handle: object) -> None:
        nonlocal count
        count += 1
        if count == len(records):
            done.set()

    runtime = Runtime(settings, ack)
    await runtime.start()
    if runtime._token_task is not None:  # no token server here: nothing to ask
        runtime._token_task.cancel()
    start = time.thread_time()
    for i, record in enumerate(records, 1):
        await runtime.submit(record)
        if i % YIELD_EVERY == 0:  # as the agent's paced stream does (relay.pipeline.stream_pace)
            await asyncio.sleep(0)
    await done.wait()
    cpu = time.thread_time() - start
    await runtime.close()
    return cpu / len(records) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.runtime_bench")
    parser.add_argument("records", type=int, nargs="?", default=20_000)
    parser.add_argument("--envelopes", type=int, default=1, help="events per request (batcher)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile the last round")
    parser.add_argument("--chain", action="store_true", help="also the S1 chain alone")
    args = parser.parse_args()
    logging.getLogger("relay").setLevel(logging.WARNING)
    if args.envelopes > 1:
        _envelopes(args.envelopes)
    else:
        apply("null-sink")
    plan = traffic(args.records, seed=5)
    records = [
        SourceRecord("t", i % 4, i // 4, None, None, r.value) for i, r in enumerate(plan.records)
    ]
    figures = []
    for i in range(args.rounds):
        profile = cProfile.Profile() if args.profile and i == args.rounds - 1 else None
        if profile is not None:
            profile.enable()
        figures.append(asyncio.run(_round(records, args.envelopes)))
        if profile is not None:
            profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(35)
    each = ", ".join(f"{f:.1f}" for f in figures)
    print(f"runtime: {statistics.median(figures):.1f} us/record (rounds: {each})")
    if args.chain:
        from bench.s6_cpu import chain_cpu_us

        print(f"chain alone: {chain_cpu_us(plan.records):.1f} us/record")


if __name__ == "__main__":
    main()
