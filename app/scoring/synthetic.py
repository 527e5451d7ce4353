"""Deterministic synthetic children's drawings, for the packaged model, demos and tests.

Normal drawings vary with age the way children's drawings do: the youngest make few, thick,
wobbly strokes in one or two colours (scribbles, a sun, a stick figure); older children draw
scenes with more elements, finer lines, more colours, filled areas and details (windows,
clouds, grass, faces). Anomalous drawings are gross departures: a blank page, an
ink-saturated page, heavy repeated scribbling, strong noise, a page flooded with one odd
colour.

Everything is drawn from the ``numpy.random.Generator`` passed in, so one seed gives the same
images byte for byte.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from app.scoring.model import MAX_AGE, MIN_AGE
from app.scoring.synthetic_parts import (
    Canvas,
    draw_cloud,
    draw_flower,
    draw_grass,
    draw_house,
    draw_person,
    draw_scribble,
    draw_sun,
    draw_tree,
    pick_colour,
)

ANOMALY_KINDS = ("blank", "saturated", "scribble", "noise", "odd_colour")
MANIFEST_NAME = "manifest.csv"

ELEMENTS = {
    "sun": draw_sun,
    "house": draw_house,
    "person": draw_person,
    "tree": draw_tree,
    "flower": draw_flower,
    "cloud": draw_cloud,
    "scribble": draw_scribble,
}
SUBJECTS = ("family", "house", "garden", "free")


@dataclass(frozen=True)
class Style:
    """How a child of a given age draws."""

    stroke: float  # stroke width as a fraction of the page size
    wobble: float  # hand jitter as a fraction of the page size
    elements: int  # how many things on the page
    colours: int  # how many crayons used
    detail: float  # 0..1 probability of adding details
    fill: float  # 0..1 probability of colouring shapes in
    scribble: float  # 0..1 probability of a free scribble


def style_for_age(age: int, rng: np.random.Generator) -> Style:
    """The drawing style of a child of ``age`` (2..18), with individual variation."""
    maturity = (min(max(age, MIN_AGE), MAX_AGE) - MIN_AGE) / (MAX_AGE - MIN_AGE)  # 0..1
    jitter = rng.uniform(0.85, 1.15)
    return Style(
        stroke=(0.022 - 0.016 * maturity) * jitter,
        wobble=(0.012 - 0.009 * maturity) * jitter,
        elements=round(1 + 5 * maturity + int(rng.integers(0, 2))),
        colours=int(min(8, 1 + round(6 * maturity) + rng.integers(0, 2))),
        detail=0.1 + 0.8 * maturity,
        fill=0.05 + 0.6 * maturity,
        scribble=max(0.0, 0.7 - 1.2 * maturity),
    )


def _paper(size: int, rng: np.random.Generator) -> Image.Image:
    tone = int(rng.integers(238, 256))
    tint = rng.integers(-6, 1, size=3)
    colour = tuple(int(np.clip(tone + t, 0, 255)) for t in tint)
    return Image.new("RGB", (size, size), colour)


def _normal(age: int, rng: np.random.Generator, size: int) -> Image.Image:
    style = style_for_age(age, rng)
    image = _paper(size, rng)
    canvas = Canvas(ImageDraw.Draw(image), size, style.stroke, style.wobble, rng)
    palette = [pick_colour(rng, style.colours > 1) for _ in range(style.colours)]
    if style.detail > 0.5 and rng.random() < style.detail:
        draw_grass(canvas, palette, style.detail)
    if rng.random() < style.scribble:
        draw_scribble(canvas, palette, (0.2 + 0.6 * rng.random(), 0.2 + 0.6 * rng.random()))
    choices = list(ELEMENTS)
    weights = np.array([3.0, 3.0, 4.0, 2.0, 1.5, 1.0 + 2.0 * style.detail, 2.0 * style.scribble])
    weights /= weights.sum()
    slots = _slots(style.elements, rng)
    for slot in slots:
        name = choices[int(rng.choice(len(choices), p=weights))]
        if name == "sun":
            slot = (slot[0], min(slot[1], 0.3))
        ELEMENTS[name](canvas, palette, slot, style.detail, style.fill)
    return image


def _slots(count: int, rng: np.random.Generator) -> list[tuple[float, float]]:
    """Centres for ``count`` elements spread across the page (as fractions of the size)."""
    columns = max(1, math.ceil(math.sqrt(count * 1.5)))
    cells = rng.permutation(columns * columns)[:count]
    slots = []
    for cell in cells:
        row, col = divmod(int(cell), columns)
        x = (col + 0.5 + rng.uniform(-0.25, 0.25)) / columns
        y = (row + 0.5 + rng.uniform(-0.25, 0.25)) / columns
        slots.append((0.15 + 0.7 * x, 0.15 + 0.7 * y))
    return slots


def _anomalous(kind: str, age: int, rng: np.random.Generator, size: int) -> Image.Image:
    if kind == "blank":
        image = _paper(size, rng)
        if rng.random() < 0.5:  # a stray dot or two does not make it a drawing
            draw = ImageDraw.Draw(image)
            for _ in range(int(rng.integers(1, 3))):
                x, y = rng.uniform(0.1, 0.9, size=2) * size
                draw.ellipse((x, y, x + size * 0.004, y + size * 0.004), fill=(90, 90, 90))
        return image
    if kind == "saturated":
        shade = int(rng.integers(0, 40))
        image = Image.new("RGB", (size, size), (shade, shade, shade + int(rng.integers(0, 15))))
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(0, 4))):
            x, y = rng.uniform(0, 1, size=2) * size
            draw.line((x, y, x + size * 0.1, y), fill=(80, 80, 80), width=max(1, size // 100))
        return image
    if kind == "scribble":
        image = _paper(size, rng)
        canvas = Canvas(ImageDraw.Draw(image), size, 0.012, 0.004, rng)
        ink = [pick_colour(rng, rng.random() < 0.3)]
        for _ in range(int(rng.integers(25, 45))):
            draw_scribble(canvas, ink, tuple(rng.uniform(0.1, 0.9, size=2)), loops=12)
        return image
    if kind == "noise":
        base = _normal(age, rng, size) if rng.random() < 0.5 else _paper(size, rng)
        array = np.asarray(base, dtype=np.int16)
        noise = rng.normal(0.0, rng.uniform(60, 110), size=array.shape).astype(np.int16)
        return Image.fromarray(np.clip(array + noise, 0, 255).astype(np.uint8))
    if kind == "odd_colour":
        base = _normal(age, rng, size)
        flood = np.array(
            [(255, 0, 255), (0, 255, 0), (255, 0, 0), (0, 0, 255), (0, 255, 255)][
                int(rng.integers(0, 5))
            ],
            dtype=np.float32,
        )
        array = np.asarray(base, dtype=np.float32)
        paper = array.mean(axis=2, keepdims=True) > 200
        mixed = np.where(paper, flood * rng.uniform(0.75, 1.0), array)
        return Image.fromarray(mixed.astype(np.uint8))
    raise ValueError(f"unknown anomaly kind {kind!r}; expected one of {', '.join(ANOMALY_KINDS)}")


def generate_drawing(
    age: int,
    rng: np.random.Generator,
    size: int = 512,
    anomalous: bool = False,
    kind: str | None = None,
) -> Image.Image:
    """One synthetic drawing by a child of ``age``; ``anomalous`` picks a gross anomaly
    (``kind`` chooses which, otherwise one of ``ANOMALY_KINDS`` at random)."""
    if not MIN_AGE <= age <= MAX_AGE:
        raise ValueError(f"age {age} is outside {MIN_AGE}..{MAX_AGE}")
    if size < 64:
        raise ValueError(f"size {size} is too small; use at least 64 pixels")
    if kind is not None:
        anomalous = True
    if not anomalous:
        return _normal(age, rng, size)
    chosen = kind or ANOMALY_KINDS[int(rng.integers(0, len(ANOMALY_KINDS)))]
    return _anomalous(chosen, age, rng, size)


def generate_reference_set(
    folder: Path,
    count_per_age: int,
    seed: int,
    size: int = 512,
    ages: range = range(MIN_AGE, MAX_AGE + 1),
) -> Path:
    """Write ``count_per_age`` normal drawings for every age as PNGs into ``folder``, plus a
    ``manifest.csv`` (``file,age,subject``); returns the manifest's path."""
    if count_per_age < 1:
        raise ValueError(f"count per age must be at least 1, not {count_per_age}")
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for age in ages:
        for index in range(count_per_age):
            name = f"drawing-age{age:02d}-{index:04d}.png"
            generate_drawing(age, rng, size=size).save(folder / name, optimize=False)
            rows.append((name, age, SUBJECTS[int(rng.integers(0, len(SUBJECTS)))]))
    manifest = folder / MANIFEST_NAME
    with manifest.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("file", "age", "subject"))
        writer.writerows(rows)
    return manifest
