"""Models that travel: a cohort lacking a few of the model's features predicts with them at their
training mean; one lacking too many is refused (exit 2, one line, no output)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import model_fixtures
from model_fixtures import single_thread  # noqa: F401  (autouse)

from deepgami.cli import main
from deepgami.data.cohort import assemble_cohort, write_cohort
from deepgami.model import DeepGAMI


@pytest.fixture(scope="module")
def model_and_cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    mdata = model_fixtures.dense_mudata(n_samples=80, seed=0, n_a=40, n_b=20)
    out = tmp_path_factory.mktemp("coverage") / "model"
    DeepGAMI.fit(mdata, model_fixtures.fast_params(cv_folds=0), seed=0).save(out)
    return out, mdata


def without_features(mdata, modality: str, n_drop: int, path: Path) -> Path:
    """The cohort written again with the first `n_drop` features of `modality` left out."""
    mods = {m: mdata.mod[m].copy() for m in mdata.mod}
    mods[modality] = mods[modality][:, n_drop:].copy()
    labels = pd.DataFrame({"label": mdata.obs["label"].astype(str)}, index=mdata.obs_names)
    cohort, _ = assemble_cohort(mods, labels)
    write_cohort(cohort, path)
    return path


def test_missing_five_percent_is_filled_with_the_training_mean_and_counted(
    model_and_cohort, tmp_path, capsys
):
    model_dir, mdata = model_and_cohort
    cohort = without_features(mdata, "a", 2, tmp_path / "c.h5mu")  # 2 of 40 = 5%
    out = tmp_path / "p.tsv"
    assert main(["predict", str(model_dir), str(cohort), "--out", str(out)]) == 0
    assert (
        "filled 2 of the model's 40 'a' features with their training mean"
        in capsys.readouterr().err
    )
    metrics = json.loads((tmp_path / "p.metrics.json").read_text())
    assert metrics["filled_features"] == {"a": 2}
    # Filling with the training mean is exactly giving the training mean as the value.
    model = DeepGAMI.load(model_dir)
    full = mdata.copy()
    prep = model.preprocessors[model.modalities.index("a")]
    full.mod["a"].X[:, :2] = prep.fill[:2]
    expected = model.predict(full)
    got = pd.read_csv(out, sep="\t")
    np.testing.assert_allclose(got["prob_case"], expected["prob_case"], atol=1e-6)


def test_missing_twenty_percent_is_refused_with_the_coverage(model_and_cohort, tmp_path, capsys):
    model_dir, mdata = model_and_cohort
    cohort = without_features(mdata, "a", 8, tmp_path / "c.h5mu")  # 8 of 40 = 20%
    out = tmp_path / "p.tsv"
    assert main(["predict", str(model_dir), str(cohort), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(cohort) in err[0]
    assert (
        "has 80.0% of the model's 40 input features (8 missing" in err[0]
        and "minimum coverage 0.9" in err[0]
    )
    assert not out.exists() and not (tmp_path / "p.metrics.json").exists()


def test_min_coverage_one_requires_every_feature(model_and_cohort, tmp_path):
    model_dir, mdata = model_and_cohort
    cohort = without_features(mdata, "a", 1, tmp_path / "c.h5mu")
    assert (
        main(
            [
                "predict",
                str(model_dir),
                str(cohort),
                "--out",
                str(tmp_path / "p.tsv"),
                "--min-coverage",
                "1",
            ]
        )
        == 2
    )
