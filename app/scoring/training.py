"""Build a ``ModelBundle`` from a folder of drawings and a manifest.

The manifest lists one drawing per line: CSV with a header ``file,age[,subject]``, or JSON
lines (``{"file": ..., "age": ..., "subject": ...}``, for a ``.jsonl``/``.ndjson`` file).
File names are relative to the folder. Problems are reported as ``TrainingError`` with one
line saying where (manifest line) and what.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import structlog
from PIL import Image, UnidentifiedImageError

from app.scoring.features import FEATURE_COUNT, extract_features
from app.scoring.model import (
    DEFAULT_EXPLAINED_VARIANCE,
    DEFAULT_PERCENTILE,
    GROUP_NAMES,
    MAX_AGE,
    MIN_AGE,
    MIN_TRAINING_IMAGES,
    ModelBundle,
    age_group_for,
    check_percentile,
    fit_group,
)

log = structlog.get_logger()
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")


class TrainingError(ValueError):
    """Training cannot go on; the message is one line saying why."""


@dataclass(frozen=True)
class ManifestEntry:
    line: int
    file: str
    age: int
    subject: str | None


def _parse_age(raw: object, line: int) -> int:
    text = str(raw).strip() if raw is not None else ""
    try:
        age = int(text)
    except ValueError:
        age = None
    if age is None or not MIN_AGE <= age <= MAX_AGE:
        raise TrainingError(
            f"manifest line {line}: age {text!r} is not a whole number from {MIN_AGE} to {MAX_AGE}"
        )
    return age


def _csv_rows(manifest: Path) -> list[tuple[int, dict[str, object]]]:
    with manifest.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        fields = [f.strip().lower() for f in reader.fieldnames or []]
        if "file" not in fields or "age" not in fields:
            raise TrainingError(
                f"manifest {manifest.name}: header must name the columns file,age[,subject]"
            )
        reader.fieldnames = fields
        return [(reader.line_num, dict(row)) for row in reader if any(row.values())]


def _json_rows(manifest: Path) -> list[tuple[int, dict[str, object]]]:
    rows = []
    with manifest.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                raise TrainingError(f"manifest line {number}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise TrainingError(f"manifest line {number}: expected an object")
            rows.append((number, row))
    return rows


def read_manifest(manifest: Path) -> list[ManifestEntry]:
    """The entries of a CSV or JSON-lines manifest."""
    if not manifest.is_file():
        raise TrainingError(f"manifest {manifest} not found")
    json_lines = manifest.suffix.lower() in JSON_LINES_SUFFIXES
    rows = _json_rows(manifest) if json_lines else _csv_rows(manifest)
    entries = []
    for line, row in rows:
        name = str(row.get("file") or "").strip()
        if not name:
            raise TrainingError(f"manifest line {line}: no file name")
        subject = row.get("subject")
        entries.append(
            ManifestEntry(
                line=line,
                file=name,
                age=_parse_age(row.get("age"), line),
                subject=str(subject).strip() or None if subject is not None else None,
            )
        )
    if not entries:
        raise TrainingError(f"manifest {manifest.name} lists no drawings")
    return entries


def _image_path(folder: Path, entry: ManifestEntry) -> Path:
    root = folder.resolve()
    path = (root / entry.file).resolve()
    if not path.is_relative_to(root):
        raise TrainingError(f"manifest line {entry.line}: {entry.file} is outside {folder}")
    if not path.is_file():
        raise TrainingError(f"manifest line {entry.line}: {entry.file} not found in {folder}")
    return path


def features_of_file(path: Path, line: int) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return extract_features(image)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise TrainingError(
            f"manifest line {line}: {path.name} is not a readable image: {exc}"
        ) from None


def new_model_version(features: np.ndarray, prefix: str | None = None) -> str:
    """``<prefix or UTC time>-<hash of the training features>``."""
    digest = hashlib.sha256(np.ascontiguousarray(features, dtype=np.float32).tobytes())
    stamp = prefix or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{digest.hexdigest()[:8]}"


def check_group_sizes(groups: np.ndarray) -> None:
    """TrainingError naming the first age group with fewer than the minimum drawings."""
    for group in GROUP_NAMES:
        count = int((groups == group).sum())
        if count < MIN_TRAINING_IMAGES:
            raise TrainingError(
                f"age group {group} has {count} drawing(s); at least {MIN_TRAINING_IMAGES} "
                f"per group are needed"
            )


def fit_bundle(
    features: np.ndarray,
    ages: np.ndarray,
    percentile: float = DEFAULT_PERCENTILE,
    explained_variance: float = DEFAULT_EXPLAINED_VARIANCE,
    version_prefix: str | None = None,
) -> ModelBundle:
    """Fit every age group's model on an (n, d) feature matrix and the n ages."""
    percentile = check_percentile(percentile)
    groups = np.array([age_group_for(int(age)) for age in ages])
    check_group_sizes(groups)
    models = {g: fit_group(features[groups == g], explained_variance) for g in GROUP_NAMES}
    for group, model in models.items():
        log.info(
            "group fitted",
            age_group=group,
            drawings=int((groups == group).sum()),
            components=model.component_count,
        )
    return ModelBundle(
        models=models,
        model_version=new_model_version(features, version_prefix),
        default_percentile=percentile,
    )


def train_bundle(
    folder: Path,
    manifest: Path,
    percentile: float = DEFAULT_PERCENTILE,
    explained_variance: float = DEFAULT_EXPLAINED_VARIANCE,
    version_prefix: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ModelBundle:
    """Extract the features of every drawing in the manifest and fit a bundle."""
    if not folder.is_dir():
        raise TrainingError(f"image folder {folder} not found")
    try:
        percentile = check_percentile(percentile)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    entries = read_manifest(manifest)
    paths = [_image_path(folder, entry) for entry in entries]  # all checked before the work
    check_group_sizes(np.array([age_group_for(entry.age) for entry in entries]))
    features = np.empty((len(entries), FEATURE_COUNT), dtype=np.float32)
    for index, (entry, path) in enumerate(zip(entries, paths, strict=True)):
        features[index] = features_of_file(path, entry.line)
        if progress is not None:
            progress(index + 1, len(entries))
    ages = np.array([entry.age for entry in entries])
    return fit_bundle(features, ages, percentile, explained_variance, version_prefix)
