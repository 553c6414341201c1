"""JSON-lines logging: one object per line, with the record being worked on when there is one.

    {"time": "2026-01-15T14:30:00.123Z", "level": "WARNING", "logger": "relay.pipeline.stages",
     "message": "dead-lettered: deliver/api-rejected", "topic": "timeback.activity",
     "partition": 3, "offset": 1042, "event_id": "0f8e…"}

The record context lives in a context variable: a worker coroutine processes one record after
another, starting each with ``start_record(...)`` (its topic, partition and offset, and its
event id and type once decoded; nothing of the previous record stays), so every line logged on
the record's behalf is tagged, including the lines of the API client and the dead-letter writer.
Payloads are never logged; as a last line of defence, bearer tokens and basic credentials are
masked in every message.

The Kafka clients log once per reconnect attempt per connection: a 2 s broker restart made over
a thousand ERROR lines. ``RepeatSummary`` sums them up: the first line of a kind (logger, level,
message with its numbers masked) is written as it came; its repeats within ``REPEAT_WINDOW``
seconds are counted, and when the window closes one line at the same level says how many there
were (``repeated``) and when the first was (``first``). The count goes on window after window
while the lines keep coming; a window without one ends the run.
"""

from __future__ import annotations

import atexit
import contextvars
import faulthandler
import logging
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
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

# librdkafka's lines (``{"logger": KAFKA_CLIENT_LOG}`` in a confluent-kafka configuration)
KAFKA_CLIENT_LOG: Final = logging.getLogger("relay.kafka.client")
# The loggers of the Kafka clients, whose repeated lines are summed up
REPEATING: Final = ("aiokafka", KAFKA_CLIENT_LOG.name)
REPEAT_WINDOW: Final = 30.0  # seconds: at most one line per kind of client line per window
# What varies between two lines of one kind: numbers, hex addresses, ids
_VARYING: Final = re.compile(
    r"0x[0-9a-fA-F]+|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}|\d+"
)


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


def start_record(**context: Any) -> None:
    """Tag every log line of the current task with ``context`` alone: a new record's."""
    _RECORD.set(context)


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
        for name in ("repeated", "first", "window_s"):  # a RepeatSummary line
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        try:
            return orjson.dumps(entry, default=str).decode()
        except orjson.JSONEncodeError:  # text with lone surrogates: written escaped
            return orjson.dumps(_escaped(entry), default=str).decode()


def _escaped(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v.encode(errors="backslashreplace").decode() if isinstance(v, str) else v
        for k, v in entry.items()
    }


def _iso(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


@dataclass
class _Run:
    """Lines of one kind coming in a row: the first one's time, the repeats of this window."""

    first: float
    repeated: int = 0
    sample: logging.LogRecord | None = None  # the latest repeat: what its summary says


class RepeatSummary(logging.Filter):
    """A handler's filter that sums up repeated lines of the ``loggers`` (and their children):
    the first line of a kind passes; its repeats within ``window`` seconds do not, and when the
    window closes one line at their level says how many there were. ``close`` writes what is
    still counted (at exit)."""

    def __init__(
        self,
        handler: logging.Handler,
        loggers: tuple[str, ...] = REPEATING,
        window: float = REPEAT_WINDOW,
        schedule: Callable[[float, Callable[[], None]], object] | None = None,
    ) -> None:
        super().__init__()
        self.handler, self.loggers, self.window = handler, loggers, window
        self._schedule = schedule or _timer
        self._runs: dict[tuple[str, int, str], _Run] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if hasattr(record, "repeated") or not self._summed(record.name):
            return True
        kind = (record.name, record.levelno, _VARYING.sub("#", record.getMessage()))
        with self._lock:
            run = self._runs.get(kind)
            if run is None:
                self._runs[kind] = _Run(first=record.created)
                self._schedule(self.window, lambda: self._close_window(kind))
                return True
            run.repeated += 1
            run.sample = record
            return False

    def _summed(self, name: str) -> bool:
        return any(name == n or name.startswith(n + ".") for n in self.loggers)

    def _close_window(self, kind: tuple[str, int, str]) -> None:
        """The window of ``kind`` closed: its summary, and another window if it repeated."""
        with self._lock:
            run = self._runs.get(kind)
            if run is None:
                return
            summary = self._summary(run)
            if summary is None:
                del self._runs[kind]  # a quiet window: the next line of this kind passes
            else:
                run.repeated, run.sample = 0, None
                self._schedule(self.window, lambda: self._close_window(kind))
        if summary is not None:
            self.handler.handle(summary)

    def _summary(self, run: _Run) -> logging.LogRecord | None:
        sample = run.sample
        if sample is None or not run.repeated:
            return None
        summary = logging.makeLogRecord(sample.__dict__)
        first = _iso(run.first)
        summary.msg = "%s (repeated %d more times, the first at %s)"
        summary.args = (sample.getMessage(), run.repeated, first)
        summary.exc_info = summary.exc_text = None
        summary.created = time.time()  # written now, the window's last repeat before
        summary.repeated, summary.first, summary.window_s = run.repeated, first, self.window
        return summary

    def close(self) -> None:
        """Write the summaries of the windows still open."""
        with self._lock:
            summaries = [s for s in map(self._summary, self._runs.values()) if s is not None]
            self._runs.clear()
        for summary in summaries:
            self.handler.handle(summary)


def _timer(delay: float, action: Callable[[], None]) -> object:
    timer = threading.Timer(delay, action)
    timer.daemon = True
    timer.name = "log-summary"
    timer.start()
    return timer


_SUMMARIES: list[RepeatSummary] = []


def trace_crashes() -> None:
    """On a crash in native code (a Kafka client's C library, a C extension), write every
    thread's Python stack to stderr before the process dies: without it a SIGSEGV leaves a pod's
    log nothing but an exit code. The stacks name files, lines and functions, never values."""
    if not faulthandler.is_enabled():  # PYTHONFAULTHANDLER=1 or -X faulthandler did it already
        faulthandler.enable(all_threads=True)


def configure(level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Send every logger (ours, faust's, aiokafka's, librdkafka's through ``KAFKA_CLIENT_LOG``)
    to ``stream`` as JSON lines at ``level``, the Kafka clients' repeats summed up.

    aiokafka, librdkafka and httpx are chatty at INFO (fetch positions, reconnects, one line per
    request): they log at WARNING unless the relay itself is at DEBUG. faust and mode follow
    ``level``.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    summary = RepeatSummary(handler)
    handler.addFilter(summary)
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    while _SUMMARIES:  # an earlier configure's counts, written before its handler goes
        _SUMMARIES.pop().close()
    _SUMMARIES.append(summary)
    root.addHandler(handler)
    root.setLevel(level)
    chatty = "DEBUG" if level == "DEBUG" else "WARNING"
    for name in ("aiokafka", KAFKA_CLIENT_LOG.name, "aiohttp.access", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(chatty)


@atexit.register
def _write_summaries() -> None:
    """At exit, before logging shuts down (atexit runs the later registration first)."""
    for summary in _SUMMARIES:
        summary.close()
