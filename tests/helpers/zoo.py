"""Zoo models as the tests use them: as pytest parameters with the slow ones marked (the fast
tier, ``pytest -m "not slow"``, runs the zoo-wide tests on a few small models that stand for
their families), and at a reduced input size (the smallest of a few square sizes the
architecture still compiles at)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from functools import cache
from typing import Any

import pytest

import graphcnn
from graphcnn import zoo
from graphcnn.errors import GraphcnnError
from graphcnn.ir import Graph

SIZES: Sequence[int] = (64, 96, 128, 160, 192, 224, 256, 299)
"""Input sizes tried in order by :func:`reduced`; the first that compiles is used."""


FAST = frozenset(
    {
        "lenet5",  # the plain CNN: tanh, average pools, 1x32x32
        "resnet18",  # residual adds, BN after every conv
        "mobilenet_v2",  # depthwise convs, relu6, inverted residuals
        "shufflenet_v2_x0_5",  # channel split and shuffle
        "googlenet",  # inception branches, training-only auxiliary heads
        "efficientnet_b0",  # squeeze-excitation, silu, stochastic depth
        "densenet121",  # concatenations, BNs that cannot fold
    }
)
"""The models the zoo-wide tests run in the fast tier; the full run takes every model."""


HUGE = frozenset({"regnet_x_32gf", "regnet_y_32gf", "regnet_y_128gf", "convnext_large"})
"""The four largest models of the families added for issue 11 (108-645M parameters, 32-375 GMACs;
the VGGs, 133-144M parameters but under 20 GMACs, were in these tests before and stay). The
zoo-wide whole-model tests (torch and ONNX Runtime runs, exports, a training step) skip them:
each would hold gigabytes and minutes of CPU per test on the 2-core CI machine, and
regnet_y_128gf's 2.6 GB of weights do not fit one ONNX protobuf. Their family tests
(tests/test_zoo_*.py) check them in torch at a reduced input, and the analytic zoo-wide tests
(shapes, cost, names, passes) take them like every other model."""

TIMM = frozenset({"inception_v4", "inception_resnet_v2", "nasnetalarge"})
"""Zoo models whose reference is timm (torchvision lacks them): tests/test_zoo_timm.py."""

SEGMENTATION = frozenset(m for m, path in zoo.models().items() if path.name == "segmentation.gcnn")
"""Zoo models whose output is a per-pixel map [classes, H, W], not logits [classes]; their
reference is torchvision.models.segmentation: tests/test_zoo_segmentation.py."""


def zoo_params(names: Sequence[str], huge: bool = False) -> list[Any]:
    """``names`` as pytest parameters, all but the :data:`FAST` ones marked slow; the
    :data:`HUGE` ones are skipped (with the reason) unless ``huge``."""
    params = slow_params(names, set(names) - FAST)
    if huge:
        return params
    skip = pytest.mark.skip(reason="one of the largest zoo models: see helpers.zoo.HUGE")
    return [
        pytest.param(n, marks=skip) if n in HUGE else p for n, p in zip(names, params, strict=True)
    ]


def slow_params(names: Sequence[str], slow: Collection[str]) -> list[Any]:
    """``names`` as pytest parameters, those in ``slow`` marked slow."""
    return [pytest.param(n, marks=pytest.mark.slow) if n in slow else n for n in names]


def reduced(
    name: str,
    sizes: Sequence[int] = SIZES,
    fits: Callable[[Graph], bool] | None = None,
    **kw: Any,
) -> Graph:
    """Zoo model ``name`` at the first square input of ``sizes`` below its own size that
    compiles (and ``fits``), else at its own size (lenet5 keeps 1x32x32); ``kw`` go to
    ``graphcnn.compile``. Too-small inputs fail to compile naming the layer that no longer fits
    (alexnet_v1's pool5 below 96, googlenet_paper's 7x7/1 average pool below 224,
    inception_v3's auxiliary head below 299)."""
    native = graphcnn.compile(name, **kw)
    c, size = native.inputs[0].type.sample_shape[:2]
    for s in sizes:
        if s >= size:
            break
        try:
            g = graphcnn.compile(name, input_shape=(c, s, s), **kw)
        except GraphcnnError:
            continue
        if fits is None or fits(g):
            return g
    return native


@cache
def compiled(name: str, input_shape: tuple[int, ...] | None = None) -> Graph:
    """Zoo model ``name`` compiled once per process (graphs are immutable: tests share them)."""
    return graphcnn.compile(name, input_shape=input_shape)
