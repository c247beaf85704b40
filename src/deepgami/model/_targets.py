"""Several targets in one model: their encoding for the loss, their block of the head's outputs,
their prediction columns and their metrics.

A multi-target model's config has ``task: multi`` and a ``targets`` list, one entry per target:
``name``, ``kind`` (classes, numeric, survival), ``columns`` (obs columns), ``classes``, ``start``
and ``width`` (its outputs of the head), ``column`` (its first column of the target matrix),
``weight`` (in the summed loss), ``mean``/``std`` (numeric), ``prior`` (classes: the training class
frequencies, the null model of its score) and ``risk_cutpoints`` (survival: tertiles of the
training risk, the risk groups of predict and the Kaplan-Meier figure).

Prediction columns are ``<target>:<column>``: ``label``, ``predicted`` and ``prob_<class>``
(classes), ``label`` and ``predicted`` (numeric), ``time``, ``event``, ``risk`` and ``risk_group``
(survival). Each target's `score` is on one scale, 1 - deviance / null deviance (McFadden's
pseudo-R^2 for classes, R^2 for numeric, 1 - partial likelihood ratio for survival), so the tuner
can average them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import mudata as md
import numpy as np
import pandas as pd
import torch

from deepgami.data.arrays import CohortArrays
from deepgami.errors import InputError
from deepgami.metrics import classification_metrics, harrell_c, regression_metrics
from deepgami.train.multitask import HeadSlice, cox_partial_nll

RISK_GROUPS = ("low", "mid", "high")


def encode_multi(
    data: CohortArrays, rows: np.ndarray, weights: Mapping[str, float] | None
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Encode every target of `rows` into one matrix (NaN where unknown), and describe them.

    Parameters
    ----------
    data : CohortArrays
        A multi-target cohort.
    rows : numpy.ndarray
        The rows being fitted.
    weights : Mapping of str to float or None
        Loss weight per target name (None or a missing name: 1).

    Returns
    -------
    tuple of (numpy.ndarray, list of dict)
        The rows x columns target matrix (float32) and the config's ``targets`` entries.

    Raises
    ------
    InputError
        When `weights` names an unknown target, or a target has no value on `rows`.
    """
    names = [t.name for t in data.targets]
    unknown = sorted(set(weights or {}) - set(names))
    if unknown:
        raise InputError(
            None,
            f"target_weights names unknown target(s) {', '.join(unknown)} ({', '.join(names)})",
        )
    columns, specs, start = [], [], 0
    for t in data.targets:
        known = t.known()[rows]
        if not known.any():
            raise InputError(None, f"target '{t.name}' has no value among the training samples")
        spec = {"name": t.name, "kind": t.kind, "columns": list(t.columns), "classes": t.classes}
        spec.update(start=start, width=t.width, column=len(columns))
        spec["weight"] = float((weights or {}).get(t.name, 1.0))
        columns.extend(_encoded_columns(t, rows, known, spec))
        specs.append(spec)
        start += t.width
    return np.column_stack(columns).astype(np.float32), specs


def _encoded_columns(t: Any, rows: np.ndarray, known: np.ndarray, spec: dict) -> list[np.ndarray]:
    """One target's columns of the target matrix; records its mean/std or class prior."""
    if t.kind == "survival":
        return [t.values[rows, 0], t.values[rows, 1]]
    if t.kind == "numeric":
        y = t.values[rows]
        spec["mean"], spec["std"] = float(y[known].mean()), float(y[known].std() or 1.0)
        return [(y - spec["mean"]) / spec["std"]]
    codes = np.array(
        [np.nan if v is None else t.classes.index(v) for v in t.values[rows]], dtype=np.float64
    )
    counts = np.bincount(codes[known].astype(np.int64), minlength=len(t.classes))
    spec["prior"] = (counts / counts.sum()).tolist()
    return [codes]


def head_slices(specs: Sequence[Mapping[str, Any]]) -> list[HeadSlice]:
    """Return the loss's view of the targets.

    Parameters
    ----------
    specs : sequence of mapping
        The config's ``targets`` entries.

    Returns
    -------
    list of HeadSlice
        One per target.
    """
    return [
        HeadSlice(s["kind"], int(s["start"]), int(s["width"]), int(s["column"]), float(s["weight"]))
        for s in specs
    ]


