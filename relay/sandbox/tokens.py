"""JWT-shaped bearer tokens (HS256) that the sandbox can verify without storing them.

The key is drawn once per process, so every sandbox in a process (tests start many) accepts the
tokens of the others only if they share the process; a restarted sandbox refuses old tokens, like
a real API after key rotation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import orjson

_PROCESS_KEY: Final = secrets.token_bytes(32)
VERIFIED_CACHE: Final = 1024  # tokens whose signature was checked, kept per signer
_HEADER: Final = {"alg": "HS256", "typ": "JWT"}
ISSUER: Final = "timeback-sandbox"


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified token says about its bearer."""

    client_id: str
    app_id: str
    scopes: frozenset[str]
    issued_at: float
    expires_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Issues and verifies tokens; ``revoke_all`` invalidates every token issued so far."""

    def __init__(self, key: bytes = _PROCESS_KEY, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self._clock = clock
        self._generation = 0  # bumped by revoke_all; a token carries the one it was issued in
        # Tokens whose signature and claims were checked: a client sends the same token with
        # every request until it expires, and the HMAC and base64 work was ~10 % of the
        # sandbox's CPU per event. Expiry and revocation are still checked on every request.
        self._verified: dict[str, tuple[Claims, int]] = {}

    def issue(self, client_id: str, app_id: str, scopes: list[str], ttl: float) -> str:
        now = self._clock()
        payload = {
            "iss": ISSUER,
            "sub": client_id,
            "client_id": client_id,
            "app_id": app_id,
            "scope": " ".join(scopes),
            "iat": now,
            "exp": now + ttl,
            "jti": secrets.token_hex(8),
            "gen": self._generation,
        }
        signing_input = f"{_b64(orjson.dumps(_HEADER))}.{_b64(orjson.dumps(payload))}"
        return f"{signing_input}.{_b64(self._sign(signing_input))}"

    def verify(self, token: str) -> Claims | None:
        """The token's claims, or None if it is malformed, forged, expired or revoked."""
        known = self._verified.get(token)
        if known is None:
            known = self._checked(token)
            if known is None:
                return None
            if len(self._verified) >= VERIFIED_CACHE:  # bounded: start afresh when full
                self._verified.clear()
            self._verified[token] = known
        claims, generation = known
        if claims.expires_at <= self._clock() or generation != self._generation:
            return None
        return claims

    def _checked(self, token: str) -> tuple[Claims, int] | None:
        """The claims and generation of a well-formed token signed with this key, else None."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        signing_input = f"{parts[0]}.{parts[1]}"
        try:
            signature = _unb64(parts[2])
            payload = orjson.loads(_unb64(parts[1]))
        except (ValueError, orjson.JSONDecodeError):
            return None
        if not hmac.compare_digest(signature, self._sign(signing_input)):
            return None
        try:
            claims = Claims(
                client_id=str(payload["client_id"]),
                app_id=str(payload["app_id"]),
                scopes=frozenset(str(payload["scope"]).split()),
                issued_at=float(payload["iat"]),
                expires_at=float(payload["exp"]),
            )
            return claims, int(payload["gen"])
        except (KeyError, TypeError, ValueError):
            return None

    def revoke_all(self) -> None:
        """Every token issued before now is refused from now on (a forced 401 for tests)."""
        self._generation += 1

    def _sign(self, signing_input: str) -> bytes:
        return hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()
