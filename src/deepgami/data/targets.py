"""Several phenotypes per cohort: classes, numeric values and survival (time, event) targets.

A cohort built with one label column keeps today's layout (`obs['label']`, no target table) and
every reader treats it as one target. A cohort built with several label columns, or with
survival columns, keeps each target's column(s) in `mdata.obs` under their own names and records
the targets in `mdata.uns['deepgami']['targets']`, a table of parallel lists (h5 keeps lists, not
lists of dicts)::

    {"name": ["cerad", "braak", "survival"], "kind": ["classes", "numeric", "survival"],
     "columns": ["cerad", "braak", "time,event"]}

A sample may lack some targets (an empty cell; for survival both cells empty): it trains the
others. `read_target_arrays` reads them as `TargetArrays` for fitting and scoring.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mudata as md
import numpy as np
import pandas as pd

from deepgami.errors import InputError

KINDS = ("classes", "numeric", "survival")
SURVIVAL_NAME = "survival"
RESERVED = ("split",)
# At least this many distinct numeric values make a numeric phenotype (one label or a target).
MIN_NUMERIC_LEVELS = 10
MISSING_TEXT = ("", "na", "nan")


@dataclass
class TargetSpec:
    """One target as asked for at build: its name and its column(s) of the label table.

    Parameters
    ----------
    name : str
        The target's name (its column; ``survival`` for a time-to-event target).
    columns : list of str
        One column, or ``[time, event]`` for survival.
    """

    name: str
    columns: list[str]

    @property
    def survival(self) -> bool:
        """Whether the target is a time-to-event one (two columns)."""
        return len(self.columns) == 2


@dataclass
class TargetArrays:
    """One target's values on every sample of a cohort.

    Parameters
    ----------
    name : str
        The target's name.
    kind : str
        ``classes``, ``numeric`` or ``survival``.
    columns : list of str
        Its obs column(s).
    values : numpy.ndarray
        Classes: object array of class names (None where missing); numeric: float (NaN where
        missing); survival: float (samples x 2: time, event; NaN where missing).
    classes : list of str
        Class names in order (classes targets only).
    """

    name: str
    kind: str
    columns: list[str]
    values: np.ndarray
    classes: list[str] = field(default_factory=list)

    def known(self) -> np.ndarray:
        """Tell, per sample, whether this target has a value.

        Returns
        -------
        numpy.ndarray
            Boolean per sample.
        """
        if self.kind == "classes":
            return np.array([v is not None for v in self.values], dtype=bool)
        if self.kind == "survival":
            return ~np.isnan(self.values).any(axis=1)
        return ~np.isnan(self.values)

    @property
    def width(self) -> int:
        """The network outputs of this target (classes: one per class; else one)."""
        return len(self.classes) if self.kind == "classes" else 1


def target_specs(
    label_column: str | Sequence[str] | None, survival_columns: str | Sequence[str] | None
) -> list[TargetSpec] | None:
    """Turn build's label and survival options into target specs.

    Parameters
    ----------
    label_column : str, sequence of str or None
        One column, ``"a,b,c"`` or a list; None for none (a survival-only cohort).
    survival_columns : str, sequence of str or None
        ``"time,event"`` or ``[time, event]``; None for no survival target.

    Returns
    -------
    list of TargetSpec or None
        None for the one-label layout of old (one label column, no survival), else the targets.

    Raises
    ------
    InputError
        When survival columns are not two, no target is given, or a name repeats or is reserved.
    """
    labels = split_names(label_column)
    survival = split_names(survival_columns)
    if not survival and len(labels) == 1:
        return None
    if survival_columns is not None and len(survival) != 2:
        raise InputError(
            None, f"--survival-columns takes two columns, time,event (got '{survival_columns}')"
        )
    specs = [TargetSpec(name, [name]) for name in labels]
    if survival:
        specs.append(TargetSpec(SURVIVAL_NAME, survival))
    if not specs:
        raise InputError(None, "no target: give --label-column or --survival-columns")
    names = [s.name for s in specs]
    columns = [c for s in specs for c in s.columns]
    for name in set(columns) | set(names):
        if name in RESERVED:
            raise InputError(None, f"target column '{name}' is a reserved name; rename it")
    if len(set(columns)) != len(columns) or len(set(names)) != len(names):
        raise InputError(None, f"a target column is given twice ({', '.join(columns)})")
    return specs


def split_names(value: str | Sequence[str] | None) -> list[str]:
    """Split ``"a,b"`` (or a list) into stripped, non-empty names.

    Parameters
    ----------
    value : str, sequence of str or None
        The names.

    Returns
    -------
    list of str
        The names (empty for None).
    """
    if value is None:
        return []
    parts = value.split(",") if isinstance(value, str) else list(value)
    return [str(p).strip() for p in parts if str(p).strip()]


def target_table(
    table: pd.DataFrame, specs: Sequence[TargetSpec], path: Path | None
) -> pd.DataFrame:
    """Pick the targets' columns of a label table (strings, indexed by sample).

    Parameters
    ----------
    table : pandas.DataFrame
        The label table, indexed by sample.
    specs : sequence of TargetSpec
        The targets.
    path : pathlib.Path or None
        The labels file, named in errors.

    Returns
    -------
    pandas.DataFrame
        The targets' columns as stripped strings ("" where empty), and ``split`` if present.

    Raises
    ------
    InputError
        When a column is missing.
    """
    out = pd.DataFrame(index=table.index)
    for column in [c for s in specs for c in s.columns]:
        if column not in table.columns:
            raise InputError(
                path,
                f"no column '{column}' (columns: {', '.join(map(str, table.columns))}); "
                "set --label-column/--survival-columns",
            )
        out[column] = table[column].fillna("").astype(str).str.strip().to_numpy()
    if "split" in table.columns:
        out["split"] = table["split"].to_numpy()
    return out


def set_targets(
    mdata: md.MuData, table: pd.DataFrame, specs: Sequence[TargetSpec], path: Path | None
) -> dict[str, Any]:
    """Store each target's column(s) in `mdata.obs` and the target table in `uns`.

    Parameters
    ----------
    mdata : mudata.MuData
        The cohort being built (its obs in `table`'s order).
    table : pandas.DataFrame
        The targets' columns as strings (`target_table`), rows in `mdata.obs_names` order.
    specs : sequence of TargetSpec
        The targets.
    path : pathlib.Path or None
        The labels file, named in errors.

    Returns
    -------
    dict
        Per target, what the build report prints (kind, classes or range, samples with a value).

    Raises
    ------
    InputError
        No sample has any target, a target has no value or a single class, a survival time is
        not a non-negative number, an event is not 0/1, or no event is observed.
    """
    missing = pd.DataFrame(
        {c: table[c].str.lower().isin(MISSING_TEXT) for s in specs for c in s.columns}
    )
    if missing.all(axis=None) or missing.all(axis=1).all():
        raise InputError(path, "every target is missing for every sample; nothing to train on")
    kinds, summary = [], {}
    for spec in specs:
        if spec.survival:
            kind, info = _set_survival(mdata, table, spec, missing, path)
        else:
            kind, info = _set_label(mdata, table[spec.name], spec.name, missing[spec.name], path)
        kinds.append(kind)
        summary[spec.name] = info
    uns = mdata.uns.setdefault("deepgami", {})
    uns["targets"] = {
        "name": [s.name for s in specs],
        "kind": kinds,
        "columns": [",".join(s.columns) for s in specs],
    }
    return summary


def _set_label(
    mdata: md.MuData, raw: pd.Series, name: str, missing: pd.Series, path: Path | None
) -> tuple[str, dict]:
    """One classes or numeric target into obs[name]; returns its kind and report line."""
    given = raw[~missing]
    if len(given) == 0:
        raise InputError(path, f"target '{name}' has no value for any sample with data")
    kind, found = phenotype_kind(given, f"target '{name}'", "samples with a value", path)
    if kind == "numeric":
        values = np.full(len(raw), np.nan)
        values[~missing.to_numpy()] = found.to_numpy(dtype=np.float64)
        mdata.obs[name] = values
        return "numeric", {"kind": "numeric", "n": len(given), "min": float(found.min())}
    values = raw.where(~missing, None).to_numpy(dtype=object)  # found: the samples per class
    mdata.obs[name] = pd.Categorical(values, categories=list(found.index))
    return "classes", {"kind": "classes", "n": len(given), **found.astype(int).to_dict()}


def phenotype_kind(
    given: pd.Series, what: str, among: str, path: Path | None
) -> tuple[str, pd.Series]:
    """Tell whether known phenotype values are numeric or classes (one label or one target).

    Numeric: every value a number and at least MIN_NUMERIC_LEVELS distinct ones.

    Parameters
    ----------
    given : pandas.Series
        The known values, as strings.
    what : str
        The phenotype as errors name it (``label column``, ``target 'x'``).
    among : str
        The samples counted, as errors name them.
    path : pathlib.Path or None
        The labels file, named in errors.

    Returns
    -------
    tuple of (str, pandas.Series)
        ``("numeric", values as numbers)`` or ``("classes", samples per class, sorted)``.

    Raises
    ------
    InputError
        When the values hold a single class.
    """
    numeric = pd.to_numeric(given, errors="coerce")
    if numeric.notna().all() and numeric.nunique() >= MIN_NUMERIC_LEVELS:
        return "numeric", numeric
    counts = given.value_counts().sort_index()
    if len(counts) < 2:
        raise InputError(
            path,
            f"{what} has a single class '{counts.index[0]}' among the {len(given)} {among}; "
            "need at least two",
        )
    return "classes", counts


def _set_survival(
    mdata: md.MuData,
    table: pd.DataFrame,
    spec: TargetSpec,
    missing: pd.DataFrame,
    path: Path | None,
) -> tuple[str, dict]:
    """A survival target into obs[time] (float) and obs[event] (0/1 float, NaN where missing)."""
    time_col, event_col = spec.columns
    half = missing[time_col] != missing[event_col]
    if half.any():
        raise InputError(
            path,
            f"sample {table.index[half.to_numpy()][0]} has only one of '{time_col}' and "
            f"'{event_col}'; give both or neither",
        )
    have = ~missing[time_col].to_numpy()
    if not have.any():
        raise InputError(path, f"target '{spec.name}' has no value for any sample with data")
    time = pd.to_numeric(table[time_col][have], errors="coerce")
    bad = time.isna() | (time < 0)
    if bad.any():
        sample = time.index[bad.to_numpy()][0]
        raise InputError(
            path,
            f"survival time column '{time_col}' has a value that is not a non-negative number "
            f"('{table.loc[sample, time_col]}', sample {sample})",
        )
    event = table[event_col][have]
    wrong = ~event.isin(["0", "1", "0.0", "1.0"])
    if wrong.any():
        sample = event.index[wrong.to_numpy()][0]
        raise InputError(
            path,
            f"survival event column '{event_col}' must be 0 or 1 "
            f"(sample {sample} has '{event[sample]}')",
        )
    events = event.astype(float).to_numpy()
    if events.sum() == 0:
        raise InputError(path, f"survival event column '{event_col}' has no event (all 0)")
    for column, values in ((time_col, time.to_numpy(dtype=np.float64)), (event_col, events)):
        full = np.full(len(table), np.nan)
        full[have] = values
        mdata.obs[column] = full
    return "survival", {"kind": "survival", "n": int(have.sum()), "events": int(events.sum())}


def target_records(mdata: md.MuData) -> list[dict[str, Any]] | None:
    """Read the target table of a cohort.

    Parameters
    ----------
    mdata : mudata.MuData
        A cohort.

    Returns
    -------
    list of dict or None
        ``{"name", "kind", "columns"}`` per target; None for a one-label cohort (``obs['label']``).
    """
    table = mdata.uns.get("deepgami", {}).get("targets")
    if table is None:
        return None
    return [
        {"name": str(n), "kind": str(k), "columns": str(c).split(",")}
        for n, k, c in zip(table["name"], table["kind"], table["columns"], strict=True)
    ]


def read_target_arrays(mdata: md.MuData) -> list[TargetArrays] | None:
    """Read every target of a multi-target cohort as arrays.

    Parameters
    ----------
    mdata : mudata.MuData
        A cohort.

    Returns
    -------
    list of TargetArrays or None
        None for a one-label cohort.

    Raises
    ------
    InputError
        When a recorded target's column is not in `mdata.obs`.
    """
    records = target_records(mdata)
    if records is None:
        return None
    out = []
    for rec in records:
        for column in rec["columns"]:
            if column not in mdata.obs:
                raise InputError(None, f"target '{rec['name']}': no column '{column}' in obs")
        out.append(_target_arrays(mdata.obs, rec))
    return out


def _target_arrays(obs: pd.DataFrame, rec: dict[str, Any]) -> TargetArrays:
    kind, columns = rec["kind"], rec["columns"]
    if kind == "survival":
        values = obs[columns].to_numpy(dtype=np.float64)
        return TargetArrays(rec["name"], kind, columns, values)
    raw = obs[columns[0]]
    if kind == "numeric":
        return TargetArrays(rec["name"], kind, columns, raw.to_numpy(dtype=np.float64))
    classes = (
        [str(c) for c in raw.cat.categories]
        if isinstance(raw.dtype, pd.CategoricalDtype)
        else sorted({str(v) for v in raw if not pd.isna(v)})
    )
    values = np.array([None if pd.isna(v) else str(v) for v in raw], dtype=object)
    return TargetArrays(rec["name"], kind, columns, values, classes)
