"""Checkpoints without the weights of training-only parts, and `check --names-from`.

A torchvision GoogLeNet or Inception v3 built with ``aux_logits=False`` (as after loading its
pretrained weights) has no ``aux*`` keys: `compile --weights --pipeline inference` and
``graphcnn.load_weights(..., pipeline="inference")`` load it and say which keys were not needed;
without such a pipeline (and in ``train``) the missing keys stay one error naming them.
``graphcnn check SPEC --names-from CKPT`` compares names and shapes before loading anything.
Covers graphcnn/weights.py (compare_keys, fit_checkpoint, read_shapes), graphcnn/api.py
(load_weights), graphcnn/cli/compile.py and graphcnn/cli/spec.py.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.cli import invoke
from helpers.tools import import_file

import graphcnn
from graphcnn.passes import optimize
from graphcnn.weights import WeightsError, expected, load_checkpoint, save_safetensors

torchvision = pytest.importorskip("torchvision")

GOOGLENET_AUX = 18  # aux1 and aux2: conv (weight + 4 BN tensors), fc1 and fc2 (weight, bias)
INCEPTION3_AUX = 12  # AuxLogits: conv0 and conv1 (weight + 4 BN tensors each), fc


def _bn_stats(model: Any, torch: Any) -> Any:
    """Non-trivial running statistics, so a BN that was not loaded would show."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.eval()


def _saved(name: str, seed: int, torch: Any, tmp: pytest.TempPathFactory) -> tuple[Path, Any]:
    """torchvision's ``name`` without auxiliary heads, saved as a state dict; (path, module)."""
    torch.manual_seed(seed)
    model = torchvision.models.get_model(name, aux_logits=False, init_weights=False)
    model = _bn_stats(model, torch)
    path = tmp.mktemp("ckpt") / f"{name}.pth"
    torch.save(model.state_dict(), path)
    return path, model


@pytest.fixture(scope="module")
def googlenet_ckpt(torch1: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    return _saved("googlenet", 0, torch1, tmp_path_factory)


@pytest.fixture(scope="module")
def inception3_ckpt(torch1: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    return _saved("inception_v3", 1, torch1, tmp_path_factory)


def test_the_checkpoints_lack_exactly_the_training_only_keys(
    googlenet_ckpt: tuple[Path, Any], inception3_ckpt: tuple[Path, Any]
) -> None:
    for (path, _), name, count in (
        (googlenet_ckpt, "googlenet", GOOGLENET_AUX),
        (inception3_ckpt, "inception_v3", INCEPTION3_AUX),
    ):
        g = graphcnn.compile(name)
        want = expected(g)
        have = load_checkpoint(path)
        missing = [k for k in want if k not in have]
        assert len(missing) == count and all(want[k][1].training_only for k in missing)


def test_compile_torch_with_inference_pipeline_loads_and_says_what_was_not_needed(
    googlenet_ckpt: tuple[Path, Any], torch1: Any, tmp_path: Path
) -> None:
    path, model = googlenet_ckpt
    out = tmp_path / "g.py"
    r = invoke(
        "compile", "googlenet", "--target", "torch", "--weights", str(path),
        "--pipeline", "inference", "--input", "3x64x64", "-o", str(out),
    )  # fmt: skip
    note = r.stderr
    assert f"no weights for {GOOGLENET_AUX} keys" in note
    assert "training-only parts aux1, aux2" in note and "aux1.conv.conv.weight" in note
    assert "not needed: the pipeline removes those parts" in note
    mine = import_file(out).Model().eval()
    assert not any(k.startswith("aux") for k in mine.state_dict())
    x = torch1.randn(2, 3, 64, 64, generator=torch1.Generator().manual_seed(3))
    with torch1.no_grad():
        torch1.testing.assert_close(mine(x), model(x), rtol=1e-4, atol=1e-4)


def test_compile_onnx_with_inference_pipeline(
    googlenet_ckpt: tuple[Path, Any], torch1: Any, tmp_path: Path
) -> None:
    ort = pytest.importorskip("onnxruntime")
    path, model = googlenet_ckpt
    out = tmp_path / "g.onnx"
    r = invoke(
        "compile", "googlenet", "--target", "onnx", "--weights", str(path),
        "--pipeline", "inference", "--input", "3x64x64", "-o", str(out),
    )  # fmt: skip
    assert f"no weights for {GOOGLENET_AUX} keys" in r.stderr
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x})
    with torch1.no_grad():
        want = model(torch1.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)


