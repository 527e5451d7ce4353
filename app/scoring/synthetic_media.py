"""Paper, drawing media and capture for synthetic drawings (domain randomisation).

A drawing is drawn as an ink layer on white; a medium (pencil, felt-tip, crayon, paint) turns
it into how much light each pixel's ink absorbs; the page is a kind of paper (white,
off-white, cream, grey, lined, squared) multiplied by that; a capture (a flatbed scan or a
phone photo: uneven light, colour cast, a slight perspective, the table around the sheet,
sensor noise) and an encoding (PNG, or JPEG of quality 60..95) finish it.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

PAPER_KINDS = ("white", "off_white", "cream", "grey", "lined", "squared")
CAPTURES = ("scan", "photo")
MEDIA = ("pencil", "felt_tip", "crayon", "paint")  # the style families

# Stroke-width factor and extra probability of colouring shapes in, per medium.
MEDIUM_STROKE = {"pencil": (0.3, 0.9), "felt_tip": (0.4, 1.3), "crayon": (0.9, 1.6),
                 "paint": (1.5, 2.6)}  # fmt: skip
MEDIUM_FILL = {"pencil": -0.1, "felt_tip": 0.0, "crayon": 0.1, "paint": 0.3}


def _jitter(rng: np.random.Generator, base: tuple[int, int, int], spread: int) -> np.ndarray:
    shift = rng.integers(-spread, spread + 1, size=3)
    return np.clip(np.array(base) + shift, 0, 255).astype(np.float32) / 255.0


def paper_tone(kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind in ("white", "lined", "squared"):
        level = rng.integers(250, 256)
        return _jitter(rng, (int(level),) * 3, 1)
    if kind == "off_white":
        return _jitter(rng, (249, 244, 242), 4)
    if kind == "cream":
        return _jitter(rng, (248, 238, 212), 6)
    if kind == "grey":
        level = int(rng.integers(228, 250))
        return _jitter(rng, (level, level, level + 2), 2)
    raise ValueError(f"unknown paper kind {kind!r}; expected one of {', '.join(PAPER_KINDS)}")


def make_paper(kind: str, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A (height, width, 3) float32 reflectance of an empty sheet of ``kind``."""
    tone = paper_tone(kind, rng)
    image = Image.new("RGB", (width, height), tuple(int(v * 255) for v in tone))
    draw = ImageDraw.Draw(image)
    side = min(width, height)
    line_width = max(1, round(side * rng.uniform(0.0012, 0.0025)))
    if kind == "lined":
        colour = tuple(int(v) for v in _jitter(rng, (165, 195, 230), 15) * 255)
        spacing = side * rng.uniform(0.03, 0.05)
        y = height * rng.uniform(0.06, 0.12)
        while y < height:
            draw.line((0, y, width, y), fill=colour, width=line_width)
            y += spacing
        if rng.random() < 0.6:
            x = width * rng.uniform(0.08, 0.14)
            draw.line((x, 0, x, height), fill=(232, 140, 145), width=line_width)
    elif kind == "squared":
        colour = tuple(int(v) for v in _jitter(rng, (175, 195, 220), 15) * 255)
        spacing = side * rng.uniform(0.02, 0.035)
        for x in np.arange(rng.uniform(0, spacing), width, spacing):
            draw.line((x, 0, x, height), fill=colour, width=line_width)
        for y in np.arange(rng.uniform(0, spacing), height, spacing):
            draw.line((0, y, width, y), fill=colour, width=line_width)
    paper = np.asarray(image, dtype=np.float32) / 255.0
    grain = rng.normal(0.0, 0.004, size=(height, width, 1)).astype(np.float32)
    return np.clip(paper + grain, 0.0, 1.0)


def absorbance(layer: Image.Image, medium: str, rng: np.random.Generator) -> np.ndarray:
    """How much of the light each pixel's ink absorbs, per channel (0 = none)."""
    if medium not in MEDIA:
        raise ValueError(f"unknown medium {medium!r}; expected one of {', '.join(MEDIA)}")
    if medium == "paint":
        layer = layer.filter(ImageFilter.GaussianBlur(max(0.5, layer.width * 0.0015)))
    absorbed = 1.0 - np.asarray(layer, dtype=np.float32) / 255.0
    height, width = absorbed.shape[:2]
    if medium == "pencil":
        grain = rng.uniform(0.65, 1.0, size=(height, width, 1)).astype(np.float32)
        return absorbed * grain * rng.uniform(0.6, 0.9)
    if medium == "crayon":
        keep = rng.random((height, width, 1)) < rng.uniform(0.55, 0.85)
        return absorbed * keep.astype(np.float32) * rng.uniform(0.7, 0.95)
    return absorbed * rng.uniform(0.82, 1.0)


