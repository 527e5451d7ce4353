"""Features: fixed length, deterministic, independent of size, mode and format."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from app.scoring.features import (
    ENCLOSED_COUNT_SCALE,
    FEATURE_COUNT,
    FEATURE_NAMES,
    extract_features,
)
from app.scoring.synthetic import generate_drawing


def _drawing(size: int = 512, seed: int = 3, age: int = 8) -> Image.Image:
    return generate_drawing(age, np.random.default_rng(seed), size=size)


def test_feature_vector_is_fixed_length_float32_and_finite() -> None:
    vector = extract_features(_drawing())
    assert vector.shape == (FEATURE_COUNT,) == (len(FEATURE_NAMES),)
    assert vector.dtype == np.float32
    assert np.all(np.isfinite(vector))


def test_same_image_gives_identical_features() -> None:
    first = extract_features(_drawing(seed=11))
    second = extract_features(_drawing(seed=11))
    np.testing.assert_array_equal(first, second)


def test_different_drawings_give_different_features() -> None:
    first, second = extract_features(_drawing(seed=1)), extract_features(_drawing(seed=2))
    assert not np.array_equal(first, second)


def test_every_mode_and_odd_size_gives_the_same_length() -> None:
    base = _drawing(size=300)
    images = [
        base.convert("L"),
        base.convert("RGBA"),
        base.convert("P"),
        base.convert("1"),
        base.convert("LA"),
        base.convert("CMYK"),
        base.resize((1000, 240)),
        Image.new("RGB", (7, 5), "white"),
        Image.fromarray(np.full((64, 64), 40000, dtype=np.uint16)),
    ]
    for image in images:
        vector = extract_features(image)
        assert vector.shape == (FEATURE_COUNT,), image.mode
        assert np.all(np.isfinite(vector)), image.mode


@pytest.mark.parametrize(("size", "tolerance"), [(256, 1e-6), (1024, 0.01)])
def test_transparent_background_counts_as_white_paper(size: int, tolerance: float) -> None:
    drawing = np.asarray(_drawing(size=size).convert("RGBA")).copy()
    paper = drawing[..., :3].min(axis=2) > 230
    on_white = drawing.copy()
    on_white[paper] = (255, 255, 255, 255)
    transparent = drawing.copy()
    transparent[paper] = (0, 0, 0, 0)  # transparent black must not read as black ink
    np.testing.assert_allclose(
        extract_features(Image.fromarray(transparent, "RGBA")),
        extract_features(Image.fromarray(on_white[..., :3], "RGB")),
        atol=tolerance,
    )


def test_resolution_barely_changes_features() -> None:
    large = _drawing(size=1024, seed=5)
    small = large.resize((512, 512), Image.Resampling.LANCZOS)
    difference = np.abs(extract_features(large) - extract_features(small))
    assert float(np.median(difference)) < 0.02


def test_a_blank_page_has_no_ink_and_a_black_page_reads_as_a_dark_page() -> None:
    blank = extract_features(Image.new("RGB", (512, 512), "white"))
    black = extract_features(Image.new("RGB", (512, 512), "black"))
    drawing = extract_features(_drawing())
    ink = FEATURE_NAMES.index("ink_mass_log")
    coverage = FEATURE_NAMES.index("ink_coverage_log")
    brightness = FEATURE_NAMES.index("paper_brightness")
    assert blank[ink] == 0.0 and blank[coverage] == 0.0 and blank[brightness] == 1.0
    assert black[brightness] == 0.0  # the page removed, what is left is how dark it was
    assert 0.0 < drawing[coverage] < 1.0 and drawing[ink] > 0.2


def test_the_paper_is_removed_before_the_ink_is_measured() -> None:
    """The same strokes on white, cream, grey and lined paper and under a photo's light give
    nearly the same ink features."""
    from tests.app.scoring import drawn_by_hand, nuisances

    white = drawn_by_hand.drawing("house", 600)
    pages = {
        "cream": nuisances.paper_tone(white),
        "grey": nuisances.paper_tone(white, (228, 228, 230)),
        "lined": nuisances.lined_paper(white),
        "photo": nuisances.photo_lighting(white),
    }
    ink_features = [i for i, name in enumerate(FEATURE_NAMES) if not name.startswith("paper_")]
    reference = extract_features(white)[ink_features]
    for name, page in pages.items():
        difference = np.abs(extract_features(page)[ink_features] - reference)
        assert float(difference.max()) < 0.2, (name, FEATURE_NAMES[int(difference.argmax())])


def test_a_1024_png_is_decoded_and_featurised_quickly() -> None:
    buffer = io.BytesIO()
    _drawing(size=1024, seed=9, age=12).save(buffer, "PNG")
    data = buffer.getvalue()
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        with Image.open(io.BytesIO(data)) as image:
            extract_features(image)
        timings.append(time.perf_counter() - start)
    assert min(timings) < 0.15  # measured ~20 ms; generous for slow CI machines


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def _squared_paper(side: int) -> Image.Image:
    image = Image.new("RGB", (side, side), (252, 252, 252))
    draw = ImageDraw.Draw(image)
    for at in range(7, side, 16):
        draw.line((at, 0, at, side), fill=(170, 195, 225), width=1)
        draw.line((0, at, side, at), fill=(170, 195, 225), width=1)
    return image


def test_page_noise_is_measured_on_the_paper_not_on_its_printed_lines() -> None:
    """A noisy page stays noisy after downscaling and JPEG at quality 60; squared paper (a
    printed grid, sharp and high in contrast at the pixel scale) is not noise."""
    noise = FEATURE_NAMES.index("page_noise")
    rng = np.random.default_rng(8)
    pixels = 250 + rng.normal(0.0, 60.0, size=(600, 600, 3))
    noisy = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).resize((450, 450))
    squared = _squared_paper(600)
    noisy_value = extract_features(_jpeg(noisy, 60))[noise]
    squared_values = [extract_features(image)[noise] for image in (squared, _jpeg(squared, 60))]
    assert max(squared_values) < 0.1, squared_values
    assert noisy_value > 3 * max(max(squared_values), 0.05), (noisy_value, squared_values)


def test_a_painted_area_is_the_drawing_not_the_paper() -> None:
    """A large painted area (a house wall, a sun) is ink: the paper's colour spread is taken
    between the strokes, so it stays as low as on the same page with the shapes outlined."""
    spread = FEATURE_NAMES.index("paper_colour_spread")
    plain = Image.new("RGB", (512, 512), (255, 255, 255))
    draw = ImageDraw.Draw(plain)
    draw.line((60, 420, 450, 420), fill=(30, 120, 40), width=6)
    draw.rectangle((180, 260, 330, 410), outline=(40, 40, 40), width=5)
    painted = plain.copy()
    paint = ImageDraw.Draw(painted)
    paint.rectangle((80, 150, 430, 410), fill=(220, 60, 50))
    paint.ellipse((330, 30, 470, 150), fill=(250, 200, 40))
    plain_spread = extract_features(plain)[spread]
    painted_spread = extract_features(painted)[spread]
    assert painted_spread < plain_spread + 0.05, (plain_spread, painted_spread)


def test_a_scribble_over_the_whole_page_leaves_none_of_it_bare() -> None:
    """The share of the page's cells holding ink: all of them under a whole-page scribble,
    some left bare by the busiest ordinary drawing of a teenager."""
    cover = FEATURE_NAMES.index("ink_cover")
    rng = np.random.default_rng(12)
    scribbles = [extract_features(generate_drawing(9, rng, 384, kind="scribble")) for _ in range(3)]
    busy = [extract_features(generate_drawing(16, rng, 384)) for _ in range(6)]
    assert min(f[cover] for f in scribbles) > 0.6
    assert max(f[cover] for f in busy) < min(f[cover] for f in scribbles)


def _feature(image: Image.Image, name: str) -> float:
    return float(extract_features(image)[FEATURE_NAMES.index(name)])


def _closed_shapes(count: int) -> float:
    return float(np.log1p(count) / np.log1p(ENCLOSED_COUNT_SCALE))


def _rings(size: int, boxes: list[tuple[float, float, float, float]], gap: int = 0) -> Image.Image:
    """Black rings (outlines of ellipses in fractions of the page) on white, and a gap of
    ``gap`` pixels cut out of each at its right."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    width = max(2, size // 150)
    for left, top, right, bottom in boxes:
        box = (left * size, top * size, right * size, bottom * size)
        draw.ellipse(box, outline="black", width=width)
        if gap:
            middle = (top + bottom) / 2 * size
            draw.rectangle((box[2] - 2 * width, middle, box[2] + 2 * width, middle + gap), "white")
    return image


