"""The model artefact: a ``ModelBundle`` as the bytes of a compressed ``.npz`` archive.

Plain arrays only (never pickle: loading uses ``allow_pickle=False``). The archive carries a
format name and version, the feature extractor's version and vector length, the model
version, the default threshold percentile and, per age group, the PCA parameters and the
sorted reference scores. Anything unreadable, incomplete or made for another format or
feature extractor raises ``ArtefactError`` with a one-line reason.
"""

from __future__ import annotations

import io
import zipfile
import zlib

import numpy as np

from app.scoring.features import FEATURE_COUNT, FEATURE_VERSION
from app.scoring.model import GROUP_NAMES, GroupModel, ModelBundle, check_percentile

FORMAT_NAME = "drawing-anomaly-model"
FORMAT_VERSION = 1
GROUP_ARRAYS = (
    "mean",
    "scale",
    "components",
    "variances",
    "residual_mean",
    "lower",
    "upper",
    "reference_scores",
)


class ArtefactError(ValueError):
    """A model artefact that cannot be used."""


def _key(group: str, name: str) -> str:
    return f"group_{group}__{name}"


def bundle_to_bytes(bundle: ModelBundle) -> bytes:
    arrays: dict[str, np.ndarray] = {
        "format_name": np.array(FORMAT_NAME),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "feature_version": np.array(bundle.feature_version, dtype=np.int64),
        "feature_count": np.array(bundle.feature_count, dtype=np.int64),
        "model_version": np.array(bundle.model_version),
        "default_percentile": np.array(bundle.default_percentile, dtype=np.float64),
        "groups": np.array(sorted(bundle.models), dtype=np.str_),
    }
    for group, model in bundle.models.items():
        arrays[_key(group, "mean")] = model.mean
        arrays[_key(group, "scale")] = model.scale
        arrays[_key(group, "components")] = model.components
        arrays[_key(group, "variances")] = model.variances
        arrays[_key(group, "residual_mean")] = np.array(model.residual_mean, dtype=np.float64)
        arrays[_key(group, "lower")] = model.lower
        arrays[_key(group, "upper")] = model.upper
        arrays[_key(group, "reference_scores")] = model.reference_scores
        arrays[_key(group, "source")] = np.array(bundle.sources.get(group, ""))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _read_arrays(data: bytes) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ArtefactError(f"model artefact is not a readable npz archive: {reason}") from None


def _scalar(arrays: dict[str, np.ndarray], name: str, kind: type) -> object:
    if name not in arrays:
        raise ArtefactError(f"model artefact is incomplete: no {name!r}")
    value = arrays[name]
    if value.shape != ():
        raise ArtefactError(f"model artefact field {name!r} is not a single value")
    try:
        return kind(value.item())
    except (TypeError, ValueError):
        raise ArtefactError(f"model artefact field {name!r} is not a {kind.__name__}") from None


def _group(arrays: dict[str, np.ndarray], group: str, feature_count: int) -> GroupModel:
    missing = [n for n in GROUP_ARRAYS if _key(group, n) not in arrays]
    if missing:
        raise ArtefactError(f"model artefact is incomplete: group {group} lacks {missing[0]}")
    parts = {n: np.asarray(arrays[_key(group, n)], dtype=np.float64) for n in GROUP_ARRAYS}
    components = parts["components"]
    k = components.shape[0] if components.ndim == 2 else -1
    expected = {
        "mean": (feature_count,),
        "scale": (feature_count,),
        "components": (k, feature_count),
        "variances": (k,),
        "residual_mean": (),
        "lower": (feature_count,),
        "upper": (feature_count,),
    }
    for name, shape in expected.items():
        if k < 1 or parts[name].shape != shape:
            raise ArtefactError(
                f"model artefact group {group}: {name} has shape {parts[name].shape}, "
                f"expected {shape}"
            )
    reference = parts["reference_scores"]
    if reference.ndim != 1 or reference.size < 2:
        raise ArtefactError(f"model artefact group {group}: reference scores missing")
    for name, values in parts.items():
        # A feature free of the range term has the range -inf..inf (model.feature_range).
        unbounded = {"lower": -np.inf, "upper": np.inf}.get(name)
        if not np.all(np.isfinite(values) | (values == unbounded)):
            raise ArtefactError(f"model artefact group {group}: {name} has non-finite values")
    if np.any(parts["scale"] <= 0) or np.any(parts["variances"] <= 0):
        raise ArtefactError(f"model artefact group {group}: non-positive scale or variance")
    if np.any(parts["lower"] > parts["upper"]):
        raise ArtefactError(f"model artefact group {group}: feature range lower > upper")
    if parts["residual_mean"] <= 0:
        raise ArtefactError(f"model artefact group {group}: non-positive residual mean")
    return GroupModel(
        mean=parts["mean"],
        scale=parts["scale"],
        components=components,
        variances=parts["variances"],
        residual_mean=float(parts["residual_mean"]),
        lower=parts["lower"],
        upper=parts["upper"],
        reference_scores=np.sort(reference),
    )


def bundle_from_bytes(data: bytes) -> ModelBundle:
    """The bundle in an artefact; ``ArtefactError`` if it cannot be used."""
    arrays = _read_arrays(data)
    if "format_name" not in arrays or str(arrays["format_name"]) != FORMAT_NAME:
        raise ArtefactError(f"model artefact is not a {FORMAT_NAME} archive")
    version = _scalar(arrays, "format_version", int)
    if version != FORMAT_VERSION:
        raise ArtefactError(
            f"model artefact format version {version} is not supported (expected {FORMAT_VERSION})"
        )
    feature_version = _scalar(arrays, "feature_version", int)
    feature_count = _scalar(arrays, "feature_count", int)
    if feature_version != FEATURE_VERSION or feature_count != FEATURE_COUNT:
        raise ArtefactError(
            f"model artefact was trained on features v{feature_version} ({feature_count} "
            f"values); this app computes v{FEATURE_VERSION} ({FEATURE_COUNT} values): retrain"
        )
    model_version = str(_scalar(arrays, "model_version", str))
    try:
        percentile = check_percentile(float(_scalar(arrays, "default_percentile", float)))
    except ValueError as exc:
        raise ArtefactError(f"model artefact: {exc}") from None
    groups = [str(g) for g in arrays.get("groups", np.array([], dtype=np.str_)).ravel()]
    unknown = sorted(set(groups) - set(GROUP_NAMES))
    if unknown:
        raise ArtefactError(f"model artefact has unknown age group {unknown[0]}")
    missing = [g for g in GROUP_NAMES if g not in groups]
    if missing:
        raise ArtefactError(f"model artefact has no model for ages {missing[0]}")
    sources = {
        g: str(arrays[_key(g, "source")]) for g in GROUP_NAMES if _key(g, "source") in arrays
    }
    return ModelBundle(
        models={g: _group(arrays, g, feature_count) for g in GROUP_NAMES},
        model_version=model_version,
        default_percentile=percentile,
        feature_version=feature_version,
        feature_count=feature_count,
        sources={g: s for g, s in sources.items() if s},
    )
