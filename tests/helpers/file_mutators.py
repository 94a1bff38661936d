"""Malformed inputs for the file fuzzer: real seed files and the mutations applied to them.

Seeds are files graphcnn and its libraries really write: ONNX models of the zoo's lenet5 and of
tests/data/all_ops.gcnn, PyTorch checkpoints (zip and legacy formats), safetensors, ``.npz``
calibration arrays and PNG/JPEG/BMP images. Mutations are byte-level (bit flips, interesting
values, truncation, insertion, deletion, duplication, splicing) and structure-aware: ONNX
protobuf fields (dims, attributes, rewired inputs for cycles and self-loops, opsets, external
data, op types, element types), members of zip archives (``.pt``, ``.npz``), the safetensors JSON
header and PNG headers with valid CRCs. Every mutator takes the seed's bytes and a
``random.Random`` and returns new bytes, so a run is reproducible from its seed.
"""

from __future__ import annotations

import io
import json
import random
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
INTERESTING = (0, 1, -1, 2**31 - 1, -(2**31), 2**32, 2**62, -(2**62), 7, 255, 65536)
Mutator = Callable[[bytes, random.Random], bytes]


# ------------------------------------------------------------------------------ byte level
def flip_bits(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if b:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    return bytes(b)


def set_bytes(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if b:
            i = rng.randrange(len(b))
            b[i : i + 1] = bytes([rng.choice((0, 0x7F, 0x80, 0xFF, rng.randrange(256)))])
    return bytes(b)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(max(len(data), 1))]


def insert_random(data: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(data) + 1)
    return data[:i] + rng.randbytes(rng.randint(1, 64)) + data[i:]


def delete_range(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    i = rng.randrange(len(data))
    return data[:i] + data[i + rng.randint(1, 256) :]


def duplicate_range(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data
    i = rng.randrange(len(data))
    chunk = data[i : i + rng.randint(1, 512)]
    j = rng.randrange(len(data) + 1)
    return data[:j] + chunk * rng.randint(1, 4) + data[j:]


BYTE_MUTATORS: tuple[Mutator, ...] = (
    flip_bits,
    set_bytes,
    truncate,
    insert_random,
    delete_range,
    duplicate_range,
)


# ------------------------------------------------------------------------------------ ONNX
def _onnx_mutation(fn: Callable[[Any, random.Random], None]) -> Mutator:
    def mutate(data: bytes, rng: random.Random) -> bytes:
        import onnx

        m = onnx.ModelProto()
        m.ParseFromString(data)
        fn(m, rng)
        return bytes(m.SerializeToString())

    mutate.__name__ = fn.__name__
    return mutate


def _values(m: Any) -> list[str]:
    g = m.graph
    names = [i.name for i in g.input] + [t.name for t in g.initializer]
    return names + [o for n in g.node for o in n.output]


@_onnx_mutation
def onnx_dims(m: Any, rng: random.Random) -> None:
    shapes = [t.dims for t in m.graph.initializer if t.dims]
    infos = [*m.graph.input, *m.graph.output, *m.graph.value_info]
    shapes += [v.type.tensor_type.shape.dim for v in infos if v.type.tensor_type.shape.dim]
    if not shapes:
        return
    dims = rng.choice(shapes)
    i = rng.randrange(len(dims))
    value = rng.choice((0, -1, -3, 2**31, 2**40, 1))
    if hasattr(dims[i], "dim_value"):
        dims[i].dim_value = value
    else:
        dims[i] = value


@_onnx_mutation
def onnx_attribute(m: Any, rng: random.Random) -> None:
    attrs = [a for n in m.graph.node for a in n.attribute]
    if not attrs:
        return
    a = rng.choice(attrs)
    if a.ints:
        if rng.random() < 0.5:
            a.ints[rng.randrange(len(a.ints))] = rng.choice(INTERESTING)
        else:
            a.ints.append(rng.choice(INTERESTING))
    elif a.type == 2:  # INT
        a.i = rng.choice(INTERESTING)
    elif a.type == 1:  # FLOAT
        a.f = rng.choice((0.0, -1.0, float("nan"), float("inf"), 1e30))
    else:
        a.name = rng.choice(("", "axis", "kernel_shape", "nonsense"))


@_onnx_mutation
def onnx_rewire(m: Any, rng: random.Random) -> None:
    nodes = [n for n in m.graph.node if n.input]
    if not nodes:
        return
    n = rng.choice(nodes)
    k = rng.randrange(len(n.input))
    choice = rng.random()
    if choice < 0.3 and n.output:
        n.input[k] = n.output[0]  # a self-loop
    elif choice < 0.6:
        later = [o for x in m.graph.node[list(m.graph.node).index(n) :] for o in x.output]
        n.input[k] = rng.choice(later or [""])  # a cycle, or a value used before it exists
    else:
        n.input[k] = rng.choice([*_values(m), "", "no_such_value"])


@_onnx_mutation
def onnx_opset(m: Any, rng: random.Random) -> None:
    if rng.random() < 0.5 and m.opset_import:
        m.opset_import[0].version = rng.choice((0, 1, 6, 11, 99, 2**31))
    else:
        m.ir_version = rng.choice((0, 1, 3, 99, 2**40))


@_onnx_mutation
def onnx_external(m: Any, rng: random.Random) -> None:
    import onnx

    if not m.graph.initializer:
        return
    t = rng.choice(list(m.graph.initializer))
    t.ClearField("raw_data")
    t.data_location = onnx.TensorProto.EXTERNAL
    del t.external_data[:]
    for key, value in (
        ("location", rng.choice(("../x.bin", "/etc/passwd", "missing.bin", "", "a/../../b", "."))),
        ("offset", str(rng.choice((0, -1, 2**40)))),
        ("length", str(rng.choice((0, 4, 2**40)))),
    ):
        if rng.random() < 0.8:
            e = t.external_data.add()
            e.key, e.value = key, value


@_onnx_mutation
def onnx_op_type(m: Any, rng: random.Random) -> None:
    if not m.graph.node:
        return
    ops = ("Conv", "Relu", "Add", "Loop", "If", "Reshape", "Gemm", "Concat", "Split", "Slice")
    n = rng.choice(list(m.graph.node))
    if rng.random() < 0.8:
        n.op_type = rng.choice((*ops, "Scan", "NoSuchOp", ""))
    else:
        n.domain = rng.choice(("com.microsoft", "ai.onnx.ml", "x"))


@_onnx_mutation
def onnx_nodes(m: Any, rng: random.Random) -> None:
    nodes = m.graph.node
    if len(nodes) < 2:
        return
    i, j = rng.randrange(len(nodes)), rng.randrange(len(nodes))
    what = rng.randrange(3)
    if what == 0:
        del nodes[i]
    elif what == 1:
        nodes.add().CopyFrom(nodes[i])  # two producers of one value
    else:
        a, b = type(nodes[i])(), type(nodes[j])()
        a.CopyFrom(nodes[i])
        b.CopyFrom(nodes[j])
        nodes[i].CopyFrom(b)
        nodes[j].CopyFrom(a)


@_onnx_mutation
def onnx_types(m: Any, rng: random.Random) -> None:
    if rng.random() < 0.5 and m.graph.initializer:
        t = rng.choice(list(m.graph.initializer))
        t.data_type = rng.choice((0, 2, 6, 7, 10, 11, 16, 99))
    elif m.graph.input:
        m.graph.input[0].type.tensor_type.elem_type = rng.choice((0, 6, 7, 10, 11, 99))


@_onnx_mutation
def onnx_graph_io(m: Any, rng: random.Random) -> None:
    g = m.graph
    what = rng.randrange(3)
    if what == 0 and g.output:
        g.output[0].name = rng.choice([*_values(m), "nothing"])
    elif what == 1 and g.input:
        del g.input[0]
    elif g.initializer:
        t = rng.choice(list(g.initializer))
        t.raw_data = t.raw_data[: rng.randrange(len(t.raw_data) + 1)]


ONNX_MUTATORS: tuple[Mutator, ...] = (
    onnx_dims,
    onnx_attribute,
    onnx_rewire,
    onnx_opset,
    onnx_external,
    onnx_op_type,
    onnx_nodes,
    onnx_types,
    onnx_graph_io,
)


# ----------------------------------------------------------------------- zip archives (pt, npz)
def zip_member(data: bytes, rng: random.Random) -> bytes:
    """A byte mutation of one member of a zip archive (the pickle or a storage of a .pt, an
    array of an .npz), re-zipped so the archive itself stays valid."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            members = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    except (zipfile.BadZipFile, ValueError, EOFError, OSError):
        return flip_bits(data, rng)
    if not members:
        return data
    k = rng.randrange(len(members))
    name, body = members[k]
    members[k] = (name, rng.choice(BYTE_MUTATORS)(body, rng))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for n, b in members:
            z.writestr(n, b)
    return out.getvalue()


def npy_header(data: bytes, rng: random.Random) -> bytes:
    """An .npz whose first array's header declares another shape or dtype."""
    import numpy as np

    shape = rng.choice(((2**40, 3, 16, 16), (-1, 3), (0, 3, 16, 16), (4, 3, 16), ()))
    dtype = rng.choice(("<f4", "<f8", "|O", "<i8", "<U4"))
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    payload = buf.getvalue()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            first = z.infolist()[0].filename
            body = z.read(first)
    except (zipfile.BadZipFile, IndexError, ValueError, OSError):
        return data
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(first, b"\x93NUMPY\x01\x00" + payload[8:] + body[128:])
    return out.getvalue()


# ----------------------------------------------------------------------------- safetensors
def safetensors_header(data: bytes, rng: random.Random) -> bytes:
    if len(data) < 8:
        return data
    (n,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8 : 8 + n])
    except ValueError:
        return flip_bits(data, rng)
    keys = [k for k in header if k != "__metadata__"]
    if keys:
        entry = header[rng.choice(keys)]
        what = rng.randrange(4)
        if what == 0:
            entry["shape"] = [rng.choice(INTERESTING) for _ in entry["shape"]] or [2**40]
        elif what == 1:
            entry["dtype"] = rng.choice(("F64", "BF16", "I8", "BOOL", "XX", 3))
        elif what == 2:
            entry["data_offsets"] = [rng.choice(INTERESTING), rng.choice(INTERESTING)]
        else:
            header[rng.choice(("", "\x00", "a" * 300, "module.x"))] = entry
    blob = json.dumps(header).encode()
    length = len(blob) if rng.random() < 0.8 else rng.choice(INTERESTING) % 2**64
    return struct.pack("<Q", length) + blob + data[8 + n :]


# ---------------------------------------------------------------------------------- images
def png_size(data: bytes, rng: random.Random) -> bytes:
    """A PNG whose IHDR (with a valid CRC) claims another size or bit depth."""
    if not data.startswith(b"\x89PNG") or len(data) < 33:
        return set_bytes(data, rng)
    w = rng.choice((0, 1, 2**31 - 1, 100_000, 9000))
    h = rng.choice((0, 1, 2**31 - 1, 100_000, 9000))
    ihdr = bytearray(data[16:29])
    ihdr[0:8] = struct.pack(">II", w, h)
    if rng.random() < 0.3:
        ihdr[8] = rng.choice((0, 3, 16, 255))
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(ihdr)) & 0xFFFFFFFF)
    return data[:16] + bytes(ihdr) + crc + data[33:]


