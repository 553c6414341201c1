"""``relay map``: NDJSON in, one event per line out in input order, failures on stderr."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from relay.caliper.validate import TimeBackRules, check
from relay.cli import main
from relay.config import DEFAULT_SUBJECTS

BASE = "https://api.alpha-1edtech.ai"
# None removes a variable a developer's shell may have set
ENV: dict[str, str | None] = {
    "RELAY_APP_ID": "sandbox-app",
    "RELAY_ACTIVITY_BASE_URL": "https://app.example.com/activities",
    "RELAY_COURSE_MAP": None,
    "RELAY_PREFLIGHT": "off",
    "RELAY_IRI_BASE": None,
    "RELAY_SUBJECTS": None,
}


def record(kind: str, n: int, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "event_id": f"0f8e7c2a-1234-4567-89ab-{n:012d}",
        "occurred_at": "2026-01-15T14:30:00.250+01:00",
        "student_id": "stu-1",
        **fields,
    }


LESSON = {"id": "math5/lesson-1", "name": "Lesson 1"}
GOOD = [
    record("XpEarned", 1, activity=LESSON, xp=12, course_id="math-g5", subject="Math"),
    record(
        "timeback.activity.QuestionAnswered", 2, item=LESSON, correct=True,
        course_id="math-g5", subject="Math", occurred_at=1768487400000,
    ),
    record("SessionChanged", 3, session_id="s-1", action="LOGGED_OUT"),
]  # fmt: skip


def ndjson(records: list[Any]) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def run(args: list[str], stdin: str | None = None, **env: str | None) -> Result:
    return CliRunner().invoke(main, ["map", *args], input=stdin, env={**ENV, **env})


def events(result: Result) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def test_maps_every_record_in_input_order(tmp_path: Path) -> None:
    source = tmp_path / "in.ndjson"
    source.write_text(ndjson(GOOD))
    result = run([str(source)])
    assert result.exit_code == 0, result.stderr
    out = events(result)
    assert [e["type"] for e in out] == [
        "GradeEvent", "AssessmentItemEvent", "GradeEvent", "SessionEvent",
    ]  # fmt: skip
    assert out[0]["eventTime"] == "2026-01-15T13:30:00.250Z"
    rules = TimeBackRules(BASE, DEFAULT_SUBJECTS)
    assert all(check(e, rules) == [] for e in out)
    assert result.stderr == ""


def test_reads_stdin_and_is_deterministic() -> None:
    first, again = run(["-"], ndjson(GOOD)), run([], ndjson(GOOD))
    assert first.exit_code == again.exit_code == 0
    assert first.stdout == again.stdout


def test_failures_name_the_line_stage_and_reason_and_the_rest_still_maps() -> None:
    lines = [
        GOOD[0],
        record("XpEarned", 4, activity=LESSON, xp=1),  # no course anywhere
        "",  # blank lines are skipped but counted
        "{not json",
        record("XpEarned", 5, activity=LESSON, xp="lots", course_id="c", subject="Math"),
        record("Unknown", 6),
        GOOD[2],
    ]
    result = run([], ndjson(lines))
    assert result.exit_code == 1
    assert [e["type"] for e in events(result)] == ["GradeEvent", "SessionEvent"]
    errors = result.stderr.splitlines()
    assert errors[0].startswith("line 2: enrich/course-unresolved: ")
    assert errors[1].startswith("line 4: decode/invalid-json: ")
    assert errors[2].startswith("line 5: validate/invalid-field: xp")
    assert errors[3].startswith("line 6: decode/unsupported-record: ")
    assert len(errors) == 4


def test_course_map_option(tmp_path: Path) -> None:
    course_map = tmp_path / "courses.yaml"
    course_map.write_text("courses:\n  - {id: math-g5, subject: Math, activities: ['math5/*']}\n")
    result = run(
        ["--course-map", str(course_map)], ndjson([record("XpEarned", 7, activity=LESSON, xp=2)])
    )
    assert result.exit_code == 0, result.stderr
    assert events(result)[0]["extensions"]["course"]["id"].endswith("/courses/math-g5")


def test_local_ids_without_a_base_fail_per_record() -> None:
    result = run([], ndjson(GOOD[:1]), RELAY_ACTIVITY_BASE_URL="")
    assert result.exit_code == 1
    assert "map/activity-iri-unresolved" in result.stderr
    assert "RELAY_ACTIVITY_BASE_URL" in result.stderr


def test_missing_app_id_is_a_configuration_error() -> None:
    result = run([], ndjson(GOOD), RELAY_APP_ID="")
    assert result.exit_code != 0
    assert "RELAY_APP_ID" in result.stderr


def test_no_network_without_lookup_even_with_preflight_configured() -> None:
    result = run([], ndjson(GOOD), RELAY_PREFLIGHT="course+student")
    assert result.exit_code == 0, result.stderr


# --- --lookup against a real HTTP server ------------------------------------------------------


class _Api(BaseHTTPRequestHandler):
    """Token endpoint and course lookups, as the Partner API answers them."""

    courses = {"math-g5": {"course": {"sourcedId": "math-g5", "subjects": ["Mathematics"]}}}
    asked: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._reply(200, {"access_token": "t0k3n", "token_type": "Bearer", "expires_in": 3600})

    def do_GET(self) -> None:
        self.asked.append(self.path)
        course = self.courses.get(self.path.rsplit("/", 1)[-1])
        if self.headers.get("Authorization") != "Bearer t0k3n" or course is None:
            self._reply(404 if course is None else 401, {"error": "no"})
        else:
            self._reply(200, course)

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Api.asked = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_lookup_asks_rostering_for_the_subject(api: str) -> None:
    lines = [
        record("XpEarned", 8, activity=LESSON, xp=2, course_id="math-g5"),
        record("XpEarned", 9, activity=LESSON, xp=2, course_id="math-g5"),
        record("XpEarned", 10, activity=LESSON, xp=2, course_id="gone"),
    ]
    env = {
        "RELAY_API_BASE_URL": api, "RELAY_ALLOW_INSECURE_HTTP": "true",
        "RELAY_CLIENT_ID": "c", "RELAY_CLIENT_SECRET": "s",
    }  # fmt: skip
    without = run([], ndjson(lines[:1]), **env)
    assert "enrich/subject-unresolved" in without.stderr and _Api.asked == []
    result = run(["--lookup"], ndjson(lines), **env)
    assert [e["extensions"]["subject"] for e in events(result)] == ["Math", "Math"]
    assert result.stderr.startswith("line 3: enrich/course-not-owned: ")
    assert _Api.asked == ["/rostering/1.0/courses/math-g5", "/rostering/1.0/courses/gone"]
