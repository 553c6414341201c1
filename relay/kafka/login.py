"""Before faust starts: a Kafka login the brokers refuse keeps the relay up, not ready, saying so.

faust raises ``SaslAuthenticationFailed`` out of its bootstrap, and ``relay run`` would exit 1
within two seconds: a crash loop with nothing to scrape and nothing to read but a traceback. So
``await_login`` first logs in with confluent-kafka and the same settings. While the brokers refuse
the login (a wrong or rotated SASL password, an unknown CA, a refused client certificate):

- a small web server on RELAY_WEB_PORT answers /readyz 503 with the diagnosis (what happened and
  which ``RELAY_*`` setting fixes it), /livez 200 and /metrics (``kafka_auth_failures_total``);
- each refusal is logged with the diagnosis, never a secret (``relay.kafka.diagnosis.redact``);
- the login is retried every ``RETRY_EVERY`` seconds: a fix on the broker's side is picked up.

Secrets come from the environment, read at start only: after RELAY_KAFKA_LOGIN_GRACE seconds of
refusals the relay exits 1, so that the restart reads a rotated secret. A broker that does not
answer at all is not a refused login: faust starts and its own reconnects deal with it. A
PLAINTEXT connection has no login to refuse and skips all this.

The server is the standard library's, on a thread: faust owns the asyncio loop afterwards, and
the port is free again before faust binds it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from prometheus_client import generate_latest

from relay.config import Settings
from relay.kafka.diagnosis import UNREACHABLE, Diagnosis, KafkaLog, diagnose
from relay.kafka.settings import confluent_config
from relay.metrics import KAFKA_AUTH_FAILURES, READY, REGISTRY

log = logging.getLogger(__name__)

RETRY_EVERY: Final = 5.0  # seconds between login attempts while refused
ANSWER_WITHIN: Final = 5.0  # seconds a login may take before the brokers count as not answering


class LoginRefused(SystemExit):
    """The brokers refused the login for RELAY_KAFKA_LOGIN_GRACE seconds: exit 1, restart."""

    def __init__(self) -> None:
        super().__init__(1)


def await_login(settings: Settings) -> None:
    """Return once the brokers accept the login (or do not answer); raise ``LoginRefused``
    after the grace while they refuse it. Serves the not-ready views meanwhile."""
    if settings.kafka_security_protocol == "PLAINTEXT":
        return
    refused = try_login(settings)
    if refused is None:
        return
    server = _NotReady(settings)
    started = time.monotonic()
    try:
        while refused is not None:
            KAFKA_AUTH_FAILURES.inc()
            server.why = refused
            log.error("Kafka login refused, the relay is not ready: %s", refused)
            waited = time.monotonic() - started
            if settings.kafka_login_grace and waited >= settings.kafka_login_grace:
                log.critical(
                    "Kafka login refused for %.0f s: exiting so that a restart reads the "
                    "current secret (RELAY_KAFKA_LOGIN_GRACE)",
                    waited,
                )
                raise LoginRefused()
            time.sleep(RETRY_EVERY)
            refused = try_login(settings)
        log.info("Kafka accepted the login; starting")
    finally:
        server.close()


def try_login(settings: Settings) -> Diagnosis | None:
    """The diagnosis of a refused login; None once the brokers answer, or when they do not
    answer within ``ANSWER_WITHIN`` (unreachable is faust's to retry, not a refusal)."""
    kafka_log = KafkaLog()
    admin = AdminClient(confluent_config(settings) | {"logger": kafka_log.logger})
    deadline = time.monotonic() + ANSWER_WITHIN
    while True:
        try:
            admin.list_topics(timeout=1.0)
            return None
        except KafkaException as exc:
            admin.poll(0.2)  # librdkafka says why only in its log
            diagnosis = diagnose(settings, kafka_log.lines, str(exc))
            if diagnosis.fix != UNREACHABLE:
                return diagnosis
        if time.monotonic() >= deadline:
            return None


class _NotReady:
    """/readyz 503 (why), /livez 200, /metrics, on RELAY_WEB_HOST:RELAY_WEB_PORT."""

    def __init__(self, settings: Settings) -> None:
        self.why: Diagnosis | None = None
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # probes every few seconds: not worth a line each

        READY.set(0)
        self._server = ThreadingHTTPServer((settings.web_host, settings.web_port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="not-ready-web", daemon=True
        )
        self._thread.start()

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(request, 200, generate_latest(REGISTRY), "text/plain; version=0.0.4")
        elif path == "/livez":
            self._send(request, 200, json.dumps({"live": True}).encode(), "application/json")
        elif path == "/readyz":
            why = str(self.why) if self.why is not None else "Kafka login refused"
            body = {"ready": False, "kafka_login": False, "reasons": {"kafka_login": why}}
            self._send(request, 503, json.dumps(body).encode(), "application/json")
        else:
            self._send(request, 404, b"not found", "text/plain")

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, body: bytes, kind: str) -> None:
        request.send_response(status)
        request.send_header("Content-Type", kind)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2)
