"""Calibration data for INT8 quantisation: image folders, ``.npz`` inputs, synthetic images.

:func:`load_calibration` reads a folder of images (PNG/JPEG/..., with Pillow) or an ``.npz`` of
model-ready inputs; :func:`synthetic_calibration` makes smooth random images when no data is
given (a fallback only: see :mod:`graphcnn.backends.quantize`); :func:`split_samples` holds some
out for the accuracy report.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphcnn.errors import GraphcnnError

if TYPE_CHECKING:
    import numpy as np

    Array = np.ndarray[Any, Any]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SYNTHETIC_SAMPLES = 64
"""Synthetic calibration samples when no data is given (plus separate held-out ones)."""
SYNTHETIC_HELD_OUT = 16
CLI_MAX_SAMPLES = 256
"""At most this many samples are read from a --calibration folder or .npz (a seeded subset)."""
MAX_IMAGE_PIXELS = 64_000_000
"""A calibration image larger than this (8000 x 8000) is refused before it is decoded."""
MAX_NPZ_BYTES = 8 * 2**30
"""A calibration array declaring more than this is refused before it is read."""
EVAL_FRACTION = 0.2
"""Share of real calibration samples held out for the accuracy report (not calibrated on)."""


class QuantizeError(GraphcnnError):
    """A model cannot be quantised, or calibration data is missing or does not fit it."""


def _chw(input_shape: Sequence[Any]) -> tuple[int, int, int]:
    dims = list(input_shape)[-3:]
    if len(dims) != 3 or not all(isinstance(d, int) and d > 0 for d in dims):
        raise QuantizeError(
            f"calibration needs a model input of static shape [N, C, H, W]; got {list(input_shape)}"
        )
    return dims[0], dims[1], dims[2]


def _normalise(x: Array) -> Array:
    """[0, 1] images -> the model's input convention: ImageNet mean/std for 3 channels."""
    import numpy as np

    if x.shape[1] == 3:
        mean = np.asarray(IMAGENET_MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
        std = np.asarray(IMAGENET_STD, dtype=np.float32).reshape(1, 3, 1, 1)
        x = (x - mean) / std
    return np.ascontiguousarray(x, dtype=np.float32)


def synthetic_calibration(
    input_shape: Sequence[Any], n: int = SYNTHETIC_SAMPLES, seed: int = 0
) -> Array:
    """``n`` smooth random images ``[n, C, H, W]`` (float32), reproducible from ``seed``.

    Each image is Gaussian noise on a coarse grid (2x2 to 8x8, per image) upsampled bilinearly
    to H x W — blobs and gradients, like the low frequencies that dominate natural images — plus
    a little pixel noise, stretched to [0, 1]; 3-channel images are then normalised with the
    ImageNet mean/std (what the zoo's ImageNet models expect), others stay in [0, 1]. A fallback
    for when no real data is at hand; see the module docstring.
    """
    import numpy as np

    from graphcnn.datasets import bilinear_matrix

    c, h, w = _chw(input_shape)
    if n < 1:
        raise QuantizeError(f"need at least one calibration sample, got n={n}")
    rng = np.random.default_rng(seed)
    out = np.empty((n, c, h, w), dtype=np.float32)
    for i in range(n):
        grid = int(rng.integers(2, 9))
        coarse = rng.standard_normal((c, grid, grid)) + rng.standard_normal((1, grid, grid))
        img = bilinear_matrix(grid, h) @ coarse @ bilinear_matrix(grid, w).T
        img += 0.05 * rng.standard_normal((c, h, w))
        img -= img.min()
        img /= max(float(img.max()), 1e-12)
        out[i] = img
    return _normalise(out)


def _subset(count: int, n: int | None, seed: int) -> Array:
    """Indices of a deterministic random subset of ``n`` out of ``count`` (all if n is None)."""
    import numpy as np

    if n is None or n >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).permutation(count)[:n])


