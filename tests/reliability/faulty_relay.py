"""``relay run`` with a planted bug: for one producer event id, a stage raises an unexpected error.

    python -m tests.reliability.faulty_relay run      # with RELIABILITY_BUG_STAGE and _EVENT_ID

No valid input makes the relay's decoder or mapper raise anything but a Rejection (a mutation fuzz
of 900,000 records found none), yet a bug there (or in a library under it) is what issue 16 items 1
and 6 are about. This launcher wraps a public entry point of the contract or mapping layer in the
relay's own process and then runs the unchanged CLI, so the pipeline is exercised black-box:

- ``RELIABILITY_BUG_STAGE=decode``: ``Decoder.decode_sync`` raises ``PlantedBug`` after decoding
  a record whose ``event_id`` is the one named. It runs in the faust agent (pre-decoding, before
  the record enters the in-order window) and again in the window when pre-decoding is skipped.
- ``RELIABILITY_BUG_STAGE=map``: ``CourseResolver.resolve`` (the enrich step the pipeline runs for
  every record before mapping it) raises ``PlantedBug`` for that record: inside the window, on
  every attempt, a deterministic processing bug.

The exception's message carries a marker, so a trial can check it never reaches a dead letter.
"""

from __future__ import annotations

import os
import sys
from typing import Any

STAGE_VAR, EVENT_VAR = "RELIABILITY_BUG_STAGE", "RELIABILITY_BUG_EVENT_ID"
SECRET_MARK = "planted-bug-message-must-not-leak"


class PlantedBug(RuntimeError):
    """The unexpected error of a trial."""


def install(stage: str, event_id: str) -> None:
    if stage == "decode":
        from relay.contract.decode import Decoder

        decode_sync = Decoder.decode_sync

        def failing_decode(self: Decoder, value: bytes) -> Any:
            activity = decode_sync(self, value)
            if activity.event_id == event_id:
                raise PlantedBug(f"{SECRET_MARK}: decode {event_id}")
            return activity

        Decoder.decode_sync = failing_decode  # type: ignore[method-assign]
    elif stage == "map":
        from relay.courses import CourseResolver

        resolve = CourseResolver.resolve

        async def failing_resolve(self: CourseResolver, activity: Any) -> Any:
            if activity.event_id == event_id:
                raise PlantedBug(f"{SECRET_MARK}: map {event_id}")
            return await resolve(self, activity)

        CourseResolver.resolve = failing_resolve  # type: ignore[method-assign]
    else:
        raise SystemExit(f"{STAGE_VAR}: unknown stage {stage!r} (decode or map)")


def main() -> None:
    stage, event_id = os.environ.get(STAGE_VAR), os.environ.get(EVENT_VAR)
    if stage and event_id:
        install(stage, event_id)
    from relay.cli import main as relay_main

    sys.exit(relay_main())


if __name__ == "__main__":
    main()
