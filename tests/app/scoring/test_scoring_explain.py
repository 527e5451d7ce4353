"""Each score comes with the features that contributed most, in plain words."""

from __future__ import annotations

import numpy as np
from PIL import Image

from app.scoring import extract_features, load_packaged_bundle
from app.scoring.explain import describe, top_reasons
from app.scoring.features import FEATURE_COUNT, FEATURE_NAMES
from app.scoring.synthetic import generate_drawing


def test_features_are_described_in_plain_words_by_direction() -> None:
    assert describe("ink_mass_log", higher=False) == "much less ink than drawings at this age"
    assert describe("ink_saturation", higher=False) == "almost no colour"
    assert describe("ink_coverage_log", higher=True) == "the whole page is covered"
    assert describe("hue_share_4", higher=True) == "much more blue than usual"
    assert describe("enclosed_areas", higher=False).startswith("fewer closed shapes")
    assert describe("edges_2_0_upright", higher=False).startswith("more flat strokes")
    fallback = ("is higher than usual", "is lower than usual")  # a feature's name, not words
    assert not [
        name
        for name in FEATURE_NAMES
        for higher in (True, False)
        if describe(name, higher).endswith(fallback)
    ]


def test_the_largest_contributions_become_at_most_three_distinct_reasons() -> None:
    contributions = np.zeros(FEATURE_COUNT)
    standardised = np.ones(FEATURE_COUNT)
    features = np.full(FEATURE_COUNT, 0.5)
    for name, value in (("ink_sx", 5.0), ("ink_extent_w", 4.0), ("ink_saturation", 3.0),
                        ("stroke_thickness", 2.0), ("page_noise", 0.01)):  # fmt: skip
        contributions[FEATURE_NAMES.index(name)] = value
    reasons = top_reasons(contributions, standardised, features)
    # ink_sx and ink_extent_w say the same in words: one reason, the next one instead
    assert [r.text for r in reasons] == [
        "the drawing spreads across the whole page",
        "much more colour than usual",
        "much thicker strokes than usual",
    ]
    assert reasons[0].share == round(5.0 / 14.01, 3)


def test_a_blank_page_and_a_solid_colour_page_are_explained() -> None:
    bundle = load_packaged_bundle()
    blank = bundle.score(extract_features(Image.new("RGB", (600, 600), "white")), 7)
    assert blank.is_anomaly
    assert blank.reasons[0].text == "almost nothing is drawn on the page"
    solid = generate_drawing(7, np.random.default_rng(2), 256, kind="solid_colour")
    coloured = bundle.score(extract_features(solid), 7)
    assert coloured.is_anomaly and 1 <= len(coloured.reasons) <= 3
    assert any("page" in reason.text for reason in coloured.reasons), coloured.reasons


def test_a_whole_page_scribble_is_explained_as_covering_the_page() -> None:
    bundle = load_packaged_bundle()
    rng = np.random.default_rng(5)
    for age in (4, 9, 15):
        score = bundle.score(
            extract_features(generate_drawing(age, rng, 384, kind="scribble")), age
        )
        assert score.is_anomaly
        assert "the whole page is covered" in [r.text for r in score.reasons], score.reasons
