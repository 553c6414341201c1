"""Secrets never leak: with a distinctive client secret (and SASL password), nothing the relay
writes (logs at DEBUG, /metrics, /readyz, /livez, dead-letter keys and headers, the error messages
of a refused configuration) contains it, in clear, URL-encoded or inside a Basic credential.
And the API base URL must be https unless RELAY_ALLOW_INSECURE_HTTP=true.
"""

from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from relay.sandbox.config import BUILTIN_CLIENTS, Client
from relay.tools.traffic import TrafficGenerator
from tests.integration.conftest import SandboxFactory, SandboxHandle
from tests.reliability.conftest import Report, ScenarioFactory
from tests.reliability.harness import (
    CLIENT_ID,
    RelayProcess,
    relay_env,
    requires_relay,
    run_relay_once,
    wait_for,
)
from tests.reliability.ledger import expectations
from tests.reliability.poison import PoisonCorpus

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(300)]


def distinctive(label: str) -> str:
    return f"{uuid.uuid4().hex}-{label}-Zq9"


def forms(secret: str, user: str = CLIENT_ID) -> list[str]:
    """The ways a secret could be written: clear, URL-encoded, in a Basic credential."""
    basic = base64.b64encode(f"{user}:{secret}".encode()).decode()
    return [secret, quote(secret, safe=""), basic, secret[:16]]


def assert_absent(secret: str, where: str, text: str | bytes, user: str = CLIENT_ID) -> None:
    data = text if isinstance(text, bytes) else text.encode(errors="replace")
    for form in forms(secret, user):
        assert form.encode() not in data, f"the secret ({form[:6]}...) appears in {where}"


def test_secret_never_appears_in_logs_metrics_health_or_dlq(
    scenario: ScenarioFactory, sandbox_factory: SandboxFactory, report: Report
) -> None:
    secret = distinctive("client-secret")
    clients = (Client(CLIENT_ID, secret, "sandbox-app"), *BUILTIN_CLIENTS[1:])
    box = sandbox_factory(clients=clients, token_ttl_s=4.0)
    s = scenario("secrets", box)
    plan = TrafficGenerator(students=8, invalid_ratio=0.05, seed=71).plan(300)
    student = plan.students[0]
    course = next(c for c in plan.courses if c.id == plan.enrollments[student])
    corpus = PoisonCorpus(student, course.id, course.subject).corpus(
        ("random-bytes", "nan-xp", "unknown-subject", "oversized-2mb")
    )
    expected = expectations(plan, corpus)
    s.seed_roster(plan)

    relay = s.relay("a", RELAY_CLIENT_SECRET=secret, RELAY_LOG_LEVEL="DEBUG").start()
    relay.wait_assigned()
    s.produce(expected[:150], wait=True)
    # Every credential path: revoked tokens (401, refresh), the token endpoint failing.
    box.revoke_tokens()
    box.faults(token_endpoint_down="503")
    s.produce(expected[150:])
    time.sleep(5)  # long enough for the 4 s token to expire while the endpoint is down
    box.clear_faults()
    s.wait_complete(timeout=180, alive=[relay])

    seen = {
        "/metrics": relay.get("/metrics"),
        "/readyz": relay.get("/readyz"),
        "/livez": relay.get("/livez"),
    }
    figures = s.finish()
    report(figures)
    for where, response in seen.items():
        assert response is not None, f"{where} did not answer"
        assert_absent(secret, where, response.content)
    logs = relay.logs()
    assert "token" in logs.lower(), "the credential trouble left no trace in the logs"
    assert_absent(secret, "the relay's logs", logs)
    assert figures.dlq_total >= len(corpus)
    for letter in s.dlq_watch.letters:
        assert_absent(secret, "a dead letter's key", letter.key or b"")
        for name, value in letter.headers.items():
            assert_absent(secret, f"dead-letter header {name}", value)
    assert figures.ok, figures.problems


