"""Test-only PyTorch reference implementations of zoo models torchvision lacks.

These modules exist only so that graphcnn's analytic parameter / MAC counts
can be checked against an independent, executable implementation.  They are
never trained; weight initialisation is PyTorch's default.

Every model is registered in :data:`REFERENCE_MODELS` together with its input
shape, the figures its paper publishes and the expected output sizes of a few
layers (checked by ``compute_numbers.py``).  The exact counts live in the
generated ``paper_numbers.py``.

Counting conventions used throughout (see ``compute_numbers.py``):

* params: all trainable parameters (weights, biases, BN gamma/beta); BN running
  statistics are buffers and are not counted.
* MACs: multiply-accumulates of ``nn.Conv2d`` and ``nn.Linear`` only, batch 1.
* Modules listed in a model's ``training_only_modules`` (GoogLeNet's auxiliary
  classifiers) are excluded from the inference totals and reported separately.

Models
------
lenet5            LeCun et al., Proc. IEEE 1998 (modern full-C3 variant)
alexnet_v1        Krizhevsky et al., NIPS 2012 (original two-GPU network)
zfnet             Zeiler & Fergus, arXiv:1311.2901 / ECCV 2014
nin               Lin et al., arXiv:1312.4400 (Caffe Model Zoo NIN-Imagenet)
googlenet_paper   Szegedy et al., arXiv:1409.4842 / CVPR 2015, Table 1
preact_resnet18   He et al., arXiv:1603.05027 / ECCV 2016
se_resnet50       Hu et al., arXiv:1709.01507 / CVPR 2018
mobilenet_v1      Howard et al., arXiv:1704.04861
shufflenet_v1     Zhang et al., arXiv:1707.01083 / CVPR 2018 (1x, g=3)
densenet264       Huang et al., arXiv:1608.06993 / CVPR 2017 (DenseNet-BC-264)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.densenet import DenseNet
from torchvision.models.resnet import Bottleneck, ResNet

__all__ = [
    "AlexNetV1",
    "DenseNet264",
    "GoogLeNetPaper",
    "LeNet5",
    "MobileNetV1",
    "NiN",
    "PreActResNet18",
    "REFERENCE_MODELS",
    "ReferenceModel",
    "SEResNet50",
    "ShuffleNetV1",
    "ZFNet",
]


# ---------------------------------------------------------------------------
# LeNet-5
# ---------------------------------------------------------------------------


class LeNet5(nn.Module):
    """LeNet-5 (LeCun, Bottou, Bengio & Haffner, "Gradient-Based Learning
    Applied to Document Recognition", Proc. IEEE 86(11), 1998), modern variant.

    32x32x1 input.  C1 conv 6@5x5 -> S2 2x2 pool -> C3 conv 16@5x5 with *full*
    connectivity (the paper's sparse connection table is dropped) -> S4 2x2
    pool -> C5 conv 120@5x5 (on a 5x5 map, i.e. an FC 400->120) -> F6 FC 84 ->
    output FC 10 with bias (instead of the paper's Euclidean RBF units).

    Defaults: tanh activations and 2x2/2 average pooling without trainable
    coefficients (the common textbook reproduction).  ``activation="relu"``
    and ``pool="max"`` give the other popular variant; parameter and MAC counts
    are identical for all four combinations: 61,706 params, 416,520 MACs.

    The 1998 paper quotes "60,000 trainable parameters"; its per-layer figures
    sum to 60,840 (C3 with the sparse table = 1,516 params, S2/S4 trainable
    coefficient+bias = 12 + 32, RBF output 84*10 = 840, no bias).
    """

    def __init__(self, num_classes: int = 10, activation: str = "tanh", pool: str = "avg") -> None:
        super().__init__()
        acts: dict[str, Callable[[], nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}
        pools: dict[str, Callable[[], nn.Module]] = {
            "avg": lambda: nn.AvgPool2d(2, 2),
            "max": lambda: nn.MaxPool2d(2, 2),
        }
        self.conv1 = nn.Conv2d(1, 6, 5)  # C1: 32 -> 28
        self.act1 = acts[activation]()
        self.pool1 = pools[pool]()  # S2: 28 -> 14
        self.conv2 = nn.Conv2d(6, 16, 5)  # C3: 14 -> 10
        self.act2 = acts[activation]()
        self.pool2 = pools[pool]()  # S4: 10 -> 5
        self.conv3 = nn.Conv2d(16, 120, 5)  # C5: 5 -> 1
        self.act3 = acts[activation]()
        self.fc1 = nn.Linear(120, 84)  # F6
        self.act4 = acts[activation]()
        self.fc2 = nn.Linear(84, num_classes)  # output

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool1(self.act1(self.conv1(x)))
        x = self.pool2(self.act2(self.conv2(x)))
        x = torch.flatten(self.act3(self.conv3(x)), 1)
        result: Tensor = self.fc2(self.act4(self.fc1(x)))
        return result


# ---------------------------------------------------------------------------
# AlexNet (2012) and ZFNet
# ---------------------------------------------------------------------------


def _alexnet_lrn() -> nn.LocalResponseNorm:
    """Cross-channel LRN with the AlexNet constants n=5, k=2, alpha=1e-4,
    beta=0.75 in the paper's convention (torch divides alpha by n)."""
    return nn.LocalResponseNorm(size=5, alpha=5e-4, beta=0.75, k=2.0)


class AlexNetV1(nn.Module):
    """Original two-GPU AlexNet (Krizhevsky, Sutskever & Hinton, "ImageNet
    Classification with Deep Convolutional Neural Networks", NIPS 2012).

    227x227x3 input (the paper's "224x224" does not give 55x55 after an
    11x11/4 valid conv).  The two-GPU split is expressed as ``groups=2`` on
    conv2, conv4 and conv5, whose kernels only see the feature maps on their
    own GPU; conv3 and the FC layers communicate across GPUs and are dense.
    LRN follows the ReLU of conv1/conv2, before the overlapping 3x3/2 max
    pools; dropout 0.5 follows fc6 and fc7.  Spatial sizes: 227 -> 55 -> 27
    -> 27 -> 13 -> 13 -> 13 -> 13 -> 6.
    """

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 96, 11, stride=4)
        self.norm1 = _alexnet_lrn()
        self.pool1 = nn.MaxPool2d(3, 2)
        self.conv2 = nn.Conv2d(96, 256, 5, padding=2, groups=2)
        self.norm2 = _alexnet_lrn()
        self.pool2 = nn.MaxPool2d(3, 2)
        self.conv3 = nn.Conv2d(256, 384, 3, padding=1)
        self.conv4 = nn.Conv2d(384, 384, 3, padding=1, groups=2)
        self.conv5 = nn.Conv2d(384, 256, 3, padding=1, groups=2)
        self.pool5 = nn.MaxPool2d(3, 2)
        self.fc6 = nn.Linear(256 * 6 * 6, 4096)
        self.drop6 = nn.Dropout(0.5)
        self.fc7 = nn.Linear(4096, 4096)
        self.drop7 = nn.Dropout(0.5)
        self.fc8 = nn.Linear(4096, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool1(self.norm1(F.relu(self.conv1(x))))
        x = self.pool2(self.norm2(F.relu(self.conv2(x))))
        x = F.relu(self.conv3(x))
        x = F.relu(self.conv4(x))
        x = self.pool5(F.relu(self.conv5(x)))
        x = torch.flatten(x, 1)
        x = self.drop6(F.relu(self.fc6(x)))
        x = self.drop7(F.relu(self.fc7(x)))
        result: Tensor = self.fc8(x)
        return result


class ZFNet(nn.Module):
    """ZFNet (Zeiler & Fergus, "Visualizing and Understanding Convolutional
    Networks", arXiv:1311.2901, 2013 / ECCV 2014, Fig. 3).

    224x224x3 input, single-GPU (all convs dense).  Paddings and pooling
    rounding were chosen so that the spatial sizes match the paper's figure
    exactly (110 -> 55 -> 26 -> 13 -> 13 -> 13 -> 6):

    * conv1 96@7x7/2, padding 1: 224 -> 110 (padding 0 would give 109)
    * pool1 3x3/2, ceil_mode=True, no padding: 110 -> 55 (floor gives 54)
    * conv2 256@5x5/2, padding 0: 55 -> 26
    * pool2 3x3/2, ceil_mode=True: 26 -> 13 (floor gives 12)
    * conv3 384, conv4 384, conv5 256, all 3x3/1 padding 1: 13
    * pool5 3x3/2, ceil_mode=True: 13 -> 6 (exact either way)

    Per the paper, layers 1 and 2 are followed by ReLU, max pooling and then
    cross-channel contrast normalisation (AlexNet LRN constants assumed).
    Dropout 0.5 follows fc6 and fc7.
    """

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 96, 7, stride=2, padding=1)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.norm1 = _alexnet_lrn()
        self.conv2 = nn.Conv2d(96, 256, 5, stride=2)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.norm2 = _alexnet_lrn()
        self.conv3 = nn.Conv2d(256, 384, 3, padding=1)
        self.conv4 = nn.Conv2d(384, 384, 3, padding=1)
        self.conv5 = nn.Conv2d(384, 256, 3, padding=1)
        self.pool5 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.fc6 = nn.Linear(256 * 6 * 6, 4096)
        self.drop6 = nn.Dropout(0.5)
        self.fc7 = nn.Linear(4096, 4096)
        self.drop7 = nn.Dropout(0.5)
        self.fc8 = nn.Linear(4096, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm1(self.pool1(F.relu(self.conv1(x))))
        x = self.norm2(self.pool2(F.relu(self.conv2(x))))
        x = F.relu(self.conv3(x))
        x = F.relu(self.conv4(x))
        x = self.pool5(F.relu(self.conv5(x)))
        x = torch.flatten(x, 1)
        x = self.drop6(F.relu(self.fc6(x)))
        x = self.drop7(F.relu(self.fc7(x)))
        result: Tensor = self.fc8(x)
        return result


# ---------------------------------------------------------------------------
# Network in Network
# ---------------------------------------------------------------------------


class NiN(nn.Module):
    """Network in Network, ImageNet model (Lin, Chen & Yan, "Network In
    Network", arXiv:1312.4400 / ICLR 2014; ImageNet layout from the Caffe
    Model Zoo "NIN-Imagenet" prototxt, whose layer names are kept).

    224x224x3 input.  Every conv (including the 1x1 "cccp" layers and the
    final 1000-way cccp8) has a bias and is followed by ReLU.  Max pools are
    3x3/2 with Caffe's ceil rounding: 224 -conv1-> 54 -pool-> 27 -pool-> 13
    -pool-> 6; the final 6x6 average pool is a global average pool.  Dropout
    0.5 follows pool3.
    """

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 96, 11, stride=4)
        self.cccp1 = nn.Conv2d(96, 96, 1)
        self.cccp2 = nn.Conv2d(96, 96, 1)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(96, 256, 5, padding=2)
        self.cccp3 = nn.Conv2d(256, 256, 1)
        self.cccp4 = nn.Conv2d(256, 256, 1)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(256, 384, 3, padding=1)
        self.cccp5 = nn.Conv2d(384, 384, 1)
        self.cccp6 = nn.Conv2d(384, 384, 1)
        self.pool3 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.drop = nn.Dropout(0.5)
        self.conv4 = nn.Conv2d(384, 1024, 3, padding=1)
        self.cccp7 = nn.Conv2d(1024, 1024, 1)
        self.cccp8 = nn.Conv2d(1024, num_classes, 1)
        self.pool4 = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.conv1(x))
        x = F.relu(self.cccp1(x))
        x = self.pool1(F.relu(self.cccp2(x)))
        x = F.relu(self.conv2(x))
        x = F.relu(self.cccp3(x))
        x = self.pool2(F.relu(self.cccp4(x)))
        x = F.relu(self.conv3(x))
        x = F.relu(self.cccp5(x))
        x = self.drop(self.pool3(F.relu(self.cccp6(x))))
        x = F.relu(self.conv4(x))
        x = F.relu(self.cccp7(x))
        x = F.relu(self.cccp8(x))
        return torch.flatten(self.pool4(x), 1)


# ---------------------------------------------------------------------------
# GoogLeNet (paper version)
# ---------------------------------------------------------------------------


class Inception(nn.Module):
    """GoogLeNet inception module (Szegedy et al. 2015, Fig. 2b) with a true
    5x5 conv in the third branch.  Names follow Caffe's bvlc_googlenet."""

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3_reduce: int,
        ch3x3: int,
        ch5x5_reduce: int,
        ch5x5: int,
        pool_proj: int,
    ) -> None:
        super().__init__()
        self.conv1x1 = nn.Conv2d(in_channels, ch1x1, 1)
        self.conv3x3_reduce = nn.Conv2d(in_channels, ch3x3_reduce, 1)
        self.conv3x3 = nn.Conv2d(ch3x3_reduce, ch3x3, 3, padding=1)
        self.conv5x5_reduce = nn.Conv2d(in_channels, ch5x5_reduce, 1)
        self.conv5x5 = nn.Conv2d(ch5x5_reduce, ch5x5, 5, padding=2)
        self.pool = nn.MaxPool2d(3, 1, padding=1)
        self.pool_proj = nn.Conv2d(in_channels, pool_proj, 1)

    def forward(self, x: Tensor) -> Tensor:
        b1 = F.relu(self.conv1x1(x))
        b2 = F.relu(self.conv3x3(F.relu(self.conv3x3_reduce(x))))
        b3 = F.relu(self.conv5x5(F.relu(self.conv5x5_reduce(x))))
        b4 = F.relu(self.pool_proj(self.pool(x)))
        return torch.cat([b1, b2, b3, b4], 1)


