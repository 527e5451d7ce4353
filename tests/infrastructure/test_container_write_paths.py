"""Each path a container writes is writable by the uid it runs as, given its task definition's
volumes and its image: the root file system is read-only, an EFS volume is written through
the access point's POSIX user, and on Fargate a task volume is root's with mode 0755 unless
the image declares a VOLUME at its path (then it keeps the image's owner and mode)."""

from __future__ import annotations

import shlex
from pathlib import PurePosixPath
from typing import Any

import pytest

from tests.infrastructure.cfn_model import REPO, Resolver, container, container_variables
from tests.infrastructure.dockerfile_model import Image, parse

IMAGES = {"AppTaskDefinition": "Dockerfile.prod", "TasksTaskDefinition": "Dockerfile.tasks"}


def written_paths(image: Image, variables: dict[str, str]) -> dict[str, str]:
    """Directory -> why the container writes there."""
    paths = {
        str(PurePosixPath(variables["DATABASE_PATH"]).parent): "DATABASE_PATH (and its journal)",
        str(PurePosixPath(variables["OPS_STATE_PATH"]).parent): "OPS_STATE_PATH",
        variables["SCRATCH_DIR"]: "SCRATCH_DIR",
    }
    command = " ".join(image.cmd)
    words = shlex.split(command.split("-c", 1)[1]) if " -c " in f" {command} " else image.cmd
    if "--worker-tmp-dir" in words:
        paths[words[words.index("--worker-tmp-dir") + 1]] = "gunicorn --worker-tmp-dir"
    return paths


def mounts_of(resolver: Resolver, task_definition: str) -> dict[str, dict[str, Any]]:
    volumes = {v["Name"]: v for v in resolver.properties(task_definition)["Volumes"]}
    definition = container(resolver, task_definition)
    return {m["ContainerPath"]: volumes[m["SourceVolume"]] for m in definition["MountPoints"]}


def access_point(resolver: Resolver, volume: dict[str, Any]) -> dict[str, Any] | None:
    efs = volume.get("EFSVolumeConfiguration")
    if not efs:
        return None
    logical_id = efs["AuthorizationConfig"]["AccessPointId"].removeprefix("<ref:").rstrip(">")
    return resolver.properties(logical_id)


def owner_and_mode(
    resolver: Resolver, image: Image, mount_path: str, volume: dict[str, Any]
) -> tuple[int, int, int]:
    """(uid, gid, mode) of the mounted directory as the container sees it."""
    point = access_point(resolver, volume)
    if point is not None:
        root = point["RootDirectory"]["CreationInfo"]
        return int(root["OwnerUid"]), int(root["OwnerGid"]), int(root["Permissions"], 8)
    return image.volumes.get(mount_path, (0, 0, 0o755))


def writable(uid: int, gid: int, owner: tuple[int, int, int]) -> bool:
    owner_uid, owner_gid, mode = owner
    if uid == 0 or mode & 0o002:
        return True
    if uid == owner_uid:
        return bool(mode & 0o200)
    return owner_gid == gid and bool(mode & 0o020)


def effective_user(resolver: Resolver, task_definition: str, image: Image) -> tuple[int, int]:
    definition = container(resolver, task_definition)
    if "User" in definition:
        uid, _, gid = str(definition["User"]).partition(":")
        return int(uid), int(gid or uid)
    return image.user


@pytest.mark.parametrize("task_definition", sorted(IMAGES))
def test_every_written_path_is_writable_by_the_containers_user(task_definition: str) -> None:
    resolver = Resolver()
    image = parse(REPO / IMAGES[task_definition])
    uid, gid = effective_user(resolver, task_definition, image)
    assert uid == 10001, f"{IMAGES[task_definition]} runs as {uid}"
    assert container(resolver, task_definition)["ReadonlyRootFilesystem"] is True
    mounts = mounts_of(resolver, task_definition)
    variables = {**image.env, **container_variables(resolver, task_definition)}
    for path, why in written_paths(image, variables).items():
        mount = max(
            (m for m in mounts if PurePosixPath(path).is_relative_to(m)), key=len, default=None
        )
        assert mount is not None, f"{why}: {path} is on the read-only root file system"
        owner = owner_and_mode(resolver, image, mount, mounts[mount])
        point = access_point(resolver, mounts[mount])
        if point is not None:  # NFS sees the access point's POSIX user, whoever writes
            assert (int(point["PosixUser"]["Uid"]), int(point["PosixUser"]["Gid"])) == (uid, gid)
        assert writable(uid, gid, owner), (
            f"{why}: {path} is on {mount}, owned {owner[0]}:{owner[1]} mode {owner[2]:o}, "
            f"not writable by {uid}:{gid}"
            + ("" if mount in image.volumes else f" (declare VOLUME {mount} in the image)")
        )


def test_the_parser_reads_the_images() -> None:
    app, tasks = parse(REPO / "Dockerfile.prod"), parse(REPO / "Dockerfile.tasks")
    assert app.user == tasks.user == (10001, 10001)
    assert tasks.directory("/scratch")[:2] == (10001, 10001)
    assert app.directory("/data")[:2] == (10001, 10001)
    assert "--worker-tmp-dir" in " ".join(app.cmd)
