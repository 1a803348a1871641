"""The pinned JVM jars: a lock file, parallel downloads from Maven Central, and a machine-wide cache.

`BUNDLES` pins the top-level artifacts. `jars.lock` (next to this module) lists every file each bundle
needs, with its SHA-1, as Ivy resolved it once (`pulse jars lock`). Resolving a bundle is then a
plain parallel download of the locked files, each checked against its SHA-1, into a cache shared by
every clone on the machine (`PULSE_JAR_CACHE`, default `~/.cache/pulse/maven`, laid out like a Maven
repository). The bundle folder `<jars>/<bundle>/` links the cached files and is stamped with the
lock's lines, so a second resolve does nothing and a changed lock re-resolves by itself.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pulse.devstack.java import find_java

SPARK_VERSION = "4.2.0"
DELTA_VERSION = "4.4.0"
KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.25.3"

MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
LOCK_FILE = Path(__file__).with_name("jars.lock")
DOWNLOAD_THREADS = 8
_TIMEOUT_S = 60


@dataclass(frozen=True)
class Coordinate:
    """One Maven artifact, `group:artifact:version`."""

    group: str
    artifact: str
    version: str

    def __str__(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}"


BUNDLES: dict[str, tuple[Coordinate, ...]] = {
    # Spark's Kafka source and Delta; the jars pyspark already ships are left off the classpath.
    "spark": (
        Coordinate("org.apache.spark", "spark-sql-kafka-0-10_2.13", SPARK_VERSION),
        Coordinate("io.delta", "delta-spark_4.2_2.13", DELTA_VERSION),
        Coordinate("io.delta", "delta-storage", DELTA_VERSION),
    ),
    # A KRaft broker and a log4j2 binding.
    "kafka": (
        Coordinate("org.apache.kafka", "kafka_2.13", KAFKA_VERSION),
        Coordinate("org.apache.logging.log4j", "log4j-slf4j2-impl", LOG4J_VERSION),
        Coordinate("org.apache.logging.log4j", "log4j-core", LOG4J_VERSION),
    ),
    # Kafka's perf tools (ProducerPerformance), for the benchmarks; used beside the kafka bundle.
    "tools": (Coordinate("org.apache.kafka", "kafka-tools", KAFKA_VERSION),),
}

_JAR_NAME = re.compile(r"^(?P<artifact>.+?)-(?P<version>\d+(?:\.\d+)+[^/]*)\.jar$")


class JarResolutionError(RuntimeError):
    """The jars could not be fetched or checked. The message says what to do."""


@dataclass(frozen=True)
class LockedJar:
    """One file of a bundle, as the lock pins it."""

    bundle: str
    group: str
    artifact: str
    version: str
    classifier: str
    sha1: str

    @property
    def file_name(self) -> str:
        suffix = f"-{self.classifier}" if self.classifier else ""
        return f"{self.artifact}-{self.version}{suffix}.jar"

    @property
    def repo_path(self) -> str:
        """Path of the file in a Maven repository (and in the machine cache)."""
        return f"{self.group.replace('.', '/')}/{self.artifact}/{self.version}/{self.file_name}"

    def line(self) -> str:
        return "\t".join(
            (self.bundle, self.group, self.artifact, self.version, self.classifier or "-", self.sha1)
        )


def artifact_name(jar_file: str) -> str:
    """The artifact id of a jar file name without its version: `kafka-clients-3.9.2.jar` → `kafka-clients`."""
    match = _JAR_NAME.match(jar_file)
    return match.group("artifact") if match else jar_file.removesuffix(".jar")


def pins_fingerprint() -> str:
    """A short hash of every bundle's pinned coordinates; the lock records the one it was made from."""
    text = "\n".join(f"{name} {c}" for name, coordinates in BUNDLES.items() for c in coordinates)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_lock(path: Path | None = None) -> list[LockedJar]:
    """The locked files of every bundle (from `LOCK_FILE` unless `path` is given).

    Raises:
        JarResolutionError: when the lock is missing or was made from other pins than `BUNDLES`.
    """
    path = path or LOCK_FILE
    if not path.exists():
        raise JarResolutionError(f"{path} is missing: run `pulse jars lock` to create it.")
    locked: list[LockedJar] = []
    made_from = None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        if raw.startswith("# pins:"):
            made_from = raw.split(":", 1)[1].strip()
        if not raw.strip() or raw.startswith("#"):
            continue
        fields = raw.split("\t")
        if len(fields) != 6:
            raise JarResolutionError(f"{path}:{number}: expected 6 tab-separated fields, got {len(fields)}")
        bundle, group, artifact, version, classifier, sha1 = fields
        classifier = "" if classifier == "-" else classifier
        locked.append(LockedJar(bundle, group, artifact, version, classifier, sha1))
    if made_from != pins_fingerprint():
        raise JarResolutionError(
            f"{path} was made from other pins than app/pulse/devstack/jars.py BUNDLES: run `pulse jars lock`."
        )
    return locked


