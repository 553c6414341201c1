"""``relay sandbox``: run the local Partner API emulator until interrupted.

A ``--fault`` SPEC is a JSON object (``'{"error_rates": {"503": 0.1}}'``), ``@file.json``, or
``key=value`` with a JSON value (``token_endpoint_down=reset``, ``seed=7``,
``latency_ms={"fixed": 50, "jitter": 100}``); several merge in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import orjson

from relay.sandbox.config import (
    ALL_SCOPES,
    BUILTIN_CLIENTS,
    PRESETS,
    Client,
    Delay,
    SandboxConfig,
    preset,
)
from relay.sandbox.faults import Faults


def parse_fault(spec: str) -> dict[str, Any]:
    """One ``--fault`` value as a fault spec dict; click.BadParameter when it is not one."""
    text = spec.strip()
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    if text.startswith("{"):
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise click.BadParameter("a fault spec must be a JSON object")
        return value
    key, sep, raw = text.partition("=")
    if not sep:
        raise click.BadParameter(f"expected JSON, @file or key=value, got {spec!r}")
    try:
        parsed: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parsed = raw  # a bare word: token_endpoint_down=reset
    return {key.strip(): parsed}


def parse_delay(text: str) -> Delay:
    low, sep, high = text.partition(",")
    try:
        return Delay(float(low), float(high) if sep else None)
    except ValueError:
        raise click.BadParameter(f"expected S or LOW,HIGH seconds, got {text!r}") from None


def parse_client(text: str) -> Client:
    """``ID:SECRET:APP[:scope,scope]``."""
    parts = text.split(":")
    if len(parts) not in (3, 4) or not all(parts[:3]):
        raise click.BadParameter("expected ID:SECRET:APP[:scope,scope,...]")
    data: dict[str, Any] = {"client_id": parts[0], "client_secret": parts[1], "app_id": parts[2]}
    if len(parts) == 4:
        data["scopes"] = [s for s in parts[3].split(",") if s]
    try:
        return Client.from_mapping(data)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to bind")
@click.option("--port", default=8765, show_default=True, type=int, help="port (0: any free)")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), help="production: 30-120 s delay")
@click.option("--processing-delay", help="seconds from 202 to processing: S or LOW,HIGH [1]")
@click.option("--token-ttl", type=float, help="token lifetime in seconds [3600]")
@click.option("--iri-base", help="base of user/course/app IRIs [https://api.alpha-1edtech.ai]")
@click.option("--max-events-per-request", type=int, help="envelope size limit [1]")
@click.option("--no-dedupe", is_flag=True, help="count a repeated event id again")
@click.option("--client", "clients", multiple=True, help="extra client ID:SECRET:APP[:scopes]")
@click.option("--fault", "faults", multiple=True, help="fault spec (JSON, @file, key=value)")
@click.option("--seed", type=int, help="seed of the processing-delay RNG")
def sandbox_command(
    host: str,
    port: int,
    preset: str | None,
    processing_delay: str | None,
    token_ttl: float | None,
    iri_base: str | None,
    max_events_per_request: int | None,
    no_dedupe: bool,
    clients: tuple[str, ...],
    faults: tuple[str, ...],
    seed: int | None,
) -> None:
    """Run the local emulator of the TimeBack Partner API (state in memory)."""
    config = build_config(
        host=host,
        port=port,
        preset_name=preset,
        processing_delay=processing_delay,
        token_ttl=token_ttl,
        iri_base=iri_base,
        max_events_per_request=max_events_per_request,
        dedupe=not no_dedupe,
        clients=clients,
        faults=faults,
        seed=seed,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(config))


def build_config(
    *,
    host: str,
    port: int,
    preset_name: str | None,
    processing_delay: str | None,
    token_ttl: float | None,
    iri_base: str | None,
    max_events_per_request: int | None,
    dedupe: bool,
    clients: tuple[str, ...],
    faults: tuple[str, ...],
    seed: int | None,
) -> SandboxConfig:
    overrides: dict[str, Any] = {"host": host, "port": port, "dedupe": dedupe, "seed": seed}
    if processing_delay is not None:
        overrides["processing_delay"] = parse_delay(processing_delay)
    if token_ttl is not None:
        overrides["token_ttl_s"] = token_ttl
    if iri_base is not None:
        overrides["iri_base"] = iri_base.rstrip("/")
    if max_events_per_request is not None:
        overrides["max_events_per_request"] = max_events_per_request
    spec: dict[str, Any] = {}
    for text in faults:
        spec |= parse_fault(text)
    try:
        Faults(spec)  # validate now, with a clear message, rather than inside the server
        config = preset(preset_name, **overrides) if preset_name else SandboxConfig(**overrides)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return replace(config, faults=spec).with_clients(*(parse_client(c) for c in clients))


async def _serve_forever(config: SandboxConfig) -> None:
    from relay.sandbox.server import running

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with running(config) as (url, sandbox):
        _announce(url, config, sandbox.faults.show()["faults"])
        await stop.wait()
    click.echo("sandbox stopped")


def _announce(url: str, config: SandboxConfig, faults: dict[str, Any]) -> None:
    click.echo(f"TimeBack sandbox listening on {url}")
    click.echo(
        f"  API base URL   {url}   (RELAY_API_BASE_URL, with RELAY_ALLOW_INSECURE_HTTP=true)"
    )
    click.echo(f"  inspection     {url}/sandbox/1.0/stats")
    click.echo(f"  IRI base       {config.iri}")
    delay = config.processing_delay.describe()
    click.echo(f"  processing     {delay} s after the 202; token TTL {config.token_ttl_s:g} s")
    # The built-in credentials are public test values, printed on purpose.
    for client in config.clients:
        secret = client.client_secret if client in BUILTIN_CLIENTS else "***"
        scopes = "all scopes" if set(client.scopes) == set(ALL_SCOPES) else " ".join(client.scopes)
        click.echo(
            f"  client         {client.client_id} / {secret}  app {client.app_id}  ({scopes})"
        )
    if faults:
        click.echo(f"  faults         {orjson.dumps(faults).decode()}")
    click.echo("Ctrl-C to stop.")
