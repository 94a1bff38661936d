"""LeNet-5 trained on the digits shipped in graphcnn/data: the one recipe that
tests/test_training.py holds to an accuracy and tests/test_quantize.py quantises."""

from __future__ import annotations

from typing import Any

import graphcnn
from graphcnn.ir import Graph


def train_lenet5(
    torch: Any, x: Any, y: Any, epochs: int = 15, batch: int = 64
) -> tuple[Graph, Any]:
    """LeNet-5 lowered with seeded weights and trained on tensors ``x``, ``y``: Adam at 5e-3
    with a cosine schedule over every step, minibatches in a seeded order. Returns the graph
    and the module, in eval mode."""
    from graphcnn.backends.to_torch import to_torch

    g = graphcnn.compile("lenet5")
    model = to_torch(g, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * -(-len(x) // batch))
    gen = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(batch):
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
            schedule.step()
    return g, model.eval()