def output_values(specs: Sequence[Mapping[str, Any]], logits: Sequence[torch.Tensor]) -> np.ndarray:
    """Turn the member networks' outputs into predictions, averaged over the members.

    Parameters
    ----------
    specs : sequence of mapping
        The config's ``targets`` entries.
    logits : sequence of torch.Tensor
        Each member's head outputs (rows x outputs).

    Returns
    -------
    numpy.ndarray
        Rows x outputs: class probabilities, numeric values, or survival risks (log relative
        hazard), each in its target's columns.
    """
    stacked = torch.stack(list(logits))
    out = np.zeros(tuple(stacked.shape[1:]))
    for s in specs:
        block = stacked[:, :, s["start"] : s["start"] + s["width"]]
        if s["kind"] == "classes":
            block = torch.softmax(block, dim=2)
        value = block.mean(0).numpy()
        if s["kind"] == "numeric":
            value = value * s["std"] + s["mean"]
        out[:, s["start"] : s["start"] + s["width"]] = value
    return out


def target_labels(mdata: md.MuData, specs: Sequence[Mapping[str, Any]]) -> pd.DataFrame | None:
    """Read the known values of each target from a cohort (None when it has none of them).

    Parameters
    ----------
    mdata : mudata.MuData
        A cohort.
    specs : sequence of mapping
        The config's ``targets`` entries.

    Returns
    -------
    pandas.DataFrame or None
        The targets' obs columns that the cohort has.
    """
    columns = [c for s in specs for c in s["columns"] if c in mdata.obs]
    return mdata.obs[columns].reset_index(drop=True) if columns else None


def prediction_columns(
    specs: Sequence[Mapping[str, Any]], values: np.ndarray, labels: pd.DataFrame | None
) -> dict[str, Any]:
    """Build the per-target columns of a prediction table.

    Parameters
    ----------
    specs : sequence of mapping
        The config's ``targets`` entries.
    values : numpy.ndarray
        `output_values` (NaN rows for samples with no modality).
    labels : pandas.DataFrame or None
        Known values, the targets' obs columns (see `target_labels`).

    Returns
    -------
    dict
        Column name -> values, in table order.
    """
    cols: dict[str, Any] = {}
    labels = labels if labels is not None else pd.DataFrame()
    for s in specs:
        name, block = s["name"], values[:, s["start"] : s["start"] + s["width"]]
        none = np.isnan(block).any(axis=1)
        if s["kind"] == "survival":
            for key, column in zip(("time", "event"), s["columns"], strict=True):
                if column in labels:
                    cols[f"{name}:{key}"] = labels[column].to_numpy(dtype=np.float64)
            cols[f"{name}:risk"] = block[:, 0]
            cols[f"{name}:risk_group"] = _risk_groups(block[:, 0], s.get("risk_cutpoints"), none)
            continue
        if s["columns"][0] in labels:
            raw = labels[s["columns"][0]]
            cols[f"{name}:label"] = [
                None if pd.isna(v) else (float(v) if s["kind"] == "numeric" else str(v))
                for v in raw
            ]
        if s["kind"] == "numeric":
            cols[f"{name}:predicted"] = block[:, 0]
            continue
        pred = np.array(
            [s["classes"][i] for i in np.nan_to_num(block, nan=0.0).argmax(axis=1)], dtype=object
        )
        pred[none] = None
        cols[f"{name}:predicted"] = pred
        for c, cls_name in enumerate(s["classes"]):
            cols[f"{name}:prob_{cls_name}"] = block[:, c]
    return cols


def _risk_groups(risk: np.ndarray, cuts: Sequence[float] | None, none: np.ndarray) -> list:
    if cuts is None:
        return [None] * len(risk)
    groups = np.searchsorted(np.asarray(cuts, dtype=np.float64), np.nan_to_num(risk))
    return [None if n else RISK_GROUPS[g] for g, n in zip(groups, none, strict=True)]


