"""The sink seam: where a record's Caliper events go, and what became of each.

``Pipeline`` holds one ``Sink`` and hands it every event of a record at once
(``send(events, attempts)``); the sink answers with each event's ``SendResult`` (delivered, or
a duplicate the API already had), in order, or raises the record's failure:

- ``EventRejected`` (a ``RequestRejected``): the API refused an event for good; its status and
  body go into the dead letter (``deliver/api-rejected``);
- ``RetriesExhausted``: an event failed for its whole retry budget while the API took others
  (``deliver/retries-exhausted``);
- anything else is a processing bug of this record alone (the pipeline quarantines it): a sink
  never lets one record's bug reach another record that shared a request with it.

``attempts`` is the record's deliver-stage count, for its dead letter. Implementations, chosen by
``relay.wiring.sink``: ``EventSink`` here (one event per request: RELAY_EVENTS_PER_REQUEST=1) and
``relay.timeback.envelopes.EnvelopeBatcher`` (events of several records per request). A new sink
(another API, a file for dry runs) is one module implementing this protocol and one line in
``relay.wiring.sink``. Nothing here knows Kafka.

The protocol lives with the Partner API package because its failure vocabulary
(``RequestRejected``, ``SendResult``) is that client's; a sink for another destination reuses
those types rather than teaching the pipeline new ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from relay.resilience import Attempts
from relay.timeback.client import SendResult


class Sendable(Protocol):
    """An event ready to send (``relay.mapping.CaliperEvent``): its type and serialized body."""

    @property
    def type(self) -> str: ...

    @property
    def payload(self) -> bytes: ...


class Sink(Protocol):
    async def send(self, events: Sequence[Sendable], attempts: Attempts) -> list[SendResult]:
        """Every event of one record until each is answered (see the module docstring)."""
        ...

    async def aclose(self) -> None:
        """Stop: nothing more is sent; what waits or is in flight is cancelled."""
        ...


class EventDeliverer(Protocol):
    """What sends one event until it is answered: the ``Deliverer``."""

    async def deliver(
        self, payload: bytes, *, event_type: str, attempts: Attempts | None = None
    ) -> SendResult: ...


class EventSink:
    """One event per request, in the record's order; the first failure ends the record (its
    later events are not sent)."""

    def __init__(self, deliverer: EventDeliverer) -> None:
        self._deliverer = deliverer

    async def send(self, events: Sequence[Sendable], attempts: Attempts) -> list[SendResult]:
        # a loop, not an async list comprehension: that is a coroutine of its own, one more
        # frame every resumption of the request passes through
        results = []
        deliver = self._deliverer.deliver
        for event in events:
            results.append(await deliver(event.payload, event_type=event.type, attempts=attempts))
        return results

    async def aclose(self) -> None:
        """Nothing of its own to stop: each ``send`` is its record's task, cancelled with it."""

    def __repr__(self) -> str:
        return f"EventSink({self._deliverer!r})"
