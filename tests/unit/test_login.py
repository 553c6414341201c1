"""The not-ready views served while Kafka refuses the relay's login (relay/kafka/login.py),
over real HTTP on a free port. The refusal itself is tried on the secured cluster
(tests/reliability/test_cluster_trials.py)."""

from __future__ import annotations

import httpx
import pytest

from bench.ports import free_port
from relay.config import load_settings
from relay.kafka.diagnosis import Diagnosis
from relay.kafka.login import _NotReady, await_login


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in [n for n in __import__("os").environ if n.startswith("RELAY_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("RELAY_WEB_HOST", "127.0.0.1")
    monkeypatch.setenv("RELAY_WEB_PORT", str(free_port()))
    return load_settings()


def test_views_say_not_ready_and_why_and_serve_metrics(settings) -> None:  # type: ignore[no-untyped-def]
    server = _NotReady(settings)
    server.why = Diagnosis(
        "Kafka refused the SASL login of user 'relay'", "RELAY_KAFKA_SASL_PASSWORD"
    )
    base = f"http://127.0.0.1:{settings.web_port}"
    try:
        ready = httpx.get(f"{base}/readyz")
        live = httpx.get(f"{base}/livez")
        metrics = httpx.get(f"{base}/metrics")
    finally:
        server.close()
    assert ready.status_code == 503
    assert ready.json()["ready"] is False
    assert "RELAY_KAFKA_SASL_PASSWORD" in ready.json()["reasons"]["kafka_login"]
    assert live.status_code == 200
    assert "timeback_relay_kafka_auth_failures_total" in metrics.text
    with pytest.raises(httpx.ConnectError):  # the port is free again for faust
        httpx.get(f"{base}/livez")


def test_plaintext_has_no_login_to_wait_for(settings) -> None:  # type: ignore[no-untyped-def]
    assert settings.kafka_security_protocol == "PLAINTEXT"
    await_login(settings)  # returns at once: no broker is asked
