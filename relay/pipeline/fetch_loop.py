"""faust's fetch loop without four asyncio tasks per message.

faust 0.15's ``Consumer._drain_messages`` hands every fetched message to the conductor with
``await self.wait_first(callback(message), self.suspend_flow.wait())``: four tasks (the callback,
the flow switch, the consumer's stopped and crashed events), an ``asyncio.wait`` and three
cancellations per message, so that a callback blocked on a full stream buffer can be given up
when a rebalance suspends the flow. In the common case the callback never blocks: the conductor
puts the event into a stream buffer that has room and returns. That race was most of faust's
own CPU per record (the ``null-agent`` variant of ``python -m bench.ab``: 93 µs per record with
it, 34 without) and 0.89 of the whole relay's (bench/README.md).

``LeanConsumer`` first offers the message to the conductor's ``hand_over`` (a plain call that
puts a raw-bytes message into its stream's buffer when nothing could wait, ``conductor.py``);
otherwise it runs the callback inline until it would wait (``eager``): a callback that
finishes without waiting costs one coroutine call; one that waits is finished by faust's own
``wait_first`` race, as before. The loop is otherwise faust's, line for line (read offsets, gaps,
the commit every ``broker_commit_every`` acks, a yield to the loop every 100 messages).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Coroutine, Generator
from typing import Any, cast

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from mode import Service, ServiceT

from relay.pipeline.acks import Untracked

YIELD_EVERY = 100  # messages between yields to the event loop (faust's own figure)


def install(app: faust.App) -> None:
    """Give ``app`` the lean fetch loop; before its consumer is first created."""
    assert app._consumer is None, "install the fetch loop before the consumer exists"
    app.transport.Consumer = LeanConsumer  # type: ignore[misc]


def eager(coro: Coroutine[Any, Any, Any]) -> Awaitable[Any] | None:
    """Run ``coro`` until it first waits. None when it finished; otherwise an awaitable that
    finishes it (wrap it in a task, or await it). Exceptions it raises on the way propagate."""
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return None
    return _Rest(coro, waiting_on)


class _Rest:
    """The rest of a coroutine already started: hands what it waits on to whoever awaits this
    (``yield from`` by hand), so a task can drive it from where ``eager`` left it."""

    __slots__ = ("_coro", "_waiting_on")

    def __init__(self, coro: Coroutine[Any, Any, Any], waiting_on: Any) -> None:
        self._coro, self._waiting_on = coro, waiting_on

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, waiting_on = self._coro, self._waiting_on
        while True:
            try:
                sent = yield waiting_on
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # cancellation too: passed into the coroutine
                try:
                    waiting_on = coro.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    waiting_on = coro.send(sent)
                except StopIteration as done:
                    return done.value


class LeanConsumer(faust_aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.app.conf.stream_wait_empty:  # nothing reads the set (acks.py)
            self._unacked_messages = Untracked()

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:  # noqa: ASYNC109
        # faust.transport.consumer.Consumer.getmany, with the partition's end offset read and
        # handed to the sensor once per partition and fetch instead of once per message (aiokafka
        # builds a set of the assignment for each read, and the sensor sets a gauge).
        records, active_partitions = await self._wait_next_records(timeout)
        generation_id = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return
        records_it = self.scheduler.iterate(records)
        to_message = self._to_message
        track_end_offset = self.app.monitor.track_tp_end_offset
        tracked: set[TP] = set()
        if self.flow_active:
            for tp, record in records_it:
                if not self.flow_active:
                    break
                if self.app.consumer_generation_id != generation_id:
                    break  # a rebalance began: faust cancels the batch
                if (
                    active_partitions is None
                    or tp in active_partitions
                    or tp in self._buffered_partitions
                ):
                    if tp not in tracked:
                        tracked.add(tp)
                        track_end_offset(tp, self.highwater(tp))
                    yield tp, to_message(tp, record)
        else:
            try:
                await self.perform_seek()
            except Exception as ex:
                self.log.warning(f"exception performing seek when flow not active {ex}")

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # pragma: no cover - loop
        # faust.transport.consumer.Consumer._drain_messages, with the callback run eagerly.
        callback = self.callback
        conductor = self.app.topics  # its hand-over without a coroutine, where it can
        hand_over = getattr(conductor, "hand_over", None)
        if callback is not getattr(conductor, "on_message", None):
            hand_over = None
        getmany = self.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        since_yield = 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                batch = cast(AsyncIterator[Any], getmany(timeout=1.0))
                await self.sleep(0)  # getmany may return at once, again and again
                if not self.should_stop:
                    async for tp, message in batch:
                        since_yield += 1
                        if since_yield > YIELD_EVERY:
                            await asyncio.sleep(0)
                            since_yield = 0
                        offset = message.offset
                        read = get_read_offset(tp)
                        if read is None or offset >= read:
                            gap = offset - (read or 0)
                            if gap > 1 and read and acks_enabled_for(message.topic):
                                await self._add_gap(tp, read + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            if hand_over is None or not hand_over(message):
                                rest = eager(cast(Coroutine[Any, Any, Any], callback(message)))
                                if rest is not None:  # the buffer is full, the flow suspended
                                    await self.wait_first(rest, self.suspend_flow.wait())
                            set_read_offset(tp, offset)
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)
