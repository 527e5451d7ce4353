"""Build a ``ModelBundle`` from a folder of drawings and a manifest.

The manifest lists one drawing per line: CSV with a header ``file,age[,subject][,style]``, or
JSON lines (``{"file": ..., "age": ..., "subject": ..., "style": ...}``, for a
``.jsonl``/``.ndjson`` file). File names are relative to the folder. ``style`` (optional: the
drawing's medium, say) calibrates each group's threshold on styles left out in turn. Problems
are reported as ``TrainingError`` with one line saying where (manifest line) and what.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import structlog
from PIL import Image, UnidentifiedImageError

from app.scoring.features import FEATURE_COUNT, RANGE_EXACT, RANGE_FREE, extract_features
from app.scoring.model import (
    CROSS_VALIDATION_FOLDS,
    DEFAULT_EXPLAINED_VARIANCE,
    DEFAULT_PERCENTILE,
    GROUP_NAMES,
    MAX_AGE,
    MIN_AGE,
    MIN_TRAINING_IMAGES,
    ModelBundle,
    RangeRules,
    age_group_for,
    check_percentile,
    fit_group,
)

log = structlog.get_logger()
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
RANGE_RULES = RangeRules(exact=RANGE_EXACT, free=RANGE_FREE)


class TrainingError(ValueError):
    """Training cannot go on; the message is one line saying why."""


@dataclass(frozen=True)
class ManifestEntry:
    line: int
    file: str
    age: int
    subject: str | None
    style: str | None = None


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
                f"manifest {manifest.name}: header must name the columns file,age[,subject][,style]"
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


def _optional(value: object) -> str | None:
    return str(value).strip() or None if value is not None else None


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
        entries.append(
            ManifestEntry(
                line=line,
                file=name,
                age=_parse_age(row.get("age"), line),
                subject=_optional(row.get("subject")),
                style=_optional(row.get("style")),
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


def new_model_version(
    features: np.ndarray, prefix: str | None = None, styles: np.ndarray | None = None
) -> str:
    """``<prefix or UTC time>-<hash of the training features and their styles>``."""
    digest = hashlib.sha256(np.ascontiguousarray(features, dtype=np.float32).tobytes())
    if styles is not None:
        digest.update("\n".join(str(style) for style in styles).encode())
    stamp = prefix or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{digest.hexdigest()[:8]}"


@dataclass(frozen=True)
class GroupReport:
    """What training did for one age group."""

    group: str
    source: str  # "trained" or "kept from <model version>"
    drawings: int
    components: int
    threshold: float
    false_flag_rate: float | None  # cross-validated, at the threshold; None when kept


def trainable_groups(groups: np.ndarray) -> list[str]:
    """The age groups with at least the minimum number of drawings."""
    return [g for g in GROUP_NAMES if int((groups == g).sum()) >= MIN_TRAINING_IMAGES]


def check_group_sizes(groups: np.ndarray) -> None:
    """TrainingError when no age group has the minimum number of drawings."""
    if not trainable_groups(groups):
        counts = ", ".join(f"{g}: {int((groups == g).sum())}" for g in GROUP_NAMES)
        raise TrainingError(
            f"no age group has at least {MIN_TRAINING_IMAGES} drawings ({counts}); "
            f"at least {MIN_TRAINING_IMAGES} are needed in each group to be trained"
        )


def cross_validated_false_flags(
    features: np.ndarray,
    percentile: float,
    explained_variance: float = DEFAULT_EXPLAINED_VARIANCE,
    folds: int = CROSS_VALIDATION_FOLDS,
    styles: np.ndarray | None = None,
) -> float:
    """The share of drawings flagged by a model fitted without them, at that model's own
    threshold (``folds``-fold): how often a new ordinary drawing would be flagged."""
    fold_of = np.arange(features.shape[0]) % folds
    flagged = 0
    for fold in range(folds):
        held_out = fold_of == fold
        model = fit_group(
            features[~held_out],
            explained_variance,
            folds,
            minimum=2 * folds,
            styles=None if styles is None else styles[~held_out],
            rules=RANGE_RULES,
        )
        flagged += int((model.raw_scores(features[held_out]) > model.threshold(percentile)).sum())
    return flagged / features.shape[0]


def fit_bundle_with_report(
    features: np.ndarray,
    ages: np.ndarray,
    percentile: float = DEFAULT_PERCENTILE,
    explained_variance: float = DEFAULT_EXPLAINED_VARIANCE,
    version_prefix: str | None = None,
    base: ModelBundle | None = None,
    styles: np.ndarray | None = None,
) -> tuple[ModelBundle, list[GroupReport]]:
    """Fit every age group with at least the minimum number of drawings; the other groups
    keep ``base``'s model (the deployed or packaged one). The bundle records where each
    group's model came from. ``styles`` (one per drawing, or None) may set the folds of
    each group's threshold (see ``fit_group``)."""
    percentile = check_percentile(percentile)
    groups = np.array([age_group_for(int(age)) for age in ages])
    check_group_sizes(groups)
    trained = trainable_groups(groups)
    if len(trained) < len(GROUP_NAMES) and base is None:
        missing = next(g for g in GROUP_NAMES if g not in trained)
        raise TrainingError(
            f"age group {missing} has {int((groups == missing).sum())} drawing(s), fewer than "
            f"{MIN_TRAINING_IMAGES}, and no model to keep for it"
        )
    version = new_model_version(features, version_prefix, styles)
    models, sources, reports = {}, {}, []
    for group in GROUP_NAMES:
        count = int((groups == group).sum())
        if group in trained:
            matrix = features[groups == group]
            group_styles = None if styles is None else styles[groups == group]
            model = fit_group(matrix, explained_variance, styles=group_styles, rules=RANGE_RULES)
            models[group], sources[group] = model, f"trained on {count} drawings in {version}"
            rate = cross_validated_false_flags(
                matrix, percentile, explained_variance, styles=group_styles
            )
            source = "trained"
        else:
            assert base is not None
            model = base.models[group]
            models[group] = model
            sources[group] = base.sources.get(group) or f"kept from {base.model_version}"
            rate, source = None, f"kept from {base.model_version}"
            if count:
                log.warning(
                    "group not trained: too few drawings",
                    age_group=group,
                    drawings=count,
                    needed=MIN_TRAINING_IMAGES,
                )
        report = GroupReport(
            group, source, count, model.component_count, model.threshold(percentile), rate
        )
        reports.append(report)
        log.info("group ready", **asdict(report))
    bundle = ModelBundle(
        models=models, model_version=version, default_percentile=percentile, sources=sources
    )
    return bundle, reports


