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

from deepgami.errors import InputError
from deepgami.pipeline.runner import (
    LEDGER_NAME,
    RunSettings,
    plan_cohort,
    prediction_sets,
    run_pipeline,
)
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
    return subprocess.run(
        [sys.executable, "-m", "deepgami", "run", "--no-progress", *args],
        capture_output=True,
        text=True,
        timeout=1800,
        **kwargs,
    )


# -- planning ------------------------------------------------------------------------------------


def test_plan_has_the_stages_in_order_with_the_contract_arguments(tmp_path: Path) -> None:
    row = read_samplesheet(ASSETS / "samplesheet_test.csv")[0]
    tasks = plan_cohort(row, tmp_path, RunSettings(seed=7))
    assert [t.key for t in tasks] == [
        "cohort_a/build",
        "cohort_a/train",
        "cohort_a/predict/all",
        "cohort_a/predict/snp",
        "cohort_a/predict/expr",
        "cohort_a/prioritize",
        "cohort_a/evaluate",
    ]
    base = tmp_path / "cohort_a"
    build, train, predict_all, predict_snp, _, prioritize, evaluate = (t.argv for t in tasks)
    data = ASSETS / "test" / "cohort_a"
    assert build == [
        "build",
        "--modality",
        f"snp={data / 'genotype.csv'}",
        "--modality",
        f"expr={data / 'expression.csv'}",
        "--prior",
        f"snp:eqtl={data / 'eqtl.tsv'}",
        "--prior",
        f"expr:grn={data / 'grn.tsv'}",
        "--labels",
        str(data / "labels.csv"),
        "--out",
        str(base / "cohort.h5mu"),
        "--quiet",
    ]
    assert train == [
        "train",
        str(base / "cohort.h5mu"),
        "--out",
        str(base / "model"),
        "--params",
        str(ASSETS / "test" / "params.yaml"),
        "--seed",
        "7",
    ]
    assert predict_all == [
        "predict",
        str(base / "model"),
        str(base / "cohort.h5mu"),
        "--out",
        str(base / "predictions" / "all.tsv"),
        "--split",
        "test",
    ]
    assert predict_snp[-4:] == ["--modalities", "snp", "--split", "test"]
    assert prioritize == [
        "prioritize",
        str(base / "model"),
        str(base / "cohort.h5mu"),
        "--out",
        str(base / "prioritize"),
        "--split",
        "test",
    ]
    assert evaluate == [
        "evaluate",
        str(base / "cohort.h5mu"),
        "--out",
        str(base / "evaluate"),
        "--params",
        str(ASSETS / "test" / "params.yaml"),
        "--model-dir",
        str(base / "model"),
        "--prioritize-dir",
        str(base / "prioritize"),
        "--seed",
        "7",
    ]
    assert prediction_sets(row) == ["all", "snp", "expr"]
    skipped = plan_cohort(
        row, tmp_path, RunSettings(skip=frozenset({"prioritize", "evaluate"}), eval_split=None)
    )
    assert [t.stage for t in skipped] == ["build", "train", "predict", "predict", "predict"]
    assert "--split" not in skipped[2].argv
    # Skipped stages are left out, and evaluate does not point at their folders.
    partial = plan_cohort(
        row,
        tmp_path,
        RunSettings(
            skip=frozenset({"train", "predict", "prioritize"}), stage_args={"evaluate": ["--fast"]}
        ),
    )
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


