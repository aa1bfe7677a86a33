"""Images re-encoded before anyone sees them: decoded with Pillow (only as the format its
first bytes say), turned upright by its EXIF orientation, and written anew with nothing but
pixels (no EXIF, no GPS, no XMP, no comments or text chunks, no ICC profile: colours are
converted to sRGB first), plus a small WebP thumbnail.

Decompression bombs are refused before a pixel is decoded: width x height (times the
frames of an animation) over the cap, from the header alone. Pillow's own guard
(`Image.MAX_IMAGE_PIXELS`) is set to the same cap for anything that gets past that.

CPU-bound and blocking: run it in a worker thread (`hub.services.attachments`).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from hub.rules.attachments import GIF, JPEG, PNG, WEBP, Kind
from supporthub_core.errors import Invalid, Unsupported

log = logging.getLogger(__name__)

PILLOW_FORMAT = {PNG.name: "PNG", JPEG.name: "JPEG", WEBP.name: "WEBP", GIF.name: "GIF"}
THUMBNAIL_TYPE = "image/webp"
JPEG_QUALITY = 90
WEBP_QUALITY = 90
THUMBNAIL_QUALITY = 80
MAX_FRAMES = 500


@dataclass(frozen=True, slots=True)
class Processed:
    data: bytes
    width: int
    height: int
    thumbnail: bytes


class Bomb(Invalid):
    """An image whose pixels would not fit the cap (422)."""


def set_pixel_cap(max_pixels: int) -> None:
    """Pillow's own decompression-bomb guard, at the hub's cap (it warns above it and
    refuses above twice it; the hub refuses above it before Pillow is asked)."""
    Image.MAX_IMAGE_PIXELS = max_pixels


def process(raw: bytes, kind: Kind, *, max_pixels: int, thumbnail_px: int) -> Processed:
    """`raw` (sniffed as `kind`) decoded, checked and re-encoded without metadata."""
    fmt = PILLOW_FORMAT[kind.name]
    try:
        im = Image.open(io.BytesIO(raw), formats=[fmt])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _bomb(max_pixels) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise Unsupported(f"the file starts like a {fmt} image but is not a valid one") from None
    with im:
        width, height = im.size
        frames = getattr(im, "n_frames", 1) if kind in (GIF, WEBP) else 1
        if width < 1 or height < 1:
            raise Unsupported(f"the {fmt} image has no pixels")
        if width * height > max_pixels or width * height * frames > max_pixels:
            raise _bomb(max_pixels, width, height, frames)
        if frames > MAX_FRAMES:
            raise Invalid(f"the animation has {frames} frames; at most {MAX_FRAMES} are accepted")
        try:
            if frames > 1:
                data, first = _animation(im, kind)
            else:
                first = _clean(im)
                data = _encode(first, kind)
            thumbnail = _thumbnail(first, thumbnail_px)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _bomb(max_pixels) from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            log.info("could not decode an uploaded %s: %s", fmt, exc)
            raise Unsupported(f"the {fmt} image is damaged and cannot be read") from None
        return Processed(data, first.width, first.height, thumbnail)


def _bomb(max_pixels: int, width: int = 0, height: int = 0, frames: int = 1) -> Bomb:
    size = f" ({width}x{height}" + (f", {frames} frames" if frames > 1 else "") + ")"
    return Bomb(
        f"the image is too large{size if width else ''}: at most {max_pixels:,} pixels"
        " are accepted (a decompression bomb?)"
    )


def _clean(im: Image.Image) -> Image.Image:
    """The pixels only: upright, in sRGB, in a mode the encoders take, with no metadata."""
    im.load()
    upright = ImageOps.exif_transpose(im) or im
    pixels = _srgb(upright, im.info.get("icc_profile"))
    if pixels.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"):
        pixels = pixels.convert("RGBA" if "A" in pixels.getbands() else "RGB")
    clean = pixels.copy()
    transparency = pixels.info.get("transparency")
    clean.info = {} if transparency is None else {"transparency": transparency}
    return clean


def _srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """Colours converted from the embedded profile to sRGB (the profile itself is not
    kept); as they are when there is none or it cannot be used."""
    if not icc or im.mode not in ("RGB", "RGBA", "CMYK"):
        return im.convert("RGB") if im.mode == "CMYK" else im
    try:
        from PIL import ImageCms

        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        target = ImageCms.createProfile("sRGB")
        out_mode = "RGB" if im.mode == "CMYK" else im.mode
        converted = ImageCms.profileToProfile(im, source, target, outputMode=out_mode)
        return converted if converted is not None else im
    except Exception as exc:  # a broken or exotic profile: keep the pixels as they are
        log.info("could not apply an uploaded image's colour profile: %s", exc)
        return im.convert("RGB") if im.mode == "CMYK" else im


def _encode(im: Image.Image, kind: Kind) -> bytes:
    out = io.BytesIO()
    if kind is JPEG:
        if im.mode not in ("L", "RGB"):
            im = im.convert("RGB")
        im.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    elif kind is PNG:
        im.save(out, "PNG")
    elif kind is WEBP:
        if im.mode not in ("RGB", "RGBA"):
            im = im.convert("RGBA" if _has_alpha(im) else "RGB")
        im.save(out, "WEBP", quality=WEBP_QUALITY)
    else:
        im.save(out, "GIF")
    return out.getvalue()


def _animation(im: Image.Image, kind: Kind) -> tuple[bytes, Image.Image]:
    """An animated GIF or WebP re-encoded frame by frame (timing and looping kept)."""
    frames, durations = [], []
    for frame in ImageSequence.Iterator(im):
        durations.append(int(frame.info.get("duration", 100)) or 100)
        pixels = frame.convert("RGBA")
        pixels.info = {}  # a GIF comment or XMP of the frame would be written again
        frames.append(pixels)
    loop = int(im.info.get("loop", 0))
    out = io.BytesIO()
    first, rest = frames[0], frames[1:]
    if kind is GIF:
        first.save(out, "GIF", save_all=True, append_images=rest, duration=durations,
                   loop=loop, disposal=2)  # fmt: skip
    else:
        first.save(out, "WEBP", save_all=True, append_images=rest, duration=durations,
                   loop=loop, quality=WEBP_QUALITY)  # fmt: skip
    clean = first.copy()
    clean.info = {}
    return out.getvalue(), clean


def _thumbnail(im: Image.Image, px: int) -> bytes:
    thumb = im.convert("RGBA" if _has_alpha(im) else "RGB")
    thumb.thumbnail((px, px), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    thumb.save(out, "WEBP", quality=THUMBNAIL_QUALITY)
    return out.getvalue()


def _has_alpha(im: Image.Image) -> bool:
    return "A" in im.getbands() or "transparency" in im.info
