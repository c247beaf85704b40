"""Several targets and survival: storage, the Cox loss, masking, training and the single-target golden."""

from __future__ import annotations

from pathlib import Path

import model_fixtures
import numpy as np
import pandas as pd
import pytest
import torch

from deepgami import DeepGAMI, build_cohort
from deepgami.data.cohort import read_cohort, write_cohort
from deepgami.data.targets import read_target_arrays
from deepgami.errors import InputError
from deepgami.testing import write_tiny_inputs
from deepgami.train.multitask import HeadSlice, MultiTaskLoss, cox_partial_nll

GOLDEN = Path(__file__).parent / "data"


def _labels(tmp_path, n=40, **columns):
    paths = write_tiny_inputs(tmp_path, n_samples=n)
    table = pd.read_csv(paths["labels"])
    rng = np.random.default_rng(0)
    table["score"] = rng.normal(size=n).round(3)
    table.loc[:5, "score"] = np.nan
    table["time"] = rng.exponential(size=n).round(3) + 0.01
    table["event"] = rng.integers(0, 2, n)
    for key, value in columns.items():
        table[key] = value
    table.to_csv(tmp_path / "targets.csv", index=False)
    return paths, tmp_path / "targets.csv"


def _build(paths, labels, **kwargs):
    return build_cohort(
        {"snp": paths["snp"], "expr": paths["expr"]},
        labels,
        {"snp:eqtl": paths["eqtl"]},
        **kwargs,
    )


def test_several_targets_are_stored_with_their_kinds(tmp_path):
    paths, labels = _labels(tmp_path)
    mdata = _build(paths, labels, label_column="label,score", survival_columns="time,event")
    write_cohort(mdata, tmp_path / "c.h5mu")
    back = read_cohort(tmp_path / "c.h5mu")
    targets = read_target_arrays(back)
    assert [(t.name, t.kind) for t in targets] == [
        ("label", "classes"),
        ("score", "numeric"),
        ("survival", "survival"),
    ]
    assert targets[1].known().sum() == 34  # six samples lack the score and stay in the cohort
    assert targets[2].columns == ["time", "event"]
    assert read_target_arrays(_build(paths, paths["labels"])) is None  # one label: as before


@pytest.mark.parametrize(
    ("kwargs", "columns", "message"),
    [
        ({"label_column": "label,nope"}, {}, "no column 'nope'"),
        ({"survival_columns": "time,event"}, {"time": "soon"}, "survival time column 'time'"),
        (
            {"survival_columns": "time,event"},
            {"event": 2},
            "survival event column 'event' must be 0 or 1",
        ),
        ({"survival_columns": "time,event"}, {"event": 0}, "has no event (all 0)"),
        ({"label_column": "label,one"}, {"one": "x"}, "target 'one' has a single class 'x'"),
        ({"label_column": "a,b"}, {"a": "", "b": ""}, "every target is missing for every sample"),
        ({"survival_columns": "time"}, {}, "--survival-columns takes two columns"),
        ({"label_column": "label,split"}, {}, "'split' is a reserved name"),
    ],
)
def test_bad_targets_are_one_line_errors_naming_the_file(tmp_path, kwargs, columns, message):
    paths, labels = _labels(tmp_path, **columns)
    with pytest.raises(InputError) as err:
        _build(paths, labels, **kwargs)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    if "--survival-columns" not in message and "reserved" not in message:
        assert str(labels) in str(err.value)


def _cox_nll_loop(risk, time, event):
    total = 0.0
    for i in np.flatnonzero(event):
        total -= risk[i] - np.log(np.exp(risk[time >= time[i]]).sum())
    return total / event.sum()


