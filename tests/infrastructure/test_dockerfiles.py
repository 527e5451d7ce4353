"""The two images: entry points, users and dependencies the template and the design rely on."""

from __future__ import annotations

import re

from tests.infrastructure.cfn_model import REPO, Resolver

APP = (REPO / "Dockerfile.prod").read_text()
TASKS = (REPO / "Dockerfile.tasks").read_text()


def final_stage(dockerfile: str) -> str:
    return dockerfile.rsplit("\nFROM ", 1)[1]


def test_both_images_run_as_the_uid_the_efs_access_point_enforces() -> None:
    posix_user = Resolver().properties("DataAccessPoint")["PosixUser"]
    for dockerfile in (APP, TASKS):
        assert f"USER {posix_user['Uid']}:{posix_user['Gid']}" in final_stage(dockerfile)
        assert f"--uid {posix_user['Uid']}" in dockerfile


def test_tasks_image_installs_the_core_only_and_runs_python_m_tasks() -> None:
    installs = re.findall(r"pip install (\S+)", TASKS)
    # The core and psycopg (publish-metrics on PostgreSQL), never the app extra (no web stack).
    assert installs == ['".[postgres]"'], "the tasks image must not install the app extra"
    assert 'ENTRYPOINT ["python", "-m", "tasks"]' in final_stage(TASKS)


def test_app_image_migrates_with_backup_then_serves_gunicorn_with_health_check() -> None:
    assert re.findall(r"pip install (\S+)", APP) == ['".[app]"']
    stage = final_stage(APP)
    assert "HEALTHCHECK" in stage and "/health" in stage
    command = stage.split("\nCMD ", 1)[1]
    assert command.index("python -m app migrate &&") < command.index("exec gunicorn")
    assert "uvicorn.workers.UvicornWorker" in command
    assert "'app.main:create_app()'" in command
    port = Resolver().properties("AppTaskDefinition")["ContainerDefinitions"][0]["PortMappings"]
    assert f"0.0.0.0:{port[0]['ContainerPort']}" in command
