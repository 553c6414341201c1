"""``relay run`` against an https Schema Registry that wants basic auth, with a private CA.

The credentials come from ``user:pass@`` in RELAY_SCHEMA_REGISTRY_URL or from
RELAY_SCHEMA_REGISTRY_USER_INFO; the CA from RELAY_SCHEMA_REGISTRY_CA_FILE. A wrong password or an
unknown CA pauses the relay (nothing acknowledged, nothing dead-lettered) with a log line that
names the cause, and no log line ever shows the password. The registry is the real Apicurio
Registry (deploy/local/registry) behind tests/registry_proxy.py, a TLS + basic-auth reverse proxy
with a certificate made here: Apicurio 2.3.1 does basic auth only through an OpenID Connect
identity server, which does not run here (the proxy's docstring says more).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from relay.config import load_settings
from relay.contract.registry import client_config
from tests.integration.conftest import SandboxFactory
from tests.integration.pipeline_helpers import (
    deliver,
    ledger_total,
    letters,
    produce,
    running_relay,
    sample,
    seed_students,
    wait_registry_retries,
)
from tests.integration.test_pipeline_registry import STUDENTS, XP, _confluent
from tests.registry import Registry
from tests.registry_proxy import RegistryProxy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
USER, PASSWORD = "relay", "Registry-Secret-7Zq4"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it (openssl, PEM files)."""
    d = tmp_path_factory.mktemp("registry-tls")
    (d / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "authorityKeyIdentifier=keyid,issuer\nextendedKeyUsage=serverAuth\n"
    )
    (d / "client.ext").write_text(
        "basicConstraints=CA:FALSE\nauthorityKeyIdentifier=keyid,issuer\n"
        "extendedKeyUsage=clientAuth\n"
    )
    steps = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
         "-days", "2", "-subj", "/CN=registry-test-ca"],
    ]  # fmt: skip
    for who in ("server", "client"):
        steps += [
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{who}.key", "-out", f"{who}.csr",
             "-subj", f"/CN={'127.0.0.1' if who == 'server' else 'relay'}"],
            ["x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{who}.pem", "-days", "2", "-extfile", f"{who}.ext"],
        ]  # fmt: skip
    for argv in steps:
        subprocess.run(["openssl", *argv], cwd=d, check=True, capture_output=True)
    return {
        "ca": d / "ca.pem",
        "cert": d / "server.pem",
        "key": d / "server.key",
        "client_cert": d / "client.pem",
        "client_key": d / "client.key",
    }


@pytest.fixture
def registry(tls: dict[str, Path], schema_registry: Registry) -> Iterator[RegistryProxy]:
    proxy = RegistryProxy(
        schema_registry.base, certificate=(tls["cert"], tls["key"]), user_info=f"{USER}:{PASSWORD}"
    ).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def mtls_registry(tls: dict[str, Path], schema_registry: Registry) -> Iterator[RegistryProxy]:
    """The same registry, also wanting a client certificate signed by the test CA."""
    proxy = RegistryProxy(
        schema_registry.base,
        certificate=(tls["cert"], tls["key"]),
        client_ca=tls["ca"],
        user_info=f"{USER}:{PASSWORD}",
    ).start()
    yield proxy
    proxy.stop()


def _records(registry: RegistryProxy, tls: dict[str, Path]) -> list:  # type: ignore[type-arg]
    """Records a producer registered over https with the same settings the relay gets."""
    settings = load_settings(
        _env_file=None,
        schema_registry_url=registry.url,
        schema_registry_user_info=f"{USER}:{PASSWORD}",
        schema_registry_ca_file=str(tls["ca"]),
        schema_registry_cert_file=str(tls["client_cert"]),
        schema_registry_key_file=str(tls["client_key"]),
    )
    client = SchemaRegistryClient(client_config(settings))
    return [_confluent(s, seq, client) for s in STUDENTS for seq in range(3)]


def _with_user_info(url: str, password: str) -> str:
    return url.replace("https://", f"https://{USER}:{password}@")


@pytest.mark.parametrize("where", ["url", "user-info-setting"])
def test_https_registry_with_basic_auth_and_a_private_ca(
    where: str,
    kafka_bootstrap: str,
    make_topic,  # type: ignore[no-untyped-def]
    sandbox_factory: SandboxFactory,
    registry: RegistryProxy,
    tls: dict[str, Path],
    tmp_path: Path,
) -> None:
    box = sandbox_factory()
    records = _records(registry, tls)
    auth = (
        {"RELAY_SCHEMA_REGISTRY_URL": _with_user_info(registry.url, PASSWORD)}
        if where == "url"
        else {
            "RELAY_SCHEMA_REGISTRY_URL": registry.url,
            "RELAY_SCHEMA_REGISTRY_USER_INFO": f"{USER}:{PASSWORD}",
        }
    )
    seed_students(box, STUDENTS)
    topic, dlq = make_topic("registry-tls", partitions=2), make_topic("registry-tls-dlq")
    with running_relay(tmp_path, kafka_bootstrap, topic, dlq, box.url,
                       RELAY_SCHEMA_REGISTRY_CA_FILE=str(tls["ca"]), **auth) as relay:  # fmt: skip
        deliver(relay, kafka_bootstrap, topic, records)
    assert registry.refused == 0 and registry.fetched, "the relay fetched with the credentials"
    assert letters(kafka_bootstrap, dlq) == []
    assert ledger_total(box, STUDENTS) == XP * len(records)
    assert PASSWORD not in relay.logs()