def test_cox_loss_is_breslow_and_its_gradient_vanishes_at_the_sksurv_fit():
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.util import Surv

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    time = rng.integers(1, 8, 60).astype(float)  # many ties
    event = rng.integers(0, 2, 60).astype(bool)
    fit = CoxPHSurvivalAnalysis(alpha=0, ties="breslow", tol=1e-12, n_iter=200)
    fit.fit(X, Surv.from_arrays(event, time))
    beta = torch.tensor(fit.coef_, requires_grad=True)
    loss = cox_partial_nll(torch.tensor(X) @ beta, torch.tensor(time), torch.tensor(event * 1.0))
    loss.backward()
    assert loss.item() == pytest.approx(_cox_nll_loop(X @ fit.coef_, time, event), rel=1e-10)
    assert beta.grad.abs().max() < 1e-8  # sksurv's optimum is ours
    moved = cox_partial_nll(
        torch.tensor(X @ (fit.coef_ + 0.3)), torch.tensor(time), torch.tensor(event * 1.0)
    )
    assert float(moved) > float(loss) + 1e-3


def test_rows_without_a_target_do_not_change_the_gradient():
    torch.manual_seed(0)
    logits = torch.randn(8, 3, requires_grad=True)
    y = torch.tensor([[0, 1.0], [1, -0.5], [0, np.nan], [1, 2.0]] * 2, dtype=torch.float32)
    loss = MultiTaskLoss([HeadSlice("classes", 0, 2, 0), HeadSlice("numeric", 2, 1, 1)])
    loss(logits, y).backward()
    unknown = torch.isnan(y[:, 1])
    assert (logits.grad[unknown, 2] == 0).all()
    assert (logits.grad[~unknown, 2] != 0).all()
    y_changed = y.clone()
    y_changed[unknown, 1] = np.nan  # the same, and a batch with no known value adds 0
    none = y.clone()
    none[:, 1] = np.nan
    only_classes = MultiTaskLoss([HeadSlice("classes", 0, 2, 0)])
    # a weighted mean over the targets: the classes' loss alone, halved
    assert float(loss(logits, none)) == pytest.approx(0.5 * float(only_classes(logits, y)))


def test_one_target_through_the_multitask_code_gives_the_same_predictions():
    """Golden: the recorded cohort and settings, with its label declared as the one target of a
    target table (the multi-task path), give the predictions of the one-label path."""
    from deepgami.train import load_params

    mdata, _ = model_fixtures.simulated_mudata(
        n_samples=60, seed=0, missing_expr=0.15, n_snps=30, n_genes=8, n_tfs=4
    )
    params = load_params(GOLDEN / "golden_params.yaml")
    legacy = DeepGAMI.fit(mdata, params, seed=0)
    before = legacy.predict(mdata)
    multi = mdata.copy()
    multi.uns["deepgami"]["targets"] = {
        "name": ["label"],
        "kind": ["classes"],
        "columns": ["label"],
    }
    model = DeepGAMI.fit(multi, params, seed=0)
    assert model.targets is not None
    after = model.predict(multi)
    for c in [c for c in before if c.startswith("prob_")] + ["predicted", "label"]:
        assert after[f"label:{c}"].tolist() == before[c].tolist(), c
    assert model.config["cv"]["selected_setting"] == legacy.config["cv"]["selected_setting"]


def test_a_planted_survival_signal_is_learned(tmp_path):
    from deepgami.data.simulate import simulate_cohort

    sim = simulate_cohort(n_samples=300, n_snps=200, n_tfs=10, n_genes=30, seed=3, survival=True)
    mdata = build_cohort(
        {"snp": sim.genotype, "expr": sim.expression},
        sim.labels,
        {"snp:eqtl": sim.eqtl, "expr:grn": sim.grn},
        label_column=None,
        survival_columns="time,event",
    )
    model = DeepGAMI.fit(mdata, {"cv_folds": 0, "bagging": 0, "max_epochs": 40}, seed=0)
    test = mdata[mdata.obs["split"] == "test"].copy()
    scores = model.metrics(model.predict(test))["survival"]
    assert scores["c_index"] > 0.6


def test_simulated_extra_targets_share_programs_and_leave_the_default_alone():
    from deepgami.data.simulate import simulate_cohort

    small = {"n_samples": 200, "n_snps": 200, "n_tfs": 10, "n_genes": 30, "seed": 2}
    plain = simulate_cohort(**small)
    extra = simulate_cohort(**small, n_targets=2, shared_programs=0.5, missing_fraction=0.3)
    pd.testing.assert_frame_equal(plain.labels, extra.labels[plain.labels.columns])
    assert "n_targets" not in plain.truth["settings"]  # the default truth.json is unchanged
    info = extra.truth["targets"]["label2"]
    first = set(extra.truth["targets"]["label"]["causal_genes"])
    assert len(set(info["shared_genes"])) == len(first) // 2 and set(info["shared_genes"]) <= first
    assert extra.labels["label2"].isna().mean() == pytest.approx(0.3, abs=0.08)


