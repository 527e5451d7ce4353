"""The page under a drawing, estimated and removed, so that only the ink is left.

Steps, on a ``WORK_SIZE`` square copy of the upload (JPEGs are decoded at reduced scale):

1. a background estimate: per block of ``BLOCK`` pixels and per channel, a high percentile
   (the paper between the strokes), then a smooth surface through the paper blocks (filled
   areas and dense ink left out), interpolated back to every pixel;
2. crop borders: rows and columns of blocks at the edges that are much darker than the
   paper (a scanner lid, the table around a photographed sheet) are trimmed;
3. paper tone, colour cast and uneven illumination: each pixel is divided by the background,
   which gives its reflectance on white paper;
4. ruled or squared lines: within vertical (horizontal) strips, a faint value that most of a
   row (column) shares is a printed line, not a stroke, and is subtracted;
5. noise: ink below a floor is paper (sensor noise, JPEG ringing, paper grain); the floor is
   ``INK_FLOOR``, raised on a noisy page to 3.5 standard deviations of its noise. The noise
   is measured where the page is paper: after the printed lines are removed, in the quieter
   blocks (``NOISE_QUANTILE``), so that strokes, crayon texture or squared paper are not
   mistaken for noise.

What the page itself looked like is kept as a handful of numbers (brightness, saturation,
evenness, colour spread, noise) for the features. The colour spread is taken over the paper
blocks only (those the surface went through): a painted sky is the drawing, not the paper.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

WORK_SIZE = 384
BLOCK = 16
PAPER_PERCENTILE = 0.9
BORDER_DARKNESS = 0.6  # a block darker than this share of the paper is outside the page
MAX_BORDER_BLOCKS = 4  # per side
SURFACE_ROUNDS = 3
SURFACE_TOLERANCE = 0.04
LINE_STRIPS = 6
LINE_MAX_INK = 0.6  # ruled lines are fainter than this
LINE_MIN_INK = 0.03
RIDGE_REACH = 3
MAX_EDGE_RUN = 0.15
INK_FLOOR = 0.1
MAX_INK_FLOOR = 0.3
NOISE_QUANTILE = 20  # percentile of the blocks' noise: the paper between the strokes
COLOUR_STEP = 3
REDUCIBLE_MODES = ("RGB", "RGBA", "L", "LA")


@dataclass(frozen=True)
class Page:
    ink: np.ndarray  # (h, w) float32 0..1, the page removed
    smooth_ink: np.ndarray  # the same, lightly smoothed (edge directions)
    interior_share: float  # share of the inked pixels inside filled areas
    colour: np.ndarray  # (h', w', 3) reflectance of a subsample of the pixels
    colour_ink: np.ndarray  # (h', w') ink of the same pixels
    paper_brightness: float
    paper_saturation: float
    paper_unevenness: float
    paper_colour_spread: float
    noise: float


def to_rgb(image: Image.Image) -> Image.Image:
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


def working_copy(image: Image.Image) -> np.ndarray:
    """The upload as a (WORK_SIZE, WORK_SIZE, 3) float32 array, 0..1."""
    image.draft("RGB", (WORK_SIZE, WORK_SIZE))  # JPEG: decode at reduced scale; else no-op
    factor = min(image.width, image.height) // (2 * WORK_SIZE)
    if factor >= 2 and image.mode in REDUCIBLE_MODES:
        image = image.reduce(factor)  # cheap box reduction first (alpha-aware)
    rgb = to_rgb(image)
    factor = min(rgb.width, rgb.height) // (2 * WORK_SIZE)
    if factor >= 2:
        rgb = rgb.reduce(factor)
    work = rgb.resize((WORK_SIZE, WORK_SIZE), Image.Resampling.BILINEAR)
    return np.asarray(work, dtype=np.float32) / 255.0


def _block_background(rgb: np.ndarray) -> np.ndarray:
    blocks = WORK_SIZE // BLOCK
    tiles = rgb.reshape(blocks, BLOCK, blocks, BLOCK, 3).transpose(0, 2, 4, 1, 3)
    tiles = tiles.reshape(blocks, blocks, 3, BLOCK * BLOCK)
    rank = int(PAPER_PERCENTILE * (BLOCK * BLOCK - 1))
    return np.partition(tiles, rank, axis=3)[..., rank]


def _paper_surface(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A smooth (cubic) surface through the paper blocks of a (by, bx, 3) block background:
    fitted per channel, then refitted without the blocks well below it (fills, dense ink).
    Uneven light and vignetting are smooth; a fill is not. Returns the surface and the
    (by, bx) mask of the blocks it was last fitted through (the paper)."""
    rows, cols = grid.shape[:2]
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    x, y = (x + 0.5) / cols - 0.5, (y + 0.5) / rows - 0.5
    terms = [np.ones_like(x), x, y, x * x, x * y, y * y, x**3, x * x * y, x * y * y, y**3]
    basis = np.stack(terms, axis=-1).reshape(-1, len(terms))
    values = grid.reshape(-1, grid.shape[2]).astype(np.float64)
    keep = np.ones(values.shape[0], dtype=bool)
    fit = values
    for _ in range(SURFACE_ROUNDS):
        coefficients = np.linalg.lstsq(basis[keep], values[keep], rcond=None)[0]
        fit = basis @ coefficients
        below = (values < fit - SURFACE_TOLERANCE).any(axis=1)
        if (~below).sum() < 2 * len(terms):
            break
        keep = ~below
    surface = np.clip(fit, 0.0, 1.0).reshape(grid.shape).astype(np.float32)
    return surface, keep.reshape(grid.shape[:2])


