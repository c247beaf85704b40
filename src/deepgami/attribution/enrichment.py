"""Over-representation of prioritized genes in user-supplied gene sets (GMT files).

A one-sided hypergeometric test per gene set, with the Benjamini-Hochberg FDR over the sets tested.
The universe (background) is given by the caller; for DeepGAMI it is every latent gene of the
model, since only those could ever be prioritized. Gene sets are intersected with the background
before sizes are counted and filtered. Nothing is downloaded: the GMT file is the user's.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from deepgami.errors import InputError

__all__ = ["GeneSet", "read_gmt", "over_representation", "benjamini_hochberg", "ENRICHMENT_COLUMNS"]

ENRICHMENT_COLUMNS = [
    "gene_set",
    "description",
    "set_size",
    "n_selected",
    "n_background",
    "overlap",
    "expected",
    "fold_enrichment",
    "pvalue",
    "fdr",
    "genes",
]


@dataclass(frozen=True)
class GeneSet:
    """One GMT line: a name, a description (often a URL) and the member genes.

    Parameters
    ----------
    name : str
        The set's name (the line's first field).
    description : str
        The set's description (the second field, often a URL).
    genes : tuple of str
        The member genes, without duplicates.
    """

    name: str
    description: str
    genes: tuple[str, ...]


def read_gmt(path: str | os.PathLike) -> dict[str, GeneSet]:
    """Read a GMT file: one set per line, tab-separated `name, description, gene, gene, ...`.

    Blank lines and lines starting with `#` are skipped; empty gene fields are ignored and
    duplicate genes within a set are merged. A repeated set name or a line with fewer than three
    fields is an :class:`InputError` naming the line.

    Parameters
    ----------
    path : str or os.PathLike
        The GMT file (UTF-8).

    Returns
    -------
    dict of str to GeneSet
        The gene sets by name, in file order.

    Raises
    ------
    InputError
        When the file is missing, unreadable, holds no gene set, or a line is malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "GMT file not found")
    sets: dict[str, GeneSet] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(path, f"unreadable GMT file ({err})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) < 3:
            raise InputError(
                path,
                f"line {number}: a GMT line needs a set name, a description and at least one "
                "gene, separated by tabs",
            )
        name = fields[0].strip()
        if not name:
            raise InputError(path, f"line {number}: empty gene-set name")
        if name in sets:
            raise InputError(path, f"line {number}: gene set '{name}' appears twice")
        genes = tuple(dict.fromkeys(g.strip() for g in fields[2:] if g.strip()))
        if not genes:
            raise InputError(path, f"line {number}: gene set '{name}' lists no gene")
        sets[name] = GeneSet(name, fields[1].strip(), genes)
    if not sets:
        raise InputError(path, "no gene set found")
    return sets


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """Return the Benjamini-Hochberg adjusted p-values (q-values), in the input order.

    Parameters
    ----------
    pvalues : numpy.ndarray
        The p-values (any array-like of floats).

    Returns
    -------
    numpy.ndarray
        The q-values (float64, at most 1), one per p-value.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    n = p.size
    if n == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = p[order] * n / np.arange(1, n + 1)
    # enforce monotonicity from the largest p-value down
    q = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(q, 1.0)
    return out


def over_representation(
    selected: Iterable[str],
    background: Iterable[str],
    gene_sets: Mapping[str, GeneSet],
    min_size: int = 3,
    max_size: int = 500,
) -> pd.DataFrame:
    """Test the hypergeometric over-representation of `selected` genes in each gene set.

    Genes outside `background` are dropped from both the selection and the sets. Sets whose
    overlap with the background has fewer than `min_size` or more than `max_size` genes are not
    tested.

    Parameters
    ----------
    selected : iterable of str
        The selected genes.
    background : iterable of str
        The universe: every gene that could have been selected.
    gene_sets : mapping of str to GeneSet
        Gene sets as read by :func:`read_gmt`.
    min_size : int, default 3
        The smallest overlap of a set with the background that is tested.
    max_size : int, default 500
        The largest overlap of a set with the background that is tested.

    Returns
    -------
    pandas.DataFrame
        One row per tested set, with columns: gene_set, description, set_size (in background),
        n_selected, n_background, overlap, expected, fold_enrichment, pvalue (P[X >= overlap]),
        fdr (Benjamini-Hochberg over the tested sets), genes (the overlap, comma-separated,
        sorted). Rows sorted by p-value, then name.
    """
    from scipy.stats import hypergeom

    universe = set(dict.fromkeys(str(g) for g in background))
    chosen = {str(g) for g in selected} & universe
    n_universe, n_chosen = len(universe), len(chosen)
    rows = []
    for name in sorted(gene_sets):
        gs = gene_sets[name]
        members = set(gs.genes) & universe
        if not (min_size <= len(members) <= max_size):
            continue
        hits = sorted(members & chosen)
        k = len(hits)
        expected = n_chosen * len(members) / n_universe if n_universe else 0.0
        pvalue = float(hypergeom.sf(k - 1, n_universe, len(members), n_chosen)) if n_chosen else 1.0
        rows.append(
            {
                "gene_set": name,
                "description": gs.description,
                "set_size": len(members),
                "n_selected": n_chosen,
                "n_background": n_universe,
                "overlap": k,
                "expected": expected,
                "fold_enrichment": k / expected if expected > 0 else np.nan,
                "pvalue": min(max(pvalue, 0.0), 1.0),
                "genes": ",".join(hits),
            }
        )
    table = pd.DataFrame(rows, columns=[c for c in ENRICHMENT_COLUMNS if c != "fdr"])
    table["fdr"] = (
        benjamini_hochberg(table["pvalue"].to_numpy()) if len(table) else pd.Series(dtype=float)
    )
    table = table.sort_values(["pvalue", "gene_set"], kind="stable").reset_index(drop=True)
    return table[ENRICHMENT_COLUMNS]


def top_link_enrichment(
    top_link_genes: Mapping[str, Iterable[str]],
    background: Iterable[str],
    gene_sets: Mapping[str, GeneSet],
    min_size: int = 3,
    max_size: int = 500,
) -> tuple[pd.DataFrame, dict]:
    """Test the over-representation of each class's top-link target genes among all latent genes.

    Parameters
    ----------
    top_link_genes : mapping of str to iterable of str
        Class -> the latent genes targeted by a top-decile link of that class
        (`Prioritization.top_link_genes`).
    background : iterable of str
        Every latent gene of the model.
    gene_sets : mapping of str to GeneSet
        Gene sets as read by :func:`read_gmt`.
    min_size, max_size : int
        Sets whose overlap with the background is outside this range (default 3 to 500) are not
        tested.

    Returns
    -------
    enrichment : pandas.DataFrame
        The tables of :func:`over_representation` stacked with a leading `class` column.
    summary : dict
        What was tested: the number of gene sets read and tested, the selection, the background
        and the size range.
    """
    background = list(background)
    tables = []
    for cls, genes in top_link_genes.items():
        table = over_representation(
            genes, background, gene_sets, min_size=min_size, max_size=max_size
        )
        table.insert(0, "class", cls)
        tables.append(table)
    enrichment = pd.concat(tables, ignore_index=True)
    summary = {
        "gene_sets": len(gene_sets),
        "tested": int(enrichment["gene_set"].nunique()),
        "selection": "targets of top-decile links of each class",
        "background": "all latent genes",
        "min_size": min_size,
        "max_size": max_size,
    }
    return enrichment, summary
