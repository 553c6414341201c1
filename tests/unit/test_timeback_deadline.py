"""``_http.timed``'s deadline: the exchanges in flight share one timer (``_Watch``), and each is
cut at its own deadline as ``asyncio.timeout`` would cut it. No real server: an exchange here is
a coroutine that answers when told or never (a reply that drips bytes, as far as the deadline
is concerned; tests/reliability/test_probe_drip.py has the real one)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from types import SimpleNamespace
from typing import Any

import pytest

from relay.timeback import _http
from relay.timeback.errors import ApiTransientError

DEADLINE = 0.05  # seconds: short, the tests wait for it to pass


async def _answer(after: asyncio.Event | None = None) -> Any:
    """An exchange: answered once ``after`` is set (never, when it is not)."""
    await (after or asyncio.Event()).wait()
    return SimpleNamespace(status_code=202)


async def _timed(exchange: Any, deadline: float = DEADLINE) -> Any:
    return await _http.timed(exchange, endpoint="events", what="POST events", deadline=deadline)


async def _guarded(coroutine: Any) -> Any:
    """``coroutine`` in a task of its own, with a guard against a hang (not a measurement)."""
    return await asyncio.wait_for(coroutine, 30)


async def test_an_exchange_past_its_deadline_is_cut_as_a_transient_timeout() -> None:
    async def cut() -> tuple[ApiTransientError, int]:
        try:
            await _timed(_answer())
        except ApiTransientError as error:
            me = asyncio.current_task()
            assert me is not None
            return error, me.cancelling()  # the deadline's cancellation withdrawn: 0
        raise AssertionError("answered")

    error, cancelling = await _guarded(cut())
    assert error.cause == "timeout" and "0.05 s deadline" in str(error)
    assert cancelling == 0


async def test_each_exchange_is_cut_at_its_own_deadline_and_only_those_late() -> None:
    answered = asyncio.Event()
    early = asyncio.create_task(_timed(_answer(answered), deadline=60.0))
    late = [asyncio.create_task(_timed(_answer())) for _ in range(5)]
    await asyncio.sleep(0)
    answered.set()
    assert (await early).status_code == 202
    results = await _guarded(asyncio.gather(*late, return_exceptions=True))
    assert all(isinstance(r, ApiTransientError) and r.cause == "timeout" for r in results)
    await asyncio.sleep(DEADLINE * 2)  # the shared timer fired again: nothing left to cut
    assert not _http._watch(60.0).due and not _http._watch(DEADLINE).due


async def test_a_task_answered_in_time_goes_on_uncancelled() -> None:
    answered = asyncio.Event()
    answered.set()
    assert (await _timed(_answer(answered))).status_code == 202
    await asyncio.sleep(DEADLINE * 2)  # past the deadline: the task is not cancelled later
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_cancellation_from_elsewhere_is_no_timeout() -> None:
    task = asyncio.create_task(_timed(_answer(), deadline=60.0))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancelled_from_elsewhere_as_the_deadline_passes_it_stays_cancelled() -> None:
    async def exchange() -> Any:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            me = asyncio.current_task()
            assert me is not None
            me.cancel()  # someone else cancels it too, while the deadline's cancel unwinds
            raise
        return None

    with pytest.raises(asyncio.CancelledError):
        await _guarded(_timed(exchange()))


async def test_a_task_already_being_cancelled_falls_back_to_asyncio_timeout() -> None:
    async def caller() -> BaseException | None:
        me = asyncio.current_task()
        assert me is not None
        me.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0)  # swallowed, not withdrawn: cancelling() stays 1
        try:
            await _timed(_answer())
        except ApiTransientError as cut:
            return cut
        return None

    cut = await _guarded(caller())
    assert isinstance(cut, ApiTransientError) and cut.cause == "timeout"


async def test_no_deadline_waits_for_the_answer() -> None:
    answered = asyncio.Event()
    task = asyncio.create_task(_http.timed(_answer(answered), endpoint="events", what="x"))
    await asyncio.sleep(DEADLINE * 2)
    assert not task.done()
    answered.set()
    assert (await task).status_code == 202


def test_a_closed_loop_is_not_kept_alive_by_its_watch() -> None:
    """The watches are per event loop and remember the last loop for a quick look-up: once a
    loop has run its exchanges and closed, nothing of the watch keeps it (a service restarts
    its loop in tests, a tool runs one per command)."""

    async def one_exchange() -> weakref.ref[asyncio.AbstractEventLoop]:
        await _timed(_answer(_set(asyncio.Event())))
        return weakref.ref(asyncio.get_running_loop())

    loop = asyncio.run(one_exchange())
    gc.collect()
    assert loop() is None


def _set(event: asyncio.Event) -> asyncio.Event:
    event.set()
    return event
