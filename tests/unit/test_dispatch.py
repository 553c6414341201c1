"""The Dispatcher: per-key order, contiguous per-partition acks, revocation, drain.

Each record's processing waits for a release the test controls, so hypothesis chooses the
completion order; the dispatcher decides when a record may start and when it is acknowledged.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.pipeline.dispatch import Dispatcher


@dataclass(frozen=True)
class Rec:
    n: int  # submission index: the offset order within its partition
    partition: int
    key: int


@dataclass
class Harness:
    """Records that finish when released; everything the dispatcher did, in order."""

    records: list[Rec]
    window: int
    pending: int = 0  # the dispatcher's max_pending (0: 4x the window, the relay's default)
    released: dict[int, asyncio.Event] = field(default_factory=dict)
    started: list[Rec] = field(default_factory=list)
    finished: set[int] = field(default_factory=set)
    cancelled: set[int] = field(default_factory=set)
    acked: list[Rec] = field(default_factory=list)
    running_keys: set[int] = field(default_factory=set)
    max_seen: int = 0  # most records pending (admitted, not acknowledged) at once
    max_running: int = 0  # most records processed at once

    def __post_init__(self) -> None:
        self.released = {r.n: asyncio.Event() for r in self.records}
        self.dispatcher: Dispatcher[Rec, Rec] = Dispatcher(
            self.process,
            self.ack,
            max_in_flight=self.window,
            max_pending=self.pending or 4 * self.window,
        )

    async def process(self, rec: Rec) -> None:
        assert rec.key not in self.running_keys, "two records of one key ran at once"
        self.running_keys.add(rec.key)
        self.max_running = max(self.max_running, len(self.running_keys))
        self.started.append(rec)
        try:
            await self.released[rec.n].wait()
        except asyncio.CancelledError:
            self.cancelled.add(rec.n)
            raise
        finally:
            self.running_keys.discard(rec.key)
        self.finished.add(rec.n)

    def ack(self, rec: Rec) -> None:
        assert rec.n in self.finished, "acknowledged before it finished"
        earlier = [r for r in self.records if r.partition == rec.partition and r.n < rec.n]
        acked = {r.n for r in self.acked}
        assert all(r.n in acked for r in earlier), "acknowledged past an unacknowledged record"
        self.acked.append(rec)

    async def feed(self) -> None:
        for rec in self.records:
            await self.dispatcher.submit(rec, partition=rec.partition, key=rec.key)
            self.max_seen = max(self.max_seen, self.dispatcher.pending)

    def release(self, n: int) -> None:
        self.released[n].set()


async def settle(rounds: int = 6) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


def by_partition(recs: list[Rec]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    for r in recs:
        out[r.partition].append(r.n)
    return out


def by_key(recs: list[Rec]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    for r in recs:
        out[r.key].append(r.n)
    return out


records_st = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 4)), min_size=1, max_size=25).map(
    lambda pairs: [Rec(n, p, k) for n, (p, k) in enumerate(pairs)]
)


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[Rec], list[int], int, int]:
    records = draw(records_st)
    order = draw(st.permutations([r.n for r in records]))
    window = draw(st.integers(1, 8))
    pending = draw(st.integers(window, 3 * window))
    return records, order, window, pending


RUN = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@RUN
@given(scenario())
def test_any_completion_order_acks_contiguously_and_keeps_key_order(
    case: tuple[list[Rec], list[int], int, int],
) -> None:
    records, order, window, pending = case

    async def run() -> Harness:
        h = Harness(records, window, pending)
        feeder = asyncio.create_task(h.feed())
        for n in order:
            h.release(n)
            await settle()
        await asyncio.wait_for(feeder, 5)
        assert await h.dispatcher.drain(5)
        return h

    h = asyncio.run(run())
    assert sorted(r.n for r in h.acked) == [r.n for r in records]  # each exactly once
    assert by_partition(h.acked) == by_partition(records)  # offset order per partition
    assert by_key(h.started) == by_key(records)  # submission order per key
    assert h.max_seen <= pending
    assert h.max_running <= window


@RUN
@given(scenario(), st.data())
def test_revoked_partitions_are_cancelled_and_never_acknowledged(
    case: tuple[list[Rec], list[int], int, int], data: st.DataObject
) -> None:
    records, order, window, _ = case
    pending = len(records) + window  # everything admitted before the revocation
    revoke_at = data.draw(st.integers(0, len(order)))
    revoked = set(data.draw(st.lists(st.integers(0, 2), max_size=3)))

    async def run() -> tuple[Harness, list[Rec], int]:
        h = Harness(records, window, pending)
        await h.feed()
        acked_before: list[Rec] = []
        started_before = 0
        for i, n in enumerate([*order, None]):
            if i == revoke_at:
                acked_before, started_before = list(h.acked), len(h.started)
                await h.dispatcher.revoke(revoked)
                # whatever of them was running was cancelled, not left to finish
                running = {r.n for r in h.started if r.partition in revoked} - h.finished
                assert running <= h.cancelled
            if n is not None:
                h.release(n)
                await settle()
        assert await h.dispatcher.drain(5)
        return h, acked_before, started_before

    h, acked_before, started_before = asyncio.run(run())
    kept = [r for r in records if r.partition not in revoked]
    late = [r for r in h.acked if r.partition in revoked and r not in acked_before]
    assert not late, "a revoked record was acknowledged after the revocation"
    assert not [r for r in h.started[started_before:] if r.partition in revoked]
    assert by_partition([r for r in h.acked if r.partition not in revoked]) == by_partition(kept)
    for p in revoked:  # what was acknowledged before is a prefix of the partition
        mine = [r.n for r in records if r.partition == p]
        done = [r.n for r in h.acked if r.partition == p]
        assert done == mine[: len(done)]
    assert by_key([r for r in h.started if r.partition not in revoked]) == by_key(kept)


async def test_a_slow_first_record_holds_back_the_acks_of_its_partition() -> None:
    """The faust #606 scenario: later records finish first; nothing is acknowledged past the
    slow one until it is done."""
    recs = [Rec(0, 0, 0), Rec(1, 0, 1), Rec(2, 0, 2), Rec(3, 1, 3)]
    h = Harness(recs, window=8)
    await h.feed()
    for n in (1, 2, 3):
        h.release(n)
    await settle()
    assert [r.n for r in h.acked] == [3]  # the other partition is not held back
    assert (h.dispatcher.pending, h.dispatcher.running) == (3, 1)
    h.release(0)
    await settle()
    assert [r.n for r in h.acked] == [3, 0, 1, 2]
    assert (h.dispatcher.pending, h.dispatcher.running) == (0, 0)


async def test_records_held_for_acknowledgement_leave_the_processing_slots_free() -> None:
    """One slow record holds back its partition's acks, not the API: with two processing slots
    and room for four pending records, the three after it are processed in the other slot."""
    recs = [Rec(n, 0, n) for n in range(5)]
    h = Harness(recs, window=2, pending=4)
    feeder = asyncio.create_task(h.feed())
    await settle()
    for n in (1, 2, 3):
        h.release(n)
        await settle()
    assert [r.n for r in h.started] == [0, 1, 2, 3]  # 1, 2 and 3 ran beside the slow 0
    assert h.acked == [] and h.dispatcher.pending == 4 and h.dispatcher.running == 1
    assert not feeder.done()  # record 4 waits for a pending place, not a processing slot
    h.release(0)
    await settle()
    assert [r.n for r in h.acked] == [0, 1, 2, 3]
    await asyncio.wait_for(feeder, 1)
    h.release(4)
    assert await h.dispatcher.drain(1)
    assert h.max_running <= 2


async def test_drain_acknowledges_what_finishes_in_time_and_cancels_the_rest() -> None:
    recs = [Rec(0, 0, 0), Rec(1, 0, 1), Rec(2, 1, 2)]
    h = Harness(recs, window=8)
    await h.feed()
    h.release(1)
    h.release(2)
    assert not await h.dispatcher.drain(0.2)  # record 0 never finishes
    assert [r.n for r in h.acked] == [2]
    assert h.cancelled == {0}
    assert h.dispatcher.pending == 0
    late = asyncio.create_task(h.dispatcher.submit(Rec(9, 0, 9), partition=0, key=9))
    await settle()
    assert not late.done()  # a drained dispatcher admits nothing
    late.cancel()


async def test_drain_waits_for_in_flight_records_within_the_grace() -> None:
    recs = [Rec(0, 0, 0), Rec(1, 0, 0)]
    h = Harness(recs, window=8)
    await h.feed()
    drained = asyncio.create_task(h.dispatcher.drain(5))
    await settle()
    h.release(0)
    h.release(1)
    assert await drained
    assert [r.n for r in h.acked] == [0, 1]


async def test_a_submit_waiting_for_room_is_dropped_when_its_partition_is_revoked() -> None:
    recs = [Rec(0, 0, 0), Rec(1, 0, 1)]
    h = Harness(recs, window=1, pending=1)
    await h.dispatcher.submit(recs[0], partition=0, key=0)
    waiting = asyncio.create_task(h.dispatcher.submit(recs[1], partition=0, key=1))
    await settle()
    assert not waiting.done()
    assert await h.dispatcher.revoke([0]) == 1
    assert await asyncio.wait_for(waiting, 1) is False
    assert h.dispatcher.pending == 0
    assert [r.n for r in h.started] == [0]


async def test_submits_waiting_for_room_come_in_in_order_within_the_bound() -> None:
    """Several submits wait at a full window; one is cancelled while it waits, one just after
    it was let in (before it ran): the others come in in the order they came, never more
    pending than max_pending, and the cancelled ones' places go to the next."""
    recs = [Rec(n, 0, n) for n in range(6)]
    h = Harness(recs, window=2, pending=2)
    for rec in recs[:2]:
        await h.dispatcher.submit(rec, partition=0, key=rec.key)
    admitted: list[int] = []

    async def submit(rec: Rec) -> None:
        await h.dispatcher.submit(rec, partition=0, key=rec.key)
        admitted.append(rec.n)
        assert h.dispatcher.pending <= 2

    waiting = {rec.n: asyncio.create_task(submit(rec)) for rec in recs[2:]}
    await settle()
    assert admitted == []
    waiting[3].cancel()  # while it waits
    ack = h.dispatcher._ack

    def ack_then_cancel_the_next(rec: Rec) -> None:
        ack(rec)  # then the dispatcher lets 2 in; 2 runs on the loop's next pass, after this:
        asyncio.get_running_loop().call_soon(waiting[2].cancel)

    h.dispatcher._ack = ack_then_cancel_the_next
    h.release(0)
    await settle()
    assert admitted == [4]
    h.dispatcher._ack = ack
    h.release(1)
    await settle()
    assert admitted == [4, 5]
    assert waiting[2].cancelled() and waiting[3].cancelled()
    assert h.dispatcher.pending == 2


