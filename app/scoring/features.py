"""Feature extraction for children's drawings, with Pillow and NumPy only.

The image is downscaled first (to a ``WORK_SIZE`` square map of paper lightness, the darkest
channel of each pixel, and a small colour copy),
so the memory held does not depend on the upload's resolution beyond Pillow's own decoded
image. Every feature is a plain number on a roughly 0..1 scale, and the vector has a fixed
length (``FEATURE_COUNT``) whatever the input size, mode or aspect ratio.

Groups of features (in order):

- ink density on a ``GRID`` x ``GRID`` grid (ink = 1 - lightness, on white paper);
- global ink statistics: mean, coverage, dark fraction, spread, stroke thickness;
- where the ink sits: centre of mass, spread, bounding-box area;
- a lightness histogram;
- edges: magnitude-weighted orientation histogram, edge density, mean magnitude;
- texture: high-frequency energy and the roughness of the paper (noise);
- colour: saturation, colourful fraction, hue histogram, RGB means and spreads, palette size.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageChops, ImageFilter

FEATURE_VERSION = 1
WORK_SIZE = 256
COLOUR_SIZE = 64
GRID = 4
ORIENTATION_BINS = 8
GRAY_BINS = 8
HUE_BINS = 6

INK_THRESHOLD = 0.25
DARK_THRESHOLD = 0.75
EDGE_THRESHOLD = 0.12
COLOURFUL_SATURATION = 0.3
LOG_FLOOR = 1e-4
REDUCIBLE_MODES = ("RGB", "RGBA", "L", "LA")
EDGE_SMOOTHING = 1.5  # Gaussian radius in working pixels


def _feature_names() -> tuple[str, ...]:
    names: list[str] = [f"ink_grid_{r}_{c}" for r in range(GRID) for c in range(GRID)]
    names += ["ink_mean", "ink_coverage_log", "ink_dark", "ink_std", "stroke_thickness"]
    names += ["ink_cx", "ink_cy", "ink_sx", "ink_sy", "ink_bbox_area"]
    names += [f"gray_hist_{i}" for i in range(GRAY_BINS)]
    names += [f"edge_orient_{i}" for i in range(ORIENTATION_BINS)]
    names += ["edge_density_log", "edge_mean"]
    names += ["highfreq_energy", "paper_roughness", "paper_brightness"]
    names += ["saturation_mean", "colourful_fraction"]
    names += [f"hue_hist_{i}" for i in range(HUE_BINS)]
    names += ["red_mean", "green_mean", "blue_mean", "red_std", "green_std", "blue_std"]
    names += ["palette_size"]
    return tuple(names)


FEATURE_NAMES = _feature_names()
FEATURE_COUNT = len(FEATURE_NAMES)


def _log_fraction(fraction: float) -> float:
    """A fraction on a log scale mapped to 0..1 (1e-4 or less -> 0, 1 -> 1): an empty page and
    a sparse drawing differ by orders of magnitude, not by a few hundredths."""
    return float(np.log10(max(fraction, LOG_FLOOR)) / -np.log10(LOG_FLOOR) + 1.0)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any mode to RGB; transparency is composited onto white paper."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        paper.alpha_composite(rgba)
        return paper.convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit gray: scale to 8 bits before Pillow's clipping conversion.
        array = np.asarray(image, dtype=np.float32)
        top = float(array.max()) or 1.0
        scaled = np.clip(array / top * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(scaled).convert("RGB")
    return image.convert("RGB")


def _downscale(image: Image.Image) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The working paper lightness (WORK_SIZE², float32 0..1), its smoothed copy for edge
    orientation, and the colour image (COLOUR_SIZE², uint8)."""
    image.draft("RGB", (WORK_SIZE, WORK_SIZE))  # JPEG: decode at reduced scale; else no-op
    factor = min(image.width, image.height) // (2 * WORK_SIZE)
    if factor >= 2 and image.mode in REDUCIBLE_MODES:
        # Cheap box reduction first (alpha-aware), so conversions run on the small image.
        image = image.reduce(factor)
    rgb = _to_rgb(image)
    factor = min(rgb.width, rgb.height) // (2 * WORK_SIZE)
    if factor >= 2:
        rgb = rgb.reduce(factor)
    work = rgb.resize((WORK_SIZE, WORK_SIZE), Image.Resampling.BILINEAR)
    # "Paper lightness": the darkest channel of each pixel. Any pigment absorbs some channel,
    # so a yellow crayon counts as ink as much as a pencil does (luminance would miss it).
    red, green, blue = work.split()
    gray_image = ImageChops.darker(ImageChops.darker(red, green), blue)
    gray = np.asarray(gray_image, dtype=np.float32) / 255.0
    # Orientation from a smoothed copy: aliased (pixel-art) strokes and anti-aliased ones, or
    # a native 256 px image and a downscaled 2048 px one, then give the same histogram.
    smooth = np.asarray(gray_image.filter(ImageFilter.GaussianBlur(EDGE_SMOOTHING)))
    smooth = smooth.astype(np.float32) / 255.0
    colour = np.asarray(
        work.resize((COLOUR_SIZE, COLOUR_SIZE), Image.Resampling.BOX), dtype=np.uint8
    )
    return gray, smooth, colour


