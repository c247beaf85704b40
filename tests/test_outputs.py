"""The output policy (#23): an output replaces only what deepgami wrote there, never an input, and
a refusal is one line, exit code 2, with nothing touched."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from deepgami.cli import main
from deepgami.errors import MARKER, claim_output, output_claims
from deepgami.testing import write_tiny_inputs

FAST = ["--cv-folds", "0", "--max-epochs", "2", "--quiet"]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> dict[str, Path]:
    """A tiny cohort and a model trained on it (no grid search, no bagging: seconds)."""
    root = tmp_path_factory.mktemp("outputs")
    paths = write_tiny_inputs(root / "in", n_samples=24)
    cohort, model = root / "cohort.h5mu", root / "model"
    params = root / "params.yaml"
    params.write_text("bagging: 0\n")
    build = ["build", "--modality", f"snp={paths['snp']}", "--modality", f"expr={paths['expr']}"]
    build += ["--labels", str(paths["labels"]), "--prior", f"snp:eqtl={paths['eqtl']}"]
    assert main([*build, "--out", str(cohort), "--quiet"]) == 0
    assert main(["train", str(cohort), "--out", str(model), "--params", str(params), *FAST]) == 0
    return {**paths, "cohort": cohort, "model": model, "params": params, "root": root}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_train_never_deletes_an_input_inside_out(work, tmp_path, capsys, overwrite):
    folder = tmp_path / "c"
    folder.mkdir()
    shutil.copy(work["cohort"], folder / "cohort.h5mu")
    (folder / "notes.txt").write_text("mine")
    before = _snapshot(folder)
    args = ["train", str(folder / "cohort.h5mu"), "--out", str(folder), *FAST, *overwrite]
    assert main(args) == 2
    assert "contains an input" in _one_line(capsys)
    assert _snapshot(folder) == before


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_prioritize_never_replaces_its_model(work, capsys, overwrite):
    before = _snapshot(work["model"])
    args = ["prioritize", str(work["model"]), str(work["cohort"]), "--out", str(work["model"])]
    assert main([*args, "--no-figures", *overwrite]) == 2
    assert "is an input" in _one_line(capsys)
    assert _snapshot(work["model"]) == before


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_predict_never_replaces_its_cohort(work, capsys, overwrite):
    before = work["cohort"].read_bytes()
    args = ["predict", str(work["model"]), str(work["cohort"]), "--out", str(work["cohort"])]
    assert main([*args, *overwrite]) == 2
    assert "is an input" in _one_line(capsys)
    assert work["cohort"].read_bytes() == before


def test_a_model_directory_is_not_another_commands_output(work, tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(work["model"], model)
    before = _snapshot(model)
    args = ["prioritize", str(work["model"]), str(work["cohort"]), "--out", str(model)]
    assert main([*args, "--no-figures"]) == 2
    assert "deepgami did not write" in _one_line(capsys)
    assert _snapshot(model) == before


def test_foreign_directory_needs_overwrite(work, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    args = ["train", str(work["cohort"]), "--out", str(out), "--params", str(work["params"])]
    assert main([*args, *FAST]) == 2
    assert "notes.txt" in _one_line(capsys)
    assert (out / "notes.txt").read_text() == "mine"
    assert main([*args, *FAST, "--overwrite"]) == 0  # asked for: replaced as a whole
    assert not (out / "notes.txt").exists() and (out / "config.json").is_file()


def test_own_output_is_replaced_and_marked(work, tmp_path, capsys):
    out = tmp_path / "model"
    args = ["train", str(work["cohort"]), "--out", str(out), "--params", str(work["params"])]
    assert main([*args, *FAST]) == 0
    marker = json.loads((out / MARKER).read_text())
    assert marker["kind"] == "model" and "model.safetensors" in marker["files"]
    assert main([*args, *FAST]) == 0  # deepgami's own: replaced without --overwrite
    (out / "notes.txt").write_text("added by the user")
    assert main([*args, *FAST]) == 2
    assert "notes.txt" in _one_line(capsys)
    assert (out / "notes.txt").is_file()


def test_legacy_model_directory_is_recognised(work, tmp_path):
    legacy = tmp_path / "old"
    shutil.copytree(work["model"], legacy)
    (legacy / MARKER).unlink()  # as written before the marker existed
    args = ["train", str(work["cohort"]), "--out", str(legacy), "--params", str(work["params"])]
    assert main([*args, *FAST]) == 0
    (legacy / MARKER).unlink()
    (legacy / "config.json").write_text("{}")  # not a deepgami config: not recognised
    assert main([*args, *FAST]) == 2


def test_file_outputs_recognised_by_kind(work, tmp_path, capsys):
    user = tmp_path / "table.tsv"
    user.write_text("id\tvalue\n1\t2\n")
    args = ["predict", str(work["model"]), str(work["cohort"]), "--quiet"]
    assert main([*args, "--out", str(user)]) == 2
    assert "not a predictions file" in _one_line(capsys)
    assert user.read_text() == "id\tvalue\n1\t2\n"
    own = tmp_path / "pred.tsv"
    assert main([*args, "--out", str(own)]) == 0
    assert main([*args, "--out", str(own)]) == 0  # its own predictions and metrics: replaced
    assert main([*args, "--out", str(tmp_path)]) == 2
    assert "is a directory" in _one_line(capsys)
    fake = tmp_path / "fake.h5mu"
    fake.write_text("not a cohort")
    build = ["build", "--modality", f"snp={work['snp']}", "--modality", f"expr={work['expr']}"]
    build += ["--labels", str(work["labels"]), "--quiet"]
    assert main([*build, "--out", str(fake)]) == 2
    assert fake.read_text() == "not a cohort"
    assert main([*build, "--out", str(work["root"] / "cohort.h5mu")]) == 0  # its own cohort


@pytest.mark.parametrize(
    "argv",
    [
        ["build", "--modality", "a=IN/x.csv", "--labels", "IN/l.csv"],
        ["pseudobulk", "IN/cells.h5ad", "--donor-key", "d", "--cell-type-key", "c"],
        ["simulate", "--n-samples", "20"],
        ["simulate-cells", "--n-donors", "4"],
        ["train", "IN/c.h5mu"],
        ["predict", "IN/m", "IN/c.h5mu"],
        ["prioritize", "IN/m", "IN/c.h5mu"],
        ["evaluate", "IN/c.h5mu"],
    ],
    ids=lambda a: a[0],
)
def test_every_command_refuses_a_users_file(tmp_path, capsys, argv):
    """Every command goes through the policy before any work: a user's file stays."""
    out = tmp_path / ("users.h5mu" if argv[0] == "build" else "users")
    out.write_text("mine")
    argv = [a.replace("IN", str(tmp_path / "in")) for a in argv]
    assert main([*argv, "--out", str(out)]) == 2
    _one_line(capsys)
    assert out.read_text() == "mine"


def test_one_command_at_a_time_per_output(work, tmp_path, capsys):
    """The lock: a second writer stops at once with one line (exit 3) and touches nothing."""
    out = tmp_path / "model"
    with output_claims():
        claim_output(out, "model")  # another command holds it
        args = ["train", str(work["cohort"]), "--out", str(out), *FAST]
        assert main(args) == 3
        assert "another deepgami command" in _one_line(capsys)
    assert not out.exists() and not list(tmp_path.iterdir())  # the lock file went with the claim


def test_evaluate_keeps_a_users_directory(work, tmp_path, capsys):
    """With real inputs (the old code ran the evaluation and then replaced the folder)."""
    out = tmp_path / "results"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    args = ["evaluate", str(work["cohort"]), "--out", str(out), "--fast", "--quiet"]
    assert main([*args, "--methods", "logistic_regression", "--protocols", "holdout"]) == 2
    assert "notes.txt" in _one_line(capsys)
    assert (out / "notes.txt").read_text() == "mine"