class InceptionAux(nn.Module):
    """GoogLeNet auxiliary classifier (Szegedy et al. 2015, Sec. 5): 5x5/3
    average pool (14x14 -> 4x4), 1x1 conv 128 + ReLU, FC 1024 + ReLU,
    dropout 0.7, FC 1000.  Only used during training."""

    def __init__(self, in_channels: int, num_classes: int = 1000) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(5, 3)
        self.conv = nn.Conv2d(in_channels, 128, 1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.dropout = nn.Dropout(0.7)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.conv(self.pool(x)))
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        result: Tensor = self.fc2(self.dropout(x))
        return result


class GoogLeNetPaper(nn.Module):
    """GoogLeNet exactly as in Table 1 of Szegedy et al., "Going Deeper with
    Convolutions", arXiv:1409.4842 / CVPR 2015 (not torchvision's variant,
    which uses BN and a 3x3 conv in place of the 5x5).

    224x224x3 input.  conv1 7x7/2 64 (pad 3) -> maxpool 3/2 -> LRN -> conv2
    1x1 64 -> 3x3 192 (pad 1) -> LRN -> maxpool 3/2 -> 3a, 3b -> maxpool 3/2
    -> 4a..4e -> maxpool 3/2 -> 5a, 5b -> avgpool 7x7/1 -> dropout 0.4 ->
    linear 1000.  All convs have biases and are followed by ReLU; no BN.  The
    stride-2 max pools use ceil_mode (as Caffe) so the sizes are 112 -> 56 ->
    28 -> 14 -> 7.  LRN uses Caffe's bvlc_googlenet constants.

    The auxiliary classifiers on 4a and 4d (``aux1``/``aux2``) run only in
    training mode; forward then returns ``(logits, aux1, aux2)``.
    """

    training_only_modules: ClassVar[tuple[str, ...]] = ("aux1", "aux2")

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.norm1 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75)
        self.conv2_reduce = nn.Conv2d(64, 64, 1)
        self.conv2 = nn.Conv2d(64, 192, 3, padding=1)
        self.norm2 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.pool3 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.pool4 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        self.avgpool = nn.AvgPool2d(7, 1)
        self.dropout = nn.Dropout(0.4)
        self.fc = nn.Linear(1024, num_classes)
        self.aux1 = InceptionAux(512, num_classes)
        self.aux2 = InceptionAux(528, num_classes)

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor, Tensor]:
        x = self.norm1(self.pool1(F.relu(self.conv1(x))))
        x = F.relu(self.conv2_reduce(x))
        x = self.pool2(self.norm2(F.relu(self.conv2(x))))
        x = self.inception3b(self.inception3a(x))
        x = self.inception4a(self.pool3(x))
        aux1 = self.aux1(x) if self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.training else None
        x = self.pool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))
        if aux1 is not None and aux2 is not None:
            return x, aux1, aux2
        return x


