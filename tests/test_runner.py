"""`deepgami run`: the embedded runner over a two-cohort samplesheet, resume, SIGKILL, failures."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from deepgami.pipeline.runner import LEDGER_NAME, RunSettings, plan_cohort, prediction_sets, run_pipeline
from deepgami.pipeline.samplesheet import read_samplesheet

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "assets"
ONLY_BUILD = frozenset({"train", "predict", "prioritize", "evaluate"})
# The test profile's EVALUATE ext.args (conf/test.config): one holdout split, two methods.
FAST_EVALUATE = "evaluate=--fast --protocols holdout --methods deepgami,logistic_regression"


@pytest.fixture
def sheet(tmp_path: Path) -> Path:
    """A private copy of the bundled two-cohort samplesheet and its data (safe to modify)."""
    shutil.copytree(ASSETS / "test", tmp_path / "inputs" / "test")
    shutil.copy(ASSETS / "samplesheet_test.csv", tmp_path / "inputs" / "samplesheet.csv")
    return tmp_path / "inputs" / "samplesheet.csv"


def ledger(outdir: Path) -> dict:
    return json.loads((outdir / LEDGER_NAME).read_text())["stages"]


def run_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deepgami", "run", "--no-progress", *args],
                          capture_output=True, text=True, timeout=1800, **kwargs)


# -- planning ------------------------------------------------------------------------------------

def test_plan_has_the_stages_in_order_with_the_contract_arguments(tmp_path: Path) -> None:
    row = read_samplesheet(ASSETS / "samplesheet_test.csv")[0]
    tasks = plan_cohort(row, tmp_path, RunSettings(seed=7))
    assert [t.key for t in tasks] == [
        "cohort_a/build", "cohort_a/train", "cohort_a/predict/all", "cohort_a/predict/snp",
        "cohort_a/predict/expr", "cohort_a/prioritize", "cohort_a/evaluate"]
    base = tmp_path / "cohort_a"
    build, train, predict_all, predict_snp, _, prioritize, evaluate = (t.argv for t in tasks)
    data = ASSETS / "test" / "cohort_a"
    assert build == ["build", "--modality", f"snp={data / 'genotype.csv'}", "--modality",
                     f"expr={data / 'expression.csv'}", "--prior", f"snp:eqtl={data / 'eqtl.tsv'}",
                     "--prior", f"expr:grn={data / 'grn.tsv'}", "--labels", str(data / "labels.csv"),
                     "--out", str(base / "cohort.h5mu"), "--quiet"]
    assert train == ["train", str(base / "cohort.h5mu"), "--out", str(base / "model"),
                     "--params", str(ASSETS / "test" / "params.yaml"), "--seed", "7"]
    assert predict_all == ["predict", str(base / "model"), str(base / "cohort.h5mu"), "--out",
                           str(base / "predictions" / "all.tsv"), "--split", "test"]
    assert predict_snp[-4:] == ["--modalities", "snp", "--split", "test"]
    assert prioritize == ["prioritize", str(base / "model"), str(base / "cohort.h5mu"), "--out",
                          str(base / "prioritize"), "--split", "test"]
    assert evaluate == ["evaluate", str(base / "cohort.h5mu"), "--out", str(base / "evaluate"),
                        "--params", str(ASSETS / "test" / "params.yaml"), "--model-dir", str(base / "model"),
                        "--prioritize-dir", str(base / "prioritize"), "--seed", "7"]
    assert prediction_sets(row) == ["all", "snp", "expr"]
    skipped = plan_cohort(row, tmp_path, RunSettings(skip=frozenset({"prioritize", "evaluate"}), eval_split=None))
    assert [t.stage for t in skipped] == ["build", "train", "predict", "predict", "predict"]
    assert "--split" not in skipped[2].argv
    # Skipped stages are left out, and evaluate does not point at their folders.
    partial = plan_cohort(row, tmp_path, RunSettings(skip=frozenset({"train", "predict", "prioritize"}),
                                                     stage_args={"evaluate": ["--fast"]}))
    assert [t.stage for t in partial] == ["build", "evaluate"]
    assert "--model-dir" not in partial[1].argv and partial[1].argv[-1] == "--fast"
    assert "--fast" in partial[1].options and set(partial[1].inputs) == {"cohort", "params"}


# -- bad input -----------------------------------------------------------------------------------

def test_invalid_samplesheet_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "sheet.csv"
    bad.write_text("id,labels,modalities\nc 1,l.csv,snp=g.csv\n")
    result = run_cli("--samplesheet", str(bad), "--outdir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith(f"error: {bad}: row 1: id:")
    assert not (tmp_path / "out").exists()


def test_bad_options_are_input_errors(sheet: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from deepgami.cli import main

    assert main(["run", "--samplesheet", str(sheet), "--outdir", str(tmp_path / "o"), "--skip", "trian"]) == 2
    assert "--skip: unknown stage(s) trian" in capsys.readouterr().err
    assert main(["run", "--samplesheet", str(sheet), "--outdir", str(tmp_path / "o"), "--max-workers", "0"]) == 2
    assert "--max-workers must be at least 1" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main(["run", "--samplesheet", str(sheet), "--outdir", str(tmp_path / "file")]) == 2
    assert "--outdir exists and is not a directory" in capsys.readouterr().err


def test_one_run_per_output_directory(sheet: Path, tmp_path: Path) -> None:
    import fcntl

    from deepgami.errors import InputError
    from deepgami.pipeline.runner import LOCK_NAME

    out = tmp_path / "out"
    out.mkdir()
    with open(out / LOCK_NAME, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(InputError, match="another `deepgami run` is using this output directory"):
            run_pipeline(sheet, out, RunSettings(progress=False))


# -- resume on the build stage (fast) ------------------------------------------------------------

def test_resume_skips_unchanged_stages_and_reruns_changed_ones(
        sheet: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    settings = RunSettings(skip=ONLY_BUILD, max_workers=2, progress=False)
    assert run_pipeline(sheet, out, settings) == 0
    assert (out / "cohort_a" / "cohort.h5mu").is_file() and (out / "cohort_b" / "cohort.h5mu").is_file()
    first = ledger(out)
    assert set(first) == {"cohort_a/build", "cohort_b/build"}
    assert (out / "pipeline_info" / "logs" / "cohort_a" / "build.log").is_file()
    capsys.readouterr()

    resume = RunSettings(skip=ONLY_BUILD, max_workers=2, resume=True, progress=False)
    assert run_pipeline(sheet, out, resume) == 0
    err = capsys.readouterr().err
    assert "[cohort_a] build: cached" in err and "[cohort_b] build: cached" in err
    assert "0 stage(s) run, 2 cached" in err

    # A changed input (content, not timestamp) re-runs that cohort's stage only.
    labels = sheet.parent / "test" / "cohort_b" / "labels.csv"
    lines = labels.read_text().splitlines()
    lines[1] = lines[1].replace("case", "control") if "case" in lines[1] else lines[1].replace("control", "case")
    labels.write_text("\n".join(lines) + "\n")
    os.utime(sheet.parent / "test" / "cohort_a" / "labels.csv")  # touched but unchanged: still cached
    assert run_pipeline(sheet, out, resume) == 0
    err = capsys.readouterr().err
    assert "[cohort_a] build: cached" in err and "[cohort_b] build: done" in err
    assert ledger(out)["cohort_b/build"]["inputs"] != first["cohort_b/build"]["inputs"]

    # A missing or altered output re-runs the stage too.
    (out / "cohort_a" / "cohort.h5mu").unlink()
    assert run_pipeline(sheet, out, resume) == 0
    err = capsys.readouterr().err
    assert "[cohort_a] build: done" in err and "[cohort_b] build: cached" in err

    # Without --resume everything runs again.
    assert run_pipeline(sheet, out, settings) == 0
    assert "2 stage(s) run, 0 cached" in capsys.readouterr().err


def test_a_failing_cohort_is_reported_and_the_others_finish(
        sheet: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (sheet.parent / "test" / "cohort_b" / "labels.csv").write_text("sample,phenotype\nS0001,case\n")
    out = tmp_path / "out"
    code = run_pipeline(sheet, out, RunSettings(skip=ONLY_BUILD, max_workers=2, progress=False))
    err = capsys.readouterr().err
    assert code == 2, err
    assert (out / "cohort_a" / "cohort.h5mu").is_file() and not (out / "cohort_b" / "cohort.h5mu").exists()
    (line,) = [l for l in err.splitlines() if l.startswith("error: ")]
    assert line.startswith("error: cohort_b/build: ") and "labels.csv" in line
    assert str(out / "pipeline_info" / "logs" / "cohort_b" / "build.log") in line
    assert set(ledger(out)) == {"cohort_a/build"}


# -- the whole pipeline on two cohorts -----------------------------------------------------------

def table_files(outdir: Path) -> list[Path]:
    return sorted(p.relative_to(outdir) for p in outdir.rglob("*.tsv") if "pipeline_info" not in p.parts)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clean") / "results"
    result = run_cli("--samplesheet", str(ASSETS / "samplesheet_test.csv"), "--outdir", str(out),
                     "--max-workers", "2", "--stage-args", FAST_EVALUATE)
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.slow
def test_two_cohorts_write_every_output_and_the_summary(clean_run: Path) -> None:
    assert FAST_EVALUATE.split("=", 1)[1] in (REPO / "conf" / "test.config").read_text()
    for cohort in ("cohort_a", "cohort_b"):
        base = clean_run / cohort
        assert (base / "cohort.h5mu").is_file()
        assert (base / "model" / "model.pt").is_file() and (base / "model" / "config.json").is_file()
        for name in ("all", "snp", "expr"):
            assert (base / "predictions" / f"{name}.tsv").is_file()
            assert (base / "predictions" / f"{name}.metrics.json").is_file()
        assert {"features.tsv", "latent.tsv", "links.tsv"} <= {p.name for p in (base / "prioritize").iterdir()}
        assert (base / "evaluate").is_dir()
    summary = pd.read_csv(clean_run / "summary.tsv", sep="\t", keep_default_na=False)
    assert summary[["cohort", "cell_type", "prediction_set"]].values.tolist() == [
        ["cohort_a", "bulk", "all"], ["cohort_a", "bulk", "expr"], ["cohort_a", "bulk", "snp"],
        ["cohort_b", "", "all"], ["cohort_b", "", "expr"], ["cohort_b", "", "snp"]]
    for column in ("accuracy", "balanced_accuracy", "auc"):
        assert summary[column].between(0, 1).all(), column
    assert (clean_run / "summary.html").read_text().count("<tr") == 1 + len(summary)


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_equals_a_clean_run(clean_run: Path, tmp_path: Path) -> None:
    # evaluate is left out of this run to save time; every table it does write must equal the clean run's.
    out = tmp_path / "results"
    args = ["--samplesheet", str(ASSETS / "samplesheet_test.csv"), "--outdir", str(out), "--max-workers", "2",
            "--skip", "evaluate"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "deepgami", "run", "--no-progress", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        # Wait (on the filesystem, no timing assumption) until a first stage has finished and been recorded.
        deadline = time.monotonic() + 900
        while not ((out / LEDGER_NAME).is_file() and ledger(out)):
            assert proc.poll() is None, "deepgami run ended before any stage finished"
            assert time.monotonic() < deadline, "no stage finished in 15 minutes"
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    # Pool workers stop their stage and exit on their own once the runner is gone.
    deadline = time.monotonic() + 60
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    leftover = _group_alive(proc.pid)
    if leftover:
        os.killpg(proc.pid, signal.SIGKILL)
    assert not leftover, "stage processes outlived the killed runner"
    assert not (out / "summary.tsv").exists(), "the run was not interrupted"

    result = run_cli(*args, "--resume")
    assert result.returncode == 0, result.stderr
    assert ": cached" in result.stderr

    expected_tables = [t for t in table_files(clean_run) if t.parts[1:2] != ("evaluate",)]
    assert table_files(out) == expected_tables
    for relative in expected_tables:
        expected = pd.read_csv(clean_run / relative, sep="\t")
        got = pd.read_csv(out / relative, sep="\t")
        pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-9, obj=str(relative))


def _group_alive(pgid: int) -> bool:
    """Whether any process of process group `pgid` (the session the test started) is still running."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False
