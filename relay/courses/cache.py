"""A TTL cache of async lookups with single flight: concurrent misses for one key share a call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

T = TypeVar("T")
Source = Literal["cache", "api", "shared"]  # answered from memory, by a request, by another's


class TtlCache:
    """Results of one async lookup per key, kept ``ttl`` seconds; concurrent misses share one call.

    Errors are not cached (every waiter of that flight gets the error). At most ``max_entries``
    keys are kept; the oldest go first.
    """

    def __init__(
        self, ttl: float, clock: Callable[[], float] = time.monotonic, max_entries: int = 100_000
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max_entries
        self.hits = 0  # answered from the cache
        self.misses = 0  # caused a request
        self.shared = 0  # joined a request already in flight
        self._entries: dict[str, tuple[float, Any]] = {}
        self._flights: dict[str, asyncio.Future[Any]] = {}

    async def get(self, key: str, fetch: Callable[[], Awaitable[T]]) -> T:
        """The cached value of ``key``, fetched (once, however many ask) when absent or stale."""
        value, _ = await self.get_with_source(key, fetch)
        return value

    async def get_with_source(
        self, key: str, fetch: Callable[[], Awaitable[T]]
    ) -> tuple[T, Source]:
        """``get``, and where the answer came from (for metrics)."""
        entry = self._entries.get(key)
        if entry is not None and entry[0] > self.clock():
            self.hits += 1
            return entry[1], "cache"
        source: Source
        flight = self._flights.get(key)
        if flight is None:
            self.misses += 1
            source = "api"
            flight = asyncio.ensure_future(self._fill(key, fetch))
            flight.add_done_callback(_retrieve)
            self._flights[key] = flight
        else:
            self.shared += 1
            source = "shared"
        # shield: a cancelled waiter must not cancel the request the others are waiting for
        result: T = await asyncio.shield(flight)
        return result, source

    async def _fill(self, key: str, fetch: Callable[[], Awaitable[T]]) -> T:
        try:
            value = await fetch()
            self._entries.pop(key, None)  # re-insert at the end: eviction is oldest-first
            self._entries[key] = (self.clock() + self.ttl, value)
            while len(self._entries) > self.max_entries:
                del self._entries[next(iter(self._entries))]
            return value
        finally:
            del self._flights[key]


def _retrieve(flight: asyncio.Future[Any]) -> None:
    # Mark the error as seen: when every waiter was cancelled nobody else reads it.
    if not flight.cancelled():
        flight.exception()
