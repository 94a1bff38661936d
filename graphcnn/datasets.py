"""Small data sets shipped with graphcnn (numpy only: nothing is downloaded, torch is not needed).

``digits()`` is the UCI "Optical Recognition of Handwritten Digits" test set (1797 8x8 images of
the digits 0-9, as bundled by scikit-learn; origin and license in ``graphcnn/data/README.md``),
upsampled to the size a network expects, e.g. 32x32 for LeNet-5::

    from graphcnn import datasets
    x, y = datasets.digits(32)                     # float32 [1797, 1, 32, 32] in [0, 1], int64
    x_train, y_train, x_val, y_val = datasets.split(x, y, val_fraction=0.2, seed=0)
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DATA_DIR", "DIGITS_FILE", "digits", "load_digits_raw", "resize", "split"]

DATA_DIR = Path(__file__).resolve().parent / "data"
DIGITS_FILE = DATA_DIR / "digits.npz"

Array = np.ndarray[Any, Any]


@cache
def _digits_npz() -> tuple[Array, Array]:
    if not DIGITS_FILE.is_file():
        raise FileNotFoundError(
            f"{DIGITS_FILE} is missing: graphcnn was installed without its package data"
        )
    with np.load(DIGITS_FILE) as z:
        images, labels = z["images"], z["labels"]
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def load_digits_raw() -> tuple[Array, Array]:
    """The shipped data as stored: uint8 images [1797, 8, 8] in 0..16, int64 labels 0..9."""
    images, labels = _digits_npz()
    return images.copy(), labels.copy()


def bilinear_matrix(n_in: int, n_out: int) -> Array:
    """[n_out, n_in] weights of 1-D linear interpolation with half-pixel centres.

    The same sampling as ``torch.nn.functional.interpolate(mode="bilinear",
    align_corners=False)`` and PIL: output pixel ``i`` samples input coordinate
    ``(i + 0.5) * n_in / n_out - 0.5``, clamped to the edge pixels.
    """
    coord = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    coord = np.clip(coord, 0.0, n_in - 1)
    lo = np.floor(coord).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = coord - lo
    m = np.zeros((n_out, n_in), dtype=np.float64)
    rows = np.arange(n_out)
    np.add.at(m, (rows, lo), 1.0 - frac)
    np.add.at(m, (rows, hi), frac)
    return m


def _nearest_index(n_in: int, n_out: int) -> Array:
    """Input index of each output pixel (``floor(i * n_in / n_out)``, as torch's "nearest")."""
    return np.minimum((np.arange(n_out) * n_in) // n_out, n_in - 1)


def resize(images: Array, size: int, mode: str = "bilinear") -> Array:
    """Resize a batch ``[..., H, W]`` to ``[..., size, size]`` (float64 for bilinear).

    ``mode`` is "bilinear" (separable, half-pixel centres) or "nearest". Bilinear weights are
    convex, so values stay within the input's range.
    """
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    h, w = images.shape[-2:]
    if mode == "nearest":
        return images[..., _nearest_index(h, size)[:, None], _nearest_index(w, size)[None, :]]
    if mode != "bilinear":
        raise ValueError(f"mode must be 'bilinear' or 'nearest', got {mode!r}")
    rows, cols = bilinear_matrix(h, size), bilinear_matrix(w, size)
    out: Array = np.einsum("ih,...hw,jw->...ij", rows, images.astype(np.float64), cols)
    return out


def digits(size: int = 32, mode: str = "bilinear") -> tuple[Array, Array]:
    """The 1797 handwritten digits as float32 images ``[N, 1, size, size]`` in [0, 1], labels.

    The 8x8 originals (pixel counts 0..16) are divided by 16 and upsampled to ``size`` by
    ``mode`` ("bilinear" or "nearest"); labels are int64 in 0..9, in the shipped order.
    """
    images, labels = _digits_npz()
    x = resize(images.astype(np.float64) / 16.0, size, mode)
    x = np.clip(x, 0.0, 1.0).astype(np.float32)[:, None, :, :]
    return np.ascontiguousarray(x), labels.copy()


def split(
    x: Array, y: Array, val_fraction: float = 0.2, seed: int = 0
) -> tuple[Array, Array, Array, Array]:
    """Deterministic stratified split into ``(x_train, y_train, x_val, y_val)``.

    Each class contributes ``round(val_fraction * count)`` samples to validation (at least one and
    at most count - 1 when the class has two or more), chosen by a numpy ``default_rng(seed)``;
    both parts keep the original order. The same inputs and seed always give the same split.
    """
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} != {len(y)}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    rng = np.random.default_rng(seed)
    is_val = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        k = int(round(val_fraction * len(idx)))
        if len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        is_val[rng.permutation(idx)[:k]] = True
    return x[~is_val], y[~is_val], x[is_val], y[is_val]
