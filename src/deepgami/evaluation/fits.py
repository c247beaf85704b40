"""One unit of an evaluation: fit one method on one split's training rows, score its held-out rows.

`run_unit` is what every worker of the parallel executor (`deepgami.evaluation.executor`) runs. It
depends only on the cohort, the parameters, the config and the unit itself: every fit's seed derives
from (seed, protocol, split, method), so a unit gives the same rows in any worker and any order.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from deepgami.errors import InputError
from deepgami.evaluation import baselines as bl
from deepgami.evaluation.ablations import alone_arrays, variant_arrays
from deepgami.evaluation.config import (
    ALONE,
    DEEPGAMI_METHODS,
    MEANFILL,
    METHOD_INDEX,
    PROTOCOLS,
    EvalConfig,
)
from deepgami.evaluation.splits import Split
from deepgami.evaluation.targets import known_rows, target_predictions, target_view, value_columns
from deepgami.utils import jsonable

if TYPE_CHECKING:  # the settings module imports torch; workers import it when they fit
    from deepgami.train.params import Setting, Settings

TUNE = "tune"  # the method name of a grid-search unit


@dataclass
class Context:
    """What every unit reads: the cohort arrays, DeepGAMI's parameters and the evaluation config.

    Parameters
    ----------
    data : CohortArrays
        The cohort's arrays.
    params : Settings
        DeepGAMI's parameters (with the grid).
    config : EvalConfig
        The evaluation config.
    setting : Setting
        DeepGAMI's setting when it is not tuned (first value of each grid entry).
    """

    data: Any
    params: Settings
    config: EvalConfig
    setting: Setting  # DeepGAMI's setting when it is not tuned (first value of each grid entry)


@dataclass
class Unit:
    """One method on one split (or, with method TUNE, DeepGAMI's grid search on its training rows).

    `order` is the unit's place in a serial run; results are sorted by it before they are written.

    Parameters
    ----------
    order : int
        The unit's place in a serial run.
    split : Split
        The split whose training rows are fitted and whose held-out rows are scored.
    method : str
        The method's name, or TUNE for DeepGAMI's grid search.
    keep_history : bool, default False
        Whether to keep DeepGAMI's per-epoch training history.
    tune_seed : int, default 0
        The seed of a TUNE unit's grid search.
    modality : str or None, default None
        ALONE units: the one modality trained on and scored from.
    target : str or None, default None
        Baselines of a cohort with targets: the one target fitted and scored (DeepGAMI's units
        fit and score every target at once).
    """

    order: int
    split: Split
    method: str
    keep_history: bool = False
    tune_seed: int = 0
    modality: str | None = None
    target: str | None = None


@dataclass
class UnitResult:
    """Tidy rows and tables of one unit, and the seconds it took.

    Parameters
    ----------
    order : int
        The unit's place in a serial run.
    method : str
        The method's name.
    protocol : str
        The split's protocol.
    split : int
        The split's index within its protocol.
    records : list of dict, default []
        Tidy metric rows (method, modalities, protocol, split, metric, value).
    predictions : list of pandas.DataFrame, default []
        Held-out predictions, one table per method and modality set.
    history : pandas.DataFrame or None, default None
        DeepGAMI's per-epoch training history, when kept.
    baseline_params : dict or None, default None
        A baseline's chosen hyperparameters and inner-CV score.
    main : dict, default {}
        The metrics of the method on all modalities.
    seconds : float, default 0.0
        The seconds the unit took.
    setting : Setting or None, default None
        TUNE units: the chosen setting.
    tuning : pandas.DataFrame or None, default None
        TUNE units: the per-fold table.
    target : str or None, default None
        The unit's one target (baselines of a cohort with targets); records and prediction
        frames of a cohort with targets carry their own ``target``.
    """

    order: int
    method: str
    protocol: str
    split: int
    records: list[dict] = field(default_factory=list)
    predictions: list[pd.DataFrame] = field(default_factory=list)
    history: pd.DataFrame | None = None
    baseline_params: dict | None = None
    main: dict = field(default_factory=dict)
    seconds: float = 0.0
    setting: Setting | None = None  # TUNE units: the chosen setting
    tuning: pd.DataFrame | None = None  # TUNE units: the per-fold table
    target: str | None = None


def unit_seed(config: EvalConfig, split: Split, method: str) -> int:
    """Derive the seed of one fit: a function of (seed, protocol, split, method) only.

    Parameters
    ----------
    config : EvalConfig
        The evaluation config (its seed).
    split : Split
        The split fitted.
    method : str
        The method fitted.

    Returns
    -------
    int
        The fit's seed.
    """
    from deepgami.train import derive_seed

    return derive_seed(
        config.seed, PROTOCOLS.index(split.protocol), split.index, METHOD_INDEX[method]
    )


def run_unit(ctx: Context, unit: Unit, setting: Setting | None = None) -> UnitResult:
    """Run one unit; `setting` is DeepGAMI's setting for its methods (default: the untuned one).

    Parameters
    ----------
    ctx : Context
        What every unit reads.
    unit : Unit
        The unit to run.
    setting : Setting or None, default None
        DeepGAMI's setting for its methods (None: `ctx.setting`, the untuned one).

    Returns
    -------
    UnitResult
        The unit's rows, tables and timing.
    """
    t0 = time.perf_counter()
    split = unit.split
    out = UnitResult(unit.order, unit.method, split.protocol, split.index, target=unit.target)
    if unit.method == TUNE:
        out.setting, out.tuning = tune_deepgami(ctx.data, split.train, ctx.params, unit.tune_seed)
    elif unit.method == ALONE:
        _fit_alone(ctx, unit, setting or ctx.setting, out)
    elif unit.method in DEEPGAMI_METHODS:
        _fit_deepgami(ctx, unit, setting or ctx.setting, out)
    else:
        _fit_baseline(ctx, unit, out)
    out.seconds = time.perf_counter() - t0
    return out


def _rows(
    out: UnitResult, method: str, modalities: str, scores: dict, target: str | None = None
) -> None:
    for metric, value in flatten_metrics(scores).items():
        row = {} if target is None else {"target": target}
        out.records.append(
            {
                **row,
                "method": method,
                "modalities": modalities,
                "protocol": out.protocol,
                "split": out.split,
                "metric": metric,
                "value": value,
            }
        )


def _model_rows(data: Any, out: UnitResult, method: str, modalities: str, scores: dict) -> None:
    """`_rows` of a DeepGAMI fit: its metrics, or each target's (``scores[target]``)."""
    if data.targets is None:
        _rows(out, method, modalities, scores)
        return
    for t in data.targets:
        if t.name in scores:
            _rows(out, method, modalities, scores[t.name], target=t.name)


def _main(data: Any, scores: dict) -> dict:
    """The metrics the progress line shows: the fit's, or ``<target>:<metric>`` per target."""
    if data.targets is None:
        return scores
    return {f"{t}:{k}": v for t, found in scores.items() for k, v in found.items()}


def _predictions(
    data: Any,
    out: UnitResult,
    method: str,
    modalities: str,
    samples: Sequence[str],
    labels: np.ndarray,
    values: np.ndarray,
) -> None:
    frame = pd.DataFrame(
        {
            "method": method,
            "modalities": modalities,
            "protocol": out.protocol,
            "split": out.split,
            "sample": list(samples),
            "label": list(labels),
        }
    )
    if data.task == "classification":
        for j, c in enumerate(data.classes):
            frame[f"prob_{c}"] = values[:, j]
    elif data.task == "survival":
        frame["label"] = None
        frame["time"], frame["event"] = labels[:, 0], labels[:, 1]
        frame["risk"] = values
    else:
        frame["predicted"] = values
    if out.target is not None:
        frame.insert(0, "target", out.target)
    out.predictions.append(frame)


def _table_predictions(
    data: Any, out: UnitResult, method: str, modalities: str, table: pd.DataFrame
) -> None:
    """`_predictions` from a model's prediction table (a cohort with targets: one frame per
    target, on the rows where it is known)."""
    if data.targets is not None:
        for t in data.targets:
            frame = target_predictions(table, t).reset_index(drop=True)
            where = {"target": t.name, "method": method, "modalities": modalities}
            where |= {"protocol": out.protocol, "split": out.split}
            out.predictions.append(
                pd.concat([pd.DataFrame(where, index=frame.index), frame], axis=1)
            )
        return
    cols = value_columns(data.task, list(data.classes))
    values = table[cols].to_numpy(dtype=np.float64)
    _predictions(
        data,
        out,
        method,
        modalities,
        table["sample"],
        table["label"].to_numpy(),
        values if data.task == "classification" else values[:, 0],
    )


def _fit_alone(ctx: Context, unit: Unit, setting: Setting, out: UnitResult) -> None:
    """DeepGAMI trained on one modality's training rows (its own preprocessing, fitted on them),
    scored from that modality: rows with method ALONE and modalities the modality."""
    from deepgami.model import fit_predict_fold
    from deepgami.train import derive_seed

    data, split, m = ctx.data, unit.split, unit.modality
    seed = derive_seed(unit_seed(ctx.config, split, ALONE), data.modalities.index(m))
    try:
        res = fit_predict_fold(alone_arrays(data, m), split.train, split.test, setting, seed)
    except InputError as err:  # e.g. too few training samples have m
        where = f"{split.protocol} split {split.index}"
        raise InputError(
            err.path, f"{ALONE} (trained on {m} alone, {where}): {err.message}"
        ) from None
    _model_rows(data, out, ALONE, m, res.metrics["all"])
    _table_predictions(data, out, ALONE, m, res.predictions["all"])
    out.main = _main(data, res.metrics["all"])


def _fit_deepgami(ctx: Context, unit: Unit, setting: Setting, out: UnitResult) -> None:
    from deepgami.model import fit_predict_fold
    from deepgami.train import derive_seed

    data, split, method = ctx.data, unit.split, unit.method
    seed = unit_seed(ctx.config, split, method)
    arrays = variant_arrays(data, method, ctx.config, derive_seed(seed, 99))
    use = setting
    if method == "deepgami_dense":
        use = setting.replace(latent_dim=len(data.latent_nodes))
    res = fit_predict_fold(arrays, split.train, split.test, use, seed)
    for key, scores in res.metrics.items():
        if key.endswith("_meanfill"):
            if method != "deepgami":
                continue
            name, mods = MEANFILL, key[: -len("_meanfill")]
        else:
            name, mods = method, key
        _model_rows(data, out, name, mods, scores)
        _table_predictions(data, out, name, mods, res.predictions[key])
    for m, r2 in res.imputation_r2.items():
        if r2 is not None and not math.isnan(r2):
            out.records.append(
                {
                    "method": method,
                    "modalities": "all",
                    "protocol": split.protocol,
                    "split": split.index,
                    "metric": f"imputation_r2_{m}",
                    "value": float(r2),
                }
            )
    if unit.keep_history:
        hist = res.history.copy()
        hist.insert(0, "method", method)
        hist.insert(1, "protocol", split.protocol)
        hist.insert(2, "split", split.index)
        out.history = hist
    out.main = _main(data, res.metrics["all"])


def _fit_baseline(ctx: Context, unit: Unit, out: UnitResult) -> None:
    data, split, config = ctx.data, unit.split, ctx.config
    if unit.target is not None:  # one target: its values, the rows where it is known
        split = dataclasses.replace(
            split,
            train=known_rows(data, unit.target, split.train),
            test=known_rows(data, unit.target, split.test),
        )
        data = target_view(data, unit.target)
    # The baselines use only the preprocessing entries (selection, scaling), never grid ones, so the
    # untuned setting gives them the same inputs as the tuned one.
    Xtr, ytr, Xte, used = baseline_matrices(data, split.train, split.test, ctx.setting)
    inner_folds = min(config.inner_folds, 3) if config.fast else config.inner_folds
    seed = unit_seed(config, split, unit.method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = bl.fit_baseline(
            unit.method, Xtr, ytr, data.task, seed % 2**31, inner_folds, config.fast
        )
    values = bl.predict_scores(
        fitted, Xte, len(data.classes) if data.task == "classification" else None
    )
    labels = data.labels[split.test]
    out.main = score_predictions(data, labels, values)
    _rows(out, unit.method, "all", out.main, target=unit.target)
    _predictions(
        data, out, unit.method, "all", [str(data.obs_names[i]) for i in split.test], labels, values
    )
    out.baseline_params = {
        **({} if unit.target is None else {"target": unit.target}),
        "method": unit.method,
        "protocol": split.protocol,
        "split": split.index,
        "n_train": len(used),
        "params": json.dumps(jsonable(fitted.best_params), sort_keys=True),
        "inner_cv_score": fitted.inner_score,
    }


# -- DeepGAMI's setting --------------------------------------------------------------------------


def tune_deepgami(
    data: Any, rows: np.ndarray, params: Settings, seed: int
) -> tuple[Setting, pd.DataFrame | None]:
    """Run DeepGAMI's grid search on `rows`.

    This is `deepgami.model.tune_setting`, the one tuner `deepgami train` uses.

    Parameters
    ----------
    data : CohortArrays
        The cohort's arrays.
    rows : numpy.ndarray
        The training rows to tune on.
    params : Settings
        DeepGAMI's parameters (with the grid).
    seed : int
        The grid search's seed.

    Returns
    -------
    setting : Setting
        The chosen setting.
    tuning : pandas.DataFrame or None
        The per-fold table (None when there was nothing to tune).
    """
    from deepgami.model import tune_setting

    return tune_setting(data, rows, params, seed)


def deepgami_setting(params: Settings, dense: bool) -> Setting:
    """Return the untuned setting: the first value of each grid entry.

    Parameters
    ----------
    params : Settings
        DeepGAMI's parameters (with the grid).
    dense : bool
        Whether the setting is for the dense (prior-free) variant.

    Returns
    -------
    Setting
        The untuned setting.
    """
    return params.first(dense)


# -- baselines ---------------------------------------------------------------------------------


def baseline_matrices(
    data: Any, train: np.ndarray, test: np.ndarray, setting: Setting
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Build concatenated, preprocessed inputs for a baseline.

    Training rows are those with every modality. Each modality gets the same selection and
    scaling as DeepGAMI, fitted on those rows; a test sample lacking a modality gets the training
    mean of its features (so every method is scored on the same samples).

    Parameters
    ----------
    data : CohortArrays
        The cohort's arrays.
    train : numpy.ndarray
        The split's training rows.
    test : numpy.ndarray
        The split's held-out rows.
    setting : Setting
        The setting whose preprocessing entries (selection, scaling) apply.

    Returns
    -------
    X_train : numpy.ndarray
        The training inputs.
    y_train : numpy.ndarray
        The training targets (class codes, values, or a `sksurv.util.Surv` array for survival).
    X_test : numpy.ndarray
        The held-out inputs.
    used : numpy.ndarray
        The training rows used (those with every modality).

    Raises
    ------
    InputError
        If fewer than 4 training samples have every modality.
    """
    from deepgami.data.preprocessing import fit_modality

    train = train[data.present[train].all(axis=1)]
    if len(train) < 4:
        raise InputError(
            None, f"only {len(train)} training samples have every modality; baselines need more"
        )
    y = training_targets(data, train)
    blocks_tr, blocks_te = [], []
    # Survival: the selection tests read the follow-up times (the default selection reads none).
    y_sel = data.labels[train, 0] if data.task == "survival" else y
    for k, m in enumerate(data.modalities):
        prep, cols = fit_modality(
            data.X[k],
            data.var_names[k],
            y_sel,
            "regression" if data.task == "survival" else data.task,
            rows=train,
            **setting.preprocessing.modality_options(m),
        )
        blocks_tr.append(prep.transform(data.X[k][train][:, cols]))
        raw = data.X[k][test][:, cols].astype(np.float32)
        raw[~data.present[test, k]] = np.nan  # transform fills NaN with the training mean
        blocks_te.append(prep.transform(raw))
    return np.concatenate(blocks_tr, axis=1), y, np.concatenate(blocks_te, axis=1), train


def training_targets(data: Any, rows: np.ndarray) -> np.ndarray:
    """Return a baseline's training targets on `rows`.

    Parameters
    ----------
    data : CohortArrays
        The cohort's arrays (one label).
    rows : numpy.ndarray
        The training rows.

    Returns
    -------
    numpy.ndarray
        Class codes, values, or a `sksurv.util.Surv` array of (event, time) for survival.
    """
    if data.task == "classification":
        return np.array([data.classes.index(v) for v in data.labels[rows]], dtype=np.int64)
    if data.task == "survival":
        from sksurv.util import Surv

        values = data.labels[rows]
        return Surv.from_arrays(values[:, 1] == 1, values[:, 0])
    return data.labels[rows].astype(np.float64)


# -- metrics as tidy rows -------------------------------------------------------------------------


def flatten_metrics(scores: dict) -> dict[str, float]:
    """Collect the scalar metrics of a metrics dict, `recall_<class>` per class.

    The dict is one of `classification_metrics` / `regression_metrics`; NaN values and
    `n_excluded_unknown_label` are left out.

    Parameters
    ----------
    scores : dict
        The metrics, as `classification_metrics` or `regression_metrics` return them.

    Returns
    -------
    dict of str to float
        The scalar metrics by name.
    """
    out = {}
    for key, value in scores.items():
        if key == "recall" and isinstance(value, dict):
            for c, v in value.items():
                if v is not None:
                    out[f"recall_{c}"] = float(v)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and value is not None:
            if key == "n_excluded_unknown_label":
                continue
            if not (isinstance(value, float) and math.isnan(value)):
                out[key] = float(value)
    return out


def score_predictions(data: Any, labels: np.ndarray, values: np.ndarray) -> dict:
    """Score held-out predictions with the task's metrics.

    Parameters
    ----------
    data : CohortArrays
        The cohort's arrays (its task and classes).
    labels : numpy.ndarray
        The held-out rows' true labels.
    values : numpy.ndarray
        Class probabilities (classification), predicted values (regression) or risks (survival).

    Returns
    -------
    dict
        `classification_metrics`, `regression_metrics` or (survival, `labels` the (time, event)
        matrix) `survival_metrics` of the predictions.
    """
    from deepgami.metrics import classification_metrics, regression_metrics

    if data.task == "classification":
        return classification_metrics(labels, values, data.classes)
    if data.task == "survival":
        from deepgami.model._targets import survival_metrics

        return survival_metrics(labels[:, 0], labels[:, 1], values)
    return regression_metrics(labels.astype(float), values)
