"""The agent's stream yields to the loop once per N events: the calls between finish at once,
every N-th yields a pass of the loop, a real delay is always asyncio's own."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import faust
import pytest

from relay.pipeline import stream_pace
from relay.pipeline.stream_pace import paced_sleep


async def _yielded(awaitable: object) -> bool:
    """Whether awaiting ``awaitable`` let the loop run a callback scheduled just before."""
    ran: list[bool] = []
    asyncio.get_running_loop().call_soon(ran.append, True)
    await awaitable  # type: ignore[misc]
    return bool(ran)


async def test_only_every_nth_sleep_zero_yields_to_the_loop() -> None:
    sleep = paced_sleep(3)
    assert [await _yielded(sleep(0)) for _ in range(7)] == [False, False, True] * 2 + [False]


async def test_every_one_is_asyncio_s_own_sleep() -> None:
    sleep = paced_sleep(1)
    assert [await _yielded(sleep(0)) for _ in range(3)] == [True, True, True]


async def test_a_real_delay_always_sleeps_and_hands_back_the_result() -> None:
    sleep = paced_sleep(100)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await sleep(0.02, "done") == "done"
    assert loop.time() - started >= 0.015
    assert await sleep(0, "now") == "now"


def test_every_must_be_positive() -> None:
    with pytest.raises(ValueError, match="every"):
        paced_sleep(0)


def test_install_paces_faust_s_compiled_stream_iterator() -> None:
    from faust._cython import streams as compiled

    before = compiled.sleep
    try:
        stream_pace.install(4)
        assert compiled.sleep is not before
        assert compiled.sleep.__qualname__.startswith("paced_sleep")
    finally:
        compiled.sleep = before


def test_faust_s_stream_iterator_is_still_the_one_paced() -> None:
    """faust 0.15.3's compiled iterator awaits the module's ``sleep(0)`` once per event: a faust
    that changes streams.pyx must be compared with relay/pipeline/stream_pace.py first."""
    source = (Path(faust.__file__).parent / "_cython" / "streams.pyx").read_text()
    assert source.count("await sleep(0)") == 1 and "from asyncio import sleep" in source
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    assert digest == FAUST_STREAMS_PYX, f"faust's streams.pyx changed ({digest}): reread it"


FAUST_STREAMS_PYX = "0041622f4a251188"  # sha256 of faust 0.15.3's, first 16 hex digits
