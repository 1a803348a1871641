"""Every dependency the shipped code declares is one it imports: a package is installed on every job
cluster and in every dashboard image, so one that nothing imports is weight and attack surface only.

The tool extras (`infra`, `deploy`, `dev`) are not shipped and are not checked here.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tomllib
from pathlib import Path

from tests.delivery.delivery_testkit import REPO_ROOT

# Each shipped distribution: its pyproject, the extras that ship with it, the code it holds.
SHIPPED = {
    "pulse (the jobs' wheel)": (REPO_ROOT / "pyproject.toml", ("pipeline",), ("app", "core")),
    "pulse-dashboard (the image)": (REPO_ROOT / "dashboard" / "pyproject.toml", (), ("dashboard",)),
    "pulse-core (the image)": (REPO_ROOT / "core" / "pyproject.toml", (), ("core",)),
}
SHIPPED_CODE = ("app", "core", "dashboard")


def pins(pyproject: Path, extras: tuple[str, ...] = ()) -> dict[str, str]:
    """Distribution name -> its requirement, for the base install and `extras` of one pyproject."""
    project = tomllib.loads(pyproject.read_text())["project"]
    specs = project["dependencies"] + [s for e in extras for s in project["optional-dependencies"][e]]
    return {re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0].lower(): spec for spec in specs}


def declared(
    pyproject: Path = REPO_ROOT / "pyproject.toml", extras: tuple[str, ...] = ("pipeline",)
) -> set[str]:
    """The distributions the base install and the shipped extras declare."""
    return set(pins(pyproject, extras))


def imported_modules(roots: tuple[str, ...] = SHIPPED_CODE) -> set[str]:
    """Every dotted module name the shipped code imports (`from a.b import c` gives a.b and a.b.c)."""
    found: set[str] = set()
    for root in roots:
        for path in (REPO_ROOT / root).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    found |= {alias.name for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def packages_of(distribution: str) -> set[str]:
    """The importable packages and modules a distribution installs, as dotted names (namespace
    folders such as `azure` are skipped: the regular package inside them is the distribution's own)."""
    names = set()
    for file in importlib.metadata.distribution(distribution).files or []:
        parts = Path(str(file)).parts
        if parts[0].startswith("..") or parts[0].endswith((".dist-info", ".libs", ".data")):
            continue
        if parts[-1] == "__init__.py":
            names.add(".".join(parts[:-1]))
        elif len(parts) == 1 and parts[0].endswith(".py"):
            names.add(parts[0][:-3])
        elif len(parts) == 1 and parts[0].endswith(".so"):
            names.add(parts[0].split(".")[0])
    # Keep the outermost regular packages only.
    return {n for n in names if not any(n.startswith(f"{other}.") for other in names if other != n)}


def unused(distributions: set[str], modules: set[str]) -> set[str]:
    """The distributions none of whose packages is imported."""
    return {
        dist
        for dist in distributions
        if not any(m == p or m.startswith(f"{p}.") for p in packages_of(dist) for m in modules)
    }


def test_every_shipped_dependency_is_imported() -> None:
    for name, (pyproject, extras, code) in SHIPPED.items():
        assert unused(declared(pyproject, extras), imported_modules(code)) == set(), (
            f"{name}: declared in {pyproject.relative_to(REPO_ROOT)} but imported nowhere in {code}"
        )


def test_a_distribution_shared_by_two_deployables_has_one_pin() -> None:
    """The core's pins are the pipeline's: the image and the job cluster run the same versions."""
    everything: dict[str, set[str]] = {}
    for pyproject, extras, _ in SHIPPED.values():
        for name, spec in pins(pyproject, extras).items():
            everything.setdefault(name, set()).add(spec.replace(" ", ""))
    assert {name: specs for name, specs in everything.items() if len(specs) > 1} == {}


def test_the_rule_finds_an_unused_namespace_package() -> None:
    # azure-storage-file-datalake shares the `azure` namespace with the blob SDK the dashboard imports:
    # the check must still see that nothing imports `azure.storage.filedatalake`.
    modules = imported_modules()
    assert any(m.startswith("azure.storage.blob") for m in modules)
    assert unused({"azure-storage-blob"}, modules) == set()
    assert packages_of("azure-storage-blob") == {"azure.storage.blob"}
    assert unused({"azure-storage-blob"}, modules - {m for m in modules if m.startswith("azure.storage")})
