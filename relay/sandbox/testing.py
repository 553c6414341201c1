"""A synchronous remote control of a running sandbox, for tests and tools.

    control = SandboxControl("http://127.0.0.1:8123")
    control.faults(error_rates={"503": 1.0}, paths=["/events/1.0"])
    with control.api() as http:             # an httpx.Client with sandbox-client's token
        http.post("/events/1.0", json=event)
    control.process(); control.event(event["id"])["fate"]

Every method is one HTTP call to ``/sandbox/1.0`` (or the token endpoint), so it works against a
sandbox in another thread or another process.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from relay.sandbox import seed
from relay.sandbox.config import BUILTIN_CLIENTS

INSPECT = "/sandbox/1.0"
WRAPPERS = {
    "users": "user",
    "courses": "course",
    "classes": "class",
    "enrollments": "enrollment",
    "orgs": "org",
}
# One TLS context for every client made here: building one per httpx.Client costs ~15 ms.
_TLS = ssl.create_default_context()
SECRETS = {c.client_id: c.client_secret for c in BUILTIN_CLIENTS}


class SandboxControl:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout, verify=_TLS)
        self.secrets = dict(SECRETS)  # client id -> secret, for token()

    def close(self) -> None:
        self._http.close()

    # --- inspection -----------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, f"{INSPECT}{path}", **kwargs)
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict[str, Any]:
        return dict(self._call("GET", "/stats"))

    def events(self, **filters: str) -> list[dict[str, Any]]:
        """Receipts, optionally filtered by ``fate``, ``type``, ``client_id``."""
        return list(self._call("GET", "/events", params=filters)["events"])

    def event(self, event_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/events/{event_id}"))

    def rejections(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/rejections")["rejections"])

    def process(self) -> int:
        """Process every pending event now; how many there were."""
        return int(self._call("POST", "/process")["processed"])

    def reset(self) -> None:
        """Forget roster, events and XP (faults stay; ``clear_faults`` clears them)."""
        self._call("POST", "/reset")

    def faults(self, spec: dict[str, Any] | None = None, **knobs: Any) -> dict[str, Any]:
        """Merge a fault spec (``spec`` and/or keyword knobs); returns what is now set."""
        return dict(self._call("POST", "/faults", json={**(spec or {}), **knobs}))

    def show_faults(self) -> dict[str, Any]:
        return dict(self._call("GET", "/faults"))

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def add_client(
        self, client_id: str, client_secret: str, app_id: str, scopes: list[str] | None = None
    ) -> None:
        body: dict[str, Any] = {
            "client_id": client_id,
            "client_secret": client_secret,
            "app_id": app_id,
        }
        if scopes is not None:
            body["scopes"] = scopes
        self._call("POST", "/clients", json=body)
        self.secrets[client_id] = client_secret

    def revoke_tokens(self) -> None:
        """Every token issued so far gets 401 invalid_token from now on."""
        self._call("POST", "/tokens/revoke")

    # --- the API as a client --------------------------------------------------------------

    def token(self, client_id: str = "sandbox-client", scope: str | None = None) -> str:
        data = {"grant_type": "client_credentials"}
        if scope is not None:
            data["scope"] = scope
        response = self._http.post(
            "/auth/1.0/token", data=data, auth=(client_id, self.secrets[client_id])
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def api(self, client_id: str = "sandbox-client", scope: str | None = None) -> httpx.Client:
        """An httpx.Client on the sandbox carrying ``client_id``'s bearer token."""
        token = self.token(client_id, scope)
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10.0,
            verify=_TLS,
        )

    def put(
        self, collection: str, record: dict[str, Any], client_id: str = "sandbox-client"
    ) -> httpx.Response:
        """PUT ``record`` (unwrapped) into ``collection`` as ``client_id``; the raw response."""
        with self.api(client_id) as http:
            return http.put(
                f"/rostering/1.0/{collection}/{record['sourcedId']}",
                json={WRAPPERS[collection]: record},
            )

    def setup_roster(
        self,
        student_id: str = "student-1",
        course_id: str = "course-1",
        client_id: str = "sandbox-client",
        *,
        enrol: bool = True,
        begin: str | None = None,
        end: str | None = None,
    ) -> dict[str, str]:
        """A test student, a course of ``client_id``'s app, a class and (``enrol``) an
        enrollment; returns their ids. Raises on any refusal."""
        ids = {"student": student_id, "course": course_id, "class": f"{course_id}-class"}
        records = [
            ("users", seed.student(student_id)),
            ("courses", seed.course(course_id)),
            ("classes", seed.klass(ids["class"], course_id)),
        ]
        if enrol:
            ids["enrollment"] = f"{course_id}-{student_id}"
            records.append(
                (
                    "enrollments",
                    seed.enrollment(ids["enrollment"], student_id, ids["class"], begin, end),
                )
            )
        for collection, record in records:
            self.put(collection, record, client_id).raise_for_status()
        return ids

    def __enter__(self) -> SandboxControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
