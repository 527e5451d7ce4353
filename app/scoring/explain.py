"""Why a drawing scored as it did: the features that contribute most, in plain words.

A group model's score is a sum over features (see ``GroupModel.raw_scores``): each feature's
share of the reconstruction error, of the distance within the principal subspace and of the
distance outside the training range. The largest shares, with whether the feature was higher
or lower than in the reference drawings, are turned into a sentence an adult can check
against the drawing ("much less ink than drawings at this age").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.scoring.features import FEATURE_NAMES

REASON_COUNT = 3
MIN_SHARE = 0.05  # a feature contributing less than this share of the score is not a reason
EMPTY_PAGE_INK = 0.05  # ink_mass_log below this: less than 1.6e-4 of the page is ink
HUE_NAMES = ("red", "yellow", "green", "cyan", "blue", "purple or pink")


@dataclass(frozen=True)
class Reason:
    feature: str
    direction: str  # "higher" or "lower" than in the reference drawings
    share: float  # of the anomaly score, 0..1
    text: str


_COVER = ("the whole page is covered", "only a small part of the page is drawn on")
_HIGH_LOW: dict[str, tuple[str, str]] = {
    "ink_mass_log": (
        "much more ink than drawings at this age",
        "much less ink than drawings at this age",
    ),
    "ink_coverage_log": ("the whole page is covered", "almost nothing is drawn on the page"),
    "ink_dark_share": ("heavier, darker strokes than usual", "fainter strokes than usual"),
    "ink_mid_share": (
        "many soft grey tones, as in a photo rather than a drawing",
        "fewer soft tones than usual",
    ),
    "ink_cx": ("the drawing sits far to the right", "the drawing sits far to the left"),
    "ink_cy": ("the drawing sits low on the page", "the drawing sits high on the page"),
    "ink_sx": ("the drawing spreads across the whole page", "the drawing is narrow"),
    "ink_sy": ("the drawing spreads across the whole page", "the drawing is flat and low"),
    "ink_extent_w": ("the drawing spreads across the whole page", "the drawing is small"),
    "ink_extent_h": ("the drawing spreads across the whole page", "the drawing is small"),
    "stroke_thickness": ("much thicker strokes than usual", "much thinner strokes than usual"),
    "fill_share": ("large filled-in areas", "almost no filled-in areas"),
    "edge_density_log": ("a very busy, detailed page", "very few strokes"),
    "edge_axis_share": (
        "mostly straight horizontal and vertical strokes",
        "mostly slanting strokes",
    ),
    "ink_saturation": ("much more colour than usual", "almost no colour"),
    "ink_colourful_share": ("much more colour than usual", "almost no colour"),
    "palette_size": ("more colours than usual", "fewer colours than usual"),
    "paper_brightness": ("the page is brighter than usual", "the page is much darker than paper"),
    "paper_saturation": ("the page itself is strongly coloured", "the paper is unusually grey"),
    "paper_unevenness": (
        "the background is uneven, like a photo of a scene rather than of a sheet of paper",
        "the background is unusually even",
    ),
    "paper_colour_spread": (
        "the background changes colour, like a photo of a scene rather than of paper",
        "the background is unusually uniform",
    ),
    "page_noise": ("the image is very grainy or noisy", "the image is unusually smooth"),
    "ink_cover": _COVER,
    "ink_cover_dense": _COVER,
    "enclosed_areas": (
        "more closed shapes (loops, boxes, rings) than usual",
        "fewer closed shapes (loops, boxes, rings) than usual",
    ),
    "enclosed_height": (
        "the closed shapes sit low in the drawing",
        "the closed shapes sit high in the drawing",
    ),
}


def describe(feature: str, higher: bool) -> str:
    """The plain-words reason for ``feature`` being higher (lower) than usual."""
    if feature in _HIGH_LOW:
        return _HIGH_LOW[feature][0 if higher else 1]
    if feature.startswith("ink_grid_"):
        return "the ink sits in an unusual part of the page"
    if feature.startswith("shape_"):
        return "the drawing has an unusual shape"
    if feature.startswith("edges_") and feature.endswith("_upright"):
        return (
            "more upright strokes than usual in a part of the drawing"
            if higher
            else "more flat strokes than usual in a part of the drawing"
        )
    if feature.startswith("edges_"):
        return "the strokes are spread over the drawing in an unusual way"
    if feature.startswith("hue_share_"):
        hue = HUE_NAMES[int(feature.rsplit("_", 1)[1])]
        return f"much more {hue} than usual" if higher else f"less {hue} than usual"
    return f"{feature.replace('_', ' ')} is {'higher' if higher else 'lower'} than usual"


def _is_about_the_drawing(name: str) -> bool:
    return not name.startswith(("paper_", "page_"))


def top_reasons(
    contributions: np.ndarray,
    standardised: np.ndarray,
    features: np.ndarray,
    count: int = REASON_COUNT,
) -> tuple[Reason, ...]:
    """The ``count`` largest positive contributions, one per plain-words text. On a page with
    almost no ink, what the drawing's shape, strokes and colours contribute is one reason:
    nothing is drawn."""
    positive = np.clip(contributions, 0.0, None)
    total = float(positive.sum())
    if total <= 0:
        return ()
    reasons: list[Reason] = []
    seen: set[str] = set()
    order = list(np.argsort(-contributions))
    if features[FEATURE_NAMES.index("ink_mass_log")] < EMPTY_PAGE_INK:
        drawing = [i for i in range(len(FEATURE_NAMES)) if _is_about_the_drawing(FEATURE_NAMES[i])]
        share = float(positive[drawing].sum()) / total
        text = "almost nothing is drawn on the page"
        reasons.append(Reason("ink_mass_log", "lower", round(share, 3), text))
        seen.add(text)
        order = [i for i in order if not _is_about_the_drawing(FEATURE_NAMES[int(i)])]
    for index in order:
        share = float(contributions[index]) / total
        if share < MIN_SHARE or len(reasons) == count:
            break
        name = FEATURE_NAMES[int(index)]
        higher = bool(standardised[index] >= 0)
        text = describe(name, higher)
        if text in seen:
            continue
        seen.add(text)
        reasons.append(Reason(name, "higher" if higher else "lower", round(share, 3), text))
    return tuple(reasons)
