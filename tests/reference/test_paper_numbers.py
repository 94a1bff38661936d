"""Check that the generated ``paper_numbers.py`` is in sync with ``paper_models.py``.

Only the forward-hook counts are recomputed here (the fvcore cross-check runs
in ``compute_numbers.py``); if this fails, rerun
``.venv/bin/python -m tests.reference.compute_numbers``.
"""

from __future__ import annotations

import pytest
from helpers.zoo import slow_params

from .compute_numbers import compute_entry, count_macs, count_params
from .paper_models import REFERENCE_MODELS, LeNet5
from .paper_numbers import PAPER_MODELS


def test_same_models() -> None:
    assert set(PAPER_MODELS) == set(REFERENCE_MODELS)


# the deepest take 10-40 s each (a forward pass with hooks on every module)
@pytest.mark.parametrize(
    "name", slow_params(sorted(REFERENCE_MODELS), {"densenet264", "se_resnet50", "googlenet_paper"})
)
def test_numbers_up_to_date(name: str) -> None:
    assert compute_entry(name, REFERENCE_MODELS[name], cross_check=False) == PAPER_MODELS[name]


@pytest.mark.parametrize(
    ("activation", "pool"), [("tanh", "max"), ("relu", "avg"), ("relu", "max")]
)
def test_lenet5_variants_count_the_same(activation: str, pool: str) -> None:
    model = LeNet5(activation=activation, pool=pool)
    assert count_params(model) == (61_706, 0)
    assert (
        sum(count_macs(model, (1, 32, 32), training=False).values())
        == PAPER_MODELS["lenet5"]["macs"]
    )
