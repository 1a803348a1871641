"""A real single-node Apache Kafka broker in KRaft mode, run as a local process.

`up` formats the data folder on first start, starts the broker, waits until it answers
metadata requests and creates the events topic. A pid file records what `up` started, so
`down` stops only that process and `status` can tell the truth.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path

import psutil

from pulse.devstack import jars
from pulse.devstack.java import find_java
from pulse.devstack.tls import SecureMaterial, jaas_config, secure_material

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
HOST = "127.0.0.1"


class BrokerError(RuntimeError):
    """The broker could not be started, reached or stopped. The message says why and names the log."""


@dataclass(frozen=True)
class BrokerPaths:
    """Where one PULSE_HOME keeps its broker state."""

    home: Path

    @property
    def root(self) -> Path:
        return self.home / "kafka"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def config(self) -> Path:
        return self.root / "server.properties"

    @property
    def log4j_config(self) -> Path:
        return self.root / "log4j2.properties"

    @property
    def tls(self) -> Path:
        return self.root / "tls"

    @property
    def pid_file(self) -> Path:
        return self.root / "broker.pid"

    @property
    def log(self) -> Path:
        return self.home / "logs" / "kafka.log"


@dataclass(frozen=True)
class BrokerState:
    """What `status` found."""

    running: bool
    pid: int | None = None
    port: int | None = None
    sasl_port: int | None = None
    answering: bool = False
    topics: dict[str, int] | None = None
    note: str = ""

    @property
    def bootstrap(self) -> str | None:
        return f"{HOST}:{self.port}" if self.port else None


def port_is_free(port: int, host: str = HOST) -> bool:
    """True when nothing listens on `host:port` (a bind succeeds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(avoid: AbstractSet[int] = frozenset()) -> int:
    """One free port on loopback, not in `avoid`."""
    while True:
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            port = probe.getsockname()[1]
        if port not in avoid:
            return port


def free_port_pair(avoid: AbstractSet[int] = frozenset()) -> int:
    """A port P such that P and P+1 (broker and controller) are both free on loopback, neither in `avoid`."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            port = probe.getsockname()[1]
        if port >= 65535 or {port, port + 1} & avoid:
            continue
        with socket.socket() as second:
            try:
                second.bind((HOST, port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free pair of ports on {HOST}")


def _port_accepts(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding.

    Like Kafka's own `Uuid.randomUuid()`, it never starts with "-", which command lines would take for
    an option.
    """
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


def server_properties(
    paths: BrokerPaths,
    port: int,
    controller_port: int,
    partitions: int,
    secure: tuple[int, SecureMaterial] | None = None,
) -> str:
    """The combined broker+controller configuration for a single-node KRaft cluster on loopback.

    With `secure` (port, material), a SASL_SSL listener (PLAIN over TLS, as Confluent Cloud speaks) is
    added beside the PLAINTEXT one.
    """
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(paths.data),
        "num.partitions": str(partitions),
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "3",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.hours": "168",
        "log.segment.bytes": str(256 * 1024 * 1024),
    }
    if secure is not None:
        sasl_port, material = secure
        settings["listeners"] += f",SASL_SSL://{HOST}:{sasl_port}"
        settings["advertised.listeners"] += f",SASL_SSL://{HOST}:{sasl_port}"
        settings["listener.security.protocol.map"] += ",SASL_SSL:SASL_SSL"
        settings |= {
            "sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl_ssl.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl_ssl.plain.sasl.jaas.config": jaas_config(material.credentials),
            "listener.name.sasl_ssl.ssl.keystore.type": "PEM",
            "listener.name.sasl_ssl.ssl.keystore.location": str(material.keystore),
        }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


LOG4J2_PROPERTIES = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


