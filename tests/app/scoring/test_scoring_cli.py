"""python -m app.scoring: generate, train (to a file and to S3), package; exit codes."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from app.scoring import __main__ as cli
from app.scoring.artefact import bundle_from_bytes
from app.scoring.store import MODEL_KEY, load_latest
from app.scoring.synthetic import MANIFEST_NAME

BUCKET = "models-cli-test"


def test_generate_writes_drawings_and_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "drawings"
    assert cli.main(["generate", "--out", str(out), "--per-age", "1", "--seed", "3",
                     "--size", "64"]) == 0  # fmt: skip
    with (out / MANIFEST_NAME).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    drawings = [*out.glob("*.png"), *out.glob("*.jpg")]
    assert len(rows) == 17 and len(drawings) == 17
    assert "wrote 17 drawings" in capsys.readouterr().out


def test_train_writes_the_artefact_and_uploads_a_new_version(
    reference_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3_BUCKET_MODELS", BUCKET)
    out = tmp_path / "model.npz"
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        code = cli.main([
            "train", "--images", str(reference_set),
            "--manifest", str(reference_set / MANIFEST_NAME),
            "--percentile", "99", "--out", str(out), "--upload",
        ])  # fmt: skip
        assert code == 0
        loaded = load_latest(s3, BUCKET, MODEL_KEY)
    written = bundle_from_bytes(out.read_bytes())
    assert written.default_percentile == 99.0
    assert loaded.source == "s3" and loaded.bundle.model_version == written.model_version


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--images", "x", "--manifest", "y"], "give --out FILE, --upload, or both"),
        (["train", "--images", "x", "--manifest", "y", "--out", "m.npz", "--percentile", "30"],
         "percentile 30.0 is outside"),
        (["generate", "--out", "x", "--per-age", "0"], "--per-age must be at least 1"),
    ],
)  # fmt: skip
def test_usage_problems_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_bad_arguments_exit_2_through_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--percentile", "high"])
    assert exit_info.value.code == 2


def test_training_failure_exits_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "manifest.csv").write_text("file,age\nmissing.png,5\n")
    code = cli.main(["train", "--images", str(tmp_path), "--manifest",
                     str(tmp_path / "manifest.csv"), "--out", str(tmp_path / "m.npz")])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert err == f"error: manifest line 2: missing.png not found in {tmp_path}\n"
    assert not (tmp_path / "m.npz").exists()


def test_package_builds_a_loadable_model_from_the_fixed_seed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "PACKAGE_PER_GROUP", 21)  # the real run: 120 per group at 512 px
    monkeypatch.setattr(cli, "PACKAGE_IMAGE_SIZE", 96)
    out = tmp_path / "packaged.npz"
    assert cli.main(["package", "--out", str(out)]) == 0
    bundle = bundle_from_bytes(out.read_bytes())
    assert bundle.model_version.startswith("packaged-")


def test_module_runs_as_a_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.scoring", "--help"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0
    assert all(name in result.stdout for name in ("generate", "train", "package"))


def test_upload_outside_local_mode_needs_the_buckets_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    assert cli.main(["train", "--images", "x", "--manifest", "y", "--upload"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "must be set outside local mode" in err
