"""Survey: do the CNNs users have import with ``graphcnn import`` (backends/from_onnx/)?

Every model of the list (torchvision's convolutional classifiers, the timm families of the
issue, and a few transformers that are expected to be refused) is built with random weights
(seeded; batch-norm statistics and affine parameters are randomized too, so that a folded
batch norm leaves a visible bias, and so are all-zero or constant tensors: zero-initialized
biases, which the dynamo exporter's optimizer drops, and layer norms' ones, which it shares),
put in eval mode and exported at a small input (batch 1) with torch's two exporters:

- ``legacy``: ``torch.onnx.export(..., dynamo=False)``, opset 17, a dynamic batch, the default
  ``training=EVAL`` (batch norms after a conv are folded into it);
- ``dynamo``: ``torch.onnx.export(..., dynamo=True)``, opset 18, with its default optimizer
  (which folds them as well).

``--keep-bn`` exports with ``training=PRESERVE`` / ``optimize=False`` instead: no folding.

Each export is imported with :func:`graphcnn.backends.from_onnx.from_onnx` and checked:

- params: the imported graph's parameter count against torch's ``sum(p.numel())``, less the
  parameters the exporter folded away: a batch norm of ``C`` channels whose weight is not among
  the imported weights counts ``-2C``, and a bias-less torch conv whose ``<name>.bias`` is
  among them ``+C`` (with ``--keep-bn``: exactly torch's count);
- MACs: :func:`graphcnn.cost.profile` against an independent count on the torch model: forward
  hooks on every ``nn.Conv2d`` (``Cout*Hout*Wout*Cin/groups*kh*kw``) and ``nn.Linear``
  (``in*out`` per row), the convention of ``graphcnn.cost.CONVENTION``;
- outputs: ONNX Runtime on the original export against ONNX Runtime on ``to_onnx`` of the
  imported graph and against torch, ``max|a - b| / max|b|`` (1e-4 passes).

A refused model prints the importer's message. Exports are cached in ``--cache`` (default
``$TMPDIR/graphcnn_onnx_families``), keyed by model, exporter, mode and input size.

Examples::

    .venv/bin/python tools/onnx_families.py                       # every model, both exporters
    .venv/bin/python tools/onnx_families.py --models resnet18,tm:dla34 --exporter legacy
    .venv/bin/python tools/onnx_families.py --json /tmp/families.json

Model names: torchvision's (``resnet18``), timm's prefixed ``tm:`` (``tm:dla34``), torchvision's
segmentation models prefixed ``seg:`` (``seg:deeplabv3_resnet50``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TOL = 1e-4

TORCHVISION = [
    "alexnet", "vgg11", "vgg11_bn", "resnet18", "resnet50", "resnext50_32x4d",
    "wide_resnet50_2", "densenet121", "googlenet", "inception_v3", "squeezenet1_0",
    "squeezenet1_1", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "mnasnet0_5",
    "mnasnet1_0", "shufflenet_v2_x0_5", "efficientnet_b0", "efficientnet_b3",
    "efficientnet_v2_s", "regnet_x_400mf", "regnet_y_400mf", "convnext_tiny",
]  # fmt: skip
TIMM = [
    "inception_v3", "inception_v4", "inception_resnet_v2", "resnet50d", "seresnext26d_32x4d",
    "densenet121", "mobilenetv3_large_100", "mobilenetv2_100", "efficientnet_b0",
    "tf_efficientnet_b0", "nasnetalarge", "pnasnet5large", "regnetx_002", "regnety_002",
    "convnext_atto", "ghostnet_100", "cspresnet50", "cspdarknet53", "hrnet_w18_small", "dla34",
    "dpn68", "res2net50_26w_4s", "rexnet_100", "selecsls42b",
]  # fmt: skip
SEGMENTATION = [
    "fcn_resnet50", "fcn_resnet101", "deeplabv3_resnet50", "deeplabv3_resnet101",
    "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large",
]  # fmt: skip
"""torchvision's semantic segmentation models (``seg:NAME``): dilated backbones, ASPP, bilinear
upsampling to the input's size; their ``out`` tensor (no auxiliary head: ``aux_loss`` off)."""
TRANSFORMERS = ["vit_b_16", "swin_t", "maxvit_t", "tm:vit_tiny_patch16_224"]
"""Expected to be refused: attention (MatMul between activations, Softmax over tokens)."""
MODELS = TORCHVISION + [f"tm:{m}" for m in TIMM] + [f"seg:{m}" for m in SEGMENTATION] + TRANSFORMERS

