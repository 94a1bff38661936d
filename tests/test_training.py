"""Training through the torch backend, and the digits data set shipped in graphcnn/data.

* Every zoo model, compiled small (10 classes, the smallest input in ``SIZES`` that fits) and
  lowered with ``to_torch``, takes one SGD step in train mode: every parameter gets a finite
  gradient (auxiliary heads included), the loss on the batch drops, and eval mode returns the
  logits alone.
* LeNet-5 learns the handwritten digits: >= 95% validation accuracy (the seconds it takes are
  recorded, never asserted).
* ``graphcnn.datasets`` (numpy only) loads and splits the digits reproducibly.

Torch tests share the cores between the xdist workers (``torch1``): CI runs ``pytest -n 2`` on a
2-core machine, where more threads per worker only oversubscribe the cores.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from conftest import REPO
from helpers.digits import train_lenet5
from helpers.fresh import imported
from helpers.zoo import SEGMENTATION, reduced, zoo_params

import graphcnn
from graphcnn import datasets, zoo
from graphcnn.ir import Graph
from graphcnn.weights import expected

# Candidate square input sizes, smallest first; a model keeps its own size if that is smaller.
# 32 is left out on purpose: at 32x32 most ImageNet nets end on 1x1 maps, where train-mode batch
# norm over a batch of 4 has near-zero variance and gradients reach 1e13 (densenet169,
# efficientnet_b3/b4/b7 then step to NaN). That is BN statistics, not a lowering problem.
SIZES = (64, 96, 128, 160, 224, 299)
CLASSES = 10
BATCH = 4  # train-mode batch norm needs >= 2 values per channel; 4 keeps the statistics sane
LR = 0.01
AUX_WEIGHT = 0.3  # as torchvision's reference training for GoogLeNet / Inception v3
MIN_NONZERO_GRAD = 0.9  # share of parameter tensors with a nonzero gradient (see below)


def to_torch(graph: Graph, seed: int = 0) -> Any:
    from graphcnn.backends.to_torch import to_torch as lower

    return lower(graph, seed=seed)


def small_graph(name: str) -> Graph:
    """``name`` with CLASSES outputs at the smallest input size of SIZES that compiles (sizes
    above the model's own are never tried: lenet5 stays 1x32x32). A segmentation model starts
    at 96: at 64 a dilated ResNet ends on 8x8 maps, under DeepLab's atrous rates (12-36), and
    deeplabv3_resnet101's first step raises the loss (torchvision's own module's too)."""
    sizes = SIZES[1:] if name in SEGMENTATION else SIZES
    return reduced(name, sizes, params={"classes": CLASSES})


def _field(name: str) -> str:
    return re.sub(r"\W", "_", name)


# --- every zoo model: one training step ----------------------------------------------------


@pytest.mark.torch
@pytest.mark.parametrize("name", zoo_params(zoo.names()))
def test_one_sgd_step_trains_every_parameter(name: str, torch1: Any) -> None:
    torch = torch1
    F = torch.nn.functional
    g = small_graph(name)
    c, h, w = (int(d) for d in g.inputs[0].type.shape[1:])
    outputs = [(out, g[node]) for out, node in g.outputs]
    (logits_at,) = [i for i, (_, node) in enumerate(outputs) if not node.training_only]
    has_aux = len(outputs) > 1

    model = to_torch(g, seed=0)
    assert (
        sum(p.numel() for p in model.parameters())
        == graphcnn.profile(g, training=True).totals.params
    )
    model.train()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(BATCH, c, h, w, generator=gen)
    # a segmentation model (helpers.zoo.SEGMENTATION) labels every pixel
    per_pixel = (h, w) if name in SEGMENTATION else ()
    y = torch.randint(0, CLASSES, (BATCH, *per_pixel), generator=gen)
    shape = (BATCH, CLASSES, *per_pixel)

    def loss_of_batch() -> Any:
        # Re-seed before every forward so dropout and drop-path draw the same masks each time.
        torch.manual_seed(1234)
        out = model(x)
        if not has_aux:
            assert isinstance(out, torch.Tensor)
            assert out.shape == shape
            return F.cross_entropy(out, y)
        # Train mode returns every output, auxiliary heads included, as a namedtuple.
        assert isinstance(out, tuple) and len(out) == len(outputs)
        assert out._fields == tuple(_field(n) for n, _ in outputs)
        for o in out:
            assert o.shape == shape
        aux = [o for i, o in enumerate(out) if i != logits_at]
        return F.cross_entropy(out[logits_at], y) + AUX_WEIGHT * sum(
            F.cross_entropy(o, y) for o in aux
        )

    opt = torch.optim.SGD(model.parameters(), lr=LR)
    opt.zero_grad(set_to_none=True)
    loss0 = loss_of_batch()
    assert torch.isfinite(loss0)
    loss0.backward()

    params = dict(model.named_parameters())
    missing = [n for n, p in params.items() if p.grad is None]
    assert not missing, f"parameters outside the autograd graph: {missing[:10]}"
    bad = [n for n, p in params.items() if not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients: {bad[:10]}"
    # An all-zero gradient can be legitimate: drop-path may drop a residual branch for the whole
    # batch, and a BN shift whose every consumer is a conv followed by a train-mode BN cancels
    # out. So most, not all, parameter tensors must see a nonzero gradient...
    zero = [n for n, p in params.items() if not bool(p.grad.abs().max() > 0)]
    assert len(zero) <= (1 - MIN_NONZERO_GRAD) * len(params), (
        f"{len(zero)}/{len(params)} parameters got an all-zero gradient: {zero[:10]}"
    )
    # ...but the training-only auxiliary heads, and the classifier, must all learn.
    # parameter key -> its node (a layer scale's key is its node's own name, not node.param)
    owner = {key: node for key, (_, node) in expected(g).items()}
    training_only = [n for n in params if owner[n].training_only]
    assert bool(training_only) == has_aux, training_only
    assert not [n for n in training_only if n in zero], zero
    classifier = g.outputs[logits_at][1]
    assert not [n for n in params if owner[n].name == classifier and n in zero], zero

    opt.step()
    with torch.no_grad():
        loss1 = loss_of_batch()
    assert float(loss1) < float(loss0.detach()), (float(loss0.detach()), float(loss1))

    # Eval mode: the auxiliary heads are gone and the logits come back alone.
    model.eval()
    with torch.no_grad():
        out = model(x)
    assert isinstance(out, torch.Tensor) and not isinstance(out, tuple)
    assert out.shape == shape
    assert torch.isfinite(out).all()


def test_small_graph_sizes() -> None:
    """The reduced inputs the training test uses (cheap: compiling is analytic)."""
    got = {
        n: tuple(small_graph(n).inputs[0].type.shape[1:])
        for n in (
            "lenet5",
            "resnet18",
            "alexnet_v1",
            "googlenet",
            "googlenet_paper",
            "inception_v3",
        )
    }
    assert got == {
        "lenet5": (1, 32, 32),
        "resnet18": (3, 64, 64),
        "alexnet_v1": (3, 96, 96),
        "googlenet": (3, 64, 64),
        "googlenet_paper": (3, 224, 224),
        "inception_v3": (3, 299, 299),
    }


# --- LeNet-5 learns the digits ---------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.torch
def test_lenet5_learns_digits(torch1: Any, record_property: Callable[[str, object], None]) -> None:
    torch = torch1
    start = time.perf_counter()
    x, y = datasets.digits(32)
    x_train, y_train, x_val, y_val = (torch.from_numpy(a) for a in datasets.split(x, y, 0.2))
    mean, std = x_train.mean(), x_train.std()
    x_train, x_val = (x_train - mean) / std, (x_val - mean) / std

    g, model = train_lenet5(torch, x_train, y_train, epochs=15)
    assert tuple(g.inputs[0].type.shape[1:]) == (1, 32, 32)
    with torch.no_grad():
        accuracy = float((model(x_val).argmax(1) == y_val).float().mean())
    seconds = time.perf_counter() - start
    record_property("val_accuracy", accuracy)
    record_property("seconds", seconds)
    print(
        f"lenet5 on digits: {accuracy:.2%} validation accuracy "
        f"({len(y_val)} images) in {seconds:.1f} s"
    )
    assert accuracy >= 0.95


# --- graphcnn.datasets (numpy only) ----------------------------------------------------------


def test_digits_raw_data() -> None:
    images, labels = datasets.load_digits_raw()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    assert labels.shape == (1797,) and labels.dtype == np.int64
    assert images.min() == 0 and images.max() == 16
    # UCI's per-class counts of its test set (optdigits.tes), which scikit-learn bundles
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    # the first image of the set is a zero
    assert labels[0] == 0 and images[0, 0].tolist() == [0, 0, 5, 13, 9, 1, 0, 0]
    # copies: the cached arrays cannot be changed through them
    images[0, 0, 0] = 99
    assert datasets.load_digits_raw()[0][0, 0, 0] == 0


@pytest.mark.parametrize("size", [8, 16, 28, 32, 33])
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_digits_images(size: int, mode: str) -> None:
    x, y = datasets.digits(size, mode=mode)
    assert x.shape == (1797, 1, size, size) and x.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert x.flags.c_contiguous
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() == 1.0
    raw, _ = datasets.load_digits_raw()
    if size == 8:  # no resampling at the native size
        np.testing.assert_array_equal(x[:, 0], raw / np.float32(16))
    if mode == "nearest" and size % 8 == 0:  # whole-pixel blocks
        k = size // 8
        np.testing.assert_array_equal(x[:, 0], np.kron(raw, np.ones((k, k))) / np.float32(16))


def test_bilinear_resize_uses_half_pixel_centres() -> None:
    # 2 -> 4: samples at -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1)
    row = datasets.resize(np.array([[0.0, 4.0], [0.0, 4.0]]), 4)
    np.testing.assert_allclose(row[0], [0.0, 1.0, 3.0, 4.0])
    # a constant image stays constant, whatever the size
    np.testing.assert_allclose(datasets.resize(np.full((3, 8, 8), 7.0), 21), 7.0)
    with pytest.raises(ValueError):
        datasets.resize(np.zeros((8, 8)), 0)
    with pytest.raises(ValueError):
        datasets.digits(32, mode="bicubic")


def test_bilinear_resize_matches_torch(torch: Any) -> None:
    raw, _ = datasets.load_digits_raw()
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(raw[:64, None] / 16.0),
        size=(32, 32),
        mode="bilinear",
        align_corners=False,
    )
    np.testing.assert_allclose(datasets.digits(32)[0][:64], ref.numpy(), atol=1e-6)


def test_split_is_deterministic_and_stratified() -> None:
    x, y = datasets.digits(8)
    a = datasets.split(x, y, val_fraction=0.2, seed=0)
    b = datasets.split(x, y, val_fraction=0.2, seed=0)
    for p, q in zip(a, b, strict=True):
        np.testing.assert_array_equal(p, q)
    x_train, y_train, x_val, y_val = a
    assert len(x_train) == len(y_train) and len(x_val) == len(y_val)
    assert len(y_train) + len(y_val) == 1797
    assert abs(len(y_val) - 0.2 * 1797) <= 10
    counts = np.bincount(y, minlength=10)
    np.testing.assert_array_equal(np.bincount(y_val, minlength=10), np.round(0.2 * counts))
    # a partition that keeps images with their labels: split the indices the same way
    idx_train, iy_train, idx_val, iy_val = datasets.split(np.arange(1797), y, 0.2, seed=0)
    assert sorted(np.concatenate([idx_train, idx_val]).tolist()) == list(range(1797))
    np.testing.assert_array_equal(x[idx_val], x_val)
    np.testing.assert_array_equal(y[idx_val], y_val)
    np.testing.assert_array_equal(iy_val, y_val)
    np.testing.assert_array_equal(y[idx_train], iy_train)
    assert (np.diff(idx_train) > 0).all() and (np.diff(idx_val) > 0).all()  # order kept
    c = datasets.split(x, y, val_fraction=0.2, seed=1)
    assert not np.array_equal(a[3], c[3]) or not np.array_equal(a[2], c[2])


def test_split_rejects_bad_arguments() -> None:
    x, y = np.zeros((10, 2)), np.arange(10) % 2
    with pytest.raises(ValueError):
        datasets.split(x, y[:9])
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError):
            datasets.split(x, y, val_fraction=bad)


def test_datasets_never_import_torch() -> None:
    code = "import graphcnn.datasets as d; d.digits(32)"
    assert imported(code, "torch", "scipy", "sklearn") == []


def test_digits_file_ships_as_package_data() -> None:
    """A non-editable install must carry graphcnn/data/digits.npz (pyproject package-data)."""
    from fnmatch import fnmatch

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "graphcnn.data" in config["packages"]
    patterns = config["package-data"]["graphcnn.data"]
    for f in ("digits.npz", "README.md"):
        assert (datasets.DATA_DIR / f).is_file()
        assert any(fnmatch(f, p) for p in patterns), (f, patterns)
    assert datasets.DIGITS_FILE == REPO / "graphcnn" / "data" / "digits.npz"
