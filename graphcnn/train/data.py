"""Training data: the built-in digits or an ImageFolder tree, the augmentation policies, loaders.

``--data digits`` is :func:`graphcnn.datasets.digits` resized to the network's input, split
stratified (``--val-split``) and kept in memory; ``--data DIR`` is an ImageFolder tree, either
``DIR/train/<class>/*`` and ``DIR/val/<class>/*`` or ``DIR/<class>/*`` split by ``--val-split``.
Per-sample transforms are torchvision's ``transforms.v2`` in the order of torchvision's reference
scripts: geometry and colour on [0, 1] images, then normalisation, then cutout
(``RandomErasing`` of a fixed square, value 0 = the mean after normalisation). Loaders shard with
a ``DistributedSampler`` (one replica outside DDP), reshuffled per epoch from the run's seed, so
a resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphcnn.train.config import AUGMENTS, TrainConfig, TrainError

if TYPE_CHECKING:
    import torch

Transform = Callable[[Any], Any]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# AlexNet's PCA colour offset on ImageNet RGB pixels (values of fb.resnet.torch, the usual ones).
IMAGENET_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)


class PCALighting:
    """AlexNet's colour augmentation (Krizhevsky et al. 2012, section 4.1).

    Adds ``sum_i alpha_i * lambda_i * v_i`` to every pixel, with ``(lambda_i, v_i)`` the
    eigenvalues and eigenvectors of the channel covariance of the training pixels and
    ``alpha_i ~ N(0, std)`` drawn once per image.
    """

    def __init__(self, eigval: Sequence[float], eigvec: Sequence[Sequence[float]], std: float):
        import torch

        self.eigval = torch.tensor(eigval, dtype=torch.float32)
        self.eigvec = torch.tensor(eigvec, dtype=torch.float32)
        self.std = std

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        import torch

        alpha = torch.randn(len(self.eigval)) * self.std
        offset = self.eigvec @ (alpha * self.eigval)
        return img + offset.to(img.dtype).view(-1, 1, 1)

    def __repr__(self) -> str:
        return f"PCALighting(std={self.std}, eigval={[round(float(v), 4) for v in self.eigval]})"


def channel_pca(x: torch.Tensor) -> tuple[list[float], list[list[float]]]:
    """Eigenvalues and eigenvectors (columns) of the channel covariance of ``x`` [N, C, H, W]."""
    import torch

    pixels = x.transpose(0, 1).reshape(x.shape[1], -1).double()
    vals, vecs = torch.linalg.eigh(torch.cov(pixels).reshape(x.shape[1], x.shape[1]))
    return vals.clamp(min=0).tolist(), vecs.tolist()


def _augments() -> dict[str, Callable[[int, int, Any], Transform]]:
    """Policy name -> factory(size, channels, pca) of the per-sample transform."""
    from torchvision.transforms import v2

    return {
        "flip": lambda s, c, pca: v2.RandomHorizontalFlip(),
        "vflip": lambda s, c, pca: v2.RandomVerticalFlip(),
        "crop": lambda s, c, pca: v2.RandomResizedCrop(s, scale=(0.5, 1.0), antialias=True),
        "pad-crop": lambda s, c, pca: v2.RandomCrop(s, padding=max(1, s // 8)),
        "rotate": lambda s, c, pca: v2.RandomRotation(10),
        "affine": lambda s, c, pca: v2.RandomAffine(10, translate=(0.1, 0.1), scale=(0.9, 1.1)),
        "color-jitter": lambda s, c, pca: v2.ColorJitter(0.4, 0.4, 0.4 if c == 3 else 0),
        "pca-color": lambda s, c, pca: PCALighting(pca[0], pca[1], std=0.1),
        "autoaugment": lambda s, c, pca: v2.AutoAugment(),
        "randaugment": lambda s, c, pca: v2.RandAugment(),
        "trivialaugment": lambda s, c, pca: v2.TrivialAugmentWide(),
        "augmix": lambda s, c, pca: v2.AugMix(),
    }


def cutout(size: int, image_hw: tuple[int, int]) -> Transform:
    """Cutout (DeVries & Taylor 2017): a ``size`` x ``size`` square set to 0, via RandomErasing."""
    from torchvision.transforms import v2

    h, w = image_hw
    if size >= min(h, w):
        raise TrainError(
            f"--cutout {size} does not fit inside a {h}x{w} input",
            f"give a side below {min(h, w)}",
        )
    area = size * size / (h * w)
    erase: Transform = v2.RandomErasing(p=1.0, scale=(area, area), ratio=(1.0, 1.0), value=0)
    return erase


def sample_transform(
    config: TrainConfig,
    input_shape: tuple[int, int, int],
    mean: Sequence[float],
    std: Sequence[float],
    pca: tuple[Sequence[float], Sequence[Sequence[float]]],
) -> Transform | None:
    """The per-sample training transform of a [0, 1] float image; None when there is nothing."""
    from torchvision.transforms import v2

    c, h, w = input_shape
    factories = _augments()
    steps: list[Transform] = [factories[a](h, c, pca) for a in AUGMENTS if a in config.augment]
    if not steps and not config.cutout:
        return None
    steps.append(v2.Normalize(list(mean), list(std)))
    if config.cutout:
        steps.append(cutout(config.cutout, (h, w)))
    composed: Transform = v2.Compose(steps)
    return composed


@dataclass
class Data:
    """A train and a validation set ready for the loaders, and what the run reports of them."""

    train: Any
    val: Any
    classes: list[str]
    source: str
    normalize: tuple[list[float], list[float]]

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "classes": len(self.classes),
            "train_images": len(self.train),
            "val_images": len(self.val),
            "mean": self.normalize[0],
            "std": self.normalize[1],
        }


class TensorImages:
    """In-memory images [N, C, H, W] in [0, 1]; items are whole batches (a list of indices).

    Without a per-sample transform a batch is one indexing and one normalisation, as in a
    hand-written loop; with one, each image goes through it before they are stacked.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        mean: list[float],
        std: list[float],
        transform: Transform | None = None,
    ):
        c = x.shape[1]
        scale = (x.new_tensor(mean).view(1, c, 1, 1), x.new_tensor(std).view(1, c, 1, 1))
        # NOTE: without a transform the images are normalised once, not on every batch
        self.x = x if transform is not None else (x - scale[0]) / scale[1]
        self.y, self.transform = y, transform

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, idx: Any) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        if self.transform is None:
            return self.x[idx], self.y[idx]
        return torch.stack([self.transform(self.x[i]) for i in idx]), self.y[idx]