@pytest.mark.parametrize(
    ("case", "cause"),
    [("wrong-password", "HTTP 401"), ("unknown-ca", "CERTIFICATE_VERIFY_FAILED")],
)
def test_a_refusing_registry_pauses_the_relay_and_no_log_shows_the_password(
    case: str,
    cause: str,
    kafka_bootstrap: str,
    make_topic,  # type: ignore[no-untyped-def]
    sandbox_factory: SandboxFactory,
    registry: RegistryProxy,
    tls: dict[str, Path],
    tmp_path: Path,
) -> None:
    box = sandbox_factory()
    records = _records(registry, tls)
    wrong = f"{PASSWORD}-old"
    env = (
        {
            "RELAY_SCHEMA_REGISTRY_URL": _with_user_info(registry.url, wrong),
            "RELAY_SCHEMA_REGISTRY_CA_FILE": str(tls["ca"]),
        }
        if case == "wrong-password"
        else {"RELAY_SCHEMA_REGISTRY_URL": _with_user_info(registry.url, PASSWORD)}  # no CA
    )
    seed_students(box, STUDENTS)
    topic, dlq = make_topic("registry-refused", partitions=2), make_topic("registry-refused-dlq")
    with running_relay(tmp_path, kafka_bootstrap, topic, dlq, box.url, **env) as relay:
        produce(kafka_bootstrap, topic, records)
        wait_registry_retries(relay, 60, "registry retries")
        acked = sample(relay, "records_acked")
    logs = relay.logs()
    assert acked == 0 and letters(kafka_bootstrap, dlq) == [], "paused: no ack, no dead letter"
    assert cause in logs, f"the log names the cause ({cause})"
    assert PASSWORD not in logs and wrong not in logs


def test_a_registry_that_wants_mtls_gets_the_client_certificate(
    kafka_bootstrap: str,
    make_topic,  # type: ignore[no-untyped-def]
    sandbox_factory: SandboxFactory,
    mtls_registry: RegistryProxy,
    tls: dict[str, Path],
    tmp_path: Path,
) -> None:
    box = sandbox_factory()
    records = _records(mtls_registry, tls)
    seed_students(box, STUDENTS)
    topic, dlq = make_topic("registry-mtls", partitions=2), make_topic("registry-mtls-dlq")
    with running_relay(
        tmp_path,
        kafka_bootstrap,
        topic,
        dlq,
        box.url,
        RELAY_SCHEMA_REGISTRY_URL=mtls_registry.url,
        RELAY_SCHEMA_REGISTRY_USER_INFO=f"{USER}:{PASSWORD}",
        RELAY_SCHEMA_REGISTRY_CA_FILE=str(tls["ca"]),
        RELAY_SCHEMA_REGISTRY_CERT_FILE=str(tls["client_cert"]),
        RELAY_SCHEMA_REGISTRY_KEY_FILE=str(tls["client_key"]),
    ) as relay:
        deliver(relay, kafka_bootstrap, topic, records)
    assert mtls_registry.fetched and letters(kafka_bootstrap, dlq) == []
    assert ledger_total(box, STUDENTS) == XP * len(records)


def test_without_its_client_certificate_the_relay_pauses(
    kafka_bootstrap: str,
    make_topic,  # type: ignore[no-untyped-def]
    sandbox_factory: SandboxFactory,
    mtls_registry: RegistryProxy,
    tls: dict[str, Path],
    tmp_path: Path,
) -> None:
    box = sandbox_factory()
    records = _records(mtls_registry, tls)
    seed_students(box, STUDENTS)
    topic, dlq = make_topic("registry-nocert", partitions=2), make_topic("registry-nocert-dlq")
    with running_relay(
        tmp_path,
        kafka_bootstrap,
        topic,
        dlq,
        box.url,
        RELAY_SCHEMA_REGISTRY_URL=_with_user_info(mtls_registry.url, PASSWORD),
        RELAY_SCHEMA_REGISTRY_CA_FILE=str(tls["ca"]),
    ) as relay:
        produce(kafka_bootstrap, topic, records)
        wait_registry_retries(relay, 60, "registry retries")
        acked = sample(relay, "records_acked")
    logs = relay.logs()
    assert acked == 0 and letters(kafka_bootstrap, dlq) == [], "paused: no ack, no dead letter"
    assert "Schema Registry unavailable" in logs
    assert PASSWORD not in logs
