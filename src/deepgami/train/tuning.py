"""Seeds, CV and inner validation splits, and the grid search over settings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, ShuffleSplit, StratifiedKFold, StratifiedShuffleSplit

from deepgami.train.params import Setting, Settings, grid_label

# -- seeds and splits ---------------------------------------------------------------------------


def derive_seed(seed: int, *path: int) -> int:
    """Derive a child seed for (setting, fold, ...) that does not collide across paths.

    Parameters
    ----------
    seed : int
        The parent seed.
    *path : int
        The child's path (setting, fold, ...).

    Returns
    -------
    int
        The child seed.
    """
    return int(np.random.SeedSequence([int(seed), *[int(p) for p in path]]).generate_state(1)[0])


def cv_splits(
    y: np.ndarray, n_folds: int, seed: int, stratify: bool
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Make k-fold (stratified for classes) positions into y, shuffled with `seed`.

    The folds are stratified only when every class has at least `n_folds` rows.

    Parameters
    ----------
    y : numpy.ndarray
        The labels (or values) of the rows.
    n_folds : int
        The number of folds.
    seed : int
        Seeds the shuffle.
    stratify : bool
        Whether to stratify the folds by class.

    Returns
    -------
    list of tuple of numpy.ndarray
        The (train, test) positions of each fold.
    """
    if stratify:
        counts = np.unique(y, return_counts=True)[1]
        if counts.min() >= n_folds:
            kf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed % 2**32)
            return [(tr, te) for tr, te in kf.split(np.zeros(len(y)), y)]
    kf = KFold(n_splits=n_folds, shuffle=True, random_state=seed % 2**32)
    return [(tr, te) for tr, te in kf.split(np.zeros(len(y)))]


