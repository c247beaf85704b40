"""The held-out evaluation matrix of a fitted model: metrics with every modality, with each single
modality (the others imputed) and with each single modality mean-filled (the others replaced by
their training mean), plus the imputation R^2 of each latent block. CV folds, `fit_predict_fold`
and the benchmarks score fits with it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from deepgami.data.arrays import CohortArrays
from deepgami.model._base import BaseModel

CLASSIFICATION_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "auc",
    "auc_weighted",
    "f1_macro",
    "log_loss",
)
REGRESSION_METRICS = ("mse", "r2", "pearson")
# Several targets: each target's metrics, as `<inputs>_<target>:<metric>` (`score`: the common
# scale that the tuner averages, `deepgami.model._targets`).
MULTI_METRICS = {
    "classes": (*CLASSIFICATION_METRICS, "score"),
    "numeric": (*REGRESSION_METRICS, "score"),
    "survival": ("c_index", "c_index_uno", "score"),
}
MEANFILL = "_meanfill"  # suffix of the input sets whose missing blocks are the training mean


def evaluate_rows(
    model: BaseModel, data: CohortArrays, rows: np.ndarray
) -> tuple[dict, dict[str, pd.DataFrame], dict]:
    """Score `model` on rows `rows` of `data`.

    Parameters
    ----------
    model : BaseModel
        The fitted model.
    data : CohortArrays
        The cohort's arrays.
    rows : numpy.ndarray
        The positions of the held-out rows.

    Returns
    -------
    flat : dict
        Maps `<inputs>_<metric>` (inputs `all`, each modality, `<modality>_meanfill`) and
        `r2_<modality>` to a float or None.
    tables : dict of str to pandas.DataFrame
        The prediction table of each input set.
    r2 : dict
        The imputation R^2 per modality.
    """
    scores, tables, r2 = score_input_sets(model, data, rows)
    flat = {}
    names = CLASSIFICATION_METRICS if model.task == "classification" else REGRESSION_METRICS
    for key, metrics in scores.items():
        if data.targets is not None:
            for t in data.targets:
                for name in MULTI_METRICS[t.kind]:
                    flat[f"{key}_{t.name}:{name}"] = as_float(metrics.get(t.name, {}).get(name))
            continue
        for name in names:
            flat[f"{key}_{name}"] = as_float(metrics.get(name))
    for m, v in r2.items():
        flat[f"r2_{m}"] = as_float(v)
    return flat, tables, r2


def score_input_sets(
    model: BaseModel, data: CohortArrays, rows: np.ndarray
) -> tuple[dict[str, dict], dict[str, pd.DataFrame], dict]:
    """Predict and score rows `rows` from every input set, once each.

    Parameters
    ----------
    model : BaseModel
        The fitted model.
    data : CohortArrays
        The cohort's arrays.
    rows : numpy.ndarray
        The positions of the held-out rows.

    Returns
    -------
    scores : dict of str to dict
        `model.metrics` of each input set (`all`, each modality, `<modality>_meanfill`).
    tables : dict of str to pandas.DataFrame
        The prediction table of each input set.
    r2 : dict
        The imputation R^2 per modality.
    """
    inputs = model.inputs(data, rows)
    labels = data.labels[rows] if data.labels is not None else None
    if data.targets is not None:
        labels = target_frame(data, rows)
    input_sets = {"all": inputs}
    for k, m in enumerate(model.modalities):
        input_sets[m] = inputs.only([k])
    scores, tables = {}, {}
    for key, given in list(input_sets.items()) + [
        (f"{m}{MEANFILL}", input_sets[m]) for m in model.modalities
    ]:
        fill = "mean" if key.endswith(MEANFILL) else "impute"
        tables[key] = model.predict(given, fill=fill, labels=labels)
        scores[key] = model.metrics(tables[key])
    return scores, tables, model.imputation_r2(inputs)


def target_frame(data: CohortArrays, rows: np.ndarray) -> pd.DataFrame:
    """Return the known values of each target on `rows`, as the targets' obs columns.

    Parameters
    ----------
    data : CohortArrays
        A multi-target cohort.
    rows : numpy.ndarray
        The rows.

    Returns
    -------
    pandas.DataFrame
        One column per target column (survival: time and event).
    """
    out = {}
    for t in data.targets:
        if t.kind == "survival":
            out[t.columns[0]], out[t.columns[1]] = t.values[rows, 0], t.values[rows, 1]
        else:
            out[t.columns[0]] = t.values[rows]
    return pd.DataFrame(out)


def unflatten(row: dict, key: str) -> dict:
    """Return the metrics of input set `key` from a flat `evaluate_rows` row, without the prefix.

    Parameters
    ----------
    row : dict
        A flat row of `evaluate_rows`.
    key : str
        The input set (``all``, a modality, or `<modality>_meanfill`).

    Returns
    -------
    dict
        The input set's metrics by name.
    """
    prefix = f"{key}_"
    return {
        k[len(prefix) :]: v for k, v in row.items() if isinstance(k, str) and k.startswith(prefix)
    }


def as_float(value: Any) -> float | None:
    """Convert to a float, with None for None and NaN (as JSON and the CV tables want).

    Parameters
    ----------
    value : Any
        A number or None.

    Returns
    -------
    float or None
        The value as a float, or None.
    """
    if value is None:
        return None
    value = float(value)
    return None if np.isnan(value) else value


def mean_or_none(values: Sequence[float | None]) -> float | None:
    """Return the mean of the values that are not None (None when there are none).

    Parameters
    ----------
    values : Sequence of float or None
        The values.

    Returns
    -------
    float or None
        Their mean, or None.
    """
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None
