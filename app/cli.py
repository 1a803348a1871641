"""The `pulse` command line."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from app.local import jars
from app.local.broker import BrokerError, EmbeddedKafka
from app.local.java import JavaMissingError
from app.settings import PulseSettings, SettingsError, load_settings

console = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

app = typer.Typer(
    help="Pulse: real-time analytics for live-stream audiences.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
local_app = typer.Typer(help="Run the embedded Kafka broker on 127.0.0.1.", no_args_is_help=True)
jars_app = typer.Typer(help="Resolve and inspect the cached JVM jars.", no_args_is_help=True)
app.add_typer(local_app, name="local")
app.add_typer(jars_app, name="jars")


def _settings() -> PulseSettings:
    try:
        return load_settings()
    except SettingsError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _broker(settings: PulseSettings) -> EmbeddedKafka:
    return EmbeddedKafka(settings.home, settings.jars_dir, echo=console.print)


@local_app.command("up")
def local_up(
    port: Annotated[int, typer.Option(help="Broker port on 127.0.0.1.", min=1, max=65534)] = 9092,
    controller_port: Annotated[
        int | None, typer.Option(help="KRaft controller port (default: --port + 1).", min=1, max=65535)
    ] = None,
    partitions: Annotated[int, typer.Option(help="Partitions of the events topic.", min=1)] = 3,
) -> None:
    """Start the broker (formatting its storage on first start) and create the events topic."""
    settings = _settings()
    try:
        state = _broker(settings).up(port, controller_port, settings.kafka_topic, partitions)
    except (BrokerError, JavaMissingError, jars.JarResolutionError) as exc:
        raise _fail(str(exc)) from None
    console.print(f"[green]Kafka is up[/green] at {state.bootstrap} (pid {state.pid}).")
    console.print(f"  data: {settings.home / 'kafka'}   log: {settings.logs_dir / 'kafka.log'}")
    console.print("  stop it with: pulse local down")


@local_app.command("down")
def local_down() -> None:
    """Stop the broker that `pulse local up` started (found through its pid file)."""
    settings = _settings()
    console.print(_broker(settings).down())


@local_app.command("status")
def local_status() -> None:
    """Report whether the broker runs and answers. Exit code 0 when it does, 1 otherwise."""
    settings = _settings()
    state = _broker(settings).status()
    if not state.running:
        console.print(f"Kafka: [yellow]not running[/yellow] ({state.note}).")
        raise typer.Exit(1)
    if not state.answering:
        console.print(f"Kafka: [red]running but not answering[/red] on {state.bootstrap} (pid {state.pid}).")
        raise typer.Exit(1)
    topics = ", ".join(f"{name} ({n} partitions)" for name, n in sorted((state.topics or {}).items()))
    console.print(
        f"Kafka: [green]running[/green] on {state.bootstrap} (pid {state.pid}); topics: {topics or 'none'}"
    )


@jars_app.command("resolve")
def jars_resolve(
    bundle: Annotated[
        list[str] | None, typer.Argument(help="Bundles to resolve: spark, kafka (default: all).")
    ] = None,
) -> None:
    """Download the pinned jars from Maven Central into $PULSE_HOME/jars, unless cached."""
    settings = _settings()
    wanted = bundle or list(jars.BUNDLES)
    unknown = sorted(set(wanted) - set(jars.BUNDLES))
    if unknown:
        raise _fail(f"unknown bundle(s) {', '.join(unknown)}; choose from {', '.join(jars.BUNDLES)}", 2)
    for name in wanted:
        try:
            if jars.is_resolved(settings.jars_dir, name):
                console.print(f"{name} jars: cached in {jars.bundle_dir(settings.jars_dir, name)}")
                continue
            jars.resolve(settings.jars_dir, name, settings.logs_dir, echo=console.print)
        except (jars.JarResolutionError, JavaMissingError) as exc:
            raise _fail(str(exc)) from None


@jars_app.command("list")
def jars_list() -> None:
    """Show the pinned coordinates and whether each bundle is cached."""
    settings = _settings()
    for name, coordinates in jars.BUNDLES.items():
        state = "cached" if jars.is_resolved(settings.jars_dir, name) else "not resolved"
        console.print(f"[bold]{name}[/bold] ({state}, {jars.bundle_dir(settings.jars_dir, name)})")
        for coordinate in coordinates:
            console.print(f"  {coordinate}")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("Interrupted.")
        sys.exit(130)


if __name__ == "__main__":
    main()
