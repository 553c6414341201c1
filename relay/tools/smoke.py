"""``relay smoke``: the vendor guide's integration flow, steps 1-7, against any Partner API.

1 token; 2 a test student (``metadata.isTestUser: true``, org ``partner-sandbox``); 3 a course the
client owns (created, or ``--course-id`` checked for visibility); 4 a class of it; 5 the student's
enrollment; 6 one XP GradeEvent (the relay's own builder); 7 poll the student's XP entries until
the entry with this event's id appears. Each step prints its result and time; the first failure
stops the run and the exit status is 1. The calls go through ``relay.timeback.TimeBackClient``,
so the smoke test exercises the relay's own client; it works unchanged against production.

Against a sandbox (any base URL but production's), step 7 also reads the sandbox's inspection
API, so an event dropped in processing fails at once with the sandbox's reason.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import click
import httpx
import orjson
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from relay.config import PRODUCTION_BASE_URL
from relay.errors import Rejection, RelayError
from relay.sandbox import seed
from relay.timeback import ApiSystemicError, ClientConfig, RequestRejected, TimeBackClient

DROPPED_FATES = frozenset({"rejected", "superseded", "ignored", "duplicate", "duplicate_mismatch"})
SILENT_DROP_HINT = (
    "the API drops a 202-accepted event silently when its course is not owned by the caller's "
    "app, its student does not exist, or its subject/course are missing"
)


class StepFailed(Exception):
    pass


@dataclass
class StepResult:
    number: int
    name: str
    ok: bool | None  # None: skipped
    seconds: float = 0.0
    detail: str = ""


@dataclass
class SmokeOptions:
    base_url: str
    client_id: str
    client_secret: str = field(repr=False)
    app_id: str
    course_id: str | None = None
    timeout: float = 180.0
    poll_interval: float = 2.0
    iri_base: str = PRODUCTION_BASE_URL
    auth_method: str = "basic"


class Smoke:
    """The seven steps over one TimeBackClient; ``run`` returns every step's result."""

    def __init__(self, options: SmokeOptions, client: TimeBackClient, console: Console) -> None:
        self.o = options
        self.client = client
        self.console = console
        suffix = uuid.uuid4().hex[:12]
        self.student_id = str(uuid.uuid4())
        self.course_id = options.course_id or f"smoke-course-{suffix}"
        self.class_id = f"smoke-class-{suffix}"
        self.enrollment_id = f"smoke-enrollment-{suffix}"
        self.event: dict[str, Any] = {}

    async def run(self) -> list[StepResult]:
        steps: list[tuple[str, Callable[[], Awaitable[str]]]] = [
            ("token", self.token),
            ("test student", self.student),
            ("course", self.course),
            ("class", self.klass),
            ("enrollment", self.enrollment),
            ("XP GradeEvent", self.send_event),
            ("XP entry visible", self.poll_xp),
        ]
        results: list[StepResult] = []
        failed = False
        for number, (name, step) in enumerate(steps, 1):
            if failed:
                results.append(StepResult(number, name, None, detail="skipped"))
                continue
            started = time.perf_counter()
            try:
                detail, ok = await step(), True
            except (StepFailed, RelayError, httpx.HTTPError) as exc:
                detail, ok, failed = _describe(exc), False, True
            result = StepResult(number, name, ok, time.perf_counter() - started, detail)
            self._print(result)
            results.append(result)
        return results

    def _print(self, r: StepResult) -> None:
        mark = "[green]PASS[/]" if r.ok else "[red]FAIL[/]"
        self.console.print(
            f"[{r.number}/7] {r.name:<17} {mark} {r.seconds:7.2f} s  {r.detail}", highlight=False
        )

    # --- the steps ----------------------------------------------------------------------------

    async def token(self) -> str:
        await self.client.auth.token()
        return f"access token for {self.o.client_id} ({self.o.auth_method} credentials)"

    async def student(self) -> str:
        status = await self.client.put("users", self.student_id, seed.student(self.student_id))
        return f"PUT user {self.student_id}: HTTP {status} (isTestUser, org {seed.DEFAULT_ORG})"

    async def course(self) -> str:
        created = ""
        if self.o.course_id is None:
            status = await self.client.put("courses", self.course_id, seed.course(self.course_id))
            created = f"PUT HTTP {status}; "
        record = await self.client.get_course(self.course_id)
        if record is None:
            raise StepFailed(
                f"course {self.course_id!r} is not visible to {self.o.client_id}: it does not "
                "exist or is not owned by this client's app. Events for it would be accepted "
                "(202) and then dropped in processing (course_not_owned / course_unknown)"
            )
        return f"{created}course {self.course_id} is owned ({record.get('title', '?')!r})"

    async def klass(self) -> str:
        body = seed.klass(self.class_id, self.course_id)
        try:
            status = await self.client.put("classes", self.class_id, body)
        except ApiSystemicError as exc:
            if exc.status == 403:
                raise StepFailed(
                    f"HTTP 403: a class cannot be created under course {self.course_id!r}: "
                    "the course is not owned by this client's app (or roster.createput is missing)"
                ) from None
            raise
        return f"PUT class {self.class_id} of course {self.course_id}: HTTP {status}"

    async def enrollment(self) -> str:
        body = seed.enrollment(self.enrollment_id, self.student_id, self.class_id)
        status = await self.client.put("enrollments", self.enrollment_id, body)
        return f"PUT enrollment {self.enrollment_id}: HTTP {status}"

    async def send_event(self) -> str:
        self.event = seed.xp_event(
            app_id=self.o.app_id,
            student_id=self.student_id,
            course_id=self.course_id,
            iri_base=self.o.iri_base,
        )
        result = await self.client.send_event(orjson.dumps(self.event), event_type="GradeEvent")
        return f"POST /events/1.0: HTTP {result.status}, id {self.event['id']}"

    async def poll_xp(self) -> str:
        inspect = await self._sandbox_inspection()
        try:
            return await self._poll(self.event["id"], inspect)
        finally:
            if inspect is not None:
                await inspect.aclose()

    async def _poll(self, event_id: str, inspect: httpx.AsyncClient | None) -> str:
        started = time.monotonic()
        deadline = started + self.o.timeout
        last_error = ""
        while True:
            try:
                entry = await self._find_entry(event_id)
            except (RelayError, httpx.HTTPError) as exc:  # keep polling through hiccups
                entry, last_error = None, _describe(exc)
            if entry is not None:
                waited = time.monotonic() - started
                return f"entry {entry.get('id')} value {entry.get('value')} after {waited:.1f} s"
            if inspect is not None:
                await self._fail_if_dropped(inspect, event_id)
            if time.monotonic() >= deadline:
                why = f"; last error: {last_error}" if last_error else ""
                raise StepFailed(
                    f"no XP entry with sourceEventId {event_id} after {self.o.timeout:g} s"
                    f" ({SILENT_DROP_HINT}){why}"
                )
            await asyncio.sleep(self.o.poll_interval)

    async def _find_entry(self, event_id: str) -> dict[str, Any] | None:
        offset = 0
        while True:
            page = await self.client.xp_entries(self.student_id, limit=100, offset=offset)
            entries = page.get("entries") or []
            for entry in entries:
                if entry.get("sourceEventId") == event_id:
                    return dict(entry)
            offset += len(entries)
            if not entries or offset >= int(page.get("total") or 0):
                return None

    async def _sandbox_inspection(self) -> httpx.AsyncClient | None:
        """An inspection client when the base URL is a sandbox (never asked of production)."""
        base = self.o.base_url.rstrip("/")
        if base == PRODUCTION_BASE_URL:
            return None
        http = httpx.AsyncClient(base_url=f"{base}/sandbox/1.0", timeout=5.0)
        try:
            response = await http.get("/stats")
            if response.status_code == 200 and "received" in response.json():
                return http
        except (httpx.HTTPError, ValueError):
            pass
        await http.aclose()
        return None

    async def _fail_if_dropped(self, inspect: httpx.AsyncClient, event_id: str) -> None:
        try:
            response = await inspect.get(f"/events/{event_id}")
            record = response.json() if response.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            return
        if record.get("fate") in DROPPED_FATES:
            reason = record.get("reason") or record["fate"]
            raise StepFailed(
                f"the sandbox accepted the event (202) and then dropped it in processing: "
                f"{record['fate']} ({reason}); no XP entry will appear"
            )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RequestRejected | Rejection) and getattr(exc, "body", None):
        return f"{exc} — {str(exc.body)[:300]}"
    return str(exc) or type(exc).__name__


