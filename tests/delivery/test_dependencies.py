"""Every dependency the shipped code declares is one it imports: a package is installed on every job
cluster and in every dashboard image, so one that nothing imports is weight and attack surface only.

The tool extras (`infra`, `dev`) are not shipped and are not checked here.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tomllib
from pathlib import Path

from tests.delivery.delivery_testkit import REPO_ROOT

SHIPPED_CODE = ("app", "dashboard")
SHIPPED_EXTRAS = ("pipeline", "dashboard")


def declared(pyproject: Path = REPO_ROOT / "pyproject.toml") -> set[str]:
    """The distributions the base install and the shipped extras declare."""
    project = tomllib.loads(pyproject.read_text())["project"]
    specs = project["dependencies"] + [s for e in SHIPPED_EXTRAS for s in project["optional-dependencies"][e]]
    return {re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0].lower() for spec in specs}


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
    assert unused(declared(), imported_modules()) == set(), (
        "declared in pyproject.toml (base or a shipped extra) but imported nowhere in app/ or dashboard/"
    )


def test_the_rule_finds_an_unused_namespace_package() -> None:
    # azure-storage-file-datalake shares the `azure` namespace with the blob SDK the dashboard imports:
    # the check must still see that nothing imports `azure.storage.filedatalake`.
    modules = imported_modules()
    assert any(m.startswith("azure.storage.blob") for m in modules)
    assert unused({"azure-storage-blob"}, modules) == set()
    assert packages_of("azure-storage-blob") == {"azure.storage.blob"}
    assert unused({"azure-storage-blob"}, modules - {m for m in modules if m.startswith("azure.storage")})
