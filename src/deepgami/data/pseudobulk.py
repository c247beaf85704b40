"""Pseudobulk: sum a cell-level AnnData's raw counts per (donor, cell type).

The result is one AnnData per cell type. The sums come from scanpy
(:func:`scanpy.get.aggregate`). Per cell type the result has donors as obs (``obs_names`` = donor
ids, ``.obs['n_cells']`` = cells summed), the kept genes as var (``.var['n_donors']`` = donors with
a non-zero sum), the raw sums in ``.layers['counts']`` and the normalized values in ``.X``. Steps,
in order:

1. cells without a donor or cell type (NaN) are left out and counted;
2. counts are summed per (donor, cell type); a pair with fewer than ``min_cells`` cells is dropped
   and counted (its sum would be too noisy to compare with the others);
3. per cell type, genes with a non-zero sum in fewer than ``min_donors_per_gene`` donors are
   dropped;
4. normalization of the sums (the genes kept in 3, per donor):

   ``'log1p_cpm'`` (default) ``log1p(count / library size * 1e6)`` with the library size the donor's
   total over the kept genes (as edgeR/limma-voom log-CPM, and ``sc.pp.normalize_total`` +
   ``sc.pp.log1p`` with ``target_sum=1e6``); ``'cpm'`` the same without the log; ``'none'`` the
   raw sums (for models that model counts themselves).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepgami.errors import InputError

__all__ = ["NORMALIZATIONS", "pseudobulk", "safe_name", "cell_types_in"]

Normalization = Literal["log1p_cpm", "cpm", "none"]
NORMALIZATIONS = ("log1p_cpm", "cpm", "none")
TARGET_SUM = 1e6
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]+")


def safe_name(cell_type: str) -> str:
    """Turn a cell type into a file name and cohort id part.

    Runs of other characters become ``_``: ``"L2/3 IT"`` -> ``"L2_3_IT"``. The characters kept
    are those the samplesheet schema allows in ``cell_type``.

    Parameters
    ----------
    cell_type : str
        A cell type label.

    Returns
    -------
    str
        The name, without leading or trailing ``_``; ``"_"`` when nothing is left.
    """
    name = _UNSAFE.sub("_", str(cell_type)).strip("_")
    return name or "_"


def _check_safe_names(cell_types: list[str], where: str | None) -> dict[str, str]:
    names: dict[str, str] = {}
    for cell_type in cell_types:
        name = safe_name(cell_type)
        if name in names:
            raise InputError(
                where,
                f"cell types '{names[name]}' and '{cell_type}' share the file name "
                f"'{name}'; rename one of them",
            )
        names[name] = cell_type
    return {cell_type: name for name, cell_type in names.items()}


def _labels(adata: ad.AnnData, key: str, what: str, where: str | None) -> pd.Series:
    if key not in adata.obs.columns:
        columns = ", ".join(map(str, adata.obs.columns[:10])) or "none"
        raise InputError(where, f"{what} key '{key}' is not an .obs column (columns: {columns})")
    values = adata.obs[key]
    # Labels as strings (donor 7 and "7" are one donor); missing values stay NaN to be counted.
    out = pd.Series(np.nan, index=values.index, dtype=object)
    present = values.notna().to_numpy()
    out[present] = values[present].astype(str).to_numpy()
    return out


def cell_types_in(path: str | Path, cell_type_key: str) -> list[str]:
    """List the cell types of a cell-level ``.h5ad``, reading only obs.

    These are the cohorts a samplesheet row fans out into: :func:`pseudobulk` keeps every cell type
    or raises :class:`InputError`.

    Parameters
    ----------
    path : str or pathlib.Path
        A cell-level ``.h5ad`` file.
    cell_type_key : str
        The ``.obs`` column holding each cell's cell type.

    Returns
    -------
    list of str
        The cell types, sorted, missing values left out.

    Raises
    ------
    InputError
        When the file is missing or unreadable, `cell_type_key` is not an ``.obs`` column or has
        no values, or two cell types share a :func:`safe_name`.
    """
    path = Path(path)
    adata = _read_backed(path)
    try:
        values = _labels(adata, cell_type_key, "cell type", str(path))
    finally:
        adata.file.close()
    types = sorted(values.dropna().unique())
    if not types:
        raise InputError(path, f"cell type key '{cell_type_key}' has no values")
    _check_safe_names(types, str(path))
    return types


def _read_backed(path: Path) -> ad.AnnData:
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        return ad.read_h5ad(path, backed="r")
    except Exception as err:  # h5py/anndata raise many types for corrupt files
        raise InputError(path, f"cannot read h5ad: {str(err).splitlines()[0]}") from None


def _check_counts(x: Any, where: str | None, what: str) -> None:
    values = x.data if sp.issparse(x) else np.asarray(x)
    if not np.issubdtype(values.dtype, np.number):
        raise InputError(where, f"{what} is not numeric")
    if values.dtype.kind == "f":
        finite = np.isfinite(values)
        if not finite.all():
            raise InputError(where, f"{what} holds NaN or inf; pseudobulk needs raw counts")
        if not np.array_equal(values, np.round(values)):
            raise InputError(
                where,
                f"{what} holds non-integer values; pseudobulk needs raw counts "
                "(pass --layer with the layer of raw counts, e.g. counts)",
            )
    if values.size and values.min() < 0:
        raise InputError(where, f"{what} holds negative values; pseudobulk needs raw counts")


def _normalize(counts: np.ndarray, normalize: str) -> np.ndarray:
    if normalize == "none":
        return counts.astype(np.float32)
    library = counts.sum(axis=1, keepdims=True)
    scaled = counts / np.where(library > 0, library, 1.0) * TARGET_SUM
    return (np.log1p(scaled) if normalize == "log1p_cpm" else scaled).astype(np.float32)


def pseudobulk(
    adata: ad.AnnData,
    donor_key: str,
    cell_type_key: str,
    *,
    layer: str | None = None,
    min_cells: int = 10,
    min_donors_per_gene: float = 0.1,
    normalize: Normalization = "log1p_cpm",
    path: str | Path | None = None,
) -> tuple[dict[str, ad.AnnData], dict[str, Any]]:
    """Sum raw counts per donor and cell type; return one donors x genes AnnData per cell type.

    Parameters
    ----------
    adata : anndata.AnnData
        Cells x genes with raw integer counts in ``.X`` or in ``.layers[layer]``, and the donor and
        cell type of each cell in ``.obs``.
    donor_key : str
        ``.obs`` column naming each cell's donor (the sample of the cohort).
    cell_type_key : str
        ``.obs`` column naming each cell's cell type.
    layer : str or None, default None
        Layer holding the raw counts (default ``.X``).
    min_cells : int, default 10
        Donor x cell type pairs with fewer cells are dropped (and counted in the report).
    min_donors_per_gene : float, default 0.1
        Per cell type, keep genes with a non-zero sum in at least this many donors: a fraction of
        the cell type's kept donors when below 1 (rounded up), else a count.
    normalize : {"log1p_cpm", "cpm", "none"}, default "log1p_cpm"
        ``'log1p_cpm'`` (default), ``'cpm'`` or ``'none'``; see the module docstring.
    path : str or pathlib.Path or None, default None
        File name used in error messages.

    Returns
    -------
    tuple of dict and dict
        The AnnData per cell type (keys: the cell types, sorted; donors sorted by id) and a report
        (JSON-ready) of what was kept and dropped.

    Raises
    ------
    InputError
        Missing keys, counts that are not non-negative integers, no cells left, or a cell type
        without any donor (or gene) left after filtering.
    """
    where = None if path is None else str(path)
    _check_options(adata, layer, min_cells, min_donors_per_gene, normalize, where)
    cells, assigned = _assigned_cells(adata, donor_key, cell_type_key, layer, where)
    names = _check_safe_names(list(cells.obs["cell_type"].cat.categories), where)
    summed, n_cells = _sum_pairs(cells)
    values = (donor_key, cell_type_key, layer, min_cells, min_donors_per_gene, normalize)
    settings = dict(zip(SETTINGS, values, strict=True))
    report = _report(settings, adata, cells, assigned, len(n_cells))
    result: dict[str, ad.AnnData] = {}
    for cell_type, name in names.items():
        result[cell_type], entry = _cell_type_bulk(
            cell_type, summed, n_cells, cells.var_names, settings, where
        )
        report["n_pairs_dropped"] += len(entry["dropped_donors"])
        report["cell_types"][cell_type] = {"file": f"{name}.h5ad", **entry}
    return result, report


def _sum_pairs(cells: ad.AnnData) -> tuple[ad.AnnData, pd.Series]:
    """Counts summed per (donor, cell type) pair, and the cells of each pair."""
    import scanpy as sc

    summed = sc.get.aggregate(cells, by=["donor", "cell_type"], func="sum")
    return summed, cells.obs.groupby(["donor", "cell_type"], observed=True).size()


SETTINGS = ("donor_key", "cell_type_key", "layer", "min_cells", "min_donors_per_gene", "normalize")


def _report(
    settings: dict[str, Any],
    adata: ad.AnnData,
    cells: ad.AnnData,
    assigned: np.ndarray,
    n_pairs: int,
) -> dict[str, Any]:
    """The report's settings and counts; per cell type entries are added as they are built."""
    return {
        **settings,
        "target_sum": None if settings["normalize"] == "none" else TARGET_SUM,
        "n_cells": int(adata.n_obs),
        "n_cells_unassigned": int((~assigned).sum()),
        "n_donors": int(cells.obs["donor"].nunique()),
        "n_genes": int(adata.n_vars),
        "n_pairs": n_pairs,
        "n_pairs_dropped": 0,
        "cell_types": {},
    }


