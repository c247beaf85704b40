"""`build_cohort`: a cohort MuData from in-memory AnnData / DataFrames or from file paths
(anything `deepgami build` reads), in one call. `deepgami build` calls it too;
`deepgami.data.cohort.assemble_cohort` is its validated in-memory step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd

from deepgami.data import cohort
from deepgami.data.readers import label_frame, read_labels, read_matrix, read_prior, read_table
from deepgami.data.targets import TargetSpec, split_names, target_specs, target_table
from deepgami.errors import InputError

MatrixLike = ad.AnnData | pd.DataFrame | str | Path
TableLike = pd.DataFrame | str | Path


def build_cohort(
    modalities: Mapping[str, MatrixLike],
    labels: TableLike | pd.Series,
    priors: Mapping[str, TableLike] | None = None,
    *,
    sample_column: str = "sample",
    label_column: str | Sequence[str] | None = "label",
    split_column: str | None = "split",
    survival_columns: str | Sequence[str] | None = None,
    missing: str = "error",
    prefix: bool = False,
    test_fraction: float | None = None,
    split_seed: int = 0,
    split_fallback: bool = False,
    return_report: bool = False,
) -> md.MuData | tuple[md.MuData, cohort.BuildReport]:
    """Assemble a cohort (one MuData) from modalities, labels and prior edge lists.

    Parameters
    ----------
    modalities : mapping of str to AnnData, DataFrame, str or Path
        Modality name -> samples x features data: an AnnData, a DataFrame (index = sample ids,
        columns = feature names) or a path to a CSV/TSV/Parquet/h5ad/genotype file.
    labels : pandas.DataFrame, pandas.Series, str or pathlib.Path
        A DataFrame indexed by sample (or with `sample_column`) holding `label_column` and
        optionally `split_column`; a Series of labels indexed by sample; or a path to such a table.
    priors : mapping of str to DataFrame, str or Path, or None, default None
        ``"<modality>:<name>"`` -> an edge list with ``source`` and ``target`` columns
        (DataFrame or path).
    sample_column : str, default "sample"
        Column of `labels` holding the sample ids (as `deepgami build`'s option).
    label_column : str, sequence of str or None, default "label"
        Column of `labels` holding the labels (as `deepgami build`'s option); several columns
        (``"a,b"`` or a list) make one target each, stored under their own names with the
        targets recorded in ``uns['deepgami']['targets']`` (`deepgami.data.targets`); None with
        `survival_columns` only.
    split_column : str or None, default "split"
        Column of `labels` holding the optional split (as `deepgami build`'s option).
    survival_columns : str, sequence of str or None, default None
        ``"time,event"``: a time-to-event target named ``survival`` (event 1 = observed, 0 =
        censored), alone or beside the label columns.
    missing : {"error", "mean", "drop-feature"}, default "error"
        NaN/inf policy of matrices read from files: ``error``, ``mean`` or ``drop-feature``.
    prefix : bool, default False
        Name features ``<modality>:<feature>`` (when names collide across modalities).
    test_fraction : float or None, default None
        Without a split column: draw a stratified train/test split (None: no split column).
    split_seed : int, default 0
        The random seed of a drawn split.
    split_fallback : bool, default False
        The split is a convenience, not asked for: when it cannot be drawn (a tiny cohort),
        build without one and record why in ``uns['deepgami']['split']['reason']``.
    return_report : bool, default False
        Also return the :class:`~deepgami.data.cohort.BuildReport` (what was kept and dropped).

    Returns
    -------
    mudata.MuData or tuple of (mudata.MuData, BuildReport)
        One AnnData per modality, ``obs['label']`` (and ``obs['split']``), priors in ``varp``;
        with `return_report`, the report too.

    Raises
    ------
    InputError
        A one-line message naming the file (or modality) and the problem.

    Examples
    --------
    >>> mdata = dg.build_cohort({"rna": rna_df, "meth": "meth.csv"}, "labels.csv")  # doctest: +SKIP
    """
    specs = target_specs(label_column, survival_columns)
    if specs is None and not isinstance(label_column, str):
        label_column = split_names(label_column)[0]
    columns = (sample_column, label_column, split_column)
    inputs = _read_inputs(modalities, labels, priors or {}, columns, missing, specs)
    mdata, report = cohort.assemble_cohort(
        **inputs,
        targets=specs,
        prefix=prefix,
        test_fraction=test_fraction,
        split_seed=split_seed,
        split_fallback=split_fallback,
    )
    return (mdata, report) if return_report else mdata


def _read_inputs(
    modalities: Mapping[str, MatrixLike],
    labels: TableLike | pd.Series,
    priors: Mapping[str, TableLike],
    columns: tuple[str, Any, str | None],
    missing: str,
    specs: list[TargetSpec] | None = None,
) -> dict[str, Any]:
    """Labels, priors and matrices read (in that order) as `assemble_cohort`'s keyword arguments."""
    if specs is None:
        table, labels_path = _label_input(labels, *columns)
    else:
        table, labels_path = _target_input(labels, columns[0], columns[2], specs)
    prior_inputs = [_prior_input(key, edges, modalities) for key, edges in priors.items()]
    matrices, paths, reports = _matrices(modalities, prior_inputs, missing)
    return {
        "modalities": matrices,
        "labels": table,
        "priors": prior_inputs,
        "paths": paths,
        "labels_path": labels_path,
        "read_reports": reports or None,
    }


def _label_input(
    labels: TableLike | pd.Series, sample_column: str, label_column: str, split_column: str | None
) -> tuple[pd.DataFrame, Path | None]:
    """The labels as a table indexed by sample, and their file (None in memory)."""
    labels_path = Path(labels) if isinstance(labels, (str, Path)) else None
    if labels_path is not None:
        return read_labels(labels_path, sample_column, label_column, split_column), labels_path
    return _label_table(labels, sample_column, label_column, split_column), None


def _target_input(
    labels: TableLike | pd.Series,
    sample_column: str,
    split_column: str | None,
    specs: list[TargetSpec],
) -> tuple[pd.DataFrame, Path | None]:
    """Several targets: their columns of the label table, indexed by sample, and its file."""
    first = specs[0].columns[0]
    labels_path = Path(labels) if isinstance(labels, (str, Path)) else None
    if labels_path is not None:
        raw = read_table(labels_path, "labels")  # once: the label frame and the targets' columns
        table = label_frame(raw, labels_path, sample_column, first, split_column)
        raw = raw.set_index(sample_column)
        raw.index = raw.index.str.strip()
    else:
        if isinstance(labels, pd.Series):
            raise InputError(None, "labels: several targets need a DataFrame, not a Series")
        table = _label_table(labels, sample_column, first, split_column)
        raw = labels.set_index(sample_column) if sample_column in labels.columns else labels
        raw = raw.set_axis(raw.index.astype(str))
    out = target_table(raw.loc[table.index], specs, labels_path)
    if "split" in table:
        out["split"] = table["split"].to_numpy()
    return out, labels_path


def _prior_input(
    key: str, edges: TableLike, modalities: Mapping[str, MatrixLike]
) -> cohort.PriorInput:
    """One ``"<modality>:<name>"`` prior, read from its file when it is a path."""
    path = Path(edges) if isinstance(edges, (str, Path)) else None
    if ":" not in key:
        raise InputError(path, f"prior key '{key}' is not of the form MODALITY:NAME")
    modality, name = key.split(":", 1)
    if modality not in modalities:
        raise InputError(
            path,
            f"prior '{name}' names modality '{modality}', which is not one of: "
            f"{', '.join(modalities)}",
        )
    table = read_prior(path) if path is not None else _edge_table(edges, key)
    return cohort.PriorInput(modality, name, table, path)


def _matrices(
    modalities: Mapping[str, MatrixLike], priors: list[cohort.PriorInput], missing: str
) -> tuple[dict[str, ad.AnnData], dict[str, Path], dict[str, dict]]:
    """Each modality as an AnnData, with the file it came from and the reader's report."""
    matrices, paths, reports = {}, {}, {}
    for name, value in modalities.items():
        if isinstance(value, (str, Path)):
            # Genotype files read only SNPs that some prior connects (memory follows the prior).
            sources = {s for p in priors if p.modality == name for s in p.edges["source"]} or None
            matrices[name], reports[name] = read_matrix(
                value, missing=missing, keep_features=sources
            )
            paths[name] = Path(value)
        else:
            matrices[name] = _as_anndata(value, name)
    return matrices, paths, reports


def _as_anndata(value: ad.AnnData | pd.DataFrame, name: str) -> ad.AnnData:
    if isinstance(value, ad.AnnData):
        return value.copy()
    if isinstance(value, pd.DataFrame):
        try:
            X = value.to_numpy(dtype=np.float32)
        except (TypeError, ValueError):
            raise InputError(
                None, f"modality '{name}': the DataFrame holds non-numeric values"
            ) from None
        return ad.AnnData(
            X,
            obs=pd.DataFrame(index=value.index.astype(str)),
            var=pd.DataFrame(index=value.columns.astype(str)),
        )
    raise InputError(
        None,
        f"modality '{name}': expected an AnnData, a DataFrame or a path, not {type(value).__name__}",
    )


def _label_table(
    labels: pd.DataFrame | pd.Series,
    sample_column: str,
    label_column: str,
    split_column: str | None,
) -> pd.DataFrame:
    if isinstance(labels, pd.Series):
        labels = labels.rename(label_column).to_frame()
    if not isinstance(labels, pd.DataFrame):
        raise InputError(
            None, f"labels: expected a DataFrame, a Series or a path, not {type(labels).__name__}"
        )
    if sample_column in labels.columns:
        labels = labels.set_index(sample_column)
    if label_column not in labels.columns:
        raise InputError(
            None,
            f"labels: no column '{label_column}' (columns: {', '.join(map(str, labels.columns))})",
        )
    out = pd.DataFrame(
        {cohort.LABEL: labels[label_column].to_numpy()},
        index=pd.Index(labels.index.astype(str), name="sample"),
    )
    if split_column is not None and split_column in labels.columns:
        out[cohort.SPLIT] = labels[split_column].astype(str).to_numpy()
    if out.index.has_duplicates:
        raise InputError(None, "labels: duplicate sample ids")
    return out


def _edge_table(edges: pd.DataFrame, key: str) -> pd.DataFrame:
    if not isinstance(edges, pd.DataFrame) or not {"source", "target"} <= set(edges.columns):
        raise InputError(
            None, f"prior '{key}': expected a table with 'source' and 'target' columns, or a path"
        )
    table = edges.copy()
    table["source"] = table["source"].astype(str).str.strip()
    table["target"] = table["target"].astype(str).str.strip()
    return table
