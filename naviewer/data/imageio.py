"""Reading image files safely: size check before decoding, every mode converted to RGB uint8.

An image file is untrusted input. Its header is read first and its pixel count compared with a
limit *before* any pixel is decoded, so a small file that claims a huge canvas (a decompression
bomb) is refused instead of exhausting memory. Every decode error becomes a ``NaviewerError``
naming the file.

Colour handling follows torchvision's ``pil_loader`` (``Image.convert("RGB")``) so that what
naviewer trains on is what a torchvision ``ImageFolder`` pipeline would have seen: alpha is
dropped (not composited), palettes and grayscale are expanded; 16-bit grayscale is scaled to
8 bits (``>> 8``) rather than clipped. EXIF orientation is *not* applied, as in torchvision.
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Optional

import numpy as np

from naviewer.errors import NaviewerError
from naviewer.io import check_regular_file

#: default largest accepted image, in pixels (width * height): 64 megapixels
DEFAULT_MAX_PIXELS = 64_000_000

_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N"}

#: Pillow formats never opened: EPS/PS hands the file to Ghostscript (an interpreter, so a
#: crafted file could run code); the others are write-only or stubs without a decoder.
_REFUSED_FORMATS = frozenset({"EPS", "PDF", "BUFR", "GRIB", "HDF5", "MPEG", "WMF"})


@lru_cache(maxsize=1)
def _readable_formats() -> tuple[str, ...]:
    from PIL import Image

    Image.init()
    return tuple(sorted(f for f in Image.OPEN if f not in _REFUSED_FORMATS))


def image_extensions() -> frozenset[str]:
    """Lower-case file extensions (with dot) of the formats naviewer lets Pillow open."""
    from PIL import Image

    Image.init()
    return frozenset(ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt not in _REFUSED_FORMATS)


def _open_checked(path: Path, max_pixels: int):
    """Open ``path`` lazily (header only) and refuse it if it claims more than ``max_pixels``."""
    from PIL import Image, UnidentifiedImageError

    check_regular_file(path, "image")  # a pipe named x.png blocked here for ever
    try:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # content is sniffed whatever the extension, so the allow-list is passed explicitly
            img = Image.open(path, formats=list(_readable_formats()))
        _say_pillow_warnings(said, path)
    except FileNotFoundError:
        raise NaviewerError("image file not found", path) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise NaviewerError(_too_many_pixels(str(exc), max_pixels), path) from None
    except UnidentifiedImageError:
        raise NaviewerError("not a readable image (unknown or corrupt format)", path) from None
    except MemoryError:
        raise NaviewerError("not enough memory to read the image header", path) from None
    except OSError as exc:  # "PermissionError: [Errno 13] Permission denied" / "Truncated File Read" in plain words
        from naviewer.io import describe_image_read_error

        raise NaviewerError(f"cannot read the image: {describe_image_read_error(exc)}", path) from None
    except Exception as exc:  # noqa: BLE001 - Pillow's format plugins raise their own kinds (BLP: NotImplementedError)
        raise NaviewerError(f"cannot read image header: {type(exc).__name__}: {exc}", path) from None
    width, height = img.size
    if width <= 0 or height <= 0:
        img.close()
        raise NaviewerError(f"image has an empty canvas ({width}x{height})", path)
    if width * height > max_pixels:
        img.close()
        raise NaviewerError(
            f"image claims {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,} "
            "(refused before decoding; raise max_pixels if the file is trusted)",
            path,
        )
    return img


def _say_pillow_warnings(said: list, path: Path) -> None:
    """Pillow's warnings while reading ``path`` (corrupt EXIF: "Tag data larger than file. Skipping tag 274"), said as
    one naviewer warning naming the image: they came as Pillow's source file and line, which read like a crash."""
    said = [w for w in said if issubclass(w.category, UserWarning) and "PIL" in str(w.filename)]
    if not said:
        return
    from naviewer.data.base import DatasetWarning

    first = str(said[0].message).strip().rstrip(".")
    more = f" (and {len(said) - 1} more)" if len(said) > 1 else ""
    warnings.warn(DatasetWarning(f"{path}: damaged metadata ignored ({first}{more}); the pixels are read"), stacklevel=3)


def _too_many_pixels(pillow_message: str, max_pixels: int) -> str:
    """Pillow's decompression-bomb guard fires in Image.open, before naviewer's own header check; say it in
    naviewer's words (its limit, what to do), with the size Pillow read when its message carries one."""
    size = re.search(r"\((\d+) pixels\)", pillow_message)  # "Image size (100000000 pixels) exceeds limit of ..."
    pixels = int(size[1]) if size else None
    claims = f"image claims {pixels:,} pixels" if pixels is not None else "image claims too many pixels"
    if pixels is not None and pixels <= max_pixels:  # max_pixels raised past Pillow's own guard
        return (f"{claims}, more than Pillow decodes without a decompression-bomb warning (refused before decoding; "
                "shrink the image)")
    return (f"{claims}, over the limit of {max_pixels:,} and more than Pillow decodes without a decompression-bomb "
            "warning (refused before decoding; shrink the image)")


def read_image_size(path: "str | Path", max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(height, width) from the header alone, with the same checks as :func:`load_image`."""
    path = Path(path)
    img = _open_checked(path, max_pixels)
    try:
        width, height = img.size
    finally:
        img.close()
    return int(height), int(width)


def _to_rgb(img) -> np.ndarray:
    """Any Pillow mode -> uint8 (H, W, 3)."""
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8)
    if mode in _SIXTEEN_BIT_MODES:
        gray = (np.asarray(img).astype(np.uint32) >> 8).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode in ("I", "F"):
        values = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        top = float(values.max()) if values.size else 0.0
        if mode == "F" and 0.0 < top <= 1.0 and float(values.min()) >= 0.0:
            values = values * 255.0  # a float image in [0, 1] decoded all black when clipped as 0..255
        elif 255.0 < top <= 65535.0:
            values = values / 257.0  # 16-bit data held in a 32-bit mode decoded all white
        gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # avoids Pillow's palette-transparency warning; alpha then dropped
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def load_image(path: "str | Path", max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode ``path`` to a uint8 (H, W, 3) RGB array, refusing oversized or corrupt files.

    Multi-frame files (GIF, TIFF) give their first frame.
    """
    from PIL import Image

    path = Path(path)
    img = _open_checked(path, max_pixels)
    try:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
            array = _to_rgb(img)
        _say_pillow_warnings(said, path)
    except NaviewerError:
        raise
    except MemoryError:
        raise NaviewerError("not enough memory to decode the image", path) from None
    except Exception as exc:  # noqa: BLE001 - any decoder error on untrusted bytes is the file's fault, whatever its
        # class (a corrupt BLP raised NotImplementedError, past a narrower list, as a traceback)
        raise NaviewerError(f"cannot decode image (truncated or corrupt): {exc}", path) from None
    finally:
        img.close()
    if array.ndim != 3 or array.shape[2] != 3:
        raise NaviewerError(f"decoded to unexpected shape {array.shape}", path)
    return np.ascontiguousarray(array)


def is_image_file(path: Path, extensions: Optional[frozenset[str]] = None) -> bool:
    """True for a visible file whose extension Pillow knows."""
    exts = extensions if extensions is not None else image_extensions()
    return path.suffix.lower() in exts and not path.name.startswith(".")