def _image_files(folder: Path) -> list[Path]:
    """The images in ``folder`` and its subfolders (links to folders are not followed)."""
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith(".")
    )
    if not files:
        raise QuantizeError(
            f"no images in {folder}",
            f"put {', '.join(sorted(IMAGE_SUFFIXES))} files there (subfolders are searched), "
            "or pass an .npz of model-ready inputs",
        )
    _inside(folder, files)
    return files


def check_calibration_path(path: str | Path) -> None:
    """Refuse, before any work is done or written, calibration data that cannot be used: what
    :func:`load_calibration` can tell without the model (a folder without images, a link out
    of it, a file that is not a readable ``.npz`` with an array)."""
    import numpy as np

    p = Path(path)
    if p.is_dir():
        _image_files(p)
        return
    if not p.is_file():
        raise QuantizeError(f"calibration data {str(p)!r}: no such file or folder")
    if p.suffix.lower() != ".npz":
        raise QuantizeError(
            f"calibration data {p.name} is neither a folder of images nor an .npz file"
        )
    try:
        with np.load(p, allow_pickle=False) as z:
            keys = list(z.files)
    except Exception as e:  # noqa: BLE001 - numpy raises several kinds for a bad file
        raise QuantizeError(f"cannot read calibration file {p}: {e}") from None
    if not keys:
        raise QuantizeError(f"{p} holds no arrays")


def _load_images(folder: Path, c: int, h: int, w: int, n: int | None, seed: int) -> Array:
    import numpy as np

    files = _image_files(folder)
    if c not in (1, 3):
        raise QuantizeError(
            f"images can calibrate models with 1 (grayscale) or 3 (RGB) input channels, "
            f"this model has {c}",
            "pass an .npz holding model-ready inputs instead",
        )
    try:
        from PIL import Image
    except ImportError:
        raise QuantizeError(
            "reading calibration images needs the Pillow package",
            "pip install pillow, or pass an .npz of model-ready inputs",
        ) from None
    files = [files[i] for i in _subset(len(files), n, seed)]
    out = np.empty((len(files), c, h, w), dtype=np.float32)
    for i, f in enumerate(files):
        try:
            with warnings.catch_warnings():  # a bomb warning: the size check below refuses
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                opened = Image.open(f)
            with opened:
                if opened.width * opened.height > MAX_IMAGE_PIXELS:
                    raise QuantizeError(
                        f"calibration image {f} is {opened.width} x {opened.height} pixels, "
                        f"more than the {MAX_IMAGE_PIXELS:,} read",
                        "calibration needs model-sized images: shrink it",
                    )
                im = opened.convert("L" if c == 1 else "RGB")
            # resize (keeping the aspect ratio) to cover H x W, then crop the centre
            scale = max(h / im.height, w / im.width)
            nw, nh = max(w, round(im.width * scale)), max(h, round(im.height * scale))
            im = im.resize((nw, nh), Image.Resampling.BILINEAR)
            left, top = (nw - w) // 2, (nh - h) // 2
            a = np.asarray(im.crop((left, top, left + w, top + h)), dtype=np.float32)
        except QuantizeError:
            raise
        except Exception as e:  # noqa: BLE001 - Pillow's decoders raise many kinds
            raise QuantizeError(
                f"cannot read calibration image {f}: {e or type(e).__name__}",
                "remove it from the folder, or re-save it with an image editor",
            ) from None
        out[i] = (a[None] if c == 1 else a.transpose(2, 0, 1)) / 255.0
    return _normalise(out)


def _inside(folder: Path, files: list[Path]) -> None:
    """Refuse a symlink that leads out of the folder (folder symlinks are never followed)."""
    root = folder.resolve()
    for f in files:
        if f.is_symlink() and not f.resolve().is_relative_to(root):
            raise QuantizeError(
                f"calibration image {f} links to {f.resolve()}, outside {folder}",
                "copy the image into the folder: links out of it are not followed",
            )


def _declared_bytes(z: Any, key: str) -> int:
    """Bytes the ``.npy`` member ``key`` declares in its header (before reading its data)."""
    import math

    import numpy as np

    with z.zip.open(key + ".npy") as f:
        fmt = np.lib.format
        major, _ = fmt.read_magic(f)
        read = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
        shape, _, dtype = read(f)
    return math.prod(shape) * dtype.itemsize


