"""A stand-in Schema Registry over real HTTP on a loopback port, for the ``relay run`` tests.

Why a stand-in and not a real registry: none can be installed on these machines. Apicurio
Registry's app (io.apicurio:apicurio-registry-app 3.3.3, 3.0.9, 2.6.x, 2.4.2) needs modules and
third-party jars that the Maven mirror here does not serve (apicurio-registry-schema-util-provider
and most 3.3.3 modules, the 3.0.9 parent POM, org.everit.json.schema); Karapace is not on PyPI; the
Go registries (axonops, conduit) are refused by the module proxy. So this serves the two calls of
the Confluent REST API that producers and the relay make, with the real confluent-kafka clients on
the other end: ``POST /subjects/{subject}/versions`` (register, one id per distinct schema) and
``GET /schemas/ids/{id}`` (404 with error code 40403 for an unknown id). It checks no
compatibility: schema evolution under BACKWARD needs the real server. ``stop()`` and ``start()``
on the same port are a registry outage. With ``certificate`` it serves https, with ``client_ca``
it requires a client certificate signed by that CA (mTLS), with ``user_info`` that basic auth
(401, error code 40101, otherwise), as a production registry does.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.conftest import free_port

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
_REGISTER = re.compile(r"^/subjects/([^/]+)/versions$")
_BY_ID = re.compile(r"^/schemas/ids/(\d+)$")


class RegistryStandIn:
    def __init__(
        self,
        *,
        certificate: tuple[Path, Path] | None = None,
        client_ca: Path | None = None,
        user_info: str | None = None,
    ) -> None:
        self.port = free_port()
        self.certificate = certificate  # (certificate chain PEM, private key PEM)
        self.client_ca = client_ca
        self.url = f"{'https' if certificate else 'http'}://127.0.0.1:{self.port}"
        self.authorization = (
            "Basic " + base64.b64encode(user_info.encode()).decode() if user_info else None
        )
        self.refused = 0  # requests without the right credentials
        self._ids: dict[str, int] = {}  # schema text -> id
        self._subjects: dict[str, list[int]] = {}
        self.fetched: list[int] = []  # ids asked for by GET /schemas/ids/{id}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> RegistryStandIn:
        assert self._server is None, "already running"
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        server.daemon_threads = True
        if self.certificate is not None:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(*self.certificate)
            if self.client_ca is not None:
                tls.verify_mode = ssl.CERT_REQUIRED
                tls.load_verify_locations(self.client_ca)
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server
        return self

    def stop(self) -> None:
        """Down: the port refuses connections until ``start()``; what was registered stays."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- the API -------------------------------------------------------------------------------

    def register(self, subject: str, schema: str) -> int:
        with self._lock:
            schema_id = self._ids.setdefault(schema, len(self._ids) + 1)
            versions = self._subjects.setdefault(subject, [])
            if schema_id not in versions:
                versions.append(schema_id)
            return schema_id

    def schema(self, schema_id: int) -> str | None:
        with self._lock:
            self.fetched.append(schema_id)
            return next((text for text, i in self._ids.items() if i == schema_id), None)

    def versions(self, subject: str) -> list[int]:
        with self._lock:
            return list(self._subjects.get(subject, []))


def _handler(registry: RegistryStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if not self._authorized():
                return
            match = _REGISTER.match(self.path.split("?")[0])
            if match is None:
                self._answer(404, {"error_code": 404, "message": "not found"})
                return
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            schema_id = registry.register(match.group(1), body["schema"])
            self._answer(200, {"id": schema_id})

        def do_GET(self) -> None:
            if not self._authorized():
                return
            match = _BY_ID.match(self.path.split("?")[0])
            text = registry.schema(int(match.group(1))) if match else None
            if text is None:
                self._answer(404, {"error_code": 40403, "message": "Schema not found"})
                return
            self._answer(200, {"schema": text})

        def _authorized(self) -> bool:
            wanted = registry.authorization
            if wanted is None or self.headers.get("Authorization") == wanted:
                return True
            registry.refused += 1
            self._answer(401, {"error_code": 40101, "message": "Unauthorized"})
            return False

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: pytest shows failures, not every request

    return Handler
