"""``POST /auth/1.0/token`` (client credentials) and the bearer check of every other endpoint.

Credentials come either in a Basic header or as ``client_id``/``client_secret`` in the body, and
the body is a form or JSON; ``grant_type=client_credentials`` is required. A requested ``scope``
must be a subset of the client's (else 400 ``invalid_scope``); without one the client gets all of
its scopes. Errors follow RFC 6749/6750: 401 ``invalid_client``, 401 ``invalid_token``, 403
``insufficient_scope`` naming the scope needed.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

from aiohttp import web

from relay.sandbox.config import Client
from relay.sandbox.responses import ApiError, json_response, read_json
from relay.sandbox.state import SANDBOX
from relay.sandbox.tokens import Claims

FORM = "application/x-www-form-urlencoded"


async def token(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX]
    params = await _token_params(request)
    basic = _basic_credentials(request)
    if basic is not None and "client_secret" in params:
        raise ApiError(400, "invalid_request", "use one client authentication method, not two")
    grant = params.get("grant_type")
    if grant is None:
        raise ApiError(400, "invalid_request", "grant_type is required")
    if grant != "client_credentials":
        raise ApiError(400, "unsupported_grant_type", "only client_credentials is supported")
    client_id, secret = basic or (params.get("client_id"), params.get("client_secret"))
    client = _authenticate(sandbox.clients, client_id, secret, basic is not None)
    scopes = _granted_scopes(client, params.get("scope"))
    ttl = sandbox.token_ttl()
    access_token = sandbox.signer.issue(client.client_id, client.app_id, scopes, ttl)
    body = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
        "scope": " ".join(scopes),
    }
    return json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


async def _token_params(request: web.Request) -> dict[str, Any]:
    if request.content_type == FORM:
        form = await request.post()
        return {k: v for k, v in form.items() if isinstance(v, str)}
    if request.content_type == "application/json" or request.content_type.endswith("+json"):
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_request", "the JSON body must be an object")
        return body
    if await request.read():
        raise ApiError(400, "invalid_request", f"send the parameters as {FORM} or application/json")
    return {}


def _basic_credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise ApiError(401, "invalid_client", "the token endpoint takes Basic credentials")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise _invalid_client(True, "malformed Basic credentials") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise _invalid_client(True, "malformed Basic credentials")
    return client_id, secret


def _authenticate(clients: dict[str, Client], client_id: Any, secret: Any, basic: bool) -> Client:
    if not isinstance(client_id, str) or not isinstance(secret, str):
        raise _invalid_client(basic, "client credentials are required")
    client = clients.get(client_id)
    # compare even for an unknown id, so the answer takes as long either way
    expected = client.client_secret if client else "\0"
    if not hmac.compare_digest(secret.encode(), expected.encode()) or client is None:
        raise _invalid_client(basic, "unknown client or wrong secret")
    return client


def _invalid_client(basic: bool, message: str) -> ApiError:
    headers = {"WWW-Authenticate": 'Basic realm="timeback"'} if basic else None
    return ApiError(401, "invalid_client", message, headers=headers)


def _granted_scopes(client: Client, requested: Any) -> list[str]:
    if requested is None or requested == "":
        return list(client.scopes)
    if not isinstance(requested, str):
        raise ApiError(400, "invalid_scope", "scope must be a space-separated string")
    wanted = requested.split()
    refused = [s for s in wanted if s not in client.scopes]
    if refused:
        raise ApiError(400, "invalid_scope", f"not granted to this client: {' '.join(refused)}")
    return list(dict.fromkeys(wanted))


def authorize(request: web.Request, scope: str) -> Claims:
    """The caller's claims, or 401 ``invalid_token`` / 403 ``insufficient_scope``."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    claims = (
        request.app[SANDBOX].signer.verify(value.strip()) if scheme.lower() == "bearer" else None
    )
    if claims is None:
        message = "a Bearer token is required" if not header else "the token is invalid or expired"
        raise ApiError(
            401,
            "invalid_token",
            message,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    if scope not in claims.scopes:
        raise ApiError(
            403,
            "insufficient_scope",
            f"this call needs the {scope} scope",
            scope=scope,
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
        )
    return claims