@pytest.mark.parametrize("size", [600, 2400])
def test_closed_shapes_are_counted_whatever_the_resolution(size: int) -> None:
    one = [(0.3, 0.3, 0.7, 0.7)]
    two = [(0.15, 0.3, 0.45, 0.6), (0.55, 0.3, 0.85, 0.6)]
    assert _feature(_rings(size, one), "enclosed_areas") == pytest.approx(_closed_shapes(1))
    assert _feature(_rings(size, two), "enclosed_areas") == pytest.approx(_closed_shapes(2))
    opened = _rings(size, one, gap=size // 10)
    assert _feature(opened, "enclosed_areas") == 0.0
    assert _feature(opened, "enclosed_height") == 0.5


def test_a_gap_narrower_than_a_cell_of_the_box_still_closes_a_shape() -> None:
    """A pen lifted for a pixel or two: the ring still encloses its inside."""
    nearly = _rings(600, [(0.3, 0.3, 0.7, 0.7)], gap=2)
    assert _feature(nearly, "enclosed_areas") == pytest.approx(_closed_shapes(1))


def test_the_height_of_closed_shapes_tells_a_loop_on_a_stem_from_one_under_it() -> None:
    """A 9 (a loop above a stroke) and a 6 (a loop under it) fill their boxes alike."""

    def loop_and_stem(loop_on_top: bool) -> Image.Image:
        image = _rings(600, [(0.35, 0.2, 0.65, 0.5) if loop_on_top else (0.35, 0.5, 0.65, 0.8)])
        stem = (0.65, 0.35, 0.65, 0.85) if loop_on_top else (0.35, 0.15, 0.35, 0.65)
        ImageDraw.Draw(image).line([v * 600 for v in stem], fill="black", width=4)
        return image

    nine, six = loop_and_stem(True), loop_and_stem(False)
    assert _feature(nine, "enclosed_height") < 0.4 < 0.6 < _feature(six, "enclosed_height")


def test_directions_say_where_the_strokes_are_upright_and_where_flat() -> None:
    """Upright strokes in the left column of the box, flat ones in the right: each cell's mean
    orientation says so, and the cells' shares of the edges are those of a whole."""
    image = Image.new("RGB", (600, 600), "white")
    draw = ImageDraw.Draw(image)
    for x in (100, 140, 180):
        draw.line((x, 100, x, 500), fill="black", width=4)
    for y in (100, 300, 500):
        draw.line((420, y, 500, y), fill="black", width=4)
    vector = extract_features(image)
    upright = {
        column: [vector[FEATURE_NAMES.index(f"edges_{row}_{column}_upright")] for row in range(3)]
        for column in (0, 2)
    }
    assert min(upright[0]) > 0.5
    assert max(upright[2]) < -0.5
    shares = [vector[FEATURE_NAMES.index(f"edges_{r}_{c}")] for r in range(3) for c in range(3)]
    assert sum(share**2 for share in shares) == pytest.approx(1.0, abs=1e-5)
