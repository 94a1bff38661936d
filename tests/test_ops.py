"""Every op in every per-op table: the one-stop check for adding an op.

An op's meaning lives in one table per stage (shape rule, cost rule, receptive field, saved
tensors, the spec language's layer, each backend's lowering, the ONNX importer) and the shared
spec ``tests/data/all_ops.gcnn`` uses every op. Adding a member to ``graphcnn.ops.Op`` makes one
test per table fail, each naming the table (file and name) and the op: those are the files to
edit (docs/layout.md, "Add an op").
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import pytest

import graphcnn
from graphcnn.ir import Graph, GroupOp, Op
from graphcnn.ops import arity

ALL_OPS = Path(__file__).resolve().parent / "data" / "all_ops.gcnn"


def _shape_rules() -> Collection[Op]:
    from graphcnn.shapes import SHAPE_RULES

    return SHAPE_RULES


def _cost_rules() -> Collection[Op]:
    from graphcnn.cost import COST_RULES

    return COST_RULES


def _receptive_field() -> Collection[Op]:
    from graphcnn.analysis.receptive_field import RULES

    return RULES


def _peak_memory() -> Collection[Op]:
    from graphcnn.analysis.peak_memory import SAVED

    return SAVED


def _layers() -> Collection[Op]:
    from graphcnn.lang.builtins import LAYERS, SPECIAL_LAYERS

    return {layer.op for layer in LAYERS.values()} | {Op(name) for name in SPECIAL_LAYERS}


def _to_torch() -> Collection[Op]:
    from graphcnn.backends.to_torch import LOWERINGS

    return LOWERINGS


def _to_onnx() -> Collection[Op]:
    from graphcnn.backends.to_onnx import LOWERINGS

    return LOWERINGS


def _all_ops_spec() -> Collection[Op]:
    return {n.op for n in all_ops()}


TABLES: dict[str, tuple[str, Callable[[], Collection[Op]]]] = {
    "SHAPE_RULES": ("graphcnn/shapes.py", _shape_rules),
    "COST_RULES": ("graphcnn/cost.py", _cost_rules),
    "receptive_field.RULES": ("graphcnn/analysis/receptive_field.py", _receptive_field),
    "peak_memory.SAVED": ("graphcnn/analysis/peak_memory.py", _peak_memory),
    "LAYERS": ("graphcnn/lang/builtins.py", _layers),
    "to_torch.LOWERINGS": ("backends/to_torch/lowering.py", _to_torch),
    "to_onnx.LOWERINGS": ("backends/to_onnx/lowering.py", _to_onnx),
    "all_ops.gcnn": ("tests/data/all_ops.gcnn", _all_ops_spec),
}
"""Table name -> (the file that holds it, its ops). The ONNX importer is checked below."""


def all_ops() -> Graph:
    return graphcnn.compile(str(ALL_OPS))


@pytest.mark.parametrize("op", list(Op), ids=str)
@pytest.mark.parametrize("table", list(TABLES))
def test_every_table_has_every_op(table: str, op: Op) -> None:
    path, ops = TABLES[table]
    assert op in ops(), (
        f"{table} ({path}) has no entry for Op.{op.name}: add one "
        "(docs/layout.md, 'Add an op', lists every table)"
    )


def test_no_table_has_an_op_the_enum_lacks() -> None:
    for table, (path, ops) in TABLES.items():
        assert set(ops()) <= set(Op), f"{table} ({path}) has entries that are not ops"


def test_categories_are_sets_of_ops() -> None:
    groups = {k: v for k, v in vars(GroupOp).items() if k.isupper()}
    assert groups, "GroupOp defines no category"
    for name, members in groups.items():
        assert isinstance(members, frozenset) and members <= set(Op), name
    assert GroupOp.RESHAPE <= GroupOp.VIEW <= GroupOp.INFERENCE_VIEW
    assert GroupOp.STOCHASTIC <= GroupOp.INFERENCE_VIEW
    assert not GroupOp.MACS & GroupOp.INFERENCE_VIEW


def test_all_ops_spec_respects_each_ops_arity() -> None:
    for node in all_ops():
        n = arity(node.op)
        assert len(node.inputs) == n if n is not None else len(node.inputs) >= 1, node.name


def _onnx_types_by_op(g: Graph) -> dict[Op, set[str]]:
    """The ONNX op types ``to_onnx`` emits for the first node of each op in ``g``."""
    from graphcnn.backends.to_onnx import to_onnx

    model = to_onnx(g)
    first: dict[Op, str] = {}
    for node in g:
        first.setdefault(node.op, node.name)
    out: dict[Op, set[str]] = {}
    for op, name in first.items():
        out[op] = {
            n.op_type for n in model.graph.node if n.name == name or n.name.startswith(name + ".")
        }
    return out


@pytest.fixture(scope="module")
def onnx_types() -> dict[Op, set[str]]:
    pytest.importorskip("onnx")
    return _onnx_types_by_op(all_ops())


@pytest.mark.parametrize("op", [op for op in Op if op is not Op.INPUT], ids=str)
def test_onnx_importer_handles_what_the_exporter_emits(
    op: Op, onnx_types: dict[Op, set[str]]
) -> None:
    from graphcnn.backends.from_onnx import HANDLERS

    emitted = onnx_types.get(op, set())
    assert emitted or op in GroupOp.STOCHASTIC, f"to_onnx emitted nothing for Op.{op.name}"
    missing = sorted(t for t in emitted if t not in HANDLERS)
    assert not missing, (
        f"from_onnx.HANDLERS (backends/from_onnx/) cannot import ONNX {', '.join(missing)}, "
        f"which to_onnx emits for Op.{op.name}: add a handler"
    )


def test_all_ops_spec_goes_through_every_stage() -> None:
    """The shared spec compiles, verifies, and every analysis and the inference pipeline run."""
    from graphcnn.analysis import peak_memory, receptive_field
    from graphcnn.cost import profile
    from graphcnn.passes import optimize

    g = all_ops()
    g.verify()
    assert profile(g).totals.params > 0
    assert set(receptive_field.analyze(g)) == set(g.nodes)
    assert peak_memory.analyze(g, 2, training=True).peak_bytes > 0
    lean, _, _ = optimize(g, None, "inference", verify=True)
    assert not {n.op for n in lean} & GroupOp.STOCHASTIC


def test_all_ops_round_trip_through_onnx_keeps_the_cost() -> None:
    pytest.importorskip("onnx")
    from graphcnn.backends.from_onnx import from_onnx
    from graphcnn.backends.to_onnx import to_onnx
    from graphcnn.cost import profile

    g = all_ops()
    back, _ = from_onnx(to_onnx(g))
    ours, theirs = profile(g).totals, profile(back).totals
    assert (theirs.params, theirs.macs) == (ours.params, ours.macs)
    vanish = GroupOp.STOCHASTIC | {Op.IDENTITY}  # the identity at inference: not exported
    # ONNX has no adaptive pool: a dividing one is exported as the equivalent AveragePool
    vanish |= {Op.ADAPTIVE_AVG_POOL}
    lost = ({n.op for n in g} - vanish) - {n.op for n in back}
    assert not lost, (
        f"the ONNX importer (backends/from_onnx/: layers.py, elementwise.py, tensors.py) "
        f"does not bring back {sorted(map(str, lost))}: add or extend the handler of what "
        "to_onnx emits for it"
    )
    assert {n.op for n in back} == {n.op for n in g} - vanish


def test_every_ops_parameters_get_torchs_initial_values(torch1: Any) -> None:
    """The state_dict of the lowered all-ops spec has exactly the keys the IR declares, and the
    seeded initialisation follows torch's own per op: constants (BN, layer_norm, layer_scale)
    equal, random tensors drawn with the same bound (a new op with parameters that
    ``init_weights`` does not know fails here)."""
    import numpy as np

    from graphcnn.backends.to_torch import to_torch
    from graphcnn.weights import expected, init_weights

    g = all_ops()
    ours = init_weights(g, 0)
    state = to_torch(g, seed=None).state_dict()
    # BN's step counter is torch bookkeeping, not a weight (checkpoints may omit it)
    theirs = {k: v.detach().numpy() for k, v in state.items() if "num_batches" not in k}
    assert set(theirs) == set(ours) == set(expected(g))
    for key, t in theirs.items():
        o = ours[key]
        assert o.shape == t.shape, key
        if (t == t.flat[0]).all():  # torch initialises it to a constant
            assert (o == t.flat[0]).all(), f"{key}: torch starts at {t.flat[0]}, ours differs"
        elif t.size >= 64:  # uniform on [-b, b]: the sample extremes agree within sampling
            ratio = float(np.abs(o).max() / np.abs(t).max())
            assert 0.8 < ratio < 1.25, (
                f"{key}: bound {np.abs(o).max()} vs torch's {np.abs(t).max()}"
            )
