"""`evaluate` on a cohort with several targets and a survival target (issue 25): DeepGAMI fitted
once on every target, baselines per target, each target scored on its known samples, paired
intervals and a report per target."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sksurv.metrics import concordance_index_censored

from deepgami import build_cohort
from deepgami.data.cohort import write_cohort
from deepgami.data.simulate import simulate_cohort
from deepgami.evaluation import EvalConfig, evaluate
from deepgami.evaluation.significance import corrected_t

PARAMS = {"max_epochs": 25, "bagging": 0}
METHODS = ["deepgami", "logistic_regression", "coxnet"]


@pytest.fixture(scope="module")
def cohort():
    sim = simulate_cohort(
        n_samples=180,
        n_snps=60,
        n_tfs=8,
        n_genes=20,
        n_causal_genes=4,
        seed=0,
        n_targets=2,
        shared_programs=0.5,
        missing_fraction=0.3,
        interaction=0,
        survival=True,
        effect_size=2.0,
    )
    return build_cohort(
        {"snp": sim.genotype, "expr": sim.expression},
        sim.labels.drop(columns="split"),
        {"snp:eqtl": sim.eqtl, "expr:grn": sim.grn},
        label_column="label,label2",
        survival_columns="time,event",
    )


@pytest.fixture(scope="module")
def result(cohort):
    return evaluate(cohort, PARAMS, EvalConfig(fast=True, methods=METHODS))


def _rows(table: pd.DataFrame, **where) -> pd.DataFrame:
    keep = np.ones(len(table), dtype=bool)
    for key, value in where.items():
        keep &= (table[key].astype(str) == str(value)).to_numpy()
    return table[keep]


def test_each_target_is_scored_on_its_known_samples_with_its_baselines(cohort, result):
    metrics, pred = result.metrics, result.predictions
    assert list(metrics.columns[:2]) == ["target", "method"]
    assert set(metrics["target"]) == {"label", "label2", "survival"}
    # Baselines of the target's task only: logistic regression on the classes, Coxnet on survival.
    by_target = metrics[metrics["modalities"] == "all"].groupby("target")["method"].agg(set)
    assert by_target["label"] == by_target["label2"] == {"deepgami", "logistic_regression"}
    assert by_target["survival"] == {"deepgami", "coxnet"}
    known2 = set(cohort.obs_names[cohort.obs["label2"].notna()])
    for method in ("deepgami", "logistic_regression"):
        p1 = _rows(pred, target="label", method=method, modalities="all", protocol="holdout")
        p2 = _rows(pred, target="label2", method=method, modalities="all", protocol="holdout")
        assert set(p2["sample"]) <= known2 and set(p2["sample"]) < set(p1["sample"])
    # label2 is missing for about 30% of the samples: fewer of them are scored.
    assert len(p2) < 0.85 * len(p1)


def test_metrics_are_those_of_the_predictions(result):
    pred, metrics = result.predictions, result.metrics
    p = _rows(pred, target="label2", method="deepgami", modalities="all", protocol="holdout")
    auc = roc_auc_score(p["label"] == "control", p["prob_control"])
    m = _rows(metrics, target="label2", method="deepgami", modalities="all", protocol="holdout")
    assert m.set_index("metric").loc["auc", "value"] == pytest.approx(auc)
    s = _rows(pred, target="survival", method="coxnet", protocol="holdout")
    c = concordance_index_censored(s["event"] == 1, s["time"], s["risk"])[0]
    m = _rows(metrics, target="survival", method="coxnet", protocol="holdout")
    assert m.set_index("metric").loc["c_index", "value"] == pytest.approx(c)


def test_survival_is_learned_and_compared_with_coxnet(result):
    s = _rows(result.summary, target="survival", modalities="all", metric="c_index")
    assert s.set_index(["method", "protocol"]).loc[("deepgami", "cv"), "mean"] > 0.65
    paired = _rows(result.paired_tests, target="survival", protocol="cv")
    assert list(paired["metric"]) == ["c_index"] and list(paired["method"]) == ["coxnet"]
    per_split = _rows(
        result.metrics, target="survival", modalities="all", protocol="cv", metric="c_index"
    )
    wide = per_split.pivot_table(index="split", columns="method", values="value")
    folds = wide["deepgami"] - wide["coxnet"]
    ratio = 1 / 2  # 3-fold CV: each fold tests half as many samples as it trains on
    mean, low, high, _ = corrected_t(folds.to_numpy(), ratio)
    row = paired.iloc[0]
    assert row["difference"] == pytest.approx(mean, abs=1e-9)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), rel=0.05)


def test_every_target_has_a_verdict_and_a_paired_bootstrap_on_the_held_out_split(result):
    targets = {t["name"]: t for t in result.info["targets"]}
    assert list(targets) == ["label", "label2", "survival"]
    assert targets["survival"]["verdict"]["method"] == "coxnet"
    assert targets["label2"]["verdict"]["method"] == "logistic_regression"
    held = _rows(result.paired_tests, protocol="holdout")
    assert set(held["target"]) == {"label", "label2", "survival"}
    assert held["ci_low"].notna().all() and (held["ci_low"] <= held["difference"]).all()
    assert set(result.targets) == set(targets)


def test_cli_writes_a_report_per_target(cohort, tmp_path, capsys):
    from deepgami.cli import main

    path = tmp_path / "multi.h5mu"
    write_cohort(cohort, path)
    params = tmp_path / "params.yaml"
    params.write_text(json.dumps(PARAMS))
    out = tmp_path / "evaluation"
    argv = ["evaluate", str(path), "--out", str(out), "--fast", "--params", str(params)]
    assert main([*argv, "--methods", ",".join(METHODS), "--quiet"]) == 0
    for name in ("label", "label2", "survival"):
        own = out / "targets" / name
        assert (own / "report.html").exists()
        assert "target" not in pd.read_csv(own / "metrics.tsv", sep="\t").columns
    page = (out / "report.html").read_text()
    assert 'href="targets/survival/report.html"' in page and "C-index" in page
    top = pd.read_csv(out / "paired_tests.tsv", sep="\t")
    assert set(top["target"]) == {"label", "label2", "survival"}


def test_independent_protocol_refuses_a_cohort_with_targets(cohort, tmp_path, capsys):
    from deepgami.cli import main

    path = tmp_path / "multi.h5mu"
    write_cohort(cohort, path)
    out = tmp_path / "e"
    assert main(["evaluate", str(path), "--out", str(out), "--test-cohort", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(path) in err
    assert "the independent protocol takes one-label cohorts" in err
    assert not out.exists()


def test_survival_bootstrap_and_metrics_survive_resamples_without_a_comparable_pair():
    from deepgami.evaluation.significance import paired_bootstrap
    from deepgami.model._targets import survival_metrics

    # One event among six samples: most resamples lack it or any pair it can be compared in.
    y = np.array([[1.0, 0], [2.0, 1], [3.0, 0], [4.0, 0], [5.0, 0], [6.0, 0]])
    risk_a, risk_b = np.array([0.1, 0.9, 0.2, 0.3, 0.1, 0.0]), np.zeros(6)
    diff, low, high, _ = paired_bootstrap("c_index", "survival", y, risk_a, risk_b, seed=0)
    assert diff == pytest.approx(0.5) and low <= diff <= high
    # Every event after every other time: no comparable pair, so no C (not an exception).
    found = survival_metrics([1.0, 2.0, 3.0], [0, 0, 1], [0.3, 0.2, 0.1])
    assert found["c_index"] is None and found["events"] == 1


def test_a_baseline_of_no_target_task_is_a_one_line_error(cohort, tmp_path, capsys):
    from deepgami.cli import main

    path = tmp_path / "multi.h5mu"
    write_cohort(cohort, path)
    out = tmp_path / "e"
    assert main(["evaluate", str(path), "--out", str(out), "--methods", "deepgami,ridge"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path}: --methods: unknown method 'ridge' for this cohort's")
    assert "coxnet" in err and "\n" not in err and not out.exists()


def test_deepgami_run_takes_the_bundled_targets_samplesheet_through_every_stage(tmp_path):
    from deepgami.cli import main

    root = Path(__file__).resolve().parents[1]
    sheet = root / "assets" / "test" / "samplesheet_targets.csv"
    out = tmp_path / "run"
    args = "evaluate=--fast --protocols holdout --methods deepgami,logistic_regression"
    assert (
        main(["run", "--samplesheet", str(sheet), "--outdir", str(out), "--stage-args", args]) == 0
    )
    evaluation = out / "cohort_a_targets" / "evaluate"
    for name in ("label", "score", "survival"):
        assert (evaluation / "targets" / name / "report.html").exists()
    summary = pd.read_csv(out / "summary.tsv", sep="\t")
    assert set(summary["target"]) == {"label", "score", "survival"}
