"""The DeepGAMI model class, metrics, and the train / predict commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

import model_fixtures
from model_fixtures import single_thread  # noqa: F401  (autouse)
from deepgami.data import cohort
from deepgami.datasets import rosmap_dir
from deepgami.cli import main
from deepgami.errors import InputError
from deepgami.data.lazy_inputs import materialize
from deepgami.metrics import block_r2, classification_metrics, regression_metrics
from deepgami.data.arrays import read_arrays
from deepgami.model import DeepGAMI, fit_predict_fold

FULL = os.environ.get("DEEPGAMI_FULL") == "1"


@pytest.fixture(scope="module")
def sim():
    mdata, _ = model_fixtures.simulated_mudata(n_samples=120, seed=0, missing_expr=0.15)
    return mdata


@pytest.fixture(scope="module")
def trained(sim):
    return DeepGAMI.fit(sim, model_fixtures.fast_params(), seed=0)


# -- metrics ----------------------------------------------------------------------------------------


def test_classification_metrics_binary_and_multiclass():
    y = ["a", "b", "b", "a", "b"]
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3], [0.1, 0.9]])
    m = classification_metrics(y, proba, ["a", "b"])
    assert m["accuracy"] == pytest.approx(0.8)
    assert m["balanced_accuracy"] == pytest.approx((1.0 + 2 / 3) / 2)
    assert m["auc"] == pytest.approx(1.0)
    assert m["recall"] == {"a": 1.0, "b": pytest.approx(2 / 3)}
    assert m["confusion_matrix"]["matrix"] == [[2, 0], [1, 2]]
    y3 = ["x", "y", "z", "x", "y", "z"]
    p3 = np.eye(3)[[0, 1, 2, 0, 2, 1]] * 0.7 + 0.1
    m3 = classification_metrics(y3, p3, ["x", "y", "z"])
    assert m3["auc"] == m3["auc_macro"] and 0.5 < m3["auc"] <= 1.0 and "auc_weighted" in m3
    assert classification_metrics(["a", "a"], proba[:2], ["a", "b"])["auc"] is None
    r = regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert r["mse"] == pytest.approx(1 / 3) and r["pearson"] > 0.9


def test_block_r2():
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(100, 4))
    assert block_r2(obs, obs) == pytest.approx(1.0)
    assert block_r2(obs, np.broadcast_to(obs.mean(0), obs.shape)) == pytest.approx(0.0)


# -- the model ----------------------------------------------------------------------------------------


def test_fit_records_cv_history_and_imputation(trained, sim):
    cfg = trained.config
    assert cfg["modalities"] == ["snp", "expr"]
    assert cfg["classes"] == ["case", "control"]
    assert cfg["latent_nodes"] == cohort.latent_nodes(sim)
    n_train = int((sim.obs["split"] == "train").sum())
    assert cfg["training"]["n_train"] == n_train  # only split == 'train' rows
    assert set(trained.cv_results["fold"]) == {0, 1}
    assert {"all_auc", "snp_auc", "expr_auc", "snp_meanfill_auc", "r2_expr"} <= set(
        trained.cv_results.columns
    )
    assert len(trained.history) == cfg["training"]["epochs_run"]
    assert set(trained.imputation["blocks"]) == {"snp", "expr"}
    # A guided encoder's inputs are prior sources only, and its edges index them.
    src, dst = trained.edges("snp")
    assert src.max() < len(trained.features("snp")) and dst.max() < len(cfg["latent_nodes"])
    eqtl_sources = set(sim.mod["snp"].var_names[cohort.modality_edges(sim, "snp")[1]])
    assert set(trained.features("snp")) <= eqtl_sources


def test_predict_any_subset_of_modalities(trained, sim):
    full = trained.predict(sim)
    assert list(full.columns) == [
        "sample",
        "label",
        "predicted",
        "prob_case",
        "prob_control",
        "modalities",
    ]
    np.testing.assert_allclose(full[["prob_case", "prob_control"]].sum(1), 1.0, rtol=1e-6)
    has_expr = cohort.present(sim, "expr")
    assert (full["modalities"][~has_expr] == "snp").all() and (
        full["modalities"][has_expr] == "snp,expr"
    ).all()
    only = trained.predict(sim, modalities=["snp"])
    assert (only["modalities"] == "snp").all()
    # Samples without expression get the same prediction either way: their block was imputed anyway.
    np.testing.assert_allclose(
        only["prob_case"][~has_expr], full["prob_case"][~has_expr], rtol=1e-6
    )
    assert not np.allclose(only["prob_case"][has_expr], full["prob_case"][has_expr])
    with pytest.raises(InputError, match="unknown modality 'rna'"):
        trained.predict(sim, modalities=["rna"])


def test_prepare_inputs_and_predict_proba(trained, sim):
    inputs = trained.prepare_inputs(sim)
    # The stored matrix is shared, not copied, until rows are materialized.
    assert np.shares_memory(inputs.xs[0].raw, sim.mod["snp"].X)
    xs = materialize(inputs.xs)
    assert [x.dtype for x in xs] == [torch.float32, torch.float32]
    assert xs[0].shape == (sim.n_obs, len(trained.features("snp")))
    assert inputs.present.shape == (sim.n_obs, 2)
    proba = trained.predict_proba(inputs)
    np.testing.assert_allclose(
        proba, trained.predict(sim)[["prob_case", "prob_control"]].to_numpy(), rtol=1e-6
    )


def test_int8_dosages_stay_int8_and_predict_like_float32(trained, sim):
    as_int8 = sim.copy()
    as_int8.mod["snp"].X = np.asarray(sim.mod["snp"].X).astype(np.int8)
    data = read_arrays(as_int8)
    assert data.X[0].dtype == np.int8 and np.shares_memory(data.X[0], as_int8.mod["snp"].X)
    inputs = trained.prepare_inputs(as_int8)
    assert inputs.xs[0].raw.dtype == np.int8
    np.testing.assert_allclose(trained.predict_proba(inputs), trained.predict_proba(sim), rtol=1e-6)
    # Fitting on int8 storage gives the same preprocessing as on float32.
    setting = {**trained.config["setting"], "max_epochs": 1}
    rows = np.arange(sim.n_obs)
    a, b = (
        DeepGAMI.fit_rows(data, rows, setting, 0),
        DeepGAMI.fit_rows(read_arrays(sim), rows, setting, 0),
    )
    np.testing.assert_array_equal(a.preprocessors[0].center, b.preprocessors[0].center)
    np.testing.assert_array_equal(a.preprocessors[0].scale, b.preprocessors[0].scale)


def test_saving_twice_writes_the_same_bytes(trained, tmp_path):
    """The weights file is byte-identical from save to save (safetensors' metadata order varies
    between calls, so the header holds one metadata key)."""
    files = set()
    for i in range(6):
        trained.save(tmp_path / f"m{i}")
        files.add((tmp_path / f"m{i}" / "model.safetensors").read_bytes())
    assert len(files) == 1


def test_save_load_round_trip(trained, sim, tmp_path):
    trained.save(tmp_path / "m")
    names = {p.name for p in (tmp_path / "m").iterdir()}
    assert {
        "model.safetensors",
        "config.json",
        "cv_results.tsv",
        "cv_summary.tsv",
        "training_history.tsv",
        "imputation.json",
    } <= names
    assert "model.pt" not in names  # no pickle in any output
    state = load_file(tmp_path / "m" / "model.safetensors")
    assert "encoders.0.src" in state and "encoders.0.weight" in state
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["preprocessing"]["snp"]["features"] == trained.features("snp")
    assert {"deepgami", "torch"} <= set(config["versions"])
    loaded = DeepGAMI.load(tmp_path / "m")
    pd.testing.assert_frame_equal(loaded.predict(sim), trained.predict(sim))
    pd.testing.assert_frame_equal(loaded.predict(sim, ["expr"]), trained.predict(sim, ["expr"]))
    # Saving again over an existing directory replaces it.
    loaded.save(tmp_path / "m")
    with pytest.raises(InputError, match="not a DeepGAMI model directory"):
        DeepGAMI.load(tmp_path)


@pytest.fixture(scope="module")
def bagged(sim):
    return DeepGAMI.fit(sim, model_fixtures.fast_params(bagging=2), seed=0)


def test_bagging_averages_networks_fitted_on_row_subsets(trained, bagged, sim):
    # Without bagging the model is the refit alone; with it, the refit (the same fit, same seed) plus
    # two networks on other rows, sharing its preprocessing, whose probabilities are averaged.
    assert len(trained.members) == 1 and len(bagged.members) == 3
    assert bagged.config["network"]["n_members"] == 3
    one = DeepGAMI(bagged.module, bagged.config, bagged.preprocessors)
    np.testing.assert_array_equal(one.predict_proba(sim), trained.predict_proba(sim))
    inputs = bagged.prepare_inputs(sim)
    each = []
    for net in bagged.members:
        single = DeepGAMI(net, bagged.config, bagged.preprocessors)
        each.append(single.predict_proba(inputs))
    np.testing.assert_allclose(bagged.predict_proba(inputs), np.mean(each, axis=0), atol=1e-12)
    assert not np.allclose(each[1], each[2])
    weights = [net.encoders[0].weight.detach() for net in bagged.members]
    assert not torch.equal(weights[0], weights[1])
    assert torch.equal(bagged.members[1].encoders[0].src, bagged.module.encoders[0].src)


def test_bagged_members_stop_early_on_the_rows_out_of_their_bag(sim, monkeypatch):
    # A member trains on its bag and stops early on the training rows left out of it (an inner
    # split of the bag trained on 64% of the rows and left a fifth unused); val_fraction 0 asks for
    # no early stopping, and then a member trains on its bag alone.
    from deepgami.model import _fitting

    seen = []
    real = _fitting.train_model

    def spy(model, data, rows, inputs, targets, setting, seed, on_epoch=None, validation=None):
        real(model, data, rows, inputs, targets, setting, seed, on_epoch, validation)
        seen.append((rows, validation, dict(model.config["training"])))

    monkeypatch.setattr(_fitting, "train_model", spy)
    DeepGAMI.fit(sim, model_fixtures.fast_params(bagging=2, cv_folds=0), seed=0)
    (refit_rows, refit_validation, _), *members = seen
    assert refit_validation is None and len(members) == 2
    for rows, validation, record in members:
        np.testing.assert_array_equal(rows, refit_rows)
        assert 0.15 < len(validation) / len(rows) < 0.25 and np.isin(validation, rows).all()
        assert record["n_validation"] == len(validation)
        assert record["n_inner_train"] == len(rows) - len(validation)
    assert not np.array_equal(members[0][1], members[1][1])

    seen.clear()
    DeepGAMI.fit(sim, model_fixtures.fast_params(bagging=1, cv_folds=0, val_fraction=0), seed=0)
    (refit_rows, _, _), (rows, validation, record) = seen
    assert validation is None and record["n_validation"] == 0
    assert len(rows) == round(0.8 * len(refit_rows)) and np.isin(rows, refit_rows).all()


def test_modality_dropout_auto_always_hides_a_side_by_side_block(sim, monkeypatch):
    # auto: the head of a cohort without a prior (blocks side by side) never sees every block of a
    # training row at once (late fusion); with a prior (summed blocks) a row loses one 30% of the time.
    from deepgami.train import loop

    rates = []
    real = loop.hide_modalities

    def spy(present, rate, generator):
        rates.append(rate)
        return real(present, rate, generator)

    monkeypatch.setattr(loop, "hide_modalities", spy)
    dense = model_fixtures.dense_mudata(n_samples=60)
    model = DeepGAMI.fit(dense, model_fixtures.fast_params(cv_folds=0), seed=0)
    assert model.config["network"]["latent_combine"] == "concat" and set(rates) == {1.0}
    rates.clear()
    model = DeepGAMI.fit(sim, model_fixtures.fast_params(cv_folds=0), seed=0)
    assert model.config["network"]["latent_combine"] == "sum" and set(rates) == {0.3}
    rates.clear()
    DeepGAMI.fit(dense, model_fixtures.fast_params(cv_folds=0, modality_dropout=0.5), seed=0)
    assert set(rates) == {0.5}


def test_bagged_model_round_trip(bagged, sim, tmp_path):
    bagged.save(tmp_path / "m")
    state = load_file(tmp_path / "m" / "model.safetensors")
    assert "encoders.0.weight" in state and "members.2.encoders.0.weight" in state
    assert "members.3.encoders.0.weight" not in state
    loaded = DeepGAMI.load(tmp_path / "m")
    assert len(loaded.members) == 3
    pd.testing.assert_frame_equal(loaded.predict(sim), bagged.predict(sim))
    pd.testing.assert_frame_equal(loaded.predict(sim, ["snp"]), bagged.predict(sim, ["snp"]))
    # Weights that lack a member the config names are an input error, not a traceback.
    save_file(
        {k: v for k, v in state.items() if not k.startswith("members.2.")},
        tmp_path / "m" / "model.safetensors",
    )
    with pytest.raises(InputError, match="weights do not match config.json"):
        DeepGAMI.load(tmp_path / "m")


def test_features_are_aligned_by_name_never_by_position(trained, sim):
    base = trained.predict(sim)
    # Reverse the expression columns: same predictions.
    shuffled = sim.copy()
    expr = shuffled.mod["expr"]
    shuffled.mod["expr"] = expr[:, expr.var_names[::-1]].copy()
    shuffled.update()
    pd.testing.assert_frame_equal(trained.predict(shuffled), base)
    # Drop a feature the model uses with every feature required: a clear error naming it.
    used = trained.features("expr")[0]
    shuffled.mod["expr"] = expr[:, [v for v in expr.var_names if v != used]].copy()
    shuffled.update()
    with pytest.raises(InputError, match=f"input features \\(1 missing, e.g. {used}\\)"):
        trained.predict(shuffled, min_coverage=1.0)


def test_complete_case_training_uses_only_complete_samples(sim):
    model = DeepGAMI.fit(
        sim, model_fixtures.fast_params(missing="complete_case", cv_folds=0), seed=0
    )
    complete = (
        cohort.present(sim, "expr")
        & cohort.present(sim, "snp")
        & (sim.obs["split"] == "train").to_numpy()
    )
    assert model.config["training"]["n_train"] == int(complete.sum())
    impute = DeepGAMI.fit(sim, model_fixtures.fast_params(cv_folds=0), seed=0)
    assert impute.config["training"]["n_train"] > model.config["training"]["n_train"]


def test_dense_regression_and_multiclass():
    dense = model_fixtures.dense_mudata(n_samples=90, seed=1, regression=True)
    assert read_arrays(dense).task == "regression"
    model = DeepGAMI.fit(dense, model_fixtures.fast_params(), seed=0)
    table = model.predict(dense)
    assert "prob_case" not in table and table["predicted"].notna().all()
    assert model.metrics(table)["pearson"] > 0.5
    assert model.module.n_latent == 8 and model.config["latent_nodes"] is None
    multi, _ = model_fixtures.simulated_mudata(n_samples=150, seed=1, classes=3)
    model = DeepGAMI.fit(multi, model_fixtures.fast_params(cv_folds=0), seed=0)
    table = model.predict(multi)
    assert [c for c in table.columns if c.startswith("prob_")] == [
        "prob_class0",
        "prob_class1",
        "prob_class2",
    ]
    assert set(model.metrics(table)["recall"]) == {"class0", "class1", "class2"}


def test_fit_predict_fold_and_prior_override(sim):
    data = read_arrays(sim)
    train = np.flatnonzero(data.split == "train")
    test = np.flatnonzero(data.split == "test")
    params = model_fixtures.fast_params(max_epochs=3)
    result = fit_predict_fold(sim, train, test, params, seed=0)
    assert set(result.metrics) == {"all", "snp", "expr", "snp_meanfill", "expr_meanfill"}
    assert len(result.predictions["all"]) == len(test)
    assert set(result.imputation_r2) == {"snp", "expr"}
    # Swap the eQTL prior for a random network of the same size.
    _, src, dst = cohort.modality_edges(sim, "snp")
    rng = np.random.default_rng(0)
    pairs = np.unique(
        np.column_stack(
            [
                rng.integers(0, sim.mod["snp"].n_vars, 3 * len(src)),
                rng.integers(0, dst.max() + 1, 3 * len(src)),
            ]
        ),
        axis=0,
    )[: len(src)]
    swapped = fit_predict_fold(
        sim,
        train,
        test,
        params,
        seed=0,
        prior_override={"snp": ("random", pairs[:, 0], pairs[:, 1])},
    )
    assert swapped.model.config["priors"]["snp"] == "random"
    assert len(swapped.model.edges("snp")[0]) == len(pairs)


def test_bad_cohorts_are_input_errors(sim):
    one = sim.copy()
    del one.mod["expr"]
    one.update()
    one.uns["deepgami"]["modality_order"] = ["snp"]
    # One modality is a cohort, but its prior lost every target with the expression: no edge left.
    with pytest.raises(InputError, match="has no edge"):
        DeepGAMI.fit(one, model_fixtures.fast_params())
    with pytest.raises(InputError, match="fewer training samples than cv_folds"):
        DeepGAMI.fit(sim, model_fixtures.fast_params(cv_folds=60))


# -- commands -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cohort_file(sim, tmp_path_factory):
    path = tmp_path_factory.mktemp("cohort") / "cohort.h5mu"
    cohort.write_cohort(sim, path)
    return path


@pytest.fixture(scope="module")
def params_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("params") / "params.yaml"
    path.write_text(
        "grid:\n  hidden_layers: [[16]]\n  learning_rate: [0.01]\n  weight_decay: [0.0001]\n"
        "  lambda: [0.5]\n  dropout: [0.2]\n  early_stopping_on: [task]\nmax_epochs: 10\ncv_folds: 2\n"
    )
    return path


def test_train_and_predict_commands(sim, cohort_file, params_file, tmp_path, capsys):
    model_dir = tmp_path / "model"
    assert (
        main(
            [
                "train",
                str(cohort_file),
                "--out",
                str(model_dir),
                "--params",
                str(params_file),
                "--seed",
                "3",
                "--max-epochs",
                "5",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "cross-validated" in out and "imputation R^2" in out and "+ refit + 5 bagged)" in out
    config = json.loads((model_dir / "config.json").read_text())
    assert (
        config["seed"] == 3
        and config["params"]["max_epochs"] == 5
        and config["network"]["n_members"] == 6
    )
    preds = tmp_path / "preds.tsv"
    assert (
        main(["predict", str(model_dir), str(cohort_file), "--out", str(preds), "--split", "test"])
        == 0
    )
    table = pd.read_csv(preds, sep="\t")
    assert table["sample"].tolist() == list(sim.obs_names[sim.obs["split"] == "test"])
    assert list(table.columns) == [
        "sample",
        "label",
        "predicted",
        "prob_case",
        "prob_control",
        "modalities",
    ]
    metrics = json.loads((tmp_path / "preds.metrics.json").read_text())
    assert {
        "accuracy",
        "balanced_accuracy",
        "auc",
        "f1_macro",
        "recall",
        "confusion_matrix",
    } <= set(metrics)
    assert metrics["n"] == len(table)
    # Same seed twice: byte-identical predictions.
    again_dir = tmp_path / "again"
    assert (
        main(
            [
                "train",
                str(cohort_file),
                "--out",
                str(again_dir),
                "--params",
                str(params_file),
                "--seed",
                "3",
                "--max-epochs",
                "5",
                "--quiet",
            ]
        )
        == 0
    )
    again = tmp_path / "again.tsv"
    assert (
        main(["predict", str(again_dir), str(cohort_file), "--out", str(again), "--split", "test"])
        == 0
    )
    assert again.read_bytes() == preds.read_bytes()
    # Genotype only.
    snp_only = tmp_path / "snp.tsv"
    assert (
        main(
            [
                "predict",
                str(model_dir),
                str(cohort_file),
                "--out",
                str(snp_only),
                "--modalities",
                "snp",
            ]
        )
        == 0
    )
    assert set(pd.read_csv(snp_only, sep="\t")["modalities"]) == {"snp"}


def test_command_errors_exit_2_and_leave_nothing(cohort_file, params_file, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("imputer: cubic\n")
    assert (
        main(["train", str(cohort_file), "--out", str(tmp_path / "m"), "--params", str(bad)]) == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(bad) in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()
    assert (
        main(
            [
                "predict",
                str(tmp_path / "nomodel"),
                str(cohort_file),
                "--out",
                str(tmp_path / "p.tsv"),
            ]
        )
        == 2
    )
    model_dir = tmp_path / "model"
    assert (
        main(
            [
                "train",
                str(cohort_file),
                "--out",
                str(model_dir),
                "--params",
                str(params_file),
                "--cv-folds",
                "0",
                "--max-epochs",
                "2",
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    for extra, fragment in (
        (["--modalities", "rna"], "unknown modality 'rna'"),
        (["--split", "nope"], "no sample has split 'nope'"),
    ):
        assert (
            main(
                [
                    "predict",
                    str(model_dir),
                    str(cohort_file),
                    "--out",
                    str(tmp_path / "p.tsv"),
                    *extra,
                ]
            )
            == 2
        )
        err = capsys.readouterr().err
        assert fragment in err and str(cohort_file) in err
    assert not list(tmp_path.glob("p*"))


# -- real data ----------------------------------------------------------------------------------------

ROSMAP = rosmap_dir()


def test_rosmap_reduced_deepgami_close_to_logistic_regression():
    """3-fold CV on ROSMAP (mrna + meth, dense mode), one setting: DeepGAMI's mean AUC is within 0.05
    of a tuned logistic regression on the same folds (benchmarks/accuracy.py has the full figures)."""
    import anndata as ad
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import StandardScaler

    from deepgami.train import cv_splits

    mods = {}
    for name in ("mrna", "meth"):
        df = pd.read_csv(ROSMAP / f"{name}.csv", index_col=0)
        mods[name] = ad.AnnData(
            df.to_numpy(np.float32),
            obs=pd.DataFrame(index=df.index.astype(str)),
            var=pd.DataFrame(index=df.columns.astype(str)),
        )
    mdata, _ = cohort.assemble_cohort(mods, pd.read_csv(ROSMAP / "labels.csv", index_col=0))
    data = read_arrays(mdata)
    params = model_fixtures.fast_params(
        grid={
            "hidden_layers": [[8]],
            "dropout": [0.0],
            "learning_rate": [0.005],
            "weight_decay": [0.01],
            "lambda": [1.0],
            "latent_dim": [32],
        },
        max_epochs=40,
        patience=10,
    )
    X = np.hstack(data.X)
    dg, lr = [], []
    for train, test in cv_splits(data.labels, 3, seed=0, stratify=True):
        dg.append(fit_predict_fold(data, train, test, params, seed=0).metrics["all"]["auc"])
        scaler = StandardScaler().fit(X[train])
        model = LogisticRegressionCV(Cs=10, cv=3, max_iter=2000, scoring="roc_auc").fit(
            scaler.transform(X[train]), data.labels[train]
        )
        proba = model.predict_proba(scaler.transform(X[test]))[
            :, list(model.classes_).index(data.classes[1])
        ]
        lr.append(roc_auc_score(data.labels[test] == data.classes[1], proba))
    assert np.mean(dg) >= np.mean(lr) - 0.05, (dg, lr)


# -- end to end -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_simulate_build_train_predict_end_to_end(tmp_path):
    """`deepgami simulate -> build -> train -> predict` through the real CLI; AUC well above chance."""
    size = (
        []
        if FULL
        else [
            "--n-samples",
            "400",
            "--n-snps",
            "300",
            "--n-genes",
            "60",
            "--n-causal-genes",
            "5",
            "--effect-size",
            "2",
            "--test-fraction",
            "0.25",
        ]
    )
    exe = [sys.executable, "-m", "deepgami"]

    def run(*args):
        done = subprocess.run([*exe, *args], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done

    sim_dir = tmp_path / "sim"
    run("simulate", "--out", str(sim_dir), "--seed", "1", "--shared-signal", "0.5", *size)
    cohort_path = tmp_path / "cohort.h5mu"
    run(
        "build",
        "--modality",
        f"snp={sim_dir / 'genotype.csv'}",
        "--modality",
        f"expr={sim_dir / 'expression.csv'}",
        "--labels",
        str(sim_dir / "labels.csv"),
        "--prior",
        f"snp:eqtl={sim_dir / 'eqtl.tsv'}",
        "--prior",
        f"expr:grn={sim_dir / 'grn.tsv'}",
        "--out",
        str(cohort_path),
        "--quiet",
    )
    params = tmp_path / "params.yaml"
    params.write_text(
        "{}\n"
        if FULL
        else "cv_folds: 2\ngrid:\n  weight_decay: [0.03]\n  early_stopping_on: [task]\n"
    )
    run(
        "train",
        str(cohort_path),
        "--out",
        str(tmp_path / "model"),
        "--params",
        str(params),
        "--quiet",
    )
    run(
        "predict",
        str(tmp_path / "model"),
        str(cohort_path),
        "--out",
        str(tmp_path / "p.tsv"),
        "--split",
        "test",
    )
    metrics = json.loads((tmp_path / "p.metrics.json").read_text())
    assert metrics["auc"] > 0.7


def test_training_never_holds_a_float_copy_of_the_genotypes(monkeypatch):
    """Memory discipline (issue #7): int8 dosages are preprocessed a minibatch (or a bounded chunk)
    at a time, so fitting allocates far less than one float32 copy of the genotype matrix. The
    encoder start reads one float32 copy up to JOINT_INIT_MAX_VALUES (1 GiB); lowered here so that
    this small cohort takes the genome-scale path."""
    import tracemalloc

    import deepgami.train.encoder_init

    monkeypatch.setattr(deepgami.train.encoder_init, "JOINT_INIT_MAX_VALUES", 1_000_000)
    from deepgami.train import expand_grid

    mdata, _ = model_fixtures.simulated_mudata(
        n_samples=300, n_snps=20_000, n_tfs=8, n_genes=12, seed=1
    )
    mdata.mod["snp"].X = np.asarray(mdata.mod["snp"].X).astype(np.int8)
    data = read_arrays(mdata)
    float32_copy = data.X[0].size * 4  # 24 MB
    setting = expand_grid(model_fixtures.fast_params(), dense=False)[0].replace(max_epochs=2)
    tracemalloc.start()
    try:
        model = DeepGAMI.fit_rows(data, np.flatnonzero(data.split == "train"), setting, 0)
        model.predict(mdata)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < float32_copy / 2, f"peak traced allocation {peak / 1e6:.1f} MB"


# -- byte-identical results across refactors -----------------------------------------------------------

GOLDEN = Path(__file__).parent / "data"


def golden_predictions(model: DeepGAMI, mdata) -> str:
    """All, snp-only and expr-only predictions as one TSV text (9 significant digits)."""
    tables = []
    for mods in (None, ["snp"], ["expr"]):
        table = model.predict(mdata, mods)
        table.insert(0, "given", ",".join(mods) if mods else "all")
        tables.append(table)
    return pd.concat(tables).to_csv(
        sep="\t", index=False, float_format="%.9g", lineterminator="\n", na_rep="NA"
    )


def test_predictions_match_the_recorded_golden_file(tmp_path):
    """Seed 0, an explicit params file (every key given) and a tiny fixed cohort: the predictions are
    the bytes recorded in tests/data/golden_predictions.tsv, also after a save/load round trip.
    Recorded before the model/ split (issue 13); re-recorded on purpose once, when the head's group
    lasso became one group per latent gene over all blocks (issue 14), and when bagged members
    began to stop early on the rows out of their bag (issue 22). A change of results must re-record
    the file on purpose."""
    from deepgami.train import load_params

    mdata, _ = model_fixtures.simulated_mudata(
        n_samples=60, seed=0, missing_expr=0.15, n_snps=30, n_genes=8, n_tfs=4
    )
    model = DeepGAMI.fit(mdata, load_params(GOLDEN / "golden_params.yaml"), seed=0)
    expected = (GOLDEN / "golden_predictions.tsv").read_text()
    assert golden_predictions(model, mdata) == expected
    model.save(tmp_path / "m")
    assert golden_predictions(DeepGAMI.load(tmp_path / "m"), mdata) == expected


# -- hostile and broken model directories --------------------------------------------------------------


class _Hostile:
    """Unpickling this would create a marker file: a weights-only reader must never get that far."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _broken_model_dirs(trained, tmp_path):
    """(name, model dir, file the error must name) for each way a model directory can be wrong."""
    import pickle

    good = tmp_path / "good"
    trained.save(good)
    cases = []

    def copy(name):
        import shutil

        target = tmp_path / name
        shutil.copytree(good, target)
        return target

    hostile = copy("hostile")
    (hostile / "model.safetensors").unlink()
    _Hostile.marker = str(tmp_path / "PWNED")
    (hostile / "model.pt").write_bytes(pickle.dumps(_Hostile()))
    cases.append(("hostile", hostile, hostile / "model.pt"))
    rand = copy("random")
    (rand / "model.safetensors").write_bytes(np.random.default_rng(0).bytes(4096))
    cases.append(("random", rand, rand / "model.safetensors"))
    garbled = copy("garbled")
    (garbled / "config.json").write_text("{not json")
    cases.append(("garbled", garbled, garbled / "config.json"))
    partial = copy("partial")
    config = json.loads((partial / "config.json").read_text())
    del config["preprocessing"]
    (partial / "config.json").write_text(json.dumps(config))
    cases.append(("partial", partial, partial / "config.json"))
    missing = copy("missing")
    (missing / "config.json").unlink()
    cases.append(("missing", missing, missing))
    return cases


def test_invalid_model_files_are_one_line_input_errors(trained, tmp_path):
    for name, directory, culprit in _broken_model_dirs(trained, tmp_path):
        with pytest.raises(InputError) as err:
            DeepGAMI.load(directory)
        assert err.value.path == str(culprit), name
    assert not (tmp_path / "PWNED").exists()


def test_predict_refuses_a_hostile_or_random_model_with_exit_2(trained, cohort_file, tmp_path):
    """Through the real CLI process: exit 2, one line naming the file, no traceback, nothing executed."""
    for name, directory, culprit in _broken_model_dirs(trained, tmp_path):
        out = tmp_path / f"{name}.tsv"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "deepgami",
                "predict",
                str(directory),
                str(cohort_file),
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 2, (name, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and str(culprit) in lines[0] and "Traceback" not in done.stderr, (
            name,
            done.stderr,
        )
        assert not out.exists()
    assert not (tmp_path / "PWNED").exists()


def test_old_model_pt_directories_still_load(trained, sim, tmp_path):
    trained.save(tmp_path / "m")
    state = load_file(tmp_path / "m" / "model.safetensors")
    (tmp_path / "m" / "model.safetensors").unlink()
    torch.save(state, tmp_path / "m" / "model.pt")
    pd.testing.assert_frame_equal(DeepGAMI.load(tmp_path / "m").predict(sim), trained.predict(sim))


# -- settings at the entry: keyword arguments and --params ---------------------------------------------


def test_a_joint_encoder_start_fits_each_measured_gene_better_than_separate_starts():
    """`encoder_init: joint` through `DeepGAMI.fit`: with genotype driving the TFs, the frozen
    blocks of a gene add up to one regression on all its sources, so their sum is closer to the
    measured gene than the sum of two separate regressions (which count the TF-mediated genetic
    part twice); the blocks keep the measured gene's units (not standardized)."""
    from deepgami.data.arrays import latent_targets

    mdata, _ = model_fixtures.simulated_mudata(n_samples=200, seed=2, shared_signal=0.6)
    data = read_arrays(mdata)
    rows = np.flatnonzero(data.split == "train")
    targets = latent_targets(data, rows)
    mse = {}
    for start in ("targets", "joint"):
        params = model_fixtures.fast_params(cv_folds=0, max_epochs=2, encoder_init=start)
        model = DeepGAMI.fit(mdata, params, seed=0)
        assert model.config["network"]["latent_norm"] == [False, False]
        assert model.config["training"]["encoder_init"] == {"0": 12, "1": 12}
        encoded, _ = model.latent_blocks(model.inputs(data))
        summed = np.sum([np.asarray(b)[rows] for b in encoded], axis=0)
        mse[start] = np.nanmean((summed - targets) ** 2, axis=0)
    assert np.mean(mse["joint"]) < 0.8 * np.mean(mse["targets"])
    assert np.mean(mse["joint"] <= mse["targets"] + 1e-3) >= 0.9


def test_fit_takes_hyperparameters_as_keyword_arguments(sim):
    base = model_fixtures.fast_params(cv_folds=0, max_epochs=2)
    model = DeepGAMI.fit(sim, base, seed=0, hidden_layers=[4], learning_rate=0.02, max_epochs=3)
    setting = model.config["setting"]
    assert setting["hidden_layers"] == [4] and setting["learning_rate"] == 0.02
    assert setting["max_epochs"] == 3 and model.config["params"]["grid"]["hidden_layers"] == [[4]]
    assert model.config["network"]["hidden_layers"] == [4]


def test_a_misspelt_keyword_argument_fails_naming_it(sim):
    with pytest.raises(TypeError, match=r"'lerning_rate' \(did you mean 'learning_rate'\?\)"):
        DeepGAMI.fit(sim, lerning_rate=0.01)
    with pytest.raises(InputError, match="dropout values must be in"):
        DeepGAMI.fit(sim, dropout=1.5)
    with pytest.raises(InputError, match="learning_rate values must be positive"):
        DeepGAMI.fit(sim, learning_rate=-1)


@pytest.mark.parametrize(
    "text, fragment",
    [
        (
            "lerning_rate: 0.01\n",
            "unknown parameter 'lerning_rate' (did you mean 'learning_rate'?)",
        ),
        ("dropout: 1.5\n", "dropout values must be in [0, 1), got 1.5"),
        ("grid:\n  learning_rate: [-1]\n", "grid.learning_rate values must be positive"),
    ],
)
def test_train_command_refuses_bad_params_at_entry(cohort_file, tmp_path, capsys, text, fragment):
    params = tmp_path / "bad.yaml"
    params.write_text(text)
    out = tmp_path / "model"
    code = main(["train", str(cohort_file), "--out", str(out), "--params", str(params)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists()
    assert len(err.splitlines()) == 1 and fragment in err and str(params) in err
