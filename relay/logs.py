"""JSON-lines logging: one object per line, with the record being worked on when there is one.

    {"time": "2026-01-15T14:30:00.123Z", "level": "WARNING", "logger": "relay.pipeline.stages",
     "message": "dead-lettered: deliver/api-rejected", "topic": "timeback.activity",
     "partition": 3, "offset": 1042, "event_id": "0f8e…"}

The record context lives in a context variable: each record is processed in its own asyncio task
(which copies the context), so ``bind_record(...)`` inside that task tags every line logged on its
behalf, including the lines of the API client and the dead-letter writer. Payloads are never
logged; as a last line of defence, bearer tokens and basic credentials are masked in every message.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
import traceback
from pathlib import Path
from typing import IO, Any, Final

import orjson

_RECORD: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "relay_record", default=None
)
# Credentials that must never reach a log line even if some library puts them in a message.
_SECRETS: Final = re.compile(
    r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|((?:client_secret|password|access_token|sasl\.password)[\"']?\s*[:=]\s*[\"']?)[^\s\"',&}]+"
)
# user:pass@ in any URL (a Schema Registry URL in some library's message).
_URL_USER_INFO: Final = re.compile(r"(?<=://)[^\s/]+@")
_MAX_MESSAGE: Final = 8000  # characters of one message (a runaway repr must not flood the log)


def outline(exc: BaseException, frames: int = 12) -> str:
    """Where ``exc`` was raised, without what it says: its type, ``file:line in function`` of
    the innermost ``frames`` frames, and the type of the exception it chains. The message is
    left out on purpose: a processing bug's message may quote the record (a KeyError names a
    payload key, a ValueError repeats the bad value), and so does a traceback's last line."""
    text = type(exc).__name__
    stack = traceback.extract_tb(exc.__traceback__)[-frames:]
    if stack:
        text += " at " + " > ".join(map(_frame, stack))
    cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    if cause is not None:  # where the chained one was raised: its innermost frame
        inner = traceback.extract_tb(cause.__traceback__)[-1:]
        text += f" (while handling {type(cause).__name__}"
        text += "".join(f" at {_frame(f)}" for f in inner) + ")"
    return text


def _frame(frame: traceback.FrameSummary) -> str:
    return f"{_short_path(frame.filename)}:{frame.lineno} in {frame.name}"


def _short_path(filename: str) -> str:
    """A source path from its package down (``relay/pipeline/stages.py``), not the install's."""
    path = Path(filename)
    roots = [Path(p) for p in sys.path if p and path.is_relative_to(p)]
    if not roots:
        return path.name
    return path.relative_to(max(roots, key=lambda r: len(r.parts))).as_posix()


def bind_record(**context: Any) -> None:
    """Tag every log line of the current task with ``context`` (topic, partition, offset...)."""
    current = _RECORD.get()
    _RECORD.set({**current, **context} if current else context)


def record_context() -> dict[str, Any]:
    return dict(_RECORD.get() or {})


def redact(text: str) -> str:
    """``text`` with bearer/basic credentials, ``secret=...`` style values and the user info of
    URLs masked."""
    return _URL_USER_INFO.sub("[redacted]@", _SECRETS.sub(_mask, text))


def _mask(match: re.Match[str]) -> str:
    if match.group(1):
        return f"{match.group(1)} [redacted]"
    return f"{match.group(2)}[redacted]"


class JsonFormatter(logging.Formatter):
    """Formats a LogRecord as one JSON object (no newline inside)."""

    def format(self, record: logging.LogRecord) -> str:
        message = redact(record.getMessage())[:_MAX_MESSAGE]
        entry: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        context = _RECORD.get()
        if context:
            entry.update(context)
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = redact(self.formatException(record.exc_info))[:_MAX_MESSAGE]
        return orjson.dumps(entry, default=str).decode()


def _iso(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def configure(level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Send every logger (ours, faust's, aiokafka's) to ``stream`` as JSON lines at ``level``.

    aiokafka and httpx are chatty at INFO (fetch positions, one line per request): they log at
    WARNING unless the relay itself is at DEBUG. faust and mode follow ``level``.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    chatty = "DEBUG" if level == "DEBUG" else "WARNING"
    for name in ("aiokafka", "aiohttp.access", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(chatty)
