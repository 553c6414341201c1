"""``relay smoke`` and ``relay sandbox`` as subprocesses, and ``serve`` in the test's own loop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from relay.sandbox.config import Delay, SandboxConfig
from relay.sandbox.server import serve
from tests.integration.conftest import SandboxHandle

pytestmark = pytest.mark.integration

RELAY = str(Path(sys.executable).with_name("relay"))


def smoke(sandbox: SandboxHandle, *args: str, client: str = "sandbox-client") -> tuple[int, str]:
    secret = sandbox.secrets[client]
    command = [
        RELAY,
        "smoke",
        "--base-url",
        sandbox.url,
        "--client-id",
        client,
        "--client-secret",
        secret,
        "--poll-interval",
        "0.1",
        "--timeout",
        "20",
        *args,
    ]
    if "--app-id" not in args:
        command += ["--app-id", "sandbox-app" if client == "sandbox-client" else "other-app"]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"}
    )
    return done.returncode, done.stdout + done.stderr


def test_smoke_passes_against_the_sandbox(sandbox: SandboxHandle) -> None:
    code, out = smoke(sandbox)
    assert code == 0, out
    for n, name in enumerate(["token", "test student", "course", "class", "enrollment"], 1):
        assert f"[{n}/7] {name}" in out
    assert "[7/7] XP entry visible  PASS" in out
    assert "smoke passed" in out
    [graded] = sandbox.events(type="GradeEvent")
    assert graded["fate"] == "processed" and graded["enrollment_id"]
    detail = sandbox.event(graded["id"])
    assert detail["xp_entry"]["sourceEventId"] == graded["id"]
    assert "sandbox-secret" not in out


def test_smoke_with_body_credentials(sandbox: SandboxHandle) -> None:
    code, out = smoke(sandbox, "--auth-method", "body")
    assert code == 0, out


def test_smoke_reads_credentials_from_the_environment(sandbox: SandboxHandle) -> None:
    env = {
        **os.environ,
        "RELAY_API_BASE_URL": sandbox.url,
        "RELAY_CLIENT_ID": "other-client",
        "RELAY_CLIENT_SECRET": "other-secret",
        "RELAY_APP_ID": "other-app",
    }
    done = subprocess.run(
        [RELAY, "smoke", "--poll-interval", "0.1", "--timeout", "20"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "as other-client (app other-app)" in done.stdout
    assert "other-secret" not in done.stdout + done.stderr
    [graded] = sandbox.events(type="GradeEvent")
    assert graded["client_id"] == "other-client" and graded["fate"] == "processed"


def test_smoke_fails_clearly_when_the_course_is_not_owned(sandbox: SandboxHandle) -> None:
    sandbox.setup_roster("their-student", "their-course", "other-client")
    code, out = smoke(sandbox, "--course-id", "their-course")
    assert code == 1
    assert "[3/7] course            FAIL" in out
    assert "not owned by this client's app" in out
    assert "course_not_owned" in out
    assert "smoke FAILED" in out
    assert sandbox.events() == []  # stopped before sending anything


def test_smoke_explains_an_event_dropped_in_processing(sandbox: SandboxHandle) -> None:
    code, out = smoke(sandbox, "--app-id", "other-app")  # edApp is not the caller's app
    assert code == 1
    assert "[6/7] XP GradeEvent     PASS" in out
    assert "[7/7] XP entry visible  FAIL" in out
    assert "dropped it in processing: rejected (edapp_mismatch)" in out


def test_smoke_fails_at_the_token_step(sandbox: SandboxHandle) -> None:
    sandbox.faults(token_endpoint_down="503")
    code, out = smoke(sandbox)
    assert code == 1
    assert "[1/7] token             FAIL" in out and "503" in out
    assert "skipped" in out


async def test_serve_runs_in_the_current_loop() -> None:
    async with serve(SandboxConfig(processing_delay=Delay(0))) as url, httpx.AsyncClient() as http:
        token = await http.post(
            f"{url}/auth/1.0/token",
            data={"grant_type": "client_credentials"},
            auth=("other-client", "other-secret"),
        )
        assert token.status_code == 200
        stats = await http.get(f"{url}/sandbox/1.0/stats")
        assert stats.json()["received"] == 0


def test_relay_sandbox_command_serves_until_terminated() -> None:
    process = subprocess.Popen(
        [RELAY, "sandbox", "--port", "0", "--preset", "production", "--fault", "seed=1",
         "--client", "ro:ro-secret:ro-app:events.readonly"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        seen = [process.stdout.readline() for _ in range(1)]
        while not seen[-1].startswith("TimeBack sandbox listening on") and seen[-1]:
            seen.append(process.stdout.readline())  # skip any warning printed before
        assert seen[-1].startswith("TimeBack sandbox listening on http://127.0.0.1:"), seen
        url = seen[-1].rsplit(" ", 1)[1].strip()
        config = httpx.get(f"{url}/sandbox/1.0/config").json()
        assert config["processing_delay"] == [30.0, 120.0]
        assert [c["client_id"] for c in config["clients"]][-1] == "ro"
        assert httpx.get(f"{url}/sandbox/1.0/faults").json()["faults"] == {"seed": 1}
        process.send_signal(signal.SIGTERM)
        # read() through the same buffered reader: communicate() would skip what it buffered
        out = "".join(seen) + process.stdout.read()
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert "sandbox-client / sandbox-secret" in out and "ro / ***" in out
    assert "sandbox stopped" in out