class EmbeddedKafka:
    """Start, stop and inspect the local broker of one PULSE_HOME."""

    def __init__(self, home: Path, jars_dir: Path, *, echo: Callable[[str], None] = print) -> None:
        self.paths = BrokerPaths(home)
        self.jars_dir = jars_dir
        self.echo = echo

    # -- pid file ---------------------------------------------------------------------------

    def _read_pid_file(self) -> dict | None:
        try:
            return json.loads(self.paths.pid_file.read_text())
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, OSError):
            return {}

    def _our_process(self, record: dict | None) -> psutil.Process | None:
        """The live process the pid file names, if it is still this home's broker."""
        if not record or "pid" not in record:
            return None
        try:
            proc = psutil.Process(int(record["pid"]))
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            cmdline = proc.cmdline()
        except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
            return None
        if "kafka.Kafka" in cmdline and str(self.paths.config.resolve()) in cmdline:
            return proc
        return None

    # -- up ---------------------------------------------------------------------------------

    def up(
        self,
        port: int,
        controller_port: int | None,
        topic: str,
        partitions: int,
        sasl_port: int | None = None,
    ) -> BrokerState:
        """Start the broker (or find it running), wait until it answers, and create the topic.

        With `sasl_port`, the broker also listens for SASL_SSL there (see `secure_material`).

        Raises:
            BrokerError: a port is taken, the broker died, or it did not answer within 60 s.
        """
        record = self._read_pid_file()
        if self._our_process(record) is not None:
            assert record is not None
            running_port = int(record["port"])
            running_sasl = record.get("sasl_port")
            if running_port != port or running_sasl != sasl_port:
                raise BrokerError(
                    f"A Pulse broker for {self.paths.home} already runs on port {running_port}"
                    + (f" (SASL_SSL on {running_sasl})" if running_sasl else " (no SASL_SSL listener)")
                    + ", not as asked. Run `pulse broker down` first to restart it differently."
                )
            self.echo(f"Broker already running (pid {record['pid']}) on {HOST}:{running_port}.")
            self._wait_ready(None, running_port)
            self._ensure_topic(running_port, topic, partitions)
            return self.status()
        if record is not None:
            self.paths.pid_file.unlink(missing_ok=True)

        controller_port = controller_port or port + 1
        listeners = [("broker", port), ("controller", controller_port)]
        if sasl_port is not None:
            listeners.append(("SASL_SSL", sasl_port))
        for what, p in listeners:
            if not port_is_free(p):
                raise BrokerError(
                    f"Port {p} on {HOST} is already in use, so the {what} listener cannot bind to it. "
                    f"Stop whatever listens on {p}, or pick another port with `pulse broker up --port`."
                )

        java = find_java()
        kafka_jars = jars.resolve(self.jars_dir, "kafka", echo=self.echo)
        if not kafka_jars:
            raise BrokerError(f"No Kafka jars found in {jars.bundle_dir(self.jars_dir, 'kafka')}.")
        classpath = os.pathsep.join(str(j) for j in kafka_jars)

        self.paths.root.mkdir(parents=True, exist_ok=True)
        self.paths.log.parent.mkdir(parents=True, exist_ok=True)
        secure = None
        if sasl_port is not None:
            try:
                secure = (sasl_port, secure_material(self.paths.tls))
            except ImportError:
                raise BrokerError(
                    "--sasl-ssl generates its certificates with the `cryptography` package, which is not "
                    "installed: run `make setup` (or `pip install cryptography`)."
                ) from None
        self.paths.config.write_text(server_properties(self.paths, port, controller_port, partitions, secure))
        self.paths.log4j_config.write_text(LOG4J2_PROPERTIES)
        jvm = [
            str(java),
            "-Xms256m",
            "-Xmx1g",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.paths.log4j_config}",
            f"-Dkafka.logs.dir={self.paths.log.parent}",
            "-cp",
            classpath,
        ]
        if not (self.paths.data / "meta.properties").exists():
            self._format(jvm)

        self.echo(f"Starting Kafka {jars.KAFKA_VERSION} (KRaft) on {HOST}:{port}; log: {self.paths.log}")
        config = str(self.paths.config.resolve())
        with self.paths.log.open("a") as log:
            proc = subprocess.Popen(
                [*jvm, "kafka.Kafka", config],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.paths.pid_file.write_text(
            json.dumps(
                {
                    "pid": proc.pid,
                    "port": port,
                    "controller_port": controller_port,
                    "sasl_port": sasl_port,
                    "started": time.time(),
                }
            )
        )
        try:
            self._wait_ready(proc, port)
        except BrokerError:
            self._terminate(proc.pid)
            self.paths.pid_file.unlink(missing_ok=True)
            raise
        self._ensure_topic(port, topic, partitions)
        return self.status()

    def _format(self, jvm: list[str]) -> None:
        self.paths.data.mkdir(parents=True, exist_ok=True)
        self.echo(f"Formatting new KRaft storage in {self.paths.data}")
        with self.paths.log.open("a") as log:
            result = subprocess.run(
                [
                    *jvm,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    new_cluster_id(),
                    "-c",
                    str(self.paths.config),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if result.returncode != 0:
            raise BrokerError(f"Formatting the broker storage failed; see {self.paths.log}")

    def _wait_ready(self, proc: subprocess.Popen | None, port: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise BrokerError(
                    f"The broker exited with code {proc.returncode} while starting; see {self.paths.log}:\n"
                    + self._log_tail()
                )
            if _port_accepts(port) and self._metadata(port, timeout=2.0) is not None:
                return
            time.sleep(0.5)
        raise BrokerError(
            f"The broker did not answer metadata requests on {HOST}:{port} within {READY_TIMEOUT_S:.0f} s; "
            f"see {self.paths.log}:\n" + self._log_tail()
        )

    def _log_tail(self, lines: int = 12) -> str:
        try:
            return "\n".join(self.paths.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @staticmethod
    def _metadata(port: int, timeout: float) -> dict[str, int] | None:
        """Topic → partition count, or None when the broker does not answer."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": f"{HOST}:{port}", "log_level": 0})
        try:
            metadata = admin.list_topics(timeout=timeout)
        except KafkaException:
            return None
        return {name: len(t.partitions) for name, t in metadata.topics.items() if not name.startswith("__")}

    def _ensure_topic(self, port: int, topic: str, partitions: int) -> None:
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": f"{HOST}:{port}"})
        future = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[
            topic
        ]
        try:
            future.result(timeout=30)
            self.echo(f"Created topic {topic!r} with {partitions} partitions.")
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise BrokerError(f"Creating topic {topic!r} failed: {error.str()}") from None
            existing = (self._metadata(port, timeout=10) or {}).get(topic)
            self.echo(f"Topic {topic!r} exists with {existing} partitions.")

    # -- down -------------------------------------------------------------------------------

    def down(self) -> str:
        """Stop the broker this home started. Returns what happened, for the user."""
        record = self._read_pid_file()
        if record is None:
            return f"No Pulse broker is running for {self.paths.home} (no pid file); nothing to stop."
        proc = self._our_process(record)
        self.paths.pid_file.unlink(missing_ok=True)
        if proc is None:
            pid = record.get("pid")
            return f"The pid file named pid {pid}, which is not a running Pulse broker; removed it."
        port = int(record.get("port", 0))
        self._terminate(proc.pid)
        if port:
            deadline = time.monotonic() + 10
            while not port_is_free(port) and time.monotonic() < deadline:
                time.sleep(0.2)
        return f"Stopped the broker (pid {proc.pid}) on {HOST}:{port}."

    @staticmethod
    def _terminate(pid: int) -> None:
        """SIGTERM the broker's process group, then SIGKILL whatever is left after 30 s."""
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            psutil.Process(pid).wait(timeout=STOP_TIMEOUT_S)
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired:
            os.killpg(pid, signal.SIGKILL)
            psutil.Process(pid).wait(timeout=10)

    # -- status -----------------------------------------------------------------------------

    def status(self) -> BrokerState:
        """Whether this home's broker runs, and whether it answers metadata requests."""
        record = self._read_pid_file()
        if record is None:
            return BrokerState(running=False, note="no pid file")
        proc = self._our_process(record)
        if proc is None:
            return BrokerState(running=False, note=f"stale pid file (pid {record.get('pid')} is gone)")
        port = int(record["port"])
        topics = self._metadata(port, timeout=5.0)
        return BrokerState(
            running=True,
            pid=proc.pid,
            port=port,
            sasl_port=record.get("sasl_port"),
            answering=topics is not None,
            topics=topics,
        )