def _summary(console: Console, results: list[StepResult]) -> None:
    table = Table(title="relay smoke")
    for column in ("step", "result", "seconds"):
        table.add_column(column)
    for r in results:
        verdict = "skipped" if r.ok is None else ("PASS" if r.ok else "FAIL")
        table.add_row(f"{r.number} {r.name}", verdict, f"{r.seconds:.2f}")
    console.print(table)


async def run_smoke(options: SmokeOptions, console: Console) -> list[StepResult]:
    config = ClientConfig(
        base_url=options.base_url.rstrip("/"),
        client_id=options.client_id,
        client_secret=SecretStr(options.client_secret),
        auth_method="body" if options.auth_method == "body" else "basic",
        timeout=15.0,
        max_in_flight=2,
    )
    async with TimeBackClient(config) as client:
        return await Smoke(options, client, console).run()


@click.command("smoke")
@click.option(
    "--base-url",
    required=True,
    envvar="RELAY_API_BASE_URL",
    help="API base URL (production or a sandbox)",
)
@click.option("--client-id", required=True, envvar="RELAY_CLIENT_ID")
@click.option(
    "--client-secret",
    required=True,
    envvar="RELAY_CLIENT_SECRET",
    help="client secret, never printed (better from RELAY_CLIENT_SECRET than the command line)",
)
@click.option(
    "--app-id", required=True, envvar="RELAY_APP_ID", help="the app's sourcedId (or edApp IRI)"
)
@click.option("--course-id", help="use this existing course instead of creating one")
@click.option("--timeout", default=180.0, show_default=True, help="seconds to wait for the XP")
@click.option("--poll-interval", default=2.0, show_default=True, help="seconds between polls")
@click.option("--iri-base", default=PRODUCTION_BASE_URL, show_default=True, help="IRI base")
@click.option("--auth-method", type=click.Choice(["basic", "body"]), default="basic")
def smoke_command(
    base_url: str,
    client_id: str,
    client_secret: str,
    app_id: str,
    course_id: str | None,
    timeout: float,
    poll_interval: float,
    iri_base: str,
    auth_method: str,
) -> None:
    """Run the vendor guide's integration flow (steps 1-7); exit 0 only if every step passes."""
    console = Console(highlight=False, soft_wrap=True)
    options = SmokeOptions(
        base_url=base_url,
        client_id=client_id,
        client_secret=client_secret,
        app_id=app_id,
        course_id=course_id,
        timeout=timeout,
        poll_interval=poll_interval,
        iri_base=iri_base.rstrip("/"),
        auth_method=auth_method,
    )
    console.print(f"relay smoke against {options.base_url} as {client_id} (app {app_id})")
    results = asyncio.run(run_smoke(options, console))
    _summary(console, results)
    passed = all(r.ok for r in results)
    console.print("[green]smoke passed[/]" if passed else "[red]smoke FAILED[/]")
    sys.exit(0 if passed else 1)