def inner_split(
    y: np.ndarray, val_fraction: float, seed: int, stratify: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Split positions (train, validation) of the rows used for fitting and for early stopping.

    With fewer than two rows on either side, every row trains and the validation is empty.

    Parameters
    ----------
    y : numpy.ndarray
        The labels (or values) of the rows.
    val_fraction : float
        The share of rows held out for validation.
    seed : int
        Seeds the split.
    stratify : bool
        Whether to stratify the split by class (where every class allows it).

    Returns
    -------
    train : numpy.ndarray
        The sorted positions of the training rows.
    validation : numpy.ndarray
        The sorted positions of the validation rows.
    """
    n = len(y)
    n_val = int(round(n * val_fraction))
    if n_val < 2 or n - n_val < 2:
        return np.arange(n), np.zeros(0, dtype=np.int64)
    if stratify:
        classes, counts = np.unique(y, return_counts=True)
        if counts.min() >= 2 and n_val >= len(classes) and n - n_val >= len(classes):
            ss = StratifiedShuffleSplit(n_splits=1, test_size=n_val, random_state=seed % 2**32)
            tr, va = next(ss.split(np.zeros(n), y))
            return np.sort(tr), np.sort(va)
    ss = ShuffleSplit(n_splits=1, test_size=n_val, random_state=seed % 2**32)
    tr, va = next(ss.split(np.zeros(n)))
    return np.sort(tr), np.sort(va)


# -- grid search --------------------------------------------------------------------------------

FoldFn = Callable[[int, Setting, int, np.ndarray, np.ndarray, int], dict]


def grid_search(
    settings: Sequence[Setting],
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    fit_fold: FoldFn,
    score: Callable[[dict], float],
    seed: int,
) -> tuple[pd.DataFrame, int]:
    """Run `fit_fold` for every setting and fold, and pick the best setting.

    `fit_fold(setting_index, setting, fold, train_pos, test_pos, seed)` returns a flat dict of
    held-out metrics. The best setting has the highest mean `score(row)` over folds (ties: the
    earlier setting).

    Parameters
    ----------
    settings : Sequence of Setting
        The settings to compare.
    splits : Sequence of tuple of numpy.ndarray
        The (train, test) positions of each fold.
    fit_fold : FoldFn
        Fits one setting on one fold and returns its held-out metrics.
    score : Callable[[dict], float]
        The selection score of one row (higher is better).
    seed : int
        The parent seed of each fold fit's seed.

    Returns
    -------
    table : pandas.DataFrame
        One row per setting and fold.
    best : int
        The index of the best setting.
    """
    rows = [
        _fold_row(s, setting, f, split, fit_fold, score, seed, grid_label(setting))
        for s, setting in enumerate(settings)
        for f, split in enumerate(splits)
    ]
    table = pd.DataFrame(rows)
    means = table.groupby("setting")["score"].mean()
    best = int(means.index[int(np.argmax(means.to_numpy()))])
    return table, best


def _fold_row(
    s: int,
    setting: Setting,
    f: int,
    split: tuple[np.ndarray, np.ndarray],
    fit_fold: FoldFn,
    score: Callable[[dict], float],
    seed: int,
    label: str,
) -> dict:
    """Fit setting s on fold f (seed ``derive_seed(seed, s, f)``): its row of the CV table."""
    tr, te = split
    row = {"setting": s, "fold": f, "grid": label, "n_train": len(tr), "n_test": len(te)}
    row.update(fit_fold(s, setting, f, tr, te, derive_seed(seed, s, f)))
    row["score"] = score(row)
    return row


def summarize_cv(table: pd.DataFrame, best: int) -> pd.DataFrame:
    """Compute the mean and standard deviation of every numeric column per setting.

    Parameters
    ----------
    table : pandas.DataFrame
        The per-fold table of `grid_search`.
    best : int
        The index of the best setting (`selected` marks it).

    Returns
    -------
    pandas.DataFrame
        One row per setting: `grid`, `selected`, then `<column>_mean` and `<column>_std`.
    """
    numeric = [
        c
        for c in table.columns
        if c not in ("setting", "fold", "grid") and pd.api.types.is_numeric_dtype(table[c])
    ]
    grouped = table.groupby("setting")
    summary = (
        grouped[numeric]
        .mean()
        .add_suffix("_mean")
        .join(grouped[numeric].std(ddof=0).add_suffix("_std"))
    )
    summary.insert(0, "grid", grouped["grid"].first())
    summary.insert(1, "selected", summary.index == best)
    return summary.reset_index()


# -- tpe search ---------------------------------------------------------------------------------

# A fold score that is not a finite number (a diverged fit) ranks below every real one.
_WORST_SCORE = -1e6


def tpe_search(
    params: Settings,
    dense: bool,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    fit_fold: FoldFn,
    score: Callable[[dict], float],
    seed: int,
) -> tuple[pd.DataFrame, list[Setting], int]:
    """Search `params.space` with Optuna's seeded TPE sampler, the grid's points first.

    Trial t is scored by the mean `score(row)` over the folds, each fold fitted with
    ``derive_seed(seed, t, fold)`` (so the grid's points score as in `grid_search`). After each
    fold a median pruner stops a trial whose running mean is below the median of earlier trials
    at that fold; the best complete trial wins (ties: the earlier). Trials run one at a time, so
    the same seed gives the same trials.

    Parameters
    ----------
    params : Settings
        The settings: the grid (first trials), `space`, `n_trials`.
    dense : bool
        Whether the cohort has no prior (prior-only entries of the space are left out).
    splits : Sequence of tuple of numpy.ndarray
        The (train, test) positions of each fold.
    fit_fold : FoldFn
        Fits one setting on one fold and returns its held-out metrics.
    score : Callable[[dict], float]
        The selection score of one row (higher is better).
    seed : int
        Seeds the sampler and each fold fit.

    Returns
    -------
    table : pandas.DataFrame
        One row per trial and fold fitted (``pruned`` marks the trials stopped early).
    settings : list of Setting
        The setting of each trial.
    best : int
        The index of the best trial.
    """
    import optuna

    start, space = params.points(dense), params.space_for(dense)
    settings: list[Setting] = []
    rows: list[dict] = []

    def objective(trial: optuna.Trial) -> float:
        setting = params.point({d.key: d.suggest(trial) for d in space}, dense)
        if trial.number < len(start):  # a grid point, whole (the space may not reach all of it)
            setting = start[trial.number]
        settings.append(setting)
        scores: list[float] = []
        label = grid_label(setting, space)
        for f, split in enumerate(splits):
            row = _fold_row(trial.number, setting, f, split, fit_fold, score, seed, label)
            rows.append(row)
            value = float(row["score"])
            scores.append(value if np.isfinite(value) else _WORST_SCORE)
            trial.report(float(np.mean(scores)), f)
            if f + 1 < len(splits) and trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(scores))

    study = _study(derive_seed(seed, 3), len(start), params.n_trials)
    for setting in start:
        study.enqueue_trial(_trial_params(setting, space), skip_if_exists=False)
    study.optimize(objective, n_trials=max(params.n_trials, len(start)))
    table = pd.DataFrame(rows)
    complete = table.groupby("setting")["fold"].count() == len(splits)
    table["pruned"] = ~table["setting"].map(complete)
    means = table[~table["pruned"]].groupby("setting")["score"].mean()
    best = int(means.index[int(np.argmax(means.to_numpy()))])
    return table, settings, best


def _study(seed: int, n_start: int, n_trials: int) -> Any:
    """A quiet, seeded Optuna study: multivariate TPE after `n_start` grid points and as many
    random trials again (at most half the budget), pruning from the second fold on."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():  # multivariate / group are flagged experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(
            seed=int(seed % 2**32),
            n_startup_trials=max(n_start, min(2 * n_start, n_trials // 2)),
            multivariate=True,
            group=True,
        )
    pruner = optuna.pruners.MedianPruner(n_startup_trials=n_start, n_warmup_steps=1)
    return optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)


def _trial_params(setting: Setting, space: Sequence[Any]) -> dict:
    """The Optuna parameters that reproduce `setting` where the space can draw its values."""
    flat = setting.to_dict()
    out: dict = {}
    for dim in space:
        out.update(dim.trial_params(flat[dim.key]) or {})
    return out