SIZE = {
    "alexnet": 224, **{f"vgg{d}{bn}": 224 for d in (11, 13, 16, 19) for bn in ("", "_bn")},
    "inception_v3": 96, "googlenet": 64,
    "tm:inception_v3": 96, "tm:inception_v4": 96, "tm:inception_resnet_v2": 96,
    "tm:nasnetalarge": 96,
    "tm:pnasnet5large": 96, "vit_b_16": 224, "swin_t": 64, "maxvit_t": 224,
    "tm:vit_tiny_patch16_224": 224,
}  # fmt: skip
"""Input size where 64 is too small (or the model is fixed-size; alexnet and vgg: where the
adaptive pool's output divides its input, as the legacy exporter requires); 64 otherwise."""


@dataclass
class Result:
    model: str
    exporter: str
    status: str = "?"
    """ok, mismatch, refused (the importer said no), export-failed, error (a bug)."""
    params: int | None = None
    params_expected: int | None = None
    macs: int | None = None
    macs_expected: int | None = None
    err_roundtrip: float | None = None
    err_torch: float | None = None
    message: str = ""
    seconds: float = 0.0
    ops: dict[str, int] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    """The imported weights' keys (not written to --json)."""

    @property
    def params_ok(self) -> bool:
        return self.params is not None and self.params == self.params_expected

    @property
    def macs_ok(self) -> bool:
        return self.macs is not None and self.macs == self.macs_expected


def build(name: str) -> Any:
    """The model with seeded random weights (batch norms, all-zero and constant tensors
    randomized too), in eval mode."""
    import torch

    torch.manual_seed(0)
    if name.startswith("tm:"):
        import timm

        m = timm.create_model(name[3:], pretrained=False)
    elif name.startswith("seg:"):
        import torchvision

        class Out(torch.nn.Module):
            """The segmentation model's ``out`` tensor (it returns a dict)."""

            def __init__(self, model: Any) -> None:
                super().__init__()
                self.model = model

            def forward(self, x: Any) -> Any:
                return self.model(x)["out"]

        seg = torchvision.models.get_model(name[4:], weights=None, weights_backbone=None)
        m = Out(seg)
    else:
        import torchvision

        kw: dict[str, Any] = {}
        if name in ("googlenet", "inception_v3"):
            kw = {"aux_logits": False, "init_weights": False}
        m = torchvision.models.get_model(name, weights=None, **kw)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in m.parameters():
            # NOTE: a trained model has no all-zero or constant tensor; the dynamo exporter's
            # optimizer drops an all-zero conv bias (RemoveOptionalBiasFromConv) and shares
            # equal initializers between modules (one name for all the ones of layer norms)
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
            elif p.numel() > 1 and bool((p == p.reshape(-1)[0]).all()):
                p.mul_(1 + 0.1 * torch.randn(p.shape, generator=g))
        for mod in m.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                c = mod.num_features
                if mod.running_var is not None:
                    mod.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                    mod.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                if mod.weight is not None:
                    mod.weight.add_(torch.randn(c, generator=g) * 0.1)
                    mod.bias.add_(torch.randn(c, generator=g) * 0.1)
    return m.eval()


