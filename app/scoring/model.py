"""Per-age-group anomaly models: a shrunk Gaussian (optionally PCA), with NumPy only.

Each age group has its own model, fitted on the feature vectors of normal drawings:

- features are standardised with the training mean and spread;
- their covariance is shrunk towards a multiple of the identity (Ledoit–Wolf: the amount
  follows from the data). With a hundred drawings and as many features the sample
  covariance has directions of almost no variance; a drawing that differs along one of them
  (a row of parallel grass blades when the reference drawings' strokes run every way) would
  otherwise score as if it were impossible;
- the eigenvectors of the shrunk covariance are the principal components; by default all of
  them are kept (``explained_variance`` 1: the Mahalanobis distance), else the fewest that
  explain that share of the variance;
- a drawing's anomaly score averages, over the feature dimensions, its distance *within* the
  kept subspace (Hotelling's T² per component) and its reconstruction error (the squared
  distance from the subspace, relative to the training average) for the dimensions left
  out; on the training data both average 1, so scores sit around 1;
- plus how far any feature lies outside the range seen in training (the sum of squared
  excesses, in standard deviations; 0 inside the range). A single extreme feature, such as
  the ink coverage of an empty page, is otherwise diluted among dozens of ordinary ones.
  With ``RangeRules`` (``feature_range``) the range is widened by ``RANGE_MARGIN`` of its
  width (a new ordinary drawing lies just past the range of a hundred reference drawings on
  one feature or another), except for features held to it exactly, and features free of it
  have none;
- the training drawings' scores are kept, sorted, as the reference: the threshold is any
  percentile of them (default 95th, changeable at runtime without retraining), and the
  normalised score is the percentile of a score among them. They are out-of-fold scores; when
  the drawings' styles are known (the packaged reference set's media), each style is scored
  by a model fitted without it, so the threshold allows for a style the model has not seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from app.scoring.explain import Reason, top_reasons
from app.scoring.features import FEATURE_COUNT, FEATURE_VERSION

MIN_AGE = 2
MAX_AGE = 18
DEFAULT_PERCENTILE = 95.0
MIN_PERCENTILE = 50.0
MAX_PERCENTILE = 99.9
DEFAULT_EXPLAINED_VARIANCE = 1.0
MIN_TRAINING_IMAGES = 20
CROSS_VALIDATION_FOLDS = 5
SCALE_FLOOR = 0.03  # features are on a ~0..1 scale; a constant feature gets this spread
RANGE_MARGIN = 0.05  # of the seen range's width, added on each side


@dataclass(frozen=True)
class AgeGroup:
    name: str
    first_age: int
    last_age: int

    def contains(self, age: int) -> bool:
        return self.first_age <= age <= self.last_age


AGE_GROUPS: tuple[AgeGroup, ...] = (
    AgeGroup("2-4", 2, 4),
    AgeGroup("5-7", 5, 7),
    AgeGroup("8-10", 8, 10),
    AgeGroup("11-13", 11, 13),
    AgeGroup("14-18", 14, 18),
)
GROUP_NAMES = tuple(group.name for group in AGE_GROUPS)


def age_group_for(age: int) -> str:
    """The name of the age group of ``age`` (2..18); ValueError outside that range."""
    if isinstance(age, bool) or not isinstance(age, int | np.integer):
        raise ValueError(f"age must be a whole number, not {age!r}")
    for group in AGE_GROUPS:
        if group.contains(int(age)):
            return group.name
    raise ValueError(f"age {age} is outside {MIN_AGE}..{MAX_AGE}")


def check_percentile(percentile: float) -> float:
    value = float(percentile)
    if not MIN_PERCENTILE <= value <= MAX_PERCENTILE:
        raise ValueError(
            f"threshold percentile {percentile} is outside {MIN_PERCENTILE}..{MAX_PERCENTILE}"
        )
    return value


@dataclass(frozen=True)
class Score:
    anomaly_score: float
    threshold: float
    is_anomaly: bool
    normalised_score: float  # percentile of anomaly_score among the reference scores, 0..100
    age_group: str
    model_version: str
    threshold_percentile: float
    reasons: tuple[Reason, ...] = ()  # the features contributing most, in plain words


@dataclass(frozen=True)
class GroupModel:
    """The fitted PCA model of one age group."""

    mean: np.ndarray  # (d,)
    scale: np.ndarray  # (d,)
    components: np.ndarray  # (k, d), orthonormal rows
    variances: np.ndarray  # (k,), variance of the training data along each component
    residual_mean: float  # mean squared reconstruction error on the training data
    lower: np.ndarray  # (d,), each feature's range (feature_range): its least value, or less
    upper: np.ndarray  # (d,), and its greatest, or more; ±inf where the range term is off
    reference_scores: np.ndarray  # sorted anomaly scores of the training drawings

    @property
    def component_count(self) -> int:
        return int(self.components.shape[0])

    def raw_scores(self, features: np.ndarray) -> np.ndarray:
        """Anomaly scores of a (n, d) matrix (or one (d,) vector -> shape (1,))."""
        matrix = np.atleast_2d(np.asarray(features, dtype=np.float64))
        if matrix.shape[1] != self.mean.shape[0]:
            raise ValueError(
                f"feature vector has {matrix.shape[1]} values; the model expects "
                f"{self.mean.shape[0]}"
            )
        z = (matrix - self.mean) / self.scale
        projected = z @ self.components.T
        residual = z - projected @ self.components
        spe = np.einsum("ij,ij->i", residual, residual) / self.residual_mean
        t2 = np.einsum("ij,ij->i", projected, projected / self.variances) / self.component_count
        kept = self.component_count / z.shape[1]
        outside = np.maximum(self.lower - matrix, 0.0) + np.maximum(matrix - self.upper, 0.0)
        outside /= self.scale
        out_of_range = np.einsum("ij,ij->i", outside, outside)
        return kept * t2 + (1.0 - kept) * spe + out_of_range

    def contributions(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each feature's share of the score of one (d,) vector (they sum to the score), and
        the standardised vector (its sign says higher or lower than the training mean)."""
        x = np.asarray(features, dtype=np.float64).reshape(-1)
        z = (x - self.mean) / self.scale
        projected = self.components @ z
        residual = z - projected @ self.components
        spe = residual * residual / self.residual_mean
        t2 = z * (self.components.T @ (projected / self.variances)) / self.component_count
        kept = self.component_count / z.size
        outside = (np.maximum(self.lower - x, 0.0) + np.maximum(x - self.upper, 0.0)) / self.scale
        return kept * t2 + (1.0 - kept) * spe + outside * outside, z

    def threshold(self, percentile: float = DEFAULT_PERCENTILE) -> float:
        return float(np.percentile(self.reference_scores, check_percentile(percentile)))

    def normalised(self, score: float) -> float:
        """Percentile (0..100) of ``score`` among the reference scores."""
        below = np.searchsorted(self.reference_scores, score, side="right")
        return 100.0 * float(below) / float(self.reference_scores.size)


