"""``relay map``: NDJSON activity records in, Caliper events out, offline.

Each input line is a plain-JSON record, ``{"type": "XpEarned", ...fields}`` (short or full record
name; timestamps as ISO-8601 strings or epoch milliseconds), checked exactly as a decoded Avro
record is (``relay.contract.json_input``), then enriched, mapped and checked like in the relay.
Every event is printed as one NDJSON line, in input order. A record that fails prints
``line N: <stage>/<reason>: <detail>`` on stderr and the exit status is 1.

Course and subject come from the record and the course map (``--course-map`` or RELAY_COURSE_MAP).
The rostering API is only asked with ``--lookup`` (credentials from RELAY_*); without it nothing
touches the network, and RELAY_PREFLIGHT is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import IO

import click
import orjson

from relay import wiring
from relay.config import Settings, load_settings
from relay.contract.activity import Activity
from relay.contract.build import Checks
from relay.contract.catalogue import Catalogue
from relay.contract.json_input import activity_from_json
from relay.courses import CourseLookup, CourseMap
from relay.errors import ConfigError, Rejection, RelayError
from relay.mapping import CaliperEvent, Mapper
from relay.pipeline.stages import rejection_of
from relay.timeback.errors import RequestRejected


@click.command("map")
@click.argument("file", type=click.File("rb"), default="-")
@click.option(
    "--course-map",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="course map YAML (default: RELAY_COURSE_MAP)",
)
@click.option("--lookup", is_flag=True, help="ask the rostering API for course subjects")
def map_command(file: IO[bytes], course_map: Path | None, lookup: bool) -> None:
    """Map NDJSON activity records (FILE, or - for stdin) to Caliper events on stdout."""
    try:
        settings = load_settings()
        failed = asyncio.run(_run(settings, file, course_map, lookup))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if failed:
        sys.exit(1)


async def _run(
    settings: Settings, lines: Iterable[bytes], course_map: Path | None, lookup: bool
) -> int:
    """Map every line; returns how many records failed."""
    catalogue = Catalogue.load()
    checks = Checks.from_settings(settings)
    file_map = CourseMap.load(course_map) if course_map else None
    out = click.get_binary_stream("stdout")
    failed = 0
    async with _lookup(settings, lookup) as client:
        resolver = wiring.course_resolver(
            settings if client else settings.model_copy(update={"preflight": "off"}),
            client,
            course_map=file_map,
        )
        mapper = wiring.mapper(settings, resolver)
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                activity = activity_from_json(_parse(line), catalogue, checks)
                events = await _mapped(mapper, activity)
            except Rejection as exc:
                failed += 1
                _report(number, f"{exc.stage}/{exc.reason}: {exc.detail}")
                continue
            except RelayError as exc:  # transient or systemic trouble reaching the API
                failed += 1
                _report(number, f"enrich/lookup-failed: {exc}")
                continue
            out.write(b"".join(event.payload + b"\n" for event in events))
        out.flush()
    return failed


async def _mapped(mapper: Mapper, activity: Activity) -> list[CaliperEvent]:
    """The events, or the Rejection the pipeline would dead-letter the record with."""
    try:
        return await mapper.map(activity)
    except RequestRejected as refused:  # a rostering 4xx: the pipeline names its stage
        raise rejection_of(refused) from None


def _parse(line: bytes) -> object:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise Rejection("decode", "invalid-json", str(exc)) from None


def _report(number: int, message: str) -> None:
    click.echo(f"line {number}: {message}", err=True)


@contextlib.asynccontextmanager
async def _lookup(settings: Settings, wanted: bool) -> AsyncIterator[CourseLookup | None]:
    if not wanted:
        yield None
        return
    from relay.timeback.client import TimeBackClient  # network only on request

    async with TimeBackClient(wiring.client_config(settings)) as client:
        yield client
