"""`deepgami evaluate`: protocols, ablation networks, baselines, metrics and KS tests, the command."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import metrics as skm

import model_fixtures
from model_fixtures import single_thread  # noqa: F401  (autouse)
from deepgami.evaluation import baselines as bl
from deepgami.cli import main
from deepgami.data.cohort import write_cohort
from deepgami.errors import InputError
from deepgami.evaluation.protocols import (
    PRIOR_METHODS,
    EvalConfig,
    baseline_matrices,
    bernoulli_network,
    combine_cohorts,
    eligible_rows,
    evaluate,
    flatten_metrics,
    make_splits,
    random_network,
)
from deepgami.metrics import classification_metrics
from deepgami.report.outputs import write_evaluation
from deepgami.data.arrays import read_arrays
from deepgami.evaluation.significance import (
    benjamini_hochberg,
    corrected_t,
    paired_bootstrap,
    pairwise_ks,
)

# Every method on every split is the costly part; cross-validation is covered by the split tests
# here and by tests/test_report.py.
SMALL = dict(protocols=("holdout", "repeated"), repeats=2, fast=True, inner_folds=2)


@pytest.fixture(scope="module")
def sim():
    mdata, _ = model_fixtures.simulated_mudata(n_samples=70, seed=0)
    return mdata


@pytest.fixture(scope="module")
def dense():
    return model_fixtures.dense_mudata(n_samples=80, seed=1)


@pytest.fixture(scope="module")
def params():
    return model_fixtures.fast_params(max_epochs=12)


@pytest.fixture(scope="module")
def sim_result(sim, params):
    return evaluate(sim, params, EvalConfig(**SMALL))


# -- metrics and KS against scikit-learn / scipy on fixed inputs -----------------------------------

Y = np.array(["a", "b", "b", "a", "b", "a", "b", "b", "a", "a", "b", "a"])
P_B = np.array([0.2, 0.7, 0.4, 0.35, 0.9, 0.6, 0.55, 0.8, 0.1, 0.45, 0.3, 0.05])


def test_metrics_match_scikit_learn_on_fixed_inputs():
    proba = np.column_stack([1 - P_B, P_B])
    flat = flatten_metrics(classification_metrics(Y, proba, ["a", "b"]))
    pred = np.where(P_B > 0.5, "b", "a")
    assert flat["auc"] == pytest.approx(skm.roc_auc_score(Y == "b", P_B))
    assert flat["accuracy"] == pytest.approx(skm.accuracy_score(Y, pred))
    assert flat["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(Y, pred))
    assert flat["f1_macro"] == pytest.approx(skm.f1_score(Y, pred, average="macro"))
    for c in ("a", "b"):
        assert flat[f"recall_{c}"] == pytest.approx(skm.recall_score(Y, pred, pos_label=c))
    assert flat["n"] == len(Y)

    rng = np.random.default_rng(3)
    y3 = np.array(list("xyzxyzxyzxyzxx"))
    p3 = rng.dirichlet(np.ones(3), size=len(y3))
    flat3 = flatten_metrics(classification_metrics(y3, p3, ["x", "y", "z"]))
    assert flat3["auc"] == pytest.approx(
        skm.roc_auc_score(y3, p3, multi_class="ovr", average="macro")
    )
    assert flat3["auc_weighted"] == pytest.approx(
        skm.roc_auc_score(y3, p3, multi_class="ovr", average="weighted")
    )
    assert flat3["balanced_accuracy"] == pytest.approx(
        skm.balanced_accuracy_score(y3, np.array(["x", "y", "z"])[p3.argmax(axis=1)])
    )


def test_ks_tests_match_scipy_on_fixed_inputs():
    a = [0.81, 0.84, 0.79, 0.88, 0.86, 0.83, 0.85, 0.80]
    b = [0.75, 0.78, 0.80, 0.74, 0.77, 0.79, 0.76, 0.81]
    c = [0.82, 0.80, 0.86, 0.79, 0.84, 0.81, 0.83, 0.78]
    rows = [
        {"protocol": "repeated", "metric": "auc", "method": m, "split": i, "value": v}
        for m, vals in (("A", a), ("B", b), ("C", c))
        for i, v in enumerate(vals)
    ]
    ks = pairwise_ks(pd.DataFrame(rows))
    assert list(zip(ks["method_a"], ks["method_b"])) == [("A", "B"), ("A", "C"), ("B", "C")]
    for (x, y), row in zip(((a, b), (a, c), (b, c)), ks.itertuples()):
        ref = stats.ks_2samp(x, y)
        assert row.statistic == pytest.approx(ref.statistic)
        assert row.pvalue == pytest.approx(ref.pvalue)
        assert row.mean_a == pytest.approx(np.mean(x))
    np.testing.assert_allclose(ks["pvalue_bh"], stats.false_discovery_control(ks["pvalue"]))
    p = [0.01, 0.04, 0.03, 0.5, 0.2, 0.0001, 0.04]
    np.testing.assert_allclose(benjamini_hochberg(p), stats.false_discovery_control(p))


# -- ablation networks ------------------------------------------------------------------------------


def test_random_network_has_the_edge_count_and_distinct_pairs():
    src, dst = random_network(50, 20, 137, np.random.default_rng(0))
    assert len(src) == 137
    assert len(set(zip(src.tolist(), dst.tolist()))) == 137
    assert src.max() < 50 and dst.max() < 20 and src.min() >= 0
    again = random_network(50, 20, 137, np.random.default_rng(0))
    np.testing.assert_array_equal(src, again[0])


def test_bernoulli_network_keeps_and_adds_at_the_given_rates():
    rng = np.random.default_rng(1)
    n_feat, n_lat = 300, 100
    prior = np.unique(rng.integers(0, n_feat * n_lat, 3000))
    src, dst = prior // n_lat, prior % n_lat
    new_src, new_dst = bernoulli_network(
        src, dst, n_feat, n_lat, 0.8, 0.2, np.random.default_rng(2)
    )
    codes = new_src * n_lat + new_dst
    assert len(np.unique(codes)) == len(codes)
    kept = np.isin(codes, prior)
    assert kept.sum() / len(prior) == pytest.approx(0.8, abs=0.03)
    assert (~kept).sum() / (n_feat * n_lat - len(prior)) == pytest.approx(0.2, abs=0.01)
    only_kept = bernoulli_network(src, dst, n_feat, n_lat, 1.0, 0.0, np.random.default_rng(2))
    np.testing.assert_array_equal(only_kept[0] * n_lat + only_kept[1], prior)


# -- splits ---------------------------------------------------------------------------------------------


def test_splits_of_each_protocol(sim):
    data = read_arrays(sim)
    rows = eligible_rows(data)
    config = EvalConfig(folds=4, repeats=5)
    (hold,), note = make_splits(data, "holdout", config, rows)
    assert "split column" in note
    assert set(data.split[hold.train]) == {"train"} and set(data.split[hold.test]) == {"test"}
    folds, _ = make_splits(data, "cv", config, rows)
    assert len(folds) == 4
    np.testing.assert_array_equal(np.sort(np.concatenate([f.test for f in folds])), rows)
    for f in folds:
        assert not set(f.train) & set(f.test)
    reps, _ = make_splits(data, "repeated", config, rows)
    assert len(reps) == 5 and all(len(r.test) == round(0.2 * len(rows)) for r in reps)
    assert len({tuple(r.test) for r in reps}) == 5
    again, _ = make_splits(data, "repeated", config, rows)
    assert all(np.array_equal(a.test, b.test) for a, b in zip(reps, again))
    # No split column: a stratified 80/20 split.
    data.split = None
    (hold,), note = make_splits(data, "holdout", config, rows)
    assert "stratified" in note and len(hold.test) == round(0.2 * len(rows))
    classes = pd.Series(data.labels[hold.test]).value_counts()
    assert classes.min() >= len(hold.test) // 2 - 1


def test_baselines_preprocess_on_training_rows_only(dense, params):
    data = read_arrays(dense)
    data.X = [x.copy() for x in data.X]
    train, test = np.arange(0, 60), np.arange(60, 80)
    data.X[0][test] += 100.0  # a shift only the held-out rows carry
    data.present = data.present.copy()
    data.present[70, 1] = False  # a held-out sample lacking modality b
    from deepgami.train import expand_grid

    Xtr, ytr, Xte, used = baseline_matrices(data, train, test, expand_grid(params)[0])
    np.testing.assert_allclose(Xtr.mean(axis=0), 0, atol=1e-4)
    assert (
        Xte[:, : data.X[0].shape[1]].mean() > 10
    )  # scaled with the training mean and sd, not refitted
    np.testing.assert_allclose(
        Xte[10, data.X[0].shape[1] :], 0, atol=1e-5
    )  # mean-filled (training mean = 0)
    assert len(used) == 60 and len(ytr) == 60


# -- the whole evaluation ------------------------------------------------------------------------------


def test_every_method_and_protocol_has_rows(sim_result):
    m = sim_result.metrics
    assert list(m.columns) == ["method", "modalities", "protocol", "split", "metric", "value"]
    methods = [
        "deepgami",
        "deepgami_dense",
        "deepgami_random_prior",
        "deepgami_bernoulli_prior",
        *bl.CLASSIFIERS,
    ]
    auc = m[(m["metric"] == "auc") & (m["modalities"] == "all")]
    for protocol, n_splits in (("holdout", 1), ("repeated", 2)):
        for method in methods:
            got = auc[(auc["method"] == method) & (auc["protocol"] == protocol)]
            # By default the prior ablations run on the held-out split and the CV folds only.
            expected = 0 if protocol == "repeated" and method in PRIOR_METHODS else n_splits
            assert len(got) == expected, (method, protocol)
    bounded = m["metric"].isin(["auc", "accuracy", "balanced_accuracy", "f1_macro"]) | m[
        "metric"
    ].str.startswith("recall_")
    scores = m[bounded]
    assert scores["value"].between(0, 1).all()
    single = m[(m["method"] == "deepgami") & (m["metric"] == "auc")]
    assert {"all", "snp", "expr"} <= set(single["modalities"])
    assert set(m.loc[m["method"] == "deepgami_meanfill", "modalities"]) == {"snp", "expr"}
    assert {"recall_case", "recall_control", "balanced_accuracy", "f1_macro"} <= set(m["metric"])
    # KS tests between every pair of methods (all modalities) on the repeated splits.
    ks = sim_result.ks_tests
    on_repeated = [m for m in methods if m not in PRIOR_METHODS]
    assert len(ks[ks["metric"] == "auc"]) == len(on_repeated) * (len(on_repeated) - 1) // 2
    s = sim_result.summary
    row = s[
        (s["method"] == "deepgami")
        & (s["protocol"] == "repeated")
        & (s["metric"] == "auc")
        & (s["modalities"] == "all")
    ]
    vals = auc[(auc["method"] == "deepgami") & (auc["protocol"] == "repeated")]["value"]
    assert row["mean"].iloc[0] == pytest.approx(vals.mean()) and row["sd"].iloc[0] == pytest.approx(
        vals.std(ddof=1)
    )
    assert row["n_splits"].iloc[0] == 2
    # Every DeepGAMI variant and baseline saw the same held-out samples of a split.
    p = sim_result.predictions
    rep = p[(p["protocol"] == "repeated") & (p["split"] == 1) & (p["modalities"] == "all")]
    samples = {m: tuple(g["sample"]) for m, g in rep.groupby("method")}
    assert len(set(samples.values())) == 1


def test_dense_cohort_marks_prior_ablations_not_applicable(dense, params, tmp_path):
    res = evaluate(
        dense,
        params,
        EvalConfig(
            protocols=("holdout",),
            fast=True,
            inner_folds=2,
            methods=("deepgami", "deepgami_dense", "deepgami_random_prior", "logistic_regression"),
        ),
    )
    assert set(res.metrics["method"]) == {"deepgami", "deepgami_meanfill", "logistic_regression"}
    assert set(res.info["not_applicable"]) == {"deepgami_dense", "deepgami_random_prior"}
    na = res.summary[res.summary["note"] != ""]
    assert set(na["method"]) == {"deepgami_dense", "deepgami_random_prior"}
    assert (na["note"] == "n/a (cohort has no prior)").all()
    write_evaluation(res, tmp_path / "ev")
    summary = pd.read_csv(tmp_path / "ev" / "summary.tsv", sep="\t", keep_default_na=False)
    assert "n/a (cohort has no prior)" in set(summary["note"])
    assert "n/a (cohort has no prior)" in (tmp_path / "ev" / "report.html").read_text()


def test_same_seed_gives_identical_outputs(dense, params, tmp_path):
    config = EvalConfig(
        protocols=("holdout", "repeated"),
        repeats=2,
        fast=True,
        inner_folds=2,
        methods=("deepgami", "logistic_regression"),
        seed=5,
    )
    for name in ("a", "b"):
        write_evaluation(evaluate(dense, params, config), tmp_path / name)
    for f in (
        "metrics.tsv",
        "predictions.tsv",
        "ks_tests.tsv",
        "summary.tsv",
        "run.json",
        "report.html",
        "figures/roc_holdout.png",
    ):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    # Another seed draws another held-out split (the cohort has no split column).
    other = evaluate(
        dense, params, EvalConfig(protocols=("holdout",), fast=True, methods=("deepgami",), seed=6)
    )
    first = pd.read_csv(tmp_path / "a" / "predictions.tsv", sep="\t")
    held_out = lambda p: set(
        p.loc[(p["protocol"] == "holdout") & (p["method"] == "deepgami"), "sample"]
    )  # noqa: E731
    assert held_out(first) != held_out(other.predictions)


def test_independent_cohort(tmp_path, params):
    a, _ = model_fixtures.simulated_mudata(n_samples=70, seed=0)
    b, _ = model_fixtures.simulated_mudata(n_samples=40, seed=0, missing_expr=0.3)
    res = evaluate(
        a,
        params,
        EvalConfig(
            protocols=("independent",),
            fast=True,
            inner_folds=2,
            methods=("deepgami", "logistic_regression"),
        ),
        test_mdata=b,
        cohort_name="a.h5mu",
        test_name="b.h5mu",
    )
    m = res.metrics
    assert set(m["protocol"]) == {"independent"}
    n = m[(m["metric"] == "n") & (m["modalities"] == "all")]
    assert set(n["value"]) == {40.0}  # baselines mean-fill the missing expression block
    assert res.info["protocols"]["independent"]["how"].startswith("trained on the 70")
    data_a, data_b = read_arrays(a), read_arrays(b)
    data_b.var_names[1] = data_b.var_names[1].str.replace("GENE0001", "OTHER")
    with pytest.raises(InputError, match="lacks 1 of the training cohort's"):
        combine_cohorts(data_a, data_b, "b.h5mu")


# -- the command ----------------------------------------------------------------------------------------


def test_cli_writes_outputs_and_refuses_bad_input(dense, tmp_path, capsys):
    cohort = tmp_path / "c.h5mu"
    write_cohort(dense, cohort)
    params = tmp_path / "params.yaml"
    params.write_text(
        "grid: {hidden_layers: [[8]], latent_dim: [4]}\nmax_epochs: 5\n"
        "evaluate: {protocols: holdout, methods: [deepgami, svm], fast: true, inner_folds: 2}\n"
    )
    out = tmp_path / "ev"
    assert (
        main(["evaluate", str(cohort), "--out", str(out), "--params", str(params), "--quiet"]) == 0
    )
    assert capsys.readouterr().out.strip() == str(out / "report.html")
    table = pd.read_csv(out / "metrics.tsv", sep="\t")
    assert set(table["method"]) == {"deepgami", "deepgami_meanfill", "svm"}
    assert set(table["protocol"]) == {"holdout"}
    info = json.loads((out / "run.json").read_text())
    assert info["deepgami_setting"]["hidden_layers"] == [8] and info["config"]["fast"] is True

    bad = tmp_path / "bad"
    for argv, message in (
        (["evaluate", str(tmp_path / "none.h5mu"), "--out", str(bad)], "file not found"),
        (
            ["evaluate", str(cohort), "--out", str(bad), "--protocols", "holdout,nope"],
            "unknown protocol 'nope'",
        ),
        (
            ["evaluate", str(cohort), "--out", str(bad), "--methods", "deepgami,xgboost"],
            "unknown method 'xgboost'",
        ),
        (
            ["evaluate", str(cohort), "--out", str(bad), "--folds", "1"],
            "--folds must be at least 2",
        ),
        (
            ["evaluate", str(cohort), "--out", str(bad), "--protocols", "independent"],
            "needs a test cohort",
        ),
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
        assert not bad.exists()
        assert not list(tmp_path.glob(".bad*"))
    params.write_text("evaluate: {repeat: 3}\n")
    assert main(["evaluate", str(cohort), "--out", str(bad), "--params", str(params)]) == 2
    assert "unknown evaluate option 'repeat'" in capsys.readouterr().err


def test_command_is_registered():
    result = subprocess.run(
        [sys.executable, "-m", "deepgami", "evaluate", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for word in (
        "--protocols",
        "--repeats",
        "--test-cohort",
        "--fast",
        "deepgami_bernoulli_prior",
        "ks_tests.tsv",
    ):
        assert word in result.stdout


def test_prior_methods_are_the_ablations():
    assert set(PRIOR_METHODS) == {
        "deepgami_dense",
        "deepgami_random_prior",
        "deepgami_bernoulli_prior",
    }


# -- parallel units, progress, budget ------------------------------------------------------------------

PARALLEL = dict(
    protocols=("holdout", "cv"),
    folds=2,
    fast=True,
    inner_folds=2,
    methods=("deepgami", "deepgami_random_prior", "deepgami_alone", "logistic_regression"),
    seed=3,
)


def test_jobs_2_and_jobs_1_give_identical_tables(sim, params):
    serial = evaluate(sim, params, EvalConfig(**PARALLEL), jobs=1)
    parallel = evaluate(sim, params, EvalConfig(**PARALLEL), jobs=2)
    pd.testing.assert_frame_equal(serial.metrics, parallel.metrics)
    pd.testing.assert_frame_equal(serial.predictions, parallel.predictions)
    pd.testing.assert_frame_equal(serial.paired_tests, parallel.paired_tests)
    # Serial order: split-major, methods in the order given (whatever order the workers finished in).
    firsts = serial.metrics.drop_duplicates(["protocol", "split", "method"])
    assert list(firsts["method"])[:3] == ["deepgami", "deepgami_meanfill", "deepgami_random_prior"]
    assert list(firsts["protocol"]) == sorted(firsts["protocol"], key=["holdout", "cv"].index)


def test_progress_lines_one_per_unit_and_quiet(dense, tmp_path, capsys):
    cohort = tmp_path / "c.h5mu"
    write_cohort(dense, cohort)
    params = tmp_path / "params.yaml"
    params.write_text(
        "grid: {hidden_layers: [[8]], latent_dim: [4]}\nmax_epochs: 5\ncv_folds: 0\nbagging: 0\n"
    )
    base = [
        "evaluate",
        str(cohort),
        "--params",
        str(params),
        "--protocols",
        "holdout,cv",
        "--folds",
        "2",
        "--methods",
        "deepgami,logistic_regression",
        "--fast",
        "--jobs",
        "1",
    ]
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("[")]
    assert len(lines) == 6  # 3 splits x 2 methods; not a terminal: one line per finished unit
    assert (
        lines[-1].startswith("[6/6 ")
        and "left]" in lines[0]
        and "logistic_regression: auc" in lines[-1]
    )
    assert main([*base, "--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_budget_trims_the_repeated_splits_and_says_so(dense, params):
    config = EvalConfig(
        protocols=("holdout", "repeated"),
        repeats=6,
        fast=True,
        inner_folds=2,
        methods=("deepgami", "logistic_regression"),
        budget=0.001,
    )
    res = evaluate(dense, params, config)
    rep = res.metrics[(res.metrics["protocol"] == "repeated")]
    assert sorted(rep["split"].unique()) == [0, 1]  # never fewer than two, the first ones drawn
    assert res.info["protocols"]["repeated"]["splits"] == 2
    assert any("ran 2 of its 6 splits" in n for n in res.info["notes"])
    full = evaluate(dense, params, dataclasses.replace(config, budget=None))
    same = full.metrics[
        (full.metrics["protocol"] == "repeated") & full.metrics["split"].isin([0, 1])
    ]
    np.testing.assert_allclose(same["value"].to_numpy(), rep["value"].to_numpy())


# -- paired tests ------------------------------------------------------------------------------------


def test_corrected_t_matches_the_formula():
    d = np.array([0.02, -0.01, 0.03, 0.015, 0.0, 0.025, -0.005, 0.01])
    ratio = 0.25
    mean, low, high, p = corrected_t(d, ratio)
    se = np.sqrt((1 / len(d) + ratio) * d.var(ddof=1))
    t = stats.t.ppf(0.975, len(d) - 1)
    assert mean == pytest.approx(d.mean())
    assert (low, high) == pytest.approx((d.mean() - t * se, d.mean() + t * se))
    assert p == pytest.approx(2 * stats.t.sf(abs(d.mean()) / se, len(d) - 1))
    # The correction widens the naive paired t interval (overlapping training sets).
    naive = stats.ttest_rel(d, np.zeros_like(d)).confidence_interval()
    assert high - low > naive.high - naive.low


def test_paired_bootstrap_difference_and_interval():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    good = np.clip(0.5 + 0.35 * (y - 0.5) * 2 + rng.normal(0, 0.25, 200), 0, 1)
    bad = np.clip(0.5 + rng.normal(0, 0.25, 200), 0, 1)
    a, b = np.column_stack([1 - good, good]), np.column_stack([1 - bad, bad])
    diff, low, high, p = paired_bootstrap("auc", "classification", y, a, b, seed=1)
    assert diff == pytest.approx(skm.roc_auc_score(y, good) - skm.roc_auc_score(y, bad))
    assert low < diff < high and low > 0 and p < 0.01
    bdiff, *_ = paired_bootstrap("balanced_accuracy", "classification", y, a, b, seed=1)
    assert bdiff == pytest.approx(
        skm.balanced_accuracy_score(y, good > 0.5) - skm.balanced_accuracy_score(y, bad > 0.5)
    )
    same = paired_bootstrap("auc", "classification", y, a, a, seed=1)
    assert same[:3] == (0.0, 0.0, 0.0)
    # Same seed, same interval.
    assert paired_bootstrap("auc", "classification", y, a, b, seed=1) == (diff, low, high, p)


def test_paired_tests_in_the_result(sim_result):
    t = sim_result.paired_tests
    t = t[t["reference"] == "deepgami"]  # deepgami[m] - deepgami_alone[m]: test_evaluation_alone.py
    rep = t[(t["protocol"] == "repeated") & (t["metric"] == "auc")]
    assert set(rep["method"]) == set(bl.CLASSIFIERS)  # ablations did not run on the repeated splits
    assert (rep["test"].str.contains("Nadeau")).all() and (rep["n"] == 2).all()
    hold = t[t["protocol"] == "holdout"]
    assert (hold["test"].str.contains("bootstrap")).all()
    m = sim_result.metrics
    auc = m[
        (m["metric"] == "auc") & (m["modalities"] == "all") & (m["protocol"] == "holdout")
    ].set_index("method")["value"]
    for row in hold[hold["metric"] == "auc"].itertuples():
        assert row.difference == pytest.approx(auc["deepgami"] - auc[row.method])
    assert sim_result.info["verdict"]["method"] in bl.CLASSIFIERS


# -- one place for the reduced settings ------------------------------------------------------------------


def test_test_profile_matches_conf_test_config():
    import re
    from pathlib import Path

    from deepgami.pipeline import profiles

    text = (Path(__file__).resolve().parents[1] / "conf" / "test.config").read_text()
    block = text[text.index("withName: 'EVALUATE'") :]
    args = re.search(r'ext\.args\s*=\s*\{\s*"([^"]*)"\s*\}', block).group(1)
    assert args.replace("--seed ${params.seed}", "").strip() == profiles.TEST_EVALUATE_ARGS
    assert profiles.stage_args("test")["evaluate"][:5] == profiles.TEST_EVALUATE_ARGS.split()
    assert profiles.is_bundled_test_samplesheet(
        Path(__file__).resolve().parents[1] / "assets" / "samplesheet_test.csv"
    )


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("grid:\n  dropuot: [0.1]\n", "unknown grid entry 'dropuot' (did you mean 'dropout'?)"),
        ("patiense: 3\n", "unknown parameter 'patiense' (did you mean 'patience'?)"),
        ("learning_rate: -1\n", "learning_rate values must be positive numbers, got -1"),
    ],
)
def test_evaluate_refuses_bad_params_at_entry(dense, tmp_path, capsys, text, fragment):
    cohort = tmp_path / "c.h5mu"
    write_cohort(dense, cohort)
    params = tmp_path / "params.yaml"
    params.write_text(text)
    out = tmp_path / "out"
    assert main(["evaluate", str(cohort), "--out", str(out), "--params", str(params)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err and str(params) in err
    assert not out.exists()


@pytest.mark.parametrize("name", ["logistic_regression", "lasso_logistic", "random_forest", "svm"])
def test_every_classification_baseline_fits_three_classes(name):
    """liblinear refuses three classes: every baseline must fit and score a 3-class cohort."""
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 40)
    X = rng.standard_normal((120, 6)) + np.eye(3, 6)[y] * 2.0
    fitted = bl.fit_baseline(name, X[::2], y[::2], seed=0, inner_folds=3, fast=True)
    proba = bl.predict_scores(fitted, X[1::2], n_classes=3)
    assert proba.shape == (60, 3)
    assert skm.roc_auc_score(y[1::2], proba, multi_class="ovr") > 0.8


def test_lasso_logistic_uses_liblinear_for_two_classes_and_saga_for_more():
    """saga fits three classes but is ~50x slower on two, where liblinear gives the same model."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((90, 8))
    for y, solver in ((np.arange(90) % 2, "liblinear"), (np.arange(90) % 3, "saga")):
        fitted = bl.fit_baseline("lasso_logistic", X, y, seed=0, inner_folds=3, fast=True)
        assert fitted.estimator.solver == solver
