"""`DeepGAMI`: the user-facing model. It takes a cohort MuData, trains (fit = tune + fit: CV grid
search, then the refit and its bagged networks), saves `model.safetensors` + `config.json`, loads,
and predicts from any subset of modalities (`BaseModel`).

Typical use::

    model = DeepGAMI.fit(mdata, load_params("params.yaml"), seed=0)
    model = DeepGAMI.fit(mdata, hidden_layers=[16], learning_rate=0.01, max_epochs=50, seed=0)
    model.save("model_dir")
    model = DeepGAMI.load("model_dir")
    table = model.predict(mdata, modalities=["snp"])   # expression block imputed

For evaluation and ablations, `fit_predict_fold` fits one setting on given rows and scores given
held-out rows, optionally with each modality's prior swapped for another edge list.

Where the pieces live: `_inputs` (MuData -> network inputs), `_fitting` (one fit, bagging, the thread
policy), `_tuning` (the one tuner and the training report), `_evaluate` (the held-out evaluation
matrix), `_io` (the model directory).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mudata as md
import numpy as np
import pandas as pd
import torch

from deepgami.data.arrays import CohortArrays, PriorOverride, read_arrays
from deepgami.data.preprocessing import ModalityPreprocessor
from deepgami.model import _fitting, _io
from deepgami.model._base import BaseModel
from deepgami.model._evaluate import evaluate_rows, score_input_sets
from deepgami.model._fitting import EpochHook, cohort_threads
from deepgami.model._tuning import (
    epoch_hook,
    fold_hook,
    progress_bar,
    record_training_report,
    search_size,
    training_rows,
    tune_setting,
)
from deepgami.model._validate import check_mudata
from deepgami.train import (
    Setting,
    Settings,
    as_setting,
    as_settings,
    default_params,
    derive_seed,
    device_scope,
)


class DeepGAMI(BaseModel):
    """A trained DeepGAMI model: the network (`module`), its fitted preprocessing and its config.

    `members` are the networks whose outputs it averages (`module` first, then any bagged ones).

    Build one with `DeepGAMI.fit` (grid search + refit) or `DeepGAMI.fit_rows` (one setting), or
    `DeepGAMI.load`. After `fit`, `cv_results`, `cv_summary`, `history` and `imputation` hold the
    training report that `save` writes next to the weights.

    Parameters
    ----------
    module : DeepGAMINetwork
        The refit network.
    config : dict
        The model's config (what config.json holds).
    preprocessors : Sequence of ModalityPreprocessor
        One fitted preprocessor per modality, in `config["modalities"]` order.
    bagged : Sequence of DeepGAMINetwork, default ()
        Further networks whose outputs are averaged with `module`'s (they share its preprocessing).

    Examples
    --------
    >>> import deepgami as dg
    >>> mdata = dg.datasets.simulated(n_samples=80)
    >>> model = dg.DeepGAMI.fit(mdata, cv_folds=0, max_epochs=5, bagging=0)  # doctest: +SKIP
    >>> model.predict(mdata, modalities=["snp"])  # doctest: +SKIP
    """

    @classmethod
    def fit(
        cls,
        mdata: md.MuData | CohortArrays,
        params: Settings | Mapping | None = None,
        seed: int = 0,
        *,
        split: str | None = "train",
        progress: bool = False,
        prior_override: PriorOverride | None = None,
        device: str | torch.device | None = None,
        **hyperparameters: Any,
    ) -> DeepGAMI:
        """Grid search by k-fold CV on the training rows, then refit the best setting on all.

        Parameters
        ----------
        mdata
            The cohort (or its arrays, `deepgami.data.arrays.read_arrays`).
        params
            Training settings: `deepgami.train.Settings` (`load_params`), or a mapping of keys of
            `default_params.yaml` laid over the packaged defaults (None: the defaults).
        seed
            Every split, initialization and minibatch order derives from it.
        split
            Train on rows whose split equals this when the cohort has a split column (None: all).
        progress
            Show a progress bar on stderr.
        prior_override
            Replacement prior edges per modality (ablations).
        device
            Where the networks train (``cpu``, ``cuda``, a `torch.device`; None: the enclosing
            `deepgami.train.device_scope`, else the CPU). The fitted weights are on the CPU.
        **hyperparameters
            Any key of `default_params.yaml` over `params` (``max_epochs=20``, ``cv_folds=0``,
            ``learning_rate=0.01``, ``hidden_layers=[16]``); a grid key given here is fixed to
            that one value; None leaves a key as `params` has it. A misspelt name is a TypeError
            naming it.

        Returns
        -------
        DeepGAMI
            Training rows are labelled and have at least one modality. Early stopping always uses
            an inner validation split of the rows being fitted, never the fold being scored.
        """
        check_mudata(mdata, "mdata", also=(CohortArrays,))
        settings = _settings(params, hyperparameters)
        data = mdata if isinstance(mdata, CohortArrays) else read_arrays(mdata, prior_override)
        rows = training_rows(data, split)
        n_settings = (
            1 if settings.cv_folds < 2 else search_size(settings, data.latent_nodes is None)
        )
        n_folds = settings.cv_folds if settings.cv_folds >= 2 else 0
        bar = progress_bar(n_settings * n_folds + 1 + settings.first().training.bagging, progress)
        with device_scope(device):  # the networks and minibatches; the weights end on the CPU
            try:
                model, table = cls._tune_and_refit(data, rows, settings, seed, bar)
            finally:
                bar.close()
        record_training_report(model, data, settings, seed, n_settings, table)
        return model

    @classmethod
    def _tune_and_refit(
        cls, data: CohortArrays, rows: np.ndarray, settings: Settings, seed: int, bar: Any
    ) -> tuple[DeepGAMI, pd.DataFrame | None]:
        """The grid search, then the refit of the chosen setting with its bagged networks."""
        setting, table = tune_setting(
            data,
            rows,
            settings,
            seed,
            search_single=True,
            on_fold=fold_hook(bar),
            on_epoch=epoch_hook(bar),
        )
        if table is not None:
            bar.update(1)
        bar.set_description("refit on all training rows")
        with cohort_threads(data):
            model = cls.fit_bagged(
                data,
                rows,
                setting,
                derive_seed(seed, 2),
                on_epoch=epoch_hook(bar),
                on_fit=lambda: bar.update(1),
            )
        return model, table

    @classmethod
    def fit_rows(
        cls,
        data: CohortArrays,
        rows: np.ndarray,
        setting: Setting | Mapping,
        seed: int,
        on_epoch: EpochHook | None = None,
        shared_preprocessing: Sequence[ModalityPreprocessor] | None = None,
    ) -> DeepGAMI:
        """Fit one setting on rows `rows` of `data`.

        Parameters
        ----------
        data
            Cohort arrays.
        rows
            Positions of the rows to fit on (the usable ones are used).
        setting
            One grid point (`deepgami.train.Setting`, e.g. `Settings.first`), or a flat mapping
            of keys of `default_params.yaml` (one value each) over the defaults' first point.
        seed
            Seed of this fit.
        on_epoch
            Called after each epoch with (epoch, train loss, validation loss).
        shared_preprocessing
            Use these fitted preprocessors instead of fitting new ones (bagged members).

        Returns
        -------
        DeepGAMI
            One network; preprocessing fitted on those rows only.
        """
        setting = as_setting(setting, dense=data.latent_nodes is None)
        return _fitting.fit_rows(cls, data, rows, setting, seed, on_epoch, shared_preprocessing)

    @classmethod
    def fit_bagged(
        cls,
        data: CohortArrays,
        rows: np.ndarray,
        setting: Setting | Mapping,
        seed: int,
        on_epoch: EpochHook | None = None,
        on_fit: Callable[[], None] | None = None,
    ) -> DeepGAMI:
        """Fit one setting on all `rows` plus `setting.training.bagging` networks on random subsets.

        Parameters
        ----------
        data, rows, setting, seed, on_epoch
            As for `fit_rows`.
        on_fit
            Called after each network is fitted.

        Returns
        -------
        DeepGAMI
            Averaging its member networks' outputs.
        """
        setting = as_setting(setting, dense=data.latent_nodes is None)
        return _fitting.fit_bagged(cls, data, rows, setting, seed, on_epoch, on_fit)

    def _evaluate(
        self, data: CohortArrays, rows: np.ndarray
    ) -> tuple[dict, dict[str, pd.DataFrame], dict]:
        """`deepgami.model._evaluate.evaluate_rows` of this model (kept for the benchmarks)."""
        return evaluate_rows(self, data, rows)

    # -- persistence ----------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write `model.safetensors`, `config.json` and the training report files into a directory.

        Parameters
        ----------
        path
            The directory; an existing one is replaced atomically.
        """
        _io.save_model(self, path)

    @classmethod
    def load(cls, path: str | Path) -> DeepGAMI:
        """Rebuild a saved model.

        Parameters
        ----------
        path
            A directory written by `save` (or an older one with `model.pt`, read weights-only).

        Returns
        -------
        DeepGAMI
            Ready to predict.

        Raises
        ------
        InputError
            Naming the file when the directory is not a valid DeepGAMI model.
        """
        files = _io.read_model(path)
        model = cls(files.networks[0], files.config, files.preprocessors, bagged=files.networks[1:])
        for attr, value in files.report.items():
            setattr(model, attr, value)
        return model


