"""INT8 quantisation with ONNX Runtime's tools (QDQ), and how far the result is from FP32.

:func:`quantize_int8` writes the quantised model, :func:`accuracy_report` compares it with the
FP32 one on held-out samples, :func:`emit_int8` is the ``graphcnn compile --int8`` step (see the
package docstring for the scheme and why).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphcnn.backends.quantize.calibration import (
    CLI_MAX_SAMPLES,
    EVAL_FRACTION,
    SYNTHETIC_HELD_OUT,
    SYNTHETIC_SAMPLES,
    QuantizeError,
    load_calibration,
    split_samples,
    synthetic_calibration,
)

if TYPE_CHECKING:
    import numpy as np
    import onnx

    Array = np.ndarray[Any, Any]

METHODS = ("minmax", "entropy", "percentile")
ACTIVATION_TYPES = ("uint8", "int8")
_LARGE_MODEL = 1 << 30  # above this, pre-processing writes its weights as external data


def int8_path(fp32_path: str | Path) -> Path:
    """Where the INT8 twin of ``model.onnx`` goes: ``model.int8.onnx`` beside it."""
    p = Path(fp32_path)
    return p.with_name(f"{p.stem}.int8{p.suffix or '.onnx'}")


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
            from graphcnn.backends.to_onnx.files import save

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
