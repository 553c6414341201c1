"""Settings: every knob of the relay, from ``RELAY_*`` environment variables (and ``.env``).

One ``Settings`` object, validated at start. Errors name the variable (``RELAY_MAX_IN_FLIGHT:
must be >= 1``). Secrets are ``SecretStr`` so they never print by accident. The names in the
table of docs/configuration.md are a contract: they may be added to, never renamed.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from relay.errors import ConfigError
from relay.logs import redact

PRODUCTION_BASE_URL = "https://api.alpha-1edtech.ai"
# The subject enum of the Partner API (docs/partner-api.md#events); `Other` comes by configuration.
DEFAULT_SUBJECTS = (
    "Reading",
    "Language",
    "Vocabulary",
    "Social Studies",
    "Writing",
    "Science",
    "FastMath",
    "Math",
    "None",
)
# Fixed so every replica and every replay derives the same event ids.
DEFAULT_ID_NAMESPACE = uuid.UUID("6f1d2c3a-8b4e-5f60-9a7b-c8d9e0f1a2b3")
# RELAY_MAX_PENDING's default, in multiples of RELAY_MAX_IN_FLIGHT (documented as "4 x")
PENDING_PER_SLOT = 4

CsvList = Annotated[tuple[str, ...], NoDecode]


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class Settings(BaseSettings):
    """Every setting of the relay. Field ``x`` is read from ``RELAY_X``."""

    model_config = SettingsConfigDict(
        env_prefix="RELAY_", env_file=".env", extra="ignore", frozen=True, populate_by_name=True
    )

    # Kafka
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism when the protocol is SASL_* (OAUTHBEARER: not supported)"
    )
    kafka_sasl_username: str | None = Field(None, description="SASL username")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (secret)")
    kafka_ssl_ca_file: Path | None = Field(None, description="CA bundle for SSL / SASL_SSL")
    kafka_ssl_cert_file: Path | None = Field(
        None, description="client certificate (PEM, chain allowed) for mutual TLS"
    )
    kafka_ssl_key_file: Path | None = Field(
        None, description="private key (PEM) of RELAY_KAFKA_SSL_CERT_FILE"
    )
    kafka_ssl_key_password: SecretStr | None = Field(
        None, description="password of an encrypted RELAY_KAFKA_SSL_KEY_FILE (secret)"
    )
    topics: CsvList = Field(("timeback.activity",), description="comma-separated input topics")
    group_id: str = Field("timeback-relay", description="consumer group (and faust app id)")
    group_instance_id: str | None = Field(
        None, description="static group membership id (the pod name on Kubernetes)"
    )
    # A SIGKILLed member holds its partitions until its session expires, so the session bounds
    # how long delivery stops after a crash; too short, and a stalled event loop (the heartbeat
    # runs on it) is taken for a dead member. Kafka's clients: 45 s / 3 s (KIP-735), faust 60 s.
    kafka_session_timeout: float = Field(
        10.0,
        ge=6,
        le=1800,
        description="consumer group session timeout in seconds: how long a crashed member holds "
        "its partitions (the broker's group.min/max.session.timeout.ms bound it: 6 s to 30 min)",
    )
    kafka_heartbeat_interval: float | None = Field(
        None,
        gt=0,
        description="seconds between group heartbeats; live members notice a rebalance at the "
        "next one (default a tenth of the session timeout)",
    )
    kafka_rebalance_timeout: float = Field(
        30.0,
        gt=0,
        description="seconds a rebalance waits for every live member to rejoin (a member still "
        "revoking after that is dropped from the group)",
    )
    kafka_login_grace: float = Field(
        60.0,
        ge=0,
        description="seconds a relay whose Kafka login is refused stays up, not ready and "
        "retrying, before it exits 1 so that a restart reads a rotated secret (0: never exits)",
    )
    dlq_topic: str = Field("timeback.activity.dlq", description="dead-letter topic")
    quarantine_after: int = Field(
        3,
        ge=0,
        description="restarts a record may cause with a processing bug before it is "
        "dead-lettered as relay/processing-bug (0: never, the partition stays blocked)",
    )
    quarantine_topic: str | None = Field(
        None,
        description="compacted topic counting processing bugs per record across restarts "
        "(default <RELAY_DLQ_TOPIC>.strikes; created when missing)",
    )
    schema_registry_url: str | None = Field(
        None,
        description="Schema Registry for Confluent-framed records (https; user:pass@ in it is "
        "used as basic auth and never shown)",
        repr=False,  # it may carry a password; model_dump masks it (below)
    )
    schema_registry_user_info: SecretStr | None = Field(
        None, description="Schema Registry basic auth as user:password (secret)"
    )
    schema_registry_ca_file: Path | None = Field(
        None, description="CA bundle for an https Schema Registry"
    )
    schema_registry_cert_file: Path | None = Field(
        None, description="client certificate (PEM) for a Schema Registry that wants mTLS"
    )
    schema_registry_key_file: Path | None = Field(
        None, description="private key (PEM) of RELAY_SCHEMA_REGISTRY_CERT_FILE"
    )

    # Partner API
    api_base_url: str = Field(PRODUCTION_BASE_URL, description="Partner API base URL")
    token_url: str | None = Field(
        None, description="token endpoint (default {RELAY_API_BASE_URL}/auth/1.0/token)"
    )
    client_id: str | None = Field(None, description="OAuth2 client id (required to deliver)")
    client_secret: SecretStr | None = Field(
        None, description="OAuth2 client secret (required to deliver; secret)"
    )
    auth_method: Literal["basic", "body"] = Field(
        "basic", description="how credentials reach the token endpoint"
    )
    scope: str | None = Field(None, description="space-separated scopes to request (default all)")
    app_id: str | None = Field(
        None, description="the app's sourcedId or its full edApp IRI (required)"
    )
    iri_base: str = Field(
        PRODUCTION_BASE_URL,
        description="base of user, course and app IRIs in events (production's host everywhere)",
    )
    activity_base_url: str | None = Field(
        None, description="base IRI for activity ids that are not IRIs"
    )
    id_namespace: uuid.UUID = Field(
        DEFAULT_ID_NAMESPACE, description="namespace of the deterministic event ids"
    )
    course_map: Path | None = Field(None, description="course map YAML file")
    subjects: CsvList = Field(DEFAULT_SUBJECTS, description="allowed subjects, comma-separated")
    preflight: Literal["off", "course", "course+student"] = Field(
        "off", description="pre-flight checks before sending graded events"
    )
    course_cache_ttl: float = Field(
        300.0, gt=0, description="seconds a rostering course lookup is cached"
    )

    # Contract
    schema_dir: Path | None = Field(
        None,
        description="directory of the Avro schemas (default: the source tree's schemas/activity)",
    )
    allow_negative_xp: bool = Field(False, description="accept negative xp (corrections)")
    max_clock_skew: float = Field(
        300.0, ge=0, description="seconds occurred_at may lie in the future"
    )
    max_field_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        description="UTF-8 bytes of any one string field of a record; a longer one is "
        "dead-lettered as validate/field-too-long (must be under RELAY_MAX_PENDING_BYTES)",
    )

    # Delivery
    max_in_flight: int = Field(
        64,
        ge=1,
        le=10000,
        description="API requests in flight (the connection pool); records processed at once: "
        "max_in_flight x events_per_request",
    )
    max_pending: int | None = Field(
        None,
        ge=1,
        le=100000,
        description="records read and not yet acknowledged per process "
        "(default 4 x max_in_flight x events_per_request)",
    )
    max_pending_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024 * 1024,
        description="bytes (keys and values) of the records read and not yet acknowledged per "
        "process: reading pauses above it, whatever the record size",
    )
    events_per_request: int = Field(
        1,
        ge=1,
        le=1000,
        description="events per POST: above 1, events of different records share one Caliper "
        "envelope (opt in: the Partner API documents one event per POST); a refused envelope is "
        "split until the bad event is alone, so no good event is dead-lettered",
    )
    batch_linger: float = Field(
        0.005,
        ge=0,
        le=10,
        description="seconds an envelope that is not full waits for more events (with "
        "events_per_request above 1; 0: sent as soon as the loop is idle)",
    )
    http_timeout: float = Field(10.0, gt=0, description="seconds per HTTP request")
    http_deadline: float | None = Field(
        None,
        gt=0,
        description="total seconds per HTTP request, reply body included, however it trickles "
        "(default 3 x http_timeout); past it the request is a transient timeout",
    )
    events_wire: Literal["lean", "aiohttp"] = Field(
        "lean",
        description="how events are POSTed: lean (the relay's own keep-alive HTTP/1.1 "
        "connections) or aiohttp (the general HTTP client; always used behind a proxy)",
    )
    retry_base: float = Field(0.5, gt=0, description="backoff base (seconds)")
    retry_cap: float = Field(30.0, gt=0, description="backoff cap (seconds)")
    retry_budget: float = Field(900.0, gt=0, description="per-record retry budget (seconds)")
    retry_after_cap: float = Field(300.0, gt=0, description="longest Retry-After honoured (s)")
    stall_after: float = Field(
        300.0,
        gt=0,
        description="seconds without an acknowledgement (nor a record spending its retry budget) "
        "while the consumer lags after which /livez fails and the orchestrator restarts the relay",
    )
    circuit_failures: int = Field(
        5, ge=1, description="consecutive transient failures that open the circuit"
    )
    circuit_open_for: float = Field(
        2.5, gt=0, description="seconds the circuit stays open before a probe"
    )
    circuit_max_open_for: float = Field(
        5.0,
        gt=0,
        description="longest open period as failed probes lengthen it (seconds); it bounds how "
        "late deliveries resume after the API comes back (one probe per period is no load)",
    )
    max_requests_per_second: float | None = Field(
        None,
        gt=0,
        description="API requests per second per process (events and envelopes, retries "
        "included; token and rostering calls not counted); unset: no rate limit. Several "
        "replicas: total = replicas x this",
    )
    max_requests_burst: int | None = Field(
        None,
        ge=1,
        description="requests the rate limiter lets start at once after a quiet spell "
        "(default: one second's worth of RELAY_MAX_REQUESTS_PER_SECOND)",
    )
    concurrency: Literal["fixed", "adaptive"] = Field(
        "fixed",
        description="API requests in flight: fixed at RELAY_MAX_IN_FLIGHT, or adaptive (AIMD "
        "between 1 and RELAY_MAX_IN_FLIGHT on the API's round-trip time and 429/503s)",
    )
    brownout_rate: float = Field(
        0.2,
        gt=0,
        le=1,
        description="share of event POSTs failing transiently (over brownout_window) at which "
        "the API counts as unhealthy: retry budgets pause, as while the circuit is open",
    )
    brownout_window: float = Field(
        30.0, gt=0, description="seconds of event POSTs the brownout_rate is taken over"
    )

    # Runtime
    web_port: int = Field(6066, ge=0, le=65535, description="/metrics, /livez, /readyz port")
    web_host: str = Field("0.0.0.0", description="address the web views bind")
    faust_metrics: bool = Field(
        True,
        description="export faust's own sensor as faust_* metrics (messages, commits, "
        "rebalances); its per-message counts are added up at each scrape, so false saves little "
        "(docs/faust-path.md)",
    )
    shutdown_grace: float = Field(25.0, ge=0, description="seconds to drain on SIGTERM")
    allow_insecure_http: bool = Field(
        False, description="allow an http:// API base and Schema Registry (local ones)"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="log level; logs are JSON lines"
    )

    _split = field_validator("topics", "subjects", mode="before")(_split_csv)

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any, info: ValidationInfo) -> Any:
        # `RELAY_COURSE_MAP=` in a .env or a manifest means "not set", not Path(".").
        if value == "" and cls.model_fields[info.field_name or ""].default is None:
            return None
        return value

    @field_validator("concurrency", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("log_level", "kafka_security_protocol", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("api_base_url", "iri_base", "activity_base_url", "token_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        for name in ("api_base_url", "token_url"):
            url = getattr(self, name)
            if url and not url.startswith("https://") and not self.allow_insecure_http:
                raise ValueError(
                    f"RELAY_{name.upper()}: must be https:// "
                    "(set RELAY_ALLOW_INSECURE_HTTP=true for a local sandbox)"
                )
        self._check_registry()
        if self.heartbeat_interval >= self.kafka_session_timeout / 2:
            raise ValueError(
                "RELAY_KAFKA_HEARTBEAT_INTERVAL: must be under half of RELAY_KAFKA_SESSION_TIMEOUT "
                "(a member missing one heartbeat would lose its partitions)"
            )
        if self.max_pending is not None and self.max_pending < self.records_in_flight:
            raise ValueError(
                "RELAY_MAX_PENDING: must be at least RELAY_MAX_IN_FLIGHT"
                + (" x RELAY_EVENTS_PER_REQUEST" if self.events_per_request > 1 else "")
            )
        if self.max_field_bytes >= self.max_pending_bytes:
            raise ValueError(
                "RELAY_MAX_FIELD_BYTES: must be under RELAY_MAX_PENDING_BYTES (a record holding "
                "one such field would fill the window on its own)"
            )
        if self.max_requests_burst is not None and self.max_requests_per_second is None:
            raise ValueError(
                "RELAY_MAX_REQUESTS_BURST: set without RELAY_MAX_REQUESTS_PER_SECOND (the burst "
                "of a rate limit that is not set)"
            )
        if not self.topics:
            raise ValueError("RELAY_TOPICS: at least one topic is required")
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                "RELAY_KAFKA_SASL_MECHANISM, RELAY_KAFKA_SASL_USERNAME and "
                "RELAY_KAFKA_SASL_PASSWORD are required with a SASL security protocol"
            )
        self._check_client_certificate()
        return self

    @field_serializer("schema_registry_url")
    def _mask_user_info(self, value: str | None) -> str | None:
        return redact(value) if value else value

    def _check_registry(self) -> None:
        # Messages name the variable, never its value: the URL may carry a password.
        urls = [u.strip() for u in (self.schema_registry_url or "").split(",") if u.strip()]
        if not self.allow_insecure_http and any(not u.startswith("https://") for u in urls):
            raise ValueError(
                "RELAY_SCHEMA_REGISTRY_URL: must be https:// "
                "(set RELAY_ALLOW_INSECURE_HTTP=true for a local registry)"
            )
        if self.schema_registry_key_file and not self.schema_registry_cert_file:
            raise ValueError(
                "RELAY_SCHEMA_REGISTRY_KEY_FILE: needs RELAY_SCHEMA_REGISTRY_CERT_FILE as well"
            )
        user_info = self.schema_registry_user_info
        if user_info is not None and ":" not in user_info.get_secret_value():
            raise ValueError("RELAY_SCHEMA_REGISTRY_USER_INFO: must be user:password")
        if user_info is not None and any("@" in urlsplit(u).netloc for u in urls):
            raise ValueError(
                "RELAY_SCHEMA_REGISTRY_USER_INFO: set it or user:pass@ in "
                "RELAY_SCHEMA_REGISTRY_URL, not both"
            )

    def _check_client_certificate(self) -> None:
        cert, key = self.kafka_ssl_cert_file, self.kafka_ssl_key_file
        if (cert is None) != (key is None):
            raise ValueError(
                "RELAY_KAFKA_SSL_CERT_FILE and RELAY_KAFKA_SSL_KEY_FILE: set both or neither"
            )
        if cert is None and self.kafka_ssl_key_password is not None:
            raise ValueError("RELAY_KAFKA_SSL_KEY_PASSWORD: set without RELAY_KAFKA_SSL_KEY_FILE")
        if cert is not None and not self.kafka_security_protocol.endswith("SSL"):
            raise ValueError(
                "RELAY_KAFKA_SSL_CERT_FILE: a client certificate needs "
                "RELAY_KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL"
            )
        for name in ("kafka_ssl_ca_file", "kafka_ssl_cert_file", "kafka_ssl_key_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"RELAY_{name.upper()}: {path} is not a readable file")

    @property
    def strike_topic(self) -> str:
        """RELAY_QUARANTINE_TOPIC, or ``<RELAY_DLQ_TOPIC>.strikes``."""
        return self.quarantine_topic or f"{self.dlq_topic}.strikes"

    @property
    def records_in_flight(self) -> int:
        """Records processed at once: RELAY_MAX_IN_FLIGHT requests, each carrying up to
        RELAY_EVENTS_PER_REQUEST events, so batching can raise throughput when the API is slow."""
        return self.max_in_flight * self.events_per_request

    @property
    def pending_limit(self) -> int:
        """RELAY_MAX_PENDING, or its default of PENDING_PER_SLOT x the records in flight."""
        return self.max_pending or self.records_in_flight * PENDING_PER_SLOT

    @property
    def heartbeat_interval(self) -> float:
        """RELAY_KAFKA_HEARTBEAT_INTERVAL, or a tenth of the session timeout."""
        return self.kafka_heartbeat_interval or self.kafka_session_timeout / 10

    @property
    def effective_token_url(self) -> str:
        """RELAY_TOKEN_URL, or its default (``default_token_url``)."""
        return self.token_url or default_token_url(self.api_base_url)

    def require(self, *names: str) -> None:
        """Fail with a ConfigError naming every missing ``RELAY_*`` variable among ``names``."""
        missing = [f"RELAY_{n.upper()}" for n in names if getattr(self, n) in (None, "")]
        if missing:
            raise ConfigError(f"{', '.join(missing)}: required but not set")

    def secret(
        self, name: Literal["client_secret", "kafka_sasl_password", "kafka_ssl_key_password"]
    ) -> str:
        value: SecretStr | None = getattr(self, name)
        if value is None:
            raise ConfigError(f"RELAY_{name.upper()}: required but not set")
        return value.get_secret_value()


def default_token_url(api_base_url: str) -> str:
    """RELAY_TOKEN_URL's default: the API's own token endpoint."""
    return f"{api_base_url.rstrip('/')}/auth/1.0/token"


def default_deadline(http_timeout: float) -> float:
    """RELAY_HTTP_DEADLINE's default: three HTTP timeouts for a whole request, reply included."""
    return 3 * http_timeout


def load_settings(**overrides: Any) -> Settings:
    """Build Settings from the environment (plus overrides); ConfigError names each bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        lines.append(message if not field else f"RELAY_{field.upper()}: {message}")
    return "invalid configuration: " + "; ".join(lines)