def risk_cutpoints(risk: np.ndarray) -> list[float]:
    """Return the tertiles of the training risk (the low / mid / high risk groups).

    Parameters
    ----------
    risk : numpy.ndarray
        Predicted risk of the training samples.

    Returns
    -------
    list of float
        Two cutpoints.
    """
    risk = risk[np.isfinite(risk)]
    return [float(q) for q in np.quantile(risk, [1 / 3, 2 / 3])] if len(risk) else [0.0, 0.0]


def target_metrics(table: pd.DataFrame, specs: Sequence[Mapping[str, Any]]) -> dict[str, dict]:
    """Score each target of a prediction table on its rows with a known value.

    Parameters
    ----------
    table : pandas.DataFrame
        A multi-target `predict` table.
    specs : sequence of mapping
        The config's ``targets`` entries.

    Returns
    -------
    dict of str to dict
        Per target: classes as `classification_metrics`, numeric as `regression_metrics`,
        survival ``c_index`` (Harrell), ``c_index_uno``, ``n``, ``events``; each with ``score``
        (1 - deviance / null deviance). A target without known values is left out.
    """
    out = {}
    for s in specs:
        name = s["name"]
        if s["kind"] == "survival":
            if f"{name}:time" not in table:
                continue
            found = survival_metrics(
                table[f"{name}:time"], table[f"{name}:event"], table[f"{name}:risk"]
            )
        elif f"{name}:label" not in table:
            continue
        else:
            found = _label_metrics(table, s)
        if found:
            out[name] = found
    return out


def _label_metrics(table: pd.DataFrame, s: Mapping[str, Any]) -> dict:
    name = s["name"]
    ok = table[f"{name}:label"].notna() & table[f"{name}:predicted"].notna()
    if not ok.any():
        return {}
    if s["kind"] == "numeric":
        out = regression_metrics(
            table.loc[ok, f"{name}:label"].astype(float),
            table.loc[ok, f"{name}:predicted"].astype(float),
        )
        out["score"] = out.get("r2")
        return out
    known = ok & table[f"{name}:label"].isin(s["classes"])
    proba = table.loc[known, [f"{name}:prob_{c}" for c in s["classes"]]].to_numpy()
    y = table.loc[known, f"{name}:label"].astype(str)
    out = classification_metrics(y, proba, s["classes"])
    prior = classification_metrics(y, np.tile(np.asarray(s["prior"]), (len(y), 1)), s["classes"])
    if out.get("log_loss") is not None and prior.get("log_loss"):
        out["score"] = 1.0 - float(out["log_loss"]) / float(prior["log_loss"])
    return out


def survival_metrics(time: Sequence[float], event: Sequence[float], risk: Sequence[float]) -> dict:
    """Compute the concordance indices and the common-scale score of survival risks.

    Parameters
    ----------
    time, event, risk : sequence of float
        Follow-up time, event (1 observed, 0 censored) and predicted risk per sample; rows with
        any NaN are left out.

    Returns
    -------
    dict
        ``c_index`` (Harrell's, `sksurv.metrics.concordance_index_censored`), ``c_index_uno``
        (`concordance_index_ipcw`, censoring estimated on the same rows), ``n``, ``events`` and
        ``score`` (1 - Cox partial log-likelihood / that of a constant risk); empty without an
        event.
    """
    from sksurv.metrics import concordance_index_ipcw
    from sksurv.util import Surv

    t, e, r = (np.asarray(v, dtype=np.float64) for v in (time, event, risk))
    ok = np.isfinite(t) & np.isfinite(e) & np.isfinite(r)
    t, e, r = t[ok], e[ok].astype(bool), r[ok]
    if not e.any():
        return {}
    out = {"n": int(len(t)), "events": int(e.sum())}
    out["c_index"] = harrell_c(e, t, r)
    try:
        y = Surv.from_arrays(e, t)
        out["c_index_uno"] = float(concordance_index_ipcw(y, y, r)[0])
    except ValueError:
        out["c_index_uno"] = None
    args = [torch.as_tensor(x) for x in (t, e.astype(np.float64))]
    model = float(cox_partial_nll(torch.as_tensor(r), *args))
    null = float(cox_partial_nll(torch.zeros(len(r), dtype=torch.float64), *args))
    out["score"] = 1.0 - model / null if null > 0 else None
    return out
