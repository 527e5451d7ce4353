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
  the ink coverage of an empty page, is otherwise diluted among dozens of ordinary ones;
- a second block, the layout (``features.LAYOUT_COLUMNS``: a thumbnail of the drawing's box
  and the amount of ink), is scored apart by its own Gaussian (Ledoit–Wolf, on the values as
  they are: the cells share one scale), the average squared Mahalanobis distance. Mixed into
  the first block, its three dozen cells would drown in the other features; on its own it
  tells a drawing laid out unlike those of the age group;
- each block's score is turned into a surprise, -ln of the share of the reference drawings
  that score at least as high (out-of-fold scores; beyond the reference's 90th percentile an
  exponential tail on the log score, so the surprise keeps growing past the largest), and
  the anomaly score is the sum of the blocks' surprises (Fisher's method);
- the training drawings' anomaly scores (each from out-of-fold block scores) are kept,
  sorted, as the reference: the threshold is any percentile of them (default 95th,
  changeable at runtime without retraining), so the combined verdict flags that share of
  them; the normalised score is the percentile of a score among them.
"""

from __future__ import annotations

from collections.abc import Sequence
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
TAIL_FROM = 90.0  # percentile of the reference's log scores where the fitted tail takes over
SCORE_FLOOR = 1e-9


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


def surprise(scores: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """-ln of the share of the sorted ``reference`` scores at least as high as each score;
    beyond the reference's TAIL_FROM percentile an exponential tail fitted to the log scores
    above it, so that the surprise keeps growing with the score past the largest."""
    logs = np.log(np.maximum(reference, SCORE_FLOOR))
    values = np.log(np.maximum(np.asarray(scores, dtype=np.float64), SCORE_FLOOR))
    cut = float(np.percentile(logs, TAIL_FROM))
    excess = logs[logs > cut] - cut
    spread = max(float(excess.mean()) if excess.size else 0.0, 1e-3)
    share = 1.0 - np.searchsorted(logs, values, side="left") / (logs.size + 1.0)
    tail = (1.0 - TAIL_FROM / 100.0) * np.exp(-(values - cut) / spread)
    return -np.log(np.where(values > cut, tail, share))


@dataclass(frozen=True)
class LayoutModel:
    """The layout block: a Ledoit–Wolf Gaussian on some columns of the feature vector."""

    columns: np.ndarray  # (m,) indices into the feature vector
    mean: np.ndarray  # (m,)
    components: np.ndarray  # (m, m), orthonormal rows
    variances: np.ndarray  # (m,)
    reference: np.ndarray  # sorted out-of-fold block scores of the training drawings

    def raw_scores(self, features: np.ndarray) -> np.ndarray:
        z = np.atleast_2d(features)[:, self.columns] - self.mean
        projected = z @ self.components.T
        return np.einsum("ij,ij->i", projected, projected / self.variances) / z.shape[1]

    def contributions(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each column's share of the block score of one vector, and the centred values."""
        z = x[self.columns] - self.mean
        weighted = self.components.T @ ((self.components @ z) / self.variances)
        return z * weighted / z.size, z


def _fit_layout(matrix: np.ndarray, columns: np.ndarray) -> LayoutModel:
    values = matrix[:, columns]
    count = values.shape[0]
    mean = values.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(
        shrunk_covariance(values - mean) * count / max(count - 1, 1)
    )
    return LayoutModel(
        columns=columns,
        mean=mean,
        components=eigenvectors.T,
        variances=np.maximum(eigenvalues, 1e-9),
        reference=np.zeros(2),
    )


