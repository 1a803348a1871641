"""The `pulse` command line."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from pulse.devstack import jars
from pulse.devstack.broker import HOST, BrokerError, EmbeddedKafka
from pulse.devstack.java import JavaMissingError
from pulse.io import Trigger
from pulse.jobs import Job as PipelineJob
from pulse.jobs import Query
from pulse.producer.options import ProduceOptions
from pulse_core.settings import PulseSettings, SettingsError, load_settings

console = Console(highlight=False, soft_wrap=True)


err = Console(stderr=True, highlight=False, soft_wrap=True)

app = typer.Typer(
    help="Pulse: real-time analytics for live-stream audiences.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
broker_app = typer.Typer(help="Run the embedded Kafka broker on 127.0.0.1.", no_args_is_help=True)
jars_app = typer.Typer(help="Resolve and inspect the cached JVM jars.", no_args_is_help=True)
app.add_typer(broker_app, name="broker")
# The name these commands had before `pulse.devstack` got its own: kept for scripts, not listed.
app.add_typer(broker_app, name="local", hidden=True)
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


def _parse_start(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO-8601 time (e.g. 2025-07-13T12:00:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _produce_option(name: str, *param_decls: str, **extra: Any) -> Any:
    """The typer option of one `ProduceOptions` field: its help and range are the field's."""
    limits = ProduceOptions.limits(name)
    return typer.Option(
        *param_decls, help=ProduceOptions.help(name), min=limits.get("min"), max=limits.get("max"), **extra
    )


@app.command("produce")
def produce_command(
    events: Annotated[int | None, _produce_option("events", "--events")] = None,
    duration: Annotated[float | None, _produce_option("duration_s", "--duration")] = None,
    rate: Annotated[float, _produce_option("rate")] = ProduceOptions.default("rate"),
    videos: Annotated[int, _produce_option("videos")] = ProduceOptions.default("videos"),
    seed: Annotated[int | None, _produce_option("seed")] = None,
    start: Annotated[str | None, _produce_option("start")] = None,
    from_file: Annotated[Path | None, _produce_option("from_file", "--from-file", exists=True)] = None,
    inject_bad: Annotated[float, _produce_option("inject_bad")] = ProduceOptions.default("inject_bad"),
    duplicates: Annotated[float, _produce_option("duplicates")] = ProduceOptions.default("duplicates"),
    hype_every: Annotated[int, _produce_option("hype_every_s", "--hype-every")] = ProduceOptions.default(
        "hype_every_s"
    ),
    late: Annotated[float, _produce_option("late")] = ProduceOptions.default("late"),
    max_late: Annotated[float, _produce_option("max_late_s", "--max-late")] = ProduceOptions.default(
        "max_late_s"
    ),
    chat_chars: Annotated[int | None, _produce_option("chat_chars")] = None,
    summary_json: Annotated[
        Path | None, typer.Option(help="Also write the final summary as JSON to this file.")
    ] = None,
) -> None:
    """Send simulated live-stream events (or a replayed file) to Kafka, keyed by video_id.

    Delivery is acks=all with idempotence on. The command exits non-zero if any message fails delivery.
    """
    from pulse.preflight import PreflightError, check_kafka
    from pulse.producer.run import produce

    try:
        options = ProduceOptions(
            events=events,
            duration_s=duration,
            rate=rate,
            videos=videos,
            seed=seed,
            start=_parse_start(start),
            from_file=from_file,
            inject_bad=inject_bad,
            duplicates=duplicates,
            hype_every_s=hype_every,
            late=late,
            max_late_s=max_late,
            chat_chars=chat_chars,
        )
    except ValidationError as exc:
        problems = (str(error.get("ctx", {}).get("error", error["msg"])) for error in exc.errors())
        raise _fail("; ".join(problems), 2) from None
    settings = _settings()
    try:
        check_kafka(settings)
    except PreflightError as exc:
        raise _fail(str(exc)) from None
    summary = produce(options, settings.kafka_client_config(), settings.kafka_topic, echo=console.print)
    if summary_json is not None:
        summary_json.write_text(summary.to_json())
    console.print(
        f"\nSent {summary.sent:,} messages in {summary.elapsed_s:.1f} s "
        f"({summary.events_per_second:,.0f}/s): "
        f"{summary.delivered:,} delivered, {summary.failed:,} failed; {summary.valid:,} valid events, "
        f"{summary.duplicates:,} resends, {sum(summary.injected.values()):,} malformed."
    )
    if summary.injected:
        console.print("  malformed by reason: " + ", ".join(f"{k}={v}" for k, v in summary.injected.items()))
    if summary.failed:
        raise _fail(
            f"{summary.failed} of {summary.sent} messages were not delivered "
            f"to {settings.kafka_bootstrap}:\n  " + "\n  ".join(summary.errors)
        )