def torch_macs(torch: Any, m: Any, x: Any) -> tuple[int, Any]:
    """Conv2d and Linear MACs of one forward pass (hooks), and the output."""
    total = [0]

    def conv(mod: Any, inp: Any, out: Any) -> None:
        kh, kw = mod.kernel_size
        total[0] += out.numel() * (mod.in_channels // mod.groups) * kh * kw

    def linear(mod: Any, inp: Any, out: Any) -> None:
        total[0] += out.numel() * mod.in_features

    hooks = []
    for mod in m.modules():
        if isinstance(mod, torch.nn.Conv2d):
            hooks.append(mod.register_forward_hook(conv))
        elif isinstance(mod, torch.nn.Linear):
            hooks.append(mod.register_forward_hook(linear))
    with torch.no_grad():
        y = m(x)
    for h in hooks:
        h.remove()
    return total[0], y


def expected_params(torch: Any, m: Any, weights: dict[str, Any], keep_bn: bool) -> int:
    """Torch's parameter count, less what the exporter folded (see the module docstring)."""
    total = sum(p.numel() for p in m.parameters())
    if keep_bn:
        return int(total)
    for name, mod in m.named_modules():
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm) and mod.weight is not None:
            if f"{name}.weight" not in weights:
                total -= 2 * mod.num_features
        elif isinstance(mod, torch.nn.Conv2d) and mod.bias is None and f"{name}.bias" in weights:
            total += mod.out_channels
    return int(total)


def export(torch: Any, m: Any, x: Any, path: Path, exporter: str, keep_bn: bool) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "legacy":
            mode = torch.onnx.TrainingMode.PRESERVE if keep_bn else torch.onnx.TrainingMode.EVAL
            torch.onnx.export(
                m,
                (x,),
                str(path),
                dynamo=False,
                opset_version=17,
                training=mode,
                input_names=["x"],
                output_names=["y"],
                dynamic_axes={"x": {0: "N"}, "y": {0: "N"}},
            )
        else:
            import contextlib
            import io

            with contextlib.redirect_stdout(io.StringIO()):
                torch.onnx.export(
                    m, (x,), str(path), dynamo=True, opset_version=18, optimize=not keep_bn
                )


def ort(model: Any, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    import onnxruntime as rt

    so = rt.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    if isinstance(model, (bytes, str)):
        return _run(rt.InferenceSession(model, so, providers=["CPUExecutionProvider"]), x)
    from graphcnn.backends.to_onnx import save

    try:
        blob = model.SerializeToString()
    except Exception:  # noqa: BLE001 - protobuf's EncodeError above 2 GB
        blob = None
    if blob is not None:
        return _run(rt.InferenceSession(blob, so, providers=["CPUExecutionProvider"]), x)
    with tempfile.TemporaryDirectory() as tmp:  # above 2 GB: weights as external data
        path = Path(tmp) / "model.onnx"
        save(model, path)
        return _run(rt.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]), x)


