"""The Dispatcher's keying: a record's key found in the window (``prepare``), per partition in
offset order, so a record whose key is slow to find (a cold Schema Registry cache) is never
overtaken by a later record of its key, and a key that raises blocks its partition."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from relay.pipeline.dispatch import Dispatcher


@dataclass(frozen=True)
class Rec:
    n: int
    partition: int
    student: str


class Keyed:
    """A dispatcher whose ``prepare`` waits for the test on chosen records."""

    def __init__(self, slow: set[int] = frozenset(), broken: set[int] = frozenset()) -> None:
        self.gates = {n: asyncio.Event() for n in slow}
        self.broken = broken
        self.keyed: list[int] = []
        self.started: list[int] = []
        self.acked: list[int] = []
        self.errors: list[int] = []
        self.dispatcher: Dispatcher[Rec, Rec] = Dispatcher(
            self.process,
            lambda rec: self.acked.append(rec.n),
            max_in_flight=8,
            max_pending=16,
            on_error=lambda rec, _exc: self.errors.append(rec.n),
            prepare=self.prepare,
        )

    async def prepare(self, rec: Rec) -> tuple[str, Rec]:
        if rec.n in self.gates:
            await self.gates[rec.n].wait()
        if rec.n in self.broken:
            raise RuntimeError("a bug while decoding")
        self.keyed.append(rec.n)
        return rec.student, rec

    async def process(self, rec: Rec) -> None:
        self.started.append(rec.n)

    async def submit(self, *recs: Rec) -> None:
        for rec in recs:
            await self.dispatcher.submit(rec, partition=rec.partition)


async def settle(rounds: int = 10) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


async def test_a_record_slow_to_key_is_not_overtaken_by_a_later_one_of_its_key() -> None:
    k = Keyed(slow={0})
    await k.submit(Rec(0, 0, "ann"), Rec(1, 0, "ann"), Rec(2, 1, "bob"))
    await settle()
    assert k.started == [2]  # another partition is not held back
    assert k.acked == [2]
    k.gates[0].set()
    await settle()
    assert k.started == [2, 0, 1]  # ann's records in offset order
    assert k.acked == [2, 0, 1]
    assert k.dispatcher.pending == 0


async def test_a_record_with_a_known_key_waits_for_earlier_unkeyed_ones() -> None:
    k = Keyed(slow={0})
    await k.submit(Rec(0, 0, "ann"))
    await k.dispatcher.submit(Rec(1, 0, "ann"), partition=0, key="ann")
    await settle()
    assert k.started == []
    k.gates[0].set()
    await settle()
    assert k.started == [0, 1]


async def test_a_key_that_raises_blocks_its_partition_only() -> None:
    k = Keyed(broken={1})
    await k.submit(Rec(0, 0, "ann"), Rec(1, 0, "bob"), Rec(2, 0, "cat"), Rec(3, 1, "dan"))
    await settle()
    assert k.errors == [1]
    assert k.keyed == [0, 3]  # nothing of partition 0 is keyed past the broken record
    assert k.acked == [0, 3]
    assert k.dispatcher.pending == 2


async def test_revoking_a_partition_cancels_its_keying() -> None:
    k = Keyed(slow={0})
    await k.submit(Rec(0, 0, "ann"), Rec(1, 0, "ann"))
    await settle()
    assert await k.dispatcher.revoke([0]) == 2
    assert k.dispatcher.pending == 0
    k.gates[0].set()
    await settle()
    assert k.started == [] and k.acked == []
    await k.submit(Rec(4, 0, "ann"))  # the partition, assigned again, works
    await settle()
    assert k.acked == [4]


class KeyedNow(Keyed):
    """``prepare_now`` keys every record at once except the ``slow`` ones (left to ``prepare``)."""

    def __init__(self, slow: set[int] | None = None) -> None:
        super().__init__(slow=slow or set())
        self.now: list[int] = []
        self.dispatcher = Dispatcher(
            self.process,
            lambda rec: self.acked.append(rec.n),
            max_in_flight=8,
            max_pending=16,
            prepare=self.prepare,
            prepare_now=self.prepare_now,
        )

    def prepare_now(self, rec: Rec) -> tuple[str, Rec] | None:
        if rec.n in self.gates:
            return None
        self.now.append(rec.n)
        return rec.student, rec


async def test_a_record_keyed_at_once_skips_prepare() -> None:
    k = KeyedNow()
    await k.submit(Rec(0, 0, "ann"), Rec(1, 0, "ann"), Rec(2, 1, "bob"))
    await settle()
    assert k.now == [0, 1, 2] and k.keyed == []
    assert k.started == [0, 2, 1] and k.acked == [0, 2, 1]


async def test_a_record_behind_one_waiting_for_prepare_is_not_keyed_at_once() -> None:
    """Record 0 needs ``prepare`` (slow): record 1 of its partition, which ``prepare_now`` could
    key, waits its turn behind it; the other partition is keyed at once."""
    k = KeyedNow(slow={0})
    await k.submit(Rec(0, 0, "ann"), Rec(1, 0, "ann"), Rec(2, 1, "bob"))
    await settle()
    assert k.now == [2] and k.started == [2]
    k.gates[0].set()
    await settle()
    assert k.keyed == [0, 1]
    assert k.started == [2, 0, 1] and k.acked == [2, 0, 1]
    await k.submit(Rec(3, 0, "ann"))  # nothing waits to be keyed any more: at once again
    await settle()
    assert k.now == [2, 3] and k.acked == [2, 0, 1, 3]