def bundle_lock(bundle: str, path: Path | None = None) -> list[LockedJar]:
    """The locked files of one bundle."""
    if bundle not in BUNDLES:
        raise JarResolutionError(f"unknown bundle {bundle!r}; choose from {', '.join(BUNDLES)}")
    return [jar for jar in read_lock(path) if jar.bundle == bundle]


def bundle_fingerprint(bundle: str, path: Path | None = None) -> str:
    """A short hash of a bundle's locked files; it changes whenever the lock changes."""
    text = "\n".join(jar.line() for jar in bundle_lock(bundle, path))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def bundle_dir(jars_dir: Path, bundle: str) -> Path:
    """Folder holding one resolved bundle."""
    return jars_dir / bundle


def is_resolved(jars_dir: Path, bundle: str) -> bool:
    """True when the bundle folder holds exactly the locked files."""
    stamp = bundle_dir(jars_dir, bundle) / ".resolved"
    return stamp.exists() and stamp.read_text().strip() == bundle_fingerprint(bundle)


def machine_cache() -> Path:
    """The jar cache every clone on this machine shares (`PULSE_JAR_CACHE`)."""
    configured = os.environ.get("PULSE_JAR_CACHE")
    if configured:
        return Path(configured).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "pulse" / "maven"


def maven_repo() -> str:
    """Where jars are downloaded from (`PULSE_MAVEN_REPO`, for a mirror); Maven Central by default."""
    return os.environ.get("PULSE_MAVEN_REPO", MAVEN_CENTRAL).rstrip("/")


def _sha1(path: Path) -> str:
    digest = hashlib.sha1()  # noqa: S324 - Maven Central publishes SHA-1 checksums
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _Progress:
    """Counts finished files and bytes; prints a line at most every `every` seconds."""

    def __init__(self, total: int, echo: Callable[[str], None], every: float = 2.0) -> None:
        self.total, self.echo, self.every = total, echo, every
        self.done = self.fetched = self.bytes = 0
        self._lock = threading.Lock()
        self._last = time.monotonic()

    def add(self, size: int, fetched: bool) -> None:
        with self._lock:
            self.done += 1
            self.fetched += int(fetched)
            self.bytes += size if fetched else 0
            now = time.monotonic()
            if now - self._last >= self.every and self.done < self.total:
                self._last = now
                self.echo(f"  jars: {self.done}/{self.total} files, {self.bytes / 1e6:.0f} MB downloaded…")


def _fetch(jar: LockedJar, cache: Path, repo: str) -> tuple[Path, bool]:
    """The cached file of `jar`, downloading and checking it first when the cache lacks it."""
    target = cache / jar.repo_path
    if target.exists():
        return target, False
    url = f"{repo}/{jar.repo_path}"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".part", delete=False) as part:
        partial = Path(part.name)
        try:
            with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:  # noqa: S310 - https repo
                shutil.copyfileobj(response, part)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise JarResolutionError(
                f"could not download {url}: {exc}. Check the network or set PULSE_MAVEN_REPO to a mirror."
            ) from None
    actual = _sha1(partial)
    if actual != jar.sha1:
        partial.unlink()
        raise JarResolutionError(
            f"{url} has SHA-1 {actual}, the lock expects {jar.sha1}: the download or the mirror is corrupt."
        )
    partial.replace(target)  # atomic: a concurrent resolve sees the whole file or none
    return target, True


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system: copy instead
        shutil.copy2(source, target)