def _load_npz(path: Path, c: int, h: int, w: int, n: int | None, seed: int) -> Array:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.files)
            if not keys:
                raise QuantizeError(f"{path} holds no arrays")
            key = next((k for k in ("x", "images") if k in keys), keys[0])
            if _declared_bytes(z, key) > MAX_NPZ_BYTES:
                raise QuantizeError(
                    f"calibration array {path.name}[{key!r}] declares more than "
                    f"{MAX_NPZ_BYTES // 2**30} GiB",
                    f"store at most a few hundred samples ({CLI_MAX_SAMPLES} are used)",
                )
            x = z[key]
    except QuantizeError:
        raise
    except Exception as e:  # noqa: BLE001 - numpy raises several kinds for a bad file
        raise QuantizeError(f"cannot read calibration file {path}: {e}") from None
    where = f"{path.name}[{key!r}]"
    if x.ndim == 3 and c == 1:
        x = x[:, None]
    if x.ndim != 4 or tuple(x.shape[1:]) != (c, h, w):
        raise QuantizeError(
            f"calibration array {where} has shape {list(x.shape)}, the model takes "
            f"[N, {c}, {h}, {w}]",
            "store model-ready inputs (resized and normalised) under the key 'x'",
        )
    if len(x) == 0:
        raise QuantizeError(f"calibration array {where} is empty")
    if not np.issubdtype(x.dtype, np.floating):
        raise QuantizeError(
            f"calibration array {where} is {x.dtype}; it must hold model-ready float inputs",
            "scale and normalise the images as the model expects, then save them as float32",
        )
    x = x[_subset(len(x), n, seed)].astype(np.float32)
    if not np.isfinite(x).all():
        raise QuantizeError(f"calibration array {where} contains NaN or infinity")
    return np.ascontiguousarray(x)


def load_calibration(
    path: str | Path | None,
    input_shape: Sequence[Any],
    n: int | None = None,
    seed: int = 0,
) -> Array:
    """Calibration inputs ``[N, C, H, W]`` float32 for a model whose input is ``input_shape``.

    ``input_shape`` is ``[N, C, H, W]`` or ``[C, H, W]`` (only C, H, W are used). ``path``:

    - a folder: every image in it and its subfolders (PNG, JPEG, BMP, WebP, TIFF; Pillow),
      converted to grayscale (1 channel) or RGB (3), resized keeping the aspect ratio to cover
      H x W and centre-cropped, scaled to [0, 1], and for 3 channels normalised with the
      ImageNet mean/std;
    - an ``.npz``: the array under key ``"x"``, else ``"images"``, else the first one, holding
      model-ready float inputs ``[N, C, H, W]`` (``[N, H, W]`` for one channel), used as is;
    - ``None``: :func:`synthetic_calibration` (``n`` defaults to 64 there).

    ``n`` caps how many samples are used (a subset drawn with ``seed``); None: all of them.
    """
    c, h, w = _chw(input_shape)
    if path is None:
        return synthetic_calibration((c, h, w), SYNTHETIC_SAMPLES if n is None else n, seed)
    p = Path(path)
    if p.is_dir():
        return _load_images(p, c, h, w, n, seed)
    check_calibration_path(p)
    return _load_npz(p, c, h, w, n, seed)


def split_samples(
    x: Array, eval_fraction: float = EVAL_FRACTION, seed: int = 0
) -> tuple[Array, Array]:
    """Deterministic ``(calibrate, held_out)`` split; each part gets at least one sample."""
    import numpy as np

    if len(x) < 2:
        raise QuantizeError(
            f"need at least 2 calibration samples (one is held out for the accuracy report), "
            f"got {len(x)}"
        )
    k = min(max(int(round(eval_fraction * len(x))), 1), len(x) - 1)
    order = np.random.default_rng(seed).permutation(len(x))
    held = np.zeros(len(x), dtype=bool)
    held[order[:k]] = True
    return x[~held], x[held]