# ---------------------------------------------------------------------------
# Pre-activation ResNet-18
# ---------------------------------------------------------------------------


class PreActBasicBlock(nn.Module):
    """Pre-activation basic block (He et al., "Identity Mappings in Deep
    Residual Networks", ECCV 2016, Fig. 4e): BN-ReLU-conv3x3-BN-ReLU-conv3x3
    plus identity, or a bias-free 1x1 projection (no BN) applied to the
    pre-activated input when the shape changes."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(x))
        identity = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        result: Tensor = out + identity
        return result


class PreActResNet18(nn.Module):
    """Pre-activation ResNet-18 for ImageNet (He, Zhang, Ren & Sun, "Identity
    Mappings in Deep Residual Networks", arXiv:1603.05027 / ECCV 2016).

    Stem: conv 7x7/2 64 (no bias), BN, ReLU, maxpool 3/2 pad 1.  Stages of
    [2, 2, 2, 2] pre-activation basic blocks (64, 128, 256, 512; stride 2 at
    the start of stages 2-4), every block including the first starting with
    its own BN-ReLU.  Final BN + ReLU, global average pool, FC 1000.

    Note: fb.resnet.torch's preresnet.lua skips the first block's pre-
    activation (the stem already ends in BN-ReLU); that variant has one
    BatchNorm2d(64) fewer, i.e. 128 fewer params and identical MACs.
    """

    def __init__(
        self, num_classes: int = 1000, layers: tuple[int, int, int, int] = (2, 2, 2, 2)
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        self.in_planes = 64
        self.layer1 = self._make_layer(64, layers[0], 1)
        self.layer2 = self._make_layer(128, layers[1], 2)
        self.layer3 = self._make_layer(256, layers[2], 2)
        self.layer4 = self._make_layer(512, layers[3], 2)
        self.final_bn = nn.BatchNorm2d(512)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        for i in range(blocks):
            layers.append(PreActBasicBlock(self.in_planes, planes, stride if i == 0 else 1))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.relu(self.final_bn(x))
        result: Tensor = self.fc(torch.flatten(self.avgpool(x), 1))
        return result


# ---------------------------------------------------------------------------
# SE-ResNet-50
# ---------------------------------------------------------------------------


class SqueezeExcite(nn.Module):
    """Squeeze-and-Excitation block (Hu, Shen & Sun, CVPR 2018, Fig. 3):
    global average pool, FC C->C/r + ReLU, FC C/r->C + sigmoid, channel-wise
    rescale.  The FCs are 1x1 convs with bias (same counts as nn.Linear)."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, reduced, 1)
        self.fc2 = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(self.avgpool(x)))))
        return x * s