class _Batches:
    """Batches of in-memory images by a batch sampler's index lists (a loader without workers)."""

    def __init__(self, images: TensorImages, batches: Any):
        self.images, self.batches = images, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        import torch

        for idx in self.batches:
            yield self.images[torch.tensor(idx)]


def _digits(config: TrainConfig, input_shape: tuple[int, int, int]) -> Data:
    import torch

    from graphcnn import datasets

    c, h, w = input_shape
    if h != w:
        raise TrainError(
            f"the digits are square; the network takes {c}x{h}x{w}",
            "give a square input, e.g. --input 1x32x32",
        )
    x, y = datasets.digits(h)
    if c != 1:
        x = x.repeat(c, axis=1)
    xt, yt, xv, yv = (torch.from_numpy(a) for a in datasets.split(x, y, config.val_split))
    mean = xt.mean(dim=(0, 2, 3)).tolist()
    std = xt.std(dim=(0, 2, 3)).tolist()
    pca = channel_pca(xt)
    transform = sample_transform(config, input_shape, mean, std, pca)
    classes = [str(i) for i in range(10)]
    return Data(
        TensorImages(xt, yt, mean, std, transform),
        TensorImages(xv, yv, mean, std),
        classes,
        "digits",
        (mean, std),
    )


def _image_folder(root: Path, transform: Transform) -> Any:
    from torchvision.datasets import ImageFolder

    try:
        return ImageFolder(str(root), transform=transform)
    except (FileNotFoundError, RuntimeError) as e:
        raise TrainError(
            f"--data {root}: {e}",
            "an ImageFolder tree: DIR/train/<class>/*.png and DIR/val/<class>/*.png, "
            "or DIR/<class>/*.png (split by --val-split)",
        ) from None