def _ink_features(ink: np.ndarray, smooth_ink: np.ndarray) -> list[float]:
    size = ink.shape[0]
    cell = size // GRID
    trimmed = ink[: cell * GRID, : cell * GRID]
    grid = trimmed.reshape(GRID, cell, GRID, cell).mean(axis=(1, 3))
    feats = [float(v) for v in np.sqrt(grid.ravel())]

    inked = ink > INK_THRESHOLD
    coverage = float(inked.mean())
    # Stroke thickness: inked pixels per boundary pixel (thick strokes have more ink per edge).
    boundary = inked[:, 1:] != inked[:, :-1]
    boundary_count = float(boundary.sum()) + float((inked[1:, :] != inked[:-1, :]).sum())
    thickness = float(inked.sum()) / (boundary_count + 1.0)
    feats += [
        float(ink.mean()),
        _log_fraction(coverage),
        float((smooth_ink > DARK_THRESHOLD).mean()),  # dark areas, not thin dark lines
        float(ink.std()),
        float(np.log1p(thickness) / np.log1p(size)),
    ]

    total = float(ink.sum())
    if total > 1e-6:
        axis = (np.arange(size, dtype=np.float32) + 0.5) / size
        col_mass = ink.sum(axis=0) / total
        row_mass = ink.sum(axis=1) / total
        cx = float(col_mass @ axis)
        cy = float(row_mass @ axis)
        sx = float(np.sqrt(col_mass @ (axis - cx) ** 2))
        sy = float(np.sqrt(row_mass @ (axis - cy) ** 2))
    else:
        cx = cy = 0.5
        sx = sy = 0.0
    rows = np.flatnonzero(inked.any(axis=1))
    cols = np.flatnonzero(inked.any(axis=0))
    bbox_area = (
        (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1) / (size * size) if rows.size else 0.0
    )
    feats += [cx, cy, sx, sy, float(bbox_area)]
    return feats


def _edge_features(gray: np.ndarray) -> list[float]:
    gx = np.zeros_like(gray)
    gy = np.zeros_like(gray)
    gx[:, 1:-1] = (gray[:, 2:] - gray[:, :-2]) * 0.5
    gy[1:-1, :] = (gray[2:, :] - gray[:-2, :]) * 0.5
    magnitude = np.hypot(gx, gy)
    strong = magnitude > EDGE_THRESHOLD
    # Orientation of the edge, folded to 0..pi (a stroke has no direction).
    angle = np.mod(np.arctan2(gy[strong], gx[strong]), np.pi)
    bins = np.minimum((angle / np.pi * ORIENTATION_BINS).astype(np.int64), ORIENTATION_BINS - 1)
    hist = np.bincount(bins, weights=magnitude[strong], minlength=ORIENTATION_BINS)
    weight = float(hist.sum())
    hist = hist / weight if weight > 0 else np.full(ORIENTATION_BINS, 1.0 / ORIENTATION_BINS)
    hist = np.sqrt(hist)
    edge_density = _log_fraction(float(strong.mean()))
    return [*(float(v) for v in hist), edge_density, float(magnitude.mean()) * 4.0]


