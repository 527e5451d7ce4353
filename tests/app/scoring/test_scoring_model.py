"""Per-age-group PCA models: groups, thresholds, normalised scores, detection rates."""

from __future__ import annotations

import numpy as np
import pytest

from app.scoring.features import FEATURE_COUNT, extract_features
from app.scoring.model import (
    AGE_GROUPS,
    MIN_TRAINING_IMAGES,
    RANGE_MARGIN,
    GroupModel,
    ModelBundle,
    RangeRules,
    age_group_for,
    feature_range,
    fit_group,
    shrunk_covariance,
)
from app.scoring.store import load_packaged_bundle
from app.scoring.synthetic import ANOMALY_KINDS, generate_drawing

FRESH_SEED = 777  # not the packaging seed: these drawings were never seen in training


@pytest.fixture(scope="module")
def packaged() -> ModelBundle:
    return load_packaged_bundle()


@pytest.mark.parametrize(
    ("age", "group"),
    [(2, "2-4"), (4, "2-4"), (5, "5-7"), (7, "5-7"), (8, "8-10"), (10, "8-10"),
     (11, "11-13"), (13, "11-13"), (14, "14-18"), (18, "14-18")],
)  # fmt: skip
def test_every_age_has_exactly_one_group(age: int, group: str) -> None:
    assert age_group_for(age) == group
    assert sum(g.contains(age) for g in AGE_GROUPS) == 1


@pytest.mark.parametrize("age", [1, 19, -3, 2.5, "7", True])
def test_ages_outside_2_to_18_or_not_whole_are_refused(age: object) -> None:
    with pytest.raises(ValueError):
        age_group_for(age)  # type: ignore[arg-type]


def test_normal_drawings_mostly_pass_and_gross_anomalies_are_caught(
    packaged: ModelBundle,
) -> None:
    rng = np.random.default_rng(FRESH_SEED)
    normal = [
        packaged.score(extract_features(generate_drawing(age, rng, 512)), age).is_anomaly
        for age in range(2, 19)
        for _ in range(4)
    ]
    anomalous = [
        packaged.score(extract_features(generate_drawing(age, rng, 512, kind=kind)), age).is_anomaly
        for kind in ANOMALY_KINDS
        for age in (3, 6, 9, 12, 16)
    ]
    false_positive_rate = sum(normal) / len(normal)
    detection_rate = sum(anomalous) / len(anomalous)
    assert false_positive_rate <= 0.15, false_positive_rate
    assert detection_rate >= 0.8, detection_rate


@pytest.mark.parametrize("kind", ["blank", "saturated", "noise"])
def test_each_gross_anomaly_kind_is_detected(packaged: ModelBundle, kind: str) -> None:
    rng = np.random.default_rng(FRESH_SEED + 1)
    hits = [
        packaged.score(extract_features(generate_drawing(age, rng, 512, kind=kind)), age)
        for age in (2, 5, 8, 11, 14, 17)
    ]
    assert sum(s.is_anomaly for s in hits) >= 5
    assert min(s.normalised_score for s in hits) >= 90.0


def test_score_reports_group_version_threshold_and_percentile(packaged: ModelBundle) -> None:
    features = extract_features(generate_drawing(6, np.random.default_rng(5), 512))
    score = packaged.score(features, 6)
    assert score.age_group == "5-7"
    assert score.model_version == packaged.model_version
    assert score.threshold_percentile == packaged.default_percentile == 95.0
    assert score.threshold == packaged.models["5-7"].threshold(95.0)
    assert score.is_anomaly == (score.anomaly_score > score.threshold)
    assert 0.0 <= score.normalised_score <= 100.0


def test_changing_the_percentile_changes_the_verdict_without_retraining(
    packaged: ModelBundle,
) -> None:
    model = packaged.models["8-10"]
    reference = model.reference_scores
    # A score between the 60th and 95th percentiles of the reference scores.
    borderline = float(np.percentile(reference, 80))
    lenient_threshold = model.threshold(95.0)
    strict_threshold = model.threshold(60.0)
    assert strict_threshold < borderline < lenient_threshold
    rng = np.random.default_rng(8)
    for _ in range(200):  # find a real drawing that lands between the two thresholds
        features = extract_features(generate_drawing(9, rng, 256))
        raw = float(model.raw_scores(features)[0])
        if strict_threshold < raw <= lenient_threshold:
            break
    else:
        pytest.fail("no drawing scored between the 60th and 95th percentile")
    assert packaged.score(features, 9).is_anomaly is False
    assert packaged.score(features, 9, percentile=60.0).is_anomaly is True


def test_percentiles_outside_50_to_99_9_are_refused(packaged: ModelBundle) -> None:
    features = np.zeros(FEATURE_COUNT, dtype=np.float32)
    for percentile in (49.9, 99.95, 100.0):
        with pytest.raises(ValueError, match="percentile"):
            packaged.score(features, 9, percentile=percentile)


def test_normalised_score_is_the_percentile_among_reference_scores() -> None:
    rng = np.random.default_rng(0)
    model = fit_group(rng.normal(size=(200, 12)), explained_variance=0.8)
    reference = model.reference_scores
    assert np.all(np.diff(reference) >= 0)
    assert model.normalised(float(reference[-1]) + 1.0) == 100.0
    assert model.normalised(float(reference[0]) - 1.0) == 0.0
    assert model.normalised(float(reference[99])) == pytest.approx(50.0)