def fit_bundle(
    features: np.ndarray,
    ages: np.ndarray,
    percentile: float = DEFAULT_PERCENTILE,
    explained_variance: float = DEFAULT_EXPLAINED_VARIANCE,
    version_prefix: str | None = None,
    base: ModelBundle | None = None,
    styles: np.ndarray | None = None,
) -> ModelBundle:
    """Fit a bundle on an (n, d) feature matrix and the n ages (see fit_bundle_with_report)."""
    return fit_bundle_with_report(
        features, ages, percentile, explained_variance, version_prefix, base, styles
    )[0]


def train_bundle_with_report(
    folder: Path,
    manifest: Path,
    percentile: float = DEFAULT_PERCENTILE,
    explained_variance: float = DEFAULT_EXPLAINED_VARIANCE,
    version_prefix: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    base: ModelBundle | Callable[[], ModelBundle] | None = None,
) -> tuple[ModelBundle, list[GroupReport]]:
    """Extract the features of every drawing in the manifest (a file listed several times is
    read once) and fit a bundle; ``base`` (or a function giving it, called only when needed)
    supplies the groups with too few drawings."""
    if not folder.is_dir():
        raise TrainingError(f"image folder {folder} not found")
    try:
        percentile = check_percentile(percentile)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    entries = read_manifest(manifest)
    paths = [_image_path(folder, entry) for entry in entries]  # all checked before the work
    groups = np.array([age_group_for(entry.age) for entry in entries])
    check_group_sizes(groups)
    features = np.empty((len(entries), FEATURE_COUNT), dtype=np.float32)
    seen: dict[Path, np.ndarray] = {}
    for index, (entry, path) in enumerate(zip(entries, paths, strict=True)):
        if path not in seen:
            seen[path] = features_of_file(path, entry.line)
        features[index] = seen[path]
        if progress is not None:
            progress(index + 1, len(entries))
    log.info("drawings read", listed=len(entries), files=len(seen))
    ages = np.array([entry.age for entry in entries])
    styles = [entry.style for entry in entries]
    if any(styles) and not all(styles):
        log.warning(
            "style missing for some drawings: thresholds from random folds",
            missing=sum(not style for style in styles),
        )
    needs_base = len(trainable_groups(groups)) < len(GROUP_NAMES)
    chosen_base = base() if needs_base and callable(base) else base
    return fit_bundle_with_report(
        features,
        ages,
        percentile,
        explained_variance,
        version_prefix,
        chosen_base if isinstance(chosen_base, ModelBundle) else None,
        np.array(styles) if all(styles) else None,
    )


def train_bundle(
    folder: Path,
    manifest: Path,
    percentile: float = DEFAULT_PERCENTILE,
    explained_variance: float = DEFAULT_EXPLAINED_VARIANCE,
    version_prefix: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    base: ModelBundle | Callable[[], ModelBundle] | None = None,
) -> ModelBundle:
    """Like train_bundle_with_report, only the bundle."""
    return train_bundle_with_report(
        folder, manifest, percentile, explained_variance, version_prefix, progress, base
    )[0]
