"""A simulated single-cell cohort with a known answer: which cell types carry the phenotype signal.

Per donor: a phenotype (control/case, balanced), SNP dosages, and cells of several cell types with
raw integer counts. Counts are negative binomial (gamma-Poisson) around
``size factor * exp(base[type, gene] + eqtl effect + signal + donor noise)``:

- ``base`` is a gene's level in a cell type (shared across types, plus type-specific markers);
- cis-eQTLs: each eQTL gene has one SNP that shifts its log mean in every cell type (the genotype
  drives part of the expression, but not the phenotype, so the genotype alone predicts nothing);
- signal: in the signal cell types only, each signal gene's log mean moves by ``+-effect_size / 2``
  with the phenotype (a fixed direction per gene);
- donor noise: biological variation per donor, cell type and gene (``donor_sd``).

Cell-type proportions vary by donor (Dirichlet), so some donor x cell type pairs are small.
``truth.json`` names the signal cell types and genes and the eQTL pairs.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepgami.data.simulate import check_out_dir
from deepgami.errors import InputError, atomic_path

__all__ = ["CellSimulationSettings", "simulate_cells", "CELL_TYPE_NAMES", "FILES"]

CELL_TYPE_NAMES = ("Excitatory", "Inhibitory", "Microglia", "Oligodendrocyte", "Astrocyte", "OPC")
FILES = {
    "cells": "cells.h5ad",
    "genotype": "genotype.csv",
    "labels": "labels.csv",
    "eqtl": "eqtl.tsv",
    "truth": "truth.json",
}


@dataclass
class CellSimulationSettings:
    """Settings of :func:`simulate_cells` (the ``deepgami simulate-cells`` options).

    Parameters
    ----------
    seed : int, default 0
        Random seed; the same seed gives the same bytes.
    n_donors : int, default 200
        Donors (the samples of the cohort).
    cells_per_donor : int, default 90
        Cells drawn per donor, shared among the cell types by donor-specific proportions.
    cell_types : int, default 3
        Number of cell types (named by :meth:`names`).
    signal_cell_types : list of str
        The cell types whose expression carries the phenotype signal; empty (the default)
        means the first cell type.
    n_genes : int, default 200
        Genes.
    n_signal_genes : int, default 20
        Genes whose expression moves with the phenotype.
    n_snps : int, default 200
        SNPs.
    n_eqtl_genes : int or None, default None
        Genes with a simulated cis-eQTL; None means min(40, genes that are not signal genes,
        SNPs), filled in by :meth:`validate`.
    effect_size : float, default 0.5
        Log fold change, case vs control, of each signal gene.
    donor_sd : float, default 0.3
        Donor-level biological noise of log expression.
    dispersion : float, default 0.2
        Negative binomial overdispersion per cell (0 = Poisson).
    test_fraction : float, default 0.2
        Share of donors in the ``test`` split.
    """

    seed: int = 0
    n_donors: int = 200
    cells_per_donor: int = 90
    cell_types: int = 3
    signal_cell_types: list[str] = field(default_factory=list)  # default: the first cell type
    n_genes: int = 200
    n_signal_genes: int = 20
    n_snps: int = 200
    n_eqtl_genes: int | None = None  # default: min(40, genes that are not signal genes, SNPs)
    effect_size: float = 0.5  # log fold change case vs control of each signal gene
    donor_sd: float = 0.3  # donor-level biological noise of log expression
    dispersion: float = 0.2  # negative binomial overdispersion per cell (0 = Poisson)
    test_fraction: float = 0.2

    def names(self) -> list[str]:
        """Return the cell type names: brain cell classes, then CellType7, CellType8, ...

        Returns
        -------
        list of str
            One name per cell type (``cell_types`` of them).
        """
        return [
            CELL_TYPE_NAMES[i] if i < len(CELL_TYPE_NAMES) else f"CellType{i + 1}"
            for i in range(self.cell_types)
        ]

    def validate(self) -> None:
        """Raise :class:`InputError` for settings that cannot be simulated (fills the defaults).

        Raises
        ------
        InputError
            Naming the first setting out of range, or the unknown signal cell types.
        """
        if self.n_eqtl_genes is None:
            self.n_eqtl_genes = max(0, min(40, self.n_genes - self.n_signal_genes, self.n_snps))
        checks = [
            (self.n_donors >= 10, "--n-donors must be at least 10"),
            (
                self.cells_per_donor >= self.cell_types,
                "--cells-per-donor must be at least --cell-types",
            ),
            (self.cell_types >= 1, "--cell-types must be at least 1"),
            (
                1 <= self.n_signal_genes <= self.n_genes,
                "--n-signal-genes must be in [1, --n-genes]",
            ),
            (self.n_snps >= 1, "--n-snps must be at least 1"),
            (
                0 <= self.n_eqtl_genes <= min(self.n_genes, self.n_snps),
                "--n-eqtl-genes must be in [0, min(genes, snps)]",
            ),
            (0 < self.test_fraction < 1, "--test-fraction must be in (0, 1)"),
            (self.donor_sd >= 0 and self.dispersion >= 0, "--donor-sd and dispersion must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise InputError(None, message)
        unknown = [c for c in self.signal_cell_types if c not in self.names()]
        if unknown:
            raise InputError(
                None,
                f"--signal-cell-types: unknown cell type(s) {', '.join(unknown)} "
                f"(choose from {', '.join(self.names())})",
            )


def simulate_cells(
    out: str | os.PathLike, overwrite: bool = False, **settings: Any
) -> dict[str, Path]:
    """Simulate a single-cell cohort (:class:`CellSimulationSettings` fields) and write it to `out`.

    Files: ``cells.h5ad`` (cells x genes, raw counts in X as int32 CSR, ``.obs['donor']`` and
    ``.obs['cell_type']``), ``genotype.csv`` (donor x SNP dosages), ``labels.csv``
    (sample,label,split by donor), ``eqtl.tsv`` (source,target of the simulated cis-eQTLs) and
    ``truth.json``. Same seed, same bytes.

    Parameters
    ----------
    out : str or os.PathLike
        The output directory (written atomically).
    overwrite : bool, default False
        Replace an existing `out`.
    **settings
        Fields of :class:`CellSimulationSettings`.

    Returns
    -------
    dict of str to pathlib.Path
        ``{role: path}`` of the written files.
    """
    s = CellSimulationSettings(**settings)
    s.validate()
    check_out_dir(out, overwrite)
    # The draws below happen in a fixed order: same seed, same bytes.
    rng = np.random.default_rng(s.seed)
    y, test = _phenotype(rng, s.n_donors, s.test_fraction)
    maf = rng.uniform(0.1, 0.5, s.n_snps)
    dosage = rng.binomial(2, maf, size=(s.n_donors, s.n_snps)).astype(np.int8)
    g = _gene_program(rng, s)
    genetic = np.zeros((s.n_donors, s.n_genes))
    snp = g["eqtl_snps"]
    genetic[:, g["eqtl_genes"]] = (dosage[:, snp] - 2 * maf[snp]) * g["eqtl_beta"]
    proportions = rng.dirichlet(np.full(s.cell_types, 8.0), size=s.n_donors)
    cells = _cells(rng, s, g, genetic, proportions, y)
    truth = _cell_truth(s, g, int(cells.n_obs))
    _write_cells(Path(out), cells, dosage, y, test, truth)
    return {role: Path(out) / name for role, name in FILES.items()}


def _names(prefix: str, n: int) -> list[str]:
    """``prefix0001`` ... (donors, genes and SNPs)."""
    return [f"{prefix}{i:04d}" for i in range(1, n + 1)]


def _phenotype(
    rng: np.random.Generator, n_donors: int, test_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Balanced binary labels, then a test split stratified by label."""
    y = np.zeros(n_donors, dtype=np.int64)
    y[rng.permutation(n_donors)[: n_donors // 2]] = 1
    test = np.zeros(n_donors, dtype=bool)
    for c in (0, 1):
        idx = np.flatnonzero(y == c)
        test[rng.permutation(idx)[: max(1, round(test_fraction * len(idx)))]] = True
    return y, test


def _gene_program(rng: np.random.Generator, s: CellSimulationSettings) -> dict[str, np.ndarray]:
    """Base levels per cell type, the signal genes and their direction, the cis-eQTLs."""
    # Gene levels: shared, plus markers per cell type; signal and eQTL genes are disjoint when possible.
    base = np.log(rng.gamma(0.8, 1.0, s.n_genes) + 0.05)[None, :] + rng.normal(
        0, 0.7, (s.cell_types, s.n_genes)
    )
    order = rng.permutation(s.n_genes)
    signal_genes = np.sort(order[: s.n_signal_genes])
    rest = order[s.n_signal_genes :]
    eqtl_genes = np.sort((rest if len(rest) >= s.n_eqtl_genes else order)[: s.n_eqtl_genes])
    # Signal genes get a workable base level so that the effect is measurable in counts.
    base[:, signal_genes] = np.maximum(base[:, signal_genes], 0.0)
    direction = rng.choice([-1.0, 1.0], size=s.n_signal_genes)
    eqtl_snps = rng.choice(s.n_snps, size=s.n_eqtl_genes, replace=False)
    eqtl_beta = rng.choice([-1.0, 1.0], size=s.n_eqtl_genes) * rng.uniform(0.3, 0.6, s.n_eqtl_genes)
    return {
        "base": base,
        "signal_genes": signal_genes,
        "eqtl_genes": eqtl_genes,
        "direction": direction,
        "eqtl_snps": eqtl_snps,
        "eqtl_beta": eqtl_beta,
    }


def _cells(
    rng: np.random.Generator,
    s: CellSimulationSettings,
    g: dict[str, np.ndarray],
    genetic: np.ndarray,
    proportions: np.ndarray,
    y: np.ndarray,
) -> ad.AnnData:
    """Counts of every cell, donor by donor and cell type by cell type."""
    types = s.names()
    signal_types = list(s.signal_cell_types) or types[:1]
    donors = _names("D", s.n_donors)
    blocks, donor_of, type_of = [], [], []
    for d in range(s.n_donors):
        n_per_type = rng.multinomial(s.cells_per_donor, proportions[d])
        for t, name in enumerate(types):
            n = int(n_per_type[t])
            if n == 0:
                continue
            log_mean = g["base"][t] + genetic[d] + rng.normal(0, s.donor_sd, s.n_genes)
            if name in signal_types:
                log_mean[g["signal_genes"]] += g["direction"] * s.effect_size * (y[d] - 0.5)
            size = rng.lognormal(0.0, 0.3, n)[:, None]
            mean = size * np.exp(log_mean)[None, :]
            if s.dispersion > 0:
                mean = rng.gamma(1.0 / s.dispersion, mean * s.dispersion)
            blocks.append(sp.csr_matrix(rng.poisson(mean).astype(np.int32)))
            donor_of += [donors[d]] * n
            type_of += [name] * n
    counts = sp.vstack(blocks, format="csr")
    obs = pd.DataFrame(
        {
            "donor": pd.Categorical(donor_of, categories=donors),
            "cell_type": pd.Categorical(type_of, categories=types),
        },
        index=[f"cell{i:06d}" for i in range(counts.shape[0])],
    )
    return ad.AnnData(X=counts, obs=obs, var=pd.DataFrame(index=_names("GENE", s.n_genes)))


def _cell_truth(s: CellSimulationSettings, g: dict[str, np.ndarray], n_cells: int) -> dict:
    """What was planted (truth.json): signal cell types and genes, the eQTLs, the settings."""
    genes, snps = _names("GENE", s.n_genes), _names("snp", s.n_snps)
    signal_types = list(s.signal_cell_types) or s.names()[:1]
    return {
        "signal_cell_types": signal_types,
        "cell_types": s.names(),
        "signal_genes": [genes[i] for i in g["signal_genes"]],
        "signal_directions": {
            genes[i]: int(v) for i, v in zip(g["signal_genes"], g["direction"], strict=False)
        },
        "eqtl": [
            {"source": snps[v], "target": genes[i], "beta": round(float(b), 6)}
            for v, i, b in zip(g["eqtl_snps"], g["eqtl_genes"], g["eqtl_beta"], strict=False)
        ],
        "classes": ["control", "case"],
        "donor_key": "donor",
        "cell_type_key": "cell_type",
        "n_cells": n_cells,
        "settings": {**asdict(s), "signal_cell_types": signal_types},
        "files": FILES,
    }


def _write_cells(
    out: Path, cells: ad.AnnData, dosage: np.ndarray, y: np.ndarray, test: np.ndarray, truth: dict
) -> None:
    """Write the five files atomically (all or none)."""
    donors = list(cells.obs["donor"].cat.categories)
    snps = _names("snp", dosage.shape[1])
    with atomic_path(out, suffix="") as tmp:
        tmp.mkdir()
        cells.write_h5ad(tmp / FILES["cells"])
        pd.DataFrame(dosage, index=pd.Index(donors, name="sample"), columns=snps).to_csv(
            tmp / FILES["genotype"], lineterminator="\n"
        )
        pd.DataFrame(
            {
                "sample": donors,
                "label": np.where(y == 1, "case", "control"),
                "split": np.where(test, "test", "train"),
            }
        ).to_csv(tmp / FILES["labels"], index=False, lineterminator="\n")
        pd.DataFrame(truth["eqtl"]).reindex(columns=["source", "target", "beta"]).to_csv(
            tmp / FILES["eqtl"], sep="\t", index=False, lineterminator="\n"
        )
        (tmp / FILES["truth"]).write_text(json.dumps(truth, indent=2) + "\n")
