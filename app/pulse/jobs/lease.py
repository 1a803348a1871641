"""One writer per lake: a lease recorded as commits of a small Delta table.

Two live pipelines on one lake would each fold their own view of the recent events into Gold, and the
one that commits last would overwrite the other's counts (docs/pipeline.md, "One writer"). So a job
holds a lease on what it writes before its first batch, renews it while it runs, and stops before its
next commit once the lease is lost.

The lease lives where the lake lives: a Delta table per role under `<checkpoints>/_leases/<role>`. Every
claim, renewal and release is one commit whose `userMetadata` carries the record. Delta gives each
commit a unique version, atomically on ADLS and with delta-rs on a local disk, so every process that
replays the newest records in version order reaches the same verdict on who holds the lease
(`holder_of`). No PID file, no lock service, no clock shared beyond the lease's own timestamps.

The roles: `bronze` (whoever writes Bronze from Kafka) and `refine` (whoever writes Silver, quarantine
and Gold). `pulse pipeline all` holds both; the split jobs hold one each, so they run side by side.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from pulse_core.settings import PulseSettings

log = logging.getLogger("pulse.pipeline")

# A lease lasts this long after its last renewal, and is renewed this often. A run that dies without
# releasing it (SIGKILL, a lost driver) holds the lake for at most `LEASE_TTL` after its last renewal;
# on the same host a dead process's lease is taken over at once.
LEASE_TTL = timedelta(seconds=30)
RENEW_EVERY = timedelta(seconds=10)
# How many of the newest records a verdict replays: many renewal periods, far beyond any race.
REPLAY_RECORDS = 64
ROLES = ("bronze", "refine")
LEASES_FOLDER = "_leases"
# The roles whose tables each checkpointed query writes (its checkpoint's name): a reset takes them too.
CHECKPOINT_ROLES = {"pipeline": ("bronze", "refine"), "bronze": ("bronze",), "refine": ("refine",)}


def committed_by_deltalake(path: str) -> bool:
    """True when a lease table at `path` is committed by delta-rs from this process: a local lake where
    `deltalake` is installed. Otherwise Spark commits it (a cloud lake, or a job cluster's base install)."""
    from pulse import io
    from pulse.preflight import on_local_disk

    return on_local_disk(path) and io.deltalake_installed()


def lease_path(settings: PulseSettings, role: str) -> str:
    """Where the lake's lease of `role` lives: `<checkpoints>/_leases/<role>`."""
    return f"{settings.checkpoint_path(LEASES_FOLDER)}/{role}"


class LeaseHeldError(RuntimeError):
    """Another live run holds the lease. The message names it and says how to stop it."""


class LeaseLostError(RuntimeError):
    """This run no longer holds its lease: it must stop before its next commit."""


class LeaseCommitConflictError(RuntimeError):
    """Another run committed to the lease table at the same instant; this record did not land."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LeaseRecord:
    """One commit of the lease table: a claim, a renewal or a release by one run."""

    kind: str  # claim | renew | release
    holder: str  # this run's token, unique per process start
    job: str
    host: str
    pid: int
    started: datetime
    at: datetime
    expires: datetime
    replaces: str | None = None  # a claim that takes over a dead process's lease names its holder

    def to_json(self) -> str:
        values = asdict(self)
        for name in ("started", "at", "expires"):
            values[name] = values[name].isoformat()
        return json.dumps({"pulse_lease": values})

    @classmethod
    def from_json(cls, text: str | None) -> LeaseRecord | None:
        """The record a commit's `userMetadata` carries, or None for any other commit."""
        try:
            values = json.loads(text or "")["pulse_lease"]
            for name in ("started", "at", "expires"):
                values[name] = datetime.fromisoformat(values[name])
            return cls(**values)
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self, now: datetime) -> str:
        renewed = max(0.0, (now - self.at).total_seconds())
        return (
            f"`pulse {self.job}` (pid {self.pid} on {self.host}, running since "
            f"{self.started.strftime('%H:%M:%S')} UTC, lease renewed {renewed:.0f} s ago)"
        )


def holder_of(records: Iterable[LeaseRecord]) -> LeaseRecord | None:
    """Who holds the lease after `records` (oldest first): the same verdict in every process.

    A record counts when the lease is free, already the record's holder's, expired by the record's
    time, or (a claim) it takes over exactly the holder it names. Anything else lost a race and is
    ignored.
    """
    state: LeaseRecord | None = None
    for record in records:
        accepted = (
            state is None
            or state.holder == record.holder
            or state.expires <= record.at
            or (record.kind == "claim" and record.replaces == state.holder)
        )
        if not accepted:
            continue
        state = None if record.kind == "release" else record
    return state