def _page_bounds(luminance: np.ndarray) -> tuple[int, int, int, int]:
    """Block rows/columns [top, bottom) x [left, right) that are page, not border."""
    blocks = luminance.shape[0]
    centre = luminance[blocks // 4 : 3 * blocks // 4, blocks // 4 : 3 * blocks // 4]
    paper = float(np.median(centre))
    on_page = luminance > BORDER_DARKNESS * paper
    rows, cols = on_page.mean(axis=1), on_page.mean(axis=0)

    def trim(shares: np.ndarray) -> tuple[int, int]:
        first, last = 0, blocks
        while first < MAX_BORDER_BLOCKS and shares[first] < 0.5:
            first += 1
        while blocks - last < MAX_BORDER_BLOCKS and shares[last - 1] < 0.5:
            last -= 1
        return first, last

    top, bottom = trim(rows)
    left, right = trim(cols)
    return top, bottom, left, right


def _upsample(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(grid[..., c], dtype=np.float32), "F").resize(
                (width, height), Image.Resampling.BILINEAR
            )
        )
        for c in range(grid.shape[2])
    ]
    return np.stack(channels, axis=2)


def _ridges(ink: np.ndarray, axis: int) -> np.ndarray:
    """How much each pixel stands out from the pixels ``RIDGE_REACH`` away across ``axis``:
    the ink of thin lines along the other axis; zero inside filled areas."""
    pad = [(0, 0), (0, 0)]
    pad[axis] = (RIDGE_REACH, RIDGE_REACH)
    padded = np.pad(ink, pad, mode="edge")
    length = ink.shape[axis]
    before = np.take(padded, np.arange(0, length), axis=axis)
    after = np.take(padded, np.arange(2 * RIDGE_REACH, length + 2 * RIDGE_REACH), axis=axis)
    return np.clip(ink - np.maximum(before, after), 0.0, None)


def _remove_lines(ink: np.ndarray) -> np.ndarray:
    """Subtract printed lines: thin, faint ridges that most of a row (column) of a strip
    shares. A drawn stroke seldom runs along one row for half a strip; a fill has no ridge."""
    out = ink.copy()
    for axis in (1, 0):  # rows within vertical strips, then columns within horizontal strips
        ridges = _ridges(ink, 1 - axis)
        # Widened by a pixel across the lines, so that a line tilted by a degree or two (a
        # photo) still runs along one row of a strip.
        padded = np.pad(ridges, [(1, 1), (0, 0)] if axis == 1 else [(0, 0), (1, 1)], "edge")
        if axis == 1:
            widened = np.maximum(np.maximum(padded[:-2], padded[1:-1]), padded[2:])
        else:
            widened = np.maximum(np.maximum(padded[:, :-2], padded[:, 1:-1]), padded[:, 2:])
        length = out.shape[axis]
        edges = np.linspace(0, length, LINE_STRIPS + 1).astype(int)
        for start, end in itertools.pairwise(edges):
            window = (slice(None), slice(start, end)) if axis == 1 else (slice(start, end),)
            ridge = ridges[window]
            level = np.median(widened[window], axis=axis, keepdims=True)
            level = np.where((level > LINE_MIN_INK) & (level < LINE_MAX_INK), level, 0.0)
            out[window] -= np.minimum(ridge, level * 1.5)
    return np.clip(out, 0.0, 1.0)


