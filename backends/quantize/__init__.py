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

Modules: ``calibration`` (the data), ``int8`` (quantisation, the report, the compile step).
"""

from graphcnn.backends.quantize.calibration import (
    CLI_MAX_SAMPLES,
    EVAL_FRACTION,
    IMAGE_SUFFIXES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    SYNTHETIC_HELD_OUT,
    SYNTHETIC_SAMPLES,
    QuantizeError,
    load_calibration,
    split_samples,
    synthetic_calibration,
)
from graphcnn.backends.quantize.int8 import (
    ACTIVATION_TYPES,
    METHODS,
    accuracy_report,
    emit_int8,
    format_report,
    int8_path,
    quantize_int8,
)

__all__ = [
    "ACTIVATION_TYPES",
    "CLI_MAX_SAMPLES",
    "EVAL_FRACTION",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_SUFFIXES",
    "METHODS",
    "SYNTHETIC_HELD_OUT",
    "SYNTHETIC_SAMPLES",
    "QuantizeError",
    "accuracy_report",
    "emit_int8",
    "format_report",
    "int8_path",
    "load_calibration",
    "quantize_int8",
    "split_samples",
    "synthetic_calibration",
]
