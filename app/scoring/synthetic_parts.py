"""The things a child draws (sun, house, person, tree...), with a wobbly hand.

Coordinates are fractions of the page (0..1); a ``Canvas`` turns them into pixels and adds the
hand's jitter and the stroke width of the child's age.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import ImageDraw

Colour = tuple[int, int, int]
Point = tuple[float, float]

CRAYONS: tuple[Colour, ...] = (
    (220, 40, 40),  # red
    (250, 200, 30),  # yellow
    (40, 110, 220),  # blue
    (50, 160, 60),  # green
    (245, 130, 30),  # orange
    (140, 70, 180),  # purple
    (120, 75, 40),  # brown
    (240, 120, 170),  # pink
    (90, 200, 230),  # light blue
)
PENCILS: tuple[Colour, ...] = ((30, 30, 30), (60, 60, 70), (20, 20, 60))


def pick_colour(rng: np.random.Generator, colourful: bool) -> Colour:
    """A crayon (or a dark pencil when not ``colourful``), slightly varied."""
    options = CRAYONS if colourful else PENCILS
    base = options[int(rng.integers(0, len(options)))]
    shift = rng.integers(-15, 16, size=3)
    return (
        int(np.clip(base[0] + shift[0], 0, 255)),
        int(np.clip(base[1] + shift[1], 0, 255)),
        int(np.clip(base[2] + shift[2], 0, 255)),
    )


@dataclass
class Canvas:
    draw: ImageDraw.ImageDraw
    size: int
    stroke: float
    wobble: float
    rng: np.random.Generator

    def _px(self, point: Point) -> tuple[float, float]:
        jitter = self.rng.normal(0.0, self.wobble, size=2)
        return ((point[0] + jitter[0]) * self.size, (point[1] + jitter[1]) * self.size)

    def width(self, scale: float = 1.0) -> int:
        return max(1, round(self.stroke * scale * self.size))

    def line(self, points: Sequence[Point], colour: Colour, scale: float = 1.0) -> None:
        """A hand-drawn polyline: each segment is split and jittered."""
        pixels: list[tuple[float, float]] = []
        for start, end in itertools.pairwise(points):
            steps = max(2, int(math.dist(start, end) / 0.04) + 1)
            for step in range(steps):
                t = step / steps
                pixels.append(
                    self._px(
                        (start[0] + (end[0] - start[0]) * t, start[1] + (end[1] - start[1]) * t)
                    )
                )
        pixels.append(self._px(points[-1]))
        width = self.width(scale)
        self.draw.line(pixels, fill=colour, width=width, joint="curve")

    def polygon(self, points: Sequence[Point], colour: Colour, fill: Colour | None) -> None:
        if fill is not None:
            self.draw.polygon([self._px(p) for p in points], fill=fill)
        self.line([*points, points[0]], colour)

    def circle(
        self, centre: Point, radius: float, colour: Colour, fill: Colour | None = None
    ) -> None:
        steps = max(10, int(radius * 120))
        start = self.rng.uniform(0, 2 * math.pi)
        points = [
            (
                centre[0] + radius * math.cos(start + 2 * math.pi * i / steps),
                centre[1] + radius * math.sin(start + 2 * math.pi * i / steps),
            )
            for i in range(steps)
        ]
        self.polygon(points, colour, fill)


def _fill_colour(palette: Sequence[Colour], canvas: Canvas, fill: float) -> Colour | None:
    if canvas.rng.random() >= fill:
        return None
    base = palette[int(canvas.rng.integers(0, len(palette)))]
    # Crayon colouring-in is lighter than the outline.
    return (
        int(base[0] + (255 - base[0]) * 0.35),
        int(base[1] + (255 - base[1]) * 0.35),
        int(base[2] + (255 - base[2]) * 0.35),
    )


def _colour(palette: Sequence[Colour], canvas: Canvas) -> Colour:
    return palette[int(canvas.rng.integers(0, len(palette)))]


def draw_sun(canvas: Canvas, palette: Sequence[Colour], at: Point, detail: float, fill: float):
    colour = _colour(palette, canvas)
    radius = canvas.rng.uniform(0.05, 0.09)
    canvas.circle(at, radius, colour, _fill_colour(palette, canvas, fill))
    rays = int(canvas.rng.integers(5, 13))
    for i in range(rays):
        angle = 2 * math.pi * i / rays
        inner = radius * 1.3
        outer = radius * canvas.rng.uniform(1.8, 2.4)
        canvas.line(
            [
                (at[0] + inner * math.cos(angle), at[1] + inner * math.sin(angle)),
                (at[0] + outer * math.cos(angle), at[1] + outer * math.sin(angle)),
            ],
            colour,
        )
    if canvas.rng.random() < detail * 0.5:  # a smiling sun
        dark = (40, 40, 40)
        canvas.circle((at[0] - radius * 0.35, at[1] - radius * 0.2), radius * 0.08, dark, dark)
        canvas.circle((at[0] + radius * 0.35, at[1] - radius * 0.2), radius * 0.08, dark, dark)


def draw_house(canvas: Canvas, palette: Sequence[Colour], at: Point, detail: float, fill: float):
    half = canvas.rng.uniform(0.08, 0.14)
    left, right = at[0] - half, at[0] + half
    top, bottom = at[1] - half * 0.6, at[1] + half
    wall = _colour(palette, canvas)
    canvas.polygon(
        [(left, top), (right, top), (right, bottom), (left, bottom)],
        wall,
        _fill_colour(palette, canvas, fill),
    )
    peak = top - half * canvas.rng.uniform(0.6, 1.0)
    roof = _colour(palette, canvas)
    canvas.polygon(
        [(left - half * 0.1, top), (at[0], peak), (right + half * 0.1, top)],
        roof,
        _fill_colour(palette, canvas, fill),
    )
    door_w = half * 0.3
    canvas.polygon(
        [
            (at[0] - door_w, bottom),
            (at[0] - door_w, bottom - half * 0.7),
            (at[0] + door_w, bottom - half * 0.7),
            (at[0] + door_w, bottom),
        ],
        _colour(palette, canvas),
        None,
    )
    if canvas.rng.random() < detail:
        for side in (-1, 1):
            cx = at[0] + side * half * 0.55
            cy = top + half * 0.5
            w = half * 0.2
            canvas.polygon(
                [(cx - w, cy - w), (cx + w, cy - w), (cx + w, cy + w), (cx - w, cy + w)],
                _colour(palette, canvas),
                _fill_colour(palette, canvas, fill * 0.5),
            )
            if canvas.rng.random() < detail:
                canvas.line([(cx, cy - w), (cx, cy + w)], wall, 0.6)
                canvas.line([(cx - w, cy), (cx + w, cy)], wall, 0.6)


def draw_person(canvas: Canvas, palette: Sequence[Colour], at: Point, detail: float, fill: float):
    scale = canvas.rng.uniform(0.10, 0.17)
    colour = _colour(palette, canvas)
    head = (at[0], at[1] - scale * 0.75)
    canvas.circle(head, scale * 0.22, colour, None)
    neck = (at[0], at[1] - scale * 0.53)
    hip = (at[0], at[1] + scale * 0.25)
    if canvas.rng.random() < detail:  # a body shape rather than a stick
        body = _colour(palette, canvas)
        canvas.polygon(
            [
                (at[0] - scale * 0.18, neck[1]),
                (at[0] + scale * 0.18, neck[1]),
                (at[0] + scale * 0.28, hip[1]),
                (at[0] - scale * 0.28, hip[1]),
            ],
            body,
            _fill_colour(palette, canvas, fill),
        )
    else:
        canvas.line([neck, hip], colour)
    arm_y = at[1] - scale * 0.3
    lift = canvas.rng.uniform(-0.25, 0.25) * scale
    canvas.line([(at[0] - scale * 0.45, arm_y + lift), (at[0], arm_y)], colour)
    canvas.line([(at[0], arm_y), (at[0] + scale * 0.45, arm_y - lift)], colour)
    canvas.line([hip, (at[0] - scale * 0.25, at[1] + scale * 0.8)], colour)
    canvas.line([hip, (at[0] + scale * 0.25, at[1] + scale * 0.8)], colour)
    if canvas.rng.random() < 0.3 + detail * 0.6:  # a face
        r = scale * 0.22
        dark = (40, 40, 40)
        canvas.circle((head[0] - r * 0.4, head[1] - r * 0.2), r * 0.1, dark, dark)
        canvas.circle((head[0] + r * 0.4, head[1] - r * 0.2), r * 0.1, dark, dark)
        canvas.line(
            [
                (head[0] - r * 0.4, head[1] + r * 0.3),
                (head[0], head[1] + r * 0.5),
                (head[0] + r * 0.4, head[1] + r * 0.3),
            ],
            dark,
            0.5,
        )


def draw_tree(canvas: Canvas, palette: Sequence[Colour], at: Point, detail: float, fill: float):
    height = canvas.rng.uniform(0.15, 0.25)
    trunk = (120, 75, 40) if canvas.rng.random() < detail else _colour(palette, canvas)
    base = (at[0], at[1] + height * 0.5)
    top = (at[0], at[1] - height * 0.1)
    width = height * 0.12
    canvas.polygon(
        [
            (base[0] - width, base[1]),
            (top[0] - width, top[1]),
            (top[0] + width, top[1]),
            (base[0] + width, base[1]),
        ],
        trunk,
        trunk if canvas.rng.random() < fill else None,
    )
    leaves = (50, 160, 60) if canvas.rng.random() < detail else _colour(palette, canvas)
    canvas.circle(
        (at[0], at[1] - height * 0.35), height * 0.35, leaves, _fill_colour([leaves], canvas, fill)
    )
    if canvas.rng.random() < detail * 0.5:  # apples
        for _ in range(int(canvas.rng.integers(2, 6))):
            dx, dy = canvas.rng.uniform(-0.2, 0.2, size=2) * height
            canvas.circle(
                (at[0] + dx, at[1] - height * 0.35 + dy),
                height * 0.04,
                (220, 40, 40),
                (220, 40, 40),
            )


def draw_flower(canvas: Canvas, palette: Sequence[Colour], at: Point, detail: float, fill: float):
    size = canvas.rng.uniform(0.03, 0.05)
    canvas.line([(at[0], at[1]), (at[0], at[1] + size * 4)], (50, 150, 60))
    petals = _colour(palette, canvas)
    count = int(canvas.rng.integers(4, 8))
    for i in range(count):
        angle = 2 * math.pi * i / count
        centre = (at[0] + size * math.cos(angle), at[1] + size * math.sin(angle))
        canvas.circle(centre, size * 0.6, petals, _fill_colour([petals], canvas, fill))
    canvas.circle(at, size * 0.5, (250, 200, 30), (250, 200, 30))


def draw_cloud(canvas: Canvas, palette: Sequence[Colour], at: Point, detail: float, fill: float):
    colour = (90, 200, 230) if canvas.rng.random() < 0.5 else (110, 110, 120)
    size = canvas.rng.uniform(0.03, 0.05)
    y = min(at[1], 0.25)
    for i in range(int(canvas.rng.integers(3, 5))):
        canvas.circle(
            (at[0] + (i - 1.5) * size * 1.2, y + canvas.rng.uniform(-0.3, 0.3) * size),
            size,
            colour,
            None,
        )


def draw_scribble(
    canvas: Canvas,
    palette: Sequence[Colour],
    at: Point,
    detail: float = 0.0,
    fill: float = 0.0,
    loops: int | None = None,
):
    """A free looping scribble around ``at``."""
    colour = _colour(palette, canvas)
    turns = loops if loops is not None else int(canvas.rng.integers(3, 8))
    radius = canvas.rng.uniform(0.05, 0.12)
    points = []
    phase = canvas.rng.uniform(0, 2 * math.pi)
    for i in range(turns * 8):
        angle = phase + i * math.pi / 4 * canvas.rng.uniform(0.7, 1.3)
        r = radius * canvas.rng.uniform(0.4, 1.0)
        points.append((at[0] + r * math.cos(angle) + i * 0.002, at[1] + r * math.sin(angle)))
    canvas.line(points, colour)


def draw_grass(canvas: Canvas, palette: Sequence[Colour], detail: float) -> None:
    """A ground line along the bottom, with blades of grass for the more detailed."""
    green = (50, 160, 60)
    y = canvas.rng.uniform(0.85, 0.92)
    canvas.line([(0.02, y), (0.35, y + 0.01), (0.65, y - 0.01), (0.98, y)], green)
    if canvas.rng.random() < 0.3 + 0.6 * detail:
        # Blades leaning either way or upright, short or long, sparse or dense: often the
        # most strokes on the page, all running one way.
        lean, height = canvas.rng.uniform(-0.025, 0.025), canvas.rng.uniform(0.02, 0.07)
        for x in np.arange(0.04, 0.98, canvas.rng.uniform(0.012, 0.05)):
            canvas.line([(x, y), (x + lean, y - height)], green, 0.6)


def draw_car(canvas: Canvas, palette: Sequence[Colour], at: Point, detail: float, fill: float):
    length = canvas.rng.uniform(0.12, 0.2)
    left, right = at[0] - length / 2, at[0] + length / 2
    body_top, bottom = at[1] - length * 0.15, at[1] + length * 0.15
    body = _colour(palette, canvas)
    canvas.polygon(
        [(left, body_top), (right, body_top), (right, bottom), (left, bottom)],
        body,
        _fill_colour(palette, canvas, fill),
    )
    cabin = [
        (left + length * 0.2, body_top),
        (left + length * 0.3, body_top - length * 0.2),
        (right - length * 0.25, body_top - length * 0.2),
        (right - length * 0.15, body_top),
    ]
    canvas.line(cabin, body)
    wheel = (40, 40, 40)
    for x in (left + length * 0.22, right - length * 0.22):
        canvas.circle(
            (x, bottom), length * 0.09, wheel, wheel if canvas.rng.random() < 0.7 else None
        )


def draw_rainbow(canvas: Canvas, palette: Sequence[Colour], at: Point, detail: float, fill: float):
    radius = canvas.rng.uniform(0.12, 0.25)
    bands = int(canvas.rng.integers(3, 7))
    for band in range(bands):
        r = radius * (1.0 - 0.09 * band)
        colour = CRAYONS[band % len(CRAYONS)] if len(palette) > 1 else palette[0]
        arc = [
            (
                at[0] + r * math.cos(math.pi + math.pi * i / 16),
                at[1] + r * math.sin(math.pi + math.pi * i / 16),
            )
            for i in range(17)
        ]
        canvas.line(arc, colour)
