"""Every failure one line (#23): OS errors (exit 3), non-finite data, models that contradict
themselves, API arguments of the wrong type, tiny cohorts, and small contract details."""

from __future__ import annotations

import json
import os
from pathlib import Path

import mudata as md
import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

import deepgami as dg
from deepgami.cli import main
from deepgami.errors import InputError, TrainingDiverged
from deepgami.testing import write_tiny_inputs

FAST = ["--cv-folds", "0", "--max-epochs", "2", "--quiet"]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("failures")
    paths = write_tiny_inputs(root / "in", n_samples=24)
    cohort, model = root / "cohort.h5mu", root / "model"
    (root / "params.yaml").write_text("bagging: 0\n")
    build = ["build", "--modality", f"snp={paths['snp']}", "--modality", f"expr={paths['expr']}"]
    build += ["--labels", str(paths["labels"]), "--prior", f"snp:eqtl={paths['eqtl']}"]
    assert main([*build, "--out", str(cohort), "--quiet"]) == 0
    params = ["--params", str(root / "params.yaml")]
    assert main(["train", str(cohort), "--out", str(model), *params, *FAST]) == 0
    return {**paths, "cohort": cohort, "model": model, "root": root, "params": params}


def _train(work, out) -> list[str]:
    return ["train", str(work["cohort"]), "--out", str(out), *work["params"], *FAST]


# -- OS errors: one line, exit 3, nothing partial -----------------------------------------------