def shrunk_covariance(z: np.ndarray) -> np.ndarray:
    """The Ledoit–Wolf estimate of the covariance of an (n, d) centred matrix: the sample
    covariance shrunk towards ``mu * I`` by the amount that minimises the expected error."""
    count, dims = z.shape
    sample = z.T @ z / count
    mu = float(np.trace(sample)) / dims
    squared = z * z
    beta = float((squared.T @ squared).sum()) / count - float((sample * sample).sum())
    beta /= dims * count
    delta = float(((sample - mu * np.eye(dims)) ** 2).sum()) / dims
    shrinkage = 0.0 if delta <= 0 else min(beta, delta) / delta
    return (1.0 - shrinkage) * sample + shrinkage * mu * np.eye(dims)


@dataclass(frozen=True)
class RangeRules:
    """Which features the range term holds to the range seen exactly, and which not at all
    (both (d,) bool); the others get RANGE_MARGIN."""

    exact: np.ndarray
    free: np.ndarray


def feature_range(matrix: np.ndarray, rules: RangeRules | None) -> tuple[np.ndarray, np.ndarray]:
    """The range of each feature beyond which its excess counts: the range seen in ``matrix``,
    widened by RANGE_MARGIN of its width unless exact, unbounded where free. Without rules,
    the range seen."""
    lower, upper = matrix.min(axis=0), matrix.max(axis=0)
    if rules is None:
        return lower, upper
    margin = np.where(rules.exact, 0.0, RANGE_MARGIN * (upper - lower))
    lower = np.where(rules.free, -np.inf, lower - margin)
    upper = np.where(rules.free, np.inf, upper + margin)
    return lower, upper


