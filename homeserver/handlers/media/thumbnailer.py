"""Making thumbnails with Pillow. Blocking and CPU-bound: callers run these in a thread.

Only JPEG, PNG, GIF and WebP are ever decoded (each decoder is attack surface), and only
after the header says the image has at most ``max_pixels`` pixels, so a small file that
would inflate to gigabytes (a decompression bomb) is refused before any pixel is decoded.
Images are turned upright by their EXIF orientation, and never scaled up.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable

import attrs
from PIL import Image, ImageOps, ImageSequence

PILLOW_FORMATS = ("JPEG", "PNG", "GIF", "WEBP")
# Which thumbnail type each thumbnailable upload type gets; GIF keeps its transparency in PNG.
THUMBNAIL_TYPES = {
    "image/jpeg": "image/jpeg",
    "image/jpg": "image/jpeg",
    "image/png": "image/png",
    "image/gif": "image/png",
    "image/webp": "image/jpeg",
}
ANIMATED_TYPE = "image/webp"
_SAVE_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
EXIF_ORIENTATION = 0x0112
QUALITY = 80


class ThumbnailError(Exception):
    """The image cannot be thumbnailed."""


class UndecodableImage(ThumbnailError):
    pass


class ImageTooLarge(ThumbnailError):
    def __init__(self, max_pixels: int, pixels: int | None = None) -> None:
        has = f"has {pixels} pixels" if pixels is not None else "is too large to decode"
        super().__init__(f"the image {has}; this server thumbnails images of at most {max_pixels} pixels")


@attrs.frozen
class ThumbnailSpec:
    """What to make: fit into width x height by ``method``; animated only if asked and possible."""

    width: int
    height: int
    method: str  # "crop" or "scale"
    animated: bool = False

    def file_name(self, output_type: str) -> str:
        suffix = "-animated" if self.animated else ""
        return f"{self.width}x{self.height}-{self.method}{suffix}.{output_type.split('/')[1]}"


def _open(path: str, max_pixels: int) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(path, formats=PILLOW_FORMATS)
        except Image.DecompressionBombError as exc:
            raise ImageTooLarge(max_pixels) from exc
        except (OSError, ValueError, SyntaxError) as exc:
            raise UndecodableImage(f"the file is not an image this server can read ({exc})") from exc
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageTooLarge(max_pixels, width * height)
    return image


def _frame_count(image: Image.Image) -> int:
    return int(getattr(image, "n_frames", 1)) if getattr(image, "is_animated", False) else 1


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - malformed EXIF is common; the image is still usable
        return 1
    return value if isinstance(value, int) else 1


def _upright(image: Image.Image, orientation: int) -> Image.Image:
    if orientation == 1:
        return image
    turned = ImageOps.exif_transpose(image)
    return turned if turned is not None else image


def _rgb_ready(image: Image.Image) -> Image.Image:
    """Palette and greyscale images resize badly (nearest colour); work in RGB(A)."""
    if image.mode in ("RGB", "RGBA"):
        return image
    has_alpha = image.mode in ("LA", "PA") or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB")


def _box_for(spec: ThumbnailSpec, width: int, height: int) -> tuple[int, int]:
    """The output size: the spec's box, shrunk (keeping its shape) so nothing is scaled up."""
    if spec.method == "scale":
        factor = min(1.0, spec.width / width, spec.height / height)
        return max(1, round(width * factor)), max(1, round(height * factor))
    factor = min(1.0, width / spec.width, height / spec.height)
    return max(1, round(spec.width * factor)), max(1, round(spec.height * factor))


def _resize(image: Image.Image, spec: ThumbnailSpec, size: tuple[int, int]) -> Image.Image:
    image = _rgb_ready(image)
    if spec.method == "crop":
        return ImageOps.fit(image, size, method=Image.Resampling.LANCZOS)
    return image.resize(size, Image.Resampling.LANCZOS)


def _encode(image: Image.Image, output_type: str) -> bytes:
    if output_type == "image/jpeg" and image.mode == "RGBA":
        background = Image.new("RGB", image.size, (255, 255, 255))  # JPEG has no alpha: flatten onto white
        background.paste(image, mask=image.getchannel("A"))
        image = background
    elif output_type == "image/jpeg" and image.mode != "RGB":
        image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, _SAVE_FORMATS[output_type], quality=QUALITY)
    return out.getvalue()


def _encode_animation(image: Image.Image, transform: Callable[[Image.Image], Image.Image]) -> bytes:
    frames, durations = [], []
    for frame in ImageSequence.Iterator(image):
        frames.append(transform(frame.convert("RGBA")))
        durations.append(int(frame.info.get("duration", image.info.get("duration", 100)) or 0))
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], duration=durations,
                   loop=int(image.info.get("loop", 0)), quality=QUALITY)
    return out.getvalue()


def make_thumbnail(path: str, spec: ThumbnailSpec, output_type: str, max_pixels: int) -> bytes:
    """Encode a thumbnail of the image at ``path``; animated WebP when ``spec.animated``.

    An animation is only kept while all its frames together stay within ``max_pixels``;
    past that the first frame stands for it, as for a still image.
    """
    image = _open(path, max_pixels)
    try:
        width, height = image.size
        orientation = _orientation(image)
        if orientation in (5, 6, 7, 8):
            width, height = height, width
        size = _box_for(spec, width, height)
        try:
            if spec.animated and _frame_count(image) * width * height <= max_pixels:
                return _encode_animation(image, lambda frame: _resize(_upright(frame, orientation), spec, size))
            if image.format == "JPEG":
                longest = 2 * max(size)  # decode at a reduced scale (much faster), still twice the output
                image.draft("RGB", (longest, longest))
            return _encode(_resize(_upright(image, orientation), spec, size), output_type)
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise UndecodableImage(f"the image could not be decoded ({exc})") from exc
    finally:
        image.close()


def is_animated(path: str, max_pixels: int) -> bool:
    image = _open(path, max_pixels)
    try:
        return _frame_count(image) > 1
    finally:
        image.close()