def test_bad_options_are_input_errors(
    sheet: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from deepgami.cli import main

    assert (
        main(
            ["run", "--samplesheet", str(sheet), "--outdir", str(tmp_path / "o"), "--skip", "trian"]
        )
        == 2
    )
    assert "--skip: unknown stage(s) trian" in capsys.readouterr().err
    assert (
        main(
            [
                "run",
                "--samplesheet",
                str(sheet),
                "--outdir",
                str(tmp_path / "o"),
                "--max-workers",
                "0",
            ]
        )
        == 2
    )
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
        with pytest.raises(
            InputError, match="another `deepgami run` is using this output directory"
        ):
            run_pipeline(sheet, out, RunSettings(progress=False))


# -- resume on the build stage (fast) ------------------------------------------------------------


def test_resume_skips_unchanged_stages_and_reruns_changed_ones(
    sheet: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    settings = RunSettings(skip=ONLY_BUILD, max_workers=2, progress=False)
    assert run_pipeline(sheet, out, settings) == 0
    assert (out / "cohort_a" / "cohort.h5mu").is_file() and (
        out / "cohort_b" / "cohort.h5mu"
    ).is_file()
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
    lines[1] = (
        lines[1].replace("case", "control")
        if "case" in lines[1]
        else lines[1].replace("control", "case")
    )
    labels.write_text("\n".join(lines) + "\n")
    os.utime(
        sheet.parent / "test" / "cohort_a" / "labels.csv"
    )  # touched but unchanged: still cached
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
    sheet: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (sheet.parent / "test" / "cohort_b" / "labels.csv").write_text("sample,phenotype\nS0001,case\n")
    out = tmp_path / "out"
    code = run_pipeline(sheet, out, RunSettings(skip=ONLY_BUILD, max_workers=2, progress=False))
    err = capsys.readouterr().err
    assert code == 2, err
    assert (out / "cohort_a" / "cohort.h5mu").is_file() and not (
        out / "cohort_b" / "cohort.h5mu"
    ).exists()
    (line,) = [l for l in err.splitlines() if l.startswith("error: ")]
    assert line.startswith("error: cohort_b/build: ") and "labels.csv" in line
    assert str(out / "pipeline_info" / "logs" / "cohort_b" / "build.log") in line
    assert set(ledger(out)) == {"cohort_a/build"}


# -- the whole pipeline on two cohorts -----------------------------------------------------------


def table_files(outdir: Path) -> list[Path]:
    return sorted(
        p.relative_to(outdir) for p in outdir.rglob("*.tsv") if "pipeline_info" not in p.parts
    )


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clean") / "results"
    result = run_cli(
        "--samplesheet",
        str(ASSETS / "samplesheet_test.csv"),
        "--outdir",
        str(out),
        "--max-workers",
        "2",
        "--stage-args",
        FAST_EVALUATE,
    )
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.slow
def test_two_cohorts_write_every_output_and_the_summary(clean_run: Path) -> None:
    assert FAST_EVALUATE.split("=", 1)[1] in (REPO / "conf" / "test.config").read_text()
    for cohort in ("cohort_a", "cohort_b"):
        base = clean_run / cohort
        assert (base / "cohort.h5mu").is_file()
        assert (base / "model" / "model.safetensors").is_file() and (
            base / "model" / "config.json"
        ).is_file()
        for name in ("all", "snp", "expr"):
            assert (base / "predictions" / f"{name}.tsv").is_file()
            assert (base / "predictions" / f"{name}.metrics.json").is_file()
        assert {"features.tsv", "latent.tsv", "links.tsv"} <= {
            p.name for p in (base / "prioritize").iterdir()
        }
        assert (base / "evaluate").is_dir()
    summary = pd.read_csv(clean_run / "summary.tsv", sep="\t", keep_default_na=False)
    assert summary[["cohort", "cell_type", "prediction_set"]].values.tolist() == [
        ["cohort_a", "bulk", "all"],
        ["cohort_a", "bulk", "expr"],
        ["cohort_a", "bulk", "snp"],
        ["cohort_b", "", "all"],
        ["cohort_b", "", "expr"],
        ["cohort_b", "", "snp"],
    ]
    for column in ("accuracy", "balanced_accuracy", "auc"):
        assert summary[column].between(0, 1).all(), column
    assert (clean_run / "summary.html").read_text().count("<tr") == 1 + len(summary)


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_equals_a_clean_run(clean_run: Path, tmp_path: Path) -> None:
    # evaluate is left out of this run to save time; every table it does write must equal the clean run's.
    out = tmp_path / "results"
    args = [
        "--samplesheet",
        str(ASSETS / "samplesheet_test.csv"),
        "--outdir",
        str(out),
        "--max-workers",
        "2",
        "--skip",
        "evaluate",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "deepgami", "run", "--no-progress", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
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
        pd.testing.assert_frame_equal(
            got, expected, check_exact=False, rtol=1e-9, obj=str(relative)
        )


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


def test_labels_without_a_split_column_run_every_stage_with_the_defaults(tmp_path: Path) -> None:
    """Issue 17: the default evaluation split (`test`) exists for a cohort whose labels have none:
    `deepgami build` gives the cohort a seeded, stratified 80/20 split."""
    inputs = tmp_path / "inputs"
    shutil.copytree(ASSETS / "test" / "cohort_a", inputs / "cohort_a")
    shutil.copy(ASSETS / "test" / "params.yaml", inputs / "params.yaml")
    labels = pd.read_csv(inputs / "cohort_a" / "labels.csv")
    labels.drop(columns="split").to_csv(inputs / "cohort_a" / "labels.csv", index=False)
    sheet = inputs / "samplesheet.csv"
    sheet.write_text(
        "id,labels,modalities,priors,params\n"
        "nosplit,cohort_a/labels.csv,snp=cohort_a/genotype.csv;expr=cohort_a/expression.csv,"
        "snp:eqtl=cohort_a/eqtl.tsv,params.yaml\n"
    )
    out = tmp_path / "results"
    result = run_cli(
        "--samplesheet", str(sheet), "--outdir", str(out), "--stage-args", FAST_EVALUATE
    )
    assert result.returncode == 0, result.stdout + result.stderr
    base = out / "nosplit"
    import mudata

    cohort = mudata.read_h5mu(base / "cohort.h5mu")
    assert dict(cohort.uns["deepgami"]["split"]) == {
        "source": "generated",
        "test_fraction": 0.2,
        "seed": 0,
    }
    n_test = int((cohort.obs["split"] == "test").sum())
    assert n_test == round(0.2 * cohort.n_obs)
    for name in ("all", "snp", "expr"):
        predictions = pd.read_csv(base / "predictions" / f"{name}.tsv", sep="\t")
        assert len(predictions) == n_test, "predict used the generated test split"
    assert (base / "prioritize" / "links.tsv").is_file()
    assert (base / "evaluate" / "metrics.tsv").is_file()
    summary = pd.read_csv(out / "summary.tsv", sep="\t")
    assert sorted(summary["prediction_set"]) == ["all", "expr", "snp"]


# -- single-cell rows: a pseudobulk stage, then one cohort per cell type ------------------------------


def single_cell_sheet(tmp_path: Path, donor_key: str = "donor") -> Path:
    """Cohort A's genotype and labels, with cells of two cell types for its samples."""
    import anndata as ad
    import numpy as np

    data = tmp_path / "sc"
    shutil.copytree(ASSETS / "test" / "cohort_a", data)
    samples = pd.read_csv(data / "labels.csv")["sample"].astype(str).tolist()
    rng = np.random.default_rng(0)
    donors = np.repeat(samples, 6)
    obs = pd.DataFrame(
        {"donor": donors, "cell_type": np.tile(["Astro", "Micro glia"], 3 * len(samples))},
        index=[f"c{i}" for i in range(len(donors))],
    )
    ad.AnnData(X=rng.poisson(3, (len(donors), 20)).astype(np.int32), obs=obs).write_h5ad(
        data / "cells.h5ad"
    )
    sheet = data / "samplesheet.csv"
    sheet.write_text(
        "id,labels,modalities,pseudobulk,donor_key,cell_type_key\n"
        f"sc,labels.csv,snp=genotype.csv;expr=cells.h5ad,expr,{donor_key},cell_type\n"
        "sc.x,labels.csv,snp=genotype.csv,,,\n"
    )
    return sheet


def test_a_single_cell_row_plans_pseudobulk_then_one_cohort_per_cell_type(tmp_path: Path) -> None:
    from deepgami.pipeline.runner import expand_rows, plan_pseudobulk

    rows, single_cell = expand_rows(read_samplesheet(single_cell_sheet(tmp_path)), tmp_path / "out")
    assert [r.id for r in rows] == ["sc.Astro", "sc.Micro_glia", "sc.x"] and [
        r.id for r in single_cell
    ] == ["sc"]
    task = plan_pseudobulk(
        single_cell[0],
        tmp_path / "out",
        RunSettings(stage_args={"pseudobulk": ["--min-cells", "2"]}),
    )
    assert task.key == "sc/pseudobulk" and task.outputs == [tmp_path / "out" / "sc" / "pseudobulk"]
    assert task.argv == [
        "pseudobulk",
        str(tmp_path / "sc" / "cells.h5ad"),
        "--donor-key",
        "donor",
        "--cell-type-key",
        "cell_type",
        "--out",
        str(tmp_path / "out" / "sc" / "pseudobulk"),
        "--min-cells",
        "2",
    ]
    build = plan_cohort(rows[1], tmp_path / "out", RunSettings())[0]
    assert f"expr={tmp_path / 'out' / 'sc' / 'pseudobulk' / 'Micro_glia.h5ad'}" in build.argv
    # A fanned-out id that another row already uses is refused before anything runs.
    sheet = tmp_path / "sc" / "samplesheet.csv"
    sheet.write_text(sheet.read_text().replace("sc.x,", "sc.Astro,"))
    with pytest.raises(InputError, match="cohort id 'sc.Astro' is used twice"):
        expand_rows(read_samplesheet(sheet), tmp_path / "out")


def test_single_cell_row_runs_pseudobulk_and_builds_each_cell_type(tmp_path: Path) -> None:
    sheet = single_cell_sheet(tmp_path)
    out = tmp_path / "out"
    code = run_pipeline(
        sheet,
        out,
        RunSettings(
            skip=ONLY_BUILD,
            max_workers=2,
            progress=False,
            stage_args={"pseudobulk": ["--min-cells", "3"]},
        ),
    )
    assert code == 0
    assert sorted(
        p.name for p in (out / "sc" / "pseudobulk").iterdir() if p.name != ".deepgami"
    ) == [
        "Astro.h5ad",
        "Micro_glia.h5ad",
        "pseudobulk.json",
    ]
    assert (out / "sc.Astro" / "cohort.h5mu").is_file() and (
        out / "sc.Micro_glia" / "cohort.h5mu"
    ).is_file()
    assert set(ledger(out)) == {
        "sc/pseudobulk",
        "sc.Astro/build",
        "sc.Micro_glia/build",
        "sc.x/build",
    }


def test_a_failed_pseudobulk_skips_its_cell_types_and_the_other_rows_finish(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = run_pipeline(
        single_cell_sheet(tmp_path, donor_key="individual"),
        out,
        RunSettings(skip=ONLY_BUILD, progress=False),
    )
    assert code == 2
    assert not (out / "sc" / "pseudobulk").exists() and not (out / "sc.Astro").exists()
    assert set(ledger(out)) == {"sc.x/build"}
    assert (
        "donor key 'individual' is not an .obs column"
        in (out / "pipeline_info" / "logs" / "sc" / "pseudobulk.log").read_text()
    )


def test_summary_has_cell_types_and_a_figure_of_auc_per_cell_type(tmp_path: Path) -> None:
    from deepgami.pipeline.runner import SummaryEntry, write_summary

    entries = []
    for cohort, cell_type, auc in (
        ("b.Micro", "Micro", 0.9),
        ("b.Astro", "Astro", 0.5),
        ("bulk", "", 0.7),
    ):
        for name in ("all", "snp"):
            path = tmp_path / f"{cohort}.{name}.metrics.json"
            path.write_text(
                json.dumps({"auc": auc if name == "all" else 0.5, "accuracy": 0.5, "n": 10})
            )
            entries.append(SummaryEntry(cohort, cell_type, name, path))
    write_summary(entries, tmp_path / "summary.tsv", tmp_path / "summary.html")
    table = pd.read_csv(tmp_path / "summary.tsv", sep="\t", keep_default_na=False)
    assert table.columns[:3].tolist() == ["cohort", "cell_type", "prediction_set"]
    assert table.loc[table["prediction_set"] == "all"].set_index("cohort")[
        "cell_type"
    ].to_dict() == {"b.Astro": "Astro", "b.Micro": "Micro", "bulk": ""}
    html = (tmp_path / "summary.html").read_text()
    assert "AUC per cell type" in html and "data:image/png;base64," in html
    # Without cell types there is nothing to compare: no figure.
    write_summary(entries[-2:], tmp_path / "bulk.tsv", tmp_path / "bulk.html")
    assert "AUC per cell type" not in (tmp_path / "bulk.html").read_text()
