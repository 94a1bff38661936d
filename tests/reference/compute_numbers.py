"""Regenerate ``paper_numbers.py`` from the reference modules in ``paper_models.py``.

Run from the repository root with either of::

    .venv/bin/python -m tests.reference.compute_numbers
    .venv/bin/python tests/reference/compute_numbers.py

Counting conventions:

* ``params``: trainable parameters (``requires_grad``) outside the model's
  ``training_only_modules``; BN running statistics are buffers, not counted.
* ``macs``: multiply-accumulates of ``nn.Conv2d`` and ``nn.Linear`` layers for
  one image in eval mode, measured with forward hooks:
  conv = Cout*Hout*Wout*(Cin/groups)*kh*kw, linear = in*out.  Biases, BN,
  activations, pooling, elementwise ops and SE rescaling are not counted.
* ``training_only_*``: what the ``training_only_modules`` (GoogLeNet's
  auxiliary classifiers) add; their MACs are the train-mode minus eval-mode
  forward MACs (BN kept in eval mode so that batch 1 works).

Every inference MAC total is cross-checked against fvcore's
``FlopCountAnalysis`` (conv + linear/matmul operators only), and the output
shapes in each model's ``expected_shapes`` are asserted.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

if __package__:
    from .paper_models import REFERENCE_MODELS, ReferenceModel
else:  # executed as a plain script
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from paper_models import REFERENCE_MODELS, ReferenceModel  # type: ignore[no-redef]

OUTPUT = Path(__file__).with_name("paper_numbers.py")

#: fvcore operator names that correspond to conv / linear MACs.
_FVCORE_MAC_OPS = frozenset({"conv", "linear", "addmm", "matmul", "bmm", "einsum"})


def _training_only_prefixes(model: nn.Module) -> tuple[str, ...]:
    return tuple(getattr(model, "training_only_modules", ()))


def _is_under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def count_params(model: nn.Module) -> tuple[int, int]:
    """Return (inference params, training-only params)."""
    prefixes = _training_only_prefixes(model)
    inference = training_only = 0
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if _is_under(name, prefixes):
            training_only += p.numel()
        else:
            inference += p.numel()
    return inference, training_only


def _layer_macs(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> int:
    batch = output.shape[0]
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        per_output = (module.in_channels // module.groups) * kh * kw
        return output.numel() // batch * per_output
    if isinstance(module, nn.Linear):
        return output.numel() // batch * module.in_features
    raise TypeError(f"unexpected module {type(module).__name__}")


def count_macs(
    model: nn.Module, input_shape: tuple[int, int, int], *, training: bool
) -> dict[str, int]:
    """Forward one image and return MACs per conv/linear module name."""
    unsupported = (
        nn.Conv1d,
        nn.Conv3d,
        nn.ConvTranspose1d,
        nn.ConvTranspose2d,
        nn.ConvTranspose3d,
        nn.Bilinear,
    )
    for name, m in model.named_modules():
        if isinstance(m, unsupported):
            raise TypeError(f"{name}: {type(m).__name__} is not handled by the MAC counter")
    per_layer: dict[str, int] = {}
    handles: list[RemovableHandle] = []

    def make_hook(name: str) -> Any:
        def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            per_layer[name] = per_layer.get(name, 0) + _layer_macs(module, inputs, output)

        return hook

    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            handles.append(m.register_forward_hook(make_hook(name)))
    model.train(training)
    if training:  # batch-1 BN statistics are meaningless (and fail on 1x1 maps)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
        model.eval()
    return per_layer


def output_shapes(
    model: nn.Module, input_shape: tuple[int, int, int], names: list[str]
) -> dict[str, tuple[int, ...]]:
    """Eval-mode (C, H, W) output shapes of the named submodules."""
    modules = dict(model.named_modules())
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    for name in names:

        def hook(
            module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor, name: str = name
        ) -> None:
            shapes[name] = tuple(output.shape[1:])

        handles.append(modules[name].register_forward_hook(hook))
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
    return shapes


def fvcore_macs(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """Conv + linear MACs according to fvcore (which calls them 'flops')."""
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    model.eval()
    with warnings.catch_warnings():  # fvcore traces with the (deprecated) torch.jit
        warnings.simplefilter("ignore", FutureWarning)
        from fvcore.nn import FlopCountAnalysis

        analysis = FlopCountAnalysis(model, torch.zeros(1, *input_shape))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        by_op = analysis.by_operator()
    return sum(v for op, v in by_op.items() if op in _FVCORE_MAC_OPS)


def compute_entry(name: str, spec: ReferenceModel, *, cross_check: bool = True) -> dict[str, Any]:
    torch.manual_seed(0)
    model = spec.build()
    prefixes = _training_only_prefixes(model)

    params, training_only_params = count_params(model)

    eval_layers = count_macs(model, spec.input, training=False)
    train_layers = count_macs(model, spec.input, training=True)
    macs = sum(eval_layers.values())
    training_only_macs = sum(train_layers.values()) - macs
    assert not any(_is_under(n, prefixes) for n in eval_layers), (
        f"{name}: training-only layer ran in eval"
    )
    assert training_only_macs == sum(
        v for n, v in train_layers.items() if _is_under(n, prefixes)
    ), name

    if spec.expected_shapes:
        got = output_shapes(model, spec.input, list(spec.expected_shapes))
        for module_name, expected in spec.expected_shapes.items():
            assert got[module_name] == expected, (
                f"{name}.{module_name}: {got[module_name]} != {expected}"
            )

    if cross_check:
        fv = fvcore_macs(model, spec.input)
        assert fv == macs, f"{name}: fvcore {fv} != hooks {macs}"

    return {
        "input": spec.input,
        "params": params,
        "macs": macs,
        "training_only_params": training_only_params,
        "training_only_macs": training_only_macs,
        "published": spec.published,
        "notes": spec.notes,
    }


def compute_all(*, cross_check: bool = True) -> dict[str, dict[str, Any]]:
    return {
        name: compute_entry(name, spec, cross_check=cross_check)
        for name, spec in REFERENCE_MODELS.items()
    }


HEADER = '''"""Exact parameter and MAC counts of the reference models in ``paper_models.py``.

