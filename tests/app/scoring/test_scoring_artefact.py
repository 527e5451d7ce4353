"""Model artefacts: exact round trip, no pickle, clear errors on anything unusable."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from app.scoring.artefact import (
    FORMAT_VERSION,
    ArtefactError,
    bundle_from_bytes,
    bundle_to_bytes,
)
from app.scoring.features import FEATURE_COUNT, FEATURE_VERSION
from app.scoring.model import GROUP_NAMES, ModelBundle
from app.scoring.store import PACKAGED_MODEL_PATH, load_packaged_bundle


@pytest.fixture(scope="module")
def bundle() -> ModelBundle:
    return load_packaged_bundle()


def _arrays(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def _rewrite(data: bytes, **changes: object) -> bytes:
    arrays = _arrays(data)
    for name, value in changes.items():
        if value is None:
            del arrays[name]
        else:
            arrays[name] = np.asarray(value)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def test_round_trip_keeps_every_array_and_every_score(bundle: ModelBundle) -> None:
    again = bundle_from_bytes(bundle_to_bytes(bundle))
    assert again.model_version == bundle.model_version
    assert again.default_percentile == bundle.default_percentile
    assert set(again.models) == set(GROUP_NAMES)
    features = np.random.default_rng(3).uniform(0, 1, FEATURE_COUNT).astype(np.float32)
    for group, model in bundle.models.items():
        other = again.models[group]
        np.testing.assert_array_equal(other.components, model.components)
        np.testing.assert_array_equal(other.reference_scores, model.reference_scores)
        assert other.raw_scores(features)[0] == model.raw_scores(features)[0]
    assert again.score(features, 9) == bundle.score(features, 9)


def test_packaged_model_is_small_and_readable() -> None:
    assert PACKAGED_MODEL_PATH.stat().st_size < 400_000  # full 91×91 eigenbases of 5 groups
    assert load_packaged_bundle().model_version.startswith("packaged-")


def test_artefact_holds_only_plain_arrays(bundle: ModelBundle) -> None:
    arrays = _arrays(bundle_to_bytes(bundle))  # allow_pickle=False would refuse objects
    assert all(a.dtype != object for a in arrays.values())
    assert int(arrays["format_version"]) == FORMAT_VERSION


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a readable npz archive"),
        (b"this is not a zip file at all", "not a readable npz archive"),
        (b"PK\x03\x04" + b"\x00" * 40, "not a readable npz archive"),
    ],
)
def test_garbage_is_refused_with_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(ArtefactError, match=message):
        bundle_from_bytes(data)


def test_truncated_artefact_is_refused(bundle: ModelBundle) -> None:
    data = bundle_to_bytes(bundle)
    with pytest.raises(ArtefactError, match="not a readable npz archive"):
        bundle_from_bytes(data[: len(data) // 2])


def test_flipped_bytes_inside_the_archive_are_refused(bundle: ModelBundle) -> None:
    data = bytearray(bundle_to_bytes(bundle))
    for offset in range(200, 260):
        data[offset] ^= 0xFF
    with pytest.raises(ArtefactError):
        bundle_from_bytes(bytes(data))


def test_pickled_objects_are_never_loaded(bundle: ModelBundle) -> None:
    data = _rewrite(bundle_to_bytes(bundle), model_version=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ArtefactError, match="not a readable npz archive"):
        bundle_from_bytes(data)


def test_another_format_version_is_refused(bundle: ModelBundle) -> None:
    data = _rewrite(bundle_to_bytes(bundle), format_version=np.int64(FORMAT_VERSION + 1))
    with pytest.raises(ArtefactError, match=f"format version {FORMAT_VERSION + 1} is not"):
        bundle_from_bytes(data)


def test_a_model_for_other_features_is_refused(bundle: ModelBundle) -> None:
    data = _rewrite(bundle_to_bytes(bundle), feature_count=np.int64(FEATURE_COUNT + 3))
    with pytest.raises(ArtefactError, match="retrain"):
        bundle_from_bytes(data)


def test_a_missing_group_or_array_is_named(bundle: ModelBundle) -> None:
    data = bundle_to_bytes(bundle)
    with pytest.raises(ArtefactError, match="no model for ages 8-10"):
        bundle_from_bytes(_rewrite(data, groups=np.array(["2-4", "5-7", "11-13", "14-18"])))
    with pytest.raises(ArtefactError, match="group 5-7 lacks components"):
        bundle_from_bytes(_rewrite(data, **{"group_5-7__components": None}))


def test_wrong_shapes_and_non_finite_values_are_refused(bundle: ModelBundle) -> None:
    data = bundle_to_bytes(bundle)
    with pytest.raises(ArtefactError, match="mean has shape"):
        bundle_from_bytes(_rewrite(data, **{"group_2-4__mean": np.zeros(3)}))
    scale = bundle.models["2-4"].scale.copy()
    scale[0] = np.nan
    with pytest.raises(ArtefactError, match="non-finite"):
        bundle_from_bytes(_rewrite(data, **{"group_2-4__scale": scale}))


def test_an_unbounded_range_loads_but_a_range_bounded_by_nan_or_the_wrong_infinity_does_not(
    bundle: ModelBundle,
) -> None:
    """A feature free of the range term has -inf..inf; NaN, or +inf as a lower bound, is a
    corrupted artefact."""
    data = bundle_to_bytes(bundle)
    lower, upper = bundle.models["2-4"].lower.copy(), bundle.models["2-4"].upper.copy()
    lower[0], upper[0] = -np.inf, np.inf
    freed = bundle_from_bytes(
        _rewrite(data, **{"group_2-4__lower": lower, "group_2-4__upper": upper})
    )
    assert np.isinf(freed.models["2-4"].lower[0]) and np.isinf(freed.models["2-4"].upper[0])
    for bad in (np.nan, np.inf):
        lower[0] = bad
        with pytest.raises(ArtefactError, match="lower has non-finite values"):
            bundle_from_bytes(_rewrite(data, **{"group_2-4__lower": lower}))


def test_a_zip_without_the_format_name_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ArtefactError):
        bundle_from_bytes(buffer.getvalue())
    buffer = io.BytesIO()
    np.savez_compressed(buffer, weights=np.zeros(3))
    with pytest.raises(ArtefactError, match="not a drawing-anomaly-model archive"):
        bundle_from_bytes(buffer.getvalue())


def test_a_model_of_the_previous_feature_version_is_refused_with_both_versions_named(
    bundle: ModelBundle,
) -> None:
    data = _rewrite(bundle_to_bytes(bundle), feature_version=np.int64(FEATURE_VERSION - 1))
    with pytest.raises(ArtefactError) as error:
        bundle_from_bytes(data)
    message = str(error.value)
    assert f"features v{FEATURE_VERSION - 1}" in message
    assert f"computes v{FEATURE_VERSION}" in message and "retrain" in message
    assert "\n" not in message