async def test_a_burst_of_records_that_wait_spreads_over_every_worker() -> None:
    """Idle workers are woken one after another (each one taking a record wakes the next while
    more are ready): records that wait all end up processed at once, up to the window."""
    recs = [Rec(n, n % 2, n) for n in range(13)]
    h = Harness(recs, window=8, pending=12)
    h.release(0)
    await h.dispatcher.submit(recs[0], partition=0, key=0)  # starts the workers
    await settle()
    assert [r.n for r in h.acked] == [0]  # and every worker is idle now
    for rec in recs[1:]:  # one pass: all submitted before any worker runs
        await h.dispatcher.submit(rec, partition=rec.partition, key=rec.key)
    await settle(20)
    assert [r.n for r in h.started] == list(range(9))
    assert h.max_running == 8
    for rec in recs:
        h.release(rec.n)
    await settle(20)
    assert sorted(r.n for r in h.acked) == list(range(13))


async def test_an_unexpected_error_blocks_the_partition_and_is_reported() -> None:
    errors: list[tuple[int, BaseException]] = []
    acked: list[int] = []

    async def process(n: int) -> None:
        if n == 0:
            raise RuntimeError("bug")

    d: Dispatcher[int, int] = Dispatcher(
        process,
        acked.append,
        max_in_flight=4,
        max_pending=4,
        on_error=lambda n, e: errors.append((n, e)),
    )
    for n in range(3):
        await d.submit(n, partition=0, key=n)
    await settle()
    assert [n for n, _ in errors] == [0]
    assert acked == []  # nothing past the failed record
    assert d.pending == 3
    assert isinstance(errors[0][1], RuntimeError)


