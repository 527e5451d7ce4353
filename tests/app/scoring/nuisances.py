"""Nuisance transforms: what a parent's upload changes about a drawing without changing the
drawing. Each takes an RGB image on white paper and returns the same drawing otherwise."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

Transform = Callable[[Image.Image], Image.Image]


def paper_tone(image: Image.Image, tone: tuple[int, int, int] = (246, 236, 214)) -> Image.Image:
    """Cream paper: the ink multiplies the paper's colour."""
    array = np.asarray(image, dtype=np.float32) * (np.array(tone, dtype=np.float32) / 255.0)
    return Image.fromarray(array.astype(np.uint8))


def lined_paper(image: Image.Image) -> Image.Image:
    paper = Image.new("RGB", image.size, (255, 255, 255))
    draw = ImageDraw.Draw(paper)
    step = max(8, image.height // 24)
    for y in range(step, image.height, step):
        draw.line((0, y, image.width, y), fill=(172, 198, 232), width=max(1, image.height // 400))
    array = np.asarray(image, dtype=np.float32) * np.asarray(paper, dtype=np.float32) / 255.0
    return Image.fromarray(array.astype(np.uint8))


def photo_lighting(image: Image.Image) -> Image.Image:
    """Dimmer light from one side, vignetting and a warm colour cast."""
    array = np.asarray(image, dtype=np.float32)
    h, w = array.shape[:2]
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = x / w - 0.5, y / h - 0.5
    light = 0.8 * (1.0 + 0.2 * x) * (1.0 - 0.6 * (x * x + y * y))
    array = array * light[..., None] * np.array([1.0, 0.94, 0.85], dtype=np.float32)
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))


def jpeg(image: Image.Image, quality: int = 60) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def resize(image: Image.Image, side: int) -> Image.Image:
    return image.resize((side, side), Image.Resampling.LANCZOS)


def rotate(image: Image.Image, degrees: float) -> Image.Image:
    paper = image.getpixel((2, 2))
    return image.rotate(degrees, resample=Image.Resampling.BICUBIC, fillcolor=paper)


def crop(image: Image.Image, share: float = 0.04) -> Image.Image:
    dx, dy = round(image.width * share), round(image.height * share)
    return image.crop((dx, dy, image.width - dx, image.height - dy))


TRANSFORMS: dict[str, Transform] = {
    "paper tone": paper_tone,
    "lined paper": lined_paper,
    "photo lighting": photo_lighting,
    "jpeg q60": jpeg,
    "resize 2048": lambda image: resize(image, 2048),
    "resize 256": lambda image: resize(image, 256),
    "rotate +5": lambda image: rotate(image, 5.0),
    "rotate -5": lambda image: rotate(image, -5.0),
    "crop 4 %": crop,
}
