"""The agent's stream yields to the event loop once per ``YIELD_EVERY`` events, not per event.

faust's compiled stream iterator (``faust/_cython/streams.pyx``) awaits ``asyncio.sleep(0)``
before it takes each event from the stream's buffer, so that other tasks get a turn. For the
relay that is a full pass of the event loop (a poll of every socket, the ready callbacks) for
each record admitted: with the API answering at once, each record's request then goes out and
comes back on its own pass, where a bare aiohttp loop completes dozens per pass. Yielding once
per ``YIELD_EVERY`` events lets the agent admit a few records per pass (the dispatcher's window
still stops it when full), and their requests travel together: 0.72-0.87 of the CPU per record
in interleaved rounds (bench/README.md). The workers, the consumer and the web views still run
at least every ``YIELD_EVERY`` records.

``install`` replaces the ``sleep`` that faust's compiled module looks up at each event; a delay
other than 0 (faust uses none there) is asyncio's own. Without the compiled iterator
(``NO_CYTHON``) nothing changes. A unit test pins faust's source, so an upgrade is compared first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Final

YIELD_EVERY: Final = 16  # events the agent's stream takes between yields to the event loop


def paced_sleep(every: int = YIELD_EVERY) -> Callable[..., Awaitable[Any]]:
    """``asyncio.sleep`` whose ``sleep(0)`` yields to the loop only on every ``every``-th call;
    the calls between finish without suspending."""
    if every < 1:
        raise ValueError("every must be >= 1")
    calls = 0

    def sleep(delay: float, result: Any = None) -> Awaitable[Any]:
        nonlocal calls
        calls += 1
        if delay or calls >= every:
            calls = 0
            return asyncio.sleep(delay, result)
        return _at_once(result)

    return sleep


async def _at_once(result: Any) -> Any:
    return result


def install(every: int = YIELD_EVERY) -> None:
    """Pace faust's compiled stream iterator (all streams of this process: the relay has one)."""
    try:
        from faust._cython import streams as compiled
    except ImportError:  # faust without its compiled extensions: its Python iterator, as is
        return
    compiled.sleep = paced_sleep(every)
