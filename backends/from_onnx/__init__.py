"""Import an ONNX CNN into the IR with its weights: the inverse of :mod:`graphcnn.backends.to_onnx`.

:func:`from_onnx` reads a model (a ``ModelProto``, a path or the serialized bytes) and returns
``(graph, weights)``: every node is built with :func:`graphcnn.shapes.infer_node`, so types and
parameter declarations are the IR's own, and the graph passes :meth:`Graph.verify`. The ``onnx``
package is imported lazily and torch never is.

What maps to what:

- Conv (2-D; ``auto_pad`` resolved) -> conv2d; Gemm (any ``transB``, ``alpha`` and ``beta``
  folded into the weights) and MatMul (+ a constant Add) -> linear; BatchNormalization ->
  batch_norm; LRN -> lrn; Relu, Sigmoid, Tanh, HardSwish, Gelu, LeakyRelu -> themselves;
  Clip(0, 6) -> relu6 (Clip(0, inf) -> relu); MaxPool, AveragePool, GlobalAveragePool,
  ReduceMean over (2, 3) -> pools (asymmetric pads of a Conv or MaxPool, as TF "same" padding
  is exported: a pad node first); Pad -> pad; Add, Mul (broadcast), Concat, Softmax ->
  themselves; Split and Slice -> split nodes; Reshape, Flatten, Squeeze, Unsqueeze -> flatten or
  reshape (nothing when the shape is kept); Reshape [-1] -> Gather of every element in order
  (the dynamo exporter's ``as_strided``) -> a view; Dropout, Identity and Cast to the model's
  own float type -> nothing.
- Patterns: ``x * Sigmoid(x)`` -> silu; ``x * HardSigmoid(x)`` -> hardswish; the exact erf form
  ``0.5 * x * (1 + Erf(x / sqrt(2)))`` (any association) -> gelu; Reshape [N, g, C/g, H, W] ->
  Transpose (0, 2, 1, 3, 4) -> Reshape [N, C, H, W] -> channel_shuffle.
- Shape computations (Shape, Gather, Unsqueeze, Concat, Div, Slice, ... as ``torch.onnx.export``
  emits for ``x.view(x.size(0), -1)``, ``chunk`` or a channel shuffle with a dynamic batch) are
  folded by a small numpy evaluator in which the batch is a symbol; any other node whose inputs
  are all constant is folded with ``onnx.reference``. ONNX Runtime's offline optimizer is *not*
  used as a pre-pass: already its BASIC level fuses Conv+BatchNormalization, Conv+Add and
  Conv+Mul, which would change the parameters (and lose their state_dict names), and it cannot
  fold a Shape of a dynamic batch anyway; onnx-simplifier is not a dependency.
- An all-zero bias whose name does not end in ``bias`` is dropped: the dynamo exporter computes
  one (Shape/Expand) for every conv without bias, which thus keeps ``bias=False``. (A torch
  parameter ``*.bias`` is kept whatever its values.)

Node names: a node with a weight named ``<path>.weight`` (what torch exports) is named ``<path>``,
so the weights keys are the PyTorch ``state_dict`` keys; other nodes take the module path of a
torch-style name (``/layer1/layer1.0/relu/Relu`` -> ``layer1.0.relu``; an op called inside a
module that holds other layers gets the IR op appended: ``layer1.0.add``) or of the dynamo
exporter's ``pkg.torch.onnx.name_scopes``; any other name is used as it is, made into a valid
dotted scope name. The input is the first graph input that is not an initializer; a symbolic
batch becomes ``N``.

A layer whose weight lost its name (the legacy exporter folds a batch norm into the conv
before it and calls the result ``onnx::Conv_123``) is named by its module when it is that
module's only layer with parameters, so its keys are ``<module>.weight`` and ``<module>.bias``.

Errors are :class:`OnnxImportError` (a :class:`GraphcnnError`: exit code 2 in the CLI): every
unsupported op type is listed once with its count (attention first: a MatMul or Einsum of two
activations, with the Softmax count, as transformers have), and each conversion problem names
the node.

Layout (imports go down this list only, so there are no cycles): :mod:`.errors`,
:mod:`.values` (what an ONNX name stands for) and :mod:`.naming` (IR names from torch's) ->
:mod:`.loading` (read and check the file) and :mod:`.importer` (the state object handlers
receive, with its helpers) -> :mod:`.folding` (constant and shape folding) and the handlers
:mod:`.layers`, :mod:`.elementwise` (with the patterns), :mod:`.tensors`, :mod:`.pad` (constant
Pad of H and W -> pad) -> :mod:`.handlers` (the op table ``HANDLERS``) -> :mod:`.driver`
(:func:`from_onnx`: convert, name, finish).
"""

from graphcnn.backends.from_onnx.driver import from_onnx
from graphcnn.backends.from_onnx.errors import OnnxImportError
from graphcnn.backends.from_onnx.handlers import DATA_OPS, HANDLERS, SHAPE_SOURCES

__all__ = ["DATA_OPS", "HANDLERS", "SHAPE_SOURCES", "OnnxImportError", "from_onnx"]