def test_without_the_pipeline_the_missing_keys_are_one_error_with_a_hint(
    googlenet_ckpt: tuple[Path, Any], tmp_path: Path
) -> None:
    path, _ = googlenet_ckpt
    for pipeline in ("none", "fold_bn"):
        r = invoke(
            "compile", "googlenet", "--weights", str(path), "--pipeline", pipeline,
            "-o", str(tmp_path / "g.py"), code=2,
        )  # fmt: skip
        assert "Traceback" not in r.output
        assert "googlenet.pth does not fit googlenet:" in r.stderr
        assert f"missing ({GOOGLENET_AUX}):" in r.stderr and "aux2.fc2.bias" in r.stderr
        assert "training-only parts (aux1, aux2)" in r.stderr
        assert "--pipeline inference" in r.stderr
    assert not list(tmp_path.iterdir())


def test_unexpected_and_misshaped_keys_stay_errors_with_the_pipeline(
    googlenet_ckpt: tuple[Path, Any], torch1: Any, tmp_path: Path
) -> None:
    path, _ = googlenet_ckpt
    state = torch1.load(path, weights_only=True)
    extra = tmp_path / "extra.pth"
    torch1.save({**state, "ghost.weight": torch1.zeros(3)}, extra)
    r = invoke(
        "compile", "googlenet", "--weights", str(extra), "--pipeline", "inference",
        "-o", str(tmp_path / "g.py"), code=2,
    )  # fmt: skip
    assert "unexpected (1):" in r.stderr and "ghost.weight" in r.stderr
    assert "missing" not in r.stderr  # the aux keys are not needed, so not reported
    short = tmp_path / "short.pth"
    torch1.save({k: v for k, v in state.items() if k != "fc.bias"}, short)
    r = invoke(
        "compile", "googlenet", "--weights", str(short), "--pipeline", "inference",
        "-o", str(tmp_path / "g.py"), code=2,
    )  # fmt: skip
    assert "missing (1):" in r.stderr and "fc.bias" in r.stderr and "aux1" not in r.stderr
    assert "same architecture" in r.stderr


def test_api_load_weights_inception_v3(inception3_ckpt: tuple[Path, Any], torch1: Any) -> None:
    path, model = inception3_ckpt
    g = graphcnn.compile("inception_v3")
    fitted = graphcnn.load_weights(path, g, pipeline="inference")
    assert len(fitted.not_needed) == INCEPTION3_AUX
    assert all(k.startswith("AuxLogits.") for k in fitted.not_needed)
    assert fitted.note and "AuxLogits" in fitted.note and f"{INCEPTION3_AUX} keys" in fitted.note
    g2, w2, _ = optimize(g, fitted.weights, "inference")
    assert w2 is not None and not any(k.startswith("AuxLogits") for k in w2)
    mine = graphcnn.to_torch(g2, w2).eval()
    x = torch1.randn(1, 3, 299, 299, generator=torch1.Generator().manual_seed(4))
    with torch1.no_grad():
        torch1.testing.assert_close(mine(x), model(x), rtol=1e-4, atol=1e-4)
    # a pipeline named pass by pass removes them too; one that does not, refuses
    assert graphcnn.load_weights(path, g, "remove_training_outputs,fold_bn").not_needed
    with pytest.raises(WeightsError) as info:
        graphcnn.load_weights(path, g)
    assert "training-only parts (AuxLogits)" in (info.value.hint or "")
    assert "pipeline='inference'" in (info.value.hint or "")


def test_a_complete_checkpoint_needs_no_note(
    inception3_ckpt: tuple[Path, Any], tmp_path: Path
) -> None:
    g = graphcnn.compile("inception_v3")
    full = tmp_path / "full.safetensors"
    save_safetensors(graphcnn.load_weights(inception3_ckpt[0], g, "inference").weights, full)
    fitted = graphcnn.load_weights(full, g, "inference")
    assert fitted.not_needed == [] and fitted.note is None


def test_train_still_needs_the_training_only_parts(googlenet_ckpt: tuple[Path, Any]) -> None:
    from graphcnn.train.config import TrainConfig
    from graphcnn.train.transfer import initial_weights

    g = graphcnn.compile("googlenet")
    with pytest.raises(WeightsError) as info:
        initial_weights(g, TrainConfig(weights=str(googlenet_ckpt[0])))
    assert "aux1.conv.conv.weight" in info.value.message
    assert "training runs them" in (info.value.hint or "")


