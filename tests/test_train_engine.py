"""``graphcnn.train.train`` end to end on a tiny network over the 8x8 digits (about 0.2 s/epoch).

A run writes every file it promises (weights keyed like the graph, loadable by ``compile
--weights``), a resumed run continues bit for bit, frozen layers stay bit-identical (batch-norm
statistics included), a head whose shape changed is re-initialised and reported, early
stopping ends a run, and bad input is one :class:`TrainError` with nothing written.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import graphcnn
from graphcnn.ir import Graph
from graphcnn.train import TrainConfig, TrainError, train
from graphcnn.weights import WeightsError, expected, load_safetensors, save_safetensors

torch: Any = pytest.importorskip("torch")
pytest.importorskip("torchvision")

SPEC = """
network tiny(classes = 10, width = 8) {
  x = input(1, 8, 8)
  x = x -> conv(width, 3, pad: 1, bias: false) as conv1 -> bn as bn1 -> relu
        -> conv(width, 3, pad: 1) as conv2 -> relu -> maxpool(2) as pool
        -> flatten -> dropout(0.1) as drop -> linear(classes) as fc
  return x
}
"""

FAST = {"epochs": 2, "threads": 1, "batch_size": 64, "lr": 0.01}


def tiny(classes: int = 10) -> Graph:
    return graphcnn.compile_text(SPEC, params={"classes": classes})


def test_a_run_writes_its_files(tmp_path: Path) -> None:
    g = tiny()
    r = train(g, TrainConfig(**FAST), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "best.safetensors",
        "curves.png",
        "last.safetensors",
        "metrics.csv",
        "run.json",
        "state.pt",
    ]
    assert r.epochs_run == 2 and not r.stopped_early
    assert 0.5 < r.best_val_accuracy <= 1.0 and r.images_per_second > 0
    weights = load_safetensors(tmp_path / "best.safetensors")
    assert set(weights) == set(expected(g))
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert float(rows[r.best_epoch - 1]["val_accuracy"]) == pytest.approx(r.best_val_accuracy)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["config"]["epochs"] == 2 and len(run["ir_sha256"]) == 64
    assert run["result"]["best_epoch"] == r.best_epoch
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the best checkpoint is the weights of the best epoch: evaluating it gives that accuracy
    from graphcnn.backends.to_torch import to_torch
    from graphcnn.train.data import load_data

    model = to_torch(g, weights).eval()
    x, y = load_data(TrainConfig(), (1, 8, 8)).val[list(range(359))]
    with torch.no_grad():
        acc = float((model(x).argmax(1) == y).float().mean())
    assert acc == pytest.approx(r.best_val_accuracy)


class Interrupt(Exception):
    pass


class StopAfter:
    """A reporter that kills the run after ``epochs`` epochs (their files are written)."""

    def __init__(self, epochs: int):
        self.epochs = epochs

    def start(self, epoch: int, epochs: int, batches: int) -> None: ...
    def advance(self, loss: float) -> None: ...
    def end(self, row: Any) -> None:
        if int(row["epoch"]) == self.epochs:
            raise Interrupt


@pytest.mark.parametrize(
    "extra",
    [{}, pytest.param({"augment": ("affine",), "mixup": 0.2, "cutout": 2}, marks=pytest.mark.slow)],
)
def test_resume_continues_bit_exactly(tmp_path: Path, extra: dict[str, Any]) -> None:
    g = tiny()
    cfg = TrainConfig(**{**FAST, "epochs": 3, "schedule": "step", "step_size": 1, **extra})
    straight = train(g, cfg, tmp_path / "a")
    with pytest.raises(Interrupt):
        train(g, cfg, tmp_path / "b", reporter=StopAfter(1))
    resumed = train(g, cfg, tmp_path / "b", resume=True)
    a = load_safetensors(tmp_path / "a" / "last.safetensors")
    b = load_safetensors(tmp_path / "b" / "last.safetensors")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert [r["val_loss"] for r in straight.rows] == [r["val_loss"] for r in resumed.rows]
    assert [r["lr"] for r in resumed.rows] == pytest.approx([0.01, 0.001, 0.0001])


def test_resume_refuses_other_options(tmp_path: Path) -> None:
    train(tiny(), TrainConfig(**{**FAST, "epochs": 1}), tmp_path)
    with pytest.raises(TrainError, match="differ from the run .*: lr"):
        train(tiny(), TrainConfig(**{**FAST, "lr": 0.5}), tmp_path, resume=True)
    with pytest.raises(TrainError, match="holds no run to resume"):
        train(tiny(), TrainConfig(**FAST), tmp_path / "none", resume=True)


def test_freezing_leaves_frozen_weights_bit_identical(tmp_path: Path) -> None:
    g = tiny()
    src = tmp_path / "start.safetensors"
    from graphcnn.weights import init_weights

    start = init_weights(g, 3)
    start["bn1.running_mean"] = np.full(8, 0.25, dtype=np.float32)  # would move in train mode
    save_safetensors(start, src)
    train(g, TrainConfig(**FAST, weights=str(src), freeze=("conv1", "bn1")), tmp_path / "run")
    end = load_safetensors(tmp_path / "run" / "last.safetensors")
    for k in start:
        same = np.array_equal(start[k], end[k])
        assert same == k.startswith(("conv1.", "bn1.")), k


def test_freeze_until_freezes_everything_before_the_scope(tmp_path: Path) -> None:
    from graphcnn.weights import init_weights

    g = tiny()
    src = tmp_path / "start.safetensors"
    start = init_weights(g, 3)
    save_safetensors(start, src)
    r = train(g, TrainConfig(**FAST, weights=str(src), freeze_until="fc"), tmp_path / "run")
    end = load_safetensors(tmp_path / "run" / "last.safetensors")
    moved = sorted(k for k in start if not np.array_equal(start[k], end[k]))
    assert moved == ["fc.bias", "fc.weight"]
    assert r.transfer["frozen_layers"] == 3


@pytest.mark.parametrize(
    ("option", "match"),
    [
        ({"freeze": ("layer9",)}, "--freeze layer9: no layer"),
        ({"freeze_until": "nope"}, "--freeze-until nope: no layer"),
    ],
)
def test_unknown_frozen_scope(tmp_path: Path, option: dict[str, Any], match: str) -> None:
    with pytest.raises(TrainError, match=match) as e:
        train(tiny(), TrainConfig(**FAST, **option), tmp_path / "run")
    assert "conv1, bn1, conv2, fc" in (e.value.hint or "")
    assert not (tmp_path / "run").exists()


def test_head_is_replaced_when_classes_change(tmp_path: Path) -> None:
    from graphcnn.weights import init_weights

    src = tmp_path / "five.safetensors"
    save_safetensors(init_weights(tiny(5), 1), src)
    with pytest.raises(TrainError, match="head has 5 outputs but --data digits has 10"):
        train(tiny(5), TrainConfig(**FAST, weights=str(src)), tmp_path / "x")
    r = train(tiny(10), TrainConfig(**FAST, weights=str(src)), tmp_path / "run")
    assert r.transfer["head_replaced"] == ["fc.weight", "fc.bias"]
    end = load_safetensors(tmp_path / "run" / "last.safetensors")
    assert end["fc.weight"].shape == (10, 128)


def test_a_checkpoint_of_another_body_is_refused(tmp_path: Path) -> None:
    from graphcnn.weights import init_weights

    src = tmp_path / "wide.safetensors"
    wide = graphcnn.compile_text(SPEC, params={"width": 16})
    save_safetensors(init_weights(wide, 1), src)
    with pytest.raises(WeightsError, match="conv1.weight: expected"):
        train(tiny(), TrainConfig(**FAST, weights=str(src)), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_early_stopping_ends_the_run(tmp_path: Path) -> None:
    # lr 0: validation accuracy never improves after epoch 1, so patience 2 stops at epoch 3
    cfg = TrainConfig(**{**FAST, "epochs": 10, "lr": 1e-12, "early_stopping": 2})
    r = train(tiny(), cfg, tmp_path)
    assert r.stopped_early and r.epochs_run == 3 and r.best_epoch == 1


def test_schedule_divides_by_gamma_on_a_plateau(tmp_path: Path) -> None:
    cfg = TrainConfig(
        **{**FAST, "epochs": 4, "lr": 1e-12, "schedule": "plateau", "plateau_patience": 1}
    )
    r = train(tiny(), cfg, None)
    assert [row["lr"] for row in r.rows] == pytest.approx([1e-12, 1e-12, 1e-12, 1e-13])


def test_warmup_ramps_from_a_tenth() -> None:
    cfg = TrainConfig(**{**FAST, "epochs": 4, "warmup_epochs": 2, "schedule": "constant"})
    r = train(tiny(), cfg, None)
    assert [row["lr"] for row in r.rows] == pytest.approx([0.001, 0.0055, 0.01, 0.01])


def test_dropout_override_reaches_the_module(tmp_path: Path) -> None:
    r = train(tiny(), TrainConfig(**{**FAST, "epochs": 1, "dropout": 0.3}), None)
    assert r.notes == []
    no_dropout = graphcnn.compile_text(SPEC.replace("-> dropout(0.1) as drop ", ""))
    r = train(no_dropout, TrainConfig(**{**FAST, "epochs": 1, "dropout": 0.3}), None)
    assert r.notes == ["--dropout 0.3: the network has no dropout"]


def test_drop_connect_reaches_the_module_in_training_only() -> None:
    """A network without DropConnect gets it on its linear layer: the training loss of the
    first epoch changes (weights dropped), the validation (eval mode: no mask) does not."""
    cfg = {**FAST, "epochs": 1, "lr": 1e-12}
    plain = train(tiny(), TrainConfig(**cfg), None)
    dropped = train(tiny(), TrainConfig(**cfg, drop_connect=0.9), None)
    assert plain.notes == []
    assert dropped.notes == ["--drop-connect 0.9: on the 1 linear layer(s) (the network had no "
                             "DropConnect)"]  # fmt: skip
    assert dropped.rows[0]["train_loss"] != plain.rows[0]["train_loss"]
    assert dropped.rows[0]["val_loss"] == pytest.approx(plain.rows[0]["val_loss"], rel=1e-6)


def test_missing_and_malformed_data_folders(tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="no such folder"):
        train(tiny(), TrainConfig(**FAST, data=str(tmp_path / "nope")), tmp_path / "o")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainError, match="Couldn't find any class folder"):
        train(tiny(), TrainConfig(**FAST, data=str(tmp_path / "empty")), tmp_path / "o")
    (tmp_path / "tv" / "train" / "a").mkdir(parents=True)
    with pytest.raises(TrainError, match="has train/ but no val/"):
        train(tiny(), TrainConfig(**FAST, data=str(tmp_path / "tv")), tmp_path / "o")
    assert not (tmp_path / "o").exists()


def _image_tree(root: Path, classes: int, per_class: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        d = root / f"class{c}"
        d.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 64, (12, 10, 3)) + 180 * (c % 2)
            Image.fromarray(pixels.astype(np.uint8)).save(d / f"{i}.png")


def test_image_folder_with_a_split(tmp_path: Path) -> None:
    _image_tree(tmp_path / "imgs", 2, 10)
    g = tiny(2)
    cfg = TrainConfig(
        **{**FAST, "epochs": 10, "lr": 0.03}, data=str(tmp_path / "imgs"), augment=("flip",)
    )
    r = train(g, cfg, None)
    assert r.data["train_images"] == 16 and r.data["val_images"] == 4
    assert r.best_val_accuracy == 1.0  # dark vs bright images
    with pytest.raises(TrainError, match="head has 10 outputs but .* has 2 classes"):
        train(tiny(10), TrainConfig(**FAST, data=str(tmp_path / "imgs")), None)


def test_out_of_memory_is_one_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from graphcnn.train import engine

    def oom(self: Any, x: Any, target: Any) -> Any:
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(engine.Trainer, "_forward_loss", oom)
    with pytest.raises(TrainError, match="out of memory training with --batch-size 64") as e:
        train(tiny(), TrainConfig(**FAST), tmp_path / "run")
    assert "smaller --batch-size" in (e.value.hint or "")
    assert not (tmp_path / "run").exists()


def test_freezing_everything_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="every layer is frozen"):
        train(tiny(), TrainConfig(**FAST, freeze=("conv1", "bn1", "conv2", "fc")), tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_a_drop_connect_network_trains() -> None:
    spec = SPEC.replace("linear(classes) as fc", "linear(classes, drop_connect: 0.3) as fc")
    g = graphcnn.compile_text(spec)
    assert g["fc"].attrs["drop_connect"] == 0.3
    assert train(g, TrainConfig(**FAST), None).best_val_accuracy > 0.6


@pytest.mark.slow
def test_torchvision_checkpoint_fine_tunes_the_head_only(tmp_path: Path) -> None:
    """resnet18 from a torchvision state dict, 1000 -> 10 classes, body frozen."""
    torchvision = pytest.importorskip("torchvision")
    tv = torchvision.models.resnet18()  # its own random init: no download
    ckpt = tmp_path / "resnet18.pth"
    torch.save(tv.state_dict(), ckpt)
    g = graphcnn.compile("resnet18", params={"classes": 10}, input_shape=(3, 32, 32))
    cfg = TrainConfig(epochs=1, threads=1, batch_size=128, weights=str(ckpt), freeze_until="fc")
    r = train(g, cfg, tmp_path / "run")
    assert r.transfer["head_replaced"] == ["fc.weight", "fc.bias"]
    end = load_safetensors(tmp_path / "run" / "last.safetensors")
    state = {k: v.numpy() for k, v in tv.state_dict().items() if "num_batches" not in k}
    body = [k for k in state if not k.startswith("fc.")]
    assert all(np.array_equal(state[k], end[k]) for k in body)
    assert end["fc.weight"].shape == (10, 512)


def test_small_models_train_on_one_thread_by_default() -> None:
    from graphcnn.train.engine import auto_threads

    assert auto_threads(graphcnn.compile("lenet5"), 32) == 1  # 13M MACs a batch
    assert auto_threads(graphcnn.compile("resnet18"), 32) is None  # 58G: torch's default


def test_optimizer_groups_decay_and_discriminative_lrs() -> None:
    from graphcnn.backends.to_torch import to_torch
    from graphcnn.train.optim import optimizer

    model = to_torch(tiny())
    cfg = TrainConfig(lr=0.1, weight_decay=0.01, body_lr_scale=0.1)
    opt = optimizer(model, cfg, {"fc"})
    names = {id(p): n for n, p in model.named_parameters()}
    got = {
        names[id(p)]: (g["lr"], g["weight_decay"]) for g in opt.param_groups for p in g["params"]
    }
    assert got == {
        "conv1.weight": (pytest.approx(0.01), 0.01),
        "bn1.weight": (pytest.approx(0.01), 0.0),
        "bn1.bias": (pytest.approx(0.01), 0.0),
        "conv2.weight": (pytest.approx(0.01), 0.01),
        "conv2.bias": (pytest.approx(0.01), 0.0),
        "fc.weight": (0.1, 0.01),
        "fc.bias": (0.1, 0.0),
    }


def test_resume_refuses_a_pair_stopped_between_its_two_writes(tmp_path: Path) -> None:
    """last.safetensors is written before state.pt: a stop between them (simulated by putting
    back the previous epoch's state) leaves weights of epoch 2 beside the state of epoch 1."""
    cfg = TrainConfig(**{**FAST, "epochs": 1})
    train(tiny(), cfg, tmp_path)
    old_state = (tmp_path / "state.pt").read_bytes()
    train(tiny(), TrainConfig(**{**FAST, "epochs": 2}), tmp_path, resume=True)
    (tmp_path / "state.pt").write_bytes(old_state)  # as if stopped before the state's rename
    with pytest.raises(TrainError, match="from different epochs"):
        train(tiny(), TrainConfig(**{**FAST, "epochs": 3}), tmp_path, resume=True)
