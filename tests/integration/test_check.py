"""``relay check`` against the real broker and sandbox: passes when all is well, names the fix."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def run_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    return subprocess.run(
        [sys.executable, "-m", "relay.cli", "check", "--timeout", "10"],
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=90,
    )


@pytest.fixture
def relay_env(kafka_bootstrap, make_topic, sandbox) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        "RELAY_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "RELAY_TOPICS": make_topic("check-in"),
        "RELAY_DLQ_TOPIC": make_topic("check-dlq"),
        "RELAY_API_BASE_URL": sandbox.url,
        "RELAY_ALLOW_INSECURE_HTTP": "true",
        "RELAY_CLIENT_ID": "sandbox-client",
        "RELAY_CLIENT_SECRET": "sandbox-secret",
        "RELAY_APP_ID": "sandbox-app",
    }


def test_all_checks_pass(relay_env: dict[str, str]) -> None:
    # the strike topic (<dlq>.strikes) does not exist yet: the relay may create it
    result = run_check(relay_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ quarantine" in result.stdout and "all checks passed" in result.stdout


def test_an_existing_strike_topic_passes(relay_env: dict[str, str], make_topic) -> None:  # type: ignore[no-untyped-def]
    result = run_check(relay_env | {"RELAY_QUARANTINE_TOPIC": make_topic("check-strikes")})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ quarantine" in result.stdout


def test_with_quarantine_off_the_strike_topic_is_not_checked(relay_env: dict[str, str]) -> None:
    off = {"RELAY_QUARANTINE_AFTER": "0", "RELAY_QUARANTINE_TOPIC": "no such/topic"}
    result = run_check(relay_env | off)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("change", "failed", "hint"),
    [
        ({"RELAY_CLIENT_ID": ""}, "configuration", "RELAY_CLIENT_ID"),
        ({"RELAY_TOPICS": "no-such-topic-xyz"}, "topics", "no-such-topic-xyz"),
        ({"RELAY_QUARANTINE_TOPIC": "no such/topic"}, "quarantine", "RELAY_QUARANTINE_TOPIC"),
        ({"RELAY_CLIENT_SECRET": "wrong-Quokka-991"}, "token", "RELAY_CLIENT_SECRET"),
        ({"RELAY_KAFKA_BOOTSTRAP": "127.0.0.1:1"}, "kafka", "RELAY_KAFKA_BOOTSTRAP"),
    ],
)
def test_first_failure_names_the_fix(
    relay_env: dict[str, str], change: dict[str, str], failed: str, hint: str
) -> None:
    result = run_check(relay_env | change)
    assert result.returncode == 1
    assert f"✗ {failed}" in result.stdout and hint in result.stdout
    assert "wrong-Quokka-991" not in result.stdout + result.stderr  # secrets never printed


def test_the_registry_report(relay_env: dict[str, str], schema_registry) -> None:  # type: ignore[no-untyped-def]
    """Against the real registry: reachable, the record types producers registered listed, the
    others named with the hint; a URL that is not the Confluent API base names the variable."""
    from confluent_kafka.schema_registry import Schema

    from relay.contract.catalogue import default_catalogue

    name = "timeback.activity.XpEarned"
    text = default_catalogue().entry(name).text
    schema_registry.client().register_schema(name, Schema(text, "AVRO"))
    env = relay_env | {"RELAY_SCHEMA_REGISTRY_URL": schema_registry.url}
    result = run_check(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ schema registry" in result.stdout
    said = " ".join(result.stdout.split())  # rich wraps long lines
    assert "reachable, credentials accepted" in said and f"XpEarned ({name})" in said

    wrong = run_check(env | {"RELAY_SCHEMA_REGISTRY_URL": schema_registry.base})
    assert wrong.returncode == 1 and "✗ schema registry" in wrong.stdout
    assert "RELAY_SCHEMA_REGISTRY_URL" in wrong.stdout and "404" in wrong.stdout

    down = run_check(env | {"RELAY_SCHEMA_REGISTRY_URL": "http://127.0.0.1:1/apis/ccompat/v6"})
    assert down.returncode == 1 and "unreachable" in down.stdout


def test_the_registry_report_names_refused_credentials(
    relay_env: dict[str, str], schema_registry
) -> None:  # type: ignore[no-untyped-def]
    """Behind a basic-auth proxy (tests/registry_proxy.py says why a proxy): a wrong password is
    named with the variable to fix, and never printed."""
    from tests.registry_proxy import RegistryProxy

    proxy = RegistryProxy(schema_registry.base, user_info="relay:Right-Pass-51").start()
    try:
        env = relay_env | {"RELAY_SCHEMA_REGISTRY_URL": proxy.url}
        good = run_check(env | {"RELAY_SCHEMA_REGISTRY_USER_INFO": "relay:Right-Pass-51"})
        bad = run_check(env | {"RELAY_SCHEMA_REGISTRY_USER_INFO": "relay:wrong-Quokka-991"})
    finally:
        proxy.stop()
    assert good.returncode == 0, good.stdout + good.stderr
    said = " ".join(bad.stdout.split())  # rich wraps long lines
    assert bad.returncode == 1 and "refused the credentials (HTTP 401" in said
    assert "RELAY_SCHEMA_REGISTRY_USER_INFO" in said
    assert "wrong-Quokka-991" not in bad.stdout + bad.stderr