def test_build_and_train_several_targets_from_the_command_line(tmp_path, capsys):
    from deepgami.cli import main

    paths, labels = _labels(tmp_path)
    cohort = tmp_path / "c.h5mu"
    args = ["build", "--modality", f"snp={paths['snp']}", "--modality", f"expr={paths['expr']}"]
    args += ["--labels", str(labels), "--label-column", "label,score", "--out", str(cohort)]
    assert main([*args, "--survival-columns", "time,event", "--quiet"]) == 0
    params = tmp_path / "p.yaml"
    params.write_text("cv_folds: 0\nbagging: 0\nmax_epochs: 3\ntarget_weights: {score: 2}\n")
    assert main(["train", str(cohort), "--out", str(tmp_path / "m"), "--params", str(params)]) == 0
    out = tmp_path / "pred.tsv"
    assert main(["predict", str(tmp_path / "m"), str(cohort), "--out", str(out)]) == 0
    table = pd.read_csv(out, sep="\t")
    for column in ("label:prob_case", "score:predicted", "survival:risk", "survival:risk_group"):
        assert column in table
    assert set(table["survival:risk_group"]) <= {"low", "mid", "high"}
    # Kaplan-Meier by predicted risk group beside the predictions (time and event are known)
    km = tmp_path / "pred.km.png"
    assert km.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    first = km.read_bytes()
    # a second run replaces what it wrote (the figure, and the metrics of several targets)
    assert main(["predict", str(tmp_path / "m"), str(cohort), "--out", str(out)]) == 0
    assert km.read_bytes() == first  # same model and cohort, same bytes
    from deepgami.report.figures import survival_targets_km

    fig = survival_targets_km(table, ["survival"])
    legend = [t.get_text().split(" ")[0] for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["low", "mid", "high"]
    # without a known time there is no figure (and predict writes none)
    assert survival_targets_km(table.drop(columns="survival:time"), ["survival"]) is None


def test_kaplan_meier_figure_by_risk_group():
    import matplotlib

    matplotlib.use("Agg")
    import deepgami as dg

    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "survival:time": rng.exponential(size=60),
            "survival:event": rng.integers(0, 2, 60),
            "survival:risk_group": np.repeat(["low", "mid", "high"], 20),
        }
    )
    fig = dg.pl.kaplan_meier(table, return_fig=True)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["low (n=20)", "mid (n=20)", "high (n=20)"]
    with pytest.raises(ValueError, match="no column"):
        dg.pl.kaplan_meier(table.drop(columns="survival:time"), return_fig=True)


def test_prioritize_attributes_each_target(tmp_path):
    from deepgami.attribution import prioritize

    paths, labels = _labels(tmp_path)
    mdata = _build(paths, labels, label_column="label,score", survival_columns="time,event")
    model = DeepGAMI.fit(mdata, {"cv_folds": 0, "bagging": 0, "max_epochs": 3}, seed=0)
    result = prioritize(model, mdata)
    assert set(result.features["class"]) == {
        "label:case",
        "label:control",
        "score:value",
        "survival:risk",
    }
    assert set(result.links["phenotype"]) == {"label", "score", "survival"}
    assert "target" in result.links  # the link's latent gene, as before
    only = prioritize(model, mdata, classes=["survival"])
    assert set(only.features["class"]) == {"survival:risk"}
    # The survival block is explained on its own: its importances differ from the label's.
    a = result.features[result.features["class"] == "survival:risk"]["importance"].to_numpy()
    b = result.features[result.features["class"] == "label:case"]["importance"].to_numpy()
    assert not np.allclose(a, b)


