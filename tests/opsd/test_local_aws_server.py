import json
import os
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest
from moto.iam.access_control import PermissionResult

from opsd.local_aws import LOCAL_AWS_KEY, attach_running_endpoint
from opsd.local_aws_server import bucket_permission, remembering
from opsd.local_aws_state import StateKeeper
from opsd.settings import Settings, load_settings
from opsd.state import OpsState
from opsd.storage_policy import tls_only_statement

BUCKET = "drawing-analysis-backups-local"


def bucket_with(*statements: dict) -> SimpleNamespace:
    policy = {"Version": "2012-10-17", "Statement": list(statements)}
    return SimpleNamespace(policy=json.dumps(policy).encode())


def test_tls_only_statement_lets_requests_over_tls_through() -> None:
    bucket = bucket_with(tls_only_statement(BUCKET))
    result = bucket_permission(bucket, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/backup-x.db")
    assert result == PermissionResult.NEUTRAL


def test_a_deny_whose_condition_holds_still_denies() -> None:
    statement = {
        **tls_only_statement(BUCKET),
        "Condition": {"Bool": {"aws:SecureTransport": "true"}},
    }
    result = bucket_permission(
        bucket_with(statement), "s3:PutObject", f"arn:aws:s3:::{BUCKET}/backup-x.db"
    )
    assert result == PermissionResult.DENIED


def test_unconditional_deny_denies() -> None:
    statement = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:DeleteObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/*",
    }
    bucket = bucket_with(statement)
    assert bucket_permission(bucket, "s3:DeleteObject", f"arn:aws:s3:::{BUCKET}/k") == (
        PermissionResult.DENIED
    )
    assert bucket_permission(bucket, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/k") == (
        PermissionResult.NEUTRAL
    )


def test_no_policy_is_neutral() -> None:
    assert bucket_permission(SimpleNamespace(policy=None), "s3:GetObject", "arn:aws:s3:::b/k") == (
        PermissionResult.NEUTRAL
    )


def test_a_task_by_hand_finds_the_running_local_endpoint(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert attach_running_endpoint(settings).aws_endpoint_url is None  # no state yet
    state = OpsState(settings.ops_state_path)
    running = {
        "endpoint": "https://127.0.0.1:4566",
        "ca_bundle": "/x/cert.pem",
        "host": socket.gethostname(),
    }
    state.set(LOCAL_AWS_KEY, {**running, "pid": 2**22 + 12345})  # a process that is gone
    assert attach_running_endpoint(settings).aws_endpoint_url is None
    state.set(LOCAL_AWS_KEY, {**running, "pid": os.getpid()})
    state.close()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "")  # restored by monkeypatch afterwards
    monkeypatch.setenv("AWS_CA_BUNDLE", "")
    attached = attach_running_endpoint(settings)
    assert attached.aws_endpoint_url == "https://127.0.0.1:4566"
    assert os.environ["AWS_CA_BUNDLE"] == "/x/cert.pem"


def test_outside_local_mode_nothing_is_attached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    for kind in ("DRAWINGS", "MODELS", "BACKUPS"):
        monkeypatch.setenv(f"S3_BUCKET_{kind}", f"b-{kind.lower()}")
    settings = load_settings()
    assert attach_running_endpoint(settings) is settings


def test_the_endpoint_notes_changes_only_after_requests_that_may_change_state(
    tmp_path: Path,
) -> None:
    closed: list[bool] = []

    class Answer(list):  # type: ignore[type-arg]
        def close(self) -> None:
            closed.append(True)

    def app(environ: dict, start_response: object) -> Answer:
        return Answer([b"body"])

    keeper = StateKeeper(tmp_path / "state.pickle")
    wrapped = remembering(app, keeper)
    assert list(wrapped({"REQUEST_METHOD": "GET"}, print)) == [b"body"]
    assert not keeper._changed.is_set()
    assert list(wrapped({"REQUEST_METHOD": "PUT"}, print)) == [b"body"]
    assert keeper._changed.is_set()
    assert closed == [True, True]
