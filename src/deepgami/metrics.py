"""Classification and regression metrics, as plain JSON-ready dicts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm


def _nan_to_none(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def classification_metrics(
    y_true: Sequence[str], proba: np.ndarray, classes: Sequence[str]
) -> dict:
    """Compute accuracy, balanced accuracy, AUC, macro F1, per-class recall and confusion matrix.

    AUC is the ROC AUC of the second class for two classes; for more, one-vs-rest with `auc` the
    macro average and `auc_weighted` the prevalence-weighted one. AUCs are None when y_true holds
    a single class.

    Parameters
    ----------
    y_true : sequence of str
        True labels (compared as strings).
    proba : numpy.ndarray
        Predicted probabilities, (n, n_classes) with columns in `classes` order; the prediction
        is its argmax.
    classes : sequence of str
        Class names, in the column order of `proba`.

    Returns
    -------
    dict
        ``n``, and unless it is 0: ``accuracy``, ``balanced_accuracy``, ``auc``, ``auc_macro``,
        ``auc_weighted``, ``log_loss``, ``f1_macro``, ``recall`` (per class; None for a class
        absent from `y_true`) and ``confusion_matrix`` (``labels`` and ``matrix``).

    Raises
    ------
    ValueError
        If `proba` does not have shape (n, n_classes), or a label is not among `classes`.
    """
    classes = [str(c) for c in classes]
    y_true = np.asarray([str(v) for v in y_true], dtype=object)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape != (len(y_true), len(classes)):
        raise ValueError(f"proba has shape {proba.shape}, expected {(len(y_true), len(classes))}")
    unknown = sorted(set(y_true) - set(classes))
    if unknown:
        raise ValueError(f"labels not among the classes {classes}: {unknown[:5]}")
    y_pred = np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)] if len(y_true) else y_true
    codes = np.array([classes.index(v) for v in y_true], dtype=int)
    out: dict = {"n": int(len(y_true))}
    if len(y_true) == 0:
        return out
    out["accuracy"] = float(skm.accuracy_score(y_true, y_pred))
    out["balanced_accuracy"] = float(
        np.mean([np.mean(y_pred[y_true == c] == c) for c in classes if np.any(y_true == c)])
    )
    out["auc"], out["auc_macro"], out["auc_weighted"] = _aucs(codes, proba, len(classes))
    out["log_loss"] = float(
        -np.mean(np.log(np.clip(proba[np.arange(len(codes)), codes], 1e-7, 1.0)))
    )
    out["f1_macro"] = float(
        skm.f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0)
    )
    out["recall"] = {
        c: (float(np.mean(y_pred[y_true == c] == c)) if np.any(y_true == c) else None)
        for c in classes
    }
    out["confusion_matrix"] = {
        "labels": classes,
        "matrix": skm.confusion_matrix(y_true, y_pred, labels=classes).astype(int).tolist(),
    }
    return out


def _aucs(codes: np.ndarray, proba: np.ndarray, n_classes: int) -> tuple[float | None, ...]:
    if len(np.unique(codes)) < 2:
        return None, None, None
    if n_classes == 2:
        auc = _nan_to_none(skm.roc_auc_score(codes == 1, proba[:, 1]))
        return auc, auc, auc
    # One-vs-rest per class present in y_true; sklearn's multi_class='ovr' insists on all classes.
    per_class, weights = [], []
    for c in range(n_classes):
        positive = codes == c
        if positive.any() and not positive.all():
            per_class.append(skm.roc_auc_score(positive, proba[:, c]))
            weights.append(positive.sum())
    macro = float(np.mean(per_class))
    weighted = float(np.average(per_class, weights=weights))
    return macro, macro, weighted


def regression_metrics(y_true: Sequence[float], y_pred: Sequence[float]) -> dict:
    """Compute MSE, RMSE, R^2 and Pearson correlation of a numeric phenotype.

    Parameters
    ----------
    y_true : sequence of float
        Observed values.
    y_pred : sequence of float
        Predicted values.

    Returns
    -------
    dict
        ``n``, and unless it is 0: ``mse``, ``rmse``, ``r2`` (None for a single sample) and
        ``pearson`` (None for a single sample or when either side is constant).
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    out: dict = {"n": int(len(y_true))}
    if len(y_true) == 0:
        return out
    mse = float(np.mean((y_true - y_pred) ** 2))
    out["mse"] = mse
    out["rmse"] = math.sqrt(mse)
    out["r2"] = _nan_to_none(skm.r2_score(y_true, y_pred)) if len(y_true) > 1 else None
    if len(y_true) > 1 and np.std(y_true) > 0 and np.std(y_pred) > 0:
        out["pearson"] = float(np.corrcoef(y_true, y_pred)[0, 1])
    else:
        out["pearson"] = None
    return out


