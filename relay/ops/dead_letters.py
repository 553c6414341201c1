"""The dead-letter topic as an operator reads it (``relay dlq``, the demo, reconciliation): each
record with the stage and reason the relay's ``relay.*`` headers give it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relay.kafka.topics import read_topic


@dataclass(frozen=True)
class DeadLetterView:
    """A dead-letter record as an operator sees it."""

    key: bytes | None
    value: bytes
    stage: str
    reason: str
    headers: dict[str, bytes]


def dead_letters(config: dict[str, Any], topic: str) -> list[DeadLetterView]:
    views = []
    for message in read_topic(config, topic):
        raw = message.headers() or []
        pairs = raw.items() if isinstance(raw, dict) else raw
        headers = {str(k): _bytes(v) for k, v in pairs}
        views.append(
            DeadLetterView(
                key=message.key(),
                value=message.value() or b"",
                stage=headers.get("relay.stage", b"").decode(),
                reason=headers.get("relay.reason", b"").decode(),
                headers=headers,
            )
        )
    return views


def _bytes(value: str | bytes | None) -> bytes:
    return value.encode() if isinstance(value, str) else value or b""
