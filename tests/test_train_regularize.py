"""Each regulariser of ``graphcnn train`` does what it says, checked on tensors (fast).

MixUp/CutMix targets are convex combinations of two one-hot labels, cutout zeroes exactly one
square of the requested side, ``--dropout`` rewrites every dropout node, ``--drop-connect`` every
DropConnect (or puts it on the linear layers of a network without), early stopping stops
at the right epoch of a scripted curve, the PCA colour offset moves every pixel of a channel by
one amount along the data's principal axes, and every augmentation policy runs on 1- and
3-channel images.
"""

from __future__ import annotations

from typing import Any

import pytest

import graphcnn
from graphcnn.ir import Op
from graphcnn.train import TrainConfig, TrainError
from graphcnn.train import data as train_data
from graphcnn.train.regularize import EarlyStopping, batch_mixer, set_drop_connect, set_dropout

torch: Any = pytest.importorskip("torch")
pytest.importorskip("torchvision")

CLASSES = 10


@pytest.mark.parametrize(("mixup", "cutmix"), [(0.4, 0.0), (0.0, 1.0), (0.4, 1.0)])
def test_mixed_targets_are_convex_combinations(mixup: float, cutmix: float) -> None:
    torch.manual_seed(0)
    mixer = batch_mixer(mixup, cutmix, CLASSES)
    x = torch.rand(16, 1, 8, 8)
    y = torch.randint(0, CLASSES, (16,))
    for _ in range(5):
        xm, t = mixer(x, y)
        assert xm.shape == x.shape and t.shape == (16, CLASSES)
        assert torch.allclose(t.sum(1), torch.ones(16))
        assert bool((t >= 0).all())
        # torchvision mixes each sample with the batch rolled by one: lam*onehot(y)+(1-lam)*...
        lam = t[torch.arange(16), y]
        other = t[torch.arange(16), y.roll(1)]
        same = y == y.roll(1)
        assert torch.allclose(torch.where(same, lam, lam + other), torch.ones(16), atol=1e-6)
        assert bool((t > 0).sum(1).le(2).all())


def test_mixup_mixes_images_with_the_same_lambda_as_labels() -> None:
    torch.manual_seed(1)
    mixer = batch_mixer(0.4, 0.0, CLASSES)
    x = torch.rand(8, 1, 4, 4)
    y = torch.arange(8)
    xm, t = mixer(x, y)
    lam = float(t[0, 0])
    assert torch.allclose(xm, lam * x + (1 - lam) * x.roll(1, 0), atol=1e-6)


def test_no_mixing_without_alphas() -> None:
    assert batch_mixer(0.0, 0.0, CLASSES) is None


@pytest.mark.parametrize("side", [2, 3, 5])
def test_cutout_zeroes_one_square(side: int) -> None:
    torch.manual_seed(side)
    erase = train_data.cutout(side, (12, 12))
    for _ in range(10):
        img = torch.rand(3, 12, 12) + 0.5  # strictly positive: zeros come from cutout only
        out = erase(img)
        zero = (out == 0).all(0)
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert int(zero.sum()) == side * side
        assert len(rows) == side and len(cols) == side
        assert int(rows[-1] - rows[0]) == side - 1 and int(cols[-1] - cols[0]) == side - 1
        assert torch.equal(out[:, ~zero], img[:, ~zero])


def test_cutout_larger_than_the_image_is_refused() -> None:
    with pytest.raises(TrainError, match="does not fit"):
        train_data.cutout(8, (8, 8))


SPEC = """
network net(classes = 10) {
  x = input(1, 8, 8)
  x = x -> conv(4, 3, pad: 1) as conv1 -> relu -> flatten -> dropout(0.5) as drop1
        -> linear(16) as fc1 -> relu -> dropout(0.2) as drop2 -> linear(classes) as fc
  return x
}
"""


def test_dropout_override_replaces_every_p() -> None:
    g = graphcnn.compile_text(SPEC)
    g2, changed = set_dropout(g, 0.1)
    assert changed == 2
    assert [n.attrs["p"] for n in g2 if n.op is Op.DROPOUT] == [0.1, 0.1]
    assert [n.attrs["p"] for n in g if n.op is Op.DROPOUT] == [0.5, 0.2]  # the input is kept
    g2.verify()


def _drop_connect(g: graphcnn.Graph) -> dict[str, float]:
    return {n.name: float(n.attrs["drop_connect"]) for n in g if "drop_connect" in n.attrs}


def test_drop_connect_goes_on_the_linear_layers_of_a_network_without() -> None:
    g = graphcnn.compile_text(SPEC)
    assert _drop_connect(g) == {}
    g2, changed, added = set_drop_connect(g, 0.3)
    assert (changed, added) == (2, True)
    assert _drop_connect(g2) == {"fc1": 0.3, "fc": 0.3}  # Wan et al.: the FC layers
    assert _drop_connect(g) == {}  # the input is kept
    g2.verify()


