"""``relay run`` with an alternative patched in memory: compare design choices side by side.

    python -m bench.variants VARIANT run      # instead of python -m relay.cli run

The relay's code is not edited: the patch is applied before ``relay.cli`` starts, so the same
backlog can be drained by the relay as it is and by the relay with the alternative, in one run
(``python -m bench --variants``). The variants are the choices the relay made before the
benchmark showed their cost; keeping them measurable keeps the reasons for the change honest.

- ``httpcore``: the TimeBackClient's httpx client over httpx's own httpcore pool instead of
  aiohttp's (``httpx_aiohttp``). httpcore 1.0's request assignment scans every connection for
  every queued request, and it imports the absent ``sniffio`` several times per request: at 64 in
  flight that pool was most of the relay's CPU (bench/results/relay_profile_httpcore.txt).
- ``held-window``: the dispatcher's processing window counts every record admitted and not yet
  acknowledged (``max_pending = max_in_flight``): a record that is done but waits for an earlier
  offset of its partition, or waits behind its student's previous record, holds an API slot.

- ``client-send``: API calls through ``AsyncClient.build_request`` and ``send(stream=True)`` over
  httpx_aiohttp's streaming transport, each answer copied into a capped second response (the
  relay before relay/timeback/transport.py).
- ``no-faust-sensor``: faust's Prometheus sensor off (``RELAY_FAUST_METRICS=false``): what its
  labelled updates per message cost (2-8% of the CPU per record in interleaved rounds, before the
  sensor counted them in plain integers and added them up at scrape time: docs/faust-path.md).
- ``aiohttp-lane``: the events POST through aiohttp's pool (``RELAY_EVENTS_WIRE=aiohttp``)
  instead of the relay's own connections (docs/events-wire.md).

- ``uvloop``: the relay on uvloop's event loop (``pip install uvloop`` into .venv first; not a
  dependency): 0.98 of the CPU per record at one event per POST (4 interleaved rounds, 6,000
  records) and 0.97 with envelopes of 20 (3 rounds), 2026-12-07. Not worth a dependency: the
  loop's own bookkeeping is not where the relay's CPU goes (bench/README.md).
- ``python-stream``: faust's pure-Python stream iterator (``NO_CYTHON=1``) instead of its compiled
  one, which awaits the channel per record where the Python one takes a buffered record at once:
  1.09 of the CPU per record in 3 interleaved rounds (2026-12-07), so the compiled one stays.

Measuring aids rather than alternatives:

- ``null-sink``: every event taken at once, no HTTP: what a record costs besides delivering it.
- ``yield-sink``: the same, each request waiting for the loop's next turn first: what suspending
  a record while its request is out costs, without the HTTP.
- ``null-agent``: the agent acknowledges each record as it reads it: faust's consumption alone.
- ``gc-frozen``, ``gc-lazy``: ``gc.freeze()`` once the app is built (and, lazy, the youngest
  generation collected every 50,000 allocations instead of 700): what the collector costs.
- ``stream-yield-N``: faust's compiled stream iterator yields to the loop once per N events
  (the relay's ``stream_pace`` makes it 16; this measures other values against a revision
  without it: ``rev:<ref>+stream-yield-8``).
- ``cprofile``: the whole process under cProfile; the stats go to ``relay.prof`` in the working
  directory at exit (``python -m bench.ab cprofile 8000 1``, then pstats).

Variants combine with ``+`` (``httpcore+held-window`` is the relay before the change of
2026-11-29).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import httpx


def _httpcore_transport() -> None:
    """TimeBackClient gets httpx's default transport (an httpcore pool) unless given one."""
    from relay.timeback import client

    original = client.TimeBackClient.__init__

    def init(self: Any, config: Any, *, transport: Any = None, **kwargs: Any) -> None:
        pool = httpx.AsyncHTTPTransport(limits=config.limits())
        original(self, config, transport=transport or pool, **kwargs)

    client.TimeBackClient.__init__ = init  # type: ignore[method-assign]


def _held_window() -> None:
    from relay.pipeline.dispatch import Dispatcher

    original = Dispatcher.__init__

    def init(self: Any, process: Any, ack: Any, *, max_in_flight: int, **kwargs: Any) -> None:
        kwargs["max_pending"] = max_in_flight
        original(self, process, ack, max_in_flight=max_in_flight, **kwargs)

    Dispatcher.__init__ = init  # type: ignore[method-assign]


def _no_faust_sensor() -> None:
    os.environ["RELAY_FAUST_METRICS"] = "false"


def _client_send() -> None:
    """API calls through ``AsyncClient.build_request`` and ``send(stream=True)`` over
    httpx_aiohttp's streaming transport, each answer copied into a capped second response."""
    from httpx_aiohttp import AiohttpTransport

    from relay.timeback import client

    original = client.TimeBackClient.__init__

    class Sent:  # AsyncClient.send in the transport's place
        def __init__(self, http: httpx.AsyncClient) -> None:
            self.http = http

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return await self.http.send(request, stream=True)

    def init(self: Any, config: Any, *, transport: Any = None, **kwargs: Any) -> None:
        streamed = transport or AiohttpTransport(limits=config.limits())
        original(self, config, transport=streamed, **kwargs)
        http = self._http
        self._url = lambda path, params: http.build_request("GET", path, params=params).url
        self._transport = Sent(http)

    client.TimeBackClient.__init__ = init  # type: ignore[method-assign]


