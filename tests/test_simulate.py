"""`deepgami simulate`: files, determinism, planted signal, shared signal and CLI errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from deepgami.cli import main
from deepgami.errors import InputError
from deepgami.data.simulate import SimulationSettings, simulate, simulate_cohort, write_cohort

SMALL = ["--n-samples", "100", "--n-snps", "200", "--n-tfs", "10", "--n-genes", "30"]
FILES = (
    "genotype.csv",
    "expression.csv",
    "labels.csv",
    "eqtl.tsv",
    "grn.tsv",
    "truth.json",
    "truth_probabilities.csv",
)


@pytest.fixture(scope="module")
def default_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "default"
    simulate(out)
    return out


def _read(out: Path):
    geno = pd.read_csv(out / "genotype.csv", index_col="sample")
    expr = pd.read_csv(out / "expression.csv", index_col="sample")
    labels = pd.read_csv(out / "labels.csv", dtype=str)
    eqtl = pd.read_csv(out / "eqtl.tsv", sep="\t")
    grn = pd.read_csv(out / "grn.tsv", sep="\t")
    truth = json.loads((out / "truth.json").read_text())
    return geno, expr, labels, eqtl, grn, truth


def test_files_and_columns(default_dir: Path) -> None:
    for name in FILES:
        assert (default_dir / name).is_file(), name
    geno, expr, labels, eqtl, grn, truth = _read(default_dir)
    assert geno.shape == (600, 1000) and geno.index.name == "sample"
    assert geno.columns[0] == "snp00001" and geno.columns.is_unique
    assert set(np.unique(geno.values)) <= {0, 1, 2}
    assert geno.dtypes.map(lambda d: d.kind == "i").all()
    tfs = [c for c in expr.columns if c.startswith("TF")]
    genes = [c for c in expr.columns if c.startswith("GENE")]
    assert len(tfs) == 40 and len(genes) == 200 and len(expr.columns) == 240
    assert tfs[0] == "TF001" and genes[0] == "GENE0001"
    assert (expr.index == geno.index).all()
    assert list(labels.columns) == ["sample", "label", "split"]
    assert set(labels["label"]) == {"control", "case"} and set(labels["split"]) == {"train", "test"}
    for prior in (eqtl, grn):
        assert list(prior.columns[:3]) == ["source", "target", "weight"]
        assert not prior.duplicated(["source", "target"]).any()
        assert set(prior["target"]) == set(genes)  # every gene is a latent node of both priors
    assert set(eqtl["source"]) <= set(geno.columns) and set(grn["source"]) <= set(tfs)
    for _, sub in eqtl.groupby("target"):  # every gene: >= 1 causal and >= 1 decoy cis edge
        assert (sub["kind"] == "cis").any() and (sub["kind"] == "decoy").any()
    assert ((eqtl["weight"] == 0) == (eqtl["kind"] == "decoy")).all()
    assert ((grn["weight"] == 0) == (grn["kind"] == "decoy")).all()


def test_stratified_split(default_dir: Path) -> None:
    labels = pd.read_csv(default_dir / "labels.csv")
    frac = labels.groupby("label")["split"].apply(lambda s: (s == "test").mean())
    assert np.allclose(frac, 0.2, atol=0.01)


def test_truth_consistent(default_dir: Path) -> None:
    geno, expr, labels, eqtl, grn, truth = _read(default_dir)
    assert truth["seed"] == 0 and truth["settings"]["n_samples"] == 600
    assert 0.5 < truth["bayes_optimal_test_auc"] < 1.0
    assert 0.85 <= truth["bayes_optimal_train_auc"] <= 0.93  # the default's tuned difficulty
    causal = set(truth["causal_genes"])
    assert len(causal) == 10 and causal <= set(expr.columns) and causal <= set(eqtl["target"])
    edges = {
        "eqtl": eqtl.set_index(["source", "target"])["weight"],
        "grn": grn.set_index(["source", "target"])["weight"],
    }
    for link in truth["causal_links"]:
        w = edges[link["prior"]][(link["source"], link["target"])]  # a prior edge ...
        assert w != 0 and w == pytest.approx(link["weight"])  # ... with the true effect
        assert link["target"] in causal
    priors = {link["prior"] for link in truth["causal_links"]}
    assert priors == {"eqtl", "grn"}
    n_causal_edges = ((eqtl["weight"] != 0) & eqtl["target"].isin(causal)).sum() + (
        (grn["weight"] != 0) & grn["target"].isin(causal)
    ).sum()
    assert n_causal_edges == len(truth["causal_links"]) == truth["counts"]["causal_links"]
    assert truth["counts"]["eqtl_edges"] == len(eqtl) and truth["counts"]["grn_edges"] == len(grn)
    assert truth["counts"]["eqtl_decoys"] == (eqtl["kind"] == "decoy").sum()
    # The stored true probabilities reproduce the reported Bayes AUC.
    prob = pd.read_csv(default_dir / "truth_probabilities.csv")
    test = (prob["split"] == "test").to_numpy()
    y = (labels["label"] == "case").to_numpy()
    assert roc_auc_score(y[test], prob["prob_case"][test]) == pytest.approx(
        truth["bayes_optimal_test_auc"], abs=1e-4
    )
    assert np.allclose(prob[["prob_control", "prob_case"]].sum(axis=1), 1, atol=1e-5)


def _lr_auc(X: np.ndarray, y: np.ndarray, test: np.ndarray, **kw) -> float:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, **kw))
    model.fit(X[~test], y[~test])
    return roc_auc_score(y[test], model.predict_proba(X[test])[:, 1])


def test_each_modality_carries_signal(default_dir: Path) -> None:
    geno, expr, labels, *_ = _read(default_dir)
    y = (labels["label"] == "case").to_numpy()
    test = (labels["split"] == "test").to_numpy()
    # SNPs alone: a sparse (L1) logistic regression on 1000 SNPs, 480 training rows.
    snp_auc = _lr_auc(
        geno.to_numpy(float), y, test, C=0.05, l1_ratio=1.0, solver="liblinear", random_state=0
    )
    assert snp_auc >= 0.65
    tf_auc = _lr_auc(expr.filter(like="TF").to_numpy(), y, test, C=0.01)
    assert tf_auc >= 0.6


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    args = ["simulate", *SMALL, "--shared-signal", "0.3"]
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        assert main([*args, "--seed", seed, "--out", str(tmp_path / name)]) == 0
    for name in FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    for name in ("genotype.csv", "expression.csv", "labels.csv", "eqtl.tsv"):
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes(), name


def test_cli_prints_build_command(tmp_path: Path, capsys) -> None:
    out = tmp_path / "small"
    assert main(["simulate", *SMALL, "--out", str(out)]) == 0
    stdout = capsys.readouterr().out.strip().splitlines()
    assert len(stdout) == 1
    assert stdout[0] == (
        f"deepgami build --modality snp={out}/genotype.csv --modality expr={out}/expression.csv "
        f"--labels {out}/labels.csv --prior snp:eqtl={out}/eqtl.tsv --prior expr:grn={out}/grn.tsv "
        f"--out {out}/cohort.h5mu"
    )
    geno, expr, labels, *_ = _read(out)
    assert geno.shape == (100, 200) and expr.shape == (100, 40)


def test_multiclass(tmp_path: Path) -> None:
    out = tmp_path / "k3"
    assert (
        main(
            [
                "simulate",
                "--n-samples",
                "300",
                "--n-snps",
                "300",
                "--n-genes",
                "60",
                "--classes",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    _, _, labels, _, _, truth = _read(out)
    assert sorted(labels["label"].unique()) == ["class0", "class1", "class2"]
    assert truth["classes"] == ["class0", "class1", "class2"]
    for name in truth["classes"]:  # stratified: every class in both splits
        assert set(labels.loc[labels["label"] == name, "split"]) == {"train", "test"}
    assert 0.5 < truth["bayes_optimal_test_auc"] < 1.0
    assert 1 / 3 < truth["bayes_optimal_test_balanced_accuracy"] < 1.0
    prob = pd.read_csv(out / "truth_probabilities.csv")
    prob_cols = [c for c in prob.columns if c.startswith("prob_")]
    assert prob_cols == [f"prob_class{i}" for i in range(3)]
    assert len(truth["phenotype_model"]["linear"][truth["causal_genes"][0]]) == 3


def _grn_part_r2(cohort) -> float:
    """Median held-out R^2 of each gene's GRN part (from TFs) regressed on its eQTL sources."""
    test = (cohort.labels["split"] == "test").to_numpy()
    tf = cohort.expression.filter(like="TF")
    tf = (tf - tf[~test].mean()) / tf[~test].std()
    geno = cohort.genotype
    eqtl, grn = cohort.eqtl, cohort.grn[cohort.grn["weight"] != 0]
    sources = eqtl.groupby("target")["source"].apply(list)
    r2 = []
    for gene, sub in grn.groupby("target"):
        part = tf[sub["source"]].to_numpy() @ sub["weight"].to_numpy()
        X = np.column_stack([np.ones(len(geno)), geno[sources[gene]].to_numpy(float)])
        coef = np.linalg.lstsq(X[~test], part[~test], rcond=None)[0]
        r2.append(r2_score(part[test], X[test] @ coef))
    return float(np.median(r2))


