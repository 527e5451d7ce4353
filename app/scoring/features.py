"""Features of the ink, not of the paper, with Pillow and NumPy only.

Before any feature is taken the page is estimated and removed (``app.scoring.page``): crop
borders are trimmed, a large-scale background (paper tone, colour cast, uneven light) is
divided out, ruled or squared lines are subtracted and a noise floor is cut off. What is left
is an ink map (0 = paper, 1 = full ink) and the ink's colours on white paper. Features then
describe what was drawn, as shares and masses that do not depend on the resolution:

- how much ink: mass, coverage, share of dark ink, share of mid tones;
- where it sits: centre, spread, extent, its share in each cell of a grid over the page;
- strokes: thickness, how much of the ink is filled areas, edge density, and how much of the
  edges run along the page's axes rather than diagonally (one number; not a histogram of
  directions nor their dominant direction, which a row of parallel grass blades or a hatched
  fill decides on its own and which says nothing about whether a child drew the page);
- shape: the ink in a coarse grid over the box the drawing occupies (what the drawing looks
  like, whatever its size and position on the page);
- directions: in each cell of a 3×3 grid over that box, its share of the edges and how
  upright or flat they run on average (a 7 and a 1 fill their boxes alike, not with the same
  strokes). A mean, not a histogram, and no diagonal term: a wobbly line, a line turned by a
  few degrees and a roof's slope in one corner of a house change it little;
- closed shapes: how many areas the strokes enclose (a head, a window, a loop) and how high
  in the box they sit, on the box resampled to a fixed size so that neither the resolution
  nor a pen's small gaps change the count;
- coverage: the share of the page's cells that hold any ink (a scribble over the whole page
  leaves none bare; the busiest drawings leave some);
- colours: saturation, colourful share, hues, number of colours used;
- a few descriptors of the page itself (brightness, colour, evenness, noise), which are
  ordinary for any real paper or photo and only extreme for a dark, coloured, noisy or
  photographed-scene page.

Every feature is a plain number on a roughly 0..1 scale; the vector has a fixed length
(``FEATURE_COUNT``) whatever the input size, mode or aspect ratio. Two masks tell the model's
range term (``app.scoring.model.feature_range``) how to treat a feature: ``RANGE_FREE``
features (the shares of the ink by place, shape and direction, the closed shapes) have none,
as any one of their values is ordinary and only their combination can be unusual;
``RANGE_EXACT`` features (the amount of ink, the page's covered share) are held to the range
seen without a margin, as just past the least ink lies an empty page and just past the
highest cover a scribble over the whole page.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from app.scoring.page import Page, estimate_page

FEATURE_VERSION = 6  # 5 was released and withdrawn (a histogram of directions)
GRID = 4
SHAPE_GRID = 5  # ink shares over the drawing's own box
DIRECTION_GRID = 3  # cells a side over the drawing's box, widened to a square
BOX_SIDE = 48  # cells a side the square box is resampled to for directions and closed shapes
ENCLOSING_INK = 0.15  # ink of a pixel that closes a shape
ENCLOSED_MIN_CELLS = 2  # of BOX_SIDE², an enclosed area smaller than this is a pen's speck
ENCLOSED_COUNT_SCALE = 16  # closed shapes that count 1 on the log scale (more count more)
ENCLOSED_PAD = 0.1  # of the box's side, so that strokes on its edge still close a shape
COVER_GRID = 16  # cells of the page whose share holding ink is measured
COVER_LEVELS = (0.02, 0.05)  # mean ink of a cell that counts as covered
HUE_BINS = 6

COVERAGE_INK = 0.3
DARK_INK = 0.6
MID_TONE = (0.05, 0.45)
COLOURFUL_SATURATION = 0.3
COLOUR_INK = 0.2
PALETTE_SHARE = 0.06
LOG_FLOOR = 1e-4


def _feature_names() -> tuple[str, ...]:
    names: list[str] = ["ink_mass_log", "ink_coverage_log", "ink_dark_share", "ink_mid_share"]
    names += ["ink_cx", "ink_cy", "ink_sx", "ink_sy", "ink_extent_w", "ink_extent_h"]
    names += [f"ink_grid_{r}_{c}" for r in range(GRID) for c in range(GRID)]
    names += ["stroke_thickness", "fill_share", "edge_density_log"]
    names += ["edge_axis_share"]
    names += ["ink_saturation", "ink_colourful_share", "palette_size"]
    names += [f"hue_share_{i}" for i in range(HUE_BINS)]
    names += ["paper_brightness", "paper_saturation", "paper_unevenness", "paper_colour_spread"]
    names += ["page_noise"]
    names += [f"shape_{r}_{c}" for r in range(SHAPE_GRID) for c in range(SHAPE_GRID)]
    names += ["ink_cover", "ink_cover_dense"]
    cells = [f"{r}_{c}" for r in range(DIRECTION_GRID) for c in range(DIRECTION_GRID)]
    names += [name for cell in cells for name in (f"edges_{cell}", f"edges_{cell}_upright")]
    names += ["enclosed_areas", "enclosed_height"]
    return tuple(names)


FEATURE_NAMES = _feature_names()
FEATURE_COUNT = len(FEATURE_NAMES)
RANGE_FREE = np.array(
    [name.startswith(("ink_grid_", "shape_", "edges_", "enclosed_")) for name in FEATURE_NAMES]
)
RANGE_EXACT = np.array(
    [
        name in ("ink_mass_log", "ink_coverage_log", "ink_cover", "ink_cover_dense")
        for name in FEATURE_NAMES
    ]
)


def _log_fraction(fraction: float) -> float:
    """A fraction on a log scale mapped to 0..1 (1e-4 or less -> 0, 1 -> 1): an empty page and
    a sparse drawing differ by orders of magnitude, not by a few hundredths."""
    return float(np.log10(max(fraction, LOG_FLOOR)) / -np.log10(LOG_FLOOR) + 1.0)


def _amount(ink: np.ndarray) -> list[float]:
    mass = float(ink.sum())
    share = (lambda part: float(part) / mass) if mass > 1e-6 else (lambda part: 0.0)
    mid = (ink > MID_TONE[0]) & (ink < MID_TONE[1])
    return [
        _log_fraction(float(ink.mean())),
        _log_fraction(float((ink > COVERAGE_INK).mean())),
        share(ink[ink > DARK_INK].sum()),
        share(ink[mid].sum()),
    ]


def _mass_quantiles(mass: np.ndarray, low: float, high: float) -> tuple[float, float]:
    cumulative = np.cumsum(mass)
    total = cumulative[-1]
    first = int(np.searchsorted(cumulative, low * total))
    last = int(np.searchsorted(cumulative, high * total))
    return first / mass.size, (last + 1) / mass.size


def _placement(ink: np.ndarray) -> list[float]:
    height, width = ink.shape
    total = float(ink.sum())
    if total <= 1e-6:
        return [0.5, 0.5, 0.0, 0.0, 0.0, 0.0] + [1.0 / GRID] * (GRID * GRID)
    cols, rows = ink.sum(axis=0) / total, ink.sum(axis=1) / total
    x = (np.arange(width) + 0.5) / width
    y = (np.arange(height) + 0.5) / height
    cx, cy = float(cols @ x), float(rows @ y)
    sx, sy = float(np.sqrt(cols @ (x - cx) ** 2)), float(np.sqrt(rows @ (y - cy) ** 2))
    left, right = _mass_quantiles(cols, 0.02, 0.98)
    top, bottom = _mass_quantiles(rows, 0.02, 0.98)
    row_edges = np.linspace(0, height, GRID + 1).astype(int)
    col_edges = np.linspace(0, width, GRID + 1).astype(int)
    cells = np.add.reduceat(np.add.reduceat(ink, row_edges[:-1], axis=0), col_edges[:-1], axis=1)
    grid = np.sqrt(cells.ravel() / total)
    return [cx, cy, 2 * sx, 2 * sy, right - left, bottom - top, *(float(v) for v in grid)]


def _gradients(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gx = np.zeros_like(ink)
    gy = np.zeros_like(ink)
    gx[:, 1:-1] = (ink[:, 2:] - ink[:, :-2]) * 0.5
    gy[1:-1, :] = (ink[2:, :] - ink[:-2, :]) * 0.5
    return gx, gy


def _doubled_angle(gx: np.ndarray, gy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's edge direction as (cos 2θ, sin 2θ) weighted by the edge's strength: a
    line and the same line drawn the other way round point the same way."""
    return gx * gx - gy * gy, 2.0 * gx * gy


