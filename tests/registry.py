"""The real Schema Registry of deploy/local/registry (Apicurio Registry 2.3.1, Confluent API at
/apis/ccompat/v6), for the tests that need one.

    schema_registry.url                 # session-wide, started on a free port when first asked for
    schema_registry.client()            # a confluent-kafka SchemaRegistryClient on it
    schema_registry.compatibility("s", "BACKWARD")
    own = registry_factory()            # a private one, for trials that stop or restart it
    own.stop(); own.start()             # an outage (file storage: the schemas are kept)
    own.reset(); own.start()            # restarted empty: every schema and id forgotten

Every instance runs through registry-local.sh in a temporary run directory and is stopped at the
end of its scope (no process left). The build is cached (``make registry-fetch``, which ``make
test`` runs first, so a cold Maven resolve never meets a pytest timeout).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from bench.ports import free_port
from tests.conftest import ROOT

REGISTRY_SCRIPT = ROOT / "deploy" / "local" / "registry" / "registry-local.sh"
CCOMPAT = "/apis/ccompat/v6"
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
_REQUEST = re.compile(r'apicurio-registry\.access method="\w+" path="([^"]+)"')


class Registry:
    """One Apicurio Registry process of registry-local.sh (in-memory storage)."""

    def __init__(self, run_dir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = self.base + CCOMPAT  # what RELAY_SCHEMA_REGISTRY_URL and producers get
        self.env = dict(os.environ, REGISTRY_PORT=str(self.port), REGISTRY_RUN_DIR=str(run_dir))
        self.log = run_dir / "registry.log"

    def script(self, command: str, timeout: float = 900) -> None:
        # The first run on a fresh machine builds the registry (Maven Central, minutes).
        subprocess.run([str(REGISTRY_SCRIPT), command], env=self.env, check=True, timeout=timeout)

    def start(self) -> Registry:
        self.script("start")
        return self

    def stop(self) -> None:
        """Stopped: the port refuses connections; the schemas stay in its file storage."""
        self.script("stop", timeout=120)

    def reset(self) -> None:
        """Stopped and its storage wiped: started again, it is empty (ids start at 1 again)."""
        self.script("reset", timeout=120)

    def client(self, **config: Any) -> SchemaRegistryClient:
        return SchemaRegistryClient({"url": self.url, **config})

    def compatibility(self, subject: str, level: str) -> None:
        """Set a subject's compatibility rule (PUT /config/{subject}, as Confluent's API)."""
        reply = httpx.put(
            f"{self.url}/config/{subject}",
            json={"compatibility": level},
            headers={"Content-Type": CONTENT_TYPE},
        )
        reply.raise_for_status()

    def versions(self, subject: str) -> list[int]:
        """The schema ids registered under ``subject``, oldest first."""
        reply = httpx.get(f"{self.url}/subjects/{subject}/versions")
        if reply.status_code == 404:
            return []
        reply.raise_for_status()
        return [
            int(httpx.get(f"{self.url}/subjects/{subject}/versions/{v}").json()["id"])
            for v in reply.json()
        ]

    def requests_for(self, path_part: str) -> int:
        """How many requests whose path contains ``path_part`` the registry has answered (its
        access log, a line per request): what clients asked of the real server."""
        if not self.log.exists():
            return 0
        paths = _REQUEST.findall(self.log.read_text(errors="replace"))
        return sum(1 for path in paths if path_part in path)


RegistryFactory = Callable[[], Registry]


@pytest.fixture(scope="session")
def schema_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    registry = Registry(tmp_path_factory.mktemp("registry")).start()
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture
def registry_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryFactory]:
    """Private registries for one test (stopped after it): for outages and restarts, which the
    session registry must not see."""
    started: list[Registry] = []

    def start() -> Registry:
        registry = Registry(tmp_path_factory.mktemp("registry-own")).start()
        started.append(registry)
        return registry

    yield start
    for registry in started:
        registry.stop()
