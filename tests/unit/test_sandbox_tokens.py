"""Sandbox tokens: JWT-shaped, HMAC-signed, verifiable, expiring, revocable; CLI spec parsing."""

from __future__ import annotations

import base64
from typing import Any

import click
import orjson
import pytest

from relay.sandbox.cli import build_config, parse_client, parse_delay, parse_fault
from relay.sandbox.config import Delay, SandboxConfig, preset
from relay.sandbox.tokens import TokenSigner


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _part(token: str, i: int) -> dict[str, object]:
    text = token.split(".")[i]
    return dict(orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))))


def test_tokens_are_jwt_shaped_and_verify() -> None:
    signer = TokenSigner(key=b"k" * 32)
    token = signer.issue("c", "app", ["events.write", "roster.readonly"], 60)
    assert _part(token, 0) == {"alg": "HS256", "typ": "JWT"}
    payload = _part(token, 1)
    assert payload["sub"] == "c" and payload["scope"] == "events.write roster.readonly"
    claims = signer.verify(token)
    assert claims is not None
    assert (claims.client_id, claims.app_id) == ("c", "app")
    assert claims.scopes == {"events.write", "roster.readonly"}


def test_forged_malformed_and_foreign_tokens_are_refused() -> None:
    signer = TokenSigner(key=b"k" * 32)
    token = signer.issue("c", "app", ["events.write"], 60)
    header, _, signature = token.split(".")
    forged_payload = base64.urlsafe_b64encode(
        orjson.dumps({**_part(token, 1), "scope": "roster.createput"})
    ).rstrip(b"=")
    assert signer.verify(f"{header}.{forged_payload.decode()}.{signature}") is None
    assert signer.verify("not-a-token") is None
    assert signer.verify("a.b.c") is None
    assert TokenSigner(key=b"x" * 32).verify(token) is None


def test_tokens_expire_and_revocation_refuses_older_ones() -> None:
    clock = Clock()
    signer = TokenSigner(key=b"k" * 32, clock=clock)
    token = signer.issue("c", "app", [], 10)
    clock.now += 9.9
    assert signer.verify(token) is not None
    clock.now += 0.1
    assert signer.verify(token) is None
    fresh = signer.issue("c", "app", [], 10)
    signer.revoke_all()
    assert signer.verify(fresh) is None
    assert signer.verify(signer.issue("c", "app", [], 10)) is not None


def test_a_token_is_checked_once_and_still_expires_and_is_revoked() -> None:
    """Verified tokens are kept (a client sends the same one with every request): the signature
    is computed once per token, while expiry and revocation still hold on every request."""
    clock = Clock()
    signed: list[str] = []

    class Counting(TokenSigner):
        def _sign(self, signing_input: str) -> bytes:
            signed.append(signing_input)
            return super()._sign(signing_input)

    signer = Counting(key=b"k" * 32, clock=clock)
    token = signer.issue("c", "app", ["events.write"], 10)
    signed.clear()
    for _ in range(5):
        assert signer.verify(token) is not None
    assert len(signed) == 1
    clock.now += 10
    assert signer.verify(token) is None  # expired, though kept
    other = signer.issue("c", "app", [], 10)
    assert signer.verify(other) is not None
    signer.revoke_all()
    assert signer.verify(other) is None  # revoked, though kept
    forged = other[:-2] + ("AA" if not other.endswith("AA") else "BB")
    assert signer.verify(forged) is None and signer.verify(forged) is None


def test_fault_specs_from_the_command_line(tmp_path: object) -> None:
    assert parse_fault('{"error_rates": {"503": 0.1}}') == {"error_rates": {"503": 0.1}}
    assert parse_fault("token_endpoint_down=reset") == {"token_endpoint_down": "reset"}
    assert parse_fault("seed=7") == {"seed": 7}
    assert parse_fault('latency_ms={"fixed": 5}') == {"latency_ms": {"fixed": 5}}
    with pytest.raises(click.BadParameter):
        parse_fault("nonsense")
    with pytest.raises(click.BadParameter):
        parse_fault("{broken")


def test_delays_clients_and_presets() -> None:
    assert parse_delay("0.5") == Delay(0.5)
    assert parse_delay("30,120") == Delay(30.0, 120.0)
    client = parse_client("ro:pw:ro-app:events.readonly,roster.readonly")
    assert client.scopes == ("events.readonly", "roster.readonly")
    with pytest.raises(click.BadParameter):
        parse_client("ro:pw:app:not.a.scope")
    assert preset("production").processing_delay == Delay(30.0, 120.0)
    with pytest.raises(ValueError, match="unknown preset"):
        preset("staging")
    with pytest.raises(ValueError, match="unique"):
        SandboxConfig(clients=(client, client))


def test_build_config_merges_faults_and_validates_them() -> None:
    common: dict[str, Any] = dict(
        host="127.0.0.1",
        port=0,
        processing_delay=None,
        token_ttl=5.0,
        iri_base="http://iri.test/",
        max_events_per_request=None,
        dedupe=True,
        clients=("x:y:z",),
        seed=None,
    )
    config = build_config(
        preset_name="production", faults=("seed=1", '{"error_rates": {"500": 0.1}}'), **common
    )
    assert config.processing_delay == Delay(30.0, 120.0)
    assert config.token_ttl_s == 5.0 and config.iri == "http://iri.test"
    assert config.faults == {"seed": 1, "error_rates": {"500": 0.1}}
    assert [c.client_id for c in config.clients] == ["sandbox-client", "other-client", "x"]
    with pytest.raises(click.BadParameter, match="unknown fault keys"):
        build_config(preset_name=None, faults=("bogus=1",), **common)
