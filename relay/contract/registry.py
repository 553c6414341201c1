"""How the relay talks to a Schema Registry: the client configuration, and URLs safe to show.

``user:pass@`` in RELAY_SCHEMA_REGISTRY_URL is taken out of the URL before the client sees it and
handed over as ``basic.auth.user.info`` (as RELAY_SCHEMA_REGISTRY_USER_INFO is): the client builds
every request URL, and so every error of its HTTP library, from the bare URL, which therefore never
carries the password (relay.logs masks the user info of any URL in a log line besides).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from relay.errors import ConfigError

if TYPE_CHECKING:
    from relay.config import Settings


def client_config(settings: Settings) -> dict[str, Any]:
    """The configuration of confluent_kafka's (Async)SchemaRegistryClient for these settings."""
    if not settings.schema_registry_url:
        raise ConfigError("RELAY_SCHEMA_REGISTRY_URL: required but not set")
    urls, in_url = split_user_info(settings.schema_registry_url)
    config: dict[str, Any] = {"url": urls, "timeout": settings.http_timeout}
    secret = settings.schema_registry_user_info
    user_info = secret.get_secret_value() if secret is not None else in_url
    if user_info:
        config["basic.auth.user.info"] = user_info
    files = {
        "ssl.ca.location": ("CA_FILE", settings.schema_registry_ca_file),
        "ssl.certificate.location": ("CERT_FILE", settings.schema_registry_cert_file),
        "ssl.key.location": ("KEY_FILE", settings.schema_registry_key_file),
    }
    for option, (name, path) in files.items():
        if path is None:
            continue
        if not path.is_file():
            raise ConfigError(f"RELAY_SCHEMA_REGISTRY_{name}: {path} is not a readable file")
        config[option] = str(path)
    return config


def split_user_info(urls: str) -> tuple[str, str | None]:
    """``urls`` (comma-separated) without their ``user:pass@``, and the first such user info
    (percent-decoded, as ``user:password``)."""
    bare, found = [], None
    for url in (u.strip() for u in urls.split(",") if u.strip()):
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None:
            if found is None:
                found = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
            url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        bare.append(url)
    return ",".join(bare), found