def _fit_pca(
    matrix: np.ndarray, explained_variance: float, rules: RangeRules | None = None
) -> GroupModel:
    """The model parameters of an (n, d) matrix, without reference scores yet."""
    count = matrix.shape[0]
    mean = matrix.mean(axis=0)
    scale = np.maximum(matrix.std(axis=0), SCALE_FLOOR)
    z = (matrix - mean) / scale
    eigenvalues, eigenvectors = np.linalg.eigh(shrunk_covariance(z) * count / max(count - 1, 1))
    order = np.argsort(eigenvalues)[::-1]
    variances, vt = eigenvalues[order], eigenvectors[:, order].T
    ratio = np.cumsum(variances) / max(float(variances.sum()), 1e-12)
    if explained_variance >= 1.0:
        keep = vt.shape[0]
    else:
        keep = int(np.searchsorted(ratio, explained_variance) + 1)
        keep = max(1, min(keep, vt.shape[0] - 1))
    components = vt[:keep]
    projected = z @ components.T
    residual = z - projected @ components
    lower, upper = feature_range(matrix, rules)
    return GroupModel(
        mean=mean,
        scale=scale,
        components=components,
        variances=np.maximum(variances[:keep], 1e-9),
        residual_mean=max(float(np.einsum("ij,ij->i", residual, residual).mean()), 1e-9),
        lower=lower,
        upper=upper,
        reference_scores=np.zeros(2),
    )


def _folds(count: int, folds: int, styles: np.ndarray | None) -> np.ndarray:
    """Each drawing's fold: its style where there are at least two and none holds more than
    half of the drawings (a model fitted on the few others would judge the many by too
    little), else one of ``folds``."""
    if styles is not None:
        names, fold_of, counts = np.unique(styles, return_inverse=True, return_counts=True)
        if names.size >= 2 and 2 * int(counts.max()) <= count:
            return fold_of
    return np.arange(count) % folds


def fit_group(
    features: np.ndarray,
    explained_variance: float = DEFAULT_EXPLAINED_VARIANCE,
    folds: int = CROSS_VALIDATION_FOLDS,
    minimum: int = MIN_TRAINING_IMAGES,
    styles: np.ndarray | None = None,
    rules: RangeRules | None = None,
) -> GroupModel:
    """Fit one group's model on an (n, d) matrix of normal drawings' features (at least
    ``minimum``; lower only to estimate by cross-validation how a full fit behaves).

    The reference scores are out-of-fold scores (each drawing scored by a model fitted
    without it), so that the threshold reflects how the model scores drawings it has not
    seen rather than the ones it was fitted to. The folds are the drawings' ``styles`` when
    there are at least two and none holds more than half of them, else ``folds`` alike.
    ``rules`` set each feature's range (``feature_range``); without them, the range seen.
    """
    matrix = np.asarray(features, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] < minimum:
        raise ValueError(f"need at least {minimum} drawings to fit, got {matrix.shape[0]}")
    if not 0.0 < explained_variance <= 1.0:
        raise ValueError(f"explained variance {explained_variance} is outside (0, 1]")
    model = _fit_pca(matrix, explained_variance, rules)
    if folds < 2:
        reference = model.raw_scores(matrix)
    else:
        fold_of = _folds(matrix.shape[0], folds, styles)
        reference = np.empty(matrix.shape[0])
        for fold in np.unique(fold_of):
            held_out = fold_of == fold
            fold_model = _fit_pca(matrix[~held_out], explained_variance, rules)
            reference[held_out] = fold_model.raw_scores(matrix[held_out])
    return replace(model, reference_scores=np.sort(reference))


@dataclass(frozen=True)
class ModelBundle:
    """One model per age group, versioned together."""

    models: dict[str, GroupModel]
    model_version: str
    default_percentile: float = DEFAULT_PERCENTILE
    feature_version: int = FEATURE_VERSION
    feature_count: int = FEATURE_COUNT
    sources: dict[str, str] = field(default_factory=dict)  # group -> where its model came from

    def score(self, features: np.ndarray, age: int, percentile: float | None = None) -> Score:
        """Score one drawing's feature vector for a child of ``age``; ``percentile`` overrides
        the bundle's default threshold percentile (e.g. from the admin configuration)."""
        group = age_group_for(age)
        model = self.models.get(group)
        if model is None:
            raise ValueError(f"model version {self.model_version} has no model for ages {group}")
        chosen = check_percentile(self.default_percentile if percentile is None else percentile)
        anomaly_score = float(model.raw_scores(features)[0])
        threshold = model.threshold(chosen)
        contributions, standardised = model.contributions(features)
        return Score(
            anomaly_score=anomaly_score,
            threshold=threshold,
            is_anomaly=anomaly_score > threshold,
            normalised_score=model.normalised(anomaly_score),
            age_group=group,
            model_version=self.model_version,
            threshold_percentile=chosen,
            reasons=top_reasons(contributions, standardised, np.asarray(features).reshape(-1)),
        )