class SEBottleneck(Bottleneck):  # type: ignore[misc]
    """torchvision ResNet-50 v1.5 bottleneck (stride on the 3x3 conv) with an
    SE module (reduction 16) on the residual branch, after bn3 and before the
    addition (Hu et al. 2018, Fig. 3 "SE-ResNet module")."""

    reduction: ClassVar[int] = 16

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm_layer: Callable[..., nn.Module] | None = None,
    ) -> None:
        super().__init__(
            inplanes, planes, stride, downsample, groups, base_width, dilation, norm_layer
        )
        channels = planes * self.expansion
        self.se = SqueezeExcite(channels, channels // self.reduction)

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.se(self.bn3(self.conv3(out)))
        if self.downsample is not None:
            identity = self.downsample(x)
        result: Tensor = self.relu(out + identity)
        return result


class SEResNet50(ResNet):  # type: ignore[misc]
    """SE-ResNet-50 (Hu, Shen & Sun, "Squeeze-and-Excitation Networks",
    arXiv:1709.01507 / CVPR 2018) on torchvision's ResNet-50 (v1.5) trunk, so
    module names match torchvision (``layer1.0.conv1``, ``layer1.0.se.fc1``,
    ``layer1.0.downsample.0`` ...)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__(SEBottleneck, [3, 4, 6, 3], num_classes=num_classes)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# MobileNet v1
# ---------------------------------------------------------------------------


class DepthwiseSeparable(nn.Module):
    """MobileNet depthwise-separable block (Howard et al. 2017, Fig. 3):
    dw 3x3 + BN + ReLU, pw 1x1 + BN + ReLU; convs without bias."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False
        )
        self.depthwise_bn = nn.BatchNorm2d(in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pointwise_bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.depthwise_bn(self.depthwise(x)))
        return F.relu(self.pointwise_bn(self.pointwise(x)))


