"""Lower the IR to PyTorch: readable Python source for an ``nn.Module``, and the module itself.

The same generated source serves both uses: :func:`to_torch` executes it in memory, and
``graphcnn compile MODEL --target torch -o model.py`` writes it to a standalone file (importing
only torch and safetensors) with the weights beside it. ``LOWERINGS[op]`` has one small function
per op; each returns the layer's module constructor (for ops with parameters) and its forward
expression. Module paths equal the IR scope names, so a torchvision ``state_dict`` loads strictly.

Generated ``forward`` reads like hand-written code: one line per op, named after the spec's
layers; intermediate values are released after their last use (as torch.fx does), ReLUs run in
place where that is safe, and training-only nodes (auxiliary heads) run under ``if self.training``.

The package, each module importing only the ones before it: ``lowering`` (:class:`LoweringError`,
:class:`Lowered`, ``LOWERINGS``), ``source`` (:func:`generate_source`: the generated module's text),
``module`` (:func:`build_module`, :func:`to_torch`) and ``emit`` (what
``graphcnn compile --target torch`` runs, named by ``graphcnn.backends.TARGETS``). Every other
public name is importable from the package.
"""

from __future__ import annotations

from graphcnn.backends.to_torch.lowering import LOWERINGS, Lowered, Lowering, LoweringError
from graphcnn.backends.to_torch.module import build_module, to_torch
from graphcnn.backends.to_torch.source import generate_source

__all__ = [
    "LOWERINGS",
    "Lowered",
    "Lowering",
    "LoweringError",
    "build_module",
    "generate_source",
    "to_torch",
]
