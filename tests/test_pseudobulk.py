"""Single-cell cohorts: dg.pp.pseudobulk, `deepgami pseudobulk`, `deepgami simulate-cells`, and the
acceptance run (one samplesheet row of genotype + cells fans out into one model per cell type)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import deepgami as dg
from deepgami.data.pseudobulk import pseudobulk, safe_name
from deepgami.data.simulate_cells import simulate_cells
from deepgami.errors import InputError

REPO = Path(__file__).resolve().parents[1]


def cells(seed: int = 0, n_cells: int = 400, n_genes: int = 12, sparse: bool = True) -> ad.AnnData:
    """Random cells of 6 donors x 3 cell types; donor D5 has only 3 'T cell' cells."""
    rng = np.random.default_rng(seed)
    donors = rng.choice([f"D{i}" for i in range(5)], n_cells)
    types = rng.choice(["B", "T cell", "NK"], n_cells)
    donors[:3], types[:3] = "D5", "T cell"
    x = rng.poisson(rng.gamma(0.5, 2.0, n_genes), size=(n_cells, n_genes)).astype(np.float32)
    x[:, 0] = 0  # a gene no donor expresses
    x[:, 1] = 0
    x[3, 1] = 4  # ... and one that a single donor expresses
    obs = pd.DataFrame(
        {"donor": pd.Categorical(donors), "ct": types}, index=[f"c{i}" for i in range(n_cells)]
    )
    return ad.AnnData(
        X=sp.csr_matrix(x) if sparse else x,
        obs=obs,
        var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]),
    )


def groupby_sums(adata: ad.AnnData, donor: str, cell_type: str) -> pd.DataFrame:
    """The reference: a plain numpy sum over each (donor, cell type) group."""
    x = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
    rows = {}
    for (d, c), idx in adata.obs.groupby([donor, cell_type], observed=True).indices.items():
        rows[(str(d), str(c))] = x[idx].sum(axis=0)
    return pd.DataFrame.from_dict(rows, orient="index", columns=adata.var_names)


# -- the library -------------------------------------------------------------------------------


@pytest.mark.parametrize("sparse", [True, False])
def test_sums_equal_a_numpy_groupby_and_small_pairs_are_dropped_and_counted(sparse: bool) -> None:
    adata = cells(sparse=sparse)
    result, report = pseudobulk(
        adata, "donor", "ct", min_cells=5, min_donors_per_gene=0, normalize="none"
    )
    expected = groupby_sums(adata, "donor", "ct")
    assert list(result) == ["B", "NK", "T cell"]
    n_cells = adata.obs.groupby(["donor", "ct"], observed=True).size()
    for cell_type, out in result.items():
        donors = sorted(d for d, c in expected.index if c == cell_type and n_cells[(d, c)] >= 5)
        assert list(out.obs_names) == donors
        want = np.stack([expected.loc[[(d, cell_type)]].to_numpy()[0] for d in donors])
        nonzero = want.sum(axis=0) > 0  # min_donors_per_gene=0 still needs one donor
        np.testing.assert_array_equal(out.layers["counts"], want[:, nonzero])
        np.testing.assert_array_equal(out.X, want[:, nonzero])
        assert out.obs["n_cells"].tolist() == [int(n_cells[(d, cell_type)]) for d in donors]
        assert (out.obs["cell_type"] == cell_type).all()
    assert "D5" not in result["T cell"].obs_names
    assert report["cell_types"]["T cell"]["dropped_donors"] == {"D5": 3}
    assert report["n_pairs_dropped"] == 1 and report["n_pairs"] == len(expected)


def test_layer_and_unassigned_cells() -> None:
    adata = cells()
    adata.layers["counts"] = adata.X.copy()
    adata.X = sp.csr_matrix(np.log1p(adata.X.toarray()))  # normalized X, raw counts in a layer
    adata.obs["ct"] = adata.obs["ct"].astype(object)
    adata.obs.loc[adata.obs_names[10:20], "ct"] = np.nan
    result, report = pseudobulk(
        adata, "donor", "ct", layer="counts", min_cells=1, min_donors_per_gene=0, normalize="none"
    )
    assert report["n_cells_unassigned"] == 10
    reference = ad.AnnData(
        X=adata.layers["counts"][~adata.obs["ct"].isna().to_numpy()],
        obs=adata.obs[adata.obs["ct"].notna()],
        var=adata.var,
    )
    expected = groupby_sums(reference, "donor", "ct")
    for cell_type, out in result.items():
        for donor in out.obs_names:
            np.testing.assert_array_equal(
                out[donor].layers["counts"][0],
                expected.loc[[(donor, cell_type)], out.var_names].to_numpy()[0],
            )


def test_genes_in_too_few_donors_are_filtered() -> None:
    adata = cells()
    result, report = pseudobulk(adata, "donor", "ct", min_cells=1, min_donors_per_gene=2)
    for cell_type, out in result.items():
        assert "g0" not in out.var_names and "g1" not in out.var_names
        assert (out.var["n_donors"] >= 2).all()
        assert out.var["n_donors"].tolist() == (out.layers["counts"] > 0).sum(axis=0).tolist()
        assert report["cell_types"][cell_type]["n_genes"] == out.n_vars
    # A fraction of the cell type's donors, rounded up: 0.9 of 5 or 6 donors = every donor but none missing.
    strict, _ = pseudobulk(adata, "donor", "ct", min_cells=1, min_donors_per_gene=0.99)
    for out in strict.values():
        assert ((out.layers["counts"] > 0).sum(axis=0) == out.n_obs).all()


def test_normalization_is_log1p_cpm_by_default_with_cpm_and_none_options() -> None:
    adata = cells()
    default, _ = pseudobulk(adata, "donor", "ct", min_cells=1)
    cpm, _ = pseudobulk(adata, "donor", "ct", min_cells=1, normalize="cpm")
    for cell_type, out in default.items():
        counts = out.layers["counts"].astype(np.float64)
        want = counts / counts.sum(axis=1, keepdims=True) * 1e6
        np.testing.assert_allclose(cpm[cell_type].X, want, rtol=1e-6)
        np.testing.assert_allclose(out.X, np.log1p(want), rtol=1e-6)
        assert out.X.dtype == np.float32
        assert out.uns["pseudobulk"]["normalize"] == "log1p_cpm"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda a: a.obs.drop(columns="donor", inplace=True),
            "donor key 'donor' is not an .obs column",
        ),
        (
            lambda a: a.obs.drop(columns="ct", inplace=True),
            "cell type key 'ct' is not an .obs column",
        ),
        (lambda a: setattr(a, "X", a.X * 0.5), "non-integer values; pseudobulk needs raw counts"),
        (lambda a: setattr(a, "X", a.X * -1.0), "negative values"),
        (
            lambda a: a.obs.__setitem__(
                "ct", np.where(a.obs_names.isin(a.obs_names[:3]), "rare", "common")
            ),
            "cell type 'rare' has no donor with at least 10 cells",
        ),
    ],
)
def test_bad_input_raises_one_line_input_errors(change, message: str) -> None:
    adata = cells()
    change(adata)
    with pytest.raises(InputError, match=message) as info:
        pseudobulk(adata, "donor", "ct", path="cells.h5ad")
    assert str(info.value).startswith("cells.h5ad: ") and "\n" not in str(info.value)


def test_bad_options_and_names() -> None:
    adata = cells()
    with pytest.raises(InputError, match="layer 'raw' not found"):
        pseudobulk(adata, "donor", "ct", layer="raw")
    with pytest.raises(InputError, match="unknown normalization"):
        pseudobulk(adata, "donor", "ct", normalize="tpm")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="min_cells must be at least 1"):
        pseudobulk(adata, "donor", "ct", min_cells=0)
    assert safe_name("L2/3 IT") == "L2_3_IT" and safe_name("CD4+ T") == "CD4+_T"
    adata.obs["ct"] = np.where(np.arange(adata.n_obs) % 2, "a b", "a/b")
    with pytest.raises(InputError, match="share the file name 'a_b'"):
        pseudobulk(adata, "donor", "ct", min_cells=1)
    assert dg.pp.pseudobulk is pseudobulk


# -- the commands --------------------------------------------------------------------------------


def deepgami(capsys: pytest.CaptureFixture, *args: str | Path) -> subprocess.CompletedProcess:
    """`deepgami ARGS` in this process (a subprocess per call would spend seconds importing)."""
    from deepgami.cli import main

    capsys.readouterr()
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit_:  # --help
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, captured.out, captured.err)


def test_pseudobulk_command_writes_one_h5ad_per_cell_type_and_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    adata = cells()
    adata.write_h5ad(tmp_path / "cells.h5ad")
    out = tmp_path / "pb"
    result = deepgami(
        capsys,
        "pseudobulk",
        tmp_path / "cells.h5ad",
        "--donor-key",
        "donor",
        "--cell-type-key",
        "ct",
        "--out",
        out,
        "--min-cells",
        "5",
        "--min-donors-per-gene",
        "2",
        "--normalize",
        "cpm",
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir() if p.name != ".deepgami") == [
        "B.h5ad",
        "NK.h5ad",
        "T_cell.h5ad",
        "pseudobulk.json",
    ]
    report = json.loads((out / "pseudobulk.json").read_text())
    assert report["normalize"] == "cpm" and report["cell_types"]["T cell"]["file"] == "T_cell.h5ad"
    assert report["cell_types"]["T cell"]["dropped_donors"] == {"D5": 3}
    t_cells = ad.read_h5ad(out / "T_cell.h5ad")
    library, _ = pseudobulk(
        adata, "donor", "ct", min_cells=5, min_donors_per_gene=2, normalize="cpm"
    )
    np.testing.assert_array_equal(t_cells.X, library["T cell"].X)
    assert t_cells.obs["n_cells"].tolist() == library["T cell"].obs["n_cells"].tolist()
    # Same input, same bytes.
    again = deepgami(
        capsys,
        "pseudobulk",
        tmp_path / "cells.h5ad",
        "--donor-key",
        "donor",
        "--cell-type-key",
        "ct",
        "--out",
        tmp_path / "pb2",
        "--min-cells",
        "5",
        "--min-donors-per-gene",
        "2",
        "--normalize",
        "cpm",
    )
    assert again.returncode == 0
    for path in out.iterdir():
        assert path.read_bytes() == (tmp_path / "pb2" / path.name).read_bytes(), path.name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--donor-key", "individual", "--cell-type-key", "ct"],
            "donor key 'individual' is not an .obs column",
        ),
        (
            ["--donor-key", "donor", "--cell-type-key", "ct", "--min-cells", "1000"],
            "no donor with at least 1000 cells",
        ),
        (
            ["--donor-key", "donor", "--cell-type-key", "ct", "--layer", "counts"],
            "layer 'counts' not found",
        ),
    ],
)
def test_pseudobulk_command_bad_input_is_exit_2_one_line_and_no_output(
    tmp_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    cells().write_h5ad(tmp_path / "cells.h5ad")
    result = deepgami(
        capsys, "pseudobulk", tmp_path / "cells.h5ad", *args, "--out", tmp_path / "pb"
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(tmp_path / "cells.h5ad") in lines[0] and message in lines[0], (
        lines
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells.h5ad"]


def test_pseudobulk_command_missing_file_and_non_integer_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    result = deepgami(
        capsys,
        "pseudobulk",
        tmp_path / "none.h5ad",
        "--donor-key",
        "d",
        "--cell-type-key",
        "c",
        "--out",
        tmp_path / "pb",
    )
    assert result.returncode == 2 and "none.h5ad: file not found" in result.stderr
    adata = cells(sparse=False)
    adata.X = np.log1p(adata.X)
    adata.write_h5ad(tmp_path / "norm.h5ad")
    result = deepgami(
        capsys,
        "pseudobulk",
        tmp_path / "norm.h5ad",
        "--donor-key",
        "donor",
        "--cell-type-key",
        "ct",
        "--out",
        tmp_path / "pb",
    )
    assert result.returncode == 2 and "norm.h5ad: X holds non-integer values" in result.stderr
    assert not (tmp_path / "pb").exists()


def test_simulate_cells_is_deterministic_and_only_signal_cell_types_follow_the_phenotype(
    tmp_path: Path,
) -> None:
    settings = {
        "seed": 4,
        "n_donors": 60,
        "cells_per_donor": 60,
        "n_genes": 40,
        "n_snps": 30,
        "n_signal_genes": 8,
        "n_eqtl_genes": 5,
        "effect_size": 1.5,
        "signal_cell_types": ["Microglia"],
    }
    paths = simulate_cells(tmp_path / "a", **settings)
    simulate_cells(tmp_path / "b", **settings)
    for role, path in paths.items():
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), role
    truth = json.loads(paths["truth"].read_text())
    assert truth["signal_cell_types"] == ["Microglia"] and len(truth["signal_genes"]) == 8
    adata = ad.read_h5ad(paths["cells"])
    assert adata.X.dtype == np.int32 and set(adata.obs["cell_type"]) == {
        "Excitatory",
        "Inhibitory",
        "Microglia",
    }
    labels = pd.read_csv(paths["labels"], index_col="sample")
    assert (
        set(adata.obs["donor"])
        == set(labels.index)
        == set(pd.read_csv(paths["genotype"], index_col=0).index)
    )
    result, _ = pseudobulk(adata, "donor", "cell_type", min_cells=5)
    case = labels["label"] == "case"
    # Mean log-CPM difference case - control of the signal genes, signed by their true direction.
    shift = {}
    for cell_type, out in result.items():
        x = pd.DataFrame(out.X, index=out.obs_names, columns=out.var_names)[truth["signal_genes"]]
        c = case.loc[x.index].to_numpy()
        diff = x[c].mean() - x[~c].mean()
        shift[cell_type] = float((diff * pd.Series(truth["signal_directions"])).mean())
    assert (
        shift["Microglia"] > 0.8
        and abs(shift["Excitatory"]) < 0.2
        and abs(shift["Inhibitory"]) < 0.2
    ), shift
    with pytest.raises(InputError, match="unknown cell type"):
        simulate_cells(tmp_path / "c", signal_cell_types=["Neuron"])


def test_help_shows_examples(capsys: pytest.CaptureFixture) -> None:
    for command in ("pseudobulk", "simulate-cells"):
        result = deepgami(capsys, command, "--help")
        assert result.returncode == 0 and "examples:" in result.stdout


# -- acceptance: one row of genotype + cells -> one model per cell type ----------------------------

SIGNAL = "Inhibitory"
# Reduced size (CI): 300 donors, half of them held out so that a null AUC has SD ~0.05.
SIMULATION = {
    "n_donors": 300,
    "cells_per_donor": 60,
    "n_genes": 100,
    "n_snps": 100,
    "n_signal_genes": 15,
    "effect_size": 1.0,
    "test_fraction": 0.5,
    "signal_cell_types": [SIGNAL],
}


@pytest.mark.slow
def test_run_on_a_single_cell_row_trains_one_model_per_cell_type_and_finds_the_signal(
    tmp_path: Path,
) -> None:
    data = tmp_path / "sc"
    simulate_cells(data, seed=0, **SIMULATION)
    shutil.copy(REPO / "assets" / "test" / "params.yaml", data / "params.yaml")
    (data / "samplesheet.csv").write_text(
        "id,labels,modalities,pseudobulk,donor_key,cell_type_key,params\n"
        "brain,labels.csv,snp=genotype.csv;expr=cells.h5ad,expr,donor,cell_type,params.yaml\n"
    )
    start = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepgami",
            "run",
            "--samplesheet",
            str(data / "samplesheet.csv"),
            "--outdir",
            str(tmp_path / "out"),
            "--skip",
            "prioritize,evaluate",
            "--max-workers",
            "2",
            "--no-progress",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert sorted(
        p.name for p in (out / "brain" / "pseudobulk").iterdir() if p.name != ".deepgami"
    ) == [
        "Excitatory.h5ad",
        "Inhibitory.h5ad",
        "Microglia.h5ad",
        "pseudobulk.json",
    ]
    summary = pd.read_csv(out / "summary.tsv", sep="\t")
    assert sorted(summary["cohort"].unique()) == [
        "brain.Excitatory",
        "brain.Inhibitory",
        "brain.Microglia",
    ]
    for cohort in summary["cohort"].unique():
        assert (out / cohort / "model" / "model.safetensors").is_file()
    auc = summary[summary["prediction_set"] == "all"].set_index("cell_type")["auc"]
    print(f"AUC per cell type: {auc.round(3).to_dict()} ({elapsed:.0f}s)")
    assert auc.idxmax() == SIGNAL and auc[SIGNAL] > 0.7, auc
    assert (auc.drop(SIGNAL) < 0.65).all(), auc
    assert "AUC per cell type" in (out / "summary.html").read_text()