# ------------------------------------------------------------------------------------ seeds
def onnx_seeds() -> list[bytes]:
    import graphcnn
    from graphcnn.backends.to_onnx import to_onnx
    from graphcnn.weights import init_weights

    out = []
    for spec in ("lenet5", str(REPO / "tests" / "data" / "all_ops.gcnn")):
        try:
            g = graphcnn.compile(spec)
            out.append(bytes(to_onnx(g, init_weights(g, 0)).SerializeToString()))
        except Exception:  # noqa: BLE001, S112 - a seed that does not lower is not a finding
            continue
    return out


def checkpoint_seeds(kind: str) -> list[bytes]:
    import graphcnn
    from graphcnn.weights import init_weights, safetensors_bytes

    weights = init_weights(graphcnn.compile("lenet5"), 0)
    if kind == "safetensors":
        return [safetensors_bytes(weights, {"graphcnn.model": "lenet5"})]
    import torch

    state = {k: torch.from_numpy(v) for k, v in weights.items()}
    out = []
    for new_zip in (True, False):
        buf = io.BytesIO()
        torch.save(
            {"state_dict": state} if new_zip else state, buf, _use_new_zipfile_serialization=new_zip
        )
        out.append(buf.getvalue())
    return out


def npz_seeds() -> list[bytes]:
    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, x=np.random.default_rng(0).random((8, 3, 16, 16), dtype=np.float32))
    return [buf.getvalue()]


def image_seeds() -> list[bytes]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for fmt, size in (("PNG", (24, 20)), ("JPEG", (20, 24)), ("BMP", (16, 16)), ("PNG", (8, 40))):
        im = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
        buf = io.BytesIO()
        im.save(buf, fmt)
        out.append(buf.getvalue())
    return out