def test_reference_scores_are_out_of_fold_so_unseen_data_passes_at_the_stated_rate() -> None:
    rng = np.random.default_rng(1)
    mixing = rng.normal(size=(6, 30))
    train = rng.normal(size=(150, 6)) @ mixing + 0.3 * rng.normal(size=(150, 30))
    fresh = rng.normal(size=(2000, 6)) @ mixing + 0.3 * rng.normal(size=(2000, 30))
    model = fit_group(train, explained_variance=0.9)
    flagged = float((model.raw_scores(fresh) > model.threshold(95.0)).mean())
    assert flagged < 0.12


def test_fitting_needs_enough_drawings() -> None:
    with pytest.raises(ValueError, match=f"at least {MIN_TRAINING_IMAGES}"):
        fit_group(np.zeros((MIN_TRAINING_IMAGES - 1, 5)))


def test_a_wrong_length_feature_vector_is_refused(packaged: ModelBundle) -> None:
    with pytest.raises(ValueError, match="model expects"):
        packaged.score(np.zeros(FEATURE_COUNT - 1, dtype=np.float32), 9)


def test_the_covariance_is_shrunk_so_fewer_drawings_than_features_still_fit() -> None:
    """With fewer drawings than features the sample covariance is singular; the shrunk one is
    positive definite, keeps the sample's trace, and lies between it and a multiple of I."""
    rng = np.random.default_rng(3)
    z = rng.normal(size=(30, 60))
    z -= z.mean(axis=0)
    shrunk = shrunk_covariance(z)
    sample = z.T @ z / z.shape[0]
    assert np.linalg.eigvalsh(sample).min() < 1e-9
    assert np.linalg.eigvalsh(shrunk).min() > 0.05
    assert np.trace(shrunk) == pytest.approx(np.trace(sample))
    model = fit_group(z, folds=1)
    assert model.component_count == 60
    assert np.all(np.isfinite(model.raw_scores(rng.normal(size=(5, 60)))))


def test_every_whole_page_scribble_is_flagged(packaged: ModelBundle) -> None:
    """A scribble over the whole page at every age (the benchmark missed one of 30 before
    the page's covered share was a feature)."""
    rng = np.random.default_rng(1915)
    missed = [
        age
        for age in [*range(2, 19), *range(2, 15)]
        if not packaged.score(
            extract_features(generate_drawing(age, rng, 384, kind="scribble")), age
        ).is_anomaly
    ]
    assert not missed, f"scribbles missed at ages {missed}"


def test_with_styles_each_style_is_scored_by_a_model_fitted_without_the_others() -> None:
    """The reference scores of drawings in known styles come from a model fitted on the other
    styles, so a style unlike the rest raises the threshold; with a single style the folds
    are as without styles."""
    rng = np.random.default_rng(8)
    styles = np.repeat(np.array(["pencil", "crayon", "paint"]), 30)
    matrix = rng.normal(size=(styles.size, 6))
    matrix[styles == "paint", 0] += 3.0  # paint unlike the others in one feature
    by_style = fit_group(matrix, styles=styles)
    left_out = [
        fit_group(matrix[styles != style], folds=1).raw_scores(matrix[styles == style])
        for style in ("pencil", "crayon", "paint")
    ]
    np.testing.assert_allclose(by_style.reference_scores, np.sort(np.concatenate(left_out)))
    assert by_style.threshold() > fit_group(matrix).threshold()
    single = fit_group(matrix, styles=np.full(styles.size, "pencil"))
    np.testing.assert_allclose(single.reference_scores, fit_group(matrix).reference_scores)


def test_a_style_holding_most_drawings_is_not_left_out() -> None:
    """Leaving out a style that holds most of the drawings would fit a model on the few
    others and give an absurd threshold; the folds are then random, as without styles."""
    rng = np.random.default_rng(9)
    matrix = rng.normal(size=(60, 6))
    styles = np.array(["pencil"] * 55 + ["crayon"] * 5)
    skewed = fit_group(matrix, styles=styles)
    np.testing.assert_allclose(skewed.reference_scores, fit_group(matrix).reference_scores)
    assert skewed.threshold() < 10


def test_range_rules_widen_the_range_hold_some_features_exactly_and_free_others() -> None:
    """Three features seen between 0 and 1: the first (plain) gets RANGE_MARGIN of the range
    on each side, the second (exact) none, the third (free) has no range term at all."""
    rng = np.random.default_rng(4)
    matrix = rng.uniform(0, 1, (40, 3))
    matrix[:2] = [[0, 0, 0], [1, 1, 1]]
    rules = RangeRules(exact=np.array([False, True, False]), free=np.array([False, False, True]))
    lower, upper = feature_range(matrix, rules)
    np.testing.assert_allclose(lower, [-RANGE_MARGIN, 0.0, -np.inf])
    np.testing.assert_allclose(upper, [1 + RANGE_MARGIN, 1.0, np.inf])
    np.testing.assert_allclose(feature_range(matrix, None), ([0, 0, 0], [1, 1, 1]))

    model, seen = fit_group(matrix, rules=rules), fit_group(matrix)
    np.testing.assert_allclose((model.lower, model.upper), (lower, upper))
    unbounded = fit_group(matrix, rules=RangeRules(exact=np.zeros(3, bool), free=np.ones(3, bool)))

    def range_term(fitted: GroupModel, point: list[float]) -> float:
        vector = np.array(point)
        return float(fitted.raw_scores(vector)[0] - unbounded.raw_scores(vector)[0])

    just_past = 1 + RANGE_MARGIN / 2
    assert range_term(model, [just_past, 0.5, 0.5]) == pytest.approx(0.0, abs=1e-12)
    assert range_term(model, [0.5, just_past, 0.5]) > 0.0
    assert range_term(model, [0.5, 0.5, 5.0]) == pytest.approx(0.0, abs=1e-12)
    assert range_term(seen, [0.5, 0.5, 5.0]) > 100
