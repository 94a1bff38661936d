"""``graphcnn search``: cost-constrained architecture and hyperparameter search on Optuna.

Stage "bench" (after the backends and ``graphcnn.train``, which it uses to train candidates).
One idea per module: ``space`` (``--space`` lines -> Optuna distributions, routed to the spec,
the input size or training), ``candidate`` (the spec loaded once, each candidate's exact cost,
the limits), ``objective`` (metrics and weights), ``pareto`` (the non-dominated front),
``compound`` (EfficientNet's compound scaling), ``training`` (objectives that train),
``study`` (the Optuna study: sampler, pruner, storage, workers), ``result`` (the report) and
``chart`` (``pareto.png``)::

    from graphcnn.search import SearchConfig, parse_objective, parse_space, run_search

    config = SearchConfig(
        "resnet18",
        parse_space(["width=choice(32, 48, 64)", "layers=choice([1,1,1,1], [2,2,2,2])"]),
        parse_objective("macs"),
        Limits(max_macs=500_000_000),
        trials=10,
    )
    result = run_search(config)
    result.pareto, result.to_json()
"""

from __future__ import annotations

from graphcnn.search.candidate import Cost, Evaluator, Limits, SearchError
from graphcnn.search.objective import Objective, parse_objective
from graphcnn.search.result import SearchResult, TrialRow
from graphcnn.search.space import Dimension, Space, parse_space
from graphcnn.search.study import SearchConfig, run_search

__all__ = [
    "Cost",
    "Dimension",
    "Evaluator",
    "Limits",
    "Objective",
    "SearchConfig",
    "SearchError",
    "SearchResult",
    "Space",
    "TrialRow",
    "parse_objective",
    "parse_space",
    "run_search",
]