def _half(full: np.ndarray) -> np.ndarray:
    """Half the working size (2x2 means): a native low-resolution image and a downscaled
    high-resolution one then have the same sharpness and the same share of mid tones."""
    half = full.shape[0] // 2
    return full[: half * 2, : half * 2].reshape(half, 2, half, 2).mean(axis=(1, 3))


def _texture_features(gray: np.ndarray) -> list[float]:
    centre = gray[1:-1, 1:-1]
    up, down = gray[:-2, 1:-1], gray[2:, 1:-1]
    left, right = gray[1:-1, :-2], gray[1:-1, 2:]
    laplacian = 4.0 * centre - up - down - left - right
    highfreq = float(np.abs(laplacian).mean())
    # Roughness of the paper: the median pixel is blank paper in a drawing (flat, ~0) and
    # noise everywhere in a noisy scan.
    roughness = float(np.median(np.abs(laplacian)))
    paper = float(np.percentile(gray, 90))
    return [highfreq, roughness, paper]


def _colour_features(colour: np.ndarray) -> list[float]:
    rgb = colour.astype(np.float32) / 255.0
    top = rgb.max(axis=2)
    bottom = rgb.min(axis=2)
    chroma = top - bottom
    saturation = np.where(top > 1e-6, chroma / np.maximum(top, 1e-6), 0.0)
    colourful = (saturation > COLOURFUL_SATURATION) & (top > 0.2)

    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    safe = np.maximum(chroma, 1e-6)
    hue = np.where(
        top == r,
        np.mod((g - b) / safe, 6.0),
        np.where(top == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0),
    )  # 0..6
    hue_bins = np.minimum(hue[colourful].astype(np.int64), HUE_BINS - 1)
    hue_hist = np.sqrt(np.bincount(hue_bins, minlength=HUE_BINS) / float(colourful.size))

    quantised = (colour // 64).astype(np.int64)
    codes = quantised[..., 0] * 16 + quantised[..., 1] * 4 + quantised[..., 2]
    counts = np.bincount(codes.ravel(), minlength=64)
    palette = float((counts > 0.002 * codes.size).sum()) / 64.0

    means = rgb.reshape(-1, 3).mean(axis=0)
    stds = rgb.reshape(-1, 3).std(axis=0)
    return [
        float(saturation.mean()),
        float(colourful.mean()),
        *(float(v) for v in hue_hist),
        *(float(v) for v in means),
        *(float(v) for v in stds),
        palette,
    ]


def extract_features(image: Image.Image) -> np.ndarray:
    """The fixed-length float32 feature vector of a drawing (deterministic)."""
    gray, smooth, colour = _downscale(image)
    ink = 1.0 - gray
    half = _half(gray)
    gray_hist = np.bincount(
        np.minimum((smooth * GRAY_BINS).astype(np.int64), GRAY_BINS - 1).ravel(),
        minlength=GRAY_BINS,
    ) / float(smooth.size)
    feats = _ink_features(ink, 1.0 - smooth)
    feats += [float(v) for v in np.sqrt(gray_hist)]
    feats += _edge_features(smooth)
    feats += _texture_features(half)
    feats += _colour_features(colour)
    vector = np.asarray(feats, dtype=np.float32)
    if vector.shape != (FEATURE_COUNT,):  # pragma: no cover - a programming error
        raise AssertionError(f"feature vector has {vector.size} values, not {FEATURE_COUNT}")
    return vector
