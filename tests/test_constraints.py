"""constraints.txt (`make lock`) pins every dependency: each of pyproject.toml's requirements
has a pin inside its range, and the venv the tests run in holds exactly the pinned versions,
which both images install as well (tests/infrastructure/test_dockerfiles.py)."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pins(text: str) -> list[tuple[str, Version, Marker | None]]:
    """(name, version, marker) of each `name==version ; marker` line of a uv lock."""
    found = []
    for line in text.splitlines():
        if not line or line[0] in "# ":
            continue
        requirement, _, marker = line.partition(";")
        name, _, version = requirement.partition("==")
        found.append(
            (
                canonicalize_name(name.strip()),
                Version(version.strip()),
                Marker(marker.strip()) if marker.strip() else None,
            )
        )
    return found


def pins_here(text: str) -> dict[str, Version]:
    """The pins that apply to this interpreter and platform."""
    return {
        name: version for name, version, marker in pins(text) if not marker or marker.evaluate()
    }


def requirements() -> list[Requirement]:
    extras = PROJECT["optional-dependencies"].values()
    listed = [*PROJECT["dependencies"], *(line for extra in extras for line in extra)]
    return [
        requirement
        for requirement in map(Requirement, listed)
        if canonicalize_name(requirement.name) != canonicalize_name(PROJECT["name"])
    ]


def unpinned(lock: str) -> list[str]:
    """Each requirement the lock leaves out or pins outside its range, in one line."""
    pinned = pins_here(lock)
    problems = []
    for requirement in requirements():
        version = pinned.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{requirement} has no pin")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement} is pinned at {version}")
    return problems


def test_every_requirement_of_pyproject_is_pinned_inside_its_range() -> None:
    problems = unpinned((ROOT / "constraints.txt").read_text())
    assert not problems, f"constraints.txt is stale, run `make lock`: {'; '.join(problems)}"


def test_a_requirement_changed_without_a_new_lock_is_caught() -> None:
    lock = (ROOT / "constraints.txt").read_text()

    def with_structlog(*pin: str) -> str:
        lines = [line for line in lock.splitlines() if not line.startswith("structlog==")]
        return "\n".join([*lines, *pin])

    assert unpinned(with_structlog()) == ["structlog>=24.1 has no pin"]
    assert unpinned(with_structlog("structlog==25.1.0 ; sys_platform == 'win32'")) == [
        "structlog>=24.1 has no pin"
    ]
    assert unpinned(with_structlog("structlog==23.1.0")) == ["structlog>=24.1 is pinned at 23.1.0"]
    assert unpinned(with_structlog("structlog==25.1.0")) == []


def test_the_venv_holds_exactly_the_pinned_versions() -> None:
    differing = []
    for name, version in pins_here((ROOT / "constraints.txt").read_text()).items():
        try:
            installed = Version(importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            differing.append(f"{name} not installed")
            continue
        if installed != version:
            differing.append(f"{name} {installed} (pinned {version})")
    assert not differing, f"the venv differs from constraints.txt: {', '.join(differing)}"
