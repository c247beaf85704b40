"""Readers for the files users bring: feature matrices, label tables and prior edge lists.

Every reader validates what it reads and raises :class:`~deepgami.errors.InputError` with a
one-line message naming the file and the problem; nothing here writes files.
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from typing import Literal

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from deepgami.data import genotypes
from deepgami.errors import InputError
from deepgami.utils import examples as _examples

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".txt": "\t"}
MATRIX_SUFFIXES = (*TABLE_SUFFIXES, ".parquet", ".pq", ".h5ad")
MissingPolicy = Literal["error", "mean", "drop-feature"]
MISSING_POLICIES: tuple[str, ...] = ("error", "mean", "drop-feature")


def _suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-2:] in ([".csv", ".gz"], [".tsv", ".gz"], [".txt", ".gz"]):
        return suffixes[-2]
    return suffixes[-1] if suffixes else ""


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(path, "file not found")
    if path.is_dir():
        raise InputError(path, "is a directory, expected a file")
    if path.stat().st_size == 0:
        raise InputError(path, "file is empty")


def read_table(path: str | Path, what: str) -> pd.DataFrame:
    """Read a small CSV/TSV (labels, priors) as strings, with one-line errors.

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.csv``, ``.tsv`` or ``.txt`` table.
    what : str
        What the table holds, named in errors (``labels``, ``prior``).

    Returns
    -------
    pandas.DataFrame
        Every cell a string.
    """
    return _read_table(Path(path), what)


def _read_table(path: Path, what: str) -> pd.DataFrame:
    """Read a small CSV/TSV (labels, priors) as strings, with useful errors."""
    _check_file(path)
    sep = TABLE_SUFFIXES.get(_suffix(path))
    if sep is None:
        raise InputError(
            path, f"unknown {what} format '{path.suffix}' (expected .csv, .tsv or .txt)"
        )
    try:
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(path, f"cannot parse {what} table: {str(err).splitlines()[0]}") from None
    if table.shape[0] == 0:
        raise InputError(path, f"{what} table has a header but no rows")
    table.columns = [str(c).strip() for c in table.columns]
    return table


def read_matrix(
    path: str | Path,
    missing: MissingPolicy = "error",
    keep_features: set[str] | None = None,
) -> tuple[ad.AnnData, dict]:
    """Read a samples x features matrix (CSV, TSV, Parquet, h5ad or a genotype file).

    Returns the AnnData (float32, or int8 for integer dosages in 0..2) and a report dict
    (`missing_values`, `dropped_features`, `policy`). `keep_features` restricts genotype files to
    those SNPs while reading (prior sources), so memory follows the kept SNPs.

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.csv``, ``.tsv``, ``.txt`` (optionally gzipped), ``.parquet``, ``.pq`` or ``.h5ad``
        matrix, or a genotype file (see :func:`deepgami.data.genotypes.read_genotypes`).
    missing : {"error", "mean", "drop-feature"}, default "error"
        What to do with missing values: refuse them, fill each feature's with its mean over the
        observed values, or drop the features that have any.
    keep_features : set of str or None, default None
        For a genotype file, read only these SNPs; ignored for other matrices.

    Returns
    -------
    anndata.AnnData
        Samples x features, float32 or int8.
    dict
        The missing-value report: ``missing_values``, ``dropped_features`` and ``policy``.

    Raises
    ------
    InputError
        When the file is missing, empty, of an unknown format or cannot be parsed, or has
        missing values that `missing` refuses.
    """
    path = Path(path)
    if missing not in MISSING_POLICIES:
        raise InputError(
            path, f"unknown missing-value policy '{missing}' (choose {', '.join(MISSING_POLICIES)})"
        )
    _check_file(path)

    if genotypes.is_genotype_path(path):
        adata = genotypes.read_genotypes(path, keep_snps=keep_features, missing=missing)
        info = adata.uns.get("genotypes", {})
        return adata, {
            "missing_values": int(info.get("missing_values", 0)),
            "dropped_features": list(info.get("dropped_features", [])),
            "policy": missing,
        }

    suffix = _suffix(path)
    if suffix in TABLE_SUFFIXES:
        frame = _read_delimited(path, TABLE_SUFFIXES[suffix])
    elif suffix in (".parquet", ".pq"):
        frame = _read_parquet(path)
    elif suffix == ".h5ad":
        return _finish(_read_h5ad(path), path, missing)
    else:
        raise InputError(
            path,
            f"unknown format '{path.suffix}' (expected {', '.join(MATRIX_SUFFIXES)} or a genotype file: {', '.join(genotypes.GENOTYPE_SUFFIXES)})",
        )
    return _finish(_frame_to_anndata(frame, path), path, missing)


def _read_delimited(path: Path, sep: str) -> pd.DataFrame:
    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rt", newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle, delimiter=sep), None)
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError):
        raise InputError(path, "not a text table (cannot decode as UTF-8)") from None
    if not header or all(not h.strip() for h in header):
        raise InputError(path, "file is empty")
    if len(header) < 2:
        raise InputError(
            path,
            f"needs a sample id column and at least one feature column (is it {'tab' if sep == chr(9) else 'comma'}-separated?)",
        )
    if any(not h.strip() for h in header[1:]):
        raise InputError(
            path,
            f"empty feature name in the header (column {[h.strip() for h in header].index('', 1) + 1})",
        )
    _check_unique(path, header[1:], "feature names")
    # pyarrow parses straight into float32 with bounded buffers: a 2,000 x 100,000 dosage table
    # reads in ~30 s under 3 GB, where pandas' C parser needs > 4 GB of token buffers.
    # Columns by position: the sample column's header may equal a feature name (e.g. both "0").
    names = [f"c{j}" for j in range(len(header))]
    types = {name: pa.float32() for name in names[1:]}
    types[names[0]] = pa.string()
    try:
        table = pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(block_size=1 << 26, column_names=names, skip_rows=1),
            parse_options=pa_csv.ParseOptions(delimiter=sep),
            convert_options=pa_csv.ConvertOptions(column_types=types, strings_can_be_null=False),
        )
    except pa.ArrowInvalid as err:
        if "conversion error" in str(err):
            return _locate_bad_cell(path, sep, header)
        raise InputError(path, f"cannot parse table: {str(err).splitlines()[0]}") from None
    if table.num_rows == 0:
        raise InputError(path, "table has a header but no rows")
    x = np.empty((table.num_rows, table.num_columns - 1), dtype=np.float32)
    for j in range(1, table.num_columns):
        x[:, j - 1] = table.column(j).to_numpy()
    index = pd.Index(table.column(0).to_pylist(), dtype=object)
    del table
    return pd.DataFrame(x, index=index, columns=header[1:], copy=False)


def _locate_bad_cell(path: Path, sep: str, header: list[str]) -> pd.DataFrame:
    """Slow path after the float32 parse failed: find the first non-numeric cell to report it."""
    try:
        frame = pd.read_csv(path, sep=sep, dtype=str, index_col=0, keep_default_na=False)
    except (pd.errors.ParserError, csv.Error) as err:
        raise InputError(path, f"cannot parse table: {str(err).splitlines()[0]}") from None
    _frame_to_anndata_checks(frame, path)
    for position, column in enumerate(frame.columns):
        values = frame.iloc[:, position].str.strip()
        numeric = pd.to_numeric(
            values.replace({"": "nan", "NA": "nan", "NaN": "nan"}), errors="coerce"
        )
        bad = (numeric.isna() & ~values.isin(["", "NA", "NaN", "nan", "na"])).to_numpy()
        if bad.any():
            row = int(bad.argmax())
            raise InputError(
                path,
                f"non-numeric value {values.iloc[row]!r} in column '{column}' (sample '{frame.index[row]}')",
            )
    raise InputError(path, "cannot parse table as numbers")


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises many types for corrupt files
        raise InputError(path, f"cannot read Parquet: {str(err).splitlines()[0]}") from None
    if frame.shape[1] == 0 or frame.shape[0] == 0:
        raise InputError(path, "file has no rows or columns")
    if not isinstance(frame.index, pd.RangeIndex):
        frame = frame.reset_index()
    frame = frame.set_index(frame.columns[0])
    frame.index = frame.index.astype(str)
    _check_unique(path, [str(c) for c in frame.columns], "feature names")
    bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        column = bad[0]
        numeric = pd.to_numeric(frame[column], errors="coerce")
        sample = frame.index[(numeric.isna() & frame[column].notna()).argmax()]
        raise InputError(
            path,
            f"non-numeric value {frame.at[sample, column]!r} in column '{column}' (sample '{sample}')",
        )
    return frame.astype(np.float32)


def _read_h5ad(path: Path) -> ad.AnnData:
    try:
        adata = ad.read_h5ad(path)
    except Exception as err:  # h5py/anndata raise many types for corrupt files
        raise InputError(path, f"cannot read h5ad: {str(err).splitlines()[0]}") from None
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InputError(path, "file has no samples or features")
    _check_unique(path, adata.obs_names, "sample ids")
    _check_unique(path, adata.var_names, "feature names")
    x = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    if not np.issubdtype(x.dtype, np.number):
        raise InputError(path, "matrix X is not numeric")
    adata.X = x if x.dtype in (np.int8, np.float32) else x.astype(np.float32)
    return adata


def _frame_to_anndata_checks(frame: pd.DataFrame, path: Path) -> pd.Index:
    if frame.shape[0] == 0:
        raise InputError(path, "table has a header but no rows")
    index = frame.index.astype(str)
    if index.isin(["", "nan"]).any():
        raise InputError(path, "empty sample id in the first column")
    _check_unique(path, index, "sample ids")
    return index


def _frame_to_anndata(frame: pd.DataFrame, path: Path) -> ad.AnnData:
    index = _frame_to_anndata_checks(frame, path)
    adata = ad.AnnData(X=frame.to_numpy(dtype=np.float32, copy=False))
    adata.obs_names = pd.Index(index, name=None)
    adata.var_names = pd.Index([str(c) for c in frame.columns])
    return adata


def _check_unique(path: Path, names, what: str) -> None:
    names = pd.Index(names)
    if names.has_duplicates:
        dup = names[names.duplicated()].unique()
        raise InputError(path, f"duplicate {what}: {_examples(dup)}")


def _finish(adata: ad.AnnData, path: Path, missing: MissingPolicy) -> tuple[ad.AnnData, dict]:
    """Apply the missing-value policy, then store integer dosages compactly as int8."""
    x = adata.X
    report = {"missing_values": 0, "dropped_features": [], "policy": missing}
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x)
        n_bad = int(bad.sum())
        if n_bad:
            features = np.flatnonzero(bad.any(axis=0))
            if missing == "error":
                n_inf = int(np.isinf(x).sum())
                kind = "NaN/empty" if n_inf == 0 else ("inf" if n_inf == n_bad else "NaN/inf")
                row, col = np.argwhere(bad)[0]
                first = f"{x[row, col]} in column '{adata.var_names[col]}'"
                raise InputError(
                    path,
                    f"{n_bad} {kind} values in {len(features)} features (e.g. "
                    f"{_examples(adata.var_names[features])}); choose a policy with --missing mean "
                    f"or --missing drop-feature (first: {first}, sample '{adata.obs_names[row]}')",
                )
            report["missing_values"] = n_bad
            if missing == "drop-feature":
                report["dropped_features"] = adata.var_names[features].tolist()
                adata = adata[:, np.setdiff1d(np.arange(adata.n_vars), features)].copy()
                if adata.n_vars == 0:
                    raise InputError(
                        path,
                        "every feature has missing values; nothing left after --missing drop-feature",
                    )
            else:  # mean over the observed values of each feature; uses no labels
                x = np.where(bad, np.nan, x)
                means = np.nanmean(x[:, features], axis=0)
                means = np.where(np.isnan(means), 0.0, means)
                cols = x[:, features]
                cols[np.isnan(cols)] = np.take(means, np.nonzero(np.isnan(cols))[1])
                x[:, features] = cols
                adata.X = x.astype(np.float32)
        x = adata.X
        # 0/1/2 dosages stored as int8: 4x smaller on disk and in memory.
        if x.size and x.min() >= 0 and x.max() <= 2:
            as_int = x.astype(np.int8)
            if np.array_equal(as_int, x):
                adata.X = as_int
    return adata, report


def read_labels(
    path: str | Path,
    sample_column: str = "sample",
    label_column: str = "label",
    split_column: str | None = "split",
) -> pd.DataFrame:
    """Read the label table as a DataFrame indexed by sample.

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.csv``, ``.tsv`` or ``.txt`` table.
    sample_column : str, default "sample"
        The column holding the sample ids.
    label_column : str, default "label"
        The column holding the labels.
    split_column : str or None, default "split"
        The column holding the optional split (``train``, ``test``, ``independent`` or empty);
        None ignores any split.

    Returns
    -------
    pandas.DataFrame
        Indexed by sample, with a ``label`` column (and ``split``, lower case, if present);
        values are stripped strings.

    Raises
    ------
    InputError
        When the table cannot be read, lacks a column, has an empty or duplicate sample id, or a
        split value other than the ones above.
    """
    path = Path(path)
    return label_frame(_read_table(path, "labels"), path, sample_column, label_column, split_column)


def label_frame(
    table: pd.DataFrame,
    path: Path,
    sample_column: str = "sample",
    label_column: str = "label",
    split_column: str | None = "split",
) -> pd.DataFrame:
    """`read_labels` on a table already read from `path` (`read_table`): one read per file.

    Parameters
    ----------
    table : pandas.DataFrame
        The labels file's table, as strings.
    path : pathlib.Path
        The labels file, named in errors.
    sample_column, label_column, split_column
        As for `read_labels`.

    Returns
    -------
    pandas.DataFrame
        As `read_labels` returns.
    """
    for column in (sample_column, label_column):
        if column not in table.columns:
            raise InputError(
                path,
                f"no column '{column}' (columns: {_examples(table.columns, 6)}); set --sample-column/--label-column",
            )
    samples = table[sample_column].str.strip()
    if (samples == "").any():
        raise InputError(path, f"empty sample id in column '{sample_column}'")
    _check_unique(path, samples, "sample ids")
    out = pd.DataFrame(
        {"label": table[label_column].str.strip().to_numpy()}, index=pd.Index(samples, name=None)
    )
    if split_column and split_column in table.columns:
        split = table[split_column].str.strip().str.lower().to_numpy()
        allowed = {"train", "test", "independent", ""}
        unknown = sorted(set(split) - allowed)
        if unknown:
            raise InputError(
                path,
                f"split column '{split_column}' has unknown values {_examples(unknown)} (use train, test or independent)",
            )
        out["split"] = split
    return out


def read_prior(path: str | Path) -> pd.DataFrame:
    """Read a prior edge list: a table with `source` and `target` columns (extra columns kept).

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.csv``, ``.tsv`` or ``.txt`` table.

    Returns
    -------
    pandas.DataFrame
        One row per edge, as strings; ``source`` and ``target`` stripped of whitespace.

    Raises
    ------
    InputError
        When the table cannot be read or lacks a ``source`` or ``target`` column.
    """
    path = Path(path)
    table = _read_table(path, "prior")
    missing = [c for c in ("source", "target") if c not in table.columns]
    if missing:
        raise InputError(
            path, f"prior table needs columns 'source' and 'target' (missing {', '.join(missing)})"
        )
    table["source"] = table["source"].str.strip()
    table["target"] = table["target"].str.strip()
    return table


def check_finite_cohort(mdata: md.MuData, source: str | Path | None = None) -> None:
    """Refuse a cohort whose modality matrices hold NaN or infinite values.

    Such a cohort is an .h5mu edited outside `deepgami build`, which never writes them.

    Parameters
    ----------
    mdata : mudata.MuData
        The cohort.
    source : str or pathlib.Path or None, default None
        Its file, named in the error.

    Raises
    ------
    InputError
        Naming the modality, the first bad feature and sample, and how many values are bad.
    """
    for name, adata in mdata.mod.items():
        x = adata.X
        data = x.data if hasattr(x, "data") and not isinstance(x, np.ndarray) else x
        data = np.asarray(data)
        if data.dtype.kind != "f":
            continue
        step = max(1, 2**24 // max(int(np.prod(data.shape[1:])), 1))  # no full-size temporary
        n_bad = sum(
            int((~np.isfinite(data[i : i + step])).sum()) for i in range(0, len(data), step)
        )
        if not n_bad:
            continue
        dense = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
        row, col = np.argwhere(~np.isfinite(dense))[0]
        raise InputError(
            source,
            f"modality '{name}' holds {n_bad} NaN/infinite value(s) (first: {dense[row, col]} in "
            f"feature '{adata.var_names[col]}', sample '{adata.obs_names[row]}'); rebuild the "
            "cohort with 'deepgami build' (--missing mean or drop-feature for missing values)",
        )
