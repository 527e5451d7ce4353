"""The two images: entry points, users and dependencies the template and the design rely on."""

from __future__ import annotations

import re

from tests.infrastructure.cfn_model import REPO, Resolver

APP = (REPO / "Dockerfile.prod").read_text()
TASKS = (REPO / "Dockerfile.tasks").read_text()


# Every install takes its versions from the lock the tests ran with (tests/test_constraints.py).
PINNED_INSTALL = r"pip install --constraint constraints.txt (\S+)"


def final_stage(dockerfile: str) -> str:
    return dockerfile.rsplit("\nFROM ", 1)[1]


def test_both_images_run_as_the_uid_the_efs_access_point_enforces() -> None:
    posix_user = Resolver().properties("DataAccessPoint")["PosixUser"]
    for dockerfile in (APP, TASKS):
        assert f"USER {posix_user['Uid']}:{posix_user['Gid']}" in final_stage(dockerfile)
        assert f"--uid {posix_user['Uid']}" in dockerfile


def test_tasks_image_installs_the_core_only_and_runs_python_m_tasks() -> None:
    installs = re.findall(PINNED_INSTALL, TASKS)
    # The core and psycopg (publish-metrics on PostgreSQL), never the app extra (no web stack).
    assert installs == ['".[postgres]"'], "the tasks image must not install the app extra"
    assert 'ENTRYPOINT ["python", "-m", "tasks"]' in final_stage(TASKS)


def test_app_image_migrates_with_backup_then_serves_gunicorn_with_health_check() -> None:
    assert re.findall(PINNED_INSTALL, APP) == ['".[app]"']
    stage = final_stage(APP)
    assert "HEALTHCHECK" in stage and "/health" in stage
    command = stage.split("\nCMD ", 1)[1]
    assert command.index("python -m app migrate &&") < command.index("exec gunicorn")
    assert "uvicorn.workers.UvicornWorker" in command
    assert "'app.main:create_app()'" in command
    port = Resolver().properties("AppTaskDefinition")["ContainerDefinitions"][0]["PortMappings"]
    assert f"0.0.0.0:{port[0]['ContainerPort']}" in command


def test_the_build_context_holds_everything_the_images_copy() -> None:
    """.dockerignore lets in only what it names: a file copied but not named breaks the build."""
    let_in = {
        line[1:].rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for dockerfile in (APP, TASKS):
        for sources in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.MULTILINE):
            for source in sources.split():
                assert source in let_in, f"{source} is copied but .dockerignore keeps it out"