def test_summary_has_one_row_per_target_and_the_samplesheet_passes_targets(tmp_path):
    import base64
    import json

    from deepgami.pipeline.runner import SummaryEntry, write_summary
    from deepgami.pipeline.samplesheet import pipeline_table, read_samplesheet

    metrics = tmp_path / "all.metrics.json"
    targets = {"label": {"auc": 0.8, "n": 30}, "survival": {"c_index": 0.7, "n": 40}}
    metrics.write_text(json.dumps({"modalities": ["snp", "expr"], "targets": targets}))
    (tmp_path / "all.km.png").write_bytes(b"\x89PNG\r\n\x1a\nkm")  # predict's figure, beside
    entries = [SummaryEntry("c1", "", "all", metrics)]
    write_summary(entries, tmp_path / "summary.tsv", tmp_path / "summary.html")
    table = pd.read_csv(tmp_path / "summary.tsv", sep="\t")
    assert table["target"].tolist() == ["label", "survival"]
    page = (tmp_path / "summary.html").read_text()
    assert "Kaplan-Meier" in page and base64.b64encode(b"\x89PNG\r\n\x1a\nkm").decode() in page
    assert table["c_index"].tolist()[1] == 0.7 and table["auc"].tolist()[0] == 0.8
    paths, labels = _labels(tmp_path)
    sheet = tmp_path / "sheet.csv"
    modalities = f"snp={paths['snp']};expr={paths['expr']}"
    sheet.write_text(
        "id,labels,modalities,label_columns,survival_columns\n"
        f'c1,{labels},{modalities},"label,score","time,event"\n'
    )
    (row,) = read_samplesheet(sheet)
    assert (row.label_columns, row.survival_columns) == ("label,score", "time,event")
    assert pipeline_table(sheet)[0]["survival_columns"] == "time,event"


def test_penalized_cox_baseline_is_registered_and_ranks_a_planted_risk():
    from sksurv.metrics import concordance_index_censored
    from sksurv.util import Surv

    from deepgami.evaluation import baselines as bl

    assert bl.BASELINES["coxnet"].tasks == ("survival",) and bl.names("survival") == ("coxnet",)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 20))
    time = rng.exponential(size=200) / np.exp(X[:, 0] - X[:, 1])
    y = Surv.from_arrays(rng.uniform(size=200) < 0.7, time)
    fitted = bl.fit_baseline("coxnet", X[:150], y[:150], "survival", 0, 3)
    risk = bl.predict_scores(fitted, X[150:])
    assert concordance_index_censored(y[150:]["event"], y[150:]["time"], risk)[0] > 0.7


def test_run_evaluates_a_cohort_with_targets(tmp_path):
    from deepgami.pipeline.runner import RunSettings, plan_cohort
    from deepgami.pipeline.samplesheet import read_samplesheet

    paths, labels = _labels(tmp_path)
    sheet = tmp_path / "sheet.csv"
    sheet.write_text(
        "id,labels,modalities,label_columns,survival_columns\n"
        f'c1,{labels},snp={paths["snp"]};expr={paths["expr"]},"label,score","time,event"\n'
    )
    (row,) = read_samplesheet(sheet)
    tasks = plan_cohort(row, tmp_path, RunSettings(skip=frozenset({"prioritize"})))
    assert [t.stage for t in tasks][-1] == "evaluate"


def test_tl_predict_stores_each_target(tmp_path):
    import deepgami as dg

    paths, labels = _labels(tmp_path)
    mdata = _build(paths, labels, label_column="label,score", survival_columns="time,event")
    model = DeepGAMI.fit(mdata, {"cv_folds": 0, "bagging": 0, "max_epochs": 3}, seed=0)
    dg.tl.predict(model, mdata)
    for key in ("deepgami_label_predicted", "deepgami_score_predicted", "deepgami_survival_risk"):
        assert key in mdata.obs
    assert list(mdata.obsm["deepgami_label_proba"].columns) == ["case", "control"]
    assert "c_index" in mdata.uns["deepgami"]["metrics"]["survival"]
    assert "targets" in mdata.uns["deepgami"] and "priors" in mdata.uns["deepgami"]  # kept
    write_cohort(mdata, tmp_path / "written.h5mu")  # the slots stay writable
    assert read_target_arrays(read_cohort(tmp_path / "written.h5mu")) is not None
