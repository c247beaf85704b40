#!/usr/bin/env python3
"""Every pipeline stage in the image, the way Nextflow's docker profile runs a task.

Called by containers/test_image.sh (`make container-test`) after the image is built. For the
bundled test samplesheet and the single-cell test samplesheet it walks the workflow's wiring
(workflows/deepgami.nf) by hand: SAMPLESHEET_CHECK, PSEUDOBULK (single-cell rows) and the
cohorts its cohorts.tsv lists, BUILD_COHORT, TRAIN, PREDICT per prediction set, PRIORITIZE,
EVALUATE, and one SUMMARY. Each task is its module's `script:` rendered as in tests/nextflow_tasks.py,
in its own task folder with symlinked inputs, run in the image with

    docker run --rm -u 4321:4321 --network none --read-only --tmpfs /tmp \
        -v <work>:<work> -v <assets>:<assets>:ro -w <task dir> IMAGE bash -c '<env scope>; bash .command.sh'

(nextflow.config's `env` scope exported first, as Nextflow does). The chain that predictions depend
on (BUILD_COHORT, TRAIN, PREDICT) runs on the host too, and the predictions must be equal. PSEUDOBULK
runs once more without the `env` scope: the image's own settings must suffice for any uid. Prints
each stage's wall time; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from nextflow_tasks import TASK_SHELL, host_executor, load_module, run_task  # noqa: E402

SHEETS = [
    REPO / "assets" / "samplesheet_test.csv",
    REPO / "assets" / "test/single_cell/samplesheet.csv",
    # Several targets and a survival target (label,score + time,event): every stage, EVALUATE per target.
    REPO / "assets" / "test/samplesheet_targets.csv",
]
# The ext.args of conf/modules.config with the test profile (conf/test.config), seed 0.
EXT = {
    "BUILD_COHORT": {"args": "--quiet"},
    "TRAIN": {"args": "--seed 0", "use_gpu": False},
    "PREDICT": {"args": "--split test"},
    "PRIORITIZE": {"args": "--split test", "use_gpu": False},
    "EVALUATE": {
        "args": "--seed 0 --fast --protocols holdout --methods deepgami,logistic_regression",
        "use_gpu": False,
    },
}
TIMES: dict[str, list[float]] = defaultdict(list)


def env_scope() -> dict[str, str]:
    """The assignments of nextflow.config's `env { }` block (values as Nextflow exports them)."""
    text = (REPO / "nextflow.config").read_text()
    block = re.search(r"^env \{(.*?)^\}", text, re.S | re.M).group(1)
    pairs = re.findall(r"^\s*(\w+)\s*=\s*(.+?)\s*$", block, re.M)
    return {name: value.strip("'\"") for name, value in pairs}


def docker_executor(image: str, uid: int, work: Path):
    """An executor for nextflow_tasks.run_task: `.command.sh` in `image` as Nextflow runs it."""

    def execute(workdir: Path, exports: dict[str, str]) -> subprocess.CompletedProcess:
        for path in [work, *work.rglob("*")]:
            if not path.is_symlink():
                os.chown(path, uid, uid)
        prelude = "".join(f'export {k}="{v}"; ' for k, v in exports.items())
        assets = REPO / "assets"
        return subprocess.run(
            ["docker", "run", "--rm", "-u", f"{uid}:{uid}", "--network", "none", "--read-only",
             "--tmpfs", "/tmp:rw,exec,mode=1777", "-v", f"{work}:{work}",
             "-v", f"{assets}:{assets}:ro", "-w", str(workdir), image,
             "/bin/bash", "-c", prelude + " ".join(TASK_SHELL) + " .command.sh"],
            capture_output=True, text=True, timeout=1800,
        )  # fmt: skip

    return execute


class Runner:
    """Runs tasks in task folders under `root`, with one executor, and records wall times."""

    def __init__(self, root: Path, executor, exports: dict[str, str], label: str) -> None:
        self.root, self.executor, self.exports, self.label = root, executor, exports, label
        self.count = 0

    def task(self, directory: str, inputs: dict, tag: str) -> Path:
        module = load_module(directory)
        self.count += 1
        workdir = self.root / f"{self.count:02d}_{module.name}_{tag}"
        workdir.mkdir(parents=True)
        start = time.perf_counter()
        run_task(module, "script", workdir, inputs, EXT.get(module.name, {}),
                 executor=self.executor, exports=self.exports)  # fmt: skip
        seconds = time.perf_counter() - start
        TIMES[f"{self.label} {module.name}"].append(seconds)
        print(f"  {self.label:9s} {module.name:17s} {tag:28s} {seconds:6.1f} s", flush=True)
        return workdir


