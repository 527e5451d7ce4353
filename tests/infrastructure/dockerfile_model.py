"""The final stage of a Dockerfile as data: its user, environment, working directory, command,
declared volumes, and the owner and mode of each directory its RUN lines create or change
(mkdir, chown, chmod), as they stand when each VOLUME is declared."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

# What the base image (python:3.11-slim-bookworm, Debian) has; everything else is root's, 0755.
BASE_IMAGE_DIRECTORIES = {"/tmp": (0, 0, 0o1777), "/var/tmp": (0, 0, 0o1777)}


@dataclass
class Image:
    user: tuple[int, int] = (0, 0)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    cmd: list[str] = field(default_factory=list)
    # directory -> (uid, gid, mode) now, and as it was when a VOLUME declared it
    directories: dict[str, tuple[int, int, int]] = field(
        default_factory=lambda: dict(BASE_IMAGE_DIRECTORIES)
    )
    volumes: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    def directory(self, path: str) -> tuple[int, int, int]:
        return self.directories.get(path, (0, 0, 0o755))


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each instruction, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        found.append((keyword.upper(), rest.strip()))
    return found


def final_stage(text: str) -> list[tuple[str, str]]:
    parsed = instructions(text)
    starts = [i for i, (keyword, _) in enumerate(parsed) if keyword == "FROM"]
    return parsed[starts[-1] :]


def _arguments(rest: str) -> list[str]:
    return list(json.loads(rest)) if rest.startswith("[") else shlex.split(rest)


def parse(path: Path) -> Image:
    image = Image()
    users: dict[str, int] = {}
    groups: dict[str, int] = {}
    for keyword, rest in final_stage(path.read_text()):
        if keyword == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                image.env[name] = value
        elif keyword == "WORKDIR":
            image.workdir = rest
        elif keyword == "USER":
            uid, _, gid = rest.partition(":")
            image.user = (int(uid), int(gid or uid))
        elif keyword == "CMD":
            image.cmd = _arguments(rest)
        elif keyword == "VOLUME":
            for volume in _arguments(rest):
                image.volumes[volume] = image.directory(volume)
        elif keyword == "RUN":
            for command in re.split(r"&&|;", rest):
                _run(shlex.split(command), image, users, groups)
    return image


def _run(words: list[str], image: Image, users: dict[str, int], groups: dict[str, int]) -> None:
    if not words:
        return
    program, arguments = words[0], words[1:]
    options = {
        a.split("=")[0]: arguments[i + 1] if i + 1 < len(arguments) else ""
        for i, a in enumerate(arguments)
        if a.startswith("--")
    }
    operands = [a for a in arguments if not a.startswith("-")]
    if program == "groupadd" and "--gid" in options:
        groups[arguments[-1]] = int(options["--gid"])
    elif program == "useradd" and "--uid" in options:
        users[arguments[-1]] = int(options["--uid"])
    elif program == "mkdir":
        for directory in operands:
            image.directories[directory] = (0, 0, 0o755)
    elif program == "chown":
        owner, *targets = operands
        user, _, group = owner.partition(":")
        uid = users.get(user, int(user) if user.isdigit() else 0)
        gid = groups.get(group, int(group) if group.isdigit() else uid) if group else uid
        for target in targets:
            image.directories[target] = (uid, gid, image.directory(target)[2])
    elif program == "chmod":
        mode, *targets = operands
        for target in targets:
            uid, gid, _ = image.directory(target)
            image.directories[target] = (uid, gid, int(mode, 8))