def _strokes(page: Page) -> list[float]:
    ink, smooth = page.ink, page.smooth_ink
    size = float(np.sqrt(ink.size))
    gx, gy = _gradients(smooth)
    magnitude = np.hypot(gx, gy)
    edge_mass = float(magnitude.sum())
    mass = float(smooth.sum())
    # A stroke of width w and length L has mass w*L and edge mass about 2*L (unit contrast).
    thickness = 2.0 * mass / edge_mass if edge_mass > 1e-6 else 0.0
    thickness_log = float(np.log1p(thickness) / np.log1p(size / 4))
    inked = page.interior_share
    edge_density = _log_fraction(edge_mass / ink.size / 0.5)
    # 1 when every edge runs along the page's axes (houses, cars), 0 when every edge runs
    # diagonally, 0.5 for no preference (circles, scribbles).
    cos2, sin2 = _doubled_angle(gx, gy)
    if edge_mass > 1e-9:
        cos4 = (cos2 * cos2 - sin2 * sin2) / np.maximum(magnitude * magnitude, 1e-12)
        axis_share = float(0.5 + 0.5 * (cos4 * magnitude).sum() / edge_mass)
    else:
        axis_share = 0.5
    return [min(thickness_log, 1.5), inked, edge_density, axis_share]


def _drawing_box(ink: np.ndarray) -> tuple[int, int, int, int] | None:
    """Rows [top, bottom) and columns [left, right) holding 96 % of the ink, or None."""
    total = float(ink.sum())
    if total <= 1e-6:
        return None
    cols, rows = ink.sum(axis=0) / total, ink.sum(axis=1) / total
    height, width = ink.shape
    left, right = _mass_quantiles(cols, 0.02, 0.98)
    top, bottom = _mass_quantiles(rows, 0.02, 0.98)
    t, b = round(top * height), max(round(bottom * height), round(top * height) + 1)
    lo, r = round(left * width), max(round(right * width), round(left * width) + 1)
    return t, min(b, height), lo, min(r, width)