def harrell_c(event: np.ndarray, time: np.ndarray, risk: np.ndarray) -> float | None:
    """Compute Harrell's concordance index of predicted risks (scikit-survival).

    Parameters
    ----------
    event : numpy.ndarray
        Whether each sample's event was observed (boolean).
    time : numpy.ndarray
        Follow-up times.
    risk : numpy.ndarray
        Predicted risks (higher: earlier event).

    Returns
    -------
    float or None
        The C-index; None when no pair is comparable (no event, or every event after every
        censoring: a few rows, a bootstrap resample).
    """
    from sksurv.metrics import concordance_index_censored

    try:
        return float(concordance_index_censored(event, time, risk)[0])
    except ValueError:
        return None


def block_r2(observed: np.ndarray, imputed: np.ndarray) -> float | None:
    """Compute the R^2 of an imputed latent block against the observed one, pooled over nodes.

    1 - sum of squared errors / total sum of squares around each node's mean (sklearn's
    'variance_weighted'), so near-constant nodes cannot dominate.

    Parameters
    ----------
    observed : numpy.ndarray
        Observed block, samples x nodes.
    imputed : numpy.ndarray
        Imputed block of the same shape.

    Returns
    -------
    float or None
        The pooled R^2; None when the block has fewer than two samples or no spread.
    """
    observed = np.asarray(observed, dtype=np.float64)
    imputed = np.asarray(imputed, dtype=np.float64)
    if observed.shape[0] < 2:
        return None
    total = np.sum((observed - observed.mean(axis=0)) ** 2)
    if total <= 0:
        return None
    return float(1.0 - np.sum((observed - imputed) ** 2) / total)


def prior_metrics(
    y_train: Sequence[Any], y_test: Sequence[Any], task: str, classes: Sequence[str] = ()
) -> dict:
    """Score the predictor that ignores the data: the class prior, or the mean.

    A classifier that predicts the training class frequencies for every sample, or a regressor
    that predicts the training mean; what a collapsed model does.

    Parameters
    ----------
    y_train : sequence
        Training labels (class names, or numbers for a numeric phenotype).
    y_test : sequence
        Held-out labels.
    task : str
        ``"classification"`` or ``"regression"``.
    classes : sequence of str, optional
        Class names in order (classification).

    Returns
    -------
    dict
        The metrics of :func:`classification_metrics` or :func:`regression_metrics` on `y_test`.
    """
    if task == "regression":
        mean = float(np.mean(np.asarray(y_train, dtype=np.float64)))
        return regression_metrics(y_test, np.full(len(y_test), mean))
    classes = [str(c) for c in classes]
    train = [str(v) for v in y_train]
    freq = np.array([train.count(c) for c in classes], dtype=np.float64) / max(len(train), 1)
    return classification_metrics(y_test, np.tile(freq, (len(y_test), 1)), classes)


def selection_score(metrics: dict, task: str) -> float:
    """Return the number the grid search maximizes.

    Minus the held-out log loss (cross-entropy) of a classifier (its AUC when `metrics` hold no
    log loss), R^2 of a numeric phenotype. Log loss is a proper score and, unlike AUC, uses every
    predicted probability rather than only their ranks, which matters on folds of a few dozen
    samples.

    Parameters
    ----------
    metrics : dict
        Held-out metrics, as from :func:`classification_metrics` or :func:`regression_metrics`.
    task : str
        ``"regression"``, ``"classification"`` or ``"multi"`` (several targets: the mean of the
        ``<target>:score`` entries, each 1 - deviance / null deviance).

    Returns
    -------
    float
        The score (higher is better); ``-inf`` when the metric it needs is missing or None.
    """
    if task == "multi":
        # Several targets: the mean of their common-scale scores (1 - deviance / null deviance).
        found = [v for k, v in metrics.items() if str(k).endswith(":score")]
        names = [str(k)[: -len(":score")] for k in metrics if str(k).endswith(":score")]
        if len(names) == 1 and f"{names[0]}:log_loss" in metrics:
            # One classes target: today's selection (minus the log loss), so selections match.
            return selection_score({"log_loss": metrics[f"{names[0]}:log_loss"]}, "classification")
        if len(names) == 1 and f"{names[0]}:r2" in metrics:
            return selection_score({"r2": metrics[f"{names[0]}:r2"]}, "regression")
        if not found or any(v is None for v in found):
            return -math.inf
        return float(np.mean(found))
    if task == "regression":
        value = metrics.get("r2")
        return -math.inf if value is None else float(value)
    if metrics.get("log_loss") is not None:
        return -float(metrics["log_loss"])
    value = metrics.get("auc")
    return -math.inf if value is None else float(value)
