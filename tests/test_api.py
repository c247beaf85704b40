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
import matplotlib.pyplot as plt  # noqa: E402

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
    assert dg.tl.predict(model, mdata, modalities=["snp"], key_added="snp_only") is None
    table = model.predict(mdata, ["snp"])
    assert (table["modalities"] == "snp").all()
    assert mdata.obs["snp_only_predicted"].tolist() == table["predicted"].tolist()
    proba = mdata.obsm["snp_only_proba"]
    assert list(proba.columns) == model.classes and np.allclose(proba.sum(axis=1), 1.0)
    assert mdata.uns["snp_only"]["params"] == {"modalities": ["snp"], "fill": "impute"}
    assert "auc" in mdata.uns["snp_only"]["metrics"]
    copied = dg.tl.predict(model, mdata, key_added="other", copy=True)
    assert isinstance(copied, md.MuData)
    assert "other_predicted" in copied.obs and "other_predicted" not in mdata.obs
    assert dg.tl.prioritize(model, mdata, split="test", n_steps=8) is None
    stored = mdata.uns["deepgami_prioritize"]
    assert {"features", "latent", "links", "params", "provenance"} <= set(stored)
    assert {"source", "target", "modality", "prior", "class", "importance", "rank"} <= set(
        stored["links"].columns
    )
    assert stored["params"]["split"] == "test" and stored["params"]["n_steps"] == 8
    assert stored["provenance"]["n_samples"] > 0
    gmt = tmp_path / "sets.gmt"
    genes = list(dict.fromkeys(stored["latent"]["node"].astype(str)))
    gmt.write_text(f"first\tna\t{chr(9).join(genes[:4])}\nrest\tna\t{chr(9).join(genes[4:])}\n")
    dg.tl.enrichment(mdata, gmt, min_size=1)
    enrichment = mdata.uns["deepgami_enrichment"]["table"]
    assert {"class", "gene_set", "pvalue", "fdr"} <= set(enrichment.columns)
    mdata.write_h5mu(tmp_path / "written.h5mu")  # the slots stay writable
    figures = [
        dg.pl.roc(table, return_fig=True),
        dg.pl.roc(mdata, key="snp_only", return_fig=True),
        dg.pl.top_links(mdata, top=10, return_fig=True),
        dg.pl.importance(mdata, top=8, return_fig=True),
    ]
    assert all(isinstance(f, Figure) for f in figures)
    fig, axes = plt.subplots(1, 2)
    assert dg.pl.importance(mdata, table="latent", ax=axes[0], show=False) is axes[0]
    assert dg.pl.roc(mdata, key="snp_only", label_key="label", ax=axes[1], show=False) is axes[1]
    assert dg.pl.top_links(stored["links"], show=True) is None
    plt.close("all")
    png = dg.utils.save_png(figures[0], tmp_path / "roc.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    model.save(tmp_path / "m")
    loaded = dg.DeepGAMI.load(tmp_path / "m")
    pd.testing.assert_frame_equal(loaded.predict(mdata, ["expr"]), model.predict(mdata, ["expr"]))


def test_public_namespaces_export_public_names_and_figures_leave_the_backend_alone():
    import deepgami.model
    import deepgami.pp

    assert not {"threads_for", "BAG_FRACTION", "evaluate_rows", "align_inputs"} & set(
        deepgami.model.__all__
    )
    assert not hasattr(deepgami.model, "threads_for")
    assert set(deepgami.pp.__all__) == {"NORMALIZATIONS", "pseudobulk"}
    assert set(dg.tl.__all__) == {"predict", "prioritize", "enrichment"}
    code = (
        "import matplotlib, deepgami.report.figures, deepgami.report.linkplot, deepgami.pl; "
        "assert matplotlib.get_backend().lower() == 'svg', matplotlib.get_backend()"
    )
    env = {**__import__("os").environ, "MPLBACKEND": "svg"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr


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
