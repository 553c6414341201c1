"""The Schema Registry part of ``relay check``: reachable, credentials accepted, and which of the
relay's record types producers have registered (under any of Confluent's naming strategies).

A refusal is a ``RegistryProblem`` whose message names the variable to fix. Subjects missing are
not a failure (producers register on their first send) but are listed with a hint: when producers
did register, the relay is looking at another registry than theirs.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from relay.contract.activity import NAMESPACE, RECORD_TYPES
from relay.contract.registry import client_config, split_user_info

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient

    from relay.config import Settings

URL_VARIABLE = "RELAY_SCHEMA_REGISTRY_URL"
T = TypeVar("T")


class RegistryProblem(Exception):
    """The registry cannot serve the relay; the message says what to fix."""


@dataclass
class RegistryReport:
    url: str  # without user info
    subjects: dict[str, list[str]] = field(default_factory=dict)  # record type -> its subjects
    missing: list[str] = field(default_factory=list)  # record types no subject holds

    def lines(self) -> list[str]:
        found = ", ".join(f"{name.rsplit('.', 1)[-1]} ({', '.join(subjects)})"
                          for name, subjects in sorted(self.subjects.items()))  # fmt: skip
        out = [f"{self.url}: reachable, credentials accepted"]
        if found:
            out.append(f"subjects: {found}")
        if self.missing:
            short = ", ".join(name.rsplit(".", 1)[-1] for name in self.missing)
            out.append(
                f"no subject yet for {short}: producers register on their first send; if they "
                f"already did, {URL_VARIABLE} points at another registry than theirs"
            )
        return out


def registry_report(settings: Settings, timeout: float = 10.0) -> RegistryReport | None:
    """The report, None when no registry is configured; raises RegistryProblem."""
    if not settings.schema_registry_url:
        return None
    from confluent_kafka.schema_registry import SchemaRegistryClient

    config = client_config(settings) | {"timeout": timeout, "max.retries": 0}
    url = split_user_info(settings.schema_registry_url)[0]
    client = SchemaRegistryClient(config)
    subjects = _call(client.get_subjects, url)
    report = RegistryReport(url)
    holders = _record_names_of(client, subjects, settings.topics, url)
    for name in RECORD_TYPES:
        found = sorted(s for s, records in holders.items() if name in records)
        if found:
            report.subjects[name] = found
        else:
            report.missing.append(name)
    return report


def _record_names_of(
    client: SchemaRegistryClient, subjects: list[str], topics: Sequence[str], url: str
) -> dict[str, set[str]]:
    """Subject -> the record names its versions hold, for the subjects of the relay's naming
    strategies: record (<full name>), topic (<topic>-value) and topic-record (<topic>-<name>)."""
    holders: dict[str, set[str]] = {}
    for subject in subjects:
        by_topic = any(subject.startswith(f"{topic}-") for topic in topics)
        if not by_topic and not subject.startswith(f"{NAMESPACE}."):
            continue
        names: set[str] = set()
        for version in _call(functools.partial(client.get_versions, subject), url):
            registered = _call(functools.partial(client.get_version, subject, version), url)
            names.add(_full_name(registered.schema.schema_str))
        holders[subject] = names
    return holders


def _full_name(schema_str: str | None) -> str:
    try:
        schema: Any = json.loads(schema_str or "")
    except ValueError:
        return ""
    if not isinstance(schema, dict):
        return ""
    name, namespace = str(schema.get("name", "")), schema.get("namespace")
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _call(request: Callable[[], T], url: str) -> T:
    """``request()``, its failure turned into what to fix."""
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    try:
        return request()
    except SchemaRegistryError as exc:
        raise _refused(exc.http_status_code, exc.error_message, url) from None
    except Exception as exc:  # the HTTP library's and the socket's errors: no usable answer
        detail = f"{type(exc).__name__}: {exc}"
        if "CERTIFICATE_VERIFY_FAILED" in detail or "SSL" in detail:
            fix = "RELAY_SCHEMA_REGISTRY_CA_FILE (the CA that signed the registry's certificate)"
        else:
            fix = f"{URL_VARIABLE} (is the registry running and reachable from here?)"
        raise RegistryProblem(f"{url} unreachable: {detail}\n  fix: {fix}") from None


def _refused(status: int, message: str, url: str) -> RegistryProblem:
    if status in (401, 403):
        return RegistryProblem(
            f"{url} refused the credentials (HTTP {status}: {message})\n"
            "  fix: RELAY_SCHEMA_REGISTRY_USER_INFO (user:password), or the user info in "
            f"{URL_VARIABLE}"
        )
    if status == 404:
        return RegistryProblem(
            f"{url} answered HTTP 404: not the base of a Confluent Schema Registry API\n"
            f"  fix: {URL_VARIABLE} (Apicurio Registry: https://host/apis/ccompat/v6)"
        )
    return RegistryProblem(
        f"{url} answered HTTP {status}: {message}\n  fix: the registry itself (its logs)"
    )
