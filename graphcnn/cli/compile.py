"""``graphcnn compile``: a spec lowered for a target of ``graphcnn.backends.TARGETS``."""

from __future__ import annotations

from typing import Any

import click

from graphcnn.backends import TARGETS, EmitOptions, targets_reading
from graphcnn.cli.options import load_model, pipeline_options, run_passes, spec_options

TARGETED = {
    "int8": "--int8",
    "fp16": "--fp16",
    "batch_range": "--batch-range",
    "workspace": "--workspace",
    "timing_cache": "--timing-cache",
}
"""Options refused (in this order) unless the target reads them: their flags."""


def _parse_batch_range(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    from graphcnn.backends.to_tensorrt import TensorRTError, parse_batch_range

    try:
        return None if value is None else parse_batch_range(value)
    except TensorRTError as e:
        raise click.BadParameter(e.message + (f" ({e.hint})" if e.hint else "")) from None


def _parse_bytes(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    from graphcnn.backends.to_tensorrt import TensorRTError, parse_size

    try:
        return None if value is None else parse_size(value)
    except TensorRTError as e:
        raise click.BadParameter(e.message + (f" ({e.hint})" if e.hint else "")) from None


def _check_options(target: str, o: EmitOptions) -> None:
    """Refuse options the target does not read, and combinations that make no sense."""
    for name, flag in TARGETED.items():
        readers = targets_reading(name)
        if getattr(o, name) and target not in readers:
            raise click.BadParameter(
                f"{flag} needs --target {' or '.join(readers)}", param_hint=flag
            )
    if target == "tensorrt" and o.fp16 and o.int8:
        raise click.BadParameter(
            "--fp16 and --int8 are exclusive (an INT8 engine falls back to FP16 already)",
            param_hint="--fp16",
        )
    if target == "tensorrt" and o.static_batch is not None:
        b = o.static_batch
        raise click.BadParameter(
            f"use --batch-range {b}:{b}:{b} for a fixed batch", param_hint="--static-batch"
        )
    if o.calibration is not None and not o.int8:
        raise click.BadParameter("--calibration is only used with --int8", param_hint="--int8")


@click.command("compile")
@spec_options
@pipeline_options
@click.option(
    "--target",
    "-t",
    type=click.Choice(list(TARGETS)),
    default="torch",
    show_default=True,
    help="What to emit. " + "; ".join(f"{t.name}: {t.help}" for t in TARGETS.values()) + ".",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    required=True,
    help="File to write (e.g. model.py). Weights go beside it (model.<sha8>.safetensors).",
)
@click.option(
    "--weights",
    "weights_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Initial weights: a PyTorch .pt/.pth state dict or .safetensors, checked "
    "key by key against the model (a --pipeline that removes the training-only parts, e.g. "
    "inference, does not need their keys). Default: an .onnx input's own weights, else seeded "
    "PyTorch-style initialisation.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seed of the default initialisation (ignored with --weights or an .onnx input).",
)
@click.option(
    "--class-name",
    default="Model",
    show_default=True,
    help="Name of the generated nn.Module class.",
)
@click.option(
    "--opset",
    type=click.Choice(["17", "18", "19", "20", "21"]),
    default="17",
    show_default=True,
    callback=lambda c, p, v: int(v),
    help="ONNX opset (onnx target).",
)
@click.option(
    "--static-batch",
    type=click.IntRange(min=1),
    default=None,
    help="Fix the ONNX batch dimension (default: dynamic 'N').",
)
@click.option(
    "--int8",
    is_flag=True,
    help="Also write a statically quantised INT8 model (QDQ, per-channel int8 weights) as "
    "OUTPUT's stem + .int8.onnx and report its agreement with the FP32 OUTPUT (onnx target). "
    "tensorrt target: an INT8 engine calibrated on --calibration.",
)
@click.option(
    "--calibration",
    type=click.Path(exists=True),
    default=None,
    metavar="DIR_OR_NPZ",
    help="INT8 calibration data: a folder of images or an .npz of model-ready inputs; 20% "
    "is held out for the report. Default: synthetic images (a fallback only).",
)
@click.option(
    "--fp16",
    is_flag=True,
    help="tensorrt target: let TensorRT run layers in FP16 (inputs and outputs stay FP32).",
)
@click.option(
    "--batch-range",
    callback=_parse_batch_range,
    default=None,
    metavar="MIN:OPT:MAX",
    help="tensorrt target: the batch sizes the engine accepts, tuned for OPT, e.g. 1:8:32. "
    "Default: B:B:B with --batch B, else 1:1:1.",
)
@click.option(
    "--workspace",
    callback=_parse_bytes,
    default=None,
    metavar="SIZE",
    help="tensorrt target: cap on the builder's scratch GPU memory, e.g. 1GiB or 512MiB.",
)
@click.option(
    "--timing-cache",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="tensorrt target: TensorRT timing cache, read before and updated after the build "
    "(faster rebuilds).",
)
def compile_cmd(
    spec: str,
    network: str | None,
    sets: dict[str, str],
    input_shape: tuple[int, ...] | None,
    batch: int | None,
    target: str,
    output: str,
    weights_file: str | None,
    seed: int,
    pipeline: str,
    report: bool,
    verify_passes: bool,
    **target_options: Any,
) -> None:
    """Compile a spec (or an .onnx model, with its weights) for a backend; write atomically.

    \b
    --target torch: OUTPUT is Python (imports only torch and safetensors) and
      OUTPUT's stem + .<sha256[:8]>.safetensors holds the weights; `Model()`
      builds the module, checks their sha256 and loads them.
    --target onnx: OUTPUT is an ONNX model (the inference graph, weights inside;
      above 2 GB they go to OUTPUT.data), checked with onnx.checker.
    --target tensorrt: OUTPUT is a TensorRT engine built from that ONNX model
      (dynamic batch, one profile from --batch-range) and OUTPUT.json its
      manifest (IR/spec hashes, TensorRT, CUDA, GPU, precision, profiles);
      identical builds come from the engine cache ($GRAPHCNN_TRT_CACHE).
    """
    from pathlib import Path

    from graphcnn.api import load_weights
    from graphcnn.weights import init_weights

    options = EmitOptions(pipeline=pipeline, **target_options)
    _check_options(target, options)
    if options.int8 and options.calibration is not None:
        from graphcnn.backends.quantize.calibration import check_calibration_path

        check_calibration_path(options.calibration)  # before anything is written
    g, imported = load_model(spec, network, sets, input_shape, batch)
    chosen = TARGETS[target]
    chosen.preflight()  # before any work: names what is missing (exit 2)
    out = Path(output)
    if target == "torch" and out.suffix == ".safetensors":
        raise click.BadParameter(
            "the torch target writes Python source to OUTPUT and the weights beside it as "
            "<stem>.<sha8>.safetensors; give OUTPUT a .py name",
            param_hint="--output",
        )
    if not options.class_name.isidentifier():
        raise click.BadParameter(
            f"{options.class_name!r} is not a Python identifier", param_hint="--class-name"
        )
    if weights_file:
        fitted = load_weights(weights_file, g, pipeline, seed)
        if fitted.note:  # training-only keys the checkpoint lacks, which the pipeline removes
            click.echo(f"note: {fitted.note}", err=True)
        weights, origin = fitted.weights, weights_file
    elif imported is not None:
        weights, origin = imported, f"{spec} (its initializers)"
    else:
        weights, origin = init_weights(g, seed), f"seeded PyTorch-style init, seed {seed}"
    g, weights = run_passes(g, weights, pipeline, report, verify_passes)
    from dataclasses import replace

    chosen.emitter()(g, weights, out, replace(options, origin=origin), click.echo)