def _run(sess: Any, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.asarray(sess.run(None, {sess.get_inputs()[0].name: x})[0])


def rel(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float(np.abs(a.astype(np.float64) - b).max() / max(float(np.abs(b).max()), 1e-30))


def check(
    name: str, exporter: str, cache: Path, keep_bn: bool = False, size: int | None = None
) -> Result:
    """Export (or reuse the cached export), import, compare."""
    import torch

    from graphcnn.backends.from_onnx import OnnxImportError, from_onnx
    from graphcnn.backends.to_onnx import to_onnx
    from graphcnn.cost import profile

    r = Result(name, exporter)
    t0 = time.perf_counter()
    size = size or SIZE.get(name, 64)
    m = build(name)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(2))
    r.macs_expected, y = torch_macs(torch, m, x)
    ref = (y[0] if isinstance(y, (tuple, list)) else y).detach().numpy()
    tag = f"{name.replace(':', '_')}-{exporter}-{'bn' if keep_bn else 'fold'}-{size}.onnx"
    path = cache / tag
    if not path.exists():
        tmp = path.with_suffix(".tmp.onnx")
        try:
            export(torch, m, x, tmp, exporter, keep_bn)
        except Exception as e:  # noqa: BLE001 - the exporter's own failures are data here
            r.status, r.message = "export-failed", f"{type(e).__name__}: {str(e)[:200]}"
            r.seconds = time.perf_counter() - t0
            return r
        os.replace(tmp, path)
    xn = x.numpy()
    try:
        g, w = from_onnx(str(path))
    except OnnxImportError as e:
        r.status, r.message = "refused", str(e).splitlines()[0]
        r.seconds = time.perf_counter() - t0
        return r
    except Exception as e:  # noqa: BLE001 - a bug of the importer: report it, go on
        r.status = "error"
        r.message = f"{type(e).__name__}: {e} @ {traceback.format_exc().splitlines()[-3]}"
        r.seconds = time.perf_counter() - t0
        return r
    r.keys = sorted(w)
    for node in g:
        r.ops[str(node.op)] = r.ops.get(str(node.op), 0) + 1
    t = profile(g, batch=1).totals
    r.params, r.macs = t.params, t.macs
    r.params_expected = expected_params(torch, m, w, keep_bn)
    try:
        orig = ort(str(path), xn)
        ours = ort(to_onnx(g, w), xn)
        r.err_roundtrip, r.err_torch = rel(ours, orig), rel(ours, ref)
    except Exception as e:  # noqa: BLE001
        r.status, r.message = "error", f"run: {type(e).__name__}: {str(e)[:300]}"
        r.seconds = time.perf_counter() - t0
        return r
    good = r.params_ok and r.macs_ok and r.err_roundtrip < TOL and r.err_torch < TOL
    r.status = "ok" if good else "mismatch"
    r.seconds = time.perf_counter() - t0
    return r


def _fmt(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


def table(results: list[Result]) -> None:
    from rich.console import Console
    from rich.table import Table

    tab = Table(title="ONNX import of exported CNNs")
    for col in ("model", "exporter", "status", "params", "MACs", "err (rt / torch)", "message"):
        tab.add_column(col, overflow="fold")
    color = {"ok": "green", "mismatch": "yellow", "refused": "magenta"}
    for r in results:
        params = _fmt(r.params) + ("" if r.params_ok or r.params is None else
                                   f" != {_fmt(r.params_expected)}")  # fmt: skip
        macs = _fmt(r.macs) + ("" if r.macs_ok or r.macs is None else
                               f" != {_fmt(r.macs_expected)}")  # fmt: skip
        err = "-" if r.err_roundtrip is None else f"{r.err_roundtrip:.1e} / {r.err_torch:.1e}"
        st = f"[{color.get(r.status, 'red')}]{r.status}[/]"
        tab.add_row(r.model, r.exporter, st, params, macs, err, r.message[:160])
    console = Console(width=220)
    console.print(tab)
    for exp in sorted({r.exporter for r in results}):
        rs = [r for r in results if r.exporter == exp]
        ok = sum(r.status == "ok" for r in rs)
        console.print(f"{exp}: {ok}/{len(rs)} ok")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", help="comma-separated (default: all); timm's as tm:NAME")
    ap.add_argument("--exporter", choices=("legacy", "dynamo", "both"), default="both")
    ap.add_argument("--keep-bn", action="store_true", help="export without folding batch norms")
    ap.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "graphcnn_onnx_families"
    )
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    models = args.models.split(",") if args.models else MODELS
    exporters = ["legacy", "dynamo"] if args.exporter == "both" else [args.exporter]
    args.cache.mkdir(parents=True, exist_ok=True)
    results = []
    for name in models:
        for exp in exporters:
            r = check(name, exp, args.cache, args.keep_bn)
            results.append(r)
            print(f"{name:32s} {exp:7s} {r.status:13s} {r.seconds:6.1f}s {r.message[:150]}",
                  file=sys.stderr, flush=True)  # fmt: skip
    table(results)
    if args.json:
        rows = [
            {k: v for k, v in asdict(r).items() if k != "keys"}
            | {"params_ok": r.params_ok, "macs_ok": r.macs_ok}
            for r in results
        ]
        args.json.write_text(json.dumps(rows, indent=1))
    return 0 if all(r.status in ("ok", "refused") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
