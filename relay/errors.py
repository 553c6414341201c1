"""The relay's error hierarchy: what went wrong decides what happens to the record.

- ``Rejection``: this record can never be delivered as it is. It goes to the dead-letter topic
  with its stage, reason code and detail, and its offset is then acknowledged.
- ``TransientError``: the world is briefly unavailable (network, 429, 5xx, registry or token
  endpoint down). Retried with backoff; never dead-lettered.
- ``SystemicError``: the relay is misconfigured or lacks permission (403, 404 on /events, a second
  401). No single record is at fault: back off, alert, never dead-letter per record.
- ``ConfigError``: a setting is invalid; the message names the RELAY_* variable.

Narrower errors live beside the code that raises them and derive from these (every error the
relay raises on purpose is a ``RelayError``): ``relay.timeback.errors`` for the API,
``DeadLetterWriteFailed`` (transient: retried, the partition waits), ``StrikeStoreError`` (the
quarantine's strike topic could not be read or written: the record is not quarantined).

Messages never carry secrets: callers pass details that are already safe to log.
"""

from __future__ import annotations

from typing import Final, Literal

# "relay": the relay's own failure (a processing bug quarantined), not a stage of the record.
Stage = Literal["decode", "validate", "enrich", "map", "deliver", "relay"]
STAGES: Final[tuple[Stage, ...]] = ("decode", "validate", "enrich", "map", "deliver")

DETAIL_LIMIT: Final = 2000


class RelayError(Exception):
    """Base of every error the relay raises on purpose."""


class Rejection(RelayError):
    """A record that cannot be delivered: ends in the dead-letter topic with its reason.

    ``reason`` is a stable, kebab-case code (``avro-decode-error``, ``invalid-field``...) that
    operators filter and replay by; ``detail`` says what exactly, naming the field. ``attempts``
    and ``first_failure`` (Unix time) are what the record went through in its stage, for its
    dead letter: the pipeline stamps them from the stage's attempt record.
    """

    def __init__(
        self,
        stage: Stage,
        reason: str,
        detail: str = "",
        *,
        status: int | None = None,
        body: str | None = None,
        attempts: int = 1,
        first_failure: float | None = None,
    ) -> None:
        self.stage: Stage = stage
        self.reason = reason
        self.detail = detail[:DETAIL_LIMIT]
        self.status = status  # HTTP status when the API refused the event
        self.body = body  # capped HTTP response body, when there is one
        self.attempts = attempts
        self.first_failure = first_failure
        super().__init__(f"{stage}/{reason}: {self.detail}" if detail else f"{stage}/{reason}")

    def __reduce__(self) -> tuple[object, ...]:  # picklable despite the keyword-only args
        return (
            _rebuild_rejection,
            (
                self.stage,
                self.reason,
                self.detail,
                self.status,
                self.body,
                self.attempts,
                self.first_failure,
            ),
        )


def _rebuild_rejection(
    stage: Stage,
    reason: str,
    detail: str,
    status: int | None,
    body: str | None,
    attempts: int = 1,
    first_failure: float | None = None,
) -> Rejection:
    return Rejection(
        stage,
        reason,
        detail,
        status=status,
        body=body,
        attempts=attempts,
        first_failure=first_failure,
    )


class TransientError(RelayError):
    """Worth retrying later: the record is fine, the world is not (yet)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds the server asked us to wait, if it said


class SystemicError(RelayError):
    """The relay itself is misconfigured or unauthorised: pause everything, alert, retry slowly."""


class ConfigError(RelayError):
    """An invalid setting; the message names the RELAY_* variable and what is wrong."""
