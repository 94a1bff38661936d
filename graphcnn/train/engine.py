"""The training loop: :func:`train` runs a graph's lowered module over the data, epoch by epoch.

Per epoch: reseed torch from ``(seed, epoch, rank)`` (so augmentation, dropout and mixing of an
epoch do not depend on what ran before it: a resumed run repeats an uninterrupted one bit for
bit), train on this rank's shard (``DistributedSampler``), sum loss, hits and images over the
ranks, evaluate on the validation set, step the schedule, ask early stopping, and on rank 0
write ``last.safetensors``, ``best.safetensors`` when validation accuracy improved,
``state.pt``, ``metrics.csv``, ``curves.png`` and ``run.json``.

Auxiliary heads (training-only outputs) add ``aux_weight`` times their loss, as torchvision's
reference training of GoogLeNet and Inception v3 does. The library never prints: progress goes
to a :class:`Reporter` (the CLI's draws a rich progress bar).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from graphcnn.ir import Graph
from graphcnn.train import checkpoint, distributed, metrics, optim, regularize, transfer
from graphcnn.train.config import TrainConfig, TrainError
from graphcnn.train.data import Data, load_data, train_loader, val_batches


class Reporter(Protocol):
    def start(self, epoch: int, epochs: int, batches: int) -> None: ...
    def advance(self, loss: float) -> None: ...
    def end(self, row: metrics.Row) -> None: ...


class Silent:
    """A :class:`Reporter` that reports nothing."""

    def start(self, epoch: int, epochs: int, batches: int) -> None: ...
    def advance(self, loss: float) -> None: ...
    def end(self, row: metrics.Row) -> None: ...


@dataclass
class TrainResult:
    """What a run achieved (``graphcnn train --json`` prints :meth:`to_json`)."""

    model: str
    best_val_accuracy: float
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    images_per_second: float
    rows: list[dict[str, float]]
    out: str | None
    transfer: dict[str, Any]
    data: dict[str, Any]
    processes: int
    device: str
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        last = self.rows[-1] if self.rows else {}
        return {
            "model": self.model,
            "best_val_accuracy": self.best_val_accuracy,
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "stopped_early": self.stopped_early,
            "images_per_second": self.images_per_second,
            "final": dict(last),
            "out": self.out,
            "transfer": self.transfer,
            "data": self.data,
            "processes": self.processes,
            "device": self.device,
            "notes": self.notes,
        }


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + rank) % (2**63)


def _logits_index(graph: Graph) -> tuple[int, int]:
    """Position of the logits among the train-mode outputs, and their class count."""
    main = [i for i, (_, n) in enumerate(graph.outputs) if not graph[n].training_only]
    if len(main) != 1:
        raise TrainError(
            f"{graph.name} has {len(main)} inference outputs; training needs exactly one "
            "(the logits)"
        )
    node = graph[graph.outputs[main[0]][1]]
    if len(node.type.shape) != 2:
        raise TrainError(
            f"{graph.name}'s output {node.name} is {list(node.type.shape)}, not [N, classes]"
        )
    return main[0], int(node.type.shape[1])


SMALL_BATCH_MACS = 1e9
"""Below this many multiply-accumulates per batch, ``--threads 0`` trains on one thread."""


def auto_threads(graph: Graph, batch: int) -> int | None:
    """One CPU thread for a small model's batches, else None (torch's default).

    NOTE: intra-op threads speed up nothing on a batch of LeNet-5 (13M MACs) and, on a busy
    machine, their spin-waits cost many times the work: the default run measured 48 s of CPU
    on 2 threads against 6.4 s on one (docs/benchmarks.md).
    """
    from graphcnn.cost import profile

    return 1 if profile(graph, training=True).totals.macs * batch < SMALL_BATCH_MACS else None


def _is_oom(e: BaseException) -> bool:
    text = str(e).lower()
    return "out of memory" in text or "can't allocate memory" in text


class Trainer:
    """One run: built by :func:`train`, which documents its parameters."""

    def __init__(self, graph: Graph, config: TrainConfig, out: Path | None, resume: bool):
        import torch

        config.check()
        self.threads = config.threads or auto_threads(graph, config.batch_size)
        if self.threads:
            torch.set_num_threads(self.threads)
        self.config, self.out = config, out
        self.notes: list[str] = []
        if config.dropout is not None:
            graph, changed = regularize.set_dropout(graph, config.dropout)
            if not changed:
                self.notes.append(f"--dropout {config.dropout}: the network has no dropout")
        if config.drop_connect is not None:
            p = config.drop_connect
            graph, changed, added = regularize.set_drop_connect(graph, p)
            if not changed:
                self.notes.append(f"--drop-connect {p}: the network has no linear layer")
            elif added and p > 0:
                self.notes.append(
                    f"--drop-connect {p}: on the {changed} linear layer(s) (the network had no "
                    "DropConnect)"
                )
        self.graph = graph
        if len(graph.inputs) != 1:
            raise TrainError(f"{graph.name} has {len(graph.inputs)} inputs; training needs one")
        c, h, w = (int(d) for d in graph.inputs[0].type.shape[1:])
        self.logits_at, classes = _logits_index(graph)
        self.dist = distributed.setup(config)
        self.data: Data = load_data(config, (c, h, w))
        if classes != len(self.data.classes):
            raise TrainError(
                f"{graph.name}'s head has {classes} outputs but --data {config.data} has "
                f"{len(self.data.classes)} classes",
                f"--set classes={len(self.data.classes)} (with --weights the head is replaced)",
            )
        self.batch = distributed.check_batch(config.batch_size, self.dist)
        weights, self.transfer = transfer.initial_weights(graph, config)
        frozen = transfer.frozen_nodes(graph, config)
        self.state: dict[str, Any] | None = None
        if resume:
            if out is None:
                raise TrainError("--resume needs --out DIR (the run to continue)")
            weights, self.state = checkpoint.load_resume(out)
            self.transfer.source = f"resumed from {out / checkpoint.LAST}"
            self._check_resume(self.state)
        from graphcnn.backends.to_torch import to_torch

        model = to_torch(graph, weights)
        self.transfer.frozen = frozen
        self.transfer.frozen_params, self.frozen_bns = transfer.apply_freeze(model, graph, frozen)
        self.model = model.to(self.dist.device)
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.ddp = distributed.wrap(self.model, self.dist)
        self.heads = transfer.head_nodes(graph)
        self.opt = optim.optimizer(self.model, config, self.heads)
        self.schedule = optim.Schedule(self.opt, config)
        self.stopper = regularize.EarlyStopping(config.early_stopping)
        self.mixer = regularize.batch_mixer(config.mixup, config.cutmix, classes)
        amp_dtype = torch.float16 if config.amp_dtype == "fp16" else torch.bfloat16
        self.amp = (self.dist.device.type, amp_dtype, config.amp)
        use_scaler = config.amp and config.amp_dtype == "fp16"
        self.scaler = torch.amp.GradScaler(self.dist.device.type, enabled=use_scaler)
        self.rows: list[dict[str, float]] = []
        self.start_epoch = 1
        self.stopped = False
        if self.state is not None:
            self._load_state(self.state)

    def _check_resume(self, state: dict[str, Any]) -> None:
        old = dict(state.get("config", {}))
        new = self.config.to_json()
        free = ("epochs", "weights", "threads", "workers")  # what may change on resume
        diff = [k for k in new if k not in free and old.get(k) != new[k]]
        if diff:
            raise TrainError(
                f"--resume: the options differ from the run in {self.out}: {', '.join(diff)}",
                "resume with the same options (only --epochs, --threads, --workers may change)",
            )

    def _load_state(self, state: dict[str, Any]) -> None:
        self.opt.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.scaler.load_state_dict(state["scaler"])
        self.stopper.load(state["early_stopping"])
        self.rows = [dict(r) for r in state["rows"]]
        self.start_epoch = int(state["epoch"]) + 1
        self.stopped = bool(state["stopped"])
        main = self.schedule.main
        if hasattr(main, "T_max"):  # a longer run stretches the cosine to its new end
            main.T_max = max(1, self.config.epochs - self.schedule.warmup)

    def _forward_loss(self, x: Any, target: Any) -> tuple[Any, Any]:
        import torch

        device_type, dtype, enabled = self.amp
        if enabled:
            with torch.autocast(device_type, dtype=dtype):
                out = self.ddp(x)
        else:
            out = self.ddp(x)
        smoothing = self.config.label_smoothing
        if isinstance(out, tuple):
            logits = out[self.logits_at]
            loss = regularize.soft_cross_entropy(logits, target, smoothing)
            for i, aux in enumerate(out):
                if i != self.logits_at:
                    aux_loss = regularize.soft_cross_entropy(aux, target, smoothing)
                    loss = loss + self.config.aux_weight * aux_loss
            return logits, loss
        return out, regularize.soft_cross_entropy(out, target, smoothing)

    def _to_device(self, x: Any, y: Any) -> tuple[Any, Any]:
        import torch

        dev = self.dist.device
        if dev.type == "cpu" and not self.config.channels_last:
            return x, y  # already there: a no-op .to() still costs a dispatch per batch
        fmt = torch.channels_last if self.config.channels_last else torch.contiguous_format
        return x.to(dev, non_blocking=True, memory_format=fmt), y.to(dev, non_blocking=True)

    def _train_epoch(self, loader: Any, reporter: Reporter) -> tuple[float, float, float, float]:
        self.ddp.train()
        for name in self.frozen_bns:
            self.model.get_submodule(name).eval()
        loss_sum = hits = seen = 0.0
        start = time.perf_counter()
        for x, y in loader:
            x, y = self._to_device(x, y)
            target = y
            if self.mixer is not None:
                x, target = self.mixer(x, y)
            self.opt.zero_grad(set_to_none=True)
            logits, loss = self._forward_loss(x, target)
            if self.scaler.is_enabled():
                self.scaler.scale(loss).backward()
                self.scaler.step(self.opt)
                self.scaler.update()
            else:
                loss.backward()
                self.opt.step()
            n = y.shape[0]
            value = float(loss.detach())
            loss_sum += value * n
            hits += float((logits.detach().argmax(1) == regularize.hard_labels(target)).sum())
            seen += n
            reporter.advance(value)
        seconds = time.perf_counter() - start
        return loss_sum, hits, seen, seconds

    def _evaluate(self) -> tuple[float, float, float]:
        import torch
        import torch.nn.functional as F

        self.ddp.eval()
        loss_sum = hits = seen = 0.0
        device_type, dtype, enabled = self.amp
        with torch.no_grad(), torch.autocast(device_type, dtype=dtype, enabled=enabled):
            for x, y in val_batches(self.data, self.batch, self.dist.rank, self.dist.world):
                x, y = self._to_device(x, y)
                out = self.model(x)
                loss_sum += float(F.cross_entropy(out.float(), y, reduction="sum"))
                hits += float((out.argmax(1) == y).sum())
                seen += y.shape[0]
        return loss_sum, hits, seen

    def run(self, reporter: Reporter) -> TrainResult:
        import torch

        cfg = self.config
        loader, sampler = train_loader(self.data, cfg, self.batch, self.dist.rank, self.dist.world)
        for epoch in range(self.start_epoch, cfg.epochs + 1):
            if self.stopped:
                break
            torch.manual_seed(epoch_seed(cfg.seed, epoch, self.dist.rank))
            sampler.set_epoch(epoch)
            reporter.start(epoch, cfg.epochs, len(loader))
            lr = self.schedule.lr()
            try:
                tl, th, tn, seconds = self._train_epoch(loader, reporter)
                vl, vh, vn = self._evaluate()
            except (RuntimeError, MemoryError) as e:
                if isinstance(e, MemoryError) or _is_oom(e):
                    raise TrainError(
                        f"out of memory training with --batch-size {cfg.batch_size} on "
                        f"{self.dist.device}",
                        "use a smaller --batch-size (or --amp / a smaller --input)",
                    ) from None
                raise
            tl, th, tn, vl, vh, vn, seconds = distributed.all_sum(
                self.dist, [tl, th, tn, vl, vh, vn, seconds]
            )
            seconds /= self.dist.world
            row = {
                "epoch": float(epoch),
                "train_loss": tl / tn,
                "train_accuracy": th / tn,
                "val_loss": vl / vn,
                "val_accuracy": vh / vn,
                "lr": lr,
                "seconds": seconds,
                "images_per_second": tn / seconds if seconds > 0 else 0.0,
            }
            self.rows.append(row)
            improved = self.stopper.improved(row["val_accuracy"])
            self.stopped = self.stopper.step(row["val_accuracy"])
            self.schedule.step(row["val_accuracy"])
            if self.dist.main and self.out is not None:
                self._write(improved)
            reporter.end(row)
        distributed.teardown(self.dist)
        return self.result()

    def _write(self, improved: bool) -> None:
        assert self.out is not None
        out = self.out
        meta = {
            "format": "graphcnn-train",
            "model": self.graph.name,
            "epoch": str(int(self.rows[-1]["epoch"])),
        }
        checkpoint.save_weights(self.model, out / checkpoint.LAST, meta)
        if improved:
            checkpoint.save_weights(self.model, out / checkpoint.BEST, meta)
        checkpoint.save_state(
            out / checkpoint.STATE,
            {
                "epoch": int(self.rows[-1]["epoch"]),
                "optimizer": self.opt.state_dict(),
                "schedule": self.schedule.state_dict(),
                "scaler": self.scaler.state_dict(),
                "early_stopping": self.stopper.state(),
                "rows": self.rows,
                "stopped": self.stopped,
                "config": self.config.to_json(),
                # the pair is written last-then-state: a stop between the two leaves a state
                # whose hash does not match last.safetensors, and --resume refuses it
                "last_sha256": checkpoint.file_sha256(out / checkpoint.LAST),
            },
        )
        metrics.write_csv(self.rows, out / "metrics.csv")
        metrics.plot_curves(
            self.rows, out / "curves.png", f"{self.graph.name} on {self.config.data}"
        )
        metrics.write_json(self.run_json(), out / "run.json")

    def run_json(self) -> dict[str, Any]:
        import torch

        from graphcnn.backends.to_tensorrt.manifest import ir_hash, spec_hash
        from graphcnn.version import __version__

        return {
            "format": "graphcnn-train-run",
            "graphcnn": __version__,
            "model": self.graph.name,
            "input": list(self.graph.inputs[0].type.shape[1:]),
            "ir_sha256": ir_hash(self.graph),
            "spec_sha256": spec_hash(self.graph),
            "config": self.config.to_json(),
            "data": self.data.describe(),
            "transfer": self.transfer.to_json(),
            "processes": self.dist.world,
            "device": str(self.dist.device),
            "threads": torch.get_num_threads(),
            "result": self.result().to_json(),
        }

    def result(self) -> TrainResult:
        ran = list(self.rows)
        total_images = sum(r["images_per_second"] * r["seconds"] for r in ran)
        total_seconds = sum(r["seconds"] for r in ran)
        return TrainResult(
            model=self.graph.name,
            best_val_accuracy=self.stopper.best or 0.0,
            best_epoch=self.stopper.best_epoch,
            epochs_run=len(ran),
            stopped_early=self.stopped and len(ran) < self.config.epochs,
            images_per_second=total_images / total_seconds if total_seconds else 0.0,
            rows=ran,
            out=str(self.out) if self.out is not None else None,
            transfer=self.transfer.to_json(),
            data=self.data.describe(),
            processes=self.dist.world,
            device=str(self.dist.device),
            notes=self.notes,
        )


def train(
    graph: Graph,
    config: TrainConfig | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    reporter: Reporter | None = None,
) -> TrainResult:
    """Train ``graph`` (its lowered PyTorch module) as ``config`` says; files go to ``out``.

    Every check that needs no training (options, data folder, class count against the head,
    weights, frozen scopes, a resumable run) runs before the first step, so a bad run fails
    with one :class:`TrainError` and writes nothing. ``out=None`` trains without writing.
    """
    trainer = Trainer(graph, config or TrainConfig(), Path(out) if out else None, resume)
    return trainer.run(reporter or Silent())
