"""Seeds, CV and inner validation splits, and the grid search over settings."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, ShuffleSplit, StratifiedKFold, StratifiedShuffleSplit

from deepgami.train.params import Setting, grid_label

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
    rows = []
    for s, setting in enumerate(settings):
        for f, (tr, te) in enumerate(splits):
            row = {
                "setting": s,
                "fold": f,
                "grid": grid_label(setting),
                "n_train": len(tr),
                "n_test": len(te),
            }
            row.update(fit_fold(s, setting, f, tr, te, derive_seed(seed, s, f)))
            row["score"] = score(row)
            rows.append(row)
    table = pd.DataFrame(rows)
    means = table.groupby("setting")["score"].mean()
    best = int(means.index[int(np.argmax(means.to_numpy()))])
    return table, best


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
