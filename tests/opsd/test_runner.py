import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from opsd.results import Status
from opsd.runner import TaskContext, execute, main, parse_command_line
from opsd.schedule import TaskSpec
from opsd.settings import Settings
from opsd.state import OpsState

SAMPLE = TaskSpec("sample", "tests.opsd.sample_tasks", "rate(5 minutes)", "a sample task")
REGISTRY = {"sample": SAMPLE}


def run_sample(make_ctx, behave: str):  # type: ignore[no-untyped-def]
    ctx: TaskContext = make_ctx("sample")
    _, args = parse_command_line(["sample", "--behave", behave], REGISTRY)
    return ctx, execute(SAMPLE, ctx, args)


@pytest.mark.parametrize(
    ("behave", "status", "code"),
    [
        ("ok", Status.OK, 0),
        ("skip", Status.SKIPPED, 0),
        ("violation", Status.VIOLATION, 3),
        ("fail", Status.FAILED, 1),
        ("crash", Status.FAILED, 1),
        ("usage", Status.USAGE, 2),
    ],
)
def test_status_maps_to_exit_code(make_ctx, behave: str, status: Status, code: int) -> None:  # type: ignore[no-untyped-def]
    _, result = run_sample(make_ctx, behave)
    assert result.status is status and result.task == "sample"
    assert result.exit_code == code


def test_every_run_is_recorded_in_the_ops_state(make_ctx, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    ctx, _ = run_sample(make_ctx, "fail")
    state = OpsState(settings.ops_state_path)
    last = state.last_runs()["sample"]
    assert last["status"] == "failed"
    assert last["run_id"] == ctx.run_id
    assert last["message"] == "upload backup-2026-11-24-06-00.db: AccessDenied"


def test_task_metrics_are_published_for_every_run(make_ctx, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    run_sample(make_ctx, "ok")
    run_sample(make_ctx, "crash")
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    listed = cloudwatch.list_metrics(Namespace=settings.metrics_namespace)["Metrics"]
    names = {m["MetricName"] for m in listed}
    assert {"TaskSucceeded", "TaskFailed", "TaskDurationSeconds"} <= names
    dimensions = {d["Name"]: d["Value"] for d in listed[0]["Dimensions"]}
    assert dimensions == {"Environment": "local", "Task": "sample"}


def test_metrics_off_publishes_nothing(make_ctx, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    settings.enable_metrics = False
    _, result = run_sample(make_ctx, "ok")
    assert result.status is Status.OK
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    assert cloudwatch.list_metrics(Namespace=settings.metrics_namespace)["Metrics"] == []


def test_stop_request_ends_a_run_as_failed(make_ctx) -> None:  # type: ignore[no-untyped-def]
    ctx: TaskContext = make_ctx("sample")
    ctx.stop.set()
    _, args = parse_command_line(["sample", "--behave", "slow"], REGISTRY)
    result = execute(SAMPLE, ctx, args)
    assert result.status is Status.FAILED
    assert result.message == "stopped: shutdown requested"


def test_unknown_option_is_a_one_line_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_command_line(["sample", "--nope"], REGISTRY)
    assert caught.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == "python -m tasks sample: unrecognized arguments: --nope (see --help)"


def test_usage_error_inside_a_task_exits_2(aws, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert main(["sample", "--behave", "usage"], REGISTRY) == 2
    assert capsys.readouterr().err.strip() == "sample: --at: not a timestamp"


def test_invalid_setting_exits_2_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SQLITE_BUSY_TIMEOUT_MS", "-5")
    assert main(["sample"], REGISTRY) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("configuration error: SQLITE_BUSY_TIMEOUT_MS:")


def test_json_output_keeps_stdout_a_single_document(
    aws,
    capsys: pytest.CaptureFixture[str],  # type: ignore[no-untyped-def]
) -> None:
    assert main(["sample", "--json"], REGISTRY) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"done": True}
    assert '"event": "task finished"' in captured.err


def test_one_task_finished_line_per_run(aws, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert main(["sample", "--behave", "fail"], REGISTRY) == 1
    captured = capsys.readouterr()
    finished = [json.loads(line) for line in captured.out.splitlines() if '"task finished"' in line]
    assert len(finished) == 1
    assert finished[0]["status"] == "failed" and finished[0]["task"] == "sample"
    assert captured.err.strip() == (
        "sample failed: upload backup-2026-11-24-06-00.db: AccessDenied"
    )


@pytest.mark.slow
def test_sigterm_ends_a_cli_run_with_exit_1(tmp_path: Path) -> None:
    env = {**os.environ, "ENABLE_METRICS": "false", "PYTHONPATH": str(Path.cwd())}
    code = (
        "import sys; from opsd.runner import main; from opsd.schedule import TaskSpec;"
        "spec = TaskSpec('sample', 'tests.opsd.sample_tasks', None, 's');"
        "sys.exit(main(['sample', '--behave', 'stubborn'], {'sample': spec}))"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        env={**env, "LOG_FORMAT": "json"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:  # the handler is in place once the task has started
        if '"task started"' in line:
            break
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 1
    assert "sample failed: interrupted by SIGTERM" in err
