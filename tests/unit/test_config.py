"""Settings: read from RELAY_* variables, validated with errors that name the variable."""

from __future__ import annotations

import pytest

from relay.config import DEFAULT_SUBJECTS, load_settings
from relay.errors import ConfigError

SECRET = "s3cr3t-Zebra-Quokka-4711"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in [n for n in __import__("os").environ if n.startswith("RELAY_")]:
        monkeypatch.delenv(name)


def test_defaults_match_the_design_table() -> None:
    s = load_settings()
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert s.topics == ("timeback.activity",)
    assert s.dlq_topic == "timeback.activity.dlq"
    assert s.api_base_url == "https://api.alpha-1edtech.ai"
    assert s.effective_token_url == "https://api.alpha-1edtech.ai/auth/1.0/token"
    assert (s.max_in_flight, s.http_timeout, s.web_port, s.shutdown_grace) == (64, 10, 6066, 25)
    assert (s.retry_base, s.retry_cap, s.retry_budget, s.retry_after_cap) == (0.5, 30, 900, 300)
    assert s.subjects == DEFAULT_SUBJECTS and s.preflight == "off" and s.auth_method == "basic"


def test_lists_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_TOPICS", " a.b , c ,")
    monkeypatch.setenv("RELAY_SUBJECTS", "Math,Other")
    s = load_settings()
    assert s.topics == ("a.b", "c") and s.subjects == ("Math", "Other")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RELAY_MAX_IN_FLIGHT", "0", "RELAY_MAX_IN_FLIGHT"),
        ("RELAY_PREFLIGHT", "always", "RELAY_PREFLIGHT"),
        ("RELAY_API_BASE_URL", "http://api.example", "RELAY_API_BASE_URL: must be https://"),
        ("RELAY_TOKEN_URL", "http://api.example/token", "RELAY_TOKEN_URL: must be https://"),
        ("RELAY_ID_NAMESPACE", "not-a-uuid", "RELAY_ID_NAMESPACE"),
        ("RELAY_TOPICS", " , ", "RELAY_TOPICS"),
        ("RELAY_MAX_PENDING", "8", "RELAY_MAX_PENDING: must be at least RELAY_MAX_IN_FLIGHT"),
        ("RELAY_KAFKA_SESSION_TIMEOUT", "5", "RELAY_KAFKA_SESSION_TIMEOUT"),
        ("RELAY_KAFKA_HEARTBEAT_INTERVAL", "5", "RELAY_KAFKA_HEARTBEAT_INTERVAL: must be under"),
        ("RELAY_KAFKA_REBALANCE_TIMEOUT", "0", "RELAY_KAFKA_REBALANCE_TIMEOUT"),
        ("RELAY_EVENTS_PER_REQUEST", "0", "RELAY_EVENTS_PER_REQUEST"),
        ("RELAY_BATCH_LINGER", "-1", "RELAY_BATCH_LINGER"),
        ("RELAY_MAX_FIELD_BYTES", "100", "RELAY_MAX_FIELD_BYTES"),
        ("RELAY_MAX_FIELD_BYTES", str(64 << 20), "RELAY_MAX_FIELD_BYTES: must be under"),
        ("RELAY_MAX_REQUESTS_PER_SECOND", "0", "RELAY_MAX_REQUESTS_PER_SECOND"),
        ("RELAY_MAX_REQUESTS_BURST", "5", "RELAY_MAX_REQUESTS_BURST: set without"),
        ("RELAY_CONCURRENCY", "auto", "RELAY_CONCURRENCY"),
    ],
)
def test_errors_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_settings()


def test_group_session_defaults_bound_a_crashed_members_hold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = load_settings()
    assert (s.kafka_session_timeout, s.heartbeat_interval, s.kafka_rebalance_timeout) == (10, 1, 30)
    monkeypatch.setenv("RELAY_KAFKA_SESSION_TIMEOUT", "45")
    assert load_settings().heartbeat_interval == 4.5  # a tenth of the session unless set
    monkeypatch.setenv("RELAY_KAFKA_HEARTBEAT_INTERVAL", "3")
    assert load_settings().heartbeat_interval == 3