def test_window_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Dispatcher(lambda _: asyncio.sleep(0), lambda _: None, max_in_flight=0, max_pending=1)


def test_pending_cannot_be_smaller_than_the_window() -> None:
    with pytest.raises(ValueError, match="max_pending"):
        Dispatcher(lambda _: asyncio.sleep(0), lambda _: None, max_in_flight=8, max_pending=4)


async def test_the_byte_bound_stops_admitting_until_acknowledgements_free_bytes() -> None:
    """Records of 40 bytes under a 100-byte bound: three are admitted (the third crosses it),
    the fourth waits, although the record count allows 32; an acknowledgement lets it in."""
    recs = [Rec(n, 0, n) for n in range(5)]
    h = Harness(recs, window=8)
    h.dispatcher = Dispatcher(
        h.process, h.ack, max_in_flight=8, max_pending=32, max_pending_bytes=100, size=lambda r: 40
    )
    feeder = asyncio.create_task(h.feed())
    await settle()
    assert (h.dispatcher.pending, h.dispatcher.pending_bytes) == (3, 120)
    assert h.dispatcher.over_bytes and not feeder.done()
    h.release(0)
    await settle()
    assert [r.n for r in h.acked] == [0]
    assert h.dispatcher.pending == 3 and not feeder.done()  # 80 bytes, then 120 again
    for n in range(1, 5):
        h.release(n)
    await asyncio.wait_for(feeder, 1)
    assert await h.dispatcher.drain(1)
    assert h.dispatcher.pending_bytes == 0 and not h.dispatcher.over_bytes


