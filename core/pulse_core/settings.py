"""Typed settings for every environment, read from `PULSE_*` environment variables.

One object, one switch (`PULSE_ENV`). Every setting has a local default so a laptop needs
nothing set. Secrets are never values in code: Confluent Cloud credentials arrive as
environment variables (or Databricks secret-scope lookups that populate them).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pulse_core import catalogue

Environment = Literal["local", "dev", "staging", "prod"]

# In a lake root, stands for the layer: `abfss://{layer}@<account>.dfs.core.windows.net`.
LAYER_PLACEHOLDER = "{layer}"
_BOOTSTRAP_ENTRY = re.compile(r"^[A-Za-z0-9._\-\[\]:]+:\d{1,5}$")


class SettingsError(ValueError):
    """Raised when the environment holds settings Pulse cannot run with. The message says what to fix."""


class PulseSettings(BaseSettings):
    """Runtime settings. Field `x` is read from the environment variable `PULSE_X`."""

    model_config = SettingsConfigDict(env_prefix="PULSE_", extra="ignore", frozen=True)

    env: Environment = "local"
    home: Path = Field(
        default=Path(".pulse"), description="State folder: jars cache, broker data, logs, lake."
    )
    lake: str | None = Field(
        default=None,
        description=(
            "Lake root: a local path, abfss://… or az://…. A `{layer}` placeholder puts each layer in its "
            "own container, e.g. abfss://{layer}@acct.dfs.core.windows.net (checkpoints go to `checkpoints`)."
        ),
    )
    jars: Path | None = Field(default=None, description="JVM jar cache; defaults to $PULSE_HOME/jars.")
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_topic: str = "user-interactions"
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_api_key: SecretStr | None = None
    kafka_api_secret: SecretStr | None = None
    kafka_ssl_ca_location: Path | None = Field(
        default=None,
        description=(
            "PEM file of the CA that signed the broker's TLS certificate (SASL_SSL). Unset: the system's "
            "trust store, which is what Confluent Cloud needs; `pulse broker up --sasl-ssl` prints its own."
        ),
    )
    min_free_mb: int = Field(
        default=512, ge=0, description="Refuse to start with less free disk at the lake."
    )
    recent_minutes: int = Field(
        default=15,
        ge=1,
        le=24 * 60,
        description=(
            "Event time the pipeline keeps on the driver (Silver events, Gold sessions) so micro-batches "
            "need not read Delta back; events later than this take the slower path through the tables."
        ),
    )
    gold_writer: Literal["auto", "delta-rs", "spark"] = Field(
        default="auto",
        description=(
            "What commits the live pipeline's Gold MERGEs and Bronze/Silver/quarantine appends: delta-rs "
            "from the driver (no Spark job) or Spark (docs/pipeline.md, 'Who commits Gold'). `auto` picks "
            "delta-rs for a local lake and Spark for a cloud one. The Databricks jobs get `delta-rs` "
            "with a Unity Catalog service credential (`delta_rs_credential`)."
        ),
    )
    engine: Literal["driver", "keyed"] = Field(
        default="driver",
        description=(
            "Where `pulse pipeline all` computes Gold: `driver` folds each micro-batch on the driver "
            "(pandas, state in driver memory); `keyed` in Spark tasks, with a JVM operator keyed by viewer "
            "whose state lives in Spark's state store, which adding executor cores scales "
            "(docs/scale.md). `keyed` needs a JDK where the pipeline starts; switching engines needs a "
            "checkpoint reset (`pulse reset-checkpoints`), which keeps every table exact."
        ),
    )
    state_partitions: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description=(
            "How many tasks share the keyed engine's state: its query's shuffle partitions, which Spark "
            "freezes into the checkpoint at its first run. Unset: the session's `spark.sql.shuffle."
            "partitions` (locally one per core). Choose it for the largest cluster the job will run on; a "
            "new value takes effect after `pulse reset-checkpoints pipeline` (docs/pipeline.md)."
        ),
    )
    delta_rs_credential: str | None = Field(
        default=None,
        description=(
            "The Unity Catalog service credential delta-rs commits with on a cloud lake (Databricks only: "
            "the job asks dbutils for a short-lived Azure token of it). Unset: delta-rs takes Azure "
            "credentials from the environment (AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_TENANT_ID)."
        ),
    )
    kafka_records_per_task: int = Field(
        default=10_000,
        ge=1_000,
        description=(
            "Most Kafka records one Spark task reads: a larger offset range, such as a catch-up batch or a "
            "partition one popular video fills, is split over several tasks so that every task slot gets "
            "work (docs/scale.md). Live batches are smaller and stay one task per partition."
        ),
    )
    kafka_group_prefix: str | None = Field(
        default=None, description="Consumer-group prefix for Spark's Kafka source (Confluent ACLs allow one)."
    )
    progress_log: Path | None = Field(
        default=None,
        description=(
            "File the pipeline appends one JSON line to per micro-batch and when a `--once` run caught up "
            "(`pulse.progress_log`); unset: none."
        ),
    )

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_is_host_port_list(cls, value: str) -> str:
        entries = [entry.strip() for entry in value.split(",")]
        bad = [entry for entry in entries if not _BOOTSTRAP_ENTRY.match(entry)]
        if not value.strip() or bad:
            raise ValueError(f"expected host:port[,host:port…], got {value!r}")
        return ",".join(entries)

    @field_validator("kafka_ssl_ca_location", "progress_log", "delta_rs_credential", mode="before")
    @classmethod
    def _blank_path_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("kafka_topic")
    @classmethod
    def _topic_is_legal(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._\-]{1,249}", value):
            raise ValueError("a Kafka topic is 1-249 characters of letters, digits, '.', '_' or '-'")
        return value

    @model_validator(mode="after")
    def _cloud_needs_credentials(self) -> PulseSettings:
        if self.kafka_security_protocol == "SASL_SSL" and not (self.kafka_api_key and self.kafka_api_secret):
            raise ValueError(
                "PULSE_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs PULSE_KAFKA_API_KEY and PULSE_KAFKA_API_SECRET"
            )
        if self.delta_rs_credential and self.gold_writer == "spark":
            raise ValueError(
                "PULSE_DELTA_RS_CREDENTIAL is what delta-rs commits with, and PULSE_GOLD_WRITER=spark "
                "commits everything with Spark: unset one of them"
            )
        if self.env != "local" and self.lake is None:
            raise ValueError(f"PULSE_ENV={self.env} needs PULSE_LAKE (abfss://… or az://…): no local default")
        return self

    @property
    def lake_root(self) -> str:
        """The lake root as a string: `PULSE_LAKE`, or `$PULSE_HOME/lake`."""
        return self.lake if self.lake is not None else str(self.home / "lake")

    @property
    def jars_dir(self) -> Path:
        """Where resolved JVM jars are cached."""
        return self.jars if self.jars is not None else self.home / "jars"

    @property
    def logs_dir(self) -> Path:
        """Where local processes write their logs."""
        return self.home / "logs"

    def layer_root(self, layer: str) -> str:
        """Where one layer of the lake lives: `<lake>/<layer>`, or, when the lake root holds the `{layer}`
        placeholder (one container per layer, as the infrastructure sets it), the layer's own container.

        The one place a lake URI's `{layer}` is filled in: the pipeline and the dashboard both come here.
        """
        root = self.lake_root.rstrip("/")
        if LAYER_PLACEHOLDER in root:
            return root.replace(LAYER_PLACEHOLDER, layer)
        return f"{root}/{layer}"

    def table_path(self, layer: str, table: str) -> str:
        """Location of one Delta table: `<lake>/<layer>/<table>` (or the layer's own container)."""
        catalogue.table(layer, table)  # KeyError naming the known tables
        return f"{self.layer_root(layer)}/{table}"

    def checkpoint_path(self, query: str) -> str:
        """Location of one streaming query's checkpoint: `<lake>/_checkpoints/<query>` (or the
        `checkpoints` container)."""
        folder = "checkpoints" if LAYER_PLACEHOLDER in self.lake_root else "_checkpoints"
        return f"{self.layer_root(folder)}/{query}"

    # The one place Kafka security settings become client options: the producer and the preflight use
    # librdkafka's names (`kafka_client_config`), Spark's Kafka source the Java client's
    # (`kafka_spark_options`), both from the same fields.

    def kafka_client_config(self) -> dict[str, str]:
        """librdkafka/confluent-kafka connection settings, credentials included when set."""
        config = {
            "bootstrap.servers": self.kafka_bootstrap,
            "security.protocol": self.kafka_security_protocol,
        }
        if self.kafka_security_protocol == "SASL_SSL":
            key, secret = self._kafka_credentials()
            config |= {
                "sasl.mechanisms": self.kafka_sasl_mechanism,
                "sasl.username": key,
                "sasl.password": secret,
            }
            if self.kafka_ssl_ca_location is not None:
                config["ssl.ca.location"] = str(self.kafka_ssl_ca_location)
        return config

    def kafka_spark_options(self, databricks: bool = False) -> dict[str, str]:
        """The same settings as options of Spark's Kafka source (`kafka.`-prefixed Java client names).

        On Databricks the Kafka client is shaded, so the login module's package is prefixed.
        """
        options: dict[str, str] = {"kafka.security.protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol == "SASL_SSL":
            key, secret = self._kafka_credentials()
            module = "org.apache.kafka.common.security.plain.PlainLoginModule"
            if self.kafka_sasl_mechanism.startswith("SCRAM"):
                module = "org.apache.kafka.common.security.scram.ScramLoginModule"
            if databricks:
                module = "kafkashaded." + module
            options["kafka.sasl.mechanism"] = self.kafka_sasl_mechanism
            options["kafka.sasl.jaas.config"] = f'{module} required username="{key}" password="{secret}";'
            if self.kafka_ssl_ca_location is not None:
                options["kafka.ssl.truststore.type"] = "PEM"
                options["kafka.ssl.truststore.location"] = str(self.kafka_ssl_ca_location)
        return options

    def _kafka_credentials(self) -> tuple[str, str]:
        # Both are required with SASL_SSL: `_cloud_needs_credentials` checked them at load.
        assert self.kafka_api_key is not None
        assert self.kafka_api_secret is not None
        return self.kafka_api_key.get_secret_value(), self.kafka_api_secret.get_secret_value()


def load_settings(**overrides: object) -> PulseSettings:
    """Read settings from the environment, turning validation errors into one readable `SettingsError`."""
    try:
        return PulseSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            variable = f"PULSE_{field.upper()}" if field else "settings"
            problems.append(f"  {variable}: {error['msg']}")
        raise SettingsError("Invalid Pulse settings:\n" + "\n".join(problems)) from None
