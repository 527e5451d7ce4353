"""Deterministic synthetic children's drawings, for the packaged model, demos and tests.

Normal drawings vary with age the way children's drawings do: the youngest make few, thick,
wobbly strokes in one or two colours (scribbles, a sun, a stick figure); older children draw
scenes with more elements, finer lines, more colours, filled areas and details (windows,
clouds, grass, faces, cars, rainbows). Around that, everything a parent's upload varies in is
randomised (``app.scoring.synthetic_media``): stroke width, wobble and pressure, the medium
(pencil, felt-tip, crayon, paint: the style families), sparse to busy pages, a drawing
spread over the page or kept to one part of it, outlines and fills, one pen or many colours at
any age, the pure colours of markers, every kind of paper, scans and phone photos, PNG and
JPEG, sizes.
Anomalous drawings are gross departures: a blank page (of any paper, or photographed), strong
noise, a solid colour, a photo-like scene, an over-exposed page, a scribble over the whole
page, an ink-saturated page, a page flooded with one odd colour.

Everything is drawn from the ``numpy.random.Generator`` passed in, so one seed gives the same
images byte for byte.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from app.scoring.model import AGE_GROUPS, MAX_AGE, MIN_AGE
from app.scoring.synthetic_media import (
    MEDIA,
    MEDIUM_FILL,
    MEDIUM_STROKE,
    PAPER_KINDS,
    absorbance,
    capture,
    compose,
    encode,
    make_paper,
)
from app.scoring.synthetic_parts import (
    CRAYONS,
    Canvas,
    draw_car,
    draw_cloud,
    draw_flower,
    draw_grass,
    draw_house,
    draw_person,
    draw_rainbow,
    draw_scribble,
    draw_sun,
    draw_tree,
    pick_colour,
)

ANOMALY_KINDS = (
    "blank",
    "blank_photo",
    "noise",
    "solid_colour",
    "photo_scene",
    "overexposed",
    "scribble",
    "saturated",
    "odd_colour",
)
MANIFEST_NAME = "manifest.csv"

ELEMENTS = {
    "sun": draw_sun,
    "house": draw_house,
    "person": draw_person,
    "tree": draw_tree,
    "flower": draw_flower,
    "cloud": draw_cloud,
    "scribble": draw_scribble,
    "car": draw_car,
    "rainbow": draw_rainbow,
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


@dataclass(frozen=True)
class Look:
    """What a drawing is drawn with and on, and how it was captured."""

    paper: str
    capture: str
    medium: str


def pick_look(
    rng: np.random.Generator,
    paper: str | None = None,
    capture: str | None = None,
    medium: str | None = None,
) -> Look:
    return Look(
        paper=paper or PAPER_KINDS[int(rng.integers(0, len(PAPER_KINDS)))],
        capture=capture or ("photo" if rng.random() < 0.4 else "scan"),
        medium=medium or MEDIA[int(rng.integers(0, len(MEDIA)))],
    )


def _ink_layer(age: int, rng: np.random.Generator, size: int, medium: str) -> Image.Image:
    """The drawing itself, as coloured strokes on white."""
    style = style_for_age(age, rng)
    low, high = MEDIUM_STROKE[medium]
    stroke = style.stroke * rng.uniform(low, high)
    if rng.random() < 0.35:  # a child's own pen, whatever the age: fine liner to marker
        stroke = float(np.exp(rng.uniform(np.log(0.003), np.log(0.03))))
    wobble = style.wobble * rng.uniform(0.05, 1.5)  # from a careful hand to a shaky one
    # Outlines only, some colouring in or everything filled, at every age.
    fill = float(np.clip(style.fill * rng.uniform(0.0, 1.5) + MEDIUM_FILL[medium], 0.0, 1.0))
    pens = rng.random()  # one pen whatever the age (15 %), the age's usual count, or any
    colours = 1 if pens < 0.15 else style.colours if pens < 0.8 else int(rng.integers(1, 9))
    colourful = medium != "pencil" or rng.random() < 0.35
    image = Image.new("RGB", (size, size), (255, 255, 255))
    canvas = Canvas(ImageDraw.Draw(image), size, stroke, wobble, rng)
    palette = [pick_colour(rng, colourful and colours > 1) for _ in range(colours)]
    if rng.random() < 0.3:  # markers: the pure colours of felt-tips and ballpoints
        palette = [_vivid(colour, rng.uniform(1.2, 2.5)) for colour in palette]
    if rng.random() < 0.35 + 0.5 * style.detail:  # a ground line, grass for the older
        draw_grass(canvas, palette, style.detail)
    if rng.random() < style.scribble:
        draw_scribble(canvas, palette, (0.2 + 0.6 * rng.random(), 0.2 + 0.6 * rng.random()))
    choices = list(ELEMENTS)
    weights = np.array(
        [
            *(3.0, 3.0, 4.0, 2.0, 1.5, 1.0 + 2.0 * style.detail, 2.0 * style.scribble),
            *(0.5 + 1.5 * style.detail, 0.5 + style.detail),
        ]
    )
    weights /= weights.sum()
    busy = rng.uniform(0.25, 2.0)  # sparse to busy pages at every age
    slots = _slots(max(1, round(style.elements * busy)), rng)
    for slot in slots:
        name = choices[int(rng.choice(len(choices), p=weights))]
        if name == "sun":
            slot = (slot[0], min(slot[1], 0.3))
            if rng.random() < 0.5:  # the sun in a top corner
                slot = (float(rng.choice([rng.uniform(0.05, 0.2), rng.uniform(0.8, 0.95)])),
                        float(rng.uniform(0.05, 0.2)))  # fmt: skip
        ELEMENTS[name](canvas, palette, slot, style.detail, fill)
    return image


def _on_paper(layer: Image.Image, look: Look, rng: np.random.Generator) -> Image.Image:
    paper = make_paper(look.paper, layer.width, layer.height, rng)
    page = compose(paper, absorbance(layer, look.medium, rng))
    return capture(page, look.capture, rng)


def _blank_layer(size: int) -> Image.Image:
    return Image.new("RGB", (size, size), (255, 255, 255))


def _normal(age: int, rng: np.random.Generator, size: int, look: Look) -> Image.Image:
    return _on_paper(_ink_layer(age, rng, size, look.medium), look, rng)


def _slots(count: int, rng: np.random.Generator) -> list[tuple[float, float]]:
    """Centres for ``count`` elements spread across the page (as fractions of the size)."""
    columns = max(1, math.ceil(math.sqrt(count * 1.5)))
    cells = rng.permutation(columns * columns)[:count]
    slots = []
    for cell in cells:
        row, col = divmod(int(cell), columns)
        x = (col + 0.5 + rng.uniform(-0.25, 0.25)) / columns
        y = (row + 0.5 + rng.uniform(-0.25, 0.25)) / columns
        slots.append((x, y))
    left, top, width, height = 0.08, 0.08, 0.84, 0.84
    if rng.random() < 0.25:  # the drawing kept to one part of the page
        width, height = rng.uniform(0.45, 0.8), rng.uniform(0.45, 0.8)
        left, top = rng.uniform(0.05, 0.95 - width), rng.uniform(0.05, 0.95 - height)
    return [(left + width * x, top + height * y) for x, y in slots]


def _vivid(colour: tuple[int, int, int], gain: float) -> tuple[int, int, int]:
    """``colour`` with its saturation raised by ``gain`` (away from its own grey)."""
    grey = sum(colour) / 3.0
    red, green, blue = (int(np.clip(grey + (c - grey) * gain, 0, 255)) for c in colour)
    return red, green, blue


def _photo_scene(size: int, rng: np.random.Generator) -> Image.Image:
    """A photo-like scene: sky and ground gradients, blurred shapes, texture, no paper."""
    y = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    sky = _rgb(rng, 120, 220)
    ground = _rgb(rng, 30, 140)
    horizon = rng.uniform(0.35, 0.65)
    top = sky * (1.0 - 0.4 * y)
    bottom = ground * (0.7 + 0.3 * y)
    array = np.where(y < horizon, top, bottom) * np.ones((1, size, 1), dtype=np.float32)
    image = Image.fromarray((np.clip(array, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(8, 20))):
        x0, y0 = rng.uniform(-0.1, 1.0, size=2) * size
        w, h = rng.uniform(0.05, 0.4, size=2) * size
        colour = tuple(int(v * 255) for v in _rgb(rng, 20, 240))
        draw.ellipse((x0, y0, x0 + w, y0 + h), fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(size * rng.uniform(0.005, 0.02)))
    array = np.asarray(image, dtype=np.float32) / 255.0
    texture = rng.normal(0.0, rng.uniform(0.03, 0.08), size=array.shape).astype(np.float32)
    return Image.fromarray((np.clip(array + texture, 0, 1) * 255).astype(np.uint8))


def _rgb(rng: np.random.Generator, low: int, high: int) -> np.ndarray:
    return rng.uniform(low, high, size=3).astype(np.float32) / 255.0


def _anomalous(kind: str, age: int, rng: np.random.Generator, size: int, look: Look) -> Image.Image:
    if kind == "blank":
        layer = _blank_layer(size)
        if rng.random() < 0.5:  # a stray dot or two does not make it a drawing
            draw = ImageDraw.Draw(layer)
            for _ in range(int(rng.integers(1, 3))):
                x, y = rng.uniform(0.1, 0.9, size=2) * size
                draw.ellipse((x, y, x + size * 0.004, y + size * 0.004), fill=(90, 90, 90))
        return _on_paper(layer, look, rng)
    if kind == "blank_photo":
        return _on_paper(_blank_layer(size), replace(look, capture="photo"), rng)
    if kind == "saturated":
        shade = int(rng.integers(0, 40))
        image = Image.new("RGB", (size, size), (shade, shade, shade + int(rng.integers(0, 15))))
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(0, 4))):
            x, y = rng.uniform(0, 1, size=2) * size
            draw.line((x, y, x + size * 0.1, y), fill=(80, 80, 80), width=max(1, size // 100))
        return image
    if kind == "solid_colour":
        colour = np.array(CRAYONS[int(rng.integers(0, len(CRAYONS)))], dtype=np.float32) / 255.0
        page = np.ones((size, size, 3), dtype=np.float32) * colour * rng.uniform(0.6, 1.0)
        return capture(page, look.capture, rng)
    if kind == "scribble":
        layer = _blank_layer(size)
        canvas = Canvas(ImageDraw.Draw(layer), size, rng.uniform(0.012, 0.025), 0.004, rng)
        ink = [pick_colour(rng, rng.random() < 0.3)]
        for _ in range(int(rng.integers(45, 70))):
            draw_scribble(canvas, ink, tuple(rng.uniform(0.05, 0.95, size=2)), loops=12)
        return _on_paper(layer, replace(look, medium="felt_tip"), rng)
    if kind == "noise":
        base = (
            _normal(age, rng, size, look)
            if rng.random() < 0.5
            else _on_paper(_blank_layer(size), look, rng)
        )
        array = np.asarray(base, dtype=np.int16)
        noise = rng.normal(0.0, rng.uniform(60, 110), size=array.shape).astype(np.int16)
        return Image.fromarray(np.clip(array + noise, 0, 255).astype(np.uint8))
    if kind == "photo_scene":
        return _photo_scene(size, rng)
    if kind == "overexposed":
        base = np.asarray(_normal(age, rng, size, look), dtype=np.float32) / 255.0
        washed = 1.0 - (1.0 - base / max(float(np.percentile(base, 90)), 0.05)) * rng.uniform(
            0.02, 0.06
        )
        return Image.fromarray((np.clip(washed, 0, 1) * 255).astype(np.uint8))
    if kind == "odd_colour":
        base = _normal(age, rng, size, replace(look, paper="white", capture="scan"))
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
    look: Look | None = None,
) -> Image.Image:
    """One synthetic drawing by a child of ``age``; ``anomalous`` picks a gross anomaly
    (``kind`` chooses which, otherwise one of ``ANOMALY_KINDS`` at random). ``look`` fixes
    the paper, capture and medium; otherwise they are drawn at random."""
    if not MIN_AGE <= age <= MAX_AGE:
        raise ValueError(f"age {age} is outside {MIN_AGE}..{MAX_AGE}")
    if size < 64:
        raise ValueError(f"size {size} is too small; use at least 64 pixels")
    if kind is not None:
        anomalous = True
    chosen_look = look or pick_look(rng)
    if not anomalous:
        return _normal(age, rng, size, chosen_look)
    chosen = kind or ANOMALY_KINDS[int(rng.integers(0, len(ANOMALY_KINDS)))]
    return _anomalous(chosen, age, rng, size, chosen_look)


def varied_shape(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The same page at another resolution (0.75..1.5x) and, half the time, the aspect ratio
    of a sheet of paper (portrait or landscape)."""
    side = image.width * rng.uniform(0.75, 1.5)
    width = height = side
    if rng.random() < 0.5:
        long_side = side * rng.uniform(1.25, 1.45)
        width, height = (side, long_side) if rng.random() < 0.6 else (long_side, side)
    return image.resize((max(64, round(width)), max(64, round(height))), Image.Resampling.BILINEAR)