async def test_a_record_larger_than_the_byte_bound_is_admitted_into_an_empty_window() -> None:
    recs = [Rec(0, 0, 0), Rec(1, 0, 1)]
    h = Harness(recs, window=2)
    h.dispatcher = Dispatcher(
        h.process, h.ack, max_in_flight=2, max_pending=8, max_pending_bytes=10, size=lambda r: 50
    )
    feeder = asyncio.create_task(h.feed())
    await settle()
    assert h.dispatcher.pending == 1 and not feeder.done()
    h.release(0)
    h.release(1)
    await asyncio.wait_for(feeder, 1)
    assert await h.dispatcher.drain(1)
    assert [r.n for r in h.acked] == [0, 1]


async def test_a_worker_outlives_an_on_error_that_raises() -> None:
    """One worker: record 0's processing raises and so does reporting it; the worker goes on
    to record 1 (another partition), and partition 0 stays blocked."""
    acked: list[int] = []

    async def process(n: int) -> None:
        if n == 0:
            raise RuntimeError("bug")

    def on_error(n: int, exc: BaseException) -> None:
        raise ValueError("the report failed too")

    d: Dispatcher[int, int] = Dispatcher(
        process, acked.append, max_in_flight=1, max_pending=4, on_error=on_error
    )
    await d.submit(0, partition=0, key=0)
    await d.submit(1, partition=1, key=1)
    await settle()
    assert acked == [1]
    assert d.pending == 1