def _cell_sums(values: np.ndarray, cells: int) -> np.ndarray:
    rows = np.linspace(0, values.shape[0], cells + 1).astype(int)
    cols = np.linspace(0, values.shape[1], cells + 1).astype(int)
    rows, cols = np.maximum.accumulate(rows), np.maximum.accumulate(cols)
    out = np.zeros((cells, cells))
    for i in range(cells):
        for j in range(cells):
            out[i, j] = values[rows[i] : max(rows[i + 1], rows[i] + 1),
                               cols[j] : max(cols[j + 1], cols[j] + 1)].sum()  # fmt: skip
    return out


def _shape(page: Page) -> list[float]:
    """What the drawing looks like within its own box: the ink's share in each cell of a
    SHAPE_GRID grid over it (square roots, like the page grid)."""
    box = _drawing_box(page.ink)
    if box is None:
        return [1.0 / SHAPE_GRID] * SHAPE_GRID**2
    top, bottom, left, right = box
    ink = page.ink[top:bottom, left:right]
    total = float(ink.sum())
    if total <= 1e-6:
        return [1.0 / SHAPE_GRID] * SHAPE_GRID**2
    return [float(v) for v in np.sqrt(_cell_sums(ink, SHAPE_GRID).ravel() / total)]


def _square_box(ink: np.ndarray, box: tuple[int, int, int, int], pad: int = 1) -> np.ndarray:
    """The drawing's box widened to a square around its centre and by ``pad`` pixels on each
    side (paper beyond the page), so that strokes keep their directions when it is resampled."""
    top, bottom, left, right = box
    side = max(bottom - top, right - left) + 2 * pad
    row, col = (top + bottom - side) // 2, (left + right - side) // 2
    padded = np.pad(ink, side)
    return padded[row + side : row + 2 * side, col + side : col + 2 * side]


