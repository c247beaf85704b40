"""The public Python API (`import deepgami as dg`): lazy imports, cohorts from memory and from files,
fit / predict / prioritize writing predictable MuData slots, figures, datasets, docstrings."""

from __future__ import annotations

import inspect
import subprocess
import sys

import matplotlib
import mudata as md
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import deepgami as dg
from model_fixtures import single_thread  # noqa: F401  (autouse)
from deepgami.errors import InputError
from deepgami.testing import assert_cohorts_equal, write_tiny_inputs

matplotlib.use("Agg")

SMALL = {
    "cv_folds": 0,
    "max_epochs": 8,
    "bagging": 0,
    "grid": {"hidden_layers": [[8]], "latent_dim": [8], "early_stopping_on": ["task"]},
}


def test_import_deepgami_does_not_import_torch():
    code = (
        "import sys, deepgami as dg; assert dg.__version__; "
        "assert 'torch' not in sys.modules and 'mudata' not in sys.modules, 'heavy import'; "
        "print(sorted(n for n in dg.__all__))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "DeepGAMI" in done.stdout and "'tl'" in done.stdout
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        dg.nope  # noqa: B018


def test_build_cohort_from_memory_equals_build_cohort_from_files(tmp_path):
    paths = write_tiny_inputs(tmp_path)
    from_files = dg.build_cohort(
        {"snp": paths["snp"], "expr": paths["expr"]}, paths["labels"], {"snp:eqtl": paths["eqtl"]}
    )
    frames = {m: pd.read_csv(paths[m], index_col=0) for m in ("snp", "expr")}
    labels = pd.read_csv(paths["labels"])
    from_memory = dg.build_cohort(
        frames, labels, {"snp:eqtl": pd.read_csv(paths["eqtl"], sep="\t")}
    )
    assert_cohorts_equal(from_files, from_memory)
    assert list(from_memory.varp) == ["prior:eqtl"] and set(from_memory.obs["split"]) == {
        "train",
        "test",
    }
    series = dg.build_cohort(frames, labels.set_index("sample")["label"])
    assert "split" not in series.obs and series.n_obs == 30
    with pytest.raises(InputError, match="names modality 'rna'"):
        dg.build_cohort(frames, labels, {"rna:grn": paths["eqtl"]})
    with pytest.raises(InputError, match=str(paths["labels"])):
        dg.build_cohort(frames, paths["labels"], sample_column="id")


def test_datasets_return_cohorts_without_files():
    rosmap = dg.datasets.rosmap()
    assert (
        isinstance(rosmap, md.MuData)
        and list(rosmap.mod) == ["mrna", "meth"]
        and rosmap.n_obs == 245
    )
    assert set(rosmap.obs["label"].astype(str)) == {"AD", "NC"}
    sim, truth = dg.datasets.simulated(n_samples=50, seed=3, return_truth=True)
    assert list(sim.mod) == ["snp", "expr"] and sim.n_obs == 50 and truth["causal_genes"]
    assert {"prior:eqtl", "prior:grn"} <= set(sim.varp)
    again = dg.datasets.simulated(n_samples=50, seed=3)
    assert_cohorts_equal(sim, again)


@pytest.fixture(scope="module")
def fitted():
    mdata = dg.datasets.simulated(n_samples=80, seed=0, n_snps=40, n_genes=10, n_tfs=4)
    return dg.DeepGAMI.fit(mdata, SMALL, seed=0), mdata


def test_fit_predict_prioritize_plot_write_predictable_slots(fitted, tmp_path):
    model, mdata = fitted
    assert (
        model.config["params"]["max_epochs"] == 8 and model.config["params"]["selection"] == "none"
    )
    table = dg.tl.predict(model, mdata, modalities=["snp"], key_added="snp_only")
    assert (table["modalities"] == "snp").all()
    assert mdata.obs["snp_only_predicted"].tolist() == table["predicted"].tolist()
    proba = mdata.obsm["snp_only_proba"]
    assert list(proba.columns) == model.classes and np.allclose(proba.sum(axis=1), 1.0)
    assert (
        mdata.uns["snp_only"]["modalities"] == ["snp"] and "auc" in mdata.uns["snp_only"]["metrics"]
    )
    _, copied = dg.tl.predict(model, mdata, key_added="other", copy=True)
    assert "other_predicted" in copied.obs and "other_predicted" not in mdata.obs
    tables = dg.tl.prioritize(model, mdata, split="test", n_steps=8)
    assert set(tables) == {"features", "latent", "links"}
    assert {"source", "target", "modality", "prior", "class", "importance", "rank"} <= set(
        tables["links"].columns
    )
    assert mdata.uns["deepgami_prioritize"]["links"] is tables["links"]
    figures = [
        dg.pl.roc(table),
        dg.pl.roc(mdata, key="snp_only"),
        dg.pl.top_links(tables, top=10),
        dg.pl.importance(tables["features"], top=8),
    ]
    assert all(isinstance(f, Figure) for f in figures)
    png = dg.utils.save_png(figures[0], tmp_path / "roc.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    model.save(tmp_path / "m")
    loaded = dg.DeepGAMI.load(tmp_path / "m")
    pd.testing.assert_frame_equal(loaded.predict(mdata, ["expr"]), model.predict(mdata, ["expr"]))


def public_functions():
    import deepgami.datasets
    import deepgami.pl
    import deepgami.tl

    found = [(n, getattr(dg, n)) for n in ("read_cohort", "build_cohort")]
    for module in (deepgami.datasets, deepgami.pl, deepgami.tl):
        found += [(f"{module.__name__}.{n}", getattr(module, n)) for n in module.__all__]
    found += [
        (f"DeepGAMI.{n}", getattr(dg.DeepGAMI, n))
        for n in ("fit", "predict", "predict_proba", "save", "load")
    ]
    return found


@pytest.mark.parametrize(
    "name,func", public_functions(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_public_functions_have_numpydoc_docstrings_and_type_hints(name, func):
    doc = inspect.getdoc(func) or ""
    assert "Returns\n-------" in doc or name.endswith(".save"), name
    assert "Parameters\n----------" in doc or not inspect.signature(func).parameters, name
    sig = inspect.signature(func)
    assert all(
        p.annotation is not inspect.Parameter.empty
        for p in sig.parameters.values()
        if p.name not in ("self", "cls") and p.kind not in (p.VAR_KEYWORD,)
    ), name
