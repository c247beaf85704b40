"""The one DeepGAMI tuner, used by `deepgami train` (`DeepGAMI.fit`) and `deepgami evaluate`:
k-fold CV grid search on given training rows, and the training report it leaves in a model.

Selection rule (one, documented in default_params.yaml): the setting with the highest mean
`deepgami.metrics.selection_score` over the folds, computed on the held-out fold with every modality
given: minus the log loss for a classifier, R^2 for a numeric phenotype; ties go to the earlier
setting. Fold fits are single networks (bagging is for the fits that are reported).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from deepgami.data.arrays import CohortArrays, read_arrays, strata
from deepgami.errors import InputError
from deepgami.metrics import prior_metrics, selection_score
from deepgami.model._base import BaseModel
from deepgami.model._evaluate import as_float, evaluate_rows, mean_or_none, unflatten
from deepgami.model._fitting import EpochHook, cohort_threads, fit_rows
from deepgami.train import (
    Setting,
    Settings,
    as_settings,
    cv_splits,
    derive_seed,
    grid_search,
    summarize_cv,
    tpe_search,
)

# How much better than the class-prior (or mean) predictor a chosen setting must score in CV
# (log loss in nats, or R^2) to count as having learned something.
PRIOR_MARGIN = 0.01

FoldHook = Callable[
    [int, int, int, int], None
]  # (setting, n_settings, fold, n_folds) before each fold fit


def training_rows(data: CohortArrays, split: str | None = "train") -> np.ndarray:
    """Return the rows with a label and any modality, in `split` when the cohort has a split column.

    Parameters
    ----------
    data : CohortArrays
        The cohort's arrays.
    split : str or None, default "train"
        The value of the split column the rows must have (None: all rows).

    Returns
    -------
    numpy.ndarray
        The positions of the training rows.

    Raises
    ------
    InputError
        When there are none or (classification) they hold a single class.
    """
    rows = np.flatnonzero(data.has_label() & data.present.any(axis=1))
    if split is not None and data.split is not None:
        rows = rows[data.split[rows] == split]
    if len(rows) == 0:
        raise InputError(
            None, f"no labelled training samples (split == '{split}') with any modality"
        )
    if data.task == "classification":
        seen = sorted(set(data.labels[rows]))
        if len(seen) < 2:
            raise InputError(
                None, f"training samples hold a single class ({seen[0] if seen else 'none'})"
            )
    return rows


def check_cv(data: CohortArrays, rows: np.ndarray, n_folds: int) -> None:
    """Check that `rows` can be split into `n_folds` (stratified) folds.

    Parameters
    ----------
    data : CohortArrays
        The cohort's arrays.
    rows : numpy.ndarray
        The positions of the training rows.
    n_folds : int
        The number of folds.

    Raises
    ------
    InputError
        When a class has fewer rows than `n_folds`, or there are fewer than twice `n_folds` rows.
    """
    if data.task == "classification":
        counts = pd.Series(data.labels[rows]).value_counts()
        if counts.min() < n_folds:
            raise InputError(
                None,
                f"class '{counts.idxmin()}' has fewer training samples than cv_folds={n_folds}",
            )
    if len(rows) < 2 * n_folds:
        raise InputError(None, f"{len(rows)} training samples are too few for cv_folds={n_folds}")


def tune_setting(
    data: CohortArrays | Any,
    rows: np.ndarray,
    params: Settings | Mapping,
    seed: int,
    *,
    search_single: bool = False,
    on_fold: FoldHook | None = None,
    on_epoch: EpochHook | None = None,
) -> tuple[Setting, pd.DataFrame | None]:
    """Choose a setting of `params`' grid by `params.cv_folds`-fold CV on rows `rows`.

    Parameters
    ----------
    data
        Cohort arrays (`deepgami.data.arrays.read_arrays`) or a cohort MuData.
    rows
        Positions of the training rows to tune on.
    params
        Training settings (`deepgami.train.Settings`, or a mapping over the defaults).
    seed
        The folds use ``derive_seed(seed, 1)``; setting s, fold f is fitted with
        ``derive_seed(seed, s, f)``.
    search_single
        Cross-validate a one-setting grid too (`train` does, for its CV report).
    on_fold, on_epoch
        Progress hooks.

    Returns
    -------
    setting, table
        The chosen `Setting` and the per-fold table (`setting`, `fold`, `grid`, `n_train`,
        `n_test`, `best_epoch`, `<inputs>_<metric>`, `r2_<modality>`, `score`, `selected`); the
        table is None when no search ran (cv_folds < 2, or one setting and not `search_single`).
    """
    if not isinstance(data, CohortArrays):
        data = read_arrays(data)
    params = as_settings(params)
    rows = np.asarray(rows, dtype=np.int64)
    dense = data.latent_nodes is None
    settings = params.points(dense)
    n_folds, n_settings = int(params.cv_folds), search_size(params, dense)
    if n_folds < 2 or (n_settings == 1 and not search_single):
        return settings[0], None
    check_cv(data, rows, n_folds)
    y, stratify = strata(data, rows)
    splits = cv_splits(y, n_folds, derive_seed(seed, 1), stratify)
    fit_fold = _fold_fitter(data, rows, (n_settings, len(splits)), on_fold, on_epoch)
    score = lambda row: selection_score(unflatten(row, "all"), data.task)  # noqa: E731
    with cohort_threads(data):
        if params.method == "tpe":
            table, settings, best = tpe_search(params, dense, splits, fit_fold, score, seed)
        else:
            table, best = grid_search(settings, splits, fit_fold, score, seed)
    table["selected"] = table["setting"] == best
    return settings[best], table


def search_size(params: Settings, dense: bool) -> int:
    """The number of settings the search tries at most (grid points, or tpe trials).

    Parameters
    ----------
    params : Settings
        The training settings.
    dense : bool
        Whether the cohort has no prior.

    Returns
    -------
    int
        The grid's size, or the larger of `n_trials` and the grid's size for tpe.
    """
    n_points = len(params.points(dense))
    return max(params.n_trials, n_points) if params.method == "tpe" else n_points


def _fold_fitter(
    data: CohortArrays,
    rows: np.ndarray,
    sizes: tuple[int, int],
    on_fold: FoldHook | None,
    on_epoch: EpochHook | None,
) -> Callable[..., dict]:
    """The `grid_search` fold function: fit setting s on fold f's training rows (positions into
    `rows`), score its held-out rows; `sizes` is (settings, folds) for the progress hook."""

    def fit_fold(
        s: int, setting: Setting, f: int, tr: np.ndarray, te: np.ndarray, fold_seed: int
    ) -> dict:
        if on_fold is not None:
            on_fold(s, sizes[0], f, sizes[1])
        model = fit_rows(BaseModel, data, rows[tr], setting, fold_seed, on_epoch=on_epoch)
        scores, _, _ = evaluate_rows(model, data, rows[te])
        metric = "r2" if data.task == "regression" else "log_loss"
        if data.targets is not None:  # several targets: each score is already relative to its prior
            return {"best_epoch": int(model.config["training"]["best_epoch"]), **scores}
        prior = prior_metrics(data.labels[rows[tr]], data.labels[rows[te]], data.task, data.classes)
        return {
            "best_epoch": int(model.config["training"]["best_epoch"]),
            **scores,
            f"prior_{metric}": as_float(prior.get(metric)),
        }

    return fit_fold


def record_training_report(
    model: BaseModel,
    data: CohortArrays,
    params: Settings,
    seed: int,
    n_settings: int,
    table: pd.DataFrame | None,
) -> None:
    """Record what `fit` leaves in a model beside the weights.

    That is the seed, params, the CV table and summary, the selected setting's mean scores, and
    the imputation R^2 per latent block.

    Parameters
    ----------
    model : BaseModel
        The fitted model (updated in place).
    data : CohortArrays
        The cohort's arrays.
    params : Settings
        The training settings.
    seed : int
        The fit's random seed.
    n_settings : int
        The number of settings in the grid.
    table : pandas.DataFrame or None
        The per-fold CV table of `tune_setting` (None: no search ran).
    """
    model.config["seed"] = int(seed)
    model.config["params"] = params.to_dict()
    model.config["training"]["n_settings"] = n_settings
    model.config["training"]["cv_folds"] = 0 if table is None else int(table["fold"].nunique())
    model.config["training"]["search"] = params.method
    pruned = table is not None and "pruned" in table
    model.config["training"]["n_pruned"] = (
        int(table.loc[table["pruned"], "setting"].nunique()) if pruned else 0
    )
    fold_r2: dict[str, list[float | None]] = {}
    if table is not None:
        best = int(table.loc[table["selected"], "setting"].iloc[0])
        model.cv_results = table.drop(columns="selected")
        model.cv_summary = summarize_cv(model.cv_results, best)
        chosen = model.cv_results[model.cv_results["setting"] == best]
        model.config["cv"] = {
            "selected_setting": best,
            "metric": "r2" if data.task == "regression" else "log_loss",
            "mean": {
                c: as_float(chosen[c].mean())
                for c in chosen.columns
                if c not in ("setting", "fold", "grid") and pd.api.types.is_numeric_dtype(chosen[c])
            },
        }
        model.config["cv"].update(prior_comparison(chosen, data.task))
        fold_r2 = {
            m: [as_float(v) for v in chosen[f"r2_{m}"]]
            for m in data.modalities
            if f"r2_{m}" in chosen
        }
    model.imputation = {
        "description": "R^2 of each latent block imputed from the other modalities against the block "
        "encoded from its own data (pooled over latent nodes), on held-out rows",
        "held_out": "CV test folds of the selected setting" if fold_r2 else None,
        "blocks": {
            m: {
                "imputed_from": [o for o in data.modalities if o != m],
                "r2_mean": mean_or_none(fold_r2.get(m, [])),
                "r2_per_fold": fold_r2.get(m, []),
                "r2_refit_validation": model.config["training"]["imputation_r2_validation"].get(m),
            }
            for m in data.modalities
        },
    }


def prior_comparison(chosen: pd.DataFrame, task: str) -> dict:
    """Compare the chosen setting's cross-validated score with the class-prior (or mean) predictor.

    The chosen setting beats the prior when its mean selection score over the folds exceeds the
    prior's by at least `PRIOR_MARGIN` (log loss in nats, or R^2).

    Parameters
    ----------
    chosen : pandas.DataFrame
        The CV rows of the chosen setting (with ``all_<metric>`` and ``prior_<metric>``).
    task : str
        ``"classification"`` or ``"regression"``.

    Returns
    -------
    dict
        ``beats_prior`` (bool, or None when a score is missing), ``prior_<metric>`` and
        ``chosen_<metric>`` (fold means), and ``prior_margin``.
    """
    metric = "r2" if task == "regression" else "log_loss"
    mine = as_float(chosen[f"all_{metric}"].mean()) if f"all_{metric}" in chosen else None
    prior = as_float(chosen[f"prior_{metric}"].mean()) if f"prior_{metric}" in chosen else None
    beats = None
    if mine is not None and prior is not None:
        gain = mine - prior if metric == "r2" else prior - mine
        beats = bool(gain >= PRIOR_MARGIN)
    return {
        "beats_prior": beats,
        f"prior_{metric}": prior,
        f"chosen_{metric}": mine,
        "prior_margin": PRIOR_MARGIN,
    }


def prior_warning(config: dict) -> str | None:
    """Return the warning for a model whose chosen setting does not beat the class prior.

    Parameters
    ----------
    config : dict
        A model's config (its ``cv`` block, when cross-validation ran).

    Returns
    -------
    str or None
        One line starting with ``warning:``, or None when the setting beats the prior or no
        cross-validation ran.
    """
    cv = config.get("cv") or {}
    if cv.get("beats_prior") is not False:
        return None
    metric = "r2" if config.get("task") == "regression" else "log_loss"
    what = "mean" if metric == "r2" else "class-prior"
    return (
        f"warning: the selected setting does not beat the {what} predictor in cross-validation "
        f"({metric} {cv[f'chosen_{metric}']:.4f} vs {cv[f'prior_{metric}']:.4f} for the {what} "
        f"predictor, margin {cv['prior_margin']}); the model has learned little from the data"
    )


# -- progress -------------------------------------------------------------------------------------


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_description(self, text: str) -> None: ...
    def set_postfix_str(self, text: str, refresh: bool = True) -> None: ...
    def close(self) -> None: ...


def progress_bar(total: int, enabled: bool) -> Any:
    """Return a tqdm bar on stderr counting fits, or a silent stand-in.

    Parameters
    ----------
    total : int
        The number of fits.
    enabled : bool
        Whether to show the bar.

    Returns
    -------
    Any
        A tqdm bar, or a stand-in with the same methods that shows nothing.
    """
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="fit", file=sys.stderr, dynamic_ncols=True, leave=False)


def epoch_hook(bar: Any) -> EpochHook:
    """Return an `on_epoch` hook that shows the losses in the bar.

    Parameters
    ----------
    bar : Any
        The bar of `progress_bar`.

    Returns
    -------
    EpochHook
        The hook.
    """

    def hook(epoch: int, train_loss: float, val_loss: float | None) -> None:
        text = f"epoch {epoch} train {train_loss:.3f}" + (
            f" val {val_loss:.3f}" if val_loss is not None else ""
        )
        bar.set_postfix_str(text, refresh=False)

    return hook


def fold_hook(bar: Any) -> FoldHook:
    """Return an `on_fold` hook that names the fit in the bar and counts the previous one.

    Parameters
    ----------
    bar : Any
        The bar of `progress_bar`.

    Returns
    -------
    FoldHook
        The hook.
    """

    def hook(s: int, n_settings: int, f: int, n_folds: int) -> None:
        if s or f:
            bar.update(1)
        bar.set_description(f"setting {s + 1}/{n_settings} fold {f + 1}/{n_folds}")

    return hook
