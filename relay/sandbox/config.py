"""What a sandbox is started with: clients, the IRI base, timings, and the production preset.

Every knob is set at start (docs/partner-api.md#sandbox); faults can also change at run time through
``/sandbox/1.0/faults``. The built-in client secrets are public test values, not secrets.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Any, Final

from relay.config import DEFAULT_SUBJECTS, PRODUCTION_BASE_URL

ALL_SCOPES: Final = (
    "events.write",
    "events.readonly",
    "roster.readonly",
    "roster.createput",
    "gradebook.readonly",
    "standards.read",
)
DEFAULT_ORG: Final = "partner-sandbox"


@dataclass(frozen=True)
class Client:
    """One OAuth2 client: credentials, the app it acts for, and the scopes it may be granted."""

    client_id: str
    client_secret: str = field(repr=False)
    app_id: str
    scopes: tuple[str, ...] = ALL_SCOPES

    def public(self) -> dict[str, Any]:
        """What inspection shows: never the secret."""
        return {"client_id": self.client_id, "app_id": self.app_id, "scopes": list(self.scopes)}

    @classmethod
    def from_mapping(cls, data: Any) -> Client:
        """A client from ``{"client_id", "client_secret", "app_id", "scopes"?}``; ValueError."""
        if not isinstance(data, dict):
            raise ValueError("a client must be an object")
        unknown = set(data) - {"client_id", "client_secret", "app_id", "scopes"}
        if unknown:
            raise ValueError(f"unknown client keys: {sorted(unknown)}")
        values = [data.get(k) for k in ("client_id", "client_secret", "app_id")]
        if not all(isinstance(v, str) and v for v in values):
            raise ValueError("client_id, client_secret and app_id must be non-empty strings")
        scopes = data.get("scopes", list(ALL_SCOPES))
        if isinstance(scopes, str):
            scopes = scopes.split()
        if not isinstance(scopes, list) or not all(s in ALL_SCOPES for s in scopes):
            raise ValueError(f"scopes must be a list drawn from {list(ALL_SCOPES)}")
        return cls(values[0], values[1], values[2], tuple(scopes))  # type: ignore[arg-type]


BUILTIN_CLIENTS: Final = (
    Client("sandbox-client", "sandbox-secret", "sandbox-app"),
    Client("other-client", "other-secret", "other-app"),
)


@dataclass(frozen=True)
class Delay:
    """Seconds between the 202 and processing: fixed, or uniform in [low, high]."""

    low: float
    high: float | None = None

    def sample(self, rng: random.Random) -> float:
        return self.low if self.high is None else rng.uniform(self.low, self.high)

    def describe(self) -> float | list[float]:
        return self.low if self.high is None else [self.low, self.high]


@dataclass(frozen=True)
class SandboxConfig:
    """Everything a sandbox starts with. ``faults`` is a fault spec (see ``faults.py``)."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port, read back from the listening socket
    iri_base: str = PRODUCTION_BASE_URL
    clients: tuple[Client, ...] = BUILTIN_CLIENTS
    token_ttl_s: float = 3600.0
    processing_delay: Delay = Delay(1.0)
    max_events_per_request: int = 1
    dedupe: bool = True
    subjects: tuple[str, ...] = DEFAULT_SUBJECTS
    strict_extensions: bool = True
    faults: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None  # seeds the processing-delay RNG (faults carry their own seed)

    def __post_init__(self) -> None:
        ids = [c.client_id for c in self.clients]
        if len(set(ids)) != len(ids):
            raise ValueError("client ids must be unique")
        if self.token_ttl_s < 0 or self.processing_delay.low < 0:
            raise ValueError("token_ttl_s and processing_delay must be >= 0")
        if self.max_events_per_request < 1:
            raise ValueError("max_events_per_request must be >= 1")

    def with_clients(self, *extra: Client) -> SandboxConfig:
        """This config plus ``extra`` clients (the built-in ones stay)."""
        return replace(self, clients=(*self.clients, *extra))

    @property
    def iri(self) -> str:
        return self.iri_base.rstrip("/")


PRESETS: Final[dict[str, dict[str, Any]]] = {
    # The documented 30-120 s between the 202 and the XP being visible.
    "production": {"processing_delay": Delay(30.0, 120.0)},
}


def preset(name: str, **overrides: Any) -> SandboxConfig:
    """A named preset (``production``) with ``overrides`` on top."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; one of {sorted(PRESETS)}")
    return SandboxConfig(**{**PRESETS[name], **overrides})
