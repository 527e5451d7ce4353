"""False flags on simple drawings made without our generator.

The generator can only be tested against itself. Here, Pillow's own shapes (suns, houses,
trees, stick people, flowers, cars, sometimes a ground line) are placed at random on white
paper, in one to four colours of pen of any width, at 600–1600 px, saved as JPEG of quality
60–95: ruler-straight, or drawn by hand (every line and outline a path with a hand's small
wobble, as in tests/app/scoring/drawn_by_hand.py). Each drawing is scored at a few ages. A
model that has learned our generator's strokes rather than children's drawings flags many
of them; the figure is a measure for comparing models, with no target (these drawings are
plainer than a child's).
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from app.scoring import extract_features
from app.scoring.model import ModelBundle

AGES = (4, 8, 12, 16)
PENS = ("black", "blue", "red", "green", "orange", "purple", "brown")
Box = tuple[float, float, float]  # left, top, size
Point = tuple[float, float]
HAND_WOBBLE = (1.5, 8.0)  # px of wobble every so many px of line, at 800 px


class HandDraw:
    """The few ImageDraw calls the shapes make, each drawn as a path with a hand's wobble."""

    def __init__(self, draw: ImageDraw.ImageDraw, rng: np.random.Generator, side: int) -> None:
        self._draw, self._rng = draw, rng
        scale = max(side / 800, 0.75)  # the same hand at every resolution
        self._wobble, self._step = HAND_WOBBLE[0] * scale, HAND_WOBBLE[1] * scale

    def _path(self, points: Sequence[Point], colour: str | None, width: int) -> None:
        path = []
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            for t in np.linspace(0.0, 1.0, max(2, int(np.hypot(x1 - x0, y1 - y0) / self._step))):
                dx, dy = self._rng.normal(0.0, self._wobble, size=2)
                path.append((x0 + (x1 - x0) * t + dx, y0 + (y1 - y0) * t + dy))
        self._draw.line(path, fill=colour, width=width, joint="curve")

    def line(self, xy: Sequence[float], fill: str | None = None, width: int = 1) -> None:
        self._path(list(zip(xy[0::2], xy[1::2], strict=True)), fill, width)

    def rectangle(self, box: Sequence[float], outline: str | None = None, width: int = 1) -> None:
        x0, y0, x1, y1 = box
        self._path([(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)], outline, width)

    def polygon(self, points: Sequence[Point], outline: str | None = None, width: int = 1) -> None:
        self._path([*points, points[0]], outline, width)

    def ellipse(self, box: Sequence[float], outline: str | None = None, width: int = 1) -> None:
        x0, y0, x1, y1 = box
        cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
        ring = np.linspace(0.0, 2 * np.pi, 40)
        self._path([(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in ring], outline, width)


Pen = ImageDraw.ImageDraw | HandDraw
Shape = Callable[[Pen, Box, int, str], None]


def _sun(draw: Pen, box: Box, width: int, pen: str) -> None:
    x, y, s = box
    draw.ellipse((x, y, x + s, y + s), outline=pen, width=width)
    cx, cy = x + s / 2, y + s / 2
    for angle in np.linspace(0, 2 * np.pi, 9)[:-1]:
        dx, dy = np.cos(angle) * s, np.sin(angle) * s
        draw.line((cx + 0.6 * dx, cy + 0.6 * dy, cx + 0.9 * dx, cy + 0.9 * dy), pen, width)


def _house(draw: Pen, box: Box, width: int, pen: str) -> None:
    x, y, s = box
    draw.rectangle((x, y + 0.4 * s, x + s, y + 1.2 * s), outline=pen, width=width)
    draw.polygon([(x, y + 0.4 * s), (x + s / 2, y), (x + s, y + 0.4 * s)], outline=pen, width=width)
    draw.rectangle((x + 0.4 * s, y + 0.8 * s, x + 0.6 * s, y + 1.2 * s), outline=pen, width=width)


def _tree(draw: Pen, box: Box, width: int, pen: str) -> None:
    x, y, s = box
    draw.rectangle(
        (x + 0.4 * s, y + 0.6 * s, x + 0.6 * s, y + 1.3 * s), outline="brown", width=width
    )
    draw.ellipse((x, y, x + s, y + 0.7 * s), outline="green", width=width)


def _person(draw: Pen, box: Box, width: int, pen: str) -> None:
    x, y, s = box
    draw.ellipse((x + 0.35 * s, y, x + 0.65 * s, y + 0.3 * s), outline=pen, width=width)
    middle = x + s / 2
    draw.line((middle, y + 0.3 * s, middle, y + 0.8 * s), pen, width)
    draw.line((x + 0.2 * s, y + 0.5 * s, x + 0.8 * s, y + 0.5 * s), pen, width)
    draw.line((middle, y + 0.8 * s, x + 0.3 * s, y + 1.2 * s), pen, width)
    draw.line((middle, y + 0.8 * s, x + 0.7 * s, y + 1.2 * s), pen, width)


def _flower(draw: Pen, box: Box, width: int, pen: str) -> None:
    x, y, s = box
    for angle in np.linspace(0, 2 * np.pi, 7)[:-1]:
        cx, cy = x + s / 2 + np.cos(angle) * 0.2 * s, y + 0.3 * s + np.sin(angle) * 0.2 * s
        petal = 0.12 * s
        draw.ellipse((cx - petal, cy - petal, cx + petal, cy + petal), outline=pen, width=width)
    draw.line((x + s / 2, y + 0.5 * s, x + s / 2, y + 1.2 * s), "green", width)


def _car(draw: Pen, box: Box, width: int, pen: str) -> None:
    x, y, s = box
    draw.rectangle((x, y + 0.3 * s, x + 1.4 * s, y + 0.7 * s), outline=pen, width=width)
    for left in (0.15, 0.95):
        wheel = (x + left * s, y + 0.6 * s, x + (left + 0.3) * s, y + 0.9 * s)
        draw.ellipse(wheel, outline="black", width=width)


SHAPES: tuple[Shape, ...] = (_sun, _house, _tree, _person, _flower, _car)


def outsider_drawing(rng: np.random.Generator, by_hand: bool = False) -> bytes:
    """One simple drawing on white paper, as JPEG bytes; `by_hand`: every line wobbles."""
    side = int(rng.choice([600, 1000, 1600]))
    image = Image.new("RGB", (side, side * 3 // 4), "white")
    draw: Pen = ImageDraw.Draw(image)
    if by_hand:
        draw = HandDraw(draw, rng, side)
    width = int(rng.integers(2, 9)) * side // 800 + 1
    for _ in range(int(rng.integers(1, 5))):
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        size = rng.uniform(0.15, 0.4) * side
        box = (rng.uniform(0.02, 0.6) * side, rng.uniform(0.02, 0.4) * side * 0.75, size)
        shape(draw, box, width, str(rng.choice(PENS)))
    if rng.random() < 0.5:
        draw.line((0, int(side * 0.7), side, int(side * 0.7)), "green", width)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=int(rng.integers(60, 96)))
    return out.getvalue()


def outsider_false_flags(
    bundle: ModelBundle, count: int, seed: int, by_hand: bool = False
) -> dict[int, float]:
    """The share of ``count`` outsider drawings flagged at each age in AGES."""
    rng = np.random.default_rng(seed)
    flagged = dict.fromkeys(AGES, 0)
    for _ in range(count):
        with Image.open(io.BytesIO(outsider_drawing(rng, by_hand))) as image:
            features = extract_features(image)
        for age in AGES:
            flagged[age] += bundle.score(features, age).is_anomaly
    return {age: flags / count for age, flags in flagged.items()}