def test_shared_signal_makes_latent_blocks_imputable() -> None:
    kw = dict(n_samples=400, n_snps=600, n_tfs=20, n_genes=60, seed=3)
    shared = simulate_cohort(shared_signal=0.5, **kw)
    independent = simulate_cohort(shared_signal=0.0, **kw)
    assert _grn_part_r2(shared) > 0.35
    assert _grn_part_r2(independent) < 0.05
    # F changes values, not structure: the same cis and GRN edges and causal genes.
    cis = shared.eqtl[shared.eqtl["kind"] != "trans"]
    assert cis[["source", "target"]].equals(independent.eqtl[["source", "target"]])
    assert shared.grn[["source", "target"]].equals(independent.grn[["source", "target"]])
    assert shared.truth["causal_genes"] == independent.truth["causal_genes"]
    # Trans edges: driver SNP of a TF -> each causal target of that TF; drivers recorded.
    drivers = shared.truth["tf_drivers"]
    assert len(drivers) == 20 and not independent.truth["tf_drivers"]
    causal_grn = shared.grn[shared.grn["weight"] != 0]
    expected = {
        (d["snp"], g)
        for tf, ds in drivers.items()
        for d in ds
        for g in causal_grn.loc[causal_grn["source"] == tf, "target"]
    }
    trans = shared.eqtl[shared.eqtl["kind"] == "trans"]
    assert set(zip(trans["source"], trans["target"])) == expected
    assert (trans["weight"] != 0).all() and (independent.eqtl["kind"] != "trans").all()
    # TF expression is partly genetic: its driver SNPs explain about F of its variance.
    tf = shared.expression["TF001"].to_numpy()
    X = shared.genotype[[d["snp"] for d in drivers["TF001"]]].to_numpy(float)
    assert LinearRegression().fit(X, tf).score(X, tf) > 0.3