class MobileNetV1(nn.Module):
    """MobileNet v1, width 1.0, 224 input (Howard et al., "MobileNets:
    Efficient Convolutional Neural Networks for Mobile Vision Applications",
    arXiv:1704.04861, Table 1).

    conv 3x3/2 32 + BN + ReLU, 13 depthwise-separable blocks, global average
    pool, FC 1000 (with bias).  The 13th block's depthwise conv has stride 1:
    Table 1 prints "s2" for it but also gives 7x7 input and output, and all
    released implementations use stride 1.
    """

    #: (output channels, depthwise stride) of the 13 separable blocks.
    cfg: ClassVar[tuple[tuple[int, int], ...]] = (
        (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
        (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
        (1024, 2), (1024, 1),
    )  # fmt: skip

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        blocks: list[nn.Module] = []
        in_channels = 32
        for out_channels, stride in self.cfg:
            blocks.append(DepthwiseSeparable(in_channels, out_channels, stride))
            in_channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(F.relu(self.bn1(self.conv1(x))))
        result: Tensor = self.fc(torch.flatten(self.avgpool(x), 1))
        return result


# ---------------------------------------------------------------------------
# ShuffleNet v1
# ---------------------------------------------------------------------------


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Channel shuffle (Zhang et al. 2018, Sec. 3.1): (g, n) -> (n, g)."""
    b, c, h, w = x.shape
    return x.reshape(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNet unit (Zhang et al. 2018, Fig. 2b/2c), structured as in the
    megvii ShuffleNet-Series ``ShuffleV1Block``.

    1x1 group conv -> BN -> ReLU -> channel shuffle -> 3x3 depthwise conv
    (stride s) -> BN -> 1x1 group conv -> BN; all convs without bias.
    Stride 1: ReLU(x + branch).  Stride 2: concat(avgpool3x3/2(x),
    ReLU(branch)), the branch producing ``out_channels - in_channels``
    channels.  ``mid_channels`` is ``out_channels // 4`` of the *unit's*
    output (megvii convention, also for the stride-2 units).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        mid_channels: int,
        groups: int,
        stride: int,
        group_first_conv: bool = True,
    ) -> None:
        super().__init__()
        self.stride = stride
        self.groups = groups
        branch_out = out_channels - in_channels if stride == 2 else out_channels
        self.pw1 = nn.Conv2d(
            in_channels, mid_channels, 1, groups=groups if group_first_conv else 1, bias=False
        )
        self.bn1 = nn.BatchNorm2d(mid_channels)
        self.dw = nn.Conv2d(
            mid_channels, mid_channels, 3, stride, 1, groups=mid_channels, bias=False
        )
        self.bn2 = nn.BatchNorm2d(mid_channels)
        self.pw2 = nn.Conv2d(mid_channels, branch_out, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(branch_out)
        self.shortcut: nn.Module | None = nn.AvgPool2d(3, 2, padding=1) if stride == 2 else None

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.pw1(x)))
        out = channel_shuffle(out, self.groups)
        out = self.bn2(self.dw(out))
        out = self.bn3(self.pw2(out))
        if self.shortcut is None:
            return F.relu(x + out)
        return torch.cat([self.shortcut(x), F.relu(out)], 1)


class ShuffleNetV1(nn.Module):
    """ShuffleNet 1x, g=3 (Zhang, Zhou, Lin & Sun, "ShuffleNet: An Extremely
    Efficient Convolutional Neural Network for Mobile Devices",
    arXiv:1707.01083 / CVPR 2018, Table 1), following the reference
    implementation megvii-model/ShuffleNet-Series ``ShuffleNetV1``:

    * stem conv 3x3/2 24 (no bias) + BN + ReLU, maxpool 3x3/2 pad 1;
    * stages 2-4: 240/480/960 channels, 4/8/4 units, first unit stride 2;
    * stage 2's first 1x1 conv is not grouped (24 input channels);
    * global 7x7 average pool, FC 1000 **without bias** (as megvii).
    """

    def __init__(
        self,
        num_classes: int = 1000,
        groups: int = 3,
        stage_channels: tuple[int, int, int] = (240, 480, 960),
        stage_repeats: tuple[int, int, int] = (4, 8, 4),
    ) -> None:
        super().__init__()
        self.first_conv = nn.Sequential(
            nn.Conv2d(3, 24, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(24),
            nn.ReLU(inplace=True),
        )
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        in_channels = 24
        stages: list[nn.Sequential] = []
        for stage_idx, (out_channels, repeats) in enumerate(
            zip(stage_channels, stage_repeats, strict=True)
        ):
            units: list[nn.Module] = []
            for i in range(repeats):
                units.append(
                    ShuffleUnit(
                        in_channels,
                        out_channels,
                        mid_channels=out_channels // 4,
                        groups=groups,
                        stride=2 if i == 0 else 1,
                        group_first_conv=not (stage_idx == 0 and i == 0),
                    )
                )
                in_channels = out_channels
            stages.append(nn.Sequential(*units))
        self.stage2, self.stage3, self.stage4 = stages
        self.globalpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(in_channels, num_classes, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.first_conv(x))
        x = self.stage4(self.stage3(self.stage2(x)))
        result: Tensor = self.classifier(torch.flatten(self.globalpool(x), 1))
        return result


# ---------------------------------------------------------------------------
# DenseNet-264
# ---------------------------------------------------------------------------


class DenseNet264(DenseNet):  # type: ignore[misc]
    """DenseNet-BC-264 (Huang, Liu, van der Maaten & Weinberger, "Densely
    Connected Convolutional Networks", arXiv:1608.06993 / CVPR 2017, Table 1):
    torchvision's DenseNet class with growth 32, blocks (6, 12, 64, 48), 64
    initial features, bn_size 4, compression 0.5, so module names match
    torchvision (``features.denseblock1.denselayer1.conv1`` ...)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__(
            growth_rate=32,
            block_config=(6, 12, 64, 48),
            num_init_features=64,
            bn_size=4,
            drop_rate=0.0,
            num_classes=num_classes,
        )


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceModel:
    """A reference model plus what ``compute_numbers.py`` needs to know."""

    build: Callable[[], nn.Module]
    input: tuple[int, int, int]
    published: str
    notes: str
    #: Expected (C, H, W) outputs of some submodules, checked when counting.
    expected_shapes: dict[str, tuple[int, int, int]] = field(default_factory=dict)


REFERENCE_MODELS: dict[str, ReferenceModel] = {
    "lenet5": ReferenceModel(
        build=LeNet5,
        input=(1, 32, 32),
        published=(
            "LeCun et al., 'Gradient-Based Learning Applied to Document Recognition', Proc. IEEE "
            "86(11), 1998: '60,000 trainable parameters' (its per-layer figures sum to 60,840). "
            "The modern full-C3-connectivity variant has 61,706 params (verified here)."
        ),
        notes=(
            "tanh + 2x2/2 average pooling (relu/max pooling give identical counts); full C3 "
            "connectivity (paper: sparse table, 1,516 params); untrainable pooling (paper: 12+32 "
            "trainable S2/S4 coefficients); C5 is a 5x5 conv on a 5x5 map (== FC 400->120); output "
            "is an FC 84->10 with bias instead of 840 bias-free RBF weights. Spatial: 32 -> 28 -> "
            "14 -> 10 -> 5 -> 1."
        ),
        expected_shapes={
            "conv1": (6, 28, 28),
            "pool1": (6, 14, 14),
            "conv2": (16, 10, 10),
            "conv3": (120, 1, 1),
        },
    ),
    "alexnet_v1": ReferenceModel(
        build=AlexNetV1,
        input=(3, 227, 227),
        published=(
            "Krizhevsky, Sutskever & Hinton, 'ImageNet Classification with Deep Convolutional "
            "Neural Networks', NIPS 2012, abstract: '60 million parameters and 650,000 neurons'; "
            "no mult-add count given."
        ),
        notes=(
            "227x227 input (the paper's 224 is inconsistent with 11x11/4 -> 55). Two-GPU split as "
            "groups=2 on conv2, conv4, conv5; conv3 and FCs dense. LRN after ReLU of conv1/conv2, "
            "then 3x3/2 max pool. Spatial: 55 -> 27 -> 27 -> 13 -> 13 -> 6. Grouping roughly "
            "halves conv2/4/5 vs the single-GPU (torchvision-style) layout."
        ),
        expected_shapes={
            "conv1": (96, 55, 55),
            "pool1": (96, 27, 27),
            "conv2": (256, 27, 27),
            "pool2": (256, 13, 13),
            "conv5": (256, 13, 13),
            "pool5": (256, 6, 6),
        },
    ),
    "zfnet": ReferenceModel(
        build=ZFNet,
        input=(3, 224, 224),
        published=(
            "Zeiler & Fergus, 'Visualizing and Understanding Convolutional Networks', "
            "arXiv:1311.2901 (2013) / ECCV 2014, Fig. 3 (architecture only; the paper states no "
            "total parameter or mult-add count)."
        ),
        notes=(
            "Chosen to reproduce Fig. 3's sizes 110 -> 55 -> 26 -> 13 -> 13 -> 13 -> 6: conv1 "
            "7x7/2 pad 1; conv2 5x5/2 pad 0; conv3-5 3x3/1 pad 1; all three 3x3/2 max pools "
            "ceil_mode=True, pad 0 (floor rounding would give 54 and 12). ReLU -> pool -> LRN "
            "after conv1/conv2 (paper order). Dense (single-GPU) convs; dropout after fc6/fc7."
        ),
        expected_shapes={
            "conv1": (96, 110, 110),
            "pool1": (96, 55, 55),
            "conv2": (256, 26, 26),
            "pool2": (256, 13, 13),
            "conv3": (384, 13, 13),
            "conv4": (384, 13, 13),
            "conv5": (256, 13, 13),
            "pool5": (256, 6, 6),
        },
    ),
    "nin": ReferenceModel(
        build=NiN,
        input=(3, 224, 224),
        published=(
            "Lin, Chen & Yan, 'Network In Network', arXiv:1312.4400 / ICLR 2014 (reports "
            "CIFAR/SVHN/MNIST models only); ImageNet layout from the Caffe Model Zoo "
            "'NIN-Imagenet' model. No published parameter or mult-add count."
        ),
        notes=(
            "224 input, Caffe ceil-mode 3x3/2 max pools: 224 -> 54 -> 27 -> 13 -> 6 (floor "
            "rounding would give 26 -> 12 -> 5 and break the prototxt's 6x6 pool4); pool4 (6x6 "
            "avg) as global average pool; ReLU after every conv incl. cccp8; dropout 0.5 after "
            "pool3."
        ),
        expected_shapes={
            "conv1": (96, 54, 54),
            "pool1": (96, 27, 27),
            "pool2": (256, 13, 13),
            "pool3": (384, 6, 6),
            "cccp8": (1000, 6, 6),
        },
    ),
    "googlenet_paper": ReferenceModel(
        build=GoogLeNetPaper,
        input=(3, 224, 224),
        published=(
            "Szegedy et al., 'Going Deeper with Convolutions', arXiv:1409.4842 / CVPR 2015, Table "
            "1: ~6.8M params (column sum 6,797.7K) and ~1.5G mult-adds (column sum 1,502M) for "
            "inference, auxiliary classifiers excluded."
        ),
        notes=(
            "True 5x5 convs, biases everywhere, no BN; stride-2 max pools ceil_mode: 112 -> 56 -> "
            "28 -> 14 -> 7. Per-row MACs match Table 1's ops column to <1M except conv1 (118.0M vs "
            "34M: the table's conv1 row, 2.7K params / 34M ops, is inconsistent with a 7x7x3->64 "
            "conv at 112x112, 9,408 weights) and 5a (51.1M vs 54M), hence 1.58G vs 1.5G. Params: "
            "6,990,272 weights + 8,280 biases; Table 1's param rows are only approximately "
            "consistent (e.g. 4c 509K vs 463K, 5a 1,042K vs 1,072K). Aux heads (on 4a and 4d: "
            "avgpool 5/3 -> 4x4, 1x1 conv 128, FC 2048->1024, dropout 0.7, FC 1000) are counted "
            "only in training_only_*."
        ),
        expected_shapes={
            "conv1": (64, 112, 112),
            "pool1": (64, 56, 56),
            "pool2": (192, 28, 28),
            "inception3b": (480, 28, 28),
            "pool3": (480, 14, 14),
            "inception4a": (512, 14, 14),
            "inception4d": (528, 14, 14),
            "inception4e": (832, 14, 14),
            "pool4": (832, 7, 7),
            "inception5b": (1024, 7, 7),
        },
    ),
    "preact_resnet18": ReferenceModel(
        build=PreActResNet18,
        input=(3, 224, 224),
        published=(
            "He, Zhang, Ren & Sun, 'Identity Mappings in Deep Residual Networks', arXiv:1603.05027 "
            "/ ECCV 2016: no ResNet-18 figures (ImageNet results are for 152/200 layers). For "
            "reference, the original ResNet-18 ('Deep Residual Learning', CVPR 2016, Table 1) is "
            "1.8G FLOPs (mult-adds); torchvision resnet18 has 11,689,512 params."
        ),
        notes=(
            "Every block (including layer1.0) has its own BN-ReLU pre-activation; projection "
            "shortcuts are bias-free 1x1 convs without BN applied to the pre-activated input; "
            "final BN+ReLU before the pool. vs torchvision resnet18 (11,689,512): -1,792 (no BN in "
            "the 3 projection shortcuts), -896 (bn1 of layer2.0/3.0/4.0 normalises 64/128/256 "
            "input channels instead of 128/256/512 outputs), +1,024 (final BN) = -1,664. MACs "
            "identical to resnet18. The fb.resnet.torch variant (no pre-activation in layer1.0) "
            "has 128 fewer params."
        ),
        expected_shapes={
            "maxpool": (64, 56, 56),
            "layer1": (64, 56, 56),
            "layer2": (128, 28, 28),
            "layer3": (256, 14, 14),
            "layer4": (512, 7, 7),
        },
    ),
    "se_resnet50": ReferenceModel(
        build=SEResNet50,
        input=(3, 224, 224),
        published=(
            "Hu, Shen & Sun, 'Squeeze-and-Excitation Networks', arXiv:1709.01507 / CVPR 2018: "
            "SE-ResNet-50 3.87 GFLOPs vs ResNet-50 3.86 GFLOPs (Table 2); '~2.5 million additional "
            "parameters' over ResNet-50's ~25M, i.e. 28.1M at r=16 (reduction-ratio ablation "
            "table)."
        ),
        notes=(
            "Params match the paper: torchvision resnet50 (25,557,032) + SE (2,530,992) = "
            "28,088,024. MACs are ~4.09G rather than 3.87G because this is torchvision's v1.5 "
            "trunk (stride 2 on the 3x3 conv), while the paper's ResNet-50 is v1 (stride 2 on the "
            "first 1x1: 3,857,973,248 MACs). The SE FCs add only 2,514,944 MACs; the paper's "
            "+0.01G (0.26%) presumably also counts SE pooling and rescaling (~5.5M ops each), "
            "which are not MACs here."
        ),
        expected_shapes={
            "layer1": (256, 56, 56),
            "layer2": (512, 28, 28),
            "layer3": (1024, 14, 14),
            "layer4": (2048, 7, 7),
        },
    ),
    "mobilenet_v1": ReferenceModel(
        build=MobileNetV1,
        input=(3, 224, 224),
        published=(
            "Howard et al., 'MobileNets: Efficient Convolutional Neural Networks for Mobile Vision "
            "Applications', arXiv:1704.04861 (2017), Tables 1 and 8: 1.0 MobileNet-224 = 569M "
            "mult-adds, 4.2M params."
        ),
        notes=(
            "Last depthwise conv stride 1 (Table 1's 's2' there is a typo: 7x7 in and out). "
            "Bias-free convs + BN (params include BN gamma/beta: 21,888 of them), FC 1024->1000 "
            "with bias, no dropout. Spatial: 112 -> 112 -> 56 -> 28 -> 14 -> 7."
        ),
        expected_shapes={
            "conv1": (32, 112, 112),
            "blocks.0": (64, 112, 112),
            "blocks.2": (128, 56, 56),
            "blocks.4": (256, 28, 28),
            "blocks.10": (512, 14, 14),
            "blocks.12": (1024, 7, 7),
        },
    ),
    "shufflenet_v1": ReferenceModel(
        build=ShuffleNetV1,
        input=(3, 224, 224),
        published=(
            "Zhang, Zhou, Lin & Sun, 'ShuffleNet: An Extremely Efficient Convolutional Neural "
            "Network for Mobile Devices', arXiv:1707.01083 / CVPR 2018: ~140 MFLOPs for "
            "'ShuffleNet 1x' (FLOPs = mult-adds; Table 1 lists the per-group-count complexity, "
            "about 137M for g=3); no parameter count. megvii-model/ShuffleNet-Series README: 138M "
            "FLOPs, 1.9M params."
        ),
        notes=(
            "Follows megvii ShuffleNet-Series ShuffleV1Block: bias-free convs, BN after each conv, "
            "ReLU only after the first 1x1 and after the add/concat, shuffle after the first 1x1, "
            "bottleneck = unit output // 4 (60/120/240 incl. the stride-2 units), stride-2 "
            "shortcut avgpool 3x3/2 pad 1 concatenated first, classifier Linear without bias "
            "(+1,000 params if a bias is added, as in mmcls' 1.87M)."
        ),
        expected_shapes={
            "maxpool": (24, 56, 56),
            "stage2": (240, 28, 28),
            "stage3": (480, 14, 14),
            "stage4": (960, 7, 7),
        },
    ),
    "densenet264": ReferenceModel(
        build=DenseNet264,
        input=(3, 224, 224),
        published=(
            "Huang, Liu, van der Maaten & Weinberger, 'Densely Connected Convolutional Networks', "
            "arXiv:1608.06993 / CVPR 2017, Table 1 (architecture; DenseNet-264's size is only "
            "plotted in Fig. 3). Commonly quoted: ~33.3M params."
        ),
        notes=(
            "torchvision.models.densenet.DenseNet(32, (6, 12, 64, 48), 64, bn_size=4); compression "
            "0.5 in transitions; final BN+ReLU, global pool, FC with bias."
        ),
        expected_shapes={
            "features.pool0": (64, 56, 56),
            "features.transition1": (128, 28, 28),
            "features.transition2": (256, 14, 14),
            "features.transition3": (1152, 7, 7),
            "features.norm5": (2688, 7, 7),
        },
    ),
}
