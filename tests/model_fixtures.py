"""Small cohorts for the model tests, built through `deepgami.data.cohort.build_cohort` as `deepgami build`
would, so the tests see the real data model (presence, priors in varp, categorical labels)."""

from __future__ import annotations

import sys
import types

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import torch


def ensure_layers() -> None:
    """Install a stand-in `deepgami.nn.layers.SparseMaskedLinear` while the real one is not written yet.

    Gather + index_add_ over the edge list, the interface the real layer implements.
    """
    try:
        import deepgami.nn.layers  # noqa: F401

        return
    except ModuleNotFoundError:
        pass

    class SparseMaskedLinear(torch.nn.Module):
        def __init__(self, in_features, out_features, src, dst, bias=True):
            super().__init__()
            self.in_features, self.out_features = in_features, out_features
            self.register_buffer("src", torch.as_tensor(src, dtype=torch.long).clone())
            self.register_buffer("dst", torch.as_tensor(dst, dtype=torch.long).clone())
            fan_in = torch.bincount(self.dst, minlength=out_features).clamp(min=1).float()
            bound = 1.0 / fan_in[self.dst].sqrt()
            self.weight = torch.nn.Parameter((torch.rand(len(self.src)) * 2 - 1) * bound)
            self.bias = torch.nn.Parameter(torch.zeros(out_features)) if bias else None

        def forward(self, x):
            out = x.new_zeros(x.shape[0], self.out_features)
            out = out.index_add(1, self.dst, x[:, self.src] * self.weight)
            return out + self.bias if self.bias is not None else out

    module = types.ModuleType("deepgami.nn.layers")
    module.SparseMaskedLinear = SparseMaskedLinear
    sys.modules["deepgami.nn.layers"] = module


ensure_layers()


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny networks on one intra-op thread: with two, on a busy shared machine, every op waits for a
    second core and the tests run 10-20x slower. (The model does the same for small fits.)"""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


from deepgami.data import cohort  # noqa: E402
from deepgami.data.simulate import simulate_cohort  # noqa: E402


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
    """A `deepgami.data.simulate` cohort (genotype `snp`, expression `expr`, priors eqtl/grn) as MuData.

    `missing_expr`: fraction of samples (chosen by seed) without expression. Returns (mdata, truth).
    """
    sim = simulate_cohort(seed=seed, n_samples=n_samples, n_snps=n_snps, n_tfs=n_tfs, n_genes=n_genes,
                          classes=classes, shared_signal=shared_signal, n_causal_genes=n_causal_genes,
                          effect_size=effect_size)
    snp = ad.AnnData(sim.genotype.to_numpy(dtype=np.float32),
                     obs=pd.DataFrame(index=sim.genotype.index.astype(str)),
                     var=pd.DataFrame(index=sim.genotype.columns.astype(str)))
    expr = ad.AnnData(sim.expression.to_numpy(dtype=np.float32),
                      obs=pd.DataFrame(index=sim.expression.index.astype(str)),
                      var=pd.DataFrame(index=sim.expression.columns.astype(str)))
    if missing_expr > 0:
        rng = np.random.default_rng(seed + 1)
        keep = rng.random(expr.n_obs) >= missing_expr
        expr = expr[keep].copy()
    labels = _labels_frame(sim.labels["sample"].astype(str), sim.labels["label"].to_numpy(),
                           sim.labels["split"].to_numpy())
    prior_inputs = []
    if priors:
        prior_inputs = [cohort.PriorInput("snp", "eqtl", sim.eqtl[["source", "target"]]),
                        cohort.PriorInput("expr", "grn", sim.grn[["source", "target"]])]
    mdata, _ = cohort.build_cohort({"snp": snp, "expr": expr}, labels, prior_inputs)
    return mdata, sim.truth


def dense_mudata(n_samples: int = 100, seed: int = 0, n_a: int = 15, n_b: int = 12, noise: float = 0.5,
                 regression: bool = False, split: bool = False) -> md.MuData:
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
        "a": ad.AnnData(a.astype(np.float32), obs=pd.DataFrame(index=samples),
                        var=pd.DataFrame(index=[f"a{i}" for i in range(n_a)])),
        "b": ad.AnnData(b.astype(np.float32), obs=pd.DataFrame(index=samples),
                        var=pd.DataFrame(index=[f"b{i}" for i in range(n_b)])),
    }
    split_col = np.where(np.arange(n_samples) % 5 == 0, "test", "train") if split else None
    mdata, _ = cohort.build_cohort(mods, _labels_frame(samples, labels.astype(str) if not regression else labels.round(6).astype(str), split_col))
    return mdata


def fast_params(**changes) -> dict:
    """Defaults with a one-point grid, few epochs and 2 folds: unit-test sized."""
    from deepgami.train import load_params

    over = {"grid": {"hidden_layers": [[16]], "dropout": [0.2], "learning_rate": [0.01], "weight_decay": [0.0001],
                     "lambda": [0.5], "batch_size": [32], "latent_dim": [8], "early_stopping_on": ["task"]},
            "max_epochs": 15, "patience": 5, "cv_folds": 2, "bagging": 0}
    for key, value in changes.items():
        if key == "grid":
            over["grid"].update(value)
        else:
            over[key] = value
    return load_params(None, over)
