"""Datasets that come with the package: the ROSMAP training split (real data, bundled) and
simulated cohorts (generated, with the truth they were drawn from). Both return a cohort MuData,
no files needed."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import mudata as md

__all__ = ["rosmap", "rosmap_dir", "simulated"]


def rosmap_dir() -> Path:
    """Return the folder of the bundled ROSMAP files.

    The files are ``mrna.csv``, ``meth.csv``, ``mirna.csv`` and ``labels.csv``.

    Returns
    -------
    pathlib.Path
        A directory inside the installed package; see its ``README.md`` for provenance and
        licence.
    """
    return Path(str(resources.files("deepgami.datasets").joinpath("rosmap")))


def rosmap(modalities: tuple[str, ...] = ("mrna", "meth")) -> md.MuData:
    """Load the ROSMAP Alzheimer's disease benchmark as a cohort.

    MOGONET's training split, 245 samples; real data, bundled with the package.

    Parameters
    ----------
    modalities : tuple of str, default ("mrna", "meth")
        Which of ``mrna``, ``meth`` and ``mirna`` to include (200 features each).

    Returns
    -------
    mudata.MuData
        One AnnData per modality, the label (``AD`` / ``NC``) and split in ``mdata.obs``, no
        priors.
    """
    from deepgami.data.assemble import build_cohort

    folder = rosmap_dir()
    return build_cohort(
        {name: folder / f"{name}.csv" for name in modalities}, folder / "labels.csv"
    )


def simulated(
    n_samples: int = 200,
    seed: int = 0,
    *,
    n_snps: int = 200,
    n_tfs: int = 10,
    n_genes: int = 40,
    classes: int = 2,
    missing_expr: float = 0.0,
    priors: bool = True,
    return_truth: bool = False,
    **settings: Any,
) -> md.MuData | tuple[md.MuData, dict]:
    """Simulate a cohort with planted signal (`deepgami simulate` as a MuData).

    Genotype dosages (``snp``) drive gene expression (``expr``) through an eQTL and a GRN prior,
    and a few genes drive the phenotype.

    Parameters
    ----------
    n_samples : int, default 200
        Number of samples.
    seed : int, default 0
        Seed of the simulation (and of which samples lack expression).
    n_snps : int, default 200
        Number of SNPs.
    n_tfs : int, default 10
        Number of transcription factors.
    n_genes : int, default 40
        Number of target genes.
    classes : int, default 2
        Number of phenotype classes.
    missing_expr : float, default 0.0
        Share of samples (chosen by `seed`) without expression, to exercise imputation.
    priors : bool, default True
        Attach the eQTL (snp -> gene) and GRN (TF -> gene) priors.
    return_truth : bool, default False
        Also return what the simulation drew (causal genes, links and effects), as
        `deepgami simulate` writes it to truth.json.
    **settings
        Further :class:`~deepgami.data.simulate.SimulationSettings` fields (``effect_size``,
        ``shared_signal``, ``n_causal_genes``, ...).

    Returns
    -------
    mudata.MuData or tuple of (mudata.MuData, dict)
        Label and split (train/test) in ``mdata.obs``; with `return_truth`, also the truth.

    Examples
    --------
    >>> import deepgami as dg
    >>> mdata = dg.datasets.simulated(n_samples=60, seed=1)
    >>> list(mdata.mod)
    ['snp', 'expr']
    """
    from deepgami.data.cohort import PriorInput, assemble_cohort
    from deepgami.data.simulate import simulate_cohort

    sizes = {"n_snps": n_snps, "n_tfs": n_tfs, "n_genes": n_genes, "classes": classes}
    sim = simulate_cohort(seed=seed, n_samples=n_samples, **sizes, **settings)
    prior_inputs = (
        [
            PriorInput("snp", "eqtl", sim.eqtl[["source", "target"]]),
            PriorInput("expr", "grn", sim.grn[["source", "target"]]),
        ]
        if priors
        else []
    )
    mdata, _ = assemble_cohort(
        _simulated_blocks(sim, missing_expr, seed), _simulated_labels(sim), prior_inputs
    )
    return (mdata, sim.truth) if return_truth else mdata


def _block(frame: Any) -> Any:
    """A samples x features DataFrame as a float32 AnnData."""
    import anndata as ad
    import numpy as np
    import pandas as pd

    return ad.AnnData(
        frame.to_numpy(dtype=np.float32),
        obs=pd.DataFrame(index=frame.index.astype(str)),
        var=pd.DataFrame(index=frame.columns.astype(str)),
    )


def _simulated_blocks(sim: Any, missing_expr: float, seed: int) -> dict[str, Any]:
    """The snp and expr AnnData; a `missing_expr` share of samples (by `seed`) lacks expr."""
    import numpy as np

    snp, expr = _block(sim.genotype), _block(sim.expression)
    if missing_expr > 0:
        keep = np.random.default_rng(seed + 1).random(expr.n_obs) >= missing_expr
        expr = expr[keep].copy()
    return {"snp": snp, "expr": expr}


def _simulated_labels(sim: Any) -> Any:
    """Label and split, indexed by sample."""
    import pandas as pd

    return pd.DataFrame(
        {"label": sim.labels["label"].to_numpy(), "split": sim.labels["split"].to_numpy()},
        index=pd.Index(sim.labels["sample"].astype(str), name="sample"),
    )
