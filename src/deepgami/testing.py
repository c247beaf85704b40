"""Test helpers shipped with the package (as anndata does): tiny valid inputs and cohort assertions."""

from __future__ import annotations

from pathlib import Path

import mudata as md
import numpy as np
import pandas as pd
import scipy.sparse as sp


def write_tiny_inputs(directory: str | Path, n_samples: int = 30, seed: int = 0) -> dict[str, Path]:
    """Write a small valid cohort as user files: two modalities, labels with a split, one prior.

    The expression table holds TFs and the target genes the eQTL prior points at (targets are
    cohort variables).

    Parameters
    ----------
    directory : str or pathlib.Path
        Where to write the files (created if needed).
    n_samples : int, default 30
        Number of samples; the first 80% are in the train split.
    seed : int, default 0
        Seed of the random values.

    Returns
    -------
    dict of str to pathlib.Path
        The paths by role: ``snp``, ``expr``, ``labels``, ``eqtl``.
    """
    rng = np.random.default_rng(seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    samples = [f"S{i:03d}" for i in range(n_samples)]
    snps = [f"rs{i}" for i in range(8)]
    genes = [f"G{i}" for i in range(4)] + [f"TF{i}" for i in range(3)]
    snp = pd.DataFrame(rng.integers(0, 3, (n_samples, len(snps))), index=samples, columns=snps)
    expr = pd.DataFrame(
        rng.normal(size=(n_samples, len(genes))).round(4), index=samples, columns=genes
    )
    labels = pd.DataFrame(
        {
            "sample": samples,
            "label": np.where(np.arange(n_samples) % 2 == 0, "case", "control"),
            "split": np.where(np.arange(n_samples) < int(0.8 * n_samples), "train", "test"),
        }
    )
    eqtl = pd.DataFrame(
        {
            "source": ["rs0", "rs1", "rs2", "rs3", "rs4", "rsX"],
            "target": ["G0", "G0", "G1", "G2", "G3", "G1"],
        }
    )
    paths = {
        "snp": directory / "snp.csv",
        "expr": directory / "expr.csv",
        "labels": directory / "labels.csv",
        "eqtl": directory / "eqtl.tsv",
    }
    snp.rename_axis("sample").to_csv(paths["snp"])
    expr.rename_axis("sample").to_csv(paths["expr"])
    labels.to_csv(paths["labels"], index=False)
    eqtl.to_csv(paths["eqtl"], sep="\t", index=False)
    return paths


def assert_cohorts_equal(a: md.MuData, b: md.MuData) -> None:
    """Assert that two cohorts are the same.

    Same samples, modalities, matrices, labels, presence and prior masks.

    Parameters
    ----------
    a : mudata.MuData
        One cohort.
    b : mudata.MuData
        The other cohort.

    Raises
    ------
    AssertionError
        If the cohorts differ.
    """
    assert list(a.mod) == list(b.mod), (list(a.mod), list(b.mod))
    assert list(a.obs_names) == list(b.obs_names)
    assert a.obs["label"].astype(str).tolist() == b.obs["label"].astype(str).tolist()
    for name in a.mod:
        x, y = a.mod[name], b.mod[name]
        assert list(x.obs_names) == list(y.obs_names), name
        assert list(x.var_names) == list(y.var_names), name
        np.testing.assert_array_equal(np.asarray(x.X), np.asarray(y.X))
    assert sorted(a.varp) == sorted(b.varp)
    for key in a.varp:
        assert (sp.csr_matrix(a.varp[key]) != sp.csr_matrix(b.varp[key])).nnz == 0, key
