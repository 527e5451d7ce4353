"""Training from a folder of drawings and a manifest: models, versions, one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from app.scoring.artefact import bundle_from_bytes, bundle_to_bytes
from app.scoring.features import FEATURE_COUNT, FEATURE_NAMES
from app.scoring.model import GROUP_NAMES, MIN_TRAINING_IMAGES, RANGE_MARGIN, ModelBundle
from app.scoring.synthetic import MANIFEST_NAME
from app.scoring.synthetic_media import MEDIA
from app.scoring.training import (
    TrainingError,
    fit_bundle,
    read_manifest,
    train_bundle,
)

PER_AGE = 7  # as in conftest.reference_set


@pytest.fixture(scope="module")
def reference(reference_set: Path) -> Path:
    return reference_set


def _copy(reference: Path, target: Path) -> Path:
    shutil.copytree(reference, target)
    return target


@pytest.fixture(scope="module")
def trained(reference: Path) -> ModelBundle:
    return train_bundle(reference, reference / MANIFEST_NAME, percentile=97.5)


def test_training_builds_one_model_per_group_with_the_chosen_percentile(
    trained: ModelBundle,
) -> None:
    assert set(trained.models) == set(GROUP_NAMES)
    assert trained.default_percentile == 97.5
    assert all(m.reference_scores.size >= MIN_TRAINING_IMAGES for m in trained.models.values())
    assert trained.models["14-18"].reference_scores.size == 5 * PER_AGE
    again = bundle_from_bytes(bundle_to_bytes(trained))
    assert again.model_version == trained.model_version


def test_model_version_is_time_plus_a_hash_of_the_training_data(trained: ModelBundle) -> None:
    stamp, digest = trained.model_version.split("-")
    assert len(stamp) == len("20260101T000000Z") and stamp.endswith("Z") and len(digest) == 8
    rng = np.random.default_rng(4)
    ages = np.repeat(np.arange(2, 19), 8)
    features = rng.uniform(0, 1, size=(ages.size, FEATURE_COUNT)).astype(np.float32)
    first = fit_bundle(features, ages, version_prefix="v1")
    assert first.model_version == fit_bundle(features, ages, version_prefix="v1").model_version
    assert first.model_version.startswith("v1-")
    other = fit_bundle(features[::-1].copy(), ages, version_prefix="v1")
    assert other.model_version != first.model_version


def test_json_lines_manifest_reads_like_the_csv(reference: Path, tmp_path: Path) -> None:
    rows = read_manifest(reference / MANIFEST_NAME)
    manifest = tmp_path / "manifest.jsonl"
    lines = [json.dumps({"file": r.file, "age": r.age}) for r in rows]
    manifest.write_text("\n".join(lines) + "\n\n")
    entries = read_manifest(manifest)
    assert [(e.file, e.age, e.subject) for e in entries] == [(r.file, r.age, None) for r in rows]


def test_the_style_column_sets_the_folds_of_the_thresholds(
    reference: Path, trained: ModelBundle, tmp_path: Path
) -> None:
    """The generated manifest names each drawing's medium as its style; without the column the
    same drawings give other thresholds (random folds) and another model version."""
    rows = read_manifest(reference / MANIFEST_NAME)
    assert {row.style for row in rows} == set(MEDIA)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("file,age\n" + "".join(f"{r.file},{r.age}\n" for r in rows))
    without = train_bundle(reference, manifest, percentile=97.5)
    assert without.model_version.split("-")[1] != trained.model_version.split("-")[1]
    assert any(
        without.models[g].threshold(97.5) != trained.models[g].threshold(97.5) for g in GROUP_NAMES
    )
    styled = tmp_path / "manifest.jsonl"
    styled.write_text(json.dumps({"file": rows[0].file, "age": rows[0].age, "style": " paint "}))
    assert read_manifest(styled)[0].style == "paint"


def test_csv_manifest_without_subject_column(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("file,age\na.png,4\nb.png, 17 \n")
    entries = read_manifest(manifest)
    assert [(e.file, e.age, e.subject, e.line) for e in entries] == [
        ("a.png", 4, None, 2),
        ("b.png", 17, None, 3),
    ]


def test_a_missing_image_names_the_manifest_line(reference: Path, tmp_path: Path) -> None:
    folder = _copy(reference, tmp_path / "images")
    victim = read_manifest(folder / MANIFEST_NAME)[4]
    (folder / victim.file).unlink()
    with pytest.raises(TrainingError) as error:
        train_bundle(folder, folder / MANIFEST_NAME)
    assert str(error.value) == f"manifest line 6: {victim.file} not found in {folder}"


@pytest.mark.parametrize("age", ["1", "19", "seven", "", "4.5"])
def test_a_bad_age_names_the_line_and_the_allowed_range(tmp_path: Path, age: str) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"file,age,subject\na.png,5,house\nb.png,{age},house\n")
    with pytest.raises(TrainingError, match="manifest line 3: age .* from 2 to 18"):
        read_manifest(manifest)


def test_a_group_with_too_few_drawings_and_no_model_to_keep_is_named(
    reference: Path, tmp_path: Path
) -> None:
    rows = read_manifest(reference / MANIFEST_NAME)
    nine = [r for r in rows if r.age == 9][:2]
    kept = [r for r in rows if r not in nine]
    manifest = tmp_path / "short.csv"
    manifest.write_text("file,age\n" + "".join(f"{r.file},{r.age}\n" for r in kept))
    with pytest.raises(TrainingError) as error:
        train_bundle(reference, manifest)
    assert str(error.value) == (
        f"age group 8-10 has {3 * PER_AGE - 2} drawing(s), fewer than {MIN_TRAINING_IMAGES}, "
        "and no model to keep for it"
    )


def test_unreadable_images_and_paths_outside_the_folder_are_refused(
    reference: Path, tmp_path: Path
) -> None:
    folder = _copy(reference, tmp_path / "images")
    victim = read_manifest(folder / MANIFEST_NAME)[0]
    (folder / victim.file).write_bytes(b"not a png")
    with pytest.raises(TrainingError, match=f"line 2: {victim.file} is not a readable image"):
        train_bundle(folder, folder / MANIFEST_NAME)
    manifest = tmp_path / "escape.csv"
    manifest.write_text((folder / MANIFEST_NAME).read_text() + "../escape.png,5,house\n")
    with pytest.raises(TrainingError, match="is outside"):
        train_bundle(folder, manifest)


def test_manifest_problems_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    cases = {
        "missing.csv": None,
        "header.csv": "name,years\na.png,5\n",
        "empty.csv": "file,age\n",
        "nofile.csv": "file,age\n,5\n",
        "bad.jsonl": '{"file": "a.png", "age": 5}\nnot json\n',
    }
    for name, text in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        with pytest.raises(TrainingError) as error:
            train_bundle(tmp_path / "images", tmp_path / name)
        assert "\n" not in str(error.value), name
    with pytest.raises(TrainingError, match="image folder .* not found"):
        train_bundle(tmp_path / "nowhere", tmp_path / "empty.csv")
    with pytest.raises(TrainingError, match="percentile"):
        train_bundle(tmp_path / "images", tmp_path / "empty.csv", percentile=40)


def test_fit_bundle_from_a_feature_matrix() -> None:
    rng = np.random.default_rng(2)
    ages = np.repeat(np.arange(2, 19), 8)
    features = rng.uniform(0, 1, size=(ages.size, FEATURE_COUNT)).astype(np.float32)
    bundle = fit_bundle(features, ages, percentile=90.0, version_prefix="matrix")
    assert bundle.model_version.startswith("matrix-")
    score = bundle.score(features[0], int(ages[0]))
    assert score.threshold == bundle.models["2-4"].threshold(90.0)


def test_training_holds_the_amount_of_ink_exactly_and_frees_the_shares() -> None:
    """The features' range rules reach the trained models: the amount of ink is held to the
    range seen (just below the least ink lies an empty page), a stroke's thickness gets a
    margin, and the shares of the ink by place and the closed shapes have no range term."""
    rng = np.random.default_rng(3)
    ages = np.repeat(np.arange(2, 19), 8)
    features = rng.uniform(0, 1, size=(ages.size, FEATURE_COUNT))
    model = fit_bundle(features, ages).models["8-10"]
    seen = features[(ages >= 8) & (ages <= 10)]
    column = {name: FEATURE_NAMES.index(name) for name in FEATURE_NAMES}
    ink, stroke = column["ink_mass_log"], column["stroke_thickness"]
    assert model.lower[ink] == seen[:, ink].min()
    width = np.ptp(seen[:, stroke])
    assert model.lower[stroke] == pytest.approx(seen[:, stroke].min() - RANGE_MARGIN * width)
    for name in ("ink_grid_0_0", "shape_2_2", "edges_1_1_upright", "enclosed_areas"):
        assert np.isinf(model.lower[column[name]]) and np.isinf(model.upper[column[name]])
