"""timm checkpoints load strictly, from the CLI and the Python API.

The timm zoo models (``helpers.zoo.TIMM``) use timm's state_dict keys: a file written by
``torch.save(timm_model.state_dict())`` is a checkpoint as users have it. ``check --names-from``
finds nothing to complain about, ``compile --weights`` writes a module that computes what timm
computes, and ``graphcnn.load_weights`` returns the same tensors. Covers graphcnn/weights.py on
timm's files (tests/test_zoo_timm.py checks the architectures themselves).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers.cli import invoke
from helpers.tools import import_file

import graphcnn
from graphcnn.backends.to_torch import to_torch

timm = pytest.importorskip("timm")

pytestmark = [pytest.mark.torch, pytest.mark.slow]


def _timm_checkpoint(name: str, path: Path, torch: Any) -> Any:
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False).eval()
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():  # statistics that are not 0/1, so a BN not loaded would show
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    torch.save(model.state_dict(), path)
    return model


def test_timm_checkpoint_loads_strictly_from_cli_and_api(tmp_path: Path, torch1: Any) -> None:
    torch = torch1
    ckpt = tmp_path / "inception_v4.pth"
    model = _timm_checkpoint("inception_v4", ckpt, torch)

    r = invoke("check", "inception_v4", "--names-from", str(ckpt), "--json")
    assert '"ok": true' in r.stdout and '"missing": []' in r.stdout

    out = tmp_path / "m.py"
    invoke("compile", "inception_v4", "--target", "torch", "--weights", str(ckpt), "-o", str(out))
    mine = import_file(out).Model().eval()
    x = torch.randn(1, 3, 299, 299, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = model(x)
        torch.testing.assert_close(mine(x), ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))

    g = graphcnn.compile("inception_v4")
    fitted = graphcnn.load_weights(ckpt, g)
    assert not fitted.not_needed
    api_model = to_torch(g, fitted.weights).eval()
    with torch.no_grad():
        torch.testing.assert_close(api_model(x), ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()))


def test_timm_checkpoint_with_a_wrong_key_is_one_error(tmp_path: Path, torch1: Any) -> None:
    torch = torch1
    ckpt = tmp_path / "bad.pth"
    model = _timm_checkpoint("inception_v4", tmp_path / "ok.pth", torch)
    state = model.state_dict()
    state["last_linear.weight"] = state.pop("last_linear.weight")[:10]
    torch.save(state, ckpt)
    r = invoke(
        "compile",
        "inception_v4",
        "--target",
        "torch",
        "--weights",
        str(ckpt),
        "-o",
        str(tmp_path / "m.py"),
        code=2,
    )
    assert "last_linear.weight" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "m.py").exists()