def _check_options(
    adata: ad.AnnData,
    layer: str | None,
    min_cells: int,
    min_donors_per_gene: float,
    normalize: str,
    where: str | None,
) -> None:
    """Refuse bad settings, a missing layer, an empty matrix and duplicate gene names."""
    if normalize not in NORMALIZATIONS:
        raise InputError(
            where, f"unknown normalization '{normalize}' (choose {', '.join(NORMALIZATIONS)})"
        )
    if min_cells < 1:
        raise InputError(where, f"min_cells must be at least 1 (got {min_cells})")
    if not (min_donors_per_gene >= 0 and math.isfinite(min_donors_per_gene)):
        raise InputError(where, f"min_donors_per_gene must be >= 0 (got {min_donors_per_gene})")
    if layer is not None and layer not in adata.layers:
        raise InputError(
            where, f"layer '{layer}' not found (layers: {', '.join(adata.layers) or 'none'})"
        )
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InputError(where, "has no cells or no genes")
    if adata.var_names.has_duplicates:
        dup = adata.var_names[adata.var_names.duplicated()].unique()[:3]
        raise InputError(where, f"duplicate gene names: {', '.join(map(str, dup))}")


def _assigned_cells(
    adata: ad.AnnData, donor_key: str, cell_type_key: str, layer: str | None, where: str | None
) -> tuple[ad.AnnData, np.ndarray]:
    """The counts of the cells with a donor and a cell type (both categorical, sorted), and
    which cells those are."""
    donors = _labels(adata, donor_key, "donor", where)
    cell_types = _labels(adata, cell_type_key, "cell type", where)
    counts = adata.layers[layer] if layer is not None else adata.X
    _check_counts(counts, where, f"layer '{layer}'" if layer else "X")
    assigned = (donors.notna() & cell_types.notna()).to_numpy()
    if not assigned.any():
        raise InputError(where, f"no cell has both a '{donor_key}' and a '{cell_type_key}'")
    obs = pd.DataFrame(
        {"donor": donors.to_numpy()[assigned], "cell_type": cell_types.to_numpy()[assigned]}
    )
    obs.index = adata.obs_names[assigned]
    order = sorted(obs["cell_type"].unique())
    obs["donor"] = pd.Categorical(obs["donor"], categories=sorted(obs["donor"].unique()))
    obs["cell_type"] = pd.Categorical(obs["cell_type"], categories=order)
    cells = ad.AnnData(
        X=counts if assigned.all() else counts[assigned],
        obs=obs,
        var=pd.DataFrame(index=adata.var_names.astype(str)),
    )
    return cells, assigned