def sheet_rows(run: Runner, sheet: Path) -> list[tuple[dict, Path, list, list, object]]:
    """SAMPLESHEET_CHECK, then its table wired as PIPELINE_INITIALISATION does."""
    meta = {"id": "samplesheet"}
    task = run.task(
        "samplesheet_check",
        {"meta": meta, "samplesheet": sheet, "schema": REPO / "assets/schema_input.json"},
        sheet.stem,
    )
    rows = []
    with open(task / "samplesheet.valid.tsv", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            resolve = lambda v: Path(os.path.normpath(sheet.parent / v))  # noqa: E731
            rows.append((
                dict(row),
                resolve(row["labels"]),
                [resolve(v) for v in row["modality_files"].split(";") if v],
                [resolve(v) for v in row["prior_files"].split(";") if v],
                resolve(row["params"]) if row["params"] else [],
            ))  # fmt: skip
    return rows


def fan_out(run: Runner, rows: list) -> list:
    """PSEUDOBULK for single-cell rows and the cohorts its cohorts.tsv lists (the workflow's wiring)."""
    out = []
    for meta, labels, mods, priors, params_yaml in rows:
        if not meta["pseudobulk"]:
            out.append((meta, labels, mods, priors, params_yaml))
            continue
        at = int(meta["pseudobulk_index"])
        task = run.task("pseudobulk", {"meta": meta, "cells": mods[at]}, meta["id"])
        with open(task / "cohorts.tsv", newline="") as handle:
            for cohort in csv.DictReader(handle, delimiter="\t"):
                files = list(mods)
                files[at] = task / "pseudobulk" / cohort["file"]
                sub = {**meta, "id": cohort["id"], "cell_type": cohort["cell_type"]}
                out.append((sub, labels, files, priors, params_yaml))
    return out


def cohort_chain(run: Runner, row: tuple, full: bool) -> tuple[Path, dict[str, Path]]:
    """BUILD_COHORT, TRAIN, PREDICT per set (and PRIORITIZE, EVALUATE when `full`)."""
    meta, labels, mods, priors, params_yaml = row
    tag = meta["id"]
    build = run.task("build_cohort", {"meta": meta, "labels": labels, "modality_files": mods,
                                      "prior_files": priors}, tag)  # fmt: skip
    cohort = build / "cohort.h5mu"
    train = run.task("train", {"meta": meta, "cohort": cohort, "params_yaml": params_yaml}, tag)
    predictions = {}
    for name in meta["prediction_sets"].split(","):
        task = run.task("predict", {"meta": meta, "model": train / "model", "cohort": cohort,
                                    "prediction_set": name}, f"{tag} {name}")  # fmt: skip
        predictions[name] = task / "predictions"
    if full:
        prio = run.task(
            "prioritize", {"meta": meta, "model": train / "model", "cohort": cohort}, tag
        )
        run.task("evaluate", {"meta": meta, "cohort": cohort, "params_yaml": params_yaml,
                              "model": train / "model", "prioritize": prio / "prioritize"}, tag)  # fmt: skip
    return build, predictions


def compare(container: dict, host: dict) -> float:
    """Largest absolute difference between the container's and the host's prediction tables."""
    import numpy as np
    import pandas as pd

    worst = 0.0
    for key, folder in sorted(container.items()):
        cohort, name = key
        a = pd.read_csv(folder / f"{name}.tsv", sep="\t")
        b = pd.read_csv(host[key] / f"{name}.tsv", sep="\t")
        assert list(a.columns) == list(b.columns) and a.shape == b.shape, key
        numeric = a.select_dtypes("number").columns
        assert a.drop(columns=numeric).equals(b.drop(columns=numeric)), f"{key}: labels differ"
        diff = float(np.abs(a[numeric].to_numpy() - b[numeric].to_numpy()).max(initial=0.0))
        worst = max(worst, diff)
        print(
            f"  predictions {cohort:24s} {name:5s} {a.shape[0]:3d} samples: max |diff| = {diff:g}"
        )
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True)
    parser.add_argument("--work", required=True, type=Path)
    parser.add_argument("--uid", type=int, default=4321, help="not 1000 (default 4321)")
    args = parser.parse_args()
    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    (work / "container").mkdir(parents=True)
    docker = docker_executor(args.image, args.uid, work / "container")
    box = Runner(work / "container", docker, env_scope(), "container")
    host = Runner(work / "host", host_executor, {}, "host")

    print(
        f"tasks as uid {args.uid}, --network none, --read-only, tmpfs /tmp; env scope {env_scope()}"
    )
    container_preds, host_preds, cohorts = {}, {}, []
    for sheet in SHEETS:
        rows = fan_out(box, sheet_rows(box, sheet))
        cohorts += rows
        for row in rows:
            _, preds = cohort_chain(box, row, full=True)
            container_preds.update({(row[0]["id"], k): v for k, v in preds.items()})
    metrics = [(r[0]["id"], r[0]["cell_type"], container_preds[(r[0]["id"], s)] / f"{s}.metrics.json")
               for r in cohorts for s in r[0]["prediction_sets"].split(",")]  # fmt: skip
    summary_meta = {"id": "summary", "cohorts": ",".join(m[0] for m in metrics),
                    "cell_types": ",".join(m[1] for m in metrics)}  # fmt: skip
    box.task("summary", {"meta": summary_meta, "metrics_files": [m[2] for m in metrics]}, "all")

    # PSEUDOBULK once more without the env scope: the image's HOME/NUMBA_CACHE_DIR/MPLCONFIGDIR
    bare = Runner(work / "container" / "no-env-scope", docker, {}, "image-env")
    fan_out(bare, sheet_rows(bare, SHEETS[1]))

    for sheet in SHEETS:
        for row in fan_out(host, sheet_rows(host, sheet)):
            _, preds = cohort_chain(host, row, full=False)
            host_preds.update({(row[0]["id"], k): v for k, v in preds.items()})

    print("\nwall time per stage (s): tasks, total, mean")
    for key, values in TIMES.items():
        print(f"  {key:30s} {len(values):3d} {sum(values):8.1f} {sum(values) / len(values):7.1f}")
    print("\npredictions, container vs host (same seed):")
    worst = compare(container_preds, host_preds)
    if worst > 1e-9:
        print(f"FAIL: predictions differ (max |diff| {worst:g})")
        return 1
    print(f"predictions equal: max |diff| {worst:g} over {len(container_preds)} tables")
    return 0


if __name__ == "__main__":
    sys.exit(main())