def _directions(page: Page) -> list[float]:
    """In each cell of a DIRECTION_GRID grid over the drawing's square box, resampled to
    BOX_SIDE first (so that neither the resolution nor the pen's width matters): the cell's
    share of the edges (square root) and their mean of cos 2θ weighted by strength: 1 when
    every stroke there is upright, -1 when every stroke is flat, 0 for no preference."""
    count = 2 * DIRECTION_GRID**2
    box = _drawing_box(page.ink)
    if box is None:
        return [0.0] * count
    square = np.ascontiguousarray(_square_box(page.ink, box), dtype=np.float32)
    small = Image.fromarray(square, "F").resize((BOX_SIDE, BOX_SIDE), Image.Resampling.BOX)
    gx, gy = _gradients(np.asarray(small, dtype=np.float64))
    magnitude = np.hypot(gx, gy)
    total = float(magnitude.sum())
    if total <= 1e-9:
        return [0.0] * count
    edges = _cell_sums(magnitude, DIRECTION_GRID)
    upright = _cell_sums(magnitude * np.cos(2.0 * np.arctan2(gy, gx)), DIRECTION_GRID)
    upright = np.where(edges > 1e-9, upright / np.maximum(edges, 1e-9), 0.0)
    return [float(v) for v in np.stack([np.sqrt(edges / total), upright], axis=-1).ravel()]


def _spread(mask: np.ndarray, within: np.ndarray) -> np.ndarray:
    """``mask`` grown one cell in the four directions, inside ``within``."""
    grown = mask.copy()
    grown[1:, :] |= mask[:-1, :]
    grown[:-1, :] |= mask[1:, :]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    return grown & within


def _enclosed_cells(page: Page) -> np.ndarray | None:
    """The cells of a BOX_SIDE grid over the drawing's square box that the strokes enclose:
    paper not reachable from the box's edge without crossing ink. A cell holds ink if any of
    its pixels does, so a gap in a stroke narrower than a cell still closes the shape."""
    box = _drawing_box(page.ink)
    if box is None:
        return None
    pad = round(ENCLOSED_PAD * max(box[1] - box[0], box[3] - box[2])) + 1
    square = _square_box(page.ink, box, pad) > ENCLOSING_INK
    starts = np.linspace(0, square.shape[0], BOX_SIDE + 1).astype(int)[:-1]
    starts = np.maximum.accumulate(np.minimum(starts, square.shape[0] - 1))
    paper = ~np.logical_or.reduceat(np.logical_or.reduceat(square, starts, axis=0), starts, axis=1)
    outside = np.zeros_like(paper)
    outside[[0, -1], :], outside[:, [0, -1]] = paper[[0, -1], :], paper[:, [0, -1]]
    while True:
        grown = _spread(outside, paper)
        if (grown == outside).all():
            return paper & ~outside
        outside = grown


def _area_sizes(cells: np.ndarray) -> np.ndarray:
    """The number of cells in each 4-connected area of ``cells``."""
    none = cells.size
    label = np.where(cells, np.arange(none).reshape(cells.shape), none)
    while True:
        lowest = label.copy()
        lowest[1:, :] = np.minimum(lowest[1:, :], label[:-1, :])
        lowest[:-1, :] = np.minimum(lowest[:-1, :], label[1:, :])
        lowest[:, 1:] = np.minimum(lowest[:, 1:], label[:, :-1])
        lowest[:, :-1] = np.minimum(lowest[:, :-1], label[:, 1:])
        lowest = np.where(cells, lowest, none)
        if (lowest == label).all():
            return np.unique(label[cells], return_counts=True)[1]
        label = lowest


