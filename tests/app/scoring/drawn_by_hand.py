"""Simple drawings made independently of the generator: plain Pillow ImageDraw shapes with
fixed coordinates (a stick figure, a house, a sun, a tree, grass), thin and thick lines, on
several papers and as a simulated phone photo. Nothing here comes from app.scoring."""

from __future__ import annotations

import io
import itertools

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

BLACK = (20, 20, 20)
PAPERS = {
    "white": (255, 255, 255),
    "off_white": (249, 244, 244),
    "grey": (252, 252, 252),
    "cream": (250, 242, 220),
}


def _stick_figure(draw: ImageDraw.ImageDraw, s: float, x: float, y: float, width: int) -> None:
    draw.ellipse((x - 0.05 * s, y - 0.2 * s, x + 0.05 * s, y - 0.1 * s), outline=BLACK, width=width)
    draw.line((x, y - 0.1 * s, x, y + 0.08 * s), fill=BLACK, width=width)
    draw.line((x - 0.08 * s, y - 0.04 * s, x + 0.08 * s, y - 0.05 * s), fill=BLACK, width=width)
    draw.line((x, y + 0.08 * s, x - 0.06 * s, y + 0.2 * s), fill=BLACK, width=width)
    draw.line((x, y + 0.08 * s, x + 0.06 * s, y + 0.2 * s), fill=BLACK, width=width)


def _sun(draw: ImageDraw.ImageDraw, s: float, colour: tuple[int, int, int], width: int) -> None:
    cx, cy, r = 0.8 * s, 0.18 * s, 0.07 * s
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=colour, width=width)
    for k in range(8):
        angle = k * np.pi / 4
        draw.line(
            (
                cx + 1.3 * r * np.cos(angle),
                cy + 1.3 * r * np.sin(angle),
                cx + 1.9 * r * np.cos(angle),
                cy + 1.9 * r * np.sin(angle),
            ),
            fill=colour,
            width=width,
        )


def _house(draw: ImageDraw.ImageDraw, s: float, width: int, colour: bool) -> None:
    wall = (200, 60, 50) if colour else BLACK
    draw.rectangle((0.45 * s, 0.5 * s, 0.7 * s, 0.75 * s), outline=wall, width=width)
    draw.line((0.43 * s, 0.5 * s, 0.575 * s, 0.36 * s, 0.72 * s, 0.5 * s), fill=wall, width=width)
    draw.rectangle((0.55 * s, 0.62 * s, 0.6 * s, 0.75 * s), outline=wall, width=width)


def _tree(draw: ImageDraw.ImageDraw, s: float, width: int) -> None:
    draw.line((0.85 * s, 0.78 * s, 0.85 * s, 0.6 * s), fill=(110, 70, 40), width=width * 2)
    draw.ellipse((0.78 * s, 0.42 * s, 0.92 * s, 0.6 * s), outline=(40, 140, 50), width=width)


def _hand_line(
    draw: ImageDraw.ImageDraw,
    points: list[tuple[float, float]],
    rng: np.random.Generator,
    width: int,
    colour: tuple[int, int, int] = BLACK,
) -> None:
    """A line through ``points`` with a hand's small wobble (about 1.5 px every 8 px)."""
    path = []
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        steps = max(2, int(np.hypot(x1 - x0, y1 - y0) / 8))
        for t in np.linspace(0.0, 1.0, steps):
            jitter = rng.normal(0.0, 1.5, size=2)
            path.append((x0 + (x1 - x0) * t + jitter[0], y0 + (y1 - y0) * t + jitter[1]))
    draw.line(path, fill=colour, width=width, joint="curve")


def _ring(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    return [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 30)]