GENERATED by ``tests/reference/compute_numbers.py`` -- do not edit by hand; rerun::

    .venv/bin/python -m tests.reference.compute_numbers

params: trainable parameters (incl. BN gamma/beta, excl. running stats) at
inference. macs: conv + linear multiply-accumulates for one image
(conv: Cout*Hout*Wout*Cin/groups*kh*kw, linear: in*out; no bias, BN,
activation, pooling or elementwise ops). training_only_*: auxiliary heads
used only in training, not included in params/macs. Inference MACs are
cross-checked against fvcore's FlopCountAnalysis (conv + linear ops).
"""

from typing import Any

'''


def _wrap_string(text: str, indent: str, width: int = 96) -> list[str]:
    """Split ``text`` into double-quoted literals (implicitly concatenated)."""
    chunks: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if current and len(indent) + len(json.dumps(candidate + " ")) > width:
            chunks.append(current + " ")
            current = word
        else:
            current = candidate
    chunks.append(current)
    return [indent + json.dumps(chunk) for chunk in chunks]


def _render_value(value: Any, indent: str) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, (int, str, tuple)):
        raise TypeError(f"cannot render {value!r}")
    if isinstance(value, int):
        return [f"{value:_}"]
    if isinstance(value, tuple):
        return [repr(value)]
    lines = _wrap_string(value, indent + "    ")
    return ["(", *lines, indent + ")"] if len(lines) > 1 else [lines[0].strip()]


def render(numbers: dict[str, dict[str, Any]]) -> str:
    out = [HEADER.rstrip("\n"), "", "PAPER_MODELS: dict[str, dict[str, Any]] = {"]
    for name, entry in numbers.items():
        out.append(f"    {json.dumps(name)}: {{")
        for key, value in entry.items():
            first, *rest = _render_value(value, " " * 8)
            out.append(f"        {json.dumps(key)}: {first}")
            out.extend(rest)
            out[-1] += ","
        out.append("    },")
    out.append("}")
    return "\n".join(out) + "\n"


def main() -> None:
    numbers = compute_all()
    OUTPUT.write_text(render(numbers))
    width = max(map(len, numbers))
    for name, n in numbers.items():
        extra = (
            f"  (+{n['training_only_params']:,} params / "
            f"+{n['training_only_macs']:,} MACs training-only)"
        )
        print(
            f"{name:<{width}}  params {n['params']:>12,}  MACs {n['macs']:>15,}"
            + (extra if n["training_only_params"] else "")
        )
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
