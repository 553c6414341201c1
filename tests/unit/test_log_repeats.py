"""``RepeatSummary`` (relay/logs.py, issue 23 item 8): repeated lines of the Kafka clients become
their first line plus one summary per kind and window. The windows are closed by the test (the
filter's ``schedule`` is handed the closing actions instead of a timer), so nothing here waits.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from relay.logs import KAFKA_CLIENT_LOG, JsonFormatter, RepeatSummary

Closing = list[Callable[[], None]]
Lines = tuple[io.StringIO, RepeatSummary, Closing]


@pytest.fixture
def lines() -> Iterator[Lines]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    closing: Closing = []
    summary = RepeatSummary(handler, window=30, schedule=lambda _s, action: closing.append(action))
    handler.addFilter(summary)
    loggers = [logging.getLogger(n) for n in ("aiokafka.conn", KAFKA_CLIENT_LOG.name, "relay.x")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = False
    yield stream, summary, closing
    for logger in loggers:
        logger.removeHandler(handler)
        logger.propagate = True


def written(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def close_windows(closing: Closing) -> None:
    due = list(closing)
    closing.clear()
    for action in due:
        action()


def test_repeats_are_one_line_then_one_summary_with_count_and_first(lines: Lines) -> None:
    stream, _, closing = lines
    log = logging.getLogger("aiokafka.conn")
    for attempt in range(100):  # node ids, ports, errnos vary: still one kind
        log.error("Unable connect to node with id %s: [Errno 111] port %d", 1, 40000 + attempt)
    assert len(written(stream)) == 1
    close_windows(closing)
    first, summary = written(stream)
    assert first["level"] == summary["level"] == "ERROR"
    assert summary["logger"] == "aiokafka.conn"
    assert summary["repeated"] == 99 and summary["first"] == first["time"]
    assert "Unable connect to node" in summary["message"] and "99 more times" in summary["message"]


def test_a_storm_is_summed_window_after_window_until_a_window_is_quiet(lines: Lines) -> None:
    stream, _, closing = lines
    log = logging.getLogger("aiokafka.conn")
    for window in range(3):
        for _ in range(5 if window < 2 else 0):
            log.error("Failed fetch messages from 1: NodeNotReadyError")
        close_windows(closing)
    counts = [x.get("repeated") for x in written(stream)]
    assert counts == [None, 4, 5]  # the first, then each window's repeats; the third was quiet
    log.error("Failed fetch messages from 1: NodeNotReadyError")  # a new run: shown again
    assert [x.get("repeated") for x in written(stream)][-1] is None


def test_kinds_levels_and_loggers_are_apart_and_the_relays_own_lines_never_summed(
    lines: Lines,
) -> None:
    stream, _, _ = lines
    for _ in range(3):
        logging.getLogger("aiokafka.conn").error("Unable to update metadata from [1]")
        logging.getLogger("aiokafka.conn").warning("Unable to update metadata from [1]")
        logging.getLogger("aiokafka.conn").error("Heartbeat session expired")
        KAFKA_CLIENT_LOG.error("%s [%s] %s", "FAIL", "rdkafka#producer-1", "Connect failed")
        logging.getLogger("relay.x").error("dead-lettering record %d", 7)
    messages = [(x["logger"], x["level"], x["message"]) for x in written(stream)]
    assert len(messages) == 4 + 3, messages  # four client kinds once, the relay's line thrice


def test_close_writes_the_counts_still_open(lines: Lines) -> None:
    stream, summary, _ = lines
    for _ in range(4):
        KAFKA_CLIENT_LOG.error("%s [%s] %s", "FAIL", "rdkafka#producer-1", "Connection refused")
    summary.close()
    assert [x.get("repeated") for x in written(stream)] == [None, 3]


def test_text_with_lone_surrogates_is_written_escaped() -> None:
    record = logging.LogRecord("relay.x", logging.WARNING, __file__, 1, "detail \udcff", (), None)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "detail \\udcff"
