"""Weights (issue: PyTorch lowering): seeded init, safetensors I/O, checkpoints, `compile` CLI.

Covers graphcnn/weights.py (init_weights, check_weights, load_checkpoint, save/load_safetensors,
write_atomic), the `graphcnn compile MODEL --target torch` command and the standalone source it
writes, against torch's own layers and torchvision's resnet18.
"""

from __future__ import annotations

import ast
import math
import os
import pickle
import shutil
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from conftest import compile_text
from helpers.cli import invoke
from helpers.tools import import_file
from helpers.zoo import slow_params

import graphcnn
from graphcnn.weights import (
    WeightsError,
    check_weights,
    expected,
    init_weights,
    load_checkpoint,
    load_safetensors,
    save_safetensors,
    write_atomic,
)

# --------------------------------------------------------------------------------------- specs
SMALL = """
network n() {
  x = input(3, 16, 16) -> conv(8, 3, pad: 1) as stem -> relu
  x = x -> conv(8, 3, pad: 1, bias: false) as body -> bn as norm -> relu
  return x -> adaptive_avgpool(1) -> flatten -> linear(10) as fc
}
"""
# SMALL with one more layer (and its parameters) between `stem` and `body`.
SMALL_PLUS = """
network n() {
  x = input(3, 16, 16) -> conv(8, 3, pad: 1) as stem -> relu
  x = x -> conv(8, 1) as extra -> relu
  x = x -> conv(8, 3, pad: 1, bias: false) as body -> bn as norm -> relu
  return x -> adaptive_avgpool(1) -> flatten -> linear(10) as fc
}
"""
# Big enough layers to test the distribution: a dense conv, a depthwise conv, BN and a linear.
WIDE = """
network d() {
  x = input(128, 8, 8) -> conv(256, 3, pad: 1) as conv -> conv(256, 3, groups: 256) as dw
        -> bn as norm
  return x -> adaptive_avgpool(1) -> flatten -> linear(1000) as fc
}
"""

ALLOWED_IMPORTS = {"torch", "safetensors"}
"""Third-party top-level packages a generated model file may import (plus the stdlib)."""


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def torchvision(torch: ModuleType) -> ModuleType:
    return pytest.importorskip("torchvision")


@pytest.fixture(scope="module")
def r18() -> graphcnn.Graph:
    return graphcnn.compile("resnet18")


@pytest.fixture(scope="module")
def tv_r18(torch: ModuleType, torchvision: ModuleType) -> Any:
    """torchvision's resnet18 in eval mode, with non-trivial BN statistics and affine params
    (so a wrongly loaded or ignored BN buffer changes the outputs)."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
                m.num_batches_tracked.fill_(7)
    return model.eval()


@pytest.fixture(scope="module")
def tv_state(tv_r18: Any) -> dict[str, Any]:
    return {k: v.clone() for k, v in tv_r18.state_dict().items()}


@pytest.fixture(scope="module")
def ckpt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ckpt")


@pytest.fixture(scope="module")
def good_ckpt(torch: ModuleType, tv_state: dict[str, Any], ckpt_dir: Path) -> Path:
    path = ckpt_dir / "resnet18_tv.pth"
    torch.save(tv_state, path)
    return path


@pytest.fixture(scope="module")
def bad_state(tv_state: dict[str, Any], torch: ModuleType) -> dict[str, Any]:
    """One missing, one unexpected and one mis-shaped key."""
    state = dict(tv_state)
    del state["layer1.0.conv1.weight"]
    state["layer9.extra.weight"] = torch.zeros(3)
    state["fc.weight"] = torch.zeros(10, 512)
    return state


BAD_LINES = [
    "bad.pth does not fit resnet18:",
    "  missing (1):",
    "    layer1.0.conv1.weight",
    "  unexpected (1):",
    "    layer9.extra.weight",
    "  wrong shape (1):",
    "    fc.weight: expected [1000, 512], got [10, 512]",
]


@pytest.fixture(scope="module")
def bad_ckpt(torch: ModuleType, bad_state: dict[str, Any], ckpt_dir: Path) -> Path:
    path = ckpt_dir / "bad.pth"
    torch.save(bad_state, path)
    return path


@pytest.fixture(scope="module")
def image(torch: ModuleType) -> Any:
    return torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))


@pytest.fixture(scope="module")
def compiled(good_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`graphcnn compile resnet18 -o out/model.py --weights resnet18_tv.pth`; returns model.py."""
    out = tmp_path_factory.mktemp("compiled") / "out" / "model.py"
    invoke("compile", "resnet18", "--target", "torch", "-o", str(out), "--weights", str(good_ckpt))
    return out