def _edge_runs(dark: np.ndarray) -> np.ndarray:
    """Pixels joined to the image's edge by an unbroken run of dark pixels along a row or a
    column, at most ``MAX_EDGE_RUN`` of the side: the table or scanner lid around a sheet."""
    border = np.zeros_like(dark)
    reach = int(MAX_EDGE_RUN * max(dark.shape))
    for flip_axis in (None, 0, 1):
        view = dark if flip_axis is None else np.flip(dark, axis=flip_axis)
        for axis in (0, 1):
            if flip_axis is not None and flip_axis != axis:
                continue
            run = np.cumprod(view, axis=axis).astype(bool)
            run = run & (np.arange(view.shape[axis]) < reach).reshape(
                (-1, 1) if axis == 0 else (1, -1)
            )
            border |= run if flip_axis is None else np.flip(run, axis=flip_axis)
    return border


def _noise(ink: np.ndarray) -> float:
    """The median absolute Laplacian of the quieter blocks of an ink map (the paper between
    the strokes): about 3 sigma of Gaussian pixel noise."""
    centre = ink[1:-1, 1:-1]
    laplacian = np.abs(
        4.0 * centre - ink[:-2, 1:-1] - ink[2:, 1:-1] - ink[1:-1, :-2] - ink[1:-1, 2:]
    )
    rows, cols = laplacian.shape[0] // BLOCK, laplacian.shape[1] // BLOCK
    if rows == 0 or cols == 0:
        return float(np.median(laplacian))
    blocks = laplacian[: rows * BLOCK, : cols * BLOCK].reshape(rows, BLOCK, cols, BLOCK)
    per_block = np.median(blocks.transpose(0, 2, 1, 3).reshape(rows, cols, -1), axis=2)
    return float(np.percentile(per_block, NOISE_QUANTILE))


def _smooth(ink: np.ndarray, radius: float) -> np.ndarray:
    image = Image.fromarray(np.round(ink * 255.0).astype(np.uint8), "L")
    return np.asarray(image.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32) / 255.0


def _interior_share(ink: np.ndarray) -> float:
    inked = ink > 0.3
    count = int(inked.sum())
    if count == 0:
        return 0.0
    mask = Image.fromarray((inked * 255).astype(np.uint8), "L")
    around = np.asarray(mask.filter(ImageFilter.BoxBlur(3)))
    return float((inked & (around > 242)).sum()) / count


def estimate_page(image: Image.Image) -> Page:
    rgb = working_copy(image)
    background = _block_background(rgb)
    top, bottom, left, right = _page_bounds(background.mean(axis=2))
    background = background[top:bottom, left:right]
    rgb = rgb[top * BLOCK : bottom * BLOCK, left * BLOCK : right * BLOCK]
    height, width = rgb.shape[:2]

    lifted, paper_blocks = _paper_surface(background)
    paper = _upsample(lifted, height, width)
    reflectance = np.clip(rgb / np.maximum(paper, 0.03), 0.0, 1.0)
    raw_ink = 1.0 - reflectance.min(axis=2)
    raw_ink[_edge_runs(reflectance.mean(axis=2) < BORDER_DARKNESS)] = 0.0
    cleaned = _remove_lines(raw_ink)
    noise = _noise(cleaned)
    # Below the floor is paper: at least INK_FLOOR, higher on a noisy page (3.5 sigma).
    floor = min(max(INK_FLOOR, 3.5 * noise / 3.0), MAX_INK_FLOOR)
    ink = np.clip((cleaned - floor) / (1.0 - floor), 0.0, 1.0)

    luminance = lifted.mean(axis=2)
    top_channel = lifted.max(axis=2)
    saturation = (top_channel - lifted.min(axis=2)) / np.maximum(top_channel, 1e-3)
    # Evenness from the blocks themselves: a photographed scene is uneven, paper is smooth.
    block_luminance = background.mean(axis=2)
    tint = background / np.maximum(block_luminance[..., None], 1e-3)
    # The colour of the paper between the strokes: blocks inside a painted area are not paper.
    paper_tint = tint[paper_blocks] if paper_blocks.sum() >= 2 else tint.reshape(-1, 3)
    return Page(
        ink=ink.astype(np.float32),
        smooth_ink=_smooth(ink, 1.0),
        interior_share=_interior_share(ink),
        colour=reflectance[::COLOUR_STEP, ::COLOUR_STEP],
        colour_ink=ink[::COLOUR_STEP, ::COLOUR_STEP],
        paper_brightness=float(np.median(luminance)),
        paper_saturation=float(np.median(saturation)),
        paper_unevenness=float(
            min(1.0, block_luminance.std() / max(block_luminance.mean(), 1e-3) * 4.0)
        ),
        paper_colour_spread=float(min(1.0, paper_tint.std(axis=0).mean() * 4.0)),
        noise=float(min(1.0, noise * 4.0)),
    )