def stick_figure_with_grass(side: int = 800, width: int = 3, seed: int = 1) -> Image.Image:
    """A hand-drawn-looking stick figure on pure-white paper: thin black wobbly lines, a sun
    with rays, and a row of short diagonal grass strokes along the bottom (issue 13: it was
    flagged at ages 10 and 15 because "the strokes run in unusual directions")."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (side, side), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    s = float(side)
    _hand_line(draw, _ring(0.45 * s, 0.35 * s, 0.06 * s), rng, width)
    _hand_line(draw, [(0.45 * s, 0.41 * s), (0.45 * s, 0.62 * s)], rng, width)
    _hand_line(draw, [(0.35 * s, 0.47 * s), (0.55 * s, 0.47 * s)], rng, width)
    _hand_line(draw, [(0.45 * s, 0.62 * s), (0.38 * s, 0.78 * s)], rng, width)
    _hand_line(draw, [(0.45 * s, 0.62 * s), (0.52 * s, 0.78 * s)], rng, width)
    cx, cy, r = 0.82 * s, 0.15 * s, 0.06 * s
    _hand_line(draw, _ring(cx, cy, r), rng, width)
    for a in np.linspace(0, 2 * np.pi, 9)[:-1]:
        ray = [(cx + k * r * np.cos(a), cy + k * r * np.sin(a)) for k in (1.3, 1.9)]
        _hand_line(draw, ray, rng, width)
    for x in np.arange(0.05 * s, 0.95 * s, 0.025 * s):
        _hand_line(draw, [(x, 0.88 * s), (x + 0.015 * s, 0.83 * s)], rng, width)
    return image


def drawing(kind: str, side: int = 600, paper: str = "white", thick: bool = False) -> Image.Image:
    """One of ``KINDS`` on ``paper`` (``PAPERS`` or "lined")."""
    tone = PAPERS.get(paper, (255, 255, 255))
    image = Image.new("RGB", (side, side), tone)
    draw = ImageDraw.Draw(image)
    if paper == "lined":
        for y in range(int(0.08 * side), side, int(0.04 * side)):
            draw.line((0, y, side, y), fill=(170, 200, 235), width=max(1, side // 400))
        draw.line(
            (0.1 * side, 0, 0.1 * side, side), fill=(235, 150, 150), width=max(1, side // 400)
        )
    width = max(2, side // (60 if thick else 200))
    s = float(side)
    grass = (40, 150, 50)
    if kind == "stick_figure":
        _stick_figure(draw, s, 0.4 * s, 0.55 * s, width)
        _sun(draw, s, (230, 180, 20), width)
        draw.line((0.05 * s, 0.85 * s, 0.95 * s, 0.86 * s), fill=grass, width=width)
    elif kind == "house":
        _house(draw, s, width, colour=True)
        _sun(draw, s, (230, 180, 20), width)
        draw.line((0.05 * s, 0.76 * s, 0.95 * s, 0.76 * s), fill=grass, width=width)
    elif kind == "family":
        for x in (0.25, 0.4, 0.55):
            _stick_figure(draw, s, x * s, 0.6 * s, width)
        _tree(draw, s, width)
        _sun(draw, s, (230, 180, 20), width)
    elif kind == "pencil_sun":
        _sun(draw, s, (90, 90, 90), width)
        _stick_figure(draw, s, 0.3 * s, 0.6 * s, width)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return image


KINDS = ("stick_figure", "house", "family", "pencil_sun")


def phone_photo(image: Image.Image, seed: int = 0) -> Image.Image:
    """The sheet photographed: warm cast, a darker corner, vignetting, noise, a slight tilt,
    soft focus, JPEG at quality 80."""
    rng = np.random.default_rng(seed)
    tilted = image.rotate(2.0, resample=Image.Resampling.BICUBIC, fillcolor=image.getpixel((5, 5)))
    array = np.asarray(tilted, dtype=np.float32) / 255.0
    h, w = array.shape[:2]
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = x / w - 0.5, y / h - 0.5
    light = 0.85 * (1.0 - 0.5 * (x * x + y * y)) * (1.0 + 0.15 * x - 0.1 * y)
    array = array * light[..., None] * np.array([1.0, 0.95, 0.86], dtype=np.float32)
    array = array + rng.normal(0.0, 0.015, size=array.shape).astype(np.float32)
    photo = Image.fromarray((np.clip(array, 0, 1) * 255).astype(np.uint8))
    photo = photo.filter(ImageFilter.GaussianBlur(0.8))
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=80)
    return Image.open(io.BytesIO(buffer.getvalue()))


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()