class LeaseStore(Protocol):
    """Where the lease records live: appended in a total order, read back newest last."""

    def append(self, record: LeaseRecord) -> None: ...

    def read(self, limit: int) -> list[LeaseRecord]: ...


class DeltaLeaseStore:
    """The records as commits of a Delta table (`pulse.io` does the I/O: delta-rs without `spark`, as for
    a local lake, else Spark)."""

    def __init__(self, path: str, spark: SparkSession | None = None) -> None:
        self.path = path
        self.spark = spark

    def append(self, record: LeaseRecord) -> None:
        from pulse import io

        try:
            io.commit_lease_record(self.spark, self.path, record.to_json())
        except Exception as exc:
            if io.is_write_conflict(exc):
                raise LeaseCommitConflictError(str(exc)) from exc
            raise

    def read(self, limit: int) -> list[LeaseRecord]:
        from pulse import io

        metadata = io.lease_history(self.spark, self.path, limit)
        records = (LeaseRecord.from_json(entry) for entry in reversed(metadata))
        return [record for record in records if record is not None]


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WriterLease:
    """This run's lease on one role of a lake.

    Args:
        store: where the records live.
        role: `bronze` or `refine`.
        job: the command that holds it, for the messages (`pipeline all`, `reset-checkpoints`).
        clock: the wall clock (tests pass their own).
    """

    def __init__(
        self,
        store: LeaseStore,
        role: str,
        job: str,
        ttl: timedelta = LEASE_TTL,
        renew_every: timedelta = RENEW_EVERY,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.role = role
        self.job = job
        self.ttl = ttl
        self.renew_every = renew_every
        self.clock = clock
        self.token = uuid.uuid4().hex
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.started = clock()
        self.valid_until: datetime | None = None
        self.lost: str | None = None
        self._last_seen: datetime | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _record(self, kind: str, replaces: str | None = None) -> LeaseRecord:
        now = self.clock()
        return LeaseRecord(
            kind, self.token, self.job, self.host, self.pid, self.started, now, now + self.ttl, replaces
        )

    def _current(self) -> LeaseRecord | None:
        return holder_of(self.store.read(REPLAY_RECORDS))

    def _dead_here(self, holder: LeaseRecord) -> bool:
        return holder.host == self.host and holder.pid != self.pid and not _process_alive(holder.pid)

    def acquire(self, sleep: Callable[[float], object] | None = None) -> None:
        """Take the lease, or raise `LeaseHeldError` naming the run that holds it.

        A lease whose holder keeps renewing it is refused at once. One that is no longer renewed (its
        run was killed) is waited for until it expires, at most `ttl`; one held by a dead process on
        this host is taken over at once.
        """
        sleep = sleep or self._stop.wait
        announced = False
        while True:
            now = self.clock()
            current = self._current()
            replaces = None
            if current is not None and current.holder != self.token and current.expires > now:
                if self._dead_here(current):
                    replaces = current.holder
                    log.info(f"lease {self.role}: taking over from pid {current.pid}, which has exited")
                elif now - current.at < 2 * self.renew_every and not announced:
                    raise LeaseHeldError(self._held_message(current, now))
                else:
                    if not announced:
                        wait_s = (current.expires - now).total_seconds()
                        log.info(
                            f"lease {self.role}: held by {current.describe(now)}, no longer renewed; "
                            f"waiting up to {wait_s:.0f} s for it to expire"
                        )
                        announced = True
                        self._last_seen = current.at
                    elif current.at != self._last_seen:
                        raise LeaseHeldError(self._held_message(current, now))
                    sleep(min(1.0, max(0.05, (current.expires - now).total_seconds())))
                    continue
            try:
                self.store.append(self._record("claim", replaces))
            except LeaseCommitConflictError:
                continue  # another run committed first: decide again on what it wrote
            winner = self._current()
            if winner is None or winner.holder != self.token:
                raise LeaseHeldError(self._held_message(winner, self.clock()) if winner else
                                     f"lost the race for the {self.role} lease; start again")  # fmt: skip
            self.valid_until = winner.expires
            return

    def _held_message(self, holder: LeaseRecord, now: datetime) -> str:
        return (
            f"the lake is already written by {holder.describe(now)}; only one run may write it at a "
            f"time. Stop that run first (Ctrl-C, or `kill {holder.pid}` on {holder.host}; on Databricks, "
            "cancel its job run), or let it finish."
        )

    def renew(self) -> None:
        """Extend the lease; marks it lost when another run holds it now."""
        for attempt in range(5):
            try:
                self.store.append(self._record("renew"))
                break
            except LeaseCommitConflictError:
                # A claim landed first: this renewal goes after it, and the replay decides.
                log.info(f"lease {self.role}: a renewal met a concurrent commit; again ({attempt + 1})")
        current = self._current()
        if current is None or current.holder != self.token:
            who = current.describe(self.clock()) if current else "nobody"
            self.lost = f"the {self.role} lease was taken over by {who}"
            return
        self.valid_until = current.expires

    def check(self) -> None:
        """Raise `LeaseLostError` unless this run holds the lease for a while yet: called before commits.

        A lease close to expiry (its renewals held up, on a machine busy enough to starve their thread) is
        renewed here first; the run stops only when that fails or shows another holder.
        """
        if not self.lost and not self._valid_for_a_while():
            try:
                self.renew()
            except Exception as exc:
                log.warning(f"lease {self.role}: renewing before a commit failed ({exc})")
        if self.lost:
            raise LeaseLostError(f"{self.lost}; this run stops before its next commit")
        if not self._valid_for_a_while():
            raise LeaseLostError(
                f"the {self.role} lease could not be renewed in time; this run stops before its next commit"
            )

    def _valid_for_a_while(self) -> bool:
        return self.valid_until is not None and self.clock() + self.renew_every / 2 < self.valid_until

    def start_renewing(self, on_lost: Callable[[str], None] | None = None) -> None:
        """Renew every `renew_every` on a daemon thread; `on_lost` is called once if the lease is lost."""

        def loop() -> None:
            while not self._stop.wait(self.renew_every.total_seconds()):
                began = time.monotonic()
                try:
                    self.renew()
                except Exception as exc:  # storage hiccup: retried; `check` stops commits once expired
                    log.warning(f"lease {self.role}: renewal failed ({exc}); retrying")
                    continue
                took = time.monotonic() - began
                if took > self.renew_every.total_seconds() / 2:
                    log.warning(f"lease {self.role}: a renewal took {took:.1f} s (a busy machine or storage)")
                if self.lost:
                    log.error(f"lease {self.role}: {self.lost}; stopping")
                    if on_lost is not None:
                        on_lost(self.lost)
                    return

        self._renewer = threading.Thread(target=loop, name=f"pulse-lease-{self.role}", daemon=True)
        self._renewer.start()

    def release(self) -> None:
        """Give the lease up (a clean stop), so the next run starts without waiting."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=30)
        if self.lost or self.valid_until is None:
            return
        try:
            self.store.append(self._record("release"))
        except Exception as exc:
            log.warning(f"lease {self.role}: could not release it ({exc}); it expires in {self.ttl}")
        self.valid_until = None


class Leases:
    """The leases one command holds (`pipeline all`: both roles), taken and given up together."""

    def __init__(self, leases: list[WriterLease]) -> None:
        self.leases = leases

    @classmethod
    def on_lake(
        cls, settings: PulseSettings, command: str, roles: Iterable[str], spark: Callable[[], SparkSession]
    ) -> Leases:
        """`command`'s leases on the lake of `settings`: Delta tables under `<checkpoints>/_leases/<role>`,
        committed by delta-rs on a local lake and by Spark on a cloud one (`spark` is called only then)."""

        def lease(role: str) -> WriterLease:
            path = lease_path(settings, role)
            return WriterLease(DeltaLeaseStore(path, None if committed_by_deltalake(path) else spark()), role,
                               command)  # fmt: skip

        return cls([lease(role) for role in sorted(set(roles))])

    def acquire(self) -> None:
        taken: list[WriterLease] = []
        try:
            for lease in self.leases:
                lease.acquire()
                taken.append(lease)
        except BaseException:
            for lease in taken:
                lease.release()
            raise

    def check(self) -> None:
        for lease in self.leases:
            lease.check()

    def start_renewing(self, on_lost: Callable[[str], None] | None = None) -> None:
        for lease in self.leases:
            lease.start_renewing(on_lost)

    def release(self) -> None:
        for lease in self.leases:
            lease.release()