def _cell_type_bulk(
    cell_type: str,
    summed: ad.AnnData,
    n_cells: pd.Series,
    var_names: pd.Index,
    settings: dict[str, Any],
    where: str | None,
) -> tuple[ad.AnnData, dict[str, Any]]:
    """One cell type's donors x genes AnnData (filtered, normalized) and its report entry."""
    rows, sizes, dropped = _donor_rows(cell_type, summed, n_cells, settings["min_cells"], where)
    pair_donor = summed.obs["donor"].astype(str).to_numpy()
    # Sums of integers, exact in float64 below 2**53.
    block = np.rint(np.asarray(summed.layers["sum"])[rows]).astype(np.int64)
    n_donors = (block > 0).sum(axis=0)
    needed = _donors_needed(settings["min_donors_per_gene"], len(rows))
    genes = n_donors >= needed
    if not genes.any():
        raise InputError(
            where,
            f"cell type '{cell_type}': no gene is expressed in at least {needed} "
            "donors; lower --min-donors-per-gene",
        )
    block = block[:, genes]
    out = ad.AnnData(
        X=_normalize(block.astype(np.float64), settings["normalize"]),
        obs=pd.DataFrame({"n_cells": sizes}, index=pd.Index(pair_donor[rows], name=None)),
        var=pd.DataFrame({"n_donors": n_donors[genes].astype(np.int64)}, index=var_names[genes]),
        layers={"counts": block},
    )
    out.obs["cell_type"] = cell_type
    out.uns["pseudobulk"] = {
        "cell_type": cell_type,
        "donor_key": settings["donor_key"],
        "cell_type_key": settings["cell_type_key"],
        "layer": settings["layer"] or "X",
        "normalize": settings["normalize"],
        "min_cells": settings["min_cells"],
        "min_donors_per_gene": settings["min_donors_per_gene"],
    }
    entry = {
        "n_donors": len(rows),
        "n_cells": int(sizes.sum()),
        "n_genes": int(genes.sum()),
        "n_genes_dropped": int((~genes).sum()),
        "min_donors_per_gene": int(needed),
        "dropped_donors": dropped,
    }
    return out, entry