def compose(paper: np.ndarray, absorbed: np.ndarray) -> np.ndarray:
    return paper * (1.0 - absorbed)


def scan(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A flatbed scan: near-even light, a little noise, sometimes a dark edge of the lid."""
    out = page * rng.uniform(0.96, 1.0)
    out = out + rng.normal(0.0, rng.uniform(0.0, 0.012), size=out.shape).astype(np.float32)
    if rng.random() < 0.2:
        height, width = out.shape[:2]
        strip = max(1, int(min(height, width) * rng.uniform(0.005, 0.03)))
        edge = int(rng.integers(0, 4))
        shade = rng.uniform(0.05, 0.3)
        if edge == 0:
            out[:strip] = shade
        elif edge == 1:
            out[-strip:] = shade
        elif edge == 2:
            out[:, :strip] = shade
        else:
            out[:, -strip:] = shade
    return np.clip(out, 0.0, 1.0)


def photograph(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A phone photo of the sheet: uneven light, vignetting, a colour cast, a slight
    perspective, sometimes the table around it, noise and softness."""
    height, width = page.shape[:2]
    image = Image.fromarray((np.clip(page, 0, 1) * 255).astype(np.uint8))
    margin = rng.uniform(0.0, 0.06) if rng.random() < 0.5 else 0.0
    table = tuple(int(v) for v in _jitter(rng, (90, 70, 55), 40) * 255)
    corners = np.array([[0, 0], [0, height], [width, height], [width, 0]], dtype=np.float64)
    tilt = rng.uniform(-0.015, 0.015, size=(4, 2)) * np.array([width, height])
    inset = np.array([[-1, -1], [-1, 1], [1, 1], [1, -1]]) * margin * np.array([width, height])
    quad = (corners + tilt + inset).ravel().tolist()
    image = image.transform(
        (width, height),
        Image.Transform.QUAD,
        quad,
        resample=Image.Resampling.BILINEAR,
        fillcolor=table,
    )
    out = np.asarray(image, dtype=np.float32) / 255.0
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    x, y = x / width - 0.5, y / height - 0.5
    gradient = 1.0 + rng.uniform(-0.25, 0.25) * x + rng.uniform(-0.25, 0.25) * y
    vignette = 1.0 - rng.uniform(0.1, 0.4) * (x * x + y * y) * 2.0
    light = rng.uniform(0.6, 0.95) * gradient * vignette
    cast = rng.uniform(0.9, 1.0, size=3).astype(np.float32)
    out = out * light[..., None] * (cast / cast.max())
    # Sensor noise after the phone's own denoising: a few levels of 255.
    out = out + rng.normal(0.0, rng.uniform(0.004, 0.016), size=out.shape).astype(np.float32)
    out = np.clip(out, 0.0, 1.0)
    softness = rng.uniform(0.0, 1.0)
    result = Image.fromarray((out * 255).astype(np.uint8))
    if softness > 0.3:
        result = result.filter(ImageFilter.GaussianBlur(softness))
    return np.asarray(result, dtype=np.float32) / 255.0


def capture(page: np.ndarray, kind: str, rng: np.random.Generator) -> Image.Image:
    if kind not in CAPTURES:
        raise ValueError(f"unknown capture {kind!r}; expected one of {', '.join(CAPTURES)}")
    out = scan(page, rng) if kind == "scan" else photograph(page, rng)
    return Image.fromarray((np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8))


def encode(image: Image.Image, rng: np.random.Generator) -> tuple[bytes, str]:
    """PNG or JPEG (quality 60..95), half and half: the bytes and the file extension."""
    buffer = io.BytesIO()
    if rng.random() < 0.5:
        image.save(buffer, "JPEG", quality=int(rng.integers(60, 96)))
        return buffer.getvalue(), "jpg"
    image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue(), "png"
