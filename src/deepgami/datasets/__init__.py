"""Datasets that come with the package: the ROSMAP training split (real data) and simulated cohorts."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import mudata as md

__all__ = ["rosmap", "rosmap_dir"]


def rosmap_dir() -> Path:
    """The folder of the bundled ROSMAP files (``mrna.csv``, ``meth.csv``, ``mirna.csv``, ``labels.csv``).

    Returns
    -------
    Path
        A directory inside the installed package; see its ``README.md`` for provenance and licence.
    """
    return Path(str(resources.files("deepgami.datasets").joinpath("rosmap")))


def rosmap(modalities: tuple[str, ...] = ("mrna", "meth")) -> md.MuData:
    """The ROSMAP Alzheimer's disease benchmark (MOGONET's training split, 245 samples) as a cohort.

    Parameters
    ----------
    modalities
        Which of ``mrna``, ``meth`` and ``mirna`` to include (200 features each).

    Returns
    -------
    MuData
        One AnnData per modality, the label (``AD`` / ``NC``) and split in ``mdata.obs``, no priors.
    """
    from deepgami.data.cohort import build_cohort
    from deepgami.data.readers import read_labels, read_matrix

    folder = rosmap_dir()
    matrices = {name: read_matrix(folder / f"{name}.csv")[0] for name in modalities}
    labels = read_labels(folder / "labels.csv", "sample", "label", "split")
    mdata, _ = build_cohort(matrices, labels, [], labels_path=folder / "labels.csv")
    return mdata