def resolve_many(
    jars_dir: Path, bundles: Iterable[str], *, echo: Callable[[str], None] = print
) -> dict[str, list[Path]]:
    """Make each bundle folder hold its locked jars, downloading what the machine cache lacks in parallel.

    Args:
        jars_dir: the bundle folders' root (`$PULSE_HOME/jars`).
        bundles: bundle names, e.g. `("spark", "kafka")`.
        echo: progress sink; silent when everything is already resolved.

    Returns:
        The jar files of each bundle.

    Raises:
        JarResolutionError: when a download fails or a checksum does not match; nothing half-done is
            left behind as resolved.
    """
    wanted = [name for name in dict.fromkeys(bundles) if not is_resolved(jars_dir, name)]
    if wanted:
        locked = [jar for name in wanted for jar in bundle_lock(name)]
        cache, repo = machine_cache(), maven_repo()
        unique = {jar.repo_path: jar for jar in locked}
        echo(f"Fetching the {', '.join(wanted)} jars: {len(unique)} files, cached in {cache}")
        started = time.monotonic()
        progress = _Progress(len(unique), echo)

        def fetch(jar: LockedJar) -> tuple[str, Path]:
            path, fetched = _fetch(jar, cache, repo)
            progress.add(path.stat().st_size, fetched)
            return jar.repo_path, path

        with ThreadPoolExecutor(DOWNLOAD_THREADS, thread_name_prefix="jars") as pool:
            cached = dict(pool.map(fetch, unique.values()))
        for name in wanted:
            files = [(jar, cached[jar.repo_path]) for jar in locked if jar.bundle == name]
            _install_bundle(jars_dir, name, files)
        echo(
            f"  {len(unique)} jars ready ({progress.fetched} downloaded, {progress.bytes / 1e6:.0f} MB) "
            f"in {time.monotonic() - started:.0f} s → {jars_dir}"
        )
    return {name: bundle_jars(jars_dir, name) for name in bundles}


def _install_bundle(jars_dir: Path, bundle: str, files: list[tuple[LockedJar, Path]]) -> None:
    staging = jars_dir / f".{bundle}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for jar, path in files:
        _link(path, staging / jar.file_name)
    (staging / ".resolved").write_text(bundle_fingerprint(bundle) + "\n")
    target = bundle_dir(jars_dir, bundle)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)


def resolve(jars_dir: Path, bundle: str, *, echo: Callable[[str], None] = print) -> list[Path]:
    """The jar files of one bundle, fetched first unless already resolved (see `resolve_many`)."""
    return resolve_many(jars_dir, [bundle], echo=echo)[bundle]


def bundle_jars(jars_dir: Path, bundle: str) -> list[Path]:
    """The jar files of a resolved bundle, sorted."""
    return sorted(bundle_dir(jars_dir, bundle).glob("*.jar"))


def spark_extra_jars(jars_dir: Path, pyspark_jars: Path) -> list[Path]:
    """The Spark bundle minus every artifact pyspark already ships, so no class appears twice."""
    shipped = {artifact_name(p.name) for p in pyspark_jars.glob("*.jar")}
    return [jar for jar in bundle_jars(jars_dir, "spark") if artifact_name(jar.name) not in shipped]


# --- Making the lock (maintainers, after changing a pin) ---------------------------------------


