"""The ``relay`` command. Each subcommand lives beside the code it drives and is imported lazily,
so ``relay --help`` is fast and a missing optional piece breaks only its own command."""

from __future__ import annotations

import importlib
import sys

import click

from relay import __version__

# name -> "module:attribute" of a click command
COMMANDS: dict[str, str] = {
    "run": "relay.pipeline.worker:run_command",
    "check": "relay.ops.check:check_command",
    "map": "relay.tools.map:map_command",
    "sandbox": "relay.sandbox.cli:sandbox_command",
    "smoke": "relay.tools.smoke:smoke_command",
    "dlq": "relay.ops.dlq_cli:dlq_group",
    "produce": "relay.tools.produce:produce_command",
    "demo": "relay.tools.demo:demo_command",
}

HELP = {
    "run": "Consume the activity topics and deliver Caliper events (the service).",
    "check": "Validate configuration, reach Kafka and the API, confirm topics exist.",
    "map": "Map NDJSON activity records to Caliper events offline.",
    "sandbox": "Run the local emulator of the TimeBack Partner API.",
    "smoke": "Run the vendor guide's integration flow against an API.",
    "dlq": "Inspect and replay the dead-letter topic.",
    "produce": "Produce synthetic activity records to Kafka.",
    "demo": "Run the whole system locally with demo traffic.",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*COMMANDS, *super().list_commands(ctx)])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        module_name, attr = COMMANDS[cmd_name].split(":")
        try:
            command = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            return _unavailable(cmd_name, exc)
        if not isinstance(command, click.Command):
            raise TypeError(f"{COMMANDS[cmd_name]} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help from the static table: listing commands must not import faust & co.
        rows = [(name, HELP.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _unavailable(name: str, exc: Exception) -> click.Command:
    @click.command(name=name, help=f"(unavailable: {exc})")
    def stub() -> None:
        raise click.ClickException(f"'relay {name}' is not available: {exc}")

    return stub


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="timeback-relay")
def main() -> None:
    """timeback-relay: Kafka activity records to TimeBack Caliper v1p2 events.

    Configuration comes from RELAY_* environment variables (and a .env file); see README.md.
    """


@main.command()
def version() -> None:
    """Print the relay's version."""
    click.echo(f"timeback-relay {__version__}")


if __name__ == "__main__":
    sys.exit(main())