def test_names_from_lists_the_differences_before_loading(
    googlenet_ckpt: tuple[Path, Any], tmp_path: Path
) -> None:
    path, _ = googlenet_ckpt
    r = invoke("check", "googlenet", "--names-from", str(path), code=2)
    assert "ok googlenet:" in r.stdout
    assert "googlenet.pth does not match googlenet (287 keys in the file):" in r.stderr
    assert f"missing ({GOOGLENET_AUX}):" in r.stderr and "--pipeline inference" in r.stderr
    assert "Traceback" not in r.output
    r = invoke("check", "googlenet", "--names-from", str(path), "--json", code=2)
    data = json.loads(r.stdout)["names_from"]
    assert data["ok"] is False and data["keys"] == 287 and data["expected"] == 305
    assert len(data["missing"]) == GOOGLENET_AUX
    assert data["missing_training_only"] == data["missing"]
    assert data["unexpected"] == [] and data["wrong_shape"] == []


def test_names_from_safetensors_match_and_mismatch(tmp_path: Path) -> None:
    from graphcnn.weights import init_weights

    g = graphcnn.compile("resnet18")
    w = init_weights(g)
    good = tmp_path / "r18.safetensors"
    save_safetensors(w, good)
    r = invoke("check", "resnet18", "--names-from", str(good))
    assert f"names from r18.safetensors: all {len(w)} keys match resnet18" in r.stdout
    data = json.loads(invoke("check", "resnet18", "--names-from", str(good), "--json").stdout)
    assert data["names_from"]["ok"] is True
    bad = dict(w, **{"extra.weight": np.zeros(2, np.float32)})
    del bad["layer1.0.conv1.weight"]
    bad["fc.weight"] = np.zeros((10, 512), np.float32)
    save_safetensors(bad, tmp_path / "bad.safetensors")
    bad_file = str(tmp_path / "bad.safetensors")
    r = invoke("check", "resnet18", "--names-from", bad_file, "--json", code=2)
    data = json.loads(r.stdout)["names_from"]
    assert data["missing"] == ["layer1.0.conv1.weight"] and data["missing_training_only"] == []
    assert data["unexpected"] == ["extra.weight"]
    assert data["wrong_shape"] == [{"key": "fc.weight", "expected": [1000, 512], "got": [10, 512]}]
    r = invoke("check", "resnet18", "--names-from", bad_file, code=2)
    assert "fc.weight: expected [1000, 512], got [10, 512]" in r.stderr
    assert "same architecture" in r.stderr


class _Evil:
    def __reduce__(self) -> tuple[Any, tuple[str, ...]]:
        return (Path.touch, (str(Path(_Evil.target)),))

    target = ""


def test_names_from_never_runs_code_from_the_file(tmp_path: Path) -> None:
    _Evil.target = str(tmp_path / "pwned")
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"fc.weight": _Evil()}))
    r = invoke("check", "lenet5", "--names-from", str(evil), code=2)
    assert "Traceback" not in r.output and "evil.pth" in r.stderr
    assert not (tmp_path / "pwned").exists()
    r = invoke("check", "lenet5", "--names-from", str(tmp_path / "nope.pth"), code=2)
    assert "no such file" in r.stderr


def test_names_from_checks_the_last_network_of_a_file(tmp_path: Path) -> None:
    spec = tmp_path / "two.gcnn"
    spec.write_text(
        "network a() {\n  return input(3, 8, 8) -> conv(4, 3) as c\n}\n"
        "network b(k) {\n  return input(3, 8, 8) -> conv(4, k) as c\n}\n"
    )
    save_safetensors({"c.weight": np.zeros((4, 3, 3, 3), np.float32)}, tmp_path / "c.safetensors")
    ckpt = str(tmp_path / "c.safetensors")
    r = invoke("check", str(spec), "--names-from", ckpt, code=2)
    assert "network b needs arguments" in r.stderr and "--set" in r.stderr
    r = invoke("check", str(spec), "--names-from", ckpt, "--set", "k=3", "--json", code=2)
    assert json.loads(r.stdout)["names_from"]["missing"] == ["c.bias"]
    r = invoke("check", str(spec), "-n", "a", "--names-from", ckpt, code=2)
    assert "missing (1):" in r.stderr and "c.bias" in r.stderr