def _closed_shapes(page: Page) -> list[float]:
    """How many areas the strokes enclose (log scale, ENCLOSED_COUNT_SCALE -> 1) and the mean
    height of the enclosed cells in the box (0 top, 1 bottom; 0.5 when there are none)."""
    enclosed = _enclosed_cells(page)
    if enclosed is None or not enclosed.any():
        return [0.0, 0.5]
    areas = int((_area_sizes(enclosed) >= ENCLOSED_MIN_CELLS).sum())
    rows = np.nonzero(enclosed)[0]
    count = float(np.log1p(areas) / np.log1p(ENCLOSED_COUNT_SCALE))
    return [count, float((rows.mean() + 0.5) / BOX_SIDE)]


def _coverage(ink: np.ndarray) -> list[float]:
    """The share of the page's cells (a COVER_GRID grid) holding ink, at two levels: a busy
    drawing leaves parts of the page bare, a scribble over the whole page does not."""
    cells = _cell_sums(ink, COVER_GRID) / (ink.size / COVER_GRID**2)
    return [float((cells > level).mean()) for level in COVER_LEVELS]


def _colours(page: Page) -> list[float]:
    rgb, ink = page.colour, page.colour_ink
    mass = float(ink.sum())
    if mass <= 1e-6:
        return [0.0, 0.0, 0.0] + [0.0] * HUE_BINS
    top = rgb.max(axis=2)
    chroma = top - rgb.min(axis=2)
    saturation = np.where(top > 1e-3, chroma / np.maximum(top, 1e-3), 0.0)
    # Colours of strokes, not of the faint remains of printed lines or of noise.
    colourful = (saturation > COLOURFUL_SATURATION) & (ink > COLOUR_INK)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    safe = np.maximum(chroma, 1e-6)
    hue = np.where(
        top == r,
        np.mod((g - b) / safe, 6.0),
        np.where(top == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0),
    )
    bins = np.minimum(hue[colourful].astype(np.int64), HUE_BINS - 1)
    hue_mass = np.bincount(bins, weights=ink[colourful], minlength=HUE_BINS) / mass
    colourful_share = float(ink[colourful].sum()) / mass
    dark_share = 1.0 - colourful_share
    # A soft count: a colour with PALETTE_SHARE of the ink or more counts fully, less counts
    # in proportion (a hard cut-off would jump with a few pixels).
    palette = float(np.minimum(hue_mass / PALETTE_SHARE, 1.0).sum())
    palette += min(dark_share / PALETTE_SHARE, 1.0)
    return [
        float((saturation * ink).sum()) / mass,
        colourful_share,
        palette / (HUE_BINS + 1),
        *(float(v) for v in np.sqrt(hue_mass)),
    ]


def extract_features(image: Image.Image) -> np.ndarray:
    """The fixed-length float32 feature vector of a drawing (deterministic)."""
    page = estimate_page(image)
    feats = _amount(page.ink)
    feats += _placement(page.ink)
    feats += _strokes(page)
    feats += _colours(page)
    feats += [
        page.paper_brightness,
        page.paper_saturation,
        page.paper_unevenness,
        page.paper_colour_spread,
        page.noise,
    ]
    feats += _shape(page)
    feats += _coverage(page.ink)
    feats += _directions(page)
    feats += _closed_shapes(page)
    vector = np.asarray(feats, dtype=np.float32)
    if vector.shape != (FEATURE_COUNT,):  # pragma: no cover - a programming error
        raise AssertionError(f"feature vector has {vector.size} values, not {FEATURE_COUNT}")
    return vector
