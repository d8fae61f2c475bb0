"""Robust image decoding: every file becomes an 8-bit RGB PIL image, or a DataError.

Two named decoders (the dataset option ``decode``, recorded in the dataset protocol):

* ``roz`` (default): handles what real dataset copies contain: CMYK and YCCK JPEGs, grayscale,
  palette images with transparency, 16-bit PNG/TIFF, alpha channels (composited on white), EXIF
  orientation (applied);
* ``testbed``: the imagenet-testbed's (and torchvision ``default_loader``'s) plain
  ``Image.open(path).convert("RGB")``: EXIF orientation ignored, alpha dropped (transparent pixels
  keep their stored colour), 16-bit values clipped by PIL.

Truncated, zero-byte or non-image files raise ``DataError`` naming the file under both (the
caller decides fail vs skip), and so do images over the decompression-bomb limit: Pillow's
``Image.MAX_IMAGE_PIXELS`` (ROZ never disables it), or the dataset option ``max_image_pixels``.
Pillow itself only warns between 1x and 2x its limit; ROZ treats anything over it as a bad image
and checks the size from the header, before any pixel is decoded.
"""

from __future__ import annotations

import io
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from roz.errors import DataError

DECODERS = {
    "roz": "EXIF orientation applied; alpha and transparent palettes composited on white; 16-bit scaled to 8-bit",
    "testbed": "PIL Image.open(path).convert('RGB') as the imagenet-testbed: no EXIF rotation, alpha dropped",
}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def is_image_file(path: str | Path) -> bool:
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16/32-bit greyscale: scale the actual range to 8 bits instead of clipping at 255.
        a = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") or a.max() > 255 else 255.0
        a = np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(a, "L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Composite on white: transparent pixels carry arbitrary colour values.
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    return img.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV


# Pillow's own default (Image.MAX_IMAGE_PIXELS at import): used if a library set the global to None.
PILLOW_MAX_PIXELS = int(1024 * 1024 * 1024 // 4 // 3)


def default_max_pixels() -> int:
    return Image.MAX_IMAGE_PIXELS or PILLOW_MAX_PIXELS


def check_max_pixels(limit) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise DataError(f"max_image_pixels must be a positive integer, got {limit!r}",
                        hint="dataset option max_image_pixels=N (width x height); leave it out for Pillow's "
                             f"limit of {default_max_pixels():,} pixels")
    return limit


def check_pixels(im: Image.Image, path: Path, limit: int | None = None) -> None:
    """DataError if the opened (header-only) image ``im`` is over ``limit`` pixels (default Pillow's)."""
    limit = limit or default_max_pixels()
    w, h = im.size
    if w * h > limit:
        raise DataError(f"image {path} is {w}x{h} = {w * h:,} pixels, over the decompression-bomb limit of "
                        f"{limit:,} pixels", hint=_BOMB_HINT)


_BOMB_HINT = ("a decompression bomb or a huge image; skip it with --on-bad-image skip, or if it is genuine raise the "
              "limit deliberately with the dataset option max_image_pixels=N (recorded in the protocol)")


_RAISE_LOCK = threading.Lock()


def _open(path, max_pixels: int | None) -> Image.Image:
    """``Image.open``; a deliberately raised limit must also pass Pillow's own check there (at 2x its
    global), so the global is raised for that call only and restored: other datasets keep theirs."""
    if not (max_pixels and Image.MAX_IMAGE_PIXELS and max_pixels > Image.MAX_IMAGE_PIXELS):
        return Image.open(path)
    with _RAISE_LOCK:
        before = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            return Image.open(path)  # reads the header only; the size check below uses our limit
        finally:
            Image.MAX_IMAGE_PIXELS = before


def check_decode(decode: str) -> str:
    if decode not in DECODERS:
        raise DataError(f"unknown image decoder {decode!r}",
                        hint=f"dataset option decode= one of {', '.join(DECODERS)} (see docs/datasets.md, Decoding)")
    return decode


def load_image(path: str | Path, decode: str = "roz", max_pixels: int | None = None) -> Image.Image:
    """Decode ``path`` to RGB with the named decoder (see ``DECODERS``); DataError if unreadable
    or over ``max_pixels`` pixels (default: Pillow's ``Image.MAX_IMAGE_PIXELS``)."""
    check_decode(decode)
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise DataError(f"zero-byte image file: {path}", hint="re-download or remove it, or pass --on-bad-image skip")
    except FileNotFoundError:
        raise DataError(f"image file not found: {path}") from None
    return _decode(path, path, decode, max_pixels)


def load_image_bytes(data: bytes, name: str, decode: str = "roz", max_pixels: int | None = None) -> Image.Image:
    """Decode an image held in memory (a tar-shard member, a Hugging Face ``datasets`` cell) exactly
    as :func:`load_image` decodes a file; ``name`` identifies it in errors."""
    check_decode(decode)
    if not data:
        raise DataError(f"zero-byte image: {name}", hint="re-create the shard, or pass --on-bad-image skip")
    return _decode(io.BytesIO(data), name, decode, max_pixels)


def _decode(source, name, decode: str, max_pixels: int | None) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's EXIF/palette chatter is not actionable here
            with _open(source, max_pixels) as im:
                check_pixels(im, name, max_pixels)
                im.load()  # forces full decode: truncated files fail here, not later in a worker
                if decode == "testbed":
                    return im.convert("RGB")
                im = ImageOps.exif_transpose(im)
                return _to_rgb(im)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"image file not found: {name}") from None
    except Image.DecompressionBombError as e:  # over 2x Pillow's global limit: refused in Image.open
        raise DataError(f"image {name} is over the decompression-bomb limit of {max_pixels or default_max_pixels():,} "
                        f"pixels (Pillow: {e})", hint=_BOMB_HINT) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(
            f"cannot decode image {name}: {type(e).__name__}: {e}",
            hint="the file is truncated or not an image; re-download it, or pass --on-bad-image skip",
        ) from None
