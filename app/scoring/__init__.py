"""The scoring engine: features of a drawing, per-age-group PCA models, their artefacts.

What the web app needs::

    from app.scoring import extract_features, load_latest_bundle

    bundle = load_latest_bundle(s3_client, settings.s3_bucket_models)  # at start
    score = bundle.score(extract_features(image), age, percentile=config.threshold_percentile)
"""

from app.scoring.artefact import ArtefactError, bundle_from_bytes, bundle_to_bytes
from app.scoring.features import FEATURE_COUNT, FEATURE_VERSION, extract_features
from app.scoring.model import (
    AGE_GROUPS,
    DEFAULT_PERCENTILE,
    GROUP_NAMES,
    MAX_AGE,
    MAX_PERCENTILE,
    MIN_AGE,
    MIN_PERCENTILE,
    AgeGroup,
    GroupModel,
    ModelBundle,
    Score,
    age_group_for,
    check_percentile,
)
from app.scoring.store import (
    MODEL_KEY,
    PACKAGED_MODEL_PATH,
    LoadedBundle,
    load_latest,
    load_latest_bundle,
    load_packaged_bundle,
    upload_bundle,
)

__all__ = [
    "AGE_GROUPS",
    "DEFAULT_PERCENTILE",
    "FEATURE_COUNT",
    "FEATURE_VERSION",
    "GROUP_NAMES",
    "MAX_AGE",
    "MAX_PERCENTILE",
    "MIN_AGE",
    "MIN_PERCENTILE",
    "MODEL_KEY",
    "PACKAGED_MODEL_PATH",
    "AgeGroup",
    "ArtefactError",
    "GroupModel",
    "LoadedBundle",
    "ModelBundle",
    "Score",
    "age_group_for",
    "bundle_from_bytes",
    "bundle_to_bytes",
    "check_percentile",
    "extract_features",
    "load_latest",
    "load_latest_bundle",
    "load_packaged_bundle",
    "upload_bundle",
]