# ------------------------------------------------------------------------------- init_weights
def test_init_is_deterministic_per_seed_and_differs_across_seeds() -> None:
    g = compile_text(SMALL)
    a, b, c = init_weights(g, 0), init_weights(g, 0), init_weights(g, 1)
    assert list(a) == list(expected(g))
    for k in a:
        assert a[k].dtype == np.float32 and a[k].shape == expected(g)[k][0].shape
        np.testing.assert_array_equal(a[k], b[k])
    for k in ("stem.weight", "stem.bias", "body.weight", "fc.weight", "fc.bias"):
        assert not np.array_equal(a[k], c[k]), k
    for k in ("norm.weight", "norm.bias", "norm.running_mean", "norm.running_var"):
        np.testing.assert_array_equal(a[k], c[k])  # BN init is constant, seed-independent
    # Each tensor has its own stream: weights and biases of one layer are not the same draws.
    assert not np.array_equal(a["fc.weight"][0, :10], a["fc.bias"][:10])


def test_init_of_a_layer_is_independent_of_other_layers() -> None:
    g, h = compile_text(SMALL), compile_text(SMALL_PLUS)
    a, b = init_weights(g, 5), init_weights(h, 5)
    assert set(b) - set(a) == {"extra.weight", "extra.bias"}
    for k in a:  # stem (before the extra layer), body, norm and fc (after it): all unchanged
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_init_dtype_argument() -> None:
    w = init_weights(compile_text(SMALL), 0, dtype="float64")
    assert all(v.dtype == np.float64 for v in w.values())
    w32 = init_weights(compile_text(SMALL), 0)
    np.testing.assert_array_equal(w["fc.weight"].astype(np.float32), w32["fc.weight"])


def _torch_layers(torch: ModuleType) -> dict[str, Any]:
    nn = torch.nn
    torch.manual_seed(0)
    return {
        "conv": nn.Conv2d(128, 256, 3, padding=1),
        "dw": nn.Conv2d(256, 256, 3, groups=256),
        "norm": nn.BatchNorm2d(256),
        "fc": nn.Linear(256, 1000),
    }


