"""The in-flight window: records processed concurrently, acknowledged strictly in offset order.

faust 0.15 can commit past a record that is still in flight when acks arrive out of order (faust
#606), so faust must only ever see contiguous acks. The Dispatcher gives it exactly that:

- **Window.** At most ``max_in_flight`` records are processed at once (the API round trips that
  overlap: throughput is about ``max_in_flight / latency``). At most ``max_pending`` records are
  admitted and not yet acknowledged; ``submit`` waits for room. A record waiting behind its
  student's previous record, or done and waiting for an earlier offset to be acknowledged, holds a
  pending place but not a processing one: the API stays busy while one slow record holds back its
  partition, and memory stays bounded. With ``max_pending_bytes``, ``submit`` also waits while
  the admitted records' ``size`` sum to that many bytes or more (one record is always admitted
  into an empty window, however large): the bound holds for large records too.
- **Per-key order.** Records with the same key (the student) run one after another, in the order
  they were submitted; records of different keys run concurrently.
- **Preparing in order.** A record's key may only be known after some work (decoding it,
  perhaps asking the Schema Registry): ``submit`` without a key admits the record into the window
  at once and ``prepare(item) -> (key, prepared)`` finds its key there; ``process`` is then handed
  ``prepared`` (the work is done once, and the submitted item is never written to). Per
  partition, records are prepared one after another in offset order and join their key's queue
  only then, so a record whose key takes a while (a cold registry cache) is never overtaken by a
  later record of the same key. Preparing is part of the record's processing: if it raises, that
  is a processing bug like any other. A record submitted with its key is processed as it is.
  ``prepare_now(item) -> (key, prepared) | None``, if given, is tried first, in ``submit``, when
  nothing earlier of the partition waits to be keyed: the common case (a cached schema) is keyed
  without a task of its own; None (I/O needed, or anything unusual) leaves it to ``prepare``.
- **Contiguous acknowledgement.** Per partition, records are acknowledged in the order they were
  submitted (their offset order), each only once it and every record before it are done. A
  record that finishes early waits for its predecessors.
- **Revocation.** ``revoke(partitions)`` cancels the work of those partitions and forgets it,
  unacknowledged: the partitions' next owner (perhaps this process again, after faust seeks back
  to the committed offset) reads those records again.
- **Drain.** ``drain(grace)`` stops admitting, waits up to ``grace`` seconds for everything to be
  acknowledged, then cancels what is left, unacknowledged (it will be redelivered).
- **Workers.** ``max_in_flight`` worker coroutines take the records whose turn has come (their
  key's head) from a ready queue: no task per record. An idle worker is woken when a record
  becomes ready and no other is already on its way; a worker that takes a record and leaves
  more ready wakes the next. A burst spreads over the workers, one more per pass of the event
  loop, while records that finish without waiting are taken by one worker in a row instead of
  waking a worker each for nothing (CPU per record with the API: 0.94 in interleaved rounds).
  Revocation cancels a worker's current record only (the worker catches that cancellation and
  takes the next record).

``process`` (and ``prepare``) handle their own rejections (dead-lettering is part of processing).
Anything they raise is a bug: ``on_error`` is told and the record's partition stays blocked (never
acknowledged past; when preparing raised, no later record of the partition is even prepared).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar, cast

from relay.logs import outline
from relay.metrics import IN_FLIGHT, PENDING

log = logging.getLogger(__name__)

T = TypeVar("T")  # the submitted item (a Kafka record), acknowledged
P = TypeVar("P")  # what processing is handed: ``prepare``'s result, or the item itself

CANCEL_WAIT = 5.0  # seconds to let cancelled work unwind before a revocation returns


class _Unknown:
    """The type of ``UNKNOWN``: a record submitted without its key (None is a valid key)."""


UNKNOWN: Final = _Unknown()


@dataclass(eq=False, slots=True)
class _Entry(Generic[T, P]):
    item: T
    partition: Hashable
    key: Hashable = None
    prepared: P | None = None
    keyed: bool = False
    joined: bool = False  # in its key's queue (keyed, and every earlier record of it too)
    size: int = 0
    started: bool = False  # handed to the workers (in the ready queue or being processed)
    worker: asyncio.Task[None] | None = None  # the worker processing it now
    unwound: asyncio.Future[None] | None = None  # set when its worker let go of it (revoke)
    done: bool = False
    revoked: bool = False


class Dispatcher(Generic[T, P]):
    def __init__(
        self,
        process: Callable[[P], Awaitable[None]],
        ack: Callable[[T], None],
        *,
        max_in_flight: int,
        max_pending: int,
        on_error: Callable[[T, BaseException], None] | None = None,
        prepare: Callable[[T], Awaitable[tuple[Hashable, P]]] | None = None,
        prepare_now: Callable[[T], tuple[Hashable, P] | None] | None = None,
        max_pending_bytes: int | None = None,
        size: Callable[[T], int] = lambda _item: 0,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")
        if max_pending < max_in_flight:
            raise ValueError("max_pending must be >= max_in_flight")
        self._process = process
        self._ack = ack
        self._on_error = on_error
        self._prepare = prepare
        self._prepare_now = prepare_now
        self.max_in_flight = max_in_flight
        self.max_pending = max_pending
        self.max_pending_bytes = max_pending_bytes
        self._size = size
        self._bytes = 0  # the admitted, unacknowledged records' sizes
        # submits waiting for room (a pending place, and the bytes under their bound), in order:
        # plain counts and a future per wait, not a semaphore's and an event's calls per record
        self._room: deque[asyncio.Future[None]] = deque()
        self._reserved = 0  # places kept for waiting submits let in, until they run
        self._ready: deque[_Entry[T, P]] = deque()  # their key's head, waiting for a worker
        self._waiting: deque[asyncio.Future[None]] = deque()  # idle workers' wake-ups
        self._workers: list[asyncio.Task[None]] = []  # started with the first record
        self._woken = 0
        self._partitions: dict[Hashable, deque[_Entry[T, P]]] = {}  # unacknowledged, offset order
        self._chains: dict[Hashable, deque[_Entry[T, P]]] = {}  # unfinished, per key; head runs
        self._unkeyed: dict[Hashable, deque[_Entry[T, P]]] = {}  # per partition, offset order
        self._keyers: dict[Hashable, asyncio.Task[None]] = {}  # per partition with unkeyed
        self._epochs: dict[Hashable, int] = {}  # bumped by revoke: stale submits are dropped
        self._count = 0
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        # The gauges read the counts when scraped: no locked update per record (one dispatcher
        # per process; the latest one's counts are exported).
        PENDING.set_function(lambda: self._count)
        IN_FLIGHT.set_function(lambda: self._busy)

    @property
    def pending(self) -> int:
        """Records admitted and not yet acknowledged (running, waiting, or done and held)."""
        return self._count

    @property
    def pending_bytes(self) -> int:
        return self._bytes

    @property
    def over_bytes(self) -> bool:
        """The pending records hold ``max_pending_bytes`` or more: nothing more is admitted."""
        return self.max_pending_bytes is not None and self._bytes >= self.max_pending_bytes

    @property
    def running(self) -> int:
        """Records being processed now (at most ``max_in_flight``)."""
        return self._busy

    def partitions(self) -> set[Hashable]:
        return set(self._partitions)

    # -- intake ---------------------------------------------------------------------------------

    async def submit(
        self, item: T, *, partition: Hashable, key: Hashable | _Unknown = UNKNOWN
    ) -> bool:
        """Admit ``item`` once the window has room and start it when its key is free; without
        a ``key``, ``prepare`` finds it (in the partition's offset order).

        Returns False, without admitting it, when its partition was revoked while it waited.
        After ``drain`` it never returns: the caller (the agent) is cancelled at shutdown.
        """
        if key is UNKNOWN and self._prepare is None:
            raise TypeError("submit without a key needs a dispatcher with prepare")
        if (self._closed or self._room or not self._has_room()) and not await self._admitted(
            partition
        ):
            return False
        entry: _Entry[T, P] = _Entry(item, partition, size=self._size(item))
        queue = self._partitions.get(partition)
        if queue is None:
            queue = self._partitions[partition] = deque()
        queue.append(entry)
        if not self._count:
            self._idle.clear()
        self._count += 1
        self._bytes += entry.size
        unkeyed = self._unkeyed.get(partition)
        if unkeyed is None and key is not UNKNOWN:
            self._join(entry, key)  # nothing earlier of its partition waits to be keyed
            return True
        if unkeyed is None and self._prepare_now is not None:
            keyed = self._prepare_now(item)
            if keyed is not None:
                entry.key, entry.prepared = keyed
                entry.keyed = True
                self._join(entry, entry.key)
                return True
        if unkeyed is None:
            unkeyed = self._unkeyed[partition] = deque()
            self._keyers[partition] = asyncio.create_task(self._keying(partition, unkeyed))
        if key is not UNKNOWN:  # known, but joins only after those before it
            entry.key, entry.prepared, entry.keyed = key, cast(P, item), True
        unkeyed.append(entry)
        return True

    def _has_room(self) -> bool:
        return self._count + self._reserved < self.max_pending and not self.over_bytes

    async def _admitted(self, partition: Hashable) -> bool:
        """Wait for room, after the submits already waiting; False when the partition was
        revoked meanwhile. Never returns once the dispatcher is closed."""
        epoch = self._epochs.get(partition, 0)
        await self._wait_open()
        if self._room or not self._has_room():
            room = asyncio.get_running_loop().create_future()
            self._room.append(room)
            try:
                await room
            except asyncio.CancelledError:
                if not room.cancelled():  # let in, cancelled before it came in: the next one's
                    self._reserved -= 1
                    self._make_room()
                raise
            self._reserved -= 1  # the place kept for it is now its own
        if self._closed or self._epochs.get(partition, 0) != epoch:
            self._make_room()  # not taken: the next waiter's
            await self._wait_open()
            return False
        return True

    def _make_room(self) -> None:
        """Let the waiting submits in, in order, while there is room; each one's place is kept
        for it until it runs (a submit arriving meanwhile cannot take it)."""
        room = self._room
        while room and self._has_room():
            first = room.popleft()
            if not first.done():  # not cancelled while it waited
                first.set_result(None)
                self._reserved += 1

    async def _keying(self, partition: Hashable, unkeyed: deque[_Entry[T, P]]) -> None:
        """Prepare the partition's records one after another, each joining its key's queue."""
        assert self._prepare is not None
        while unkeyed:
            entry = unkeyed[0]
            if not entry.keyed:
                try:
                    entry.key, entry.prepared = await self._prepare(entry.item)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the partition stays blocked here: none keyed past it
                    self._fail(entry, exc)
                    return
                entry.keyed = True
            if entry.revoked:
                return
            unkeyed.popleft()
            self._join(entry, entry.key)
        if self._unkeyed.get(partition) is unkeyed:  # not revoked (and re-opened) meanwhile
            del self._unkeyed[partition]
            del self._keyers[partition]

    def _join(self, entry: _Entry[T, P], key: Hashable) -> None:
        if not entry.keyed:  # submitted with its key: processed as it is
            entry.prepared = cast(P, entry.item)
        entry.key, entry.keyed, entry.joined = key, True, True
        chain = self._chains.get(key)
        if chain is None:
            chain = self._chains[key] = deque()
        chain.append(entry)
        if len(chain) == 1:
            self._start(entry)

    async def _wait_open(self) -> None:
        if self._closed:
            await asyncio.Event().wait()  # forever: a closed dispatcher admits nothing

    def _start(self, entry: _Entry[T, P]) -> None:
        entry.started = True
        self._ready.append(entry)
        if not self._workers:
            self._workers = [asyncio.create_task(self._work()) for _ in range(self.max_in_flight)]
        if not self._woken:
            self._wake()

    def _wake(self) -> None:
        while self._waiting:
            wake = self._waiting.popleft()
            if not wake.done():
                wake.set_result(None)
                self._woken += 1
                break

    async def _work(self) -> None:
        """One worker: process ready records one after another, for the dispatcher's life (a
        record is processed in this coroutine's own frame: no coroutine per record here)."""
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        assert me is not None
        ready, process = self._ready, self._process
        while True:
            if not ready:
                wake = loop.create_future()
                self._waiting.append(wake)
                try:
                    await wake
                finally:
                    if wake.done() and not wake.cancelled():
                        self._woken -= 1
                continue
            entry = ready.popleft()
            if entry.revoked:
                continue
            if ready and not self._woken:
                self._wake()
            entry.worker = me
            self._busy += 1
            failed: BaseException | None = None
            try:
                await process(cast(P, entry.prepared))
            except asyncio.CancelledError as cancelled:
                if not entry.revoked:
                    raise  # the worker itself is cancelled (the loop is closing)
                failed = cancelled
            except Exception as exc:
                failed = exc
            finally:
                self._busy -= 1
                entry.worker = None
                if entry.unwound is not None:  # revoke cancelled it and waits for us to let go
                    me.uncancel()
                    entry.unwound.set_result(None)
            try:
                self._finish(entry, failed)
            except Exception as exc:  # on_error itself raised: the worker stays, so does the block
                log.error("reporting a processing bug failed: %s", outline(exc))

    def _finish(self, entry: _Entry[T, P], failed: BaseException | None) -> None:
        """The record's processing ended: acknowledge what it lets us, or report the bug."""
        if entry.revoked:  # revoked meanwhile (whatever process did): its result is void
            return
        if failed is not None:
            self._fail(entry, failed)
            return
        try:
            entry.done = True
            self._next_of_key(entry)
            self._advance(entry.partition)
        except Exception as exc:  # an ack callback failed: as bad as a processing bug
            self._fail(entry, exc)

    def _fail(self, entry: _Entry[T, P], exc: BaseException) -> None:
        # Type and frames only: the message (and a traceback's last line) may quote the record.
        log.error(
            "record processing failed unexpectedly; partition %s is blocked: %s",
            entry.partition,
            outline(exc),
        )
        if self._on_error is not None:
            self._on_error(entry.item, exc)

    def _next_of_key(self, entry: _Entry[T, P]) -> None:
        chain = self._chains[entry.key]
        chain.popleft()  # the finished entry is the chain's head: only the head runs
        if chain:
            self._start(chain[0])
        else:
            del self._chains[entry.key]

    # -- acknowledgement ------------------------------------------------------------------------

    def _advance(self, partition: Hashable) -> None:
        """Acknowledge the partition's done records from its head, up to the first unfinished."""
        queue = self._partitions.get(partition)
        while queue and queue[0].done:
            entry = queue.popleft()
            self._ack(entry.item)
            self._release(entry)
        if queue is not None and not queue:
            del self._partitions[partition]

    def _release(self, entry: _Entry[T, P]) -> None:
        self._count -= 1
        self._bytes -= entry.size
        if self._room:
            self._make_room()
        if self._count == 0:
            self._idle.set()

    # -- revocation and shutdown ----------------------------------------------------------------

    async def revoke(self, partitions: Iterable[Hashable]) -> int:
        """Cancel and forget the unacknowledged work of ``partitions``; how many records."""
        dropped: list[_Entry[T, P]] = []
        keyers: list[asyncio.Task[None]] = []
        for partition in partitions:
            self._epochs[partition] = self._epochs.get(partition, 0) + 1
            dropped.extend(self._partitions.pop(partition, ()))
            self._unkeyed.pop(partition, None)
            keyer = self._keyers.pop(partition, None)
            if keyer is not None:
                keyer.cancel()
                keyers.append(keyer)
        touched: set[Hashable] = set()
        unwinding: list[asyncio.Future[None]] = []
        for entry in dropped:
            entry.revoked = True
            if entry.worker is not None:  # being processed: cancel that, not the worker
                entry.unwound = asyncio.get_running_loop().create_future()
                unwinding.append(entry.unwound)
                entry.worker.cancel()
            chain = self._chains.get(entry.key) if entry.joined else None
            if chain is not None:
                with contextlib.suppress(ValueError):  # done entries already left their chain
                    chain.remove(entry)
                touched.add(entry.key)
            self._release(entry)
        # Let the cancelled work unwind before the next record of its key starts.
        await _settle([*unwinding, *keyers])
        for key in touched:  # a revoked head frees its key for the next record of it
            chain = self._chains.get(key)
            if not chain:
                self._chains.pop(key, None)
            elif not chain[0].started:
                self._start(chain[0])
        return len(dropped)

    async def drain(self, grace: float) -> bool:
        """Stop admitting; wait up to ``grace`` s for every record to be acknowledged; cancel
        the rest (unacknowledged). True when everything was acknowledged in time."""
        self._closed = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout=grace)
        finished = self._count == 0
        if not finished:
            left = await self.revoke(list(self._partitions))
            log.warning(
                "shutdown grace of %.1f s ran out: %d records not acknowledged", grace, left
            )
        for worker in self._workers:  # idle now (or stuck past CANCEL_WAIT): nothing to do
            worker.cancel()
        return finished


async def _settle(tasks: list[asyncio.Future[None]]) -> None:
    """Wait (briefly) for cancelled work to unwind, so none still runs when we return."""
    pending = [t for t in tasks if not t.done()]
    if pending:
        await asyncio.wait(pending, timeout=CANCEL_WAIT)
