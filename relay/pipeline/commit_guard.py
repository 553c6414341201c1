"""The commit guard: faust may commit a partition only up to what the relay itself acknowledged.

faust picks the offset it commits from its own list of acknowledged offsets (``_new_offset``),
and more than the relay's acknowledgements land in that list: a stream acknowledges every
record it *skips*, and it skips a record of an older consumer generation that reaches its buffer
after a rebalance (with its buffer full, faust's conductor hands records over in tasks of their
own, which a rebalance does not always stop). Such a record X was never given to the relay; the
partition's new owner reads it again from the committed offset. faust's list then holds X ahead
of the records before it, and its gap test (``min(acked) - committed > 1``) lets the commit jump
past X while the redelivered X is still in the relay's window, or skips the test altogether when
nothing was committed yet (offset None or 0). A crash or the next rebalance then loses X.

The relay acknowledges each partition strictly in offset order (``dispatch.py``), so the next
offset after its last acknowledgement is a watermark below which everything it was given is
done. ``CommitGuard`` keeps that watermark per partition and bounds every commit by it: an
offset faust would commit past the watermark is lowered to it, and a partition the relay has
acknowledged nothing of since it was assigned is not committed at all. The bound is applied
where faust chooses its offsets (``Consumer._filter_committable_offsets``), so every commit path
(the interval, shutdown, revocation) goes through it. faust's private method is wrapped, not
changed: ``install`` checks that it exists and fails loudly on a faust that renamed it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

log = logging.getLogger(__name__)

CHOOSER = "_filter_committable_offsets"  # faust.transport.consumer.Consumer: {tp: offset}


class CommitGuard:
    """Per partition, the offset after the relay's last in-order acknowledgement."""

    def __init__(self) -> None:
        self._watermarks: dict[Hashable, int] = {}
        self.bounded = 0  # commits lowered to the watermark (or withheld) so far

    def acknowledged(self, partition: Hashable, offset: int) -> None:
        """The relay acknowledged ``offset`` of ``partition`` (and, in order, all before it)."""
        self._watermarks[partition] = offset + 1

    def revoked(self, partitions: Iterable[Hashable]) -> None:
        """Forget revoked partitions: after a reassignment nothing is committed until the relay
        acknowledges again (its first acknowledgement follows faust's seek to the commit)."""
        for partition in partitions:
            self._watermarks.pop(partition, None)

    def watermark(self, partition: Hashable) -> int | None:
        return self._watermarks.get(partition)

    def bound(
        self, offsets: Mapping[Any, int], committed: Callable[[Any], int | None]
    ) -> dict[Any, int]:
        """``offsets`` (partition -> offset faust would commit), each lowered to the relay's
        watermark; a partition is left out when that is no advance on ``committed``."""
        out: dict[Any, int] = {}
        for partition, offset in offsets.items():
            limit = self._watermarks.get(partition)
            allowed = offset if limit is None else min(offset, limit)
            if limit is None or allowed < offset:
                self._note(partition, offset, limit)
            if limit is None:
                continue
            last = committed(partition)
            if last is None or allowed > last:
                out[partition] = allowed
        return out

    def _note(self, partition: Any, offset: int, limit: int | None) -> None:
        self.bounded += 1
        if limit is None:  # at every rebalance: acks of the previous assignment, now stale
            log.info("not committing %s at %d: nothing acknowledged since assigned", partition,
                     offset)  # fmt: skip
            return
        log.warning(
            "faust chose to commit %s at %d, past the relay's acknowledgements (up to %d): "
            "committing %d",
            partition,
            offset,
            limit,
            limit,
        )

    def install(self, consumer: Any) -> None:
        """Wrap ``consumer``'s choice of commit offsets (once; idempotent)."""
        choose = getattr(consumer, CHOOSER, None)
        if choose is None or not callable(choose):
            raise RuntimeError(
                f"faust's consumer has no {CHOOSER}: the commit guard cannot bound commits "
                "(faust upgraded? see relay/pipeline/commit_guard.py)"
            )
        if getattr(choose, "_relay_guard", None) is self:
            return
        committed: Mapping[Any, int | None] = consumer._committed_offset

        def guarded(tps: Iterable[Any]) -> dict[Any, int]:
            return self.bound(choose(tps), committed.get)

        guarded._relay_guard = self  # type: ignore[attr-defined]
        setattr(consumer, CHOOSER, guarded)
        log.info("commit guard on: faust commits no further than the relay acknowledged")
