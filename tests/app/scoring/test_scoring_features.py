"""Features: fixed length, deterministic, independent of size, mode and format."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from app.scoring.features import FEATURE_COUNT, FEATURE_NAMES, extract_features
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
