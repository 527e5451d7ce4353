"""Uploaded drawings are hostile: check them from their bytes before anything is stored.

PNG, JPEG and BMP only, recognised by their magic bytes (never by name or declared type),
at most `max_upload_bytes`, at least `min_image_side` pixels a side, at most
`max_image_pixels` pixels (checked from the header, before decoding: decompression bombs),
and fully decodable. Each refusal is an `UploadRefused` with an HTTP status and one line.

Memory: a JPEG is decoded at the reduced scale the features need (`draft`); a PNG or BMP is
decoded whole (its formats allow nothing else) and at once reduced (`reduce`) to that scale,
so what an analysis holds after decoding does not depend on the upload's resolution.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from app.scoring import MAX_AGE, MIN_AGE
from app.scoring.page import WORK_SIZE


@dataclass(frozen=True)
class ImageKind:
    pillow_format: str
    content_type: str
    extension: str


PNG = ImageKind("PNG", "image/png", "png")
JPEG = ImageKind("JPEG", "image/jpeg", "jpg")
BMP = ImageKind("BMP", "image/bmp", "bmp")
_MAGIC: tuple[tuple[bytes, ImageKind], ...] = (
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
    (b"BM", BMP),
)
MAX_FILENAME_CHARS = 120
MAX_SUBJECT_CHARS = 80
# The features reduce anything above twice their working size; decoding stops there too.
ANALYSIS_SIDE = 2 * WORK_SIZE
REDUCIBLE_MODES = ("L", "LA", "RGB", "RGBA", "I", "F", "PA")
# Unicode categories stripped from text fields: controls (NUL, ESC, C1, …) and format
# characters (bidi overrides and isolates, zero-width characters, BOM), lone surrogates.
STRIPPED_CATEGORIES = ("Cc", "Cf", "Cs")


class UploadRefused(Exception):
    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


@dataclass(frozen=True)
class CheckedDrawing:
    data: bytes
    kind: ImageKind
    image: Image.Image  # decoded, reduced to about ANALYSIS_SIDE on its shorter side
    sha256: str
    width: int  # of the uploaded image
    height: int


def sniff_kind(data: bytes) -> ImageKind:
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    raise UploadRefused(415, "unsupported file type: only PNG, JPEG and BMP images are accepted")


def check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise UploadRefused(413, f"file too large: the limit is {max_bytes // (1024 * 1024)} MB")
    if size == 0:
        raise UploadRefused(422, "the file is empty")


def check_age(age: int) -> int:
    if not MIN_AGE <= age <= MAX_AGE:
        raise UploadRefused(422, f"age must be between {MIN_AGE} and {MAX_AGE} years, got {age}")
    return age


def strip_controls(text: str) -> str:
    """Whitespace runs become one space; control and format characters are dropped."""
    spaced = " ".join(text.split())
    kept = "".join(ch for ch in spaced if unicodedata.category(ch) not in STRIPPED_CATEGORIES)
    return " ".join(kept.split())


def clean_subject(subject: str | None) -> str | None:
    if subject is None:
        return None
    text = strip_controls(subject)
    if len(text) > MAX_SUBJECT_CHARS:
        raise UploadRefused(422, f"subject must be at most {MAX_SUBJECT_CHARS} characters")
    return text or None


def display_filename(name: str | None, kind: ImageKind) -> str:
    """The uploaded name reduced to a harmless label (it is stored, never used as a path)."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[^\w.\- ]+", "_", base).strip(" .")[:MAX_FILENAME_CHARS]
    return base or f"drawing.{kind.extension}"


def decode_drawing(data: bytes, max_bytes: int, min_side: int, max_pixels: int) -> CheckedDrawing:
    """The decoded image of an upload, or UploadRefused saying why not."""
    check_size(len(data), max_bytes)
    kind = sniff_kind(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[kind.pillow_format])
            width, height = image.size
            if width * height > max_pixels:
                raise UploadRefused(
                    413,
                    f"image too large: {width}x{height} pixels is more than the "
                    f"{max_pixels:,} allowed",
                )
            if width < min_side or height < min_side:
                raise UploadRefused(
                    422,
                    f"image too small: {width}x{height} pixels, at least "
                    f"{min_side}x{min_side} needed",
                )
            image.draft(None, (ANALYSIS_SIDE, ANALYSIS_SIDE))  # JPEG only; else a no-op
            image.load()
            image = reduce_for_analysis(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UploadRefused(
            413, "image too large: it decompresses to too many pixels (decompression bomb)"
        ) from None
    except UnidentifiedImageError:
        raise UploadRefused(
            422, f"the file starts like a {kind.pillow_format} image but cannot be read"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UploadRefused(
            422, f"the {kind.pillow_format} image cannot be decoded: {reason}"
        ) from None
    return CheckedDrawing(data, kind, image, hashlib.sha256(data).hexdigest(), width, height)


def reduce_for_analysis(image: Image.Image) -> Image.Image:
    """A box reduction by the integer factor that keeps the shorter side at least
    ANALYSIS_SIDE (the one the features would apply); the decoded original is let go."""
    factor = min(image.size) // ANALYSIS_SIDE
    if factor < 2:
        return image
    if image.mode not in REDUCIBLE_MODES:
        if image.mode == "1":
            image = image.convert("L")
        elif image.mode.startswith("I;16"):
            image = image.convert("I")
        elif "transparency" in image.info:
            image = image.convert("RGBA")
        else:
            image = image.convert("RGB")
    return image.reduce(factor)
