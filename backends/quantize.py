"""Static INT8 quantisation of compiled ONNX models with ONNX Runtime's tools (QDQ format).

:func:`quantize_int8` turns an FP32 model (from :func:`graphcnn.backends.to_onnx.to_onnx`) into a
statically quantised QDQ model: every Conv/Gemm weight is int8, symmetric and per output channel
(the weight ``DequantizeLinear`` has one scale per output channel, ``axis=0``); biases are int32;
activations are quantised with ranges measured on calibration samples. ONNX Runtime's CPU
provider fuses ``DequantizeLinear -> Conv -> QuantizeLinear`` into ``QLinearConv`` (and Gemm into
``QGemm``, Add into ``QLinearAdd``, ...), so the whole network runs in 8-bit integer arithmetic.

Activation type: **uint8** (asymmetric) by default, i.e. the "U8S8" scheme: uint8 activations
times int8 weights. On x86 that is the form the integer dot-product instructions take
(``vpmaddubsw`` on AVX2, ``vpdpbusd`` on AVX512-VNNI / AVX-VNNI multiply *unsigned* by *signed*
bytes), and it is what ONNX Runtime's MLAS kernels and its own quantisation guide use on x86; int8
activations ("S8S8") need an extra shift to fit those instructions (and are what ARM and
TensorRT prefer). Asymmetric uint8 also spends the whole 8-bit range on post-ReLU activations,
which are never negative. Measured with ONNX Runtime 1.31 on an AVX512-VNNI x86 CPU (ResNet-50):
with uint8 activations every Conv, Add and the pooling/Gemm fuse (53 QLinearConv, 16 QLinearAdd)
and the model runs ~3x faster than FP32; with int8 activations 20 of the 53 Convs and the Adds
stay in float between Q/DQ pairs and it is only ~1.2-1.4x faster. ``activation_type="int8"``
(symmetric, zero point 0) is for TensorRT and ARM. ``reduce_range`` (7-bit weights) is off: it
only helps on x86 CPUs without VNNI, where ``vpmaddubsw`` can saturate its 16-bit sums; it and
per-tensor weights did not measurably change the speed, so weights stay per-channel (accuracy).

Calibration (:func:`load_calibration`): a folder of images (PNG/JPEG/..., read with Pillow), an
``.npz`` of model-ready inputs, or, when none is given, synthetic images
(:func:`synthetic_calibration`). Synthetic calibration is a fallback only: quantisation ranges
are fitted to the activations of the calibration data, and smooth random images do not produce
the activation statistics of real inputs, so the ranges can clip real activations (or waste
resolution); the accuracy report on synthetic held-out samples then measures fidelity on
synthetic inputs, not accuracy on real data. Calibrate with a few hundred real, preprocessed
inputs for a model you deploy.

:func:`accuracy_report` compares the INT8 model with the FP32 one on samples that were *not*
used for calibration: top-1 agreement and the maximum / mean absolute error of the logits.
:func:`emit_int8` is what ``graphcnn compile MODEL --target onnx --int8`` runs: OUTPUT is the
FP32 model and the INT8 model is written beside it as ``<stem>.int8.onnx``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphcnn.errors import GraphcnnError

if TYPE_CHECKING:
    import numpy as np
    import onnx

    Array = np.ndarray[Any, Any]

METHODS = ("minmax", "entropy", "percentile")
ACTIVATION_TYPES = ("uint8", "int8")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SYNTHETIC_SAMPLES = 64
"""Synthetic calibration samples when no data is given (plus separate held-out ones)."""
SYNTHETIC_HELD_OUT = 16
CLI_MAX_SAMPLES = 256
"""At most this many samples are read from a --calibration folder or .npz (a seeded subset)."""
EVAL_FRACTION = 0.2
"""Share of real calibration samples held out for the accuracy report (not calibrated on)."""
_LARGE_MODEL = 1 << 30  # above this, pre-processing writes its weights as external data


class QuantizeError(GraphcnnError):
    """A model cannot be quantised, or calibration data is missing or does not fit it."""


def int8_path(fp32_path: str | Path) -> Path:
    """Where the INT8 twin of ``model.onnx`` goes: ``model.int8.onnx`` beside it."""
    p = Path(fp32_path)
    return p.with_name(f"{p.stem}.int8{p.suffix or '.onnx'}")


# --------------------------------------------------------------------------- calibration data


def _chw(input_shape: Sequence[Any]) -> tuple[int, int, int]:
    dims = list(input_shape)[-3:]
    if len(dims) != 3 or not all(isinstance(d, int) and d > 0 for d in dims):
        raise QuantizeError(
            f"calibration needs a model input of static shape [N, C, H, W]; got {list(input_shape)}"
        )
    return dims[0], dims[1], dims[2]


def _resize_matrix(n_in: int, n_out: int) -> Array:
    """[n_out, n_in] linear interpolation weights (half-pixel centres, edges clamped)."""
    import numpy as np

    coord = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0, n_in - 1)
    lo = np.floor(coord).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = coord - lo
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), lo), 1.0 - frac)
    np.add.at(m, (np.arange(n_out), hi), frac)
    return m


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

    c, h, w = _chw(input_shape)
    if n < 1:
        raise QuantizeError(f"need at least one calibration sample, got n={n}")
    rng = np.random.default_rng(seed)
    out = np.empty((n, c, h, w), dtype=np.float32)
    for i in range(n):
        grid = int(rng.integers(2, 9))
        coarse = rng.standard_normal((c, grid, grid)) + rng.standard_normal((1, grid, grid))
        img = _resize_matrix(grid, h) @ coarse @ _resize_matrix(grid, w).T
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


def _load_images(folder: Path, c: int, h: int, w: int, n: int | None, seed: int) -> Array:
    import numpy as np

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
            with Image.open(f) as opened:
                im = opened.convert("L" if c == 1 else "RGB")
            # resize (keeping the aspect ratio) to cover H x W, then crop the centre
            scale = max(h / im.height, w / im.width)
            nw, nh = max(w, round(im.width * scale)), max(h, round(im.height * scale))
            im = im.resize((nw, nh), Image.Resampling.BILINEAR)
            left, top = (nw - w) // 2, (nh - h) // 2
            a = np.asarray(im.crop((left, top, left + w, top + h)), dtype=np.float32)
        except (OSError, ValueError) as e:
            raise QuantizeError(f"cannot read calibration image {f}: {e}") from None
        out[i] = (a[None] if c == 1 else a.transpose(2, 0, 1)) / 255.0
    return _normalise(out)


def _load_npz(path: Path, c: int, h: int, w: int, n: int | None, seed: int) -> Array:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.files)
            if not keys:
                raise QuantizeError(f"{path} holds no arrays")
            key = next((k for k in ("x", "images") if k in keys), keys[0])
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
    if not p.is_file():
        raise QuantizeError(f"calibration data {str(p)!r}: no such file or folder")
    if p.suffix.lower() != ".npz":
        raise QuantizeError(
            f"calibration data {p.name} is neither a folder of images nor an .npz file"
        )
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


# --------------------------------------------------------------------------- quantisation


def _input_info(model_path: Path) -> tuple[str, list[Any]]:
    import onnx

    m = onnx.load_model(str(model_path), load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    inputs = [i for i in m.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise QuantizeError(f"expected a model with one input, {model_path.name} has {len(inputs)}")
    dims = [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
        for d in inputs[0].type.tensor_type.shape.dim
    ]
    return inputs[0].name, dims


def _batches(x: Array, batch: Any, default: int) -> list[Array]:
    """Chunks of ``x``; a static batch size gets full chunks (the last one wraps around)."""
    import numpy as np

    if isinstance(batch, int) and batch > 0:
        pad = (-len(x)) % batch
        if pad:
            x = np.concatenate([x, x[np.arange(pad) % len(x)]])
        size = batch
    else:
        size = default
    return [np.ascontiguousarray(x[i : i + size]) for i in range(0, len(x), size)]


class _Reader:
    """An onnxruntime ``CalibrationDataReader`` over numpy batches."""

    def __init__(self, name: str, batches: list[Array]) -> None:
        self.name = name
        self.batches = batches
        self.i = 0

    def get_next(self) -> dict[str, Array] | None:
        if self.i >= len(self.batches):
            return None
        self.i += 1
        return {self.name: self.batches[self.i - 1]}

    def rewind(self) -> None:
        self.i = 0

    def __len__(self) -> int:
        return len(self.batches)


def quantize_int8(
    model: str | Path | onnx.ModelProto,
    out_path: str | Path,
    calibration: Array,
    per_channel: bool = True,
    method: str = "minmax",
    activation_type: str = "uint8",
    reduce_range: bool = False,
    batch_size: int = 8,
) -> Path:
    """Quantise an FP32 ONNX model to a static INT8 QDQ model at ``out_path``; returns it.

    ``calibration``: inputs ``[N, C, H, W]`` (see :func:`load_calibration`). ``method``: how
    activation ranges are chosen from them: "minmax" (full observed range), "entropy" (KL
    divergence, clips outliers) or "percentile" (99.999th percentile of |x|). Weights are int8,
    symmetric, per output channel unless ``per_channel=False``; ``activation_type`` "uint8"
    (asymmetric; fastest on x86, see the module docstring) or "int8" (symmetric).

    The model is pre-processed first (``quant_pre_process``: ONNX shape inference and ONNX
    Runtime's basic graph optimisations, e.g. BatchNorm folded into Conv). ONNX Runtime's
    symbolic shape inference is skipped: graphcnn models have static shapes but the batch, which
    ONNX shape inference handles, and it would import torch. Everything is written to temporary
    files in the target folder and renamed into place, so ``out_path`` is never partial.
    """
    import numpy as np
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in METHODS:
        raise QuantizeError(f"unknown calibration method {method!r}", f"choose one of {METHODS}")
    if activation_type not in ACTIVATION_TYPES:
        raise QuantizeError(
            f"unknown activation type {activation_type!r}", f"choose one of {ACTIVATION_TYPES}"
        )
    calibration = np.asarray(calibration)
    if calibration.ndim != 4 or len(calibration) == 0:
        raise QuantizeError(
            f"calibration must be a non-empty [N, C, H, W] array, got shape "
            f"{list(calibration.shape)}"
        )
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as tmp_dir:
        tmp = Path(tmp_dir)
        if isinstance(model, (str, Path)):
            src = Path(model)
            if not src.is_file():
                raise QuantizeError(f"no such model file: {str(src)!r}")
        else:
            from graphcnn.backends.to_onnx import save

            src = tmp / "fp32.onnx"
            save(model, src)
        name, dims = _input_info(src)
        if len(dims) != 4 or list(calibration.shape[1:]) != dims[1:]:
            raise QuantizeError(
                f"calibration samples have shape {list(calibration.shape[1:])} (per sample), "
                f"the model input {name!r} is [{', '.join(str(d) for d in dims)}]"
            )
        large = sum(f.stat().st_size for f in src.parent.glob(src.name + "*")) > _LARGE_MODEL
        pre = tmp / "pre.onnx"
        try:
            quant_pre_process(
                str(src),
                str(pre),
                skip_symbolic_shape=True,
                save_as_external_data=large,
                all_tensors_to_one_file=True,
                external_data_location="pre.onnx.data",
            )
        except Exception as e:  # noqa: BLE001 - ORT and onnx raise many kinds
            raise QuantizeError(f"pre-processing {src.name} for quantisation failed: {e}") from None
        reader = _Reader(name, _batches(calibration, dims[0], batch_size))
        qtype = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
        cal = {
            "minmax": CalibrationMethod.MinMax,
            "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile,
        }
        result = tmp / "int8.onnx"
        try:
            quantize_static(
                str(pre),
                str(result),
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=per_channel,
                reduce_range=reduce_range,
                activation_type=qtype[activation_type],
                weight_type=QuantType.QInt8,
                calibrate_method=cal[method],
                extra_options={"ActivationSymmetric": activation_type == "int8"},
            )
        except Exception as e:  # noqa: BLE001
            raise QuantizeError(f"quantising {src.name} failed: {type(e).__name__}: {e}") from None
        os.replace(result, out)
    return out


# --------------------------------------------------------------------------- accuracy report


def _logits(model: str | Path | onnx.ModelProto, x: Array, threads: int | None) -> Array:
    import numpy as np
    from graphcnn.backends.ort_engine import OrtEngine

    engine = OrtEngine(model, device="cpu", threads=threads)
    batch = engine.input_shape[0] if engine.input_shape else None
    outs = [engine.run(b)[0] for b in _batches(x, batch, 32)]
    y = np.concatenate(outs)[: len(x)]
    return y.reshape(len(y), -1).astype(np.float64)


def accuracy_report(
    fp32_model: str | Path | onnx.ModelProto,
    int8_model: str | Path | onnx.ModelProto,
    samples: Array,
    threads: int | None = None,
) -> dict[str, Any]:
    """Compare the two models' first output (the logits) on ``samples`` with ONNX Runtime CPU.

    Pass samples that were NOT used for calibration. Returns ``n``, ``top1_agreement``
    (fraction of samples whose arg-max class is the same), ``mismatches``, ``max_abs_error`` and
    ``mean_abs_error`` of the logits, and ``max_abs_fp32`` (the largest |FP32 logit|, for scale).
    """
    import numpy as np

    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if samples.ndim != 4 or len(samples) == 0:
        raise QuantizeError(f"need a non-empty [N, C, H, W] array, got {list(samples.shape)}")
    a = _logits(fp32_model, samples, threads)
    b = _logits(int8_model, samples, threads)
    err = np.abs(a - b)
    agree = a.argmax(axis=1) == b.argmax(axis=1)
    return {
        "n": int(len(samples)),
        "top1_agreement": float(agree.mean()),
        "mismatches": int((~agree).sum()),
        "max_abs_error": float(err.max()),
        "mean_abs_error": float(err.mean()),
        "max_abs_fp32": float(np.abs(a).max()),
    }


def format_report(report: dict[str, Any]) -> str:
    """One line: agreement %, logit errors, number of held-out samples."""
    return (
        f"top-1 agreement {100 * report['top1_agreement']:.2f}% "
        f"({report['n'] - report['mismatches']}/{report['n']} held-out samples), "
        f"logit error max {report['max_abs_error']:.4g} mean {report['mean_abs_error']:.4g} "
        f"(largest |fp32 logit| {report['max_abs_fp32']:.4g})"
    )


def emit_int8(
    fp32_path: str | Path,
    calibration: str | Path | None = None,
    echo: Callable[[str], Any] = print,
    method: str = "minmax",
    seed: int = 0,
) -> tuple[Path, dict[str, Any]]:
    """What ``graphcnn compile --int8`` does after writing the FP32 model ``fp32_path``.

    Reads the calibration data (at most :data:`CLI_MAX_SAMPLES`; synthetic without a path),
    holds out 20% of real data (synthetic: 16 separately generated samples) for the report,
    writes the INT8 model to :func:`int8_path` and reports through ``echo``.
    """
    fp32 = Path(fp32_path)
    _, dims = _input_info(fp32)
    if calibration is None:
        calib = synthetic_calibration(dims, SYNTHETIC_SAMPLES, seed)
        held = synthetic_calibration(dims, SYNTHETIC_HELD_OUT, seed + 1)
        source = f"synthetic ({SYNTHETIC_SAMPLES} smooth random images, seed {seed}; a fallback"
        source += " only: pass --calibration with real inputs)"
    else:
        samples = load_calibration(calibration, dims, CLI_MAX_SAMPLES, seed)
        calib, held = split_samples(samples, EVAL_FRACTION, seed)
        source = f"{calibration} ({len(samples)} samples)"
    out = quantize_int8(fp32, int8_path(fp32), calib, per_channel=True, method=method)
    report = accuracy_report(fp32, out, held)
    report.update(calibration_source=source, calibration_samples=int(len(calib)), method=method)
    size = out.stat().st_size
    echo(
        f"INT8 (QDQ: int8 per-channel weights, uint8 activations, {method} calibration on "
        f"{len(calib)} samples)"
    )
    echo(f"  calibration: {source}")
    echo(f"  vs FP32: {format_report(report)}")
    echo(f"wrote {out} ({size / 1e6:.2f} MB, {fp32.stat().st_size / max(size, 1):.1f}x smaller)")
    return out, report