def test_out_under_a_file_is_one_line(work, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(_train(work, blocker / "model")) == 3
    assert "Not a directory" in _one_line(capsys)
    assert blocker.read_text() == "x"


def test_read_only_destination_is_one_line(work, tmp_path, capsys, monkeypatch):
    # Root ignores file modes, so the read-only file system is simulated at the final rename.
    def refuse(src, dst):
        raise OSError(30, "Read-only file system", str(dst))

    monkeypatch.setattr("deepgami.errors.os.replace", refuse)
    assert main(_train(work, tmp_path / "model")) == 3
    err = _one_line(capsys)
    assert "Read-only file system" in err and str(tmp_path / "model") in err
    assert list(tmp_path.iterdir()) == []  # no temporary left behind


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_folder_refusing_new_files_is_one_line(work, capsys):
    # /proc exists but takes no new file; the error names the folder and what it refused.
    assert main(["predict", str(work["model"]), str(work["cohort"]), "--out", "/proc/p.tsv"]) == 3
    assert _one_line(capsys).startswith("error: /proc: cannot create files here (")


def test_full_disk_while_writing_weights_is_one_line(work, tmp_path, capsys, monkeypatch):
    from safetensors import SafetensorError

    def full(*args, **kwargs):
        raise SafetensorError(
            'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No '
            'space left on device" })'
        )

    monkeypatch.setattr("safetensors.torch.save_file", full)
    assert main(_train(work, tmp_path / "model")) == 3
    assert "No space left on device" in _one_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_debug_shows_the_traceback(work, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError):
        main(["--debug", *_train(work, blocker / "model")])


def test_weights_have_the_mode_of_the_other_outputs(work):
    model = work["model"]
    mode = (model / "config.json").stat().st_mode & 0o777
    assert (model / "model.safetensors").stat().st_mode & 0o777 == mode


# -- non-finite data -----------------------------------------------------------------------------


def test_build_names_the_inf_cell(work, tmp_path, capsys):
    expr = pd.read_csv(work["expr"], index_col=0)
    expr.iloc[3, 2] = -np.inf
    expr.to_csv(tmp_path / "expr.csv")
    argv = ["build", "--modality", f"snp={work['snp']}", "--modality", f"expr={tmp_path}/expr.csv"]
    out = tmp_path / "c.h5mu"
    assert main([*argv, "--labels", str(work["labels"]), "--out", str(out)]) == 2
    err = _one_line(capsys)
    assert "expr.csv" in err and f"column '{expr.columns[2]}'" in err
    assert f"sample '{expr.index[3]}'" in err and not out.exists()


def test_edited_cohort_with_inf_is_refused(work, tmp_path, capsys):
    mdata = md.read_h5mu(work["cohort"])
    mdata.mod["expr"].X[2, 1] = np.inf
    edited = tmp_path / "edited.h5mu"
    mdata.write_h5mu(edited)
    assert main(["train", str(edited), "--out", str(tmp_path / "m2"), *FAST]) == 2
    assert "NaN/infinite" in _one_line(capsys) and not (tmp_path / "m2").exists()
    out = tmp_path / "p.tsv"
    assert main(["predict", str(work["model"]), str(edited), "--out", str(out)]) == 2
    assert "edited.h5mu" in _one_line(capsys) and not out.exists()


def test_nan_loss_stops_training():
    from tests.model_fixtures import simulated_mudata

    mdata, _ = simulated_mudata(n_samples=40)
    mdata.mod["expr"].X = np.asarray(mdata.mod["expr"].X, dtype=np.float32)
    mdata.mod["expr"].X[:, 0] = np.inf  # every row: whichever rows train see it
    with pytest.raises(TrainingDiverged, match="training loss became nan"):
        dg.DeepGAMI.fit(mdata, {"cv_folds": 0, "max_epochs": 3, "bagging": 0})


# -- models validated on load --------------------------------------------------------------------


def _edit_config(model: Path, edit) -> None:
    config = json.loads((model / "config.json").read_text())
    edit(config)
    (model / "config.json").write_text(json.dumps(config))


def _edit_weights(model: Path, edit) -> None:
    state = load_file(model / "model.safetensors")
    edit(state)
    save_file(state, model / "model.safetensors")


CORRUPTIONS = {
    "inputs": (
        lambda c: c["network"]["n_inputs"].__setitem__(1, 9),
        None,
        "config.json",
        "n_inputs",
    ),
    "classes": (lambda c: c["classes"].pop(), None, "config.json", "'classes'"),
    "features": (
        lambda c: c["preprocessing"]["snp"]["features"].pop(),
        None,
        "config.json",
        "'preprocessing.snp.features'",
    ),
    "nan": (None, lambda s: s["head.1.weight"].fill_(float("nan")), "model.safetensors", "NaN"),
    "shape": (
        None,
        lambda s: s.__setitem__("encoders.1.weight", torch.zeros(4, 3)),
        "model.safetensors",
        "encoders.1.weight",
    ),
    "dtype": (
        None,
        lambda s: s.__setitem__("encoders.0.src", s["encoders.0.src"].float()),
        "model.safetensors",
        "integers",
    ),
    "extra": (
        None,
        lambda s: s.__setitem__("members.9.head.1.weight", torch.zeros(1)),
        "model.safetensors",
        "'members.9.head.1.weight'",
    ),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_a_model_that_contradicts_itself_is_one_line(work, tmp_path, capsys, case):
    import shutil

    edit_config, edit_weights, file, field = CORRUPTIONS[case]
    model = tmp_path / "model"
    shutil.copytree(work["model"], model)
    if edit_config:
        _edit_config(model, edit_config)
    if edit_weights:
        _edit_weights(model, edit_weights)
    out = tmp_path / "p.tsv"
    assert main(["predict", str(model), str(work["cohort"]), "--out", str(out)]) == 2
    err = _one_line(capsys)
    assert file in err and field in err, err
    assert not out.exists()


# -- the Python API checks its arguments ---------------------------------------------------------


def test_api_refuses_anndata_and_reads_one_modality_name(work):
    mdata = md.read_h5mu(work["cohort"])
    model = dg.DeepGAMI.load(work["model"])
    adata = mdata.mod["snp"]
    with pytest.raises(TypeError, match="mdata must be a MuData, got AnnData"):
        dg.DeepGAMI.fit(adata)
    with pytest.raises(TypeError, match="data must be a MuData, got AnnData"):
        model.predict(adata)
    with pytest.raises(TypeError, match="mdata must be a MuData"):
        dg.tl.predict(model, adata)
    with pytest.raises(TypeError, match="model must be a DeepGAMI model"):
        dg.tl.prioritize(str(work["model"]), mdata)
    with pytest.raises(TypeError, match="modalities"):
        model.predict(mdata, 3)
    one = model.predict(mdata, "snp")  # a single string is one modality name
    pd.testing.assert_frame_equal(one, model.predict(mdata, ["snp"]))


# -- build: the automatic split degrades, odd but valid tables build -----------------------------


def _tiny_files(folder: Path, bom: bool, quoted: bool) -> dict[str, Path]:
    folder.mkdir()
    start = "\ufeff" if bom else ""
    q = (lambda s: f'"{s}"') if quoted else (lambda s: s)
    files = {
        "labels": [f"{q('sample')},{q('label')}", "A,case", "B,control", "C,case", "D,control"],
        "snp": [f"{q('sample')},{q('f1')},{q('f2')}", "A,1,2", "B,0,1", "C,2,2", "D,1,0"],
        "expr": [f"{q('sample')},{q('g1')},{q('g2')}", "A,.1,.2", "B,.3,.1", "C,.5,.2", "D,.1,.9"],
    }
    paths = {}
    for name, rows in files.items():
        paths[name] = folder / f"{name}.csv"
        with open(paths[name], "w", newline="", encoding="utf-8") as handle:
            handle.write(start + "\r\n".join(rows) + "\r\n")
    return paths


@pytest.mark.parametrize("bom,quoted", [(True, False), (False, True)])
def test_a_four_sample_cohort_builds(tmp_path, capsys, bom, quoted):
    paths = _tiny_files(tmp_path / "in", bom, quoted)
    argv = ["build", "--modality", f"snp={paths['snp']}", "--modality", f"expr={paths['expr']}"]
    argv += ["--labels", str(paths["labels"]), "--quiet"]
    out = tmp_path / "c.h5mu"
    assert main([*argv, "--out", str(out)]) == 0
    assert "no test split" in capsys.readouterr().err
    mdata = md.read_h5mu(out)
    assert list(mdata.obs_names) == ["A", "B", "C", "D"]
    assert list(mdata.var_names) == ["f1", "f2", "g1", "g2"]
    assert set(mdata.obs["split"]) == {"train"}
    assert "stratified" in mdata.uns["deepgami"]["split"]["reason"]
    explicit = tmp_path / "explicit.h5mu"
    assert main([*argv, "--test-fraction", "0.2", "--out", str(explicit)]) == 2
    assert "cannot draw" in _one_line(capsys) and not explicit.exists()


# -- small things --------------------------------------------------------------------------------


def test_predict_quiet(work, tmp_path, capsys):
    mdata = md.read_h5mu(work["cohort"])
    expr = mdata.mod["expr"]
    mdata.mod["expr"] = expr[:, expr.var_names[1:]].copy()  # one feature short: filled, noted
    mdata.update()
    short = tmp_path / "short.h5mu"
    mdata.write_h5mu(short)
    argv = ["predict", str(work["model"]), str(short), "--out", str(tmp_path / "p.tsv")]
    assert main([*argv, "--min-coverage", "0.5"]) == 0
    assert "filled" in capsys.readouterr().err
    assert main([*argv, "--min-coverage", "0.5", "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_failed_single_cell_row_is_one_cohort(tmp_path, capsys):
    from deepgami.pipeline.runner import StageTask, _summarize_run
    from deepgami.pipeline.samplesheet import CohortRow

    rows = [
        CohortRow(f"sc.{c}", tmp_path / "l.csv", {"expr": tmp_path / f"{c}.h5ad"}, parent="sc")
        for c in ("A", "B")
    ]
    task = StageTask("sc", "pseudobulk", "sc/pseudobulk", [], {}, [], [])
    assert _summarize_run(rows, tmp_path, set(), {"ran": 0, "cached": 0}, [(task, 2, "bad")]) == 2
    assert "1 cohort(s)" in capsys.readouterr().err


def test_no_partial_output_on_interrupted_write(tmp_path):
    """os.replace failing mid-command leaves neither the output nor a temporary."""
    from deepgami.errors import EnvError, atomic_path

    final = tmp_path / "out"
    with pytest.raises(EnvError, match="out"):
        with atomic_path(final, suffix="") as tmp:
            tmp.mkdir()
            (tmp / "a").write_text("x")
            os.chmod(tmp, 0o755)
            raise OSError(28, "No space left on device", str(tmp / "a"))
    assert list(tmp_path.iterdir()) == []
