"""The Partner API's errors: which endpoint failed, and why (a bounded ``cause`` for labels).

They say what the API answered, never what it means for a record: the pipeline assigns the
stage by type (``EventRejected``, an event refused, is ``deliver/api-rejected``; any other
``RequestRejected``, a lookup refused, ``enrich/rostering-rejected``). Messages never carry
secrets.
"""

from __future__ import annotations

from relay.errors import RelayError, SystemicError, TransientError


class ApiTransientError(TransientError):
    """A transient failure of one request; ``cause`` is ``"503"``, ``"timeout"``, ``"connect"``."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        cause: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.endpoint = endpoint
        self.cause = cause
        self.status = status
        # Set by the Deliverer: the API accepted another request started after this one, so
        # the failure is this request's own, not the API's (what spends a retry budget).
        self.others_accepted = False


class ApiSystemicError(SystemicError):
    """The API refused the relay itself (403, 404 on /events, a second 401, bad credentials)."""

    def __init__(self, message: str, *, endpoint: str, status: int | None = None) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.status = status


class RequestRejected(RelayError):
    """The API refused this request with a 4xx; message and body (capped) are safe to keep."""

    def __init__(self, message: str, *, endpoint: str, status: int, body: str) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.status = status
        self.body = body


class EventRejected(RequestRejected):
    """The API refused one event (or an envelope of them) with a 4xx: this event's own answer."""

    def __init__(self, message: str, *, status: int, body: str) -> None:
        super().__init__(message, endpoint="events", status=status, body=body)