def test_wrong_secret_is_not_echoed_and_nothing_is_dead_lettered(
    scenario: ScenarioFactory, sandbox: SandboxHandle
) -> None:
    """A secret the API refuses (401 at the token endpoint): the relay says so without the
    secret, is not ready, and dead-letters nothing (bad credentials are no record's fault)."""
    wrong = distinctive("wrong-secret")
    s = scenario("wrong-secret", sandbox)
    plan = TrafficGenerator(students=4, seed=72).plan(20)
    s.produce(expectations(plan), wait=True)
    relay = s.relay("a", RELAY_CLIENT_SECRET=wrong, RELAY_LOG_LEVEL="DEBUG").start()
    wait_for(
        lambda: (relay.metric("token_refreshes") or 0) >= 2,
        90,
        "refused token requests",
        relay.check_alive,
    )
    metrics = relay.metrics_text() or ""
    readyz = relay.get("/readyz")
    assert readyz is not None and readyz.status_code == 503, readyz
    s.poll()
    assert s.watch.receipts == [], "an event reached the API without a token"
    relay.terminate()
    s.dlq_watch.drain()
    assert s.dlq_watch.letters == [], [x.reason for x in s.dlq_watch.letters]
    assert_absent(wrong, "/metrics", metrics)
    assert_absent(wrong, "/readyz", readyz.content)
    assert_absent(wrong, "the relay's logs", relay.logs())


def test_sasl_password_never_appears(
    kafka_bootstrap: str, sandbox: SandboxHandle, tmp_path: Path
) -> None:
    """SASL against a PLAINTEXT listener fails: whatever the relay and its Kafka clients log
    about it, the password is not in it."""
    password = distinctive("sasl-password")
    env = relay_env(
        bootstrap=kafka_bootstrap,
        topic=f"rel-sasl-{uuid.uuid4().hex[:8]}",
        dlq=f"rel-sasl-dlq-{uuid.uuid4().hex[:8]}",
        group=f"rel-sasl-{uuid.uuid4().hex[:8]}",
        api_url=sandbox.url,
        RELAY_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        RELAY_KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        RELAY_KAFKA_SASL_USERNAME="reliability-user",
        RELAY_KAFKA_SASL_PASSWORD=password,
        RELAY_LOG_LEVEL="DEBUG",
    )
    relay = RelayProcess("sasl", env, tmp_path)
    try:
        relay.start()
        deadline = time.monotonic() + 15
        while relay.alive and time.monotonic() < deadline:
            time.sleep(0.5)
        metrics = relay.metrics_text() or ""
        relay.terminate(10)
    finally:
        relay.close()
    logs = relay.logs()
    assert logs.strip(), "the relay wrote nothing"
    assert_absent(password, "/metrics", metrics, user="reliability-user")
    assert_absent(password, "the relay's logs", logs, user="reliability-user")


def test_http_api_base_url_needs_allow_insecure(tmp_path: Path) -> None:
    secret = distinctive("client-secret")
    env = relay_env(
        bootstrap="127.0.0.1:1",
        topic="unused",
        dlq="unused.dlq",
        group="unused",
        api_url="http://api.example.test",
        RELAY_CLIENT_SECRET=secret,
    )
    del env["RELAY_ALLOW_INSECURE_HTTP"]
    result = run_relay_once(env, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "RELAY_API_BASE_URL" in output, output
    assert_absent(secret, "the error message", output)

    # Explicitly false is refused the same way.
    result = run_relay_once(env | {"RELAY_ALLOW_INSECURE_HTTP": "false"}, tmp_path)
    assert result.returncode != 0
    assert "RELAY_API_BASE_URL" in result.stdout + result.stderr


def test_configuration_errors_do_not_echo_secrets(tmp_path: Path) -> None:
    """A refused configuration names the bad variable; the secrets set beside it stay out."""
    secret, password = distinctive("client-secret"), distinctive("sasl-password")
    env = relay_env(
        bootstrap="127.0.0.1:1",
        topic="unused",
        dlq="unused.dlq",
        group="unused",
        api_url="https://api.example.test",
        RELAY_CLIENT_SECRET=secret,
        RELAY_KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        RELAY_KAFKA_SASL_PASSWORD=password,  # no mechanism, no username: refused
        RELAY_MAX_IN_FLIGHT="0",
    )
    result = run_relay_once(env, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "RELAY_MAX_IN_FLIGHT" in output or "RELAY_KAFKA_SASL" in output, output
    assert_absent(secret, "the error message", output)
    assert_absent(password, "the error message", output)
