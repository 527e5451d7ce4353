"""Metamorphic tests of the packaged model: a nuisance (paper tone, lined paper, photo
lighting, JPEG, resolution, a small rotation, a small crop) changes the upload, not the
drawing, so it must keep the verdict and barely move the score; every anomaly kind stays
flagged whatever the nuisance."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from PIL import Image

from app.scoring import ModelBundle, extract_features, load_packaged_bundle
from app.scoring.synthetic import ANOMALY_KINDS, Look, generate_drawing
from app.scoring.synthetic_media import MEDIA
from tests.app.scoring import drawn_by_hand
from tests.app.scoring.nuisances import TRANSFORMS, jpeg, resize

VERDICT_KEPT = 0.95
# The score moves by less than this share of the threshold (or of the score itself, when it
# is above the threshold) in >= 95 % of cases.
SCORE_BAND = 0.5
TYPICAL_SHARE = 0.9  # the threshold is the 95th percentile: some ordinary drawings are flagged
AGES = (3, 5, 7, 9, 11, 13, 15, 17)


@cache
def bundle() -> ModelBundle:
    return load_packaged_bundle()


@cache
def reference_drawings() -> tuple[tuple[int, Image.Image], ...]:
    """Generated drawings on white paper (a seed the packaged model was not fitted on), every
    medium, and the hand-drawn ones."""
    rng = np.random.default_rng(20261203)
    drawings = []
    for index in range(16):
        age = AGES[index % len(AGES)]
        look = Look(paper="white", capture="scan", medium=MEDIA[index % len(MEDIA)])
        drawings.append((age, generate_drawing(age, rng, size=512, look=look)))
    for index, kind in enumerate(drawn_by_hand.KINDS):
        drawings.append((AGES[(2 * index + 1) % len(AGES)], drawn_by_hand.drawing(kind, 512)))
    return tuple(drawings)


def _relative_score(image: Image.Image, age: int) -> tuple[bool, float]:
    """The verdict, and the score in units of the age group's threshold."""
    score = bundle().score(extract_features(image), age)
    return score.is_anomaly, score.anomaly_score / score.threshold


@cache
def _original_scores() -> tuple[tuple[bool, float], ...]:
    return tuple(_relative_score(image, age) for age, image in reference_drawings())


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_a_nuisance_keeps_the_verdict_and_barely_moves_the_score(name: str) -> None:
    transform = TRANSFORMS[name]
    kept = within_band = 0
    moves = []
    for (age, image), (verdict, score) in zip(
        reference_drawings(), _original_scores(), strict=True
    ):
        new_verdict, new_score = _relative_score(transform(image), age)
        kept += new_verdict == verdict
        moves.append(abs(new_score - score))
        within_band += abs(new_score - score) < SCORE_BAND * max(1.0, score)
    count = len(moves)
    assert kept >= VERDICT_KEPT * count, f"{name}: verdict kept in {kept} of {count}"
    assert within_band >= VERDICT_KEPT * count, (
        f"{name}: score moved by {np.round(sorted(moves), 2).tolist()} thresholds"
    )


def test_the_reference_drawings_are_typical() -> None:
    flagged = sum(verdict for verdict, _ in _original_scores())
    assert flagged / len(_original_scores()) <= 1 - TYPICAL_SHARE + 1e-9, flagged


@pytest.mark.parametrize("kind", ANOMALY_KINDS)
def test_every_anomaly_kind_stays_flagged_under_every_encoding(kind: str) -> None:
    rng = np.random.default_rng(404)
    missed = []
    for age in (3, 8, 12, 16):
        image = generate_drawing(age, rng, size=512, kind=kind)
        for variant, changed in (
            ("as drawn", image),
            ("jpeg q60", jpeg(image)),
            ("resize 1024", resize(image, 1024)),
        ):
            if not bundle().score(extract_features(changed), age).is_anomaly:
                missed.append(f"age {age} {variant}")
    assert not missed, f"{kind} not flagged: {missed}"
