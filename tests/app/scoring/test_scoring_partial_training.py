"""Training on a manifest that covers only some age groups: the groups with enough drawings
are trained, the others keep the base model, the artefact says which came from where, and the
command prints a line per group (results on stdout, logs on stderr)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import boto3
import numpy as np
import pytest
from moto import mock_aws

from app.scoring import __main__ as cli
from app.scoring import training
from app.scoring.artefact import bundle_from_bytes, bundle_to_bytes
from app.scoring.features import FEATURE_VERSION
from app.scoring.model import GROUP_NAMES, ModelBundle
from app.scoring.store import MODEL_KEY, load_latest, load_packaged_bundle
from app.scoring.synthetic import MANIFEST_NAME
from app.scoring.training import TrainingError, read_manifest, train_bundle


@pytest.fixture(scope="module")
def base(reference_set: Path) -> ModelBundle:
    return train_bundle(reference_set, reference_set / MANIFEST_NAME, version_prefix="base")


def _manifest(reference: Path, target: Path, ages: set[int], extra: int = 0) -> Path:
    rows = read_manifest(reference / MANIFEST_NAME)
    chosen = [r for r in rows if r.age in ages] + [r for r in rows if r.age == 9][:extra]
    target.write_text("file,age\n" + "".join(f"{r.file},{r.age}\n" for r in chosen))
    return target


def test_only_groups_with_enough_drawings_are_trained_and_the_rest_kept(
    reference_set: Path, base: ModelBundle, tmp_path: Path
) -> None:
    manifest = _manifest(reference_set, tmp_path / "m.csv", {5, 6, 7}, extra=3)
    bundle, reports = training.train_bundle_with_report(
        reference_set, manifest, version_prefix="partial", base=base
    )

    assert [r.group for r in reports if r.source == "trained"] == ["5-7"]
    for group in GROUP_NAMES:
        if group != "5-7":
            np.testing.assert_array_equal(
                bundle.models[group].components, base.models[group].components
            )
            assert (
                bundle.sources[group].startswith("trained on") and "base-" in bundle.sources[group]
            )
    assert bundle.sources["5-7"].startswith("trained on 21 drawings in partial-")
    by_group = {r.group: r for r in reports}
    assert by_group["8-10"].drawings == 3 and by_group["8-10"].false_flag_rate is None
    assert 0.0 <= by_group["5-7"].false_flag_rate <= 0.5
    again = bundle_from_bytes(bundle_to_bytes(bundle))
    assert again.sources == bundle.sources


def test_no_group_with_enough_drawings_is_a_one_line_error(
    reference_set: Path, base: ModelBundle, tmp_path: Path
) -> None:
    manifest = _manifest(reference_set, tmp_path / "m.csv", {2, 3}, extra=0)
    with pytest.raises(TrainingError) as error:
        train_bundle(reference_set, manifest, base=base)
    assert "no age group has at least 20 drawings" in str(error.value)
    assert "\n" not in str(error.value)


def test_a_file_listed_several_times_is_read_once(
    reference_set: Path, base: ModelBundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [r for r in read_manifest(reference_set / MANIFEST_NAME) if r.age in (5, 6, 7)]
    manifest = tmp_path / "m.csv"
    lines = [f"{r.file},{r.age}\n" for r in rows] + [f"{rows[0].file},6\n"] * 4
    manifest.write_text("file,age\n" + "".join(lines))
    reads: list[Path] = []
    real = training.features_of_file
    monkeypatch.setattr(
        training, "features_of_file", lambda path, line: reads.append(path) or real(path, line)
    )
    training.train_bundle(reference_set, manifest, base=base)
    assert len(reads) == len(set(reads)) == len(rows)


def test_the_command_prints_each_group_on_stdout_and_logs_on_stderr(
    reference_set: Path, base: ModelBundle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base_file = tmp_path / "base.npz"
    base_file.write_bytes(bundle_to_bytes(base))
    manifest = _manifest(reference_set, tmp_path / "m.csv", {11, 12, 13})
    out = tmp_path / "model.npz"
    code = cli.main(
        ["train", "--images", str(reference_set), "--manifest", str(manifest),
         "--out", str(out), "--base", str(base_file)]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.splitlines()
    assert lines[0].split()[:4] == ["ages", "drawings", "components", "threshold"]
    rows = {line.split()[0]: line for line in lines[1:6]}
    assert set(rows) == set(GROUP_NAMES)
    assert rows["11-13"].split()[1] == "21" and "%" in rows["11-13"] and "trained" in rows["11-13"]
    assert "kept from base-" in rows["2-4"]
    assert not any(line.startswith("{") for line in lines)
    logged = [json.loads(line) for line in captured.err.splitlines() if line.startswith("{")]
    assert any(entry["event"] == "group ready" for entry in logged)
    assert bundle_from_bytes(out.read_bytes()).sources["11-13"].startswith("trained on 21")


def test_after_a_feature_upgrade_a_partial_upload_keeps_the_packaged_groups_and_says_why(
    reference_set: Path,
    base: ModelBundle,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The deployed model was trained on the previous feature version, so none of its groups
    can be kept: the groups not trained come from the packaged model, the table says so, and
    stderr says why the deployed one was not used."""
    bucket = "models-upgrade-test"
    monkeypatch.setenv("S3_BUCKET_MODELS", bucket)
    manifest = _manifest(reference_set, tmp_path / "m.csv", {5, 6, 7})
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        old = replace(base, feature_version=FEATURE_VERSION - 1)
        s3.put_object(Bucket=bucket, Key=MODEL_KEY, Body=bundle_to_bytes(old))
        code = cli.main(
            ["train", "--images", str(reference_set), "--manifest", str(manifest), "--upload"]
        )
        captured = capsys.readouterr()
        uploaded = load_latest(s3, bucket, MODEL_KEY)
    assert code == 0, captured.err
    packaged = load_packaged_bundle().model_version
    rows = {line.split()[0]: line for line in captured.out.splitlines()[1:6]}
    assert "trained" in rows["5-7"] and f"kept from {packaged}" in rows["2-4"]
    assert f"features v{FEATURE_VERSION - 1}" in captured.err and "retrain" in captured.err
    assert uploaded.source == "s3"
    assert packaged in uploaded.bundle.sources["2-4"]