@pytest.mark.parametrize("layer", ["conv", "dw", "fc"])
@pytest.mark.parametrize("param", ["weight", "bias"])
def test_init_follows_pytorch_default_uniform_bounds(
    torch: ModuleType, layer: str, param: str
) -> None:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias: the bound reset_parameters uses
    (kaiming_uniform_(a=sqrt(5)) for the weight), checked on the empirical distribution."""
    g = compile_text(WIDE)
    ours = init_weights(g, 0)[f"{layer}.{param}"].astype(np.float64).ravel()
    ref = _torch_layers(torch)[layer]
    theirs = getattr(ref, param).detach().double().numpy().ravel()
    fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(ref.weight)
    bound = 1.0 / math.sqrt(fan_in)
    # torch's own samples confirm the bound we derive from reset_parameters...
    assert np.abs(theirs).max() <= bound * (1 + 1e-6)
    n = ours.size
    assert n == theirs.size
    # ...and ours: inside [-bound, bound], reaching both ends (max gap ~ 2*bound/n).
    assert ours.min() >= -bound * (1 + 1e-6) and ours.max() <= bound * (1 + 1e-6)
    slack = min(0.5, 30.0 / n)  # P(an end stays further than slack*bound away) ~ exp(-15)
    assert ours.min() <= -bound * (1 - slack) and ours.max() >= bound * (1 - slack)
    std = bound / math.sqrt(3)  # of U(-b, b)
    assert abs(ours.mean()) <= 6 * std / math.sqrt(n)
    # the sample std's relative error is ~ sqrt(0.8 / n) for a uniform distribution
    tol = 6 * math.sqrt(0.8 / n)
    assert abs(ours.std() / std - 1) <= tol
    assert abs(ours.std() / theirs.std() - 1) <= 2 * tol


def test_init_batch_norm_matches_pytorch(torch: ModuleType) -> None:
    ours = init_weights(compile_text(WIDE), 3)
    ref = _torch_layers(torch)["norm"].state_dict()
    for name in ("weight", "bias", "running_mean", "running_var"):
        np.testing.assert_array_equal(ours[f"norm.{name}"], ref[name].numpy())
    assert "norm.num_batches_tracked" not in ours


# ------------------------------------------------------------------------------- safetensors
def test_safetensors_round_trip(tmp_path: Path) -> None:
    w = init_weights(compile_text(SMALL), 0)
    w["fc.weight"] = w["fc.weight"].T.copy().T  # a non-C-contiguous view of the same values
    assert not w["fc.weight"].flags.c_contiguous
    path = tmp_path / "w.safetensors"
    save_safetensors(w, path, {"graphcnn.model": "n"})
    back = load_safetensors(path)
    assert list(sorted(back)) == sorted(w)
    for k in w:
        assert back[k].dtype == w[k].dtype
        np.testing.assert_array_equal(back[k], w[k])
    assert sorted(os.listdir(tmp_path)) == ["w.safetensors"]  # no temporary file left behind
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        assert f.metadata() == {"graphcnn.model": "n"}
    g = compile_text(SMALL)
    loaded = load_checkpoint(path, g)  # .safetensors goes through the same checks
    np.testing.assert_array_equal(loaded["stem.weight"], w["stem.weight"])


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077, 0o002])
def test_written_files_follow_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        save_safetensors({"a": np.zeros(3, np.float32)}, tmp_path / "w.safetensors")
        write_atomic(tmp_path / "src.py", "x = 1\n")
    finally:
        os.umask(old)
    for name in ("w.safetensors", "src.py"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name
    assert (tmp_path / "src.py").read_text() == "x = 1\n"


def test_write_atomic_creates_folders_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "f.bin"
    write_atomic(target, b"one")
    write_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert os.listdir(target.parent) == ["f.bin"]


@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt()])
@pytest.mark.parametrize("where", ["replace", "fsync"])
def test_failed_write_leaves_no_partial_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: BaseException, where: str
) -> None:
    def boom(*args: object) -> None:
        raise exc

    monkeypatch.setattr(os, where, boom)  # graphcnn.weights uses this very `os` module
    target = tmp_path / "w.safetensors"
    with pytest.raises(type(exc)):
        save_safetensors({"a": np.ones(4, np.float32)}, target)
    monkeypatch.undo()
    assert not target.exists()
    assert os.listdir(tmp_path) == []  # the temporary file is gone too


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "model.py"
    write_atomic(target, "old\n")

    def boom(*args: object) -> None:
        raise OSError("no")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_atomic(target, "new\n" * 1000)
    monkeypatch.undo()
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["model.py"]


def test_corrupt_safetensors_is_a_weights_error(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    with pytest.raises(WeightsError, match="cannot read safetensors file"):
        load_checkpoint(path)
    path.write_bytes(b"")
    with pytest.raises(WeightsError, match="w.safetensors"):
        load_checkpoint(path)


# ------------------------------------------------------------------------------ check_weights
def test_check_weights_lists_every_problem_and_truncates() -> None:
    g = compile_text(SMALL)
    w = init_weights(g, 0)
    check_weights(g, w)
    bad = {k: v for k, v in w.items() if k != "stem.bias"}
    bad["stem.weight"] = np.zeros((8, 3, 5, 5), np.float32)
    bad["ghost"] = np.zeros(1, np.float32)
    with pytest.raises(WeightsError) as info:
        check_weights(g, bad, "x.pth")
    assert str(info.value).splitlines() == [
        "x.pth does not fit n:",
        "  missing (1):",
        "    stem.bias",
        "  unexpected (1):",
        "    ghost",
        "  wrong shape (1):",
        "    stem.weight: expected [8, 3, 3, 3], got [8, 3, 5, 5]",
    ]
    assert info.value.hint
    many = dict(w, **{f"junk{i}": np.zeros(1) for i in range(53)})
    with pytest.raises(WeightsError) as info:
        check_weights(g, many)
    lines = str(info.value).splitlines()
    assert lines[1] == "  unexpected (53):" and lines[-1] == "    ... and 3 more"
    assert len(lines) == 2 + 50 + 1


# ----------------------------------------------------------------------------- load_checkpoint
def _variants(state: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    yield "plain", state
    yield "module_prefix", {f"module.{k}": v for k, v in state.items()}
    yield "wrapped", {"state_dict": state, "epoch": 3}
    yield "wrapped_prefix", {"state_dict": {f"module.{k}": v for k, v in state.items()}}


@pytest.mark.parametrize("variant", ["plain", "module_prefix", "wrapped", "wrapped_prefix"])
def test_load_torchvision_checkpoint(
    torch: ModuleType,
    r18: graphcnn.Graph,
    tv_state: dict[str, Any],
    tmp_path: Path,
    variant: str,
) -> None:
    obj = dict(_variants(tv_state))[variant]
    path = tmp_path / "ckpt.pth"
    torch.save(obj, path)
    w = load_checkpoint(path, r18)
    assert set(w) == set(expected(r18))
    assert not any(k.endswith("num_batches_tracked") for k in w)
    check_weights(r18, w)
    for k, v in w.items():
        assert isinstance(v, np.ndarray) and v.flags.c_contiguous
        np.testing.assert_array_equal(v, tv_state[k].numpy(), err_msg=k)


def test_checkpoint_problems_are_all_listed(r18: graphcnn.Graph, bad_ckpt: Path) -> None:
    with pytest.raises(WeightsError) as info:
        load_checkpoint(bad_ckpt, r18)
    assert str(info.value).splitlines() == BAD_LINES
    assert "same architecture" in info.value.format()
    # Without a graph nothing is checked: the file itself is fine.
    assert "layer9.extra.weight" in load_checkpoint(bad_ckpt)


def test_non_state_dict_pickle(torch: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(2), 3], path)
    with pytest.raises(WeightsError) as info:
        load_checkpoint(path)
    assert str(info.value) == "list.pth holds a list, not a state dict"
    assert info.value.hint and "state_dict()" in info.value.hint


def test_pickled_model_object_gets_the_state_dict_hint(torch: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "model.pth"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(WeightsError) as info:
        load_checkpoint(path)
    text = info.value.format()
    assert "\x1b" not in text and "weights_only" not in text
    assert "state_dict()" in text


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04" + b"\0" * 40])
def test_corrupt_checkpoint_is_a_weights_error(
    torch: ModuleType, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "broken.pth"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match="cannot read PyTorch checkpoint '.*broken.pth'"):
        load_checkpoint(path)


def test_truncated_checkpoint_is_a_weights_error(good_ckpt: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.pth"
    path.write_bytes(good_ckpt.read_bytes()[: good_ckpt.stat().st_size // 2])
    with pytest.raises(WeightsError, match="cut.pth"):
        load_checkpoint(path)


def test_missing_checkpoint_is_a_weights_error(tmp_path: Path) -> None:
    for name in ("nope.pth", "nope.safetensors"):
        with pytest.raises(WeightsError, match="no such file"):
            load_checkpoint(tmp_path / name)
    with pytest.raises(WeightsError, match="is a directory"):
        load_checkpoint(tmp_path)  # a folder is not a weights file


def test_unpickling_never_runs_code(torch: ModuleType, tmp_path: Path) -> None:
    """Checkpoints are loaded with weights_only: a malicious pickle is refused, not executed."""
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pth"
    with path.open("wb") as f:
        pickle.dump({"x": Evil()}, f, protocol=2)
    with pytest.raises(WeightsError):
        load_checkpoint(path)
    assert not marker.exists()


# ------------------------------------------------------------------------------------ the CLI
def test_cli_bad_checkpoint_lists_keys_and_writes_nothing(bad_ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke(
        "compile", "resnet18", "-o", str(out / "model.py"), "--weights", str(bad_ckpt), code=2
    )
    assert "Traceback" not in result.output
    lines = result.output.splitlines()
    assert lines[0] == "error: " + BAD_LINES[0]
    assert lines[1 : len(BAD_LINES)] == BAD_LINES[1:]
    assert "  hint: the checkpoint must come from the same architecture and arguments" in lines
    assert not (out / "model.py").exists() and not list(out.glob("model*.safetensors"))
    assert not out.exists() or not any(out.iterdir())


def test_cli_missing_checkpoint(tmp_path: Path) -> None:
    out, nope = str(tmp_path / "m.py"), str(tmp_path / "nope.pth")
    result = invoke("compile", "lenet5", "-o", out, "--weights", nope, code=2)
    assert "no such file" in result.output and "Traceback" not in result.output
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_installed_script_bad_checkpoint(bad_ckpt: Path, tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("graphcnn")  # the venv's console script
    if not script.exists():
        found = shutil.which("graphcnn")
        if found is None:
            pytest.skip("the graphcnn console script is not installed")
        script = Path(found)
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            str(script),
            "compile",
            "resnet18",
            "--target",
            "torch",
            "-o",
            str(out / "model.py"),
            "--weights",
            str(bad_ckpt),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert lines[: len(BAD_LINES)] == ["error: " + BAD_LINES[0], *BAD_LINES[1:]]
    assert not (out / "model.py").exists() and not list(out.glob("model*.safetensors"))


def weights_beside(source: Path) -> Path:
    """The weights file the generated source names (``<stem>.<sha256[:8]>.safetensors``)."""
    (name,) = [ln.split("'")[1] for ln in source.read_text().splitlines() if "WEIGHTS = '" in ln]
    return source.with_name(name)


def test_cli_writes_source_and_weights(compiled: Path, good_ckpt: Path) -> None:
    import hashlib

    weights = weights_beside(compiled)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert sorted(os.listdir(compiled.parent)) == [f"model.{digest[:8]}.safetensors", "model.py"]
    from safetensors import safe_open

    with safe_open(str(weights), "np") as f:
        assert f.metadata() == {"graphcnn.model": "resnet18", "graphcnn.origin": str(good_ckpt)}
    src = compiled.read_text()
    assert f"WEIGHTS_SHA256 = {digest!r}" in src
    compile(src, str(compiled), "exec")


def test_generated_model_reproduces_torchvision(
    torch: ModuleType, compiled: Path, tv_r18: Any, image: Any
) -> None:
    model = import_file(compiled).Model().eval()
    with torch.no_grad():
        ours, theirs = model(image), tv_r18(image)
    assert ours.shape == (2, 1000)
    assert (ours - theirs).abs().max().item() <= 1e-5
    assert theirs.abs().max().item() > 0.1  # not trivially zero
    sd = model.state_dict()
    for k, v in tv_r18.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        assert torch.equal(sd[k], v), k


def test_generated_model_without_loading(torch: ModuleType, compiled: Path, image: Any) -> None:
    from safetensors.torch import load_file

    saved = load_file(str(weights_beside(compiled)))
    module = import_file(compiled)
    torch.manual_seed(123)  # not tv_r18's seed: same construction order, same default draws
    bare = module.Model(load_weights=False).eval()
    loaded = module.Model().eval()
    for k in ("conv1.weight", "layer4.1.conv2.weight", "fc.weight", "fc.bias"):
        assert not torch.equal(bare.state_dict()[k], saved[k]), k
        assert torch.equal(loaded.state_dict()[k], saved[k]), k
    with torch.no_grad():
        assert not torch.allclose(bare(image), loaded(image))


def _imports(tree: ast.AST) -> set[str]:
    mods: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import in generated code"
            assert node.module is not None
            mods.add(node.module.split(".")[0])
    return mods


@pytest.mark.parametrize(
    "model",
    slow_params(["resnet18", "googlenet", "efficientnet_b0"], {"googlenet", "efficientnet_b0"}),
)
def test_generated_file_imports_only_torch_safetensors_stdlib(
    compiled: Path, tmp_path: Path, model: str
) -> None:
    if model == "resnet18":
        src = compiled.read_text()
    else:
        out = tmp_path / "m.py"
        invoke("compile", model, "-o", str(out))
        src = out.read_text()
    mods = _imports(ast.parse(src))
    third_party = {m for m in mods if m not in sys.stdlib_module_names and m != "__future__"}
    assert third_party <= ALLOWED_IMPORTS, third_party
    assert {"torch", "safetensors"} <= mods


@pytest.mark.slow
def test_generated_file_runs_without_graphcnn(
    compiled: Path, tmp_path: Path, torch: ModuleType, image: Any
) -> None:
    """A fresh interpreter, graphcnn made unimportable, another working directory."""
    result = tmp_path / "y.pt"
    code = textwrap.dedent(f"""
        import sys
        sys.modules["graphcnn"] = None  # any `import graphcnn` now fails
        import importlib.util, torch
        spec = importlib.util.spec_from_file_location("model", {str(compiled)!r})
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        model = mod.Model().eval()
        x = torch.load({str(tmp_path / "x.pt")!r})
        with torch.no_grad():
            torch.save(model(x), {str(result)!r})
    """)
    torch.save(image, tmp_path / "x.pt")
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert proc.returncode == 0, proc.stderr
    model = import_file(compiled).Model().eval()
    with torch.no_grad():
        expect = model(image)
    torch.testing.assert_close(torch.load(result), expect, rtol=0, atol=1e-6)


def test_generated_file_equals_in_memory_lowering(
    torch: ModuleType, compiled: Path, good_ckpt: Path, r18: graphcnn.Graph, image: Any
) -> None:
    from graphcnn.backends.to_torch import to_torch

    mem = to_torch(r18, load_checkpoint(good_ckpt, r18)).eval()
    gen = import_file(compiled).Model().eval()
    assert mem.state_dict().keys() == gen.state_dict().keys()
    with torch.no_grad():
        assert torch.equal(mem(image), gen(image))


@pytest.mark.parametrize(
    "model",
    slow_params(
        ["lenet5", "googlenet", "shufflenet_v2_x0_5", "efficientnet_b0", "mobilenet_v2"],
        {"googlenet", "efficientnet_b0", "shufflenet_v2_x0_5"},
    ),
)
def test_seeded_generated_file_equals_in_memory_lowering(
    torch: ModuleType, tmp_path: Path, model: str
) -> None:
    """`compile --seed 3` writes init_weights(g, 3); the file's Model() is to_torch(g, seed=3)."""
    from graphcnn.backends.to_torch import to_torch

    out = tmp_path / "m.py"
    invoke("compile", model, "-o", str(out), "--seed", "3")
    g = graphcnn.compile(model)
    saved = load_safetensors(weights_beside(out))
    want = init_weights(g, 3)
    assert saved.keys() == want.keys()
    for k in want:
        np.testing.assert_array_equal(saved[k], want[k], err_msg=k)
    mem = to_torch(g, seed=3).eval()
    gen = import_file(out).Model().eval()
    x = torch.randn(1, *g.inputs[0].type.shape[1:], generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        a, b = mem(x), gen(x)
    assert torch.equal(a, b)


def test_cli_seed_changes_weights(tmp_path: Path) -> None:
    paths = {}
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        out = tmp_path / name / "m.py"
        invoke("compile", "lenet5", "-o", str(out), "--seed", seed)
        paths[name] = load_safetensors(weights_beside(out))
    for k in paths["a"]:
        np.testing.assert_array_equal(paths["a"][k], paths["b"][k])
    assert not np.array_equal(paths["a"]["conv1.weight"], paths["c"]["conv1.weight"])


def test_cli_negative_seed_is_a_clean_error(tmp_path: Path) -> None:
    result = invoke("compile", "lenet5", "-o", str(tmp_path / "m.py"), "--seed", "-1", code=2)
    assert "Traceback" not in result.output and "seed" in result.output.lower()
    assert os.listdir(tmp_path) == []


def test_cli_output_must_not_be_the_weights_file(tmp_path: Path) -> None:
    out = tmp_path / "m.safetensors"
    invoke("compile", "lenet5", "-o", str(out), code=2)
    assert os.listdir(tmp_path) == []