def _donors_needed(min_donors_per_gene: float, n_donors: int) -> int:
    """Donors a gene must be expressed in: a fraction of `n_donors` (rounded up) or a count."""
    needed = (
        math.ceil(min_donors_per_gene * n_donors)
        if min_donors_per_gene < 1
        else math.ceil(min_donors_per_gene)
    )
    return max(needed, 1)


def _donor_rows(
    cell_type: str, summed: ad.AnnData, n_cells: pd.Series, min_cells: int, where: str | None
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Rows of `summed` for the cell type's donors with enough cells (sorted by donor), their
    cell counts, and the dropped donors with theirs."""
    pair_donor = summed.obs["donor"].astype(str).to_numpy()
    pair_type = summed.obs["cell_type"].astype(str).to_numpy()
    rows = np.flatnonzero(pair_type == cell_type)
    rows = rows[np.argsort(pair_donor[rows], kind="stable")]
    sizes = np.array([n_cells[(d, cell_type)] for d in pair_donor[rows]], dtype=np.int64)
    keep = sizes >= min_cells
    dropped = {str(d): int(n) for d, n in zip(pair_donor[rows][~keep], sizes[~keep], strict=False)}
    if not keep.any():
        raise InputError(
            where,
            f"cell type '{cell_type}' has no donor with at least {min_cells} cells "
            f"(most: {int(sizes.max())}); lower --min-cells",
        )
    return rows[keep], sizes[keep], dropped