def generate_reference_set(
    folder: Path,
    count_per_age: int,
    seed: int,
    size: int = 512,
    ages: range = range(MIN_AGE, MAX_AGE + 1),
) -> Path:
    """Write ``count_per_age`` normal drawings for every age into ``folder`` (every paper,
    scans and photos, every medium, PNG and JPEG, sizes around ``size``), plus a
    ``manifest.csv`` (``file,age,subject,paper,capture,style``, the style being the medium);
    returns its path."""
    if count_per_age < 1:
        raise ValueError(f"count per age must be at least 1, not {count_per_age}")
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for age in ages:
        for index in range(count_per_age):
            look = pick_look(rng)
            image = varied_shape(generate_drawing(age, rng, size=size, look=look), rng)
            data, extension = encode(image, rng)
            name = f"drawing-age{age:02d}-{index:04d}.{extension}"
            (folder / name).write_bytes(data)
            subject = SUBJECTS[int(rng.integers(0, len(SUBJECTS)))]
            rows.append((name, age, subject, look.paper, look.capture, look.medium))
    manifest = folder / MANIFEST_NAME
    with manifest.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("file", "age", "subject", "paper", "capture", "style"))
        writer.writerows(rows)
    return manifest


def generate_even_reference_set(folder: Path, per_group: int, seed: int, size: int = 512) -> Path:
    """A reference set in which every age group has ``per_group`` drawings, spread evenly
    over its ages (the first of each age ``generate_reference_set`` draws; the others are
    removed). A group's threshold depends on how many reference drawings it has: with 40
    per age, ages 14-18 had 200 against 120 and the lowest thresholds (benchmarks/RESULTS.md,
    issue 13, 2026-12-04). Returns the manifest's path."""
    per_age = {
        age: per_group // (group.last_age - group.first_age + 1)
        for group in AGE_GROUPS
        for age in range(group.first_age, group.last_age + 1)
    }
    if min(per_age.values()) < 1:
        raise ValueError(f"{per_group} drawings per age group leave an age with none")
    manifest = generate_reference_set(folder, max(per_age.values()), seed, size=size)
    with manifest.open(newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    kept, drawn = [], dict.fromkeys(per_age, 0)
    for row in rows:
        age = int(row[1])
        drawn[age] += 1
        if drawn[age] <= per_age[age]:
            kept.append(row)
        else:
            (folder / row[0]).unlink()
    with manifest.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *kept])
    return manifest
