"""Run a search on an Optuna study: sample, cost, reject, (train,) record.

Each trial samples the space with the study's sampler, compiles the candidate from the spec
loaded once and computes its exact cost; a candidate over a limit (or, with ``--compound``,
off the ``alpha * beta^2 * gamma^2`` constraint) is rejected before anything trains: the trial
ends PRUNED with ``outcome = "rejected"`` and the reason among its user attributes. Accepted
candidates get the objective (trained through ``graphcnn.train`` when it needs training). A
candidate whose spec does not compile (a shape mismatch for that combination) ends PRUNED with
``outcome = "invalid"`` and the located message.

The study lives in an Optuna storage (default ``sqlite:///OUT/study.db``): running the same
search again resumes it, and several processes (``--workers N``, or processes on other
machines given the same ``--storage`` URL) share it. The study stops when it holds ``trials``
COMPLETE trials (counted in the storage, across processes; each process may finish the trial it
is on, so a study of N workers may end with up to N-1 extra) or the grid is exhausted, or after
``max_attempts`` trials in one process. The settings are stored with the study, and a resume
with different settings is refused.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphcnn.errors import SpecError
from graphcnn.search.candidate import Evaluator, Limits, SearchError
from graphcnn.search.compound import Compound, compound_space
from graphcnn.search.objective import Objective
from graphcnn.search.result import SearchResult, collect
from graphcnn.search.space import Space, route, split

SAMPLERS = ("random", "tpe", "grid")
PRUNERS = ("none", "median")
ATTEMPTS_PER_TRIAL = 50
START_TIMEOUT_S = 300.0


@dataclass
class SearchConfig:
    """Everything that decides a search (the CLI's options)."""

    spec: str
    space: Space
    objective: Objective
    limits: Limits = field(default_factory=Limits)
    network: str | None = None
    sets: dict[str, str] = field(default_factory=dict)
    input_shape: tuple[int, ...] | None = None
    batch: int | None = None
    device: str | None = None
    dtype: str = "float32"
    measure: str | None = None
    trials: int = 20
    sampler: str = "random"
    pruner: str = "none"
    seed: int | None = 0
    storage: str | None = None
    out: Path = Path("search")
    study_name: str = "search"
    train: tuple[str, ...] = ()
    compound: bool = False
    max_attempts: int | None = None

    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{self.out / 'study.db'}"

    def fingerprint(self) -> dict[str, Any]:
        """The settings a resumed study must share (not trials, seeds, storage or workers)."""
        return {
            "spec": self.spec,
            "network": self.network,
            "sets": dict(sorted(self.sets.items())),
            "input": list(self.input_shape) if self.input_shape else None,
            "batch": self.batch,
            "space": self.space.to_json(),
            "objective": self.objective.text,
            "direction": self.objective.direction,
            "limits": self.limits.to_json(),
            "device": self.device,
            "dtype": self.dtype,
            "measure": self.measure,
            "sampler": self.sampler,
            "train": list(self.train),
            "compound": self.compound,
        }


def _sampler(config: SearchConfig, space: Space, offset: int) -> Any:
    import optuna

    seed = None if config.seed is None else config.seed + offset
    if config.compound:
        return optuna.samplers.RandomSampler(seed=seed)  # it only runs enqueued grid points
    if config.sampler == "grid":
        return optuna.samplers.GridSampler(space.grid(), seed=seed)
    if config.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if config.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    raise SearchError(f"unknown --sampler {config.sampler!r}", f"one of {', '.join(SAMPLERS)}")


def _pruner(name: str) -> Any:
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise SearchError(f"unknown --pruner {name!r}", f"one of {', '.join(PRUNERS)}")


JOURNAL = "journal:"
"""``journal:PATH``: Optuna's journal file storage (``JournalFileBackend``; ``journal:///abs``
works too). Not a URL of Optuna's own: Optuna opens journal files by object, not by URL."""


def make_storage(url: str) -> Any:
    """The Optuna storage ``url`` names: ``journal:PATH`` a journal file (append-only, file
    locks: the fast one for several processes on one machine or a shared file system), else an
    RDB URL (``sqlite:///...``, ``postgresql://...``, ``mysql://...``)."""
    import optuna

    if url.startswith(JOURNAL):
        from optuna.storages.journal import JournalFileBackend

        path = url[len(JOURNAL) :]
        path = path[2:] if path.startswith("//") else path
        if not path:
            raise ValueError("journal: needs a file path")
        return optuna.storages.JournalStorage(JournalFileBackend(path))
    return optuna.storages.RDBStorage(
        url, engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    )


def open_study(config: SearchConfig, space: Space, worker: int = 0) -> Any:
    """Create or load the study; refuse one stored with different settings."""
    import optuna

    if config.storage is None:
        config.out.mkdir(parents=True, exist_ok=True)
    url = config.storage_url()
    try:
        storage = make_storage(url)
        existing = len(storage.get_all_trials(storage.get_study_id_from_name(config.study_name)))
    except KeyError:
        existing = 0
    except Exception as e:  # NOTE: SQLAlchemy and Optuna raise many types for a bad URL
        raise SearchError(
            f"cannot open storage {url!r}: {type(e).__name__}: {str(e)[:200]}",
            "give an Optuna storage URL, e.g. sqlite:///study.db, journal:study.log or "
            "postgresql://host/db",
        ) from None
    # NOTE: the seed moves on with the trials already stored (and per worker), so a resumed or
    # shared seeded study does not sample the same candidates again.
    study = optuna.create_study(
        storage=storage,
        study_name=config.study_name,
        direction="maximize" if config.objective.direction == "maximize" else "minimize",
        sampler=_sampler(config, space, existing * 7919 + worker),
        pruner=_pruner(config.pruner),
        load_if_exists=True,
    )
    mine = config.fingerprint()
    stored = study.user_attrs.get("graphcnn")
    if stored is None:
        study.set_user_attr("graphcnn", mine)
    elif stored != mine:
        diff = [k for k in mine if stored.get(k) != mine[k]]
        raise SearchError(
            f"study {config.study_name!r} in {url} was made with other settings "
            f"({', '.join(diff)} differ)",
            "give another --study-name or --out, or the same settings to resume it",
        )
    return study


class Runner:
    """One process's share of a search: the loaded spec, the space's routes, the objective."""

    def __init__(self, config: SearchConfig) -> None:
        from graphcnn.search.training import base_config, train_fields

        self.config = config
        self.evaluator = Evaluator(
            config.spec,
            config.network,
            config.sets,
            config.input_shape,
            config.batch,
            config.device,
            config.dtype,
            config.measure,
        )
        needs = config.objective.metrics()
        if "latency" in needs and config.device is None:
            raise SearchError("the objective uses latency", "give --device cpu or h100-sxm")
        if "measured" in needs and config.measure is None:
            raise SearchError("the objective uses measured latency", "give --measure ort")
        if config.limits.max_latency_s is not None and config.device is None and not config.measure:
            raise SearchError(
                "--max-latency needs a latency", "give --device cpu|h100-sxm or --measure ort"
            )
        self.compound: Compound | None = None
        if config.compound:
            defaults = self._defaults()
            self.compound = Compound.for_network(
                self.evaluator.params, defaults, int(self.evaluator.input_shape[-1])
            )
            self.space = compound_space()
            self.routes: dict[str, str] = {}
        else:
            self.space = config.space
            self.routes = route(self.space, self.evaluator.params, train_fields())
        self.worker = 0
        self.trains = config.objective.trains
        self.base_train = base_config(config.train) if self.trains or config.train else None
        if any(r == "train" for r in self.routes.values()) and not self.trains:
            raise SearchError(
                "the space searches training options but the objective trains nothing",
                "use --objective val_accuracy (or a weighted objective with it)",
            )

    def _defaults(self) -> dict[str, float]:
        """The network's numeric arguments of a model line (``efficientnet_b0``'s)."""
        from graphcnn.lang.values import Model

        target = self.evaluator.module.target(self.evaluator.network)
        out: dict[str, float] = {}
        if isinstance(target, Model):
            for k, v, _ in target.defn.kwargs:
                value = getattr(v, "value", None)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    out[k] = float(value)
        for p in (target.network if isinstance(target, Model) else target).defn.params:
            value = getattr(p.default, "value", None)
            if p.name not in out and isinstance(value, (int, float)):
                out[p.name] = float(value)
        return out

    def objective(self, trial: Any) -> float:
        import optuna

        trial.set_user_attr("worker", self.worker)
        values = self.space.suggest(trial)
        if self.compound is not None:
            factor = self.compound.factor(values)
            trial.set_user_attr("law_factor", factor)
            off = self.compound.violations(values)
            if off:
                return _reject(trial, "rejected", "; ".join(off))
            spec_values, resolution = self.compound.spec_values(values)
            trial.set_user_attr("spec_values", spec_values)
            train_values: dict[str, Any] = {}
        else:
            routed = split(values, self.routes)
            spec_values, resolution, train_values = routed.spec, routed.resolution, routed.train
        try:
            cost = self.evaluator.cost(spec_values, resolution)
        except SpecError as e:
            return _reject(trial, "invalid", str(e))
        trial.set_user_attr("cost", cost.to_json())
        over = self.config.limits.violations(cost)
        if over:
            return _reject(trial, "rejected", "; ".join(over))
        trained = None
        if self.trains:
            from graphcnn.search.training import train_candidate

            trial.set_user_attr("outcome", "training")
            graph = self.evaluator.graph(spec_values, resolution)
            trained = train_candidate(graph, self.base_train, train_values, trial)
            trial.set_user_attr("trained", trained)
        trial.set_user_attr("outcome", "complete")
        value = self.config.objective.value(cost, trained)
        if value != value:
            raise optuna.TrialPruned("the objective is NaN")
        return value

    def run(
        self,
        worker: int = 0,
        on_trial: Callable[[int, int], None] | None = None,
        ready: Any = None,
    ) -> Any:
        """Optimise until the study holds ``trials`` complete trials; return the study.

        ``ready`` (a barrier shared by the processes of one search) is passed once the study is
        open, so that every process starts sampling at the same time."""
        import optuna
        from optuna.trial import TrialState

        config = self.config
        self.worker = worker
        study = open_study(config, self.space, worker)
        grid = config.sampler == "grid" and self.compound is None
        if self.compound is not None:
            _enqueue_compound(study, self.compound, self.space)
        if ready is not None:
            try:
                ready.wait(START_TIMEOUT_S)
            except threading.BrokenBarrierError:
                raise SearchError("a worker process did not start") from None
        done = _complete(study)
        if done >= config.trials or (grid and study.sampler.is_exhausted(study)):
            return study
        if self.compound is not None and not _waiting(study):
            return study
        attempts = config.max_attempts or config.trials * ATTEMPTS_PER_TRIAL
        if grid:
            attempts = min(attempts, _grid_size(self.space))
        if self.compound is not None:
            attempts = min(attempts, _waiting(study))

        def progress(study: Any, trial: Any) -> None:
            if on_trial is not None:
                on_trial(trial.number, _complete(study))
            if self.compound is not None and not _waiting(study):
                study.stop()

        study.optimize(
            self.objective,
            n_trials=attempts,
            callbacks=[
                optuna.study.MaxTrialsCallback(config.trials, states=(TrialState.COMPLETE,)),
                progress,
            ],
            gc_after_trial=False,
        )
        return study


def _waiting(study: Any) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def _enqueue_compound(study: Any, compound: Compound, space: Space) -> None:
    """Queue the grid points on the constraint, once per study (the others never compile)."""
    if "compound_grid" in study.user_attrs:
        return
    grid = space.grid()
    points = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    feasible = [p for p in points if not compound.violations(p)]
    study.set_user_attr(
        "compound_grid", {"points": len(points), "off_constraint": len(points) - len(feasible)}
    )
    for p in feasible:
        study.enqueue_trial(p)


def _grid_size(space: Space) -> int:
    n = 1
    for values in space.grid().values():
        n *= len(values)
    return n


def _complete(study: Any) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def _reject(trial: Any, outcome: str, reason: str) -> float:
    import optuna

    trial.set_user_attr("outcome", outcome)
    trial.set_user_attr("reason", reason)
    raise optuna.TrialPruned(reason)


def _worker(config: SearchConfig, worker: int, ready: Any) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    Runner(config).run(worker, ready=ready)


def run_search(
    config: SearchConfig,
    workers: int = 1,
    on_trial: Callable[[int, int], None] | None = None,
) -> SearchResult:
    """Run (or resume) a search with ``workers`` processes on one storage; the whole study."""
    import multiprocessing

    if config.trials < 1:
        raise SearchError(f"--trials must be >= 1, got {config.trials}")
    runner = Runner(config)  # every check runs here, before a worker starts
    study = open_study(config, runner.space)
    if runner.compound is not None:
        _enqueue_compound(study, runner.compound, runner.space)
    ctx = multiprocessing.get_context("spawn")
    # NOTE: every process loads the spec and opens the study first, then all start together.
    ready = ctx.Barrier(workers)
    procs = [ctx.Process(target=_worker, args=(config, i, ready)) for i in range(1, workers)]
    for p in procs:
        p.start()
    try:
        study = runner.run(0, on_trial, ready if procs else None)
    finally:
        for p in procs:
            p.join()
    failed = [p.exitcode for p in procs if p.exitcode]
    if failed:
        raise SearchError(f"{len(failed)} worker process(es) failed (exit codes {failed})")
    return collect(study, config, runner)
