"""`deepgami evaluate`'s deepgami_alone (#22): DeepGAMI trained on each modality alone, beside
DeepGAMI trained on all and predicted from that modality, with the paired difference."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import model_fixtures
from model_fixtures import single_thread  # noqa: F401  (autouse)
from test_single_modality import genotype_only
from deepgami.cli import main
from deepgami.data.arrays import read_arrays
from deepgami.data.cohort import write_cohort
from deepgami.evaluation.ablations import alone_arrays
from deepgami.evaluation.config import ALONE, method_names
from deepgami.evaluation.protocols import EvalConfig, evaluate
from deepgami.evaluation.significance import corrected_t

PARAMS = "grid: {hidden_layers: [[8]], latent_dim: [4]}\nmax_epochs: 12\ncv_folds: 0\nbagging: 0\n"


@pytest.fixture(scope="module")
def sim():
    mdata, _ = model_fixtures.simulated_mudata(n_samples=70, seed=0)
    return mdata


@pytest.fixture(scope="module")
def run_dir(sim, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("alone")
    write_cohort(sim, tmp / "c.h5mu")
    (tmp / "params.yaml").write_text(PARAMS)
    argv = ["evaluate", str(tmp / "c.h5mu"), "--out", str(tmp / "ev"), "--params"]
    argv += [str(tmp / "params.yaml"), "--fast", "--folds", "3", "--quiet"]
    assert main([*argv, "--methods", "deepgami,deepgami_alone"]) == 0
    return tmp / "ev"


def test_alone_keeps_the_modality_and_its_prior(sim):
    data = read_arrays(sim)
    for k, m in enumerate(data.modalities):
        one = alone_arrays(data, m)
        assert one.modalities == [m] and one.priors == [data.priors[k]]
        assert one.latent_nodes == data.latent_nodes  # the same latent nodes as the full model
        np.testing.assert_array_equal(one.edges[0][0], data.edges[k][0])
        np.testing.assert_array_equal(one.edges[0][1], data.edges[k][1])
        np.testing.assert_array_equal(one.present[:, 0], data.present[:, k])
        assert one.X[0] is data.X[k]


def test_alone_is_a_default_method():
    assert ALONE in method_names("classification") and ALONE in method_names("regression")


def test_alone_rows_for_each_modality_on_every_split(run_dir):
    m = pd.read_csv(run_dir / "metrics.tsv", sep="\t")
    alone = m[m["method"] == ALONE]
    assert set(alone["modalities"]) == {"snp", "expr"}  # never 'all'
    for protocol, n_splits in (("holdout", 1), ("cv", 3)):
        for mod in ("snp", "expr"):
            got = alone[(alone["protocol"] == protocol) & (alone["modalities"] == mod)]
            assert got.loc[got["metric"] == "auc", "split"].nunique() == n_splits, (protocol, mod)
    p = pd.read_csv(run_dir / "predictions.tsv", sep="\t")
    # Scored on the same held-out samples as DeepGAMI trained on all and predicted from m.
    for (protocol, split, mod), g in p[p["method"] == ALONE].groupby(
        ["protocol", "split", "modalities"]
    ):
        ref = p[
            (p["method"] == "deepgami")
            & (p["protocol"] == protocol)
            & (p["split"] == split)
            & (p["modalities"] == mod)
        ]
        assert list(g["sample"]) == list(ref["sample"])


def test_paired_rows_are_the_mean_per_split_difference(run_dir):
    m = pd.read_csv(run_dir / "metrics.tsv", sep="\t")
    paired = pd.read_csv(run_dir / "paired_tests.tsv", sep="\t")
    rows = paired[paired["method"].str.startswith(f"{ALONE}[")]
    assert len(rows) == 2 * 2 * 2  # protocols x main metrics x modalities
    for row in rows.itertuples():
        mod = row.method[len(ALONE) + 1 : -1]
        assert row.reference == f"deepgami[{mod}]"
        sub = m[(m["protocol"] == row.protocol) & (m["metric"] == row.metric)]
        sub = sub[sub["modalities"] == mod].pivot_table(
            index="split", columns="method", values="value"
        )
        diffs = sub["deepgami"] - sub[ALONE]
        assert row.difference == pytest.approx(diffs.mean(), abs=1e-5)  # TSV: 6 digits
        assert row.mean_reference == pytest.approx(sub["deepgami"].mean(), abs=1e-5)
        assert row.mean_method == pytest.approx(sub[ALONE].mean(), abs=1e-5)
        if row.protocol == "cv":
            assert "Nadeau" in row.test and row.n == 3
            est = corrected_t(diffs, 1 / 2)  # 3 folds: n_test / n_train = 1/2
            assert (row.ci_low, row.ci_high) == pytest.approx(est[1:3], rel=1e-2)
        else:
            assert "bootstrap" in row.test and row.ci_low <= row.difference <= row.ci_high


def test_report_shows_the_alone_comparison(run_dir):
    page = (run_dir / "report.html").read_text()
    assert 'id="paired-alone-cv"' in page and 'id="paired-alone-holdout"' in page
    assert "DeepGAMI trained on snp alone" in page
    info = json.loads((run_dir / "run.json").read_text())
    assert {r["modality"] for r in info["verdict_alone"]} == {"snp", "expr"}
    assert {r["protocol"] for r in info["verdict_alone"]} == {"cv"}  # most splits
    assert 'id="verdict-alone"' in page.split("<main>")[0]


def test_one_modality_cohort_reports_alone_not_applicable():
    mdata, _ = genotype_only(n=80)
    params = model_fixtures.fast_params(max_epochs=5, cv_folds=0)
    config = EvalConfig(protocols=("holdout",), fast=True, methods=("deepgami", ALONE))
    res = evaluate(mdata, params, config)
    assert res.info["not_applicable"] == {ALONE: "n/a (cohort has one modality)"}
    assert ALONE not in set(res.metrics["method"]) and ALONE not in res.info["methods"]
    na = res.summary[res.summary["method"] == ALONE]
    assert len(na) and (na["note"] == "n/a (cohort has one modality)").all()
    assert not res.paired_tests["method"].astype(str).str.contains("[", regex=False).any()
    assert res.info["verdict_alone"] == []
