"""Beyond the generator: simple drawings made another way (Pillow shapes with fixed
coordinates) on pure white, off-white, grey, cream and lined paper and as a phone photo are
typical for children of every age, with the packaged model."""

from __future__ import annotations

import pytest

from app.scoring import extract_features, load_packaged_bundle
from tests.app.scoring import drawn_by_hand

PAPERS = ("white", "off_white", "grey", "cream", "lined")


@pytest.mark.parametrize("paper", PAPERS)
@pytest.mark.parametrize("kind", drawn_by_hand.KINDS)
def test_a_simple_drawing_on_any_paper_is_typical(kind: str, paper: str) -> None:
    bundle = load_packaged_bundle()
    image = drawn_by_hand.drawing(kind, 600, paper=paper)
    features = extract_features(image)
    flagged = [age for age in (3, 6, 10, 15) if bundle.score(features, age).is_anomaly]
    assert not flagged, f"{kind} on {paper} paper flagged at ages {flagged}"


@pytest.mark.parametrize("kind", drawn_by_hand.KINDS)
def test_a_phone_photo_of_a_simple_drawing_is_typical(kind: str) -> None:
    bundle = load_packaged_bundle()
    photo = drawn_by_hand.phone_photo(drawn_by_hand.drawing(kind, 900, thick=True), seed=3)
    features = extract_features(photo)
    flagged = [age for age in (3, 6, 10, 15) if bundle.score(features, age).is_anomaly]
    assert not flagged, f"a photo of {kind} flagged at ages {flagged}"


@pytest.mark.parametrize("width", [2, 3, 4])
def test_a_hand_drawn_stick_figure_with_a_row_of_grass_is_typical_at_every_age(
    width: int,
) -> None:
    """Thin wobbly black lines, a sun and a row of short parallel grass strokes on pure-white
    paper: the strokes' directions are those of any such drawing, not a reason to flag it."""
    bundle = load_packaged_bundle()
    features = extract_features(drawn_by_hand.stick_figure_with_grass(800, width))
    scores = {age: bundle.score(features, age) for age in range(2, 19)}
    flagged = {
        age: [reason.text for reason in score.reasons]
        for age, score in scores.items()
        if score.is_anomaly
    }
    assert not flagged, f"flagged at ages {flagged}"
