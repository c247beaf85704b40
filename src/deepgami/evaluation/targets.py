"""Evaluating a cohort of several targets (or one survival target), one target at a time.

DeepGAMI is fitted once per split on every target (the multi-task model `deepgami train` fits);
its held-out table is cut into one prediction frame per target. The baselines are fitted per
target, on the training rows where that target is known. Everything after the fits (summaries,
paired intervals, KS tests, the verdict, the report) runs on one target at a time through a
one-label view of the cohort (`target_view`), so a target is compared exactly as a one-label
cohort of the same values would be.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np
import pandas as pd

# The one-label task each kind of target is scored as.
TASKS = {"classes": "classification", "numeric": "regression", "survival": "survival"}


def target_view(data: Any, name: str) -> Any:
    """Return the cohort arrays with target `name` as their one label.

    Parameters
    ----------
    data : CohortArrays
        A cohort with targets (`data.targets` not None).
    name : str
        The target.

    Returns
    -------
    CohortArrays
        The same arrays with `labels`, `task` and `classes` of the target and no `targets`;
        a survival target's labels are its (time, event) matrix.
    """
    t = find_target(data, name)
    return dataclasses.replace(
        data, labels=t.values, task=TASKS[t.kind], classes=list(t.classes), targets=None
    )


def find_target(data: Any, name: str) -> Any:
    """Return the `TargetArrays` of target `name`.

    Parameters
    ----------
    data : CohortArrays
        A cohort with targets.
    name : str
        The target.

    Returns
    -------
    TargetArrays
        The target's values.
    """
    return next(t for t in data.targets if t.name == name)


def known_rows(data: Any, name: str, rows: np.ndarray) -> np.ndarray:
    """Return the rows of `rows` where target `name` has a value.

    Parameters
    ----------
    data : CohortArrays
        A cohort with targets.
    name : str
        The target.
    rows : numpy.ndarray
        Row positions.

    Returns
    -------
    numpy.ndarray
        The subset of `rows`, in order.
    """
    return rows[find_target(data, name).known()[rows]]


def value_columns(task: str, classes: list[str]) -> list[str]:
    """Return the prediction columns a task's metrics read.

    Parameters
    ----------
    task : str
        ``classification``, ``regression`` or ``survival``.
    classes : list of str
        The class names (classification).

    Returns
    -------
    list of str
        ``prob_<class>`` per class, ``predicted``, or ``risk``.
    """
    if task == "classification":
        return [f"prob_{c}" for c in classes]
    return ["risk"] if task == "survival" else ["predicted"]


def target_predictions(table: pd.DataFrame, t: Any) -> pd.DataFrame:
    """Cut one target's one-label prediction frame from a multi-target prediction table.

    Parameters
    ----------
    table : pandas.DataFrame
        A multi-target `predict` table (``sample`` and ``<target>:...`` columns).
    t : TargetArrays
        The target.

    Returns
    -------
    pandas.DataFrame
        ``sample``, ``label`` and the target's value columns (`value_columns`; survival also
        ``time`` and ``event``, ``label`` empty), on the rows where the target is known.
    """
    n = t.name
    if t.kind == "survival":
        frame = pd.DataFrame(
            {
                "sample": table["sample"].to_numpy(),
                "label": None,
                "time": table[f"{n}:time"].to_numpy(np.float64),
                "event": table[f"{n}:event"].to_numpy(np.float64),
                "risk": table[f"{n}:risk"].to_numpy(np.float64),
            }
        )
        return frame[np.isfinite(frame["time"]) & np.isfinite(frame["event"])]
    frame = pd.DataFrame({"sample": table["sample"].to_numpy(), "label": table[f"{n}:label"]})
    for col in value_columns(TASKS[t.kind], list(t.classes)):
        frame[col] = table[f"{n}:{col}"].to_numpy(np.float64)
    return frame[frame["label"].notna()]


def for_target(outcome: Any, name: str) -> Any:
    """Return the part of a run's outcome that concerns target `name`.

    Parameters
    ----------
    outcome : RunOutcome
        The outcome of every unit (records and prediction frames carry a ``target``; the
        imputation R^2 rows, None: they belong to every target).
    name : str
        The target.

    Returns
    -------
    RunOutcome
        The same outcome without the other targets' units, records and frames, and without the
        ``target`` field.
    """
    results = []
    for res in outcome.results:
        if res.target not in (None, name):
            continue
        records = [
            {k: v for k, v in r.items() if k != "target"}
            for r in res.records
            if r.get("target") in (None, name)
        ]
        frames = [f.drop(columns="target") for f in res.predictions if name in set(f["target"])]
        results.append(dataclasses.replace(res, records=records, predictions=frames))
    return dataclasses.replace(outcome, results=results)


def with_target(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Return `frame` with a first column ``target`` holding `name`.

    Parameters
    ----------
    frame : pandas.DataFrame
        A table of one target.
    name : str
        The target.

    Returns
    -------
    pandas.DataFrame
        A copy with the column inserted.
    """
    out = frame.copy()
    out.insert(0, "target", name)
    return out


def target_dirs(names: list[str]) -> dict[str, str]:
    """Name each target's output folder after the target.

    Characters other than letters, digits, ``.``, ``_`` and ``-`` are replaced, and a number is
    added where two names would clash.

    Parameters
    ----------
    names : list of str
        The targets.

    Returns
    -------
    dict of str to str
        The folder name of each target.
    """
    out: dict[str, str] = {}
    for k, name in enumerate(names):
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip(".") or "target"
        out[name] = safe if safe not in out.values() else f"{safe}_{k + 1}"
    return out
