"""What a search found, read back from its study: every trial, the counts, the Pareto front.

A trial's ``state`` is ``complete``, ``rejected`` (over a cost limit, or off the compound
constraint: never trained), ``invalid`` (the candidate's spec does not compile), ``pruned``
(stopped early by the pruner while training), ``failed`` or ``running``. ``pareto`` holds the
numbers of the complete trials on the front of objective against MACs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphcnn.search.pareto import front

STATES = ("complete", "rejected", "invalid", "pruned", "failed", "running")


@dataclass
class TrialRow:
    number: int
    state: str
    params: dict[str, Any]
    cost: dict[str, Any] | None
    value: float | None
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {
            "number": self.number,
            "state": self.state,
            "params": self.params,
            "cost": self.cost,
            "value": self.value,
        }
        if self.reason:
            out["reason"] = self.reason
        return {**out, **self.extra}


@dataclass
class SearchResult:
    study: str
    storage: str
    model: str
    objective: str
    direction: str
    sampler: str
    limits: dict[str, Any]
    trials: list[TrialRow]
    pareto: list[int]
    best: int | None
    compound: dict[str, Any] | None = None
    base_macs: int | None = None
    device: str | None = None
    png: str | None = None

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATES}
        for t in self.trials:
            out[t.state] += 1
        return {"total": len(self.trials), **out}

    def by_number(self, number: int) -> TrialRow:
        return next(t for t in self.trials if t.number == number)

    def to_json(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "storage": self.storage,
            "model": self.model,
            "objective": self.objective,
            "direction": self.direction,
            "sampler": self.sampler,
            "device": self.device,
            "constraints": self.limits,
            "counts": self.counts(),
            "best": self.best,
            "pareto": self.pareto,
            "compound": self.compound,
            "png": self.png,
            "trials": [t.to_json() for t in self.trials],
        }


def _state(trial: Any) -> str:
    from optuna.trial import TrialState

    outcome = trial.user_attrs.get("outcome")
    if trial.state == TrialState.COMPLETE:
        return "complete"
    if trial.state == TrialState.PRUNED:
        return outcome if outcome in ("rejected", "invalid") else "pruned"
    if trial.state == TrialState.FAIL:
        return "failed"
    return "running"


def rows(study: Any) -> list[TrialRow]:
    out = []
    for t in study.get_trials(deepcopy=False):
        if t.state.name == "WAITING":
            continue  # a queued compound grid point that no process has started yet
        attrs = t.user_attrs
        extra: dict[str, Any] = {}
        if "worker" in attrs:
            extra["worker"] = attrs["worker"]
        if "law_factor" in attrs:
            extra["law_factor"] = attrs["law_factor"]
        if "spec_values" in attrs:
            extra["spec_values"] = attrs["spec_values"]
        if "trained" in attrs:
            extra["trained"] = attrs["trained"]
        out.append(
            TrialRow(
                t.number,
                _state(t),
                dict(t.params),
                attrs.get("cost"),
                t.value if t.state.name == "COMPLETE" else None,
                attrs.get("reason"),
                extra,
            )
        )
    return out


def collect(study: Any, config: Any, runner: Any) -> SearchResult:
    """The whole study (every process's trials) as a :class:`SearchResult`.

    ``config`` and ``runner`` are ``graphcnn.search.study``'s ``SearchConfig`` and ``Runner``
    (not imported: that module imports this one)."""
    trials = rows(study)
    maximize = config.objective.direction == "maximize"
    done = [t for t in trials if t.state == "complete" and t.cost and t.value is not None]
    points = [(int(t.cost["macs"]), float(t.value)) for t in done if t.cost and t.value is not None]
    pareto = [done[i].number for i in front(points, maximize)]
    best = None
    if done:
        sign = -1.0 if maximize else 1.0
        best = min(done, key=lambda t: (sign * float(t.value or 0.0), t.number)).number
    compound = None
    base_macs = None
    if runner.compound is not None:
        compound = runner.compound.to_json()
        base_macs = runner.evaluator.cost({}).macs
        compound["base_macs"] = base_macs
        compound.update(study.user_attrs.get("compound_grid", {}))
        for t in trials:
            if t.cost and "law_factor" in t.extra:
                predicted = t.extra["law_factor"] * base_macs
                t.extra["law_macs"] = round(predicted)
                t.extra["law_error"] = predicted / t.cost["macs"] - 1.0
    return SearchResult(
        config.study_name,
        config.storage_url(),
        runner.evaluator.name,
        config.objective.text,
        config.objective.direction,
        "grid" if runner.compound is not None else config.sampler,
        config.limits.to_json(),
        trials,
        pareto,
        best,
        compound,
        base_macs,
        config.device,
    )
