"""Small cohorts for the model tests, built through `deepgami.data.cohort.assemble_cohort` as `deepgami build`
would, so the tests see the real data model (presence, priors in varp, categorical labels)."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import torch

from deepgami.data import cohort
from deepgami.datasets import simulated


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny networks on one intra-op thread: with two, on a busy shared machine, every op waits for a
    second core and the tests run 10-20x slower. (The model does the same for small fits.)"""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _labels_frame(samples, labels, split=None) -> pd.DataFrame:
    frame = pd.DataFrame({"label": labels}, index=pd.Index(samples, name="sample"))
    if split is not None:
        frame["split"] = split
    return frame


def simulated_mudata(
    n_samples: int = 120,
    seed: int = 0,
    classes: int = 2,
    shared_signal: float = 0.0,
    n_snps: int = 60,
    n_tfs: int = 8,
    n_genes: int = 12,
    n_causal_genes: int = 3,
    missing_expr: float = 0.0,
    priors: bool = True,
    effect_size: float = 1.0,
) -> tuple[md.MuData, dict]:
    """`deepgami.datasets.simulated` at unit-test size (genotype `snp`, expression `expr`, priors
    eqtl/grn). `missing_expr`: fraction of samples (chosen by seed) without expression. Returns (mdata, truth)."""
    return simulated(
        n_samples,
        seed,
        n_snps=n_snps,
        n_tfs=n_tfs,
        n_genes=n_genes,
        classes=classes,
        missing_expr=missing_expr,
        priors=priors,
        return_truth=True,
        shared_signal=shared_signal,
        n_causal_genes=n_causal_genes,
        effect_size=effect_size,
    )


def dense_mudata(
    n_samples: int = 100,
    seed: int = 0,
    n_a: int = 15,
    n_b: int = 12,
    noise: float = 0.5,
    regression: bool = False,
    split: bool = False,
) -> md.MuData:
    """Two prior-free modalities driven by shared factors; the label is a function of the factors."""
    rng = np.random.default_rng(seed)
    factors = rng.standard_normal((n_samples, 3))
    a = factors @ rng.standard_normal((3, n_a)) + noise * rng.standard_normal((n_samples, n_a))
    b = factors @ rng.standard_normal((3, n_b)) + noise * rng.standard_normal((n_samples, n_b))
    score = factors[:, 0] - 0.7 * factors[:, 1]
    samples = [f"P{i:03d}" for i in range(n_samples)]
    if regression:
        labels = score + 0.3 * rng.standard_normal(n_samples)
    else:
        labels = np.where(score + 0.5 * rng.standard_normal(n_samples) > 0, "case", "control")
    mods = {
        "a": ad.AnnData(
            a.astype(np.float32),
            obs=pd.DataFrame(index=samples),
            var=pd.DataFrame(index=[f"a{i}" for i in range(n_a)]),
        ),
        "b": ad.AnnData(
            b.astype(np.float32),
            obs=pd.DataFrame(index=samples),
            var=pd.DataFrame(index=[f"b{i}" for i in range(n_b)]),
        ),
    }
    split_col = np.where(np.arange(n_samples) % 5 == 0, "test", "train") if split else None
    mdata, _ = cohort.assemble_cohort(
        mods,
        _labels_frame(
            samples,
            labels.astype(str) if not regression else labels.round(6).astype(str),
            split_col,
        ),
    )
    return mdata


def fast_params(**changes) -> dict:
    """Defaults with a one-point grid, few epochs and 2 folds: unit-test sized."""
    from deepgami.train import load_params

    over = {
        "grid": {
            "hidden_layers": [[16]],
            "dropout": [0.2],
            "learning_rate": [0.01],
            "weight_decay": [0.0001],
            "lambda": [0.5],
            "batch_size": [32],
            "latent_dim": [8],
            "early_stopping_on": ["task"],
        },
        "max_epochs": 15,
        "patience": 5,
        "cv_folds": 2,
        "search": "grid",  # the grid's points only; tests of the tpe search set it themselves
        "bagging": 0,
    }
    for key, value in changes.items():
        if key == "grid":
            over["grid"].update(value)
        else:
            over[key] = value
    return load_params(None, over)