def test_program_variance_and_parquet(tmp_path: Path) -> None:
    cohort = simulate_cohort(n_samples=120, n_snps=150, n_tfs=8, n_genes=20, seed=1)
    paths = write_cohort(cohort, tmp_path / "pq", fmt="parquet")
    assert paths["genotype"].name == "genotype.parquet"
    geno = pd.read_parquet(paths["genotype"])
    assert list(geno.columns[:2]) == ["sample", "snp00001"]
    assert (geno.set_index("sample").to_numpy() == cohort.genotype.to_numpy()).all()
    expr = pd.read_parquet(paths["expression"]).set_index("sample")
    assert np.allclose(expr.to_numpy(), cohort.expression.to_numpy())


def test_small_settings_and_library_validation() -> None:
    cohort = simulate_cohort(n_samples=40, n_snps=2, n_tfs=2, n_genes=3)  # loci reuse SNPs
    assert cohort.truth["settings"]["n_causal_genes"] == 3
    with pytest.raises(InputError, match="--classes"):
        SimulationSettings(classes=1).validate()
    with pytest.raises(InputError, match="--n-causal-genes"):
        simulate_cohort(n_genes=5, n_causal_genes=6)


@pytest.mark.parametrize(
    "bad",
    [
        ["--classes", "1"],
        ["--n-samples", "0"],
        ["--n-samples", "10"],
        ["--shared-signal", "1.5"],
        ["--test-fraction", "0"],
        ["--n-snps", "1"],
        ["--n-causal-genes", "0"],
    ],
)
def test_bad_args_exit_2_one_line(tmp_path: Path, capsys, bad: list[str]) -> None:
    out = tmp_path / "bad"
    assert main(["simulate", *SMALL, *bad, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not out.exists() and not list(tmp_path.iterdir())


def test_existing_directory(tmp_path: Path, capsys) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert main(["simulate", *SMALL, "--out", str(other)]) == 2
    assert main(["simulate", *SMALL, "--out", str(other), "--overwrite"]) == 2
    assert (other / "keep.txt").read_text() == "mine"  # never replaced
    out = tmp_path / "sim"
    assert main(["simulate", *SMALL, "--out", str(out)]) == 0
    first = (out / "genotype.csv").read_bytes()
    assert main(["simulate", *SMALL, "--out", str(out), "--seed", "1"]) == 2
    assert main(["simulate", *SMALL, "--out", str(out), "--seed", "1", "--overwrite"]) == 0
    assert (out / "genotype.csv").read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "sim"]  # no temp leftovers


def test_failure_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    import deepgami.data.simulate as sim

    calls = []

    def broken(df, path, fmt):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        path.write_text("partial")

    monkeypatch.setattr(sim, "_write_matrix", broken)
    with pytest.raises(OSError):
        simulate(tmp_path / "out", n_samples=40, n_snps=20, n_tfs=4, n_genes=5)
    assert not list(tmp_path.iterdir())


def test_fixed_edges_per_gene_plant_few_true_regulators_among_decoys() -> None:
    from deepgami.data.simulate import simulate_cohort

    c = simulate_cohort(
        n_samples=100,
        n_snps=2000,
        n_tfs=40,
        n_genes=30,
        eqtl_edges_per_gene=8,
        eqtl_causal_per_gene=2,
        grn_edges_per_gene=6,
        grn_causal_per_gene=2,
    )
    per_gene = c.eqtl.groupby("target")["kind"].value_counts().unstack(fill_value=0)
    assert (per_gene["cis"] == 2).all() and (per_gene["decoy"] == 6).all()
    per_gene = c.grn.groupby("target")["kind"].value_counts().unstack(fill_value=0)
    assert (per_gene["causal"] == 2).all() and (per_gene["decoy"] == 4).all()


def test_causal_edges_above_edges_is_refused(tmp_path) -> None:
    from deepgami.cli import main

    code = main(
        [
            "simulate",
            "--out",
            str(tmp_path / "s"),
            "--eqtl-edges-per-gene",
            "2",
            "--eqtl-causal-per-gene",
            "3",
        ]
    )
    assert code == 2 and not (tmp_path / "s").exists()


# -- the benchmark family's settings (issue 22) ----------------------------------------------------

FAMILY_KW = dict(n_samples=600, n_snps=300, n_tfs=12, n_genes=40, seed=2)


def test_new_settings_at_their_defaults_change_no_draw() -> None:
    base = simulate_cohort(**FAMILY_KW)
    same = simulate_cohort(**FAMILY_KW, phenotype="classes", targets_measured=True, interaction=1.0)
    for name in ("genotype", "expression", "labels", "eqtl", "grn", "probabilities"):
        pd.testing.assert_frame_equal(getattr(base, name), getattr(same, name))
    assert base.truth["settings"]["phenotype"] == "classes"
    assert base.truth["settings"]["targets_measured"] is True


def test_oracle_inputs_are_the_programs_and_their_genetic_part(tmp_path: Path) -> None:
    c = simulate_cohort(**FAMILY_KW, shared_signal=0.5)
    paths = write_cohort(c, tmp_path / "o")
    programs = pd.read_csv(paths["programs"], index_col="sample")
    genetic = pd.read_csv(paths["genetic_programs"], index_col="sample")
    assert programs.shape == genetic.shape == (600, 40)
    assert json.loads(paths["truth"].read_text())["files"]["programs"] == "programs.csv"
    # Programs have unit variance; the genetic part is the genotype's share of each of them,
    # and the measured gene is the program plus noise.
    assert np.allclose(programs.var(), 1.0, atol=0.2)
    gvar = c.truth["phenotype_model"]["genetic_variance"]
    for gene in c.truth["causal_genes"]:
        assert genetic[gene].var() == pytest.approx(gvar[gene], abs=0.15)
        assert 0.4 <= gvar[gene] <= 1.0  # cis share U(0.4, 0.8) plus half the TF part
        fit = LinearRegression().fit(c.genotype.to_numpy(float), programs[gene])
        assert np.corrcoef(fit.predict(c.genotype.to_numpy(float)), genetic[gene])[0, 1] > 0.8
    corr = np.corrcoef(programs["GENE0001"], c.expression["GENE0001"])[0, 1]
    assert corr > 0.85  # noise SD 0.5: correlation 1 / sqrt(1.25) = 0.89


def test_ordinal_phenotype_thresholds_one_score() -> None:
    c = simulate_cohort(**FAMILY_KW, phenotype="ordinal", classes=3)
    truth = c.truth
    assert truth["classes"] == ["class0", "class1", "class2"]
    assert all(190 <= v <= 210 for v in truth["class_counts"].values())  # sample tertiles
    model = truth["phenotype_model"]
    assert model["type"] == "ordinal" and len(model["thresholds"]) == 2
    assert all(len(v) == 1 for v in model["linear"].values())  # one score
    prob = c.probabilities[["prob_class0", "prob_class1", "prob_class2"]].to_numpy()
    assert np.allclose(prob.sum(axis=1), 1) and (prob >= 0).all()
    # Ordered: a higher expected class goes with a higher class label.
    y = c.labels["label"].str[-1].astype(int).to_numpy()
    expected_class = prob @ np.arange(3)
    assert np.corrcoef(expected_class, y)[0, 1] > 0.3
    assert 0.6 < truth["bayes_optimal_test_auc"] < 1.0


def test_numeric_phenotype_is_the_score_plus_noise(tmp_path: Path) -> None:
    c = simulate_cohort(**FAMILY_KW, phenotype="numeric", effect_size=0.5)
    assert c.truth["classes"] == [] and c.truth["class_counts"] == {}
    paths = write_cohort(c, tmp_path / "n")
    assert paths["probabilities"].name == "truth_expected.csv"
    labels = pd.read_csv(paths["labels"])
    expected = pd.read_csv(paths["probabilities"])["expected"].to_numpy()
    resid = labels["label"].to_numpy() - expected
    assert resid.std() == pytest.approx(np.pi / np.sqrt(3), rel=0.1)
    assert 0.1 < c.truth["bayes_optimal_test_r2"] < 0.9
    test = (labels["split"] == "test").to_numpy()
    assert test.mean() == pytest.approx(0.2, abs=0.01)
    # the split is stratified by quintile: the test rows span the range
    assert labels.loc[test, "label"].quantile([0.1, 0.9]).diff().iloc[-1] > 1.0


def test_unmeasured_targets_and_no_interaction() -> None:
    measured = simulate_cohort(**FAMILY_KW)
    hidden = simulate_cohort(**FAMILY_KW, targets_measured=False)
    assert list(hidden.expression.columns) == [f"TF{i:03d}" for i in range(1, 13)]
    pd.testing.assert_frame_equal(hidden.expression, measured.expression[hidden.expression.columns])
    pd.testing.assert_frame_equal(hidden.labels, measured.labels)  # same draws
    assert set(hidden.grn["target"]) == set(measured.grn["target"])  # targets stay prior targets
    linear = simulate_cohort(**FAMILY_KW, interaction=0.0)
    terms = linear.truth["phenotype_model"]["nonlinear"]
    assert terms and all(c == 0 for t in terms for c in t["coef"])
    assert linear.truth["phenotype_model"]["linear"] == measured.truth["phenotype_model"]["linear"]


def test_cli_family_options(tmp_path: Path) -> None:
    out = tmp_path / "fam"
    args = ["simulate", *SMALL, "--phenotype", "ordinal", "--classes", "3"]
    assert main([*args, "--no-targets-measured", "--interaction", "0.5", "--out", str(out)]) == 0
    truth = json.loads((out / "truth.json").read_text())
    s = truth["settings"]
    assert (s["phenotype"], s["targets_measured"], s["interaction"]) == ("ordinal", False, 0.5)
    assert pd.read_csv(out / "expression.csv", index_col=0).shape == (100, 10)
    assert main(["simulate", *SMALL, "--phenotype", "numeric", "--out", str(tmp_path / "n")]) == 0
    assert (tmp_path / "n" / "truth_expected.csv").is_file()


def test_bad_family_args(tmp_path: Path) -> None:
    assert main(["simulate", *SMALL, "--interaction", "-1", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()
    with pytest.raises(InputError, match="--phenotype"):
        SimulationSettings(phenotype="survival").validate()
    with pytest.raises(SystemExit):  # argparse's choices
        main(["simulate", *SMALL, "--phenotype", "survival", "--out", str(tmp_path / "y")])