@dataclass(frozen=True)
class GroupModel:
    """The fitted model of one age group: the drawing block (a PCA model of the
    ``drawing_columns``), optionally the layout block, and the reference scores."""

    mean: np.ndarray  # (d,)
    scale: np.ndarray  # (d,)
    components: np.ndarray  # (k, d), orthonormal rows
    variances: np.ndarray  # (k,), variance of the training data along each component
    residual_mean: float  # mean squared reconstruction error on the training data
    lower: np.ndarray  # (d,), smallest value of each feature in the training data
    upper: np.ndarray  # (d,), largest value of each feature in the training data
    reference_scores: np.ndarray  # sorted anomaly scores of the training drawings
    drawing_columns: np.ndarray | None = None  # (d,) indices; None: the whole vector
    drawing_reference: np.ndarray = field(default_factory=lambda: np.zeros(2))
    layout: LayoutModel | None = None

    @property
    def component_count(self) -> int:
        return int(self.components.shape[0])

    @property
    def feature_count(self) -> int:
        """The length of the feature vectors the model scores."""
        if self.drawing_columns is None:
            return int(self.mean.shape[0])
        last = int(self.drawing_columns.max())
        if self.layout is not None:
            last = max(last, int(self.layout.columns.max()))
        return last + 1

    def _drawing_part(self, matrix: np.ndarray) -> np.ndarray:
        return matrix if self.drawing_columns is None else matrix[:, self.drawing_columns]

    def drawing_scores(self, features: np.ndarray) -> np.ndarray:
        """The drawing block's scores of a (n, d) matrix (see the module's description)."""
        matrix = self._drawing_part(np.atleast_2d(np.asarray(features, dtype=np.float64)))
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

    def _check_length(self, matrix: np.ndarray) -> np.ndarray:
        if matrix.shape[1] != self.feature_count:
            raise ValueError(
                f"feature vector has {matrix.shape[1]} values; the model expects "
                f"{self.feature_count}"
            )
        return matrix

    def block_surprises(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """Each block's surprise for a (n, d) matrix (or one (d,) vector -> shape (1,))."""
        matrix = self._check_length(np.atleast_2d(np.asarray(features, dtype=np.float64)))
        blocks = {"drawing": surprise(self.drawing_scores(matrix), self.drawing_reference)}
        if self.layout is not None:
            blocks["layout"] = surprise(self.layout.raw_scores(matrix), self.layout.reference)
        return blocks

    def raw_scores(self, features: np.ndarray) -> np.ndarray:
        """Anomaly scores of a (n, d) matrix (or one (d,) vector -> shape (1,)): the sum of
        the blocks' surprises."""
        return np.sum(list(self.block_surprises(features).values()), axis=0)

    def contributions(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each feature's share of the score of one (d,) vector (they sum to the score: each
        block's surprise split in proportion to its features' shares of the block score), and
        the standardised vector (its sign says higher or lower than the training mean)."""
        x = self._check_length(np.asarray(features, dtype=np.float64).reshape(1, -1))[0]
        surprises = self.block_surprises(x)
        columns = np.arange(x.size) if self.drawing_columns is None else self.drawing_columns
        drawn = x[columns]
        z = (drawn - self.mean) / self.scale
        projected = self.components @ z
        residual = z - projected @ self.components
        spe = residual * residual / self.residual_mean
        t2 = z * (self.components.T @ (projected / self.variances)) / self.component_count
        kept = self.component_count / z.size
        outside = (
            np.maximum(self.lower - drawn, 0.0) + np.maximum(drawn - self.upper, 0.0)
        ) / self.scale
        parts = kept * t2 + (1.0 - kept) * spe + outside * outside
        shares = np.zeros(x.size)
        standardised = np.zeros(x.size)
        shares[columns] += parts * float(surprises["drawing"][0]) / max(float(parts.sum()), 1e-12)
        if self.layout is not None:
            layout_parts, centred = self.layout.contributions(x)
            total = max(float(layout_parts.sum()), 1e-12)
            shares[self.layout.columns] += layout_parts * float(surprises["layout"][0]) / total
            standardised[self.layout.columns] = centred
        standardised[columns] = z
        return shares, standardised

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


def _fit_pca(matrix: np.ndarray, explained_variance: float) -> GroupModel:
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
    return GroupModel(
        mean=mean,
        scale=scale,
        components=components,
        variances=np.maximum(variances[:keep], 1e-9),
        residual_mean=max(float(np.einsum("ij,ij->i", residual, residual).mean()), 1e-9),
        lower=matrix.min(axis=0),
        upper=matrix.max(axis=0),
        reference_scores=np.zeros(2),
    )


Blocks = tuple[np.ndarray, np.ndarray]  # the drawing block's columns, the layout block's


def _fit_blocks(matrix: np.ndarray, explained_variance: float, blocks: Blocks | None) -> GroupModel:
    """Both blocks fitted on an (n, d) matrix, without reference scores yet."""
    if blocks is None:
        return _fit_pca(matrix, explained_variance)
    drawing, layout = blocks
    model = _fit_pca(matrix[:, drawing], explained_variance)
    return replace(model, drawing_columns=drawing, layout=_fit_layout(matrix, layout))


def fit_group(
    features: np.ndarray,
    explained_variance: float = DEFAULT_EXPLAINED_VARIANCE,
    folds: int = CROSS_VALIDATION_FOLDS,
    minimum: int = MIN_TRAINING_IMAGES,
    blocks: tuple[Sequence[int], Sequence[int]] | None = None,
) -> GroupModel:
    """Fit one group's model on an (n, d) matrix of normal drawings' features (at least
    ``minimum``; lower only to estimate by cross-validation how a full fit behaves).
    ``blocks`` names the columns of the drawing block and of the layout block
    (``features.DRAWING_COLUMNS``, ``features.LAYOUT_COLUMNS``); None: one block, every column.

    The reference scores are out-of-fold scores (each drawing scored by a model fitted
    without it, ``folds``-fold), so that the threshold reflects how the model scores drawings
    it has not seen rather than the ones it was fitted to.
    """
    matrix = np.asarray(features, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] < minimum:
        raise ValueError(f"need at least {minimum} drawings to fit, got {matrix.shape[0]}")
    if not 0.0 < explained_variance <= 1.0:
        raise ValueError(f"explained variance {explained_variance} is outside (0, 1]")
    columns = (
        None
        if blocks is None
        else (np.asarray(blocks[0], dtype=np.int64), np.asarray(blocks[1], dtype=np.int64))
    )
    model = _fit_blocks(matrix, explained_variance, columns)
    drawing = np.empty(matrix.shape[0])
    layout_scores = np.empty(matrix.shape[0])
    if folds < 2:
        drawing[:] = model.drawing_scores(matrix)
        if model.layout is not None:
            layout_scores[:] = model.layout.raw_scores(matrix)
    else:
        fold_of = np.arange(matrix.shape[0]) % folds
        for fold in range(folds):
            held_out = fold_of == fold
            fold_model = _fit_blocks(matrix[~held_out], explained_variance, columns)
            drawing[held_out] = fold_model.drawing_scores(matrix[held_out])
            if fold_model.layout is not None:
                layout_scores[held_out] = fold_model.layout.raw_scores(matrix[held_out])
    drawing_reference = np.sort(drawing)
    reference = surprise(drawing, drawing_reference)
    if model.layout is not None:
        layout_model = replace(model.layout, reference=np.sort(layout_scores))
        model = replace(model, layout=layout_model)
        reference = reference + surprise(layout_scores, layout_model.reference)
    return replace(model, drawing_reference=drawing_reference, reference_scores=np.sort(reference))


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
