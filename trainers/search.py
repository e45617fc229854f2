"""Hyperparameter search with Optuna: TPE sampling, pruning per epoch, the study in an RDB so it resumes.

`python -m trainers.search --bundle DIR --storage URL --study NAME [--space JSON] [--base JSON]
[--trials N] [--timeout S]` runs (or resumes) a study until it holds N finished trials; several processes
pointed at one PostgreSQL URL share the trials. A process killed mid-trial leaves a trial whose heartbeat
stops; the next run marks it failed and retries its parameters once.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import lightning as L

from trainers.console import quiet_libraries
from trainers.params import TrainingParams
from trainers.tracking import tracked_run

# The space searched when the config names none: around the defaults, on the settings that moved results most
# on CLINC150 and the demo tickets (head learning rate, label smoothing, epochs under early stopping).
DEFAULT_SPACE: dict[str, dict] = {
    "learning_rate": {"low": 2e-5, "high": 3e-4, "log": True},
    "head_learning_rate": {"low": 1e-4, "high": 3e-3, "log": True},
    "label_smoothing": {"low": 0.0, "high": 0.2},
    "warmup_ratio": {"low": 0.0, "high": 0.2},
    "batch_size": {"choices": [16, 32]},
}
FINISHED = ("COMPLETE", "PRUNED")


class PruneOnValidation(L.Callback):
    """Reports val macro F1 to the trial after each validation and stops a trial the pruner gives up on.

    Written here rather than taken from optuna-integration: it is these few lines, and it spares a package.
    """

    def __init__(self, trial) -> None:
        self.trial = trial

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        import optuna

        if trainer.sanity_checking or "val_macro_f1" not in trainer.callback_metrics:
            return
        self.trial.report(float(trainer.callback_metrics["val_macro_f1"]), step=trainer.current_epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {trainer.current_epoch}")


@dataclass(frozen=True)
class SearchSettings:
    """Where the study lives and how much it may spend."""

    storage: str  # sqlite:///path.db or postgresql://...
    study: str
    trials: int = 10
    timeout_s: float | None = None
    seed: int = 13
    heartbeat_s: int = 30


def check_space(space: dict[str, dict]) -> None:
    """Refuse a space naming an unknown setting or holding neither a range nor choices."""
    known = set(TrainingParams.__dataclass_fields__)
    for name, spec in space.items():
        if name not in known:
            raise ValueError(f"search space: {name!r} is not a training setting (known: {', '.join(sorted(known))})")
        if not isinstance(spec, dict) or not ("choices" in spec or {"low", "high"} <= set(spec)):
            raise ValueError(f"search space: {name!r} needs {{low, high[, log]}} or {{choices: [...]}}, not {spec!r}")


def suggest(trial, space: dict[str, dict]) -> dict[str, object]:
    """One trial's settings from the space: `{low, high[, log]}` ranges and `{choices}` lists."""
    chosen = {}
    for name, spec in space.items():
        if "choices" in spec:
            chosen[name] = trial.suggest_categorical(name, list(spec["choices"]))
        elif isinstance(spec.get("low"), int) and isinstance(spec.get("high"), int) and not spec.get("log"):
            chosen[name] = trial.suggest_int(name, spec["low"], spec["high"])
        else:
            chosen[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log")))
    return chosen


def open_study(settings: SearchSettings):
    """The study, created or loaded; trials whose heartbeat stopped are failed and retried once."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    retry = RetryHeartbeatStaleTrialCallback(max_retry=1)
    storage = RDBStorage(
        settings.storage,
        heartbeat_interval=settings.heartbeat_s,
        grace_period=2 * settings.heartbeat_s,
        heartbeat_stale_trial_callback=retry,
    )
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)  # small budgets prune from trial 3
    return optuna.create_study(
        study_name=settings.study,
        storage=storage,
        direction="maximize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=settings.seed),
        pruner=pruner,
    )


def finished_trials(study) -> int:
    return sum(1 for trial in study.get_trials(deepcopy=False) if trial.state.name in FINISHED)


def run_search(bundle: Path, base: dict, space: dict[str, dict], settings: SearchSettings, reporter) -> object:
    """Run trials until the study holds `settings.trials` finished ones (or the time runs out); the study."""
    import optuna
    from optuna.storages import fail_stale_trials

    from trainers.fitting import fit

    check_space(space)
    study = open_study(settings)
    fail_stale_trials(study)

    def objective(trial) -> float:
        values = {**base, **suggest(trial, space), "save_best": True, "resume": False}
        pruned: optuna.TrialPruned | None = None
        with tracked_run(f"{settings.study}-trial-{trial.number}", {"trial": trial.number, **values}) as tracking:
            try:
                result = fit(bundle, TrainingParams(**values), reporter, callbacks=[PruneOnValidation(trial)])
            except optuna.TrialPruned as error:
                pruned = error
                if tracking is not None:  # a pruned trial ended as the study meant it to, not as a failure
                    tracking.client.set_tag(tracking.run_id, "optuna.state", "PRUNED")
            else:
                if tracking is not None:
                    tracking.client.log_metric(tracking.run_id, "best_val_macro_f1", result.best["val_macro_f1"])
        if pruned is not None:
            raise pruned
        return float(result.best["val_macro_f1"])

    remaining = settings.trials - finished_trials(study)
    if remaining > 0:
        study.optimize(objective, n_trials=remaining, timeout=settings.timeout_s, catch=(RuntimeError,))
    return study


def trials_table(study) -> list[dict[str, object]]:
    """Each trial: number, state, value, its settings and how long it ran."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        seconds = (trial.datetime_complete - trial.datetime_start).total_seconds() if trial.datetime_complete else None
        rows.append(
            {
                "number": trial.number,
                "state": trial.state.name,
                "val_macro_f1": trial.value,
                "seconds": seconds,
                **trial.params,
            }
        )
    return rows


def study_storage(registry_root: Path, configured: str = "") -> str:
    """A study's RDB URL: as configured, else `search.db` beside the dataset's models."""
    registry_root.mkdir(parents=True, exist_ok=True)
    return configured or f"sqlite:///{registry_root / 'search.db'}"


def study_name(dataset: str, version: str) -> str:
    return f"{dataset}-{version}"


def best_search_params(storage: str, study: str) -> tuple[dict, int] | None:
    """The best trial's settings and number in a study, None when there is no such study or completed trial."""
    import optuna

    try:
        loaded = optuna.load_study(study_name=study, storage=storage)
        return dict(loaded.best_trial.params), loaded.best_trial.number
    except (KeyError, ValueError):
        return None


def main(argv: list[str] | None = None) -> int:
    quiet_libraries()
    from trainers.train import Reporter

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--storage", required=True)
    parser.add_argument("--study", required=True)
    parser.add_argument("--space", default=json.dumps(DEFAULT_SPACE))
    parser.add_argument("--base", default="{}", help="training settings every trial shares, as JSON")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=None)
    parser.add_argument("--heartbeat", type=int, default=30)
    args = parser.parse_args(argv)
    settings = SearchSettings(args.storage, args.study, args.trials, args.timeout, heartbeat_s=args.heartbeat)
    with Reporter() as reporter:
        study = run_search(args.bundle, json.loads(args.base), json.loads(args.space), settings, reporter)
    completed = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    best = study.best_trial.params if completed else None
    print(json.dumps({"finished": finished_trials(study), "best": best, "settings": asdict(settings)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
