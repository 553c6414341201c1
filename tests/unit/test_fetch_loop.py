"""The lean fetch loop: ``eager`` runs a callback inline until it would wait, and what is left
is finished by whoever awaits it, as a task would have; the loop is faust's own otherwise."""

from __future__ import annotations

import asyncio
import hashlib
import inspect

import faust
import pytest
from faust.transport.consumer import Consumer

from relay.pipeline.fetch_loop import LeanConsumer, eager, install


async def _no_wait(log: list[str]) -> str:
    log.append("ran")
    return "done"


async def _waits_on(future: asyncio.Future[str], log: list[str]) -> str:
    log.append("before")
    value = await future
    log.append(f"after {value}")
    return value.upper()


def test_a_callback_that_never_waits_runs_inline_and_leaves_nothing() -> None:
    log: list[str] = []
    assert eager(_no_wait(log)) is None
    assert log == ["ran"]


async def test_the_rest_of_a_waiting_callback_finishes_in_a_task() -> None:
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    log: list[str] = []
    rest = eager(_waits_on(future, log))
    assert rest is not None and log == ["before"]
    task = asyncio.ensure_future(rest)
    await asyncio.sleep(0)
    assert not task.done()
    future.set_result("ok")
    assert await task == "OK"
    assert log == ["before", "after ok"]


async def test_the_rest_can_be_awaited_directly() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()
    loop.call_later(0.01, future.set_result, "late")
    rest = eager(_waits_on(future, []))
    assert rest is not None
    assert await rest == "LATE"


def test_an_error_raised_before_the_first_wait_propagates() -> None:
    async def broken() -> None:
        raise ValueError("bad message")

    with pytest.raises(ValueError, match="bad message"):
        eager(broken())


async def test_an_error_after_the_wait_reaches_the_awaiter() -> None:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def fails_later() -> None:
        await future
        raise KeyError("later")

    rest = eager(fails_later())
    assert rest is not None
    task = asyncio.ensure_future(rest)
    future.set_result(None)
    with pytest.raises(KeyError, match="later"):
        await task


async def test_cancelling_the_task_cancels_the_callback_where_it_waits() -> None:
    """faust's wait_first cancels a callback the flow switch outran: it must unwind."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    log: list[str] = []

    async def blocked() -> None:
        try:
            await future
        finally:
            log.append("unwound")

    rest = eager(blocked())
    assert rest is not None
    task = asyncio.ensure_future(rest)
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert log == ["unwound"] and future.cancelled()


def test_install_makes_the_app_s_consumer_a_lean_one() -> None:
    app = faust.App("lean-fetch", broker="kafka://localhost:1", store="memory://")
    install(app)
    assert isinstance(app.consumer, LeanConsumer)


def test_faust_s_fetch_loop_is_still_the_one_copied() -> None:
    """LeanConsumer._drain_messages is faust 0.15.3's loop with one line changed: a faust that
    changes its loop must be compared with relay/pipeline/fetch_loop.py before it is taken."""
    source = inspect.getsource(Consumer._drain_messages)
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    assert digest == FAUST_LOOP, f"faust's _drain_messages changed ({digest}): reread fetch_loop.py"


FAUST_LOOP = "44a2500309e83c63"  # sha256 of faust 0.15.3's source, first 16 hex digits


def test_faust_s_getmany_is_still_the_one_copied() -> None:
    """LeanConsumer.getmany is faust 0.15.3's with the end offset tracked once per partition of
    a fetch: a faust that changes it must be compared with relay/pipeline/fetch_loop.py first."""
    source = inspect.getsource(Consumer.getmany)
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    assert digest == FAUST_GETMANY, f"faust's getmany changed ({digest}): reread fetch_loop.py"


FAUST_GETMANY = "4b168d84882a70d6"
