"""Benchmark: decode + validate records/s in-process, per record type (single-object framing).

    .venv/bin/python -m bench.contract_bench [-n 50000] [--profile]

Measures ``Decoder.decode_sync`` (framing, fastavro read, semantic checks, typed Activity) over a
pool of distinct pre-encoded values, one core, no I/O. Target: >= 100,000 records/s.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from relay.contract import encode
from relay.contract.build import Checks
from relay.contract.catalogue import default_catalogue
from relay.contract.decode import Decoder

TARGET = 100_000  # records/s
POOL = 1_000  # distinct values per record type, cycled through


def _ref(kind: str, i: int) -> dict[str, str]:
    return {"id": f"https://app.example/{kind}/{i % 97}", "name": f"{kind.title()} {i % 97}"}


def _records(now: datetime) -> dict[str, Callable[[int], dict[str, Any]]]:
    """A typical record of each type (every optional field set), varied by ``i``."""
    course = {"course_id": "course-math-5", "subject": "Math"}
    earlier, later = now - timedelta(minutes=20), now - timedelta(minutes=1)

    def header(i: int) -> dict[str, Any]:
        occurred = now - timedelta(seconds=i % 600)
        return dict(event_id=str(uuid.uuid4()), occurred_at=occurred, student_id=f"s-{i % 5000}")

    return {
        "XpEarned": lambda i: dict(
            header(i), activity=_ref("lesson", i), xp=float(i % 30), attempt=1 + i % 3, **course
        ),
        "AssessmentProgress": lambda i: dict(
            header(i), assessment=_ref("quiz", i), action="SUBMITTED", attempt=1,
            started_at=earlier, ended_at=later, total_questions=10, correct_questions=i % 11,
            **course,
        ),
        "QuestionAnswered": lambda i: dict(
            header(i), item=_ref("item", i), assessment=_ref("quiz", i), response="B",
            correct=i % 2 == 0, started_at=earlier, ended_at=later, attempt=1, **course,
        ),
        "ResourceViewed": lambda i: dict(header(i), resource=_ref("video", i), **course),
        "SessionChanged": lambda i: dict(header(i), session_id=f"sess-{i}", action="LOGGED_IN"),
    }  # fmt: skip


def _measure(decode: Callable[[bytes], object], values: list[bytes], n: int) -> float:
    """Seconds to decode ``n`` values cycling through ``values``."""
    batch = (values * (n // len(values) + 1))[:n]
    start = time.perf_counter()
    for value in batch:
        decode(value)
    return time.perf_counter() - start


def run(n: int = 50_000) -> dict[str, dict[str, float]]:
    """Decode+validate ``n`` records of each type, then ``n`` mixed; records/s per row."""
    now = datetime.now(UTC)
    decoder = Decoder(default_catalogue(), Checks())
    pools = {
        short: [encode(short, make(i)) for i in range(POOL)]
        for short, make in _records(now).items()
    }
    mixed = [value for values in zip(*pools.values(), strict=True) for value in values]
    results: dict[str, dict[str, float]] = {}
    for name, values in [*pools.items(), ("mixed", mixed)]:
        _measure(decoder.decode_sync, values, min(n, 2_000))  # warm-up
        seconds = _measure(decoder.decode_sync, values, n)
        results[name] = {
            "records": n,
            "seconds": seconds,
            "records_per_s": n / seconds,
            "us_per_record": seconds / n * 1e6,
            "bytes": sum(map(len, values)) / len(values),
        }
    return results


def print_table(results: dict[str, dict[str, float]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"contract: decode + validate, single-object (target {TARGET:,}/s)")
    for column in ("record type", "records/s", "µs/record", "bytes/record", "target"):
        table.add_column(column, justify="left" if column == "record type" else "right")
    for name, row in results.items():
        rate = row["records_per_s"]
        verdict = "ok" if rate >= TARGET else "below"
        table.add_row(
            name, f"{rate:,.0f}", f"{row['us_per_record']:.2f}", f"{row['bytes']:.0f}", verdict
        )
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50_000, help="records per row (default 50000)")
    parser.add_argument("--profile", action="store_true", help="profile with pyinstrument")
    args = parser.parse_args(argv)
    if args.profile:
        from pyinstrument import Profiler

        with Profiler() as profiler:
            results = run(args.n)
        profiler.print()
    else:
        results = run(args.n)
    print_table(results)
    return 0 if results["mixed"]["records_per_s"] >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