def ivy_jar() -> Path:
    """The Ivy jar bundled with pyspark."""
    try:
        import pyspark
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise JarResolutionError("pyspark is not installed: run `make setup` first.") from exc
    candidates = sorted((Path(pyspark.__file__).parent / "jars").glob("ivy-*.jar"))
    if not candidates:
        raise JarResolutionError("pyspark ships no ivy jar; reinstall pyspark with `make setup`.")
    return candidates[-1]


def _ivy_module(bundle: str) -> str:
    deps = "\n".join(
        f'    <dependency org="{c.group}" name="{c.artifact}" rev="{c.version}"/>' for c in BUNDLES[bundle]
    )
    return (
        '<ivy-module version="2.0">\n'
        f'  <info organisation="pulse" module="{bundle}-bundle"/>\n'
        '  <configurations><conf name="default"/></configurations>\n'
        '  <dependencies defaultconfmapping="default->default">\n'
        f"{deps}\n"
        "  </dependencies>\n"
        "</ivy-module>\n"
    )


def ivy_retrieve(bundle: str, work: Path, log_path: Path) -> Path:
    """Resolve a bundle's dependency graph with Ivy into `work`; returns the folder of retrieved jars."""
    java = find_java()
    retrieved = work / bundle
    retrieved.mkdir(parents=True)
    pattern = "[organisation]@[module]@[revision]@[artifact]-[revision](-[classifier]).[ext]"
    module = work / f"{bundle}.ivy.xml"
    module.write_text(_ivy_module(bundle))
    command = [
        str(java), "-jar", str(ivy_jar()),
        "-ivy", str(module),
        "-confs", "default",
        "-m2compatible",
        "-cache", str(work / "ivy-cache"),
        "-retrieve", str(retrieved / pattern),
    ]  # fmt: skip
    with log_path.open("w") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        tail = "\n".join(log_path.read_text().splitlines()[-15:])
        raise JarResolutionError(f"Ivy could not resolve the {bundle} jars; see {log_path}:\n{tail}")
    return retrieved


def locked_from_retrieved(bundle: str, retrieved: Path) -> list[LockedJar]:
    """Lock entries from Ivy's retrieved files, named `org@module@revision@artifact-revision[-cls].jar`."""
    entries = []
    for path in sorted(retrieved.glob("*.jar")):
        group, module, revision, file_name = path.name.split("@", 3)
        rest = file_name.removesuffix(".jar").removeprefix(f"{module}-{revision}")
        entries.append(LockedJar(bundle, group, module, revision, rest.removeprefix("-"), _sha1(path)))
    return entries


def write_lock(entries: list[LockedJar], path: Path | None = None) -> None:
    """Write the lock: a header with the pins' fingerprint, then one tab-separated line per file."""
    header = [
        "# Every jar of every bundle, resolved by `pulse jars lock` from app/pulse/devstack/jars.py BUNDLES.",
        "# bundle\tgroup\tartifact\tversion\tclassifier\tsha1",
        f"# pins: {pins_fingerprint()}",
    ]
    lines = sorted(jar.line() for jar in entries)
    (path or LOCK_FILE).write_text("\n".join([*header, *lines]) + "\n")


def lock(log_dir: Path, *, path: Path | None = None, echo: Callable[[str], None] = print) -> list[LockedJar]:
    """Resolve every bundle with Ivy (in parallel, from scratch) and rewrite the lock file."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pulse-jars-lock-") as scratch:
        work = Path(scratch)
        echo(f"Resolving {', '.join(BUNDLES)} with Ivy from Maven Central (logs in {log_dir})…")
        with ThreadPoolExecutor(len(BUNDLES)) as pool:
            retrieved = dict(
                zip(
                    BUNDLES,
                    pool.map(
                        lambda name: ivy_retrieve(name, work / name, log_dir / f"jars-lock-{name}.log"),
                        BUNDLES,
                    ),
                    strict=True,
                )
            )
        entries = [jar for name, folder in retrieved.items() for jar in locked_from_retrieved(name, folder)]
    write_lock(entries, path)
    echo(f"  {len(entries)} files locked in {path or LOCK_FILE}")
    return entries