def test_drop_connect_override_replaces_only_the_layers_that_have_it() -> None:
    text = SPEC.replace("-> linear(16) as fc1", "-> linear(16, drop_connect: 0.5) as fc1")
    g = graphcnn.compile_text(text)
    assert _drop_connect(g) == {"fc1": 0.5}
    g2, changed, added = set_drop_connect(g, 0.2)
    assert (changed, added) == (1, False) and _drop_connect(g2) == {"fc1": 0.2}
    g3, changed, _ = set_drop_connect(g, 0.0)  # 0 removes it
    assert changed == 1 and _drop_connect(g3) == {}
    assert graphcnn.profile(g3).totals == graphcnn.profile(g).totals  # a training-only mask


@pytest.mark.parametrize(
    ("curve", "patience", "stop_at", "best"),
    [
        ([0.5, 0.6, 0.7, 0.7, 0.69, 0.71, 0.7], 2, 5, 3),  # no better value on epochs 4 and 5
        ([0.5, 0.6, 0.7, 0.7, 0.69, 0.71, 0.7], 3, None, 6),  # 0.71 at epoch 6 resets it
        ([0.9, 0.8, 0.7], 1, 2, 1),
        ([0.1, 0.2, 0.3], 0, None, 3),  # patience 0: never stops
    ],
)
def test_early_stopping_on_a_scripted_curve(
    curve: list[float], patience: int, stop_at: int | None, best: int
) -> None:
    stopper = EarlyStopping(patience)
    stopped = None
    for epoch, value in enumerate(curve, 1):
        if stopper.step(value):
            stopped = epoch
            break
    assert stopped == stop_at
    assert stopper.best_epoch == best


def test_early_stopping_minimises_a_loss() -> None:
    stopper = EarlyStopping(1, mode="min")
    assert not stopper.step(1.0)
    assert not stopper.step(0.5)
    assert stopper.step(0.6)
    assert stopper.best == 0.5 and stopper.best_epoch == 2


def test_pca_lighting_shifts_along_the_principal_axes() -> None:
    torch.manual_seed(0)
    x = torch.rand(64, 3, 6, 6)
    vals, vecs = train_data.channel_pca(x)
    light = train_data.PCALighting(vals, vecs, std=0.1)
    img = x[0]
    out = light(img)
    shift = (out - img).flatten(1)
    assert torch.allclose(shift, shift[:, :1].expand_as(shift), atol=1e-6)  # one per channel
    # the offset lies in the span of the eigenvectors weighted by their eigenvalues
    coeff = torch.linalg.solve(torch.tensor(vecs, dtype=torch.float32), shift[:, 0])
    assert bool((coeff.abs() <= 10 * torch.tensor(vals, dtype=torch.float32) + 1e-6).all())


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("policy", train_data.AUGMENTS)
def test_every_policy_runs(policy: str, channels: int) -> None:
    torch.manual_seed(0)
    cfg = TrainConfig(augment=(policy,), cutout=2)
    shape = (channels, 16, 16)
    pca = ([0.01] * channels, torch.eye(channels).tolist())
    t = train_data.sample_transform(cfg, shape, [0.5] * channels, [0.25] * channels, pca)
    assert t is not None
    out = t(torch.rand(*shape))
    assert out.shape == shape and out.dtype == torch.float32
    assert bool(torch.isfinite(out).all())


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(TrainError, match="unknown augmentation 'jitter'"):
        TrainConfig(augment=("jitter",)).check()


DROP_CONNECT = """
network dc(classes = 6) {
  x = input(8)
  return x -> linear(classes, drop_connect: 0.5) as fc
}
"""


def test_drop_connect_masks_weights_only_in_training() -> None:
    from graphcnn.backends.to_torch import to_torch
    from graphcnn.passes import optimize

    g = graphcnn.compile_text(DROP_CONNECT)
    assert g["fc"].attrs["drop_connect"] == 0.5
    model = to_torch(g, seed=0)
    w, b = model.fc.weight.detach(), model.fc.bias.detach()
    eye = torch.eye(8)  # row i picks input i: out[i, j] = mask[j, i] * W[j, i] / (1 - p) + b[j]
    torch.manual_seed(0)
    model.train()
    kept = model(eye).detach() - b
    kept_t, w_t = kept.T, w  # [classes, in] like the weight
    dropped = kept_t == 0
    assert torch.allclose(kept_t[~dropped], 2 * w_t[~dropped], atol=1e-6)  # 1 / (1 - 0.5)
    assert 0.2 < float(dropped.float().mean()) < 0.8  # per weight, not per unit:
    assert bool(dropped.any(0).any()) and not bool(dropped.all(1).any())  # no whole row lost
    model.eval()
    assert torch.allclose(model(eye).detach() - b, w.T, atol=1e-6)
    # the inference pipeline removes it: a plain linear layer, same weights
    g2, _, _ = optimize(
        g, {k: v.detach().numpy() for k, v in model.state_dict().items()}, "inference"
    )
    assert "drop_connect" not in g2["fc"].attrs


def test_every_policy_name_has_a_transform() -> None:
    assert set(train_data._augments()) == set(train_data.AUGMENTS)
