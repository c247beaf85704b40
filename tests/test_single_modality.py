"""Issue #22: one modality is a cohort too; prior targets that are not variables are unmeasured
latent nodes; a selected setting that does not beat the class prior is reported and warned about."""

from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from model_fixtures import fast_params, single_thread  # noqa: F401
from sklearn.metrics import roc_auc_score

from deepgami.cli import main
from deepgami.data import cohort
from deepgami.data.arrays import read_arrays
from deepgami.model import DeepGAMI
from deepgami.testing import write_tiny_inputs


def genotype_only(n: int = 240, seed: int = 0, signal: bool = True):
    """Dosages of 30 SNPs; an eQTL prior maps 3 SNPs to each of 10 genes that are not variables;
    the label follows the first gene's SNPs (or nothing, without `signal`)."""
    rng = np.random.default_rng(seed)
    x = rng.binomial(2, 0.4, size=(n, 30)).astype(np.float32)
    samples = [f"S{i:03d}" for i in range(n)]
    snps = [f"rs{i}" for i in range(30)]
    score = x[:, :3].sum(axis=1) - 2.4 if signal else np.zeros(n)
    label = np.where(score + 0.7 * rng.standard_normal(n) > 0, "case", "control")
    labels = pd.DataFrame(
        {"label": label, "split": np.where(np.arange(n) % 4 == 0, "test", "train")},
        index=pd.Index(samples, name="sample"),
    )
    eqtl = pd.DataFrame({"source": snps, "target": [f"GENE{i // 3}" for i in range(30)]})
    block = ad.AnnData(x, obs=pd.DataFrame(index=samples), var=pd.DataFrame(index=snps))
    return cohort.assemble_cohort({"snp": block}, labels, [cohort.PriorInput("snp", "eqtl", eqtl)])


def test_unmeasured_targets_are_latent_nodes_and_survive_write(tmp_path: Path):
    mdata, report = genotype_only()
    assert report.latent == {"nodes": 10, "unmeasured": 10}
    assert any("10 are not variables of the cohort" in line for line in report.lines())
    cohort.write_cohort(mdata, tmp_path / "c.h5mu")
    back = cohort.read_cohort(tmp_path / "c.h5mu")
    assert cohort.latent_nodes(back) == [f"GENE{i}" for i in range(10)]
    name, src, dst = cohort.modality_edges(back, "snp")
    assert name == "eqtl" and len(src) == 30 and list(dst[:3]) == [0, 0, 0]
    data = read_arrays(back)
    assert data.modalities == ["snp"] and data.latent_nodes[0] == "GENE0"


def test_genotype_only_cohort_trains_predicts_and_saves(tmp_path: Path):
    mdata, _ = genotype_only()
    model = DeepGAMI.fit(mdata, fast_params(cv_folds=0, max_epochs=40), seed=0)
    assert model.config["modalities"] == ["snp"]
    assert model.config["latent_nodes"] == [f"GENE{i}" for i in range(10)]
    pred = model.predict(mdata)
    test = (mdata.obs["split"] == "test").to_numpy()
    auc = roc_auc_score(pred["label"][test] == "control", pred["prob_control"][test])
    assert auc > 0.75  # the planted gene's SNPs decide the label
    model.save(tmp_path / "m")
    again = DeepGAMI.load(tmp_path / "m").predict(mdata)
    pd.testing.assert_frame_equal(pred, again)


def test_build_counts_unmeasured_and_links_name_them(tmp_path: Path, capsys):
    paths = write_tiny_inputs(tmp_path / "in")
    out = tmp_path / "c.h5mu"
    args = ["build", "--modality", f"snp={paths['snp']}", "--labels", str(paths["labels"])]
    assert main([*args, "--prior", f"snp:eqtl={paths['eqtl']}", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "latent nodes: 4 (targets common to all priors), of which 4 are not variables" in printed
    assert main(["train", str(out), "--out", str(tmp_path / "m"), "--cv-folds", "0"]) == 0
    assert main(["predict", str(tmp_path / "m"), str(out), "--out", str(tmp_path / "p.tsv")]) == 0
    assert set(pd.read_csv(tmp_path / "p.tsv", sep="\t")["modalities"]) == {"snp"}
    pr = tmp_path / "pr"
    assert main(["prioritize", str(tmp_path / "m"), str(out), "--out", str(pr)]) == 0
    links = pd.read_csv(pr / "links.tsv", sep="\t")
    assert set(links["target"]) == {"G0", "G1", "G2", "G3"}
    assert set(links["modality"]) == {"snp"}


def test_collapsed_setting_is_reported_and_warned(tmp_path: Path, capsys):
    mdata, _ = genotype_only(n=160, seed=1, signal=False)  # labels independent of the data
    path = tmp_path / "c.h5mu"
    cohort.write_cohort(mdata, path)
    params = tmp_path / "p.yaml"
    params.write_text(
        "grid:\n  hidden_layers: [[8]]\n  weight_decay: [0.0001]\n"
        "max_epochs: 10\ncv_folds: 2\nbagging: 0\n"
    )
    assert main(["train", str(path), "--out", str(tmp_path / "m"), "--params", str(params)]) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "class-prior" in warnings[0]
    cv = json.loads((tmp_path / "m" / "config.json").read_text())["cv"]
    assert cv["beats_prior"] is False
    assert cv["prior_log_loss"] == pytest.approx(np.log(2), abs=0.02)
    assert cv["chosen_log_loss"] > cv["prior_log_loss"] - cv["prior_margin"]