def _folder(config: TrainConfig, input_shape: tuple[int, int, int]) -> Data:
    import torch
    from torchvision.transforms import v2

    root = Path(config.data)
    if not root.is_dir():
        raise TrainError(
            f"--data {config.data}: no such folder",
            "give 'digits' (built in) or an ImageFolder tree with train/ and val/",
        )
    c, h, w = input_shape
    mean, std = (list(IMAGENET_MEAN), list(IMAGENET_STD)) if c == 3 else ([0.5] * c, [0.5] * c)
    head: list[Transform] = [v2.ToImage()]
    if c == 1:
        head.append(v2.Grayscale(1))
    elif c == 3:
        head.append(v2.RGB())
    head += [v2.Resize((h, w), antialias=True), v2.ToDtype(torch.float32, scale=True)]
    pca = (IMAGENET_EIGVAL, IMAGENET_EIGVEC) if c == 3 else ([0.0] * c, torch.eye(c).tolist())
    train_tail = sample_transform(config, input_shape, mean, std, pca)
    plain = v2.Normalize(mean, std)
    train_t = v2.Compose([*head, train_tail or plain])
    val_t = v2.Compose([*head, plain])
    if (root / "train").is_dir():
        if not (root / "val").is_dir():
            raise TrainError(f"--data {root}: has train/ but no val/", "add DIR/val/<class>/")
        train, val = _image_folder(root / "train", train_t), _image_folder(root / "val", val_t)
        if train.classes != val.classes:
            raise TrainError(
                f"--data {root}: train/ and val/ have different classes "
                f"({len(train.classes)} vs {len(val.classes)})",
                "both need one folder per class, with the same names",
            )
        classes = list(train.classes)
    else:
        full_train, full_val = _image_folder(root, train_t), _image_folder(root, val_t)
        classes = list(full_train.classes)
        train, val = _split_folder(full_train, full_val, config)
    return Data(train, val, classes, str(root), (mean, std))


def _split_folder(train: Any, val: Any, config: TrainConfig) -> tuple[Any, Any]:
    import numpy as np
    from torch.utils.data import Subset

    from graphcnn import datasets

    targets = np.asarray(train.targets)
    idx = np.arange(len(targets))
    # NOTE: the split is fixed (seed 0), not --seed: runs of different seeds compare on one set
    tr, _, va, _ = datasets.split(idx, targets, config.val_split, 0)
    if not len(tr) or not len(va):
        raise TrainError(f"--data {config.data}: too few images to split", "add images")
    return Subset(train, tr.tolist()), Subset(val, va.tolist())


def load_data(config: TrainConfig, input_shape: tuple[int, int, int]) -> Data:
    """The data of ``config.data`` shaped for a network taking ``input_shape`` (C, H, W)."""
    data = _digits(config, input_shape) if config.data == "digits" else _folder(config, input_shape)
    if len(data.train) == 0 or len(data.val) == 0:
        raise TrainError(f"--data {config.data}: the train or validation set is empty")
    return data


def train_loader(
    data: Data, config: TrainConfig, batch_size: int, rank: int, world: int
) -> tuple[Any, Any]:
    """The training loader of one rank and its sampler (``set_epoch`` it every epoch)."""
    from torch.utils.data import BatchSampler, DataLoader, DistributedSampler

    dataset: Any = data.train
    sampler: Any = DistributedSampler(
        dataset, num_replicas=world, rank=rank, shuffle=True, seed=config.seed
    )
    kw: dict[str, Any] = {"num_workers": config.workers, "persistent_workers": config.workers > 0}
    if isinstance(data.train, TensorImages):
        batches = BatchSampler(sampler, batch_size, drop_last=False)
        if not config.workers:  # in memory: index batches directly, no DataLoader machinery
            return _Batches(data.train, batches), sampler
        return DataLoader(dataset, sampler=batches, batch_size=None, **kw), sampler
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, **kw), sampler


def val_batches(data: Data, batch_size: int, rank: int, world: int) -> Iterator[Any]:
    """This rank's share of the validation set (every image once across ranks, none twice)."""
    from torch.utils.data import DataLoader, Subset

    own = list(range(rank, len(data.val), world))
    if isinstance(data.val, TensorImages):
        for i in range(0, len(own), batch_size):
            yield data.val[own[i : i + batch_size]]
        return
    yield from DataLoader(Subset(data.val, own), batch_size=batch_size)