@dataclass
class FoldResult:
    """What `fit_predict_fold` returns: the fitted model and its held-out scores.

    `metrics` and `predictions` are keyed by the inputs given: `all`, each single modality (the
    others imputed) and `<modality>_meanfill` (the others replaced by their training mean).

    Parameters
    ----------
    model : DeepGAMI
        The model fitted on the training rows.
    metrics : dict of str to dict
        The held-out metrics of each input set.
    predictions : dict of str to pandas.DataFrame
        The held-out prediction table of each input set.
    imputation_r2 : dict of str to float or None
        The held-out imputation R^2 per modality.
    history : pandas.DataFrame
        The training history.
    """

    model: DeepGAMI
    metrics: dict[str, dict]
    predictions: dict[str, pd.DataFrame]
    imputation_r2: dict[str, float | None]
    history: pd.DataFrame


def fit_predict_fold(
    mdata: md.MuData | CohortArrays,
    train_idx: Sequence[int],
    test_idx: Sequence[int],
    params: Settings | Setting | Mapping,
    seed: int = 0,
    prior_override: PriorOverride | None = None,
    on_epoch: EpochHook | None = None,
) -> FoldResult:
    """Fit one parameter setting on rows `train_idx` and score it on rows `test_idx`.

    Parameters
    ----------
    mdata
        The cohort or its arrays; indices are positions in its `obs_names`.
    train_idx, test_idx
        Training and held-out rows. Preprocessing and early stopping only see `train_idx` rows.
    params
        One `Setting`, `Settings` whose grid has one point, or a flat mapping of one value per key.
    seed
        Seed of the fit.
    prior_override
        Maps a modality to another edge list `(src, dst)` in `cohort.modality_edges` indices
        (e.g. a random network of the same size).
    on_epoch
        Progress hook.

    Returns
    -------
    FoldResult
        The building block of `deepgami evaluate` and of ablations.
    """
    data = mdata if isinstance(mdata, CohortArrays) else read_arrays(mdata, prior_override)
    setting = as_setting(params, dense=data.latent_nodes is None)
    with cohort_threads(data):
        model = DeepGAMI.fit_bagged(
            data, np.asarray(train_idx, dtype=np.int64), setting, seed, on_epoch=on_epoch
        )
        metrics, tables, r2 = score_input_sets(model, data, np.asarray(test_idx, dtype=np.int64))
    return FoldResult(model, metrics, tables, r2, model.history)


def as_grid(params: Settings | Mapping, data: CohortArrays) -> list[Setting]:
    """Return the settings of `params`' grid for this cohort.

    Dense mode ignores prior-only entries.

    Parameters
    ----------
    params : Settings or Mapping
        Training settings, or a mapping over the defaults.
    data : CohortArrays
        The cohort's arrays (dense mode when it has no latent nodes).

    Returns
    -------
    list of Setting
        One setting per grid point.
    """
    return as_settings(params).points(dense=data.latent_nodes is None)


def _settings(params: Settings | Mapping | None, hyperparameters: Mapping) -> Settings:
    """`params` (over the packaged defaults) with `DeepGAMI.fit`'s keyword arguments laid over it;
    a misspelt keyword is a TypeError naming it, an out-of-range value an InputError."""
    known = [*default_params(), *default_params()["grid"]]
    hyperparameters = {k: v for k, v in hyperparameters.items() if v is not None}
    for name in hyperparameters:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TypeError(f"DeepGAMI.fit() got an unexpected keyword argument {name!r}{hint}")
    settings = as_settings(params)
    return settings.with_overrides(hyperparameters) if hyperparameters else settings