@app.command("pipeline")
def pipeline_command(
    job: Annotated[
        PipelineJob,
        typer.Argument(
            help="all: Kafka → bronze → silver (+ quarantine) → gold in one micro-batch (the real-time "
            "pipeline). bronze: Kafka → bronze only. silver (or gold): bronze → silver and gold."
        ),
    ] = PipelineJob.all,
    once: Annotated[
        bool, typer.Option("--once", help="Process what is available (availableNow), then exit.")
    ] = False,
    trigger_seconds: Annotated[
        float,
        typer.Option(
            help="Micro-batch interval when running continuously (0: back to back).", min=0, max=3600
        ),
    ] = Trigger.interval_s,
    max_offsets_per_trigger: Annotated[
        int | None,
        typer.Option(
            help="all, bronze: at most this many Kafka records per micro-batch (all: 200,000 when unset, "
            "as each batch comes to the driver whole).",
            min=1,
        ),
    ] = None,
    max_files_per_trigger: Annotated[
        int | None,
        typer.Option(help="silver: at most this many Bronze files per micro-batch.", min=1),
    ] = None,
    wait_for_kafka: Annotated[
        float,
        typer.Option(
            help="all, bronze: wait up to this many seconds for the broker and its topic (one that is "
            "still starting) before failing.",
            min=0,
            max=3600,
        ),
    ] = 0.0,
    progress_log: Annotated[
        Path | None,
        typer.Option(
            help="Append one JSON line per micro-batch (and one when --once has caught up) to this file "
            "(default: PULSE_PROGRESS_LOG, else none).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Run the pipeline: every micro-batch lands in Bronze, Silver (+ quarantine) and Gold.

    One line per micro-batch. Without --once it runs until Ctrl-C, which stops it cleanly; the next
    start resumes from the checkpoint under <lake>/_checkpoints/.
    """
    from pulse.jobs.runner import PipelineError, PipelineOptions, run_pipeline

    settings = _settings()
    if progress_log is not None:
        settings = settings.model_copy(update={"progress_log": progress_log})
    try:
        run_pipeline(
            PipelineOptions(
                job,
                once,
                trigger_seconds,
                max_offsets_per_trigger,
                max_files_per_trigger,
                kafka_wait_seconds=wait_for_kafka,
            ),
            settings,
        )
    except PipelineError as exc:
        raise _fail(str(exc)) from None


@app.command("demo")
def demo_command(
    kafka_port: Annotated[int, typer.Option(help="Broker port on 127.0.0.1.", min=1, max=65534)] = 9092,
    dashboard_port: Annotated[
        int, typer.Option(help="Dashboard port on 127.0.0.1.", min=1, max=65535)
    ] = 8501,
    rate: Annotated[
        float, typer.Option(help="Live audience size, in events per second.", min=1, max=100_000)
    ] = 50.0,
) -> None:
    """Run the whole live pipeline on the embedded stack: broker, producer, pipeline, dashboard."""
    from pulse.devstack.demo import DemoError, run_demo

    settings = _settings()
    try:
        run_demo(
            settings, kafka_port=kafka_port, dashboard_port=dashboard_port, rate=rate, echo=console.print
        )
    except (DemoError, BrokerError, JavaMissingError, jars.JarResolutionError) as exc:
        raise _fail(str(exc)) from None


@app.command("backfill")
def backfill_command(
    since: Annotated[
        datetime | None,
        typer.Option(
            "--from",
            help="Rebuild from Bronze rows ingested at or after this instant (ISO-8601, UTC unless an "
            "offset is given). Default: all of Bronze.",
            formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"],
        ),
    ] = None,
    chunk_rows: Annotated[int, typer.Option(help="Bronze rows per chunk.", min=1000)] = 200_000,
) -> None:
    """Rebuild Silver (+ quarantine) and Gold from Bronze with today's transforms. Stop the pipeline first."""
    from pulse.jobs import backfill
    from pulse.jobs.runner import configure_logging
    from pulse.spark import get_spark

    settings = _settings()
    configure_logging()
    moment = since if since is None or since.tzinfo else since.replace(tzinfo=UTC)
    from pulse.jobs.lease import LeaseHeldError

    try:
        spark = get_spark("pulse-backfill", settings)
        backfill.rebuild_from_bronze(spark, settings, moment, chunk_rows, echo=console.print)
    except LeaseHeldError as exc:
        raise _fail(str(exc)) from None


@app.command("maintenance")
def maintenance_command(
    retention_hours: Annotated[
        float,
        typer.Option(
            help="VACUUM keeps files newer than this (at least 168 h, so streams can resume).", min=168
        ),
    ] = 168.0,
) -> None:
    """Compact every lake table (OPTIMIZE) and delete old unneeded files (VACUUM). Runs daily in Azure."""
    from pulse.jobs import maintenance
    from pulse.jobs.runner import configure_logging
    from pulse.spark import get_spark

    settings = _settings()
    configure_logging()
    try:
        spark = get_spark("pulse-maintenance", settings)
        lines = maintenance.optimize_and_vacuum(spark, settings, retention_hours)
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    for line in lines:
        console.print(line)


def _commit_id(value: str) -> str:
    if not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z._-]*", value):
        raise typer.BadParameter(f"{value!r} is not a commit id (letters, digits, '.', '_' or '-')")
    return value


@app.command("reset-checkpoints")
def reset_checkpoints_command(
    queries: Annotated[
        list[Query],
        typer.Argument(
            help="Streaming queries whose checkpoints are moved aside (pipeline: `pulse pipeline all`; "
            "refine: `pulse pipeline silver`).",
        ),
    ],
    commit: Annotated[
        str,
        typer.Option(
            help="The deploy's commit: each checkpoint moves to <checkpoints>/_reset/<commit>/<query>.",
            callback=_commit_id,
        ),
    ],
) -> None:
    """Move the jobs' checkpoints aside, so the jobs start over. Stop (or pause) them first.

    Nothing is deleted: a checkpoint moved aside can be moved back to roll a deploy back. A job without a
    checkpoint is left alone. The deploy runs this on Databricks when a state version changed.
    """
    from pulse.jobs import reset
    from pulse.jobs.lease import LeaseHeldError
    from pulse.spark import get_spark

    settings = _settings()
    try:
        lines = reset.move_checkpoints_aside(get_spark("pulse-reset", settings), settings, commit, queries)
    except (OSError, LeaseHeldError) as exc:
        raise _fail(str(exc)) from None
    for line in lines:
        console.print(line)


@app.command("dashboard")
def dashboard_command(
    port: Annotated[int, typer.Option(help="Port for the dashboard on 127.0.0.1.", min=1, max=65535)] = 8501,
    address: Annotated[str, typer.Option(help="Interface to bind (0.0.0.0 in a container).")] = "127.0.0.1",
) -> None:
    """Start the Streamlit dashboard over the Gold tables of PULSE_LAKE (Ctrl-C stops it)."""
    # The dashboard is its own deployable (dashboard/): the CLI runs it as a program, never imports it.
    if importlib.util.find_spec("pulse_dashboard") is None:
        raise _fail(
            "The dashboard is not installed in this environment: `make setup` (or `pip install ./dashboard`) "
            "installs it.",
            2,
        )
    settings = _settings()
    console.print(f"Dashboard: http://{address}:{port}  (reading {settings.lake_root}/gold; Ctrl-C stops it)")
    sys.stdout.flush()
    command = [sys.executable, "-m", "pulse_dashboard.serve", "--port", str(port), "--address", address]
    os.execv(sys.executable, command)  # noqa: S606 - the dashboard replaces this process, signals and all


@broker_app.command("up")
def broker_up(
    port: Annotated[int, typer.Option(help="Broker port on 127.0.0.1.", min=1, max=65534)] = 9092,
    controller_port: Annotated[
        int | None, typer.Option(help="KRaft controller port (default: --port + 1).", min=1, max=65535)
    ] = None,
    partitions: Annotated[int, typer.Option(help="Partitions of the events topic.", min=1)] = 3,
    sasl_ssl: Annotated[
        bool,
        typer.Option(
            "--sasl-ssl",
            help="Also listen for SASL_SSL (PLAIN over TLS, as Confluent Cloud speaks), with a CA, a broker "
            "certificate and one API key per service account generated here.",
        ),
    ] = False,
    sasl_port: Annotated[
        int | None, typer.Option(help="SASL_SSL listener port (default: --port + 2).", min=1, max=65535)
    ] = None,
) -> None:
    """Start the broker (formatting its storage on first start) and create the events topic."""
    settings = _settings()
    secure_port = (sasl_port or port + 2) if sasl_ssl else None
    try:
        state = _broker(settings).up(port, controller_port, settings.kafka_topic, partitions, secure_port)
    except (BrokerError, JavaMissingError, jars.JarResolutionError) as exc:
        raise _fail(str(exc)) from None
    console.print(f"[green]Kafka is up[/green] at {state.bootstrap} (pid {state.pid}).")
    if state.sasl_port:
        tls = settings.home / "kafka" / "tls"
        console.print(f"  SASL_SSL (PLAIN over TLS) on {HOST}:{state.sasl_port}; connect with")
        console.print(
            f"    PULSE_KAFKA_BOOTSTRAP={HOST}:{state.sasl_port} PULSE_KAFKA_SECURITY_PROTOCOL=SASL_SSL "
            f"PULSE_KAFKA_SSL_CA_LOCATION={tls / 'ca.pem'}"
        )
        console.print(
            f"    and PULSE_KAFKA_API_KEY/_SECRET of a service account from {tls / 'credentials.json'}"
        )
    console.print(f"  data: {settings.home / 'kafka'}   log: {settings.logs_dir / 'kafka.log'}")
    console.print("  stop it with: pulse broker down")


@broker_app.command("down")
def broker_down() -> None:
    """Stop the broker that `pulse broker up` started (found through its pid file)."""
    settings = _settings()
    console.print(_broker(settings).down())


@broker_app.command("status")
def broker_status() -> None:
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


# The jar bundles as a choice typer checks (`pulse jars resolve spark kafka`).
Bundle = StrEnum("Bundle", {name: name for name in jars.BUNDLES})  # type: ignore[misc]


@jars_app.command("resolve")
def jars_resolve(
    bundle: Annotated[list[Bundle] | None, typer.Argument(help="Bundles to resolve (default: all).")] = None,
) -> None:
    """Fetch the locked jars (in parallel, from the machine cache or Maven Central) into $PULSE_HOME/jars."""
    settings = _settings()
    wanted = [str(choice) for choice in bundle] if bundle else list(jars.BUNDLES)
    try:
        cached = [name for name in wanted if jars.is_resolved(settings.jars_dir, name)]
        jars.resolve_many(settings.jars_dir, wanted, echo=console.print)
    except jars.JarResolutionError as exc:
        raise _fail(str(exc)) from None
    if cached:
        console.print(f"jars: {', '.join(cached)} already resolved in {settings.jars_dir}")


@jars_app.command("lock")
def jars_lock() -> None:
    """Re-resolve every bundle with Ivy and rewrite app/pulse/devstack/jars.lock (after changing a pin)."""
    settings = _settings()
    try:
        jars.lock(settings.logs_dir, echo=console.print)
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


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """Console-script entry point.

    Ctrl-C and SIGTERM both raise KeyboardInterrupt, so every command stops the same clean way, even when
    started from a shell that ignores SIGINT in background jobs.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        app()
    except KeyboardInterrupt:
        err.print("Interrupted.")
        sys.exit(130)


if __name__ == "__main__":
    main()