def test_pending_defaults_to_four_times_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_MAX_IN_FLIGHT", "32")
    assert load_settings().pending_limit == 128
    monkeypatch.setenv("RELAY_MAX_PENDING", "40")
    assert load_settings().pending_limit == 40


def test_insecure_http_only_when_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_API_BASE_URL", "http://127.0.0.1:8080/")
    monkeypatch.setenv("RELAY_ALLOW_INSECURE_HTTP", "true")
    s = load_settings()
    assert s.api_base_url == "http://127.0.0.1:8080"
    assert s.effective_token_url == "http://127.0.0.1:8080/auth/1.0/token"


def test_sasl_needs_its_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    with pytest.raises(ConfigError, match="RELAY_KAFKA_SASL_USERNAME"):
        load_settings()


def test_require_names_every_missing_variable() -> None:
    s = load_settings()
    with pytest.raises(ConfigError, match="RELAY_CLIENT_ID, RELAY_CLIENT_SECRET, RELAY_APP_ID"):
        s.require("client_id", "client_secret", "app_id")


def test_secrets_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("RELAY_KAFKA_SASL_PASSWORD", SECRET)
    monkeypatch.setenv("RELAY_MAX_IN_FLIGHT", "-1")  # force an error message too
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert SECRET not in str(err.value)
    monkeypatch.setenv("RELAY_MAX_IN_FLIGHT", "8")
    s = load_settings()
    assert SECRET not in repr(s) and SECRET not in str(s.model_dump())
    assert s.secret("client_secret") == SECRET


def test_empty_value_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_COURSE_MAP", "")
    monkeypatch.setenv("RELAY_SCHEMA_REGISTRY_URL", "")
    s = load_settings()
    assert s.course_map is None and s.schema_registry_url is None


def test_schema_dir_setting_feeds_the_decoder(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from relay.contract.catalogue import default_schema_dir
    from relay.contract.decode import Decoder

    only_xp = tmp_path / "schemas"
    only_xp.mkdir()
    (only_xp / "XpEarned.v1.avsc").write_text(
        (default_schema_dir() / "XpEarned.v1.avsc").read_text()
    )
    monkeypatch.setenv("RELAY_SCHEMA_DIR", str(only_xp))
    decoder = Decoder.from_settings(load_settings())
    assert list(decoder.catalogue.names()) == ["timeback.activity.XpEarned"]


def test_batching_widens_the_window_not_the_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert (s.events_per_request, s.batch_linger) == (1, 0.005)
    assert (s.records_in_flight, s.pending_limit) == (64, 256)  # as without batching
    monkeypatch.setenv("RELAY_EVENTS_PER_REQUEST", "20")
    s = load_settings()
    assert (s.max_in_flight, s.records_in_flight, s.pending_limit) == (64, 1280, 5120)
    monkeypatch.setenv("RELAY_MAX_PENDING", "1000")
    with pytest.raises(ConfigError, match="RELAY_MAX_IN_FLIGHT x RELAY_EVENTS_PER_REQUEST"):
        load_settings()


def test_the_field_cap_defaults_to_the_contracts_and_reaches_its_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from relay.contract.build import DEFAULT_MAX_FIELD_BYTES, Checks

    assert load_settings().max_field_bytes == DEFAULT_MAX_FIELD_BYTES
    monkeypatch.setenv("RELAY_MAX_FIELD_BYTES", "65536")
    assert Checks.from_settings(load_settings()).max_field_bytes == 65536


def test_limiter_settings_build_the_gate_and_print_in_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from relay import wiring
    from relay.ops.check import limits_summary

    monkeypatch.setenv("RELAY_MAX_REQUESTS_PER_SECOND", "190")
    monkeypatch.setenv("RELAY_CONCURRENCY", "Adaptive")
    settings = load_settings()
    gate = wiring.request_gate(settings)
    assert gate.bucket is not None and gate.bucket.rate == 190 and gate.bucket.burst == 190
    assert gate.concurrency.mode == "adaptive" and gate.concurrency.max_limit == 64
    assert limits_summary(settings) == (
        "adaptive concurrency up to 64 requests in flight, 190 requests/s, burst 190 "
        "(per process), circuit open 2.5-5 s"
    )
