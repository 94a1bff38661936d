"""``graphcnn train`` benchmark (issue 12). A benchmark script, not a timed test.

1. Speed: ``graphcnn.train.train`` against a plain hand-written torch loop on the same model
   (LeNet-5, seeded init), the same data (digits 32x32, normalised, batch 32, shuffled every
   epoch), the same optimizer (AdamW) and the same per-batch bookkeeping (loss and hits read
   back every step, as every loop that logs does). One thread, one process, repetitions
   interleaved (ours, hand, ours, hand, ...); each repetition compiles, lowers, loads the data
   and trains ``--epochs`` epochs with a validation pass after each (the hand loop too), writing
   no files. The primary figure is CPU time (``time.process_time``) of a whole repetition,
   as images trained per CPU second: on a shared, oversubscribed machine wall time mostly
   measures the scheduler. Per-epoch wall-clock images/s of the training phase (first epoch
   dropped) is printed beside it. Requirement: ours >= 0.95 x hand (ratio of medians).
2. LeNet-5 on digits with the defaults (``graphcnn train lenet5``): best validation accuracy and
   CPU seconds of the whole run (process time, imports included), for ``--seeds`` seeds.
   Requirement: >= 97% in under a minute of CPU.
3. A small ResNet (``docs/examples/resnet_digits.gcnn``, 78k parameters, 16x16 digits) trained
   with and without regularisers (augmentation, cutout, mixup, label smoothing, dropout, weight
   decay), ``--seeds`` seeds each, same epochs and learning-rate schedule.

Examples::

    .venv/bin/python tools/bench_train.py                     # all three (about 10 min here)
    .venv/bin/python tools/bench_train.py --only speed --repeats 7
    .venv/bin/python tools/bench_train.py --only resnet --seeds 3 --json-out /tmp/bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import graphcnn
from graphcnn import datasets
from graphcnn.backends.to_torch import to_torch
from graphcnn.train import TrainConfig, train

ROOT = Path(__file__).resolve().parent.parent
RESNET = ROOT / "docs" / "examples" / "resnet_digits.gcnn"
PLAIN = {"weight_decay": 0.0}
REGULARISED = {
    "augment": ("affine",),
    "cutout": 4,
    "mixup": 0.2,
    "label_smoothing": 0.1,
    "dropout": 0.2,
    "weight_decay": 0.05,
}


def hand_loop(epochs: int, batch: int, lr: float) -> list[float]:
    """Images/s of each epoch of a plain loop: LeNet-5, digits, AdamW, loss and hits logged,
    a validation pass after every epoch."""
    g = graphcnn.compile("lenet5")
    x, y = datasets.digits(32)
    xt, yt, xv, yv = (torch.from_numpy(a) for a in datasets.split(x, y, 0.2))
    mean, std = xt.mean(), xt.std()
    xt, xv = (xt - mean) / std, (xv - mean) / std
    model = to_torch(g, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(0)
    speeds = []
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        loss_sum = hits = 0.0
        for idx in torch.randperm(len(xt), generator=gen).split(batch):
            xb, yb = xt[idx], yt[idx]
            opt.zero_grad(set_to_none=True)
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            loss.backward()
            opt.step()
            loss_sum += float(loss.detach()) * len(yb)
            hits += float((out.detach().argmax(1) == yb).sum())
        speeds.append(len(xt) / (time.perf_counter() - start))
        model.eval()
        with torch.no_grad():
            val_loss = val_hits = 0.0
            for i in range(0, len(xv), batch):
                out = model(xv[i : i + batch])
                val_loss += float(F.cross_entropy(out, yv[i : i + batch], reduction="sum"))
                val_hits += float((out.argmax(1) == yv[i : i + batch]).sum())
    return speeds


def ours(epochs: int, batch: int, lr: float) -> list[float]:
    cfg = TrainConfig(epochs=epochs, batch_size=batch, lr=lr, schedule="constant", threads=1)
    r = train(graphcnn.compile("lenet5"), cfg, None)
    return [row["images_per_second"] for row in r.rows]


def speed(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(1)
    a: list[float] = []
    b: list[float] = []
    cpu: dict[str, list[float]] = {"ours": [], "hand": []}
    images = args.epochs * 1438  # the digits' training split
    for i in range(args.repeats):
        runs = [("ours", a, ours), ("hand", b, hand_loop)]
        for name, sink, fn in runs if i % 2 == 0 else runs[::-1]:
            start = time.process_time()
            sink += fn(args.epochs, 32, 5e-3)[1:]
            cpu[name].append(images / (time.process_time() - start))
    ours_cpu, hand_cpu = statistics.median(cpu["ours"]), statistics.median(cpu["hand"])
    out = {
        "cpu_images_per_second": {"graphcnn": ours_cpu, "hand_loop": hand_cpu},
        "cpu_ratio": ours_cpu / hand_cpu,
        "wall_images_per_second": {
            "graphcnn": statistics.median(a),
            "hand_loop": statistics.median(b),
        },
        "wall_ratio": statistics.median(a) / statistics.median(b),
        "repeats": args.repeats,
        "loadavg": os.getloadavg(),
    }
    print(
        f"speed (CPU time, whole runs): graphcnn train {ours_cpu:,.0f} img/CPU-s, hand loop "
        f"{hand_cpu:,.0f} img/CPU-s, ratio {out['cpu_ratio']:.3f} (medians of "
        f"{args.repeats})"
    )
    print(
        f"speed (wall, training phase): graphcnn train {statistics.median(a):,.0f} img/s, "
        f"hand loop {statistics.median(b):,.0f} img/s, ratio {out['wall_ratio']:.3f} "
        f"(medians of {len(a)} epochs; load average {os.getloadavg()[0]:.1f})"
    )
    return out


LENET_RECIPES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "--epochs 15 --augment affine": {"epochs": 15, "augment": ("affine",)},
}


def lenet(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for recipe, options in LENET_RECIPES.items():
        for seed in range(args.seeds):
            res = lenet_run(seed, options)
            res.update(recipe=recipe)
            rows.append(res)
            print(
                f"lenet5 {recipe}, seed {seed}: best val {res['acc']:.2%} (last epoch "
                f"{res['last']:.2%}), {res['cpu']:.1f} s CPU, {res['wall']:.1f} s wall"
            )
    return rows


def lenet_run(seed: int, options: dict[str, Any]) -> dict[str, Any]:
    """One LeNet-5 run in a fresh process: its CPU time includes the imports."""
    import subprocess
    import sys

    code = (
        "import time, json, graphcnn; from graphcnn.train import TrainConfig, train; "
        f"r = train(graphcnn.compile('lenet5'), TrainConfig(seed={seed}, threads=1, "
        f"**{options!r})); "
        "print(json.dumps({'acc': r.best_val_accuracy, 'last': r.rows[-1]['val_accuracy'], "
        "'cpu': time.process_time()}))"
    )
    start = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    res: dict[str, Any] = json.loads(p.stdout)
    res.update(seed=seed, wall=time.perf_counter() - start)
    return res


def resnet(args: argparse.Namespace) -> dict[str, Any]:
    g = graphcnn.compile(str(RESNET))
    out: dict[str, Any] = {}
    for label, opts in (("plain", PLAIN), ("regularised", REGULARISED)):
        accs = []
        for seed in range(args.seeds):
            cfg = TrainConfig(epochs=args.resnet_epochs, seed=seed, threads=1, **opts)  # type: ignore[arg-type]
            start = time.perf_counter()
            r = train(g, cfg, None)
            accs.append(r.best_val_accuracy)
            print(
                f"resnet_digits {label} seed {seed}: best val {r.best_val_accuracy:.2%} "
                f"(epoch {r.best_epoch}, last {r.rows[-1]['val_accuracy']:.2%}), "
                f"{time.perf_counter() - start:.0f} s"
            )
        out[label] = {"best_val_accuracy": accs, "mean": statistics.mean(accs)}
    diff = out["regularised"]["mean"] - out["plain"]["mean"]
    out["difference_points"] = 100 * diff
    print(
        f"resnet_digits: regularised {out['regularised']['mean']:.2%} vs plain "
        f"{out['plain']['mean']:.2%} mean best val over {args.seeds} seeds "
        f"({100 * diff:+.2f} points); regularisers: {REGULARISED}"
    )
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=["speed", "lenet", "resnet"], default=None)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--epochs", type=int, default=3, help="epochs per speed repetition")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--resnet-epochs", type=int, default=15)
    p.add_argument("--json-out", default=None)
    args = p.parse_args()
    result: dict[str, Any] = {"torch": torch.__version__, "cpus": os.cpu_count()}
    for name, fn in (("speed", speed), ("lenet", lenet), ("resnet", resnet)):
        if args.only in (None, name):
            result[name] = fn(args)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
