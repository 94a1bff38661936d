"""``graphcnn train``: train a spec's lowered PyTorch module (see docs/training.md).

Options follow timm's ``train.py`` and torchvision's reference scripts; every one is a field of
:class:`graphcnn.train.TrainConfig`. Under ``torchrun`` (or with ``--nproc N``, which launches
torchrun) it trains with DistributedDataParallel and only rank 0 prints and writes.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from graphcnn.cli.options import compile_spec, json_option, model_options
from graphcnn.train.config import AUGMENTS, TrainConfig

D = TrainConfig()
"""The defaults: the CLI's are the API's."""


def _parse_list(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """``a,b`` (or repeated) -> ``("a", "b")``."""
    if not value:
        return ()
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _parse_augment(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    names = _parse_list(ctx, param, value)
    unknown = [n for n in names if n not in AUGMENTS]
    if unknown:
        raise click.BadParameter(
            f"unknown policy {', '.join(map(repr, unknown))}; the policies are: "
            + ", ".join(AUGMENTS)
        )
    return names


class _Progress:
    """The :class:`graphcnn.train.Reporter` of the CLI: a rich bar per epoch, a line after."""

    def __init__(self, epochs_total: int, stream_err: bool):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        from graphcnn.cli import render

        self.console = render.console(stderr=stream_err)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
            console=render.console(stderr=True),
            transient=True,
        )
        self.task: Any = None
        self.best = -1.0
        self.epochs = epochs_total

    def start(self, epoch: int, epochs: int, batches: int) -> None:
        if self.task is None:
            self.progress.start()
        else:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(f"epoch {epoch}/{epochs}", total=batches, loss="-")

    def advance(self, loss: float) -> None:
        self.progress.update(self.task, advance=1, loss=f"{loss:.4f}")

    def end(self, row: Any) -> None:
        from graphcnn.cli import render

        best = row["val_accuracy"] > self.best
        self.best = max(self.best, row["val_accuracy"])
        self.console.print(render.train_epoch_line(row, self.epochs, best))

    def close(self) -> None:
        if self.task is not None:
            self.progress.stop()


def _launch(nproc: int) -> None:
    """Re-run this command under ``torchrun --standalone --nproc_per_node N``."""
    import subprocess

    args, skip = [], False
    for a in sys.argv[1:]:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            args.append(a)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "graphcnn.cli",
        *args,
    ]
    sys.exit(subprocess.call(cmd))


@click.command("train")
@model_options
@click.option(
    "--data",
    default="digits",
    show_default=True,
    metavar="digits|DIR",
    help="digits (built in, nothing to download) or an ImageFolder tree: "
    "DIR/train/<class>/ and DIR/val/<class>/, or DIR/<class>/ split by --val-split.",
)
@click.option(
    "--val-split",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=D.val_split,
    show_default=True,
    help="Validation share when there is no val/.",
)
@click.option("--epochs", type=click.IntRange(min=1), default=D.epochs, show_default=True)
@click.option(
    "--batch-size",
    "-b",
    type=click.IntRange(min=1),
    default=D.batch_size,
    show_default=True,
    help="Global batch (divided among --nproc / torchrun processes).",
)
@click.option(
    "--lr",
    type=click.FloatRange(min=0, min_open=True),
    default=D.lr,
    show_default=True,
    help="Peak learning rate.",
)
@click.option(
    "--optimizer", type=click.Choice(["sgd", "adamw"]), default=D.optimizer, show_default=True
)
@click.option("--momentum", type=float, default=D.momentum, show_default=True, help="SGD momentum.")
@click.option("--nesterov", is_flag=True, help="SGD with Nesterov momentum.")
@click.option(
    "--weight-decay",
    "--wd",
    type=click.FloatRange(min=0),
    default=D.weight_decay,
    show_default=True,
    help="L2 (SGD) / decoupled (AdamW) decay of conv and linear "
    "weights; biases and batch norm are not decayed.",
)
@click.option(
    "--schedule",
    type=click.Choice(["step", "cosine", "plateau", "constant"]),
    default=D.schedule,
    show_default=True,
    help="step: x gamma every --step-size epochs; plateau: x gamma when validation "
    "accuracy stops improving for --plateau-patience epochs.",
)
@click.option(
    "--warmup",
    "warmup_epochs",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Epochs of linear warm-up from lr/10.",
)
@click.option("--step-size", type=click.IntRange(min=1), default=D.step_size, show_default=True)
@click.option(
    "--gamma",
    type=click.FloatRange(0, 1, min_open=True),
    default=D.gamma,
    show_default=True,
    help="LR factor of step and plateau.",
)
@click.option(
    "--plateau-patience", type=click.IntRange(min=0), default=D.plateau_patience, show_default=True
)
@click.option("--label-smoothing", type=click.FloatRange(0, 1, max_open=True), default=0.0)
@click.option(
    "--augment",
    callback=_parse_augment,
    metavar="POLICY[,POLICY]",
    help="Per-sample augmentation policies, applied in this order: " + ", ".join(AUGMENTS) + ".",
)
@click.option(
    "--cutout",
    type=click.IntRange(min=0),
    default=0,
    metavar="PIXELS",
    help="Cutout: zero a random PIXELS x PIXELS square of every training image.",
)
@click.option("--mixup", type=click.FloatRange(min=0), default=0.0, metavar="ALPHA")
@click.option("--cutmix", type=click.FloatRange(min=0), default=0.0, metavar="ALPHA")
@click.option(
    "--dropout",
    type=click.FloatRange(0, 1, max_open=True),
    default=None,
    metavar="P",
    help="Override p of every dropout layer of the spec.",
)
@click.option(
    "--drop-connect",
    type=click.FloatRange(0, 1, max_open=True),
    default=None,
    metavar="P",
    help="DropConnect: override p of every conv/linear that has it; in a network with none, "
    "drop weights of every linear layer with probability P (0 removes it).",
)
@click.option(
    "--early-stopping",
    type=click.IntRange(min=0),
    default=0,
    metavar="PATIENCE",
    help="Stop after PATIENCE epochs without a better validation accuracy.",
)
@click.option("--amp", is_flag=True, help="Automatic mixed precision (autocast).")
@click.option(
    "--amp-dtype",
    type=click.Choice(["bf16", "fp16"]),
    default="bf16",
    show_default=True,
    help="fp16 adds a gradient scaler.",
)
@click.option("--channels-last", is_flag=True, help="NHWC memory format.")
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="DataLoader worker processes.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="torch CPU threads per process (0: one for a small model, a batch under 1 GMAC; "
    "torch's default otherwise).",
)
@click.option(
    "--weights",
    type=click.Path(dir_okay=False),
    default=None,
    help="Start from a checkpoint: graphcnn .safetensors, torchvision or timm "
    "state dict. A head whose shape changed (--set classes=C) is re-initialised.",
)
@click.option(
    "--freeze",
    callback=_parse_list,
    metavar="SCOPE[,SCOPE]",
    help="Freeze these scopes (e.g. conv1,layer1).",
)
@click.option(
    "--freeze-until",
    default=None,
    metavar="SCOPE",
    help="Freeze every layer before SCOPE (e.g. fc: retrain the head only).",
)
@click.option(
    "--body-lr-scale",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Learning rate of all but the head, relative to --lr.",
)
@click.option(
    "--out",
    "-o",
    default=None,
    metavar="DIR",
    help="Where the run's files go (default: runs/<model>).",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last epoch.")
@click.option(
    "--nproc",
    type=click.IntRange(min=1),
    default=None,
    help="Launch N processes with torchrun (DDP: gloo on CPU, NCCL on GPUs).",
)
@json_option("Print one JSON object at the end (progress still goes to stderr).")
def train_cmd(
    spec: str,
    network: str | None,
    sets: dict[str, str],
    input_shape: tuple[int, ...] | None,
    out: str | None,
    resume: bool,
    nproc: int | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Train SPEC_OR_MODEL and write checkpoints, metrics and curves to --out.

    \b
    Writes (atomically) best.safetensors, last.safetensors (loadable by
    `graphcnn compile --weights`), metrics.csv, curves.png, run.json, state.pt.
    \b
    Examples:
      graphcnn train lenet5
      graphcnn train resnet18 --set classes=10 --input 1x32x32 --augment crop --cutout 8
      graphcnn train resnet18 --data photos/ --weights resnet18.pth --set classes=5 \\
          --freeze-until fc
      torchrun --standalone --nproc_per_node 2 $(which graphcnn) train lenet5
    """
    import json

    if nproc is not None and nproc > 1 and "WORLD_SIZE" not in os.environ:
        _launch(nproc)
    from graphcnn.api import is_onnx
    from graphcnn.train import train

    config = TrainConfig(**options)
    config.check()
    g = compile_spec(spec, network, sets, input_shape, None)
    if is_onnx(spec) and not config.weights:
        # NOTE: a run starts from a weights file (run.json names it, --resume re-reads it); the
        # ONNX initializers are one once `graphcnn import -o` has written them.
        click.echo(
            f"note: training the architecture of {spec} from seeded init; to start from its "
            f"weights: graphcnn import {spec} -o w.safetensors, then --weights w.safetensors",
            err=True,
        )
    out_dir = out or os.path.join("runs", g.name)
    main = os.environ.get("RANK", "0") == "0"
    reporter = _Progress(config.epochs, stream_err=as_json) if main else None
    try:
        result = train(g, config, out_dir, resume, reporter)
    finally:
        if reporter is not None:
            reporter.close()
    if not main:
        return
    if as_json:
        click.echo(json.dumps(result.to_json()))
        return
    from graphcnn.cli import render

    con = render.console()
    for r in render.train_summary(result.to_json()):
        con.print(r)