def _null_sink(*, suspend: bool = False) -> None:
    """Every event taken at once, no HTTP: what the relay costs per record besides delivering.
    ``suspend``: each request first waits for the loop's next turn (``asyncio.sleep(0)``), as
    a real one waits for its answer: what suspending the record costs, without the HTTP."""
    import asyncio

    from relay import wiring
    from relay.timeback.client import Outcome, SendResult

    class NullSink:
        async def send(self, events: Any, attempts: Any) -> list[SendResult]:
            if suspend:
                await asyncio.sleep(0)
            return [SendResult(202, Outcome.DELIVERED) for _ in events]

        async def aclose(self) -> None:
            pass

    wiring.sink = lambda *args, **kwargs: NullSink()


def _null_agent() -> None:
    """The agent acknowledges each record as it reads it: faust's consumption alone."""
    from relay.pipeline import runtime

    async def submit(self: Any, record: Any) -> bool:
        if self.dispatcher is None:
            await self.start()
        self._ack(record)
        return True

    runtime.Runtime.submit = submit  # type: ignore[method-assign]


def _gc(*, freeze: bool, threshold: tuple[int, int, int] | None = None) -> None:
    """The collector told that everything imported is permanent (``gc.freeze``), and perhaps
    to collect the youngest generation less often."""
    import gc

    from relay.pipeline import worker

    original = worker.create_app

    def create_app(settings: Any) -> Any:
        made = original(settings)
        if freeze:
            gc.collect()
            gc.freeze()
        if threshold:
            gc.set_threshold(*threshold)
        return made

    worker.create_app = create_app


def _stream_yield(every: int) -> None:
    """faust's compiled stream iterator yields to the loop once per event (``await sleep(0)``);
    here once per ``every`` events. ``relay.pipeline.stream_pace`` does the same in the relay;
    this copy stays so that it also patches revisions from before that module
    (``rev:<ref>+stream-yield-N``)."""
    import asyncio

    import faust._cython.streams as compiled

    real = asyncio.sleep
    count = 0

    async def no_yield() -> None:
        return None

    def sleep(delay: float, result: Any = None) -> Any:
        nonlocal count
        count += 1
        if delay or count >= every:
            count = 0
            return real(delay, result)
        return no_yield()

    compiled.sleep = sleep


def _cprofile() -> None:
    """cProfile the whole process; the stats go to $RELAY_CPROFILE_TO at exit."""
    import atexit
    import cProfile

    profile = cProfile.Profile()
    atexit.register(lambda: profile.dump_stats(os.environ.get("RELAY_CPROFILE_TO", "relay.prof")))
    profile.enable()


def _aiohttp_lane() -> None:
    """The events POST through aiohttp's pool (``transport.Lane``), as before wire.py."""
    os.environ["RELAY_EVENTS_WIRE"] = "aiohttp"


def _uvloop() -> None:
    """The whole relay on uvloop's event loop (libuv, in C) instead of asyncio's own."""
    import asyncio

    try:
        import uvloop  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise SystemExit("variant uvloop: .venv/bin/pip install uvloop first") from None
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _python_stream() -> None:
    os.environ["NO_CYTHON"] = "1"


_PATCHES: dict[str, Callable[[], None]] = {
    "httpcore": _httpcore_transport,
    "held-window": _held_window,
    "client-send": _client_send,
    "no-faust-sensor": _no_faust_sensor,
    "aiohttp-lane": _aiohttp_lane,
    "python-stream": _python_stream,
    "uvloop": _uvloop,
    "null-sink": _null_sink,
    "yield-sink": functools.partial(_null_sink, suspend=True),
    "null-agent": _null_agent,
    "gc-frozen": functools.partial(_gc, freeze=True),
    "gc-lazy": functools.partial(_gc, freeze=True, threshold=(50_000, 20, 100)),
    "cprofile": _cprofile,
}
_STREAM_YIELD = "stream-yield-"  # + N: yield to the loop once per N events
VARIANTS = (*_PATCHES, f"{_STREAM_YIELD}<N>")


def apply(variant: str) -> None:
    if variant.startswith(_STREAM_YIELD):
        _stream_yield(int(variant.removeprefix(_STREAM_YIELD)))
    elif variant in _PATCHES:
        _PATCHES[variant]()
    else:
        raise SystemExit(f"unknown variant {variant!r}; one of {', '.join(VARIANTS)}")


def main() -> None:
    variant = sys.argv.pop(1)
    for one in variant.split("+"):
        apply(one)
    from relay.cli import main as relay_main

    relay_main()


if __name__ == "__main__":
    main()
