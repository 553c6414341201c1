"""The Schema Registry client's configuration: https, basic auth, a CA file, no password shown.

The configuration is handed to confluent_kafka's real client classes (nothing is requested: a
client connects only when asked for a schema), so an option the library does not accept fails here.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import AsyncSchemaRegistryClient, SchemaRegistryClient

from relay.config import load_settings
from relay.contract.registry import client_config, split_user_info
from relay.errors import ConfigError
from relay.logs import JsonFormatter

PASSWORD = "Registry-Pa55-Quokka"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in [n for n in os.environ if n.startswith("RELAY_")]:
        monkeypatch.delenv(name)


def test_user_info_in_the_url_becomes_basic_auth_and_leaves_the_url() -> None:
    settings = load_settings(schema_registry_url=f"https://relay:{PASSWORD}@sr.example:8081/")
    config = client_config(settings)
    assert config["url"] == "https://sr.example:8081/"
    assert config["basic.auth.user.info"] == f"relay:{PASSWORD}"
    for client_class in (SchemaRegistryClient, AsyncSchemaRegistryClient):
        rest = client_class(config)._rest_client
        assert rest.auth == ("relay", PASSWORD)
        assert all(PASSWORD not in url for url in rest.base_urls)  # so in no request URL


def test_percent_encoded_user_info_is_decoded_once() -> None:
    urls, user_info = split_user_info("https://a%40corp:p%3Ass@one.example,https://two.example")
    assert urls == "https://one.example,https://two.example"
    assert user_info == "a@corp:p:ss"


def test_user_info_setting_and_ca_file(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("")  # the path is what is configured; TLS reads it when connecting
    settings = load_settings(
        schema_registry_url="https://sr.example",
        schema_registry_user_info=f"relay:{PASSWORD}",
        schema_registry_ca_file=str(ca),
    )
    config = client_config(settings)
    assert config["basic.auth.user.info"] == f"relay:{PASSWORD}"
    assert config["ssl.ca.location"] == str(ca)
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.model_dump())


@pytest.mark.parametrize("name", ["ca_file", "cert_file"])
def test_a_missing_tls_file_is_named(name: str, tmp_path: Path) -> None:
    settings = load_settings(
        schema_registry_url="https://sr.example", **{f"schema_registry_{name}": str(tmp_path)}
    )
    with pytest.raises(ConfigError, match=f"RELAY_SCHEMA_REGISTRY_{name.upper()}: .* not a"):
        client_config(settings)


def test_client_certificate_and_key(tmp_path: Path) -> None:
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_text("")
    key.write_text("")
    settings = load_settings(
        schema_registry_url="https://sr.example",
        schema_registry_cert_file=str(cert),
        schema_registry_key_file=str(key),
    )
    config = client_config(settings)
    assert (config["ssl.certificate.location"], config["ssl.key.location"]) == (str(cert), str(key))
    with pytest.raises(ConfigError, match="RELAY_SCHEMA_REGISTRY_KEY_FILE: needs"):
        load_settings(schema_registry_url="https://sr.example", schema_registry_key_file=str(key))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"schema_registry_url": "http://sr.example"}, "RELAY_SCHEMA_REGISTRY_URL: must be https"),
        (
            {"schema_registry_url": f"https://sr.example,http://u:{PASSWORD}@b.example"},
            "RELAY_SCHEMA_REGISTRY_URL: must be https",
        ),
        ({"schema_registry_url": "mock://tests"}, "RELAY_SCHEMA_REGISTRY_URL: must be https"),
        (
            {"schema_registry_url": "https://sr.example", "schema_registry_user_info": PASSWORD},
            "RELAY_SCHEMA_REGISTRY_USER_INFO: must be user:password",
        ),
        (
            {
                "schema_registry_url": f"https://u:{PASSWORD}@sr.example",
                "schema_registry_user_info": f"v:{PASSWORD}",
            },
            "not both",
        ),
    ],
)
def test_bad_registry_settings_name_the_variable_not_the_secret(
    overrides: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(**overrides)
    assert PASSWORD not in str(caught.value)


def test_http_registry_only_when_insecure_http_is_allowed() -> None:
    settings = load_settings(schema_registry_url="http://127.0.0.1:8081", allow_insecure_http=True)
    assert client_config(settings)["url"] == "http://127.0.0.1:8081"


def test_log_lines_mask_user_info_of_any_url() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("tests.registry-config")
    log.addHandler(handler)
    try:
        log.warning("GET https://relay:%s@sr.example/schemas/ids/7 failed", PASSWORD)
    finally:
        log.removeHandler(handler)
    line = stream.getvalue()
    assert PASSWORD not in line and "https://[redacted]@sr.example/schemas/ids/7" in line
