"""`make demo`: the whole pipeline on a simulated cohort and on ROSMAP, in a few minutes.

    python -m deepgami.demo --out demo_out

Per cohort, each stage is the `deepgami` command a user would type, run through the same CLI
entry point in one worker process per cohort (so torch and scikit-learn are imported once per
cohort, not once per stage); its output goes to ``<out>/<cohort>/logs/<stage>.log``::

    simulate (simulated only) -> build -> train -> predict (all, then each modality alone, on the
    test split) -> prioritize (test split) -> evaluate (with the model and prioritization in its report)

The two cohorts run side by side (``--jobs``). Settings are reduced so the demo fits in 10 minutes
on two cores, and say so in the reports: a smaller simulated cohort, a 2-point training grid with
3-fold CV, and `deepgami evaluate --fast` with fewer folds and repeated splits than the defaults.
ROSMAP ships without a test split, so the demo writes a copy of its labels with a stratified 80/20
split (seed 0) that train, predict, prioritize and the held-out protocol share.
"""

from __future__ import annotations

import argparse
import os
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

# Training settings of the demo: 2 grid points by 3-fold CV (the defaults: 4 points by 5-fold CV).
DEMO_PARAMS = """\
# make demo: reduced training grid (2 settings searched by 3-fold CV) to keep the demo short.
grid:
  weight_decay: [0.0001]
  lambda: [0.1, 1.0]
cv_folds: 3
"""

SIMULATION = ["--n-samples", "300", "--n-snps", "300", "--n-tfs", "20", "--n-genes", "50", "--seed", "0"]


@dataclass
class DemoCohort:
    """One cohort of the demo and the stages it runs."""

    name: str
    base: Path
    modalities: dict[str, Path] = field(default_factory=dict)
    priors: list[str] = field(default_factory=list)
    labels: Path | None = None
    evaluate_args: list[str] = field(default_factory=list)
    simulate: bool = False
    note: str = ""
    failed: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def report(self) -> Path:
        return self.base / "evaluate" / "report.html"


def _say(text: str) -> None:
    # The real stderr: stage output is redirected into the stage's log meanwhile.
    print(text, file=sys.__stderr__, flush=True)


def _stage(cohort: DemoCohort, label: str, argv: Sequence[str]) -> bool:
    """Run `deepgami <argv>` in this process; log to <base>/logs/<label>.log. False (and a note) on failure."""
    import contextlib
    import traceback

    from deepgami.cli import main as cli_main

    logs = cohort.base / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{label}.log"
    t0 = time.perf_counter()
    with open(log, "w") as handle, contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
        handle.write("$ deepgami " + " ".join(map(str, argv)) + "\n")
        handle.flush()
        try:
            code = cli_main([str(a) for a in argv])
        except SystemExit as exit_:  # argparse errors
            code = exit_.code if isinstance(exit_.code, int) else 1
        except Exception:  # a bug in a stage: keep its traceback in the log, go on with the others
            traceback.print_exc(file=handle)
            code = 1
    seconds = time.perf_counter() - t0
    cohort.seconds[label] = seconds
    if code != 0:
        tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-1:]
        cohort.failed.append(f"{label} failed (exit {code}): {tail[0] if tail else ''} (log: {log})")
        _say(f"[{cohort.name}] {cohort.failed[-1]}")
        return False
    _say(f"[{cohort.name}] {label}: done ({seconds:.0f}s)")
    return True


def _rosmap_labels(source: Path, out: Path, seed: int = 0) -> Path:
    """ROSMAP's labels with a stratified 80/20 train/test split (the shipped file has train only)."""
    import numpy as np
    import pandas as pd
    from sklearn.model_selection import StratifiedShuffleSplit

    labels = pd.read_csv(source)
    _, test = next(StratifiedShuffleSplit(1, test_size=0.2, random_state=seed).split(np.zeros(len(labels)),
                                                                                      labels["label"]))
    labels["split"] = "train"
    labels.loc[labels.index[test], "split"] = "test"
    out.parent.mkdir(parents=True, exist_ok=True)
    labels.to_csv(out, index=False)
    return out


def run_cohort(cohort: DemoCohort, params: Path) -> None:
    """Every stage of one cohort. A failed stage skips what depends on it (evaluate needs only the
    cohort)."""
    base = cohort.base
    if cohort.simulate:
        inputs = base / "inputs"
        if not _stage(cohort, "simulate", ["simulate", "--out", inputs, "--overwrite", *SIMULATION]):
            return
        cohort.modalities = {"snp": inputs / "genotype.csv", "expr": inputs / "expression.csv"}
        cohort.priors = [f"snp:eqtl={inputs / 'eqtl.tsv'}", f"expr:grn={inputs / 'grn.tsv'}"]
        cohort.labels = inputs / "labels.csv"
    h5mu, model = base / "cohort.h5mu", base / "model"
    build = ["build", *[a for m, p in cohort.modalities.items() for a in ("--modality", f"{m}={p}")],
             *[a for p in cohort.priors for a in ("--prior", p)], "--labels", cohort.labels, "--out", h5mu]
    if not _stage(cohort, "build", build):
        return
    have_model = _stage(cohort, "train", ["train", h5mu, "--out", model, "--params", params, "--quiet"])
    if have_model:
        for name in ["all", *cohort.modalities]:
            only = [] if name == "all" else ["--modalities", name]
            _stage(cohort, f"predict.{name}", ["predict", model, h5mu, "--out", base / "predictions" / f"{name}.tsv",
                                               "--split", "test", *only])
    prioritized = False
    if have_model:
        prioritized = _stage(cohort, "prioritize", ["prioritize", model, h5mu, "--out", base / "prioritize",
                                                    "--split", "test"])
    extra = (["--model-dir", model] if have_model else []) + (["--prioritize-dir", base / "prioritize"] if prioritized else [])
    note = ("make demo ran this evaluation with reduced settings to finish in minutes: evaluate "
            + " ".join(cohort.evaluate_args) + "; the model beside it was trained with a 2-point grid "
            "(lambda 0.1 / 1.0) searched by 3-fold CV" + (f"; simulated cohort: simulate {' '.join(SIMULATION)}"
                                                           if cohort.simulate else "")
            + ". For paper-like settings run `deepgami evaluate COHORT --out DIR --repeats 100`." + cohort.note)
    _stage(cohort, "evaluate", ["evaluate", h5mu, "--out", base / "evaluate", "--params", params, "--quiet",
                                "--note", note, *cohort.evaluate_args, *extra])


def _worker_env(env: dict[str, str]) -> None:
    """Pool initializer: thread limits before torch or numpy load; library deprecation noise off."""
    import warnings

    os.environ.update(env)
    warnings.simplefilter("ignore", FutureWarning)


def _run_cohort_job(job: tuple[DemoCohort, Path]) -> DemoCohort:
    cohort, params = job
    run_cohort(cohort, params)
    return cohort


def find_rosmap(explicit: str | None) -> Path:
    """--rosmap, else the ROSMAP training split bundled with the package (`deepgami.datasets`)."""
    if explicit:
        path = Path(explicit)
        for name in ("labels.csv", "mrna.csv", "meth.csv"):
            if not (path / name).is_file():
                raise SystemExit(f"error: {path}: no {name} (--rosmap needs labels.csv, mrna.csv and meth.csv)")
        return path.resolve()
    from deepgami.datasets import rosmap_dir

    return rosmap_dir()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deepgami.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo_out", help="output directory (default: demo_out)")
    parser.add_argument("--rosmap", help="ROSMAP folder (default: the copy bundled with the package)")
    parser.add_argument("--cohorts", default="simulated,rosmap", help="which cohorts (default: simulated,rosmap)")
    parser.add_argument("--jobs", type=int, default=2, help="cohorts run at the same time (default: 2)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="repeated random splits in evaluate (default: 10 for ROSMAP, 5 simulated)")
    args = parser.parse_args(argv)

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    params = out / "params.yaml"
    params.write_text(DEMO_PARAMS)
    wanted = [c.strip() for c in args.cohorts.split(",") if c.strip()]
    cohorts: list[DemoCohort] = []
    if "simulated" in wanted:
        cohorts.append(DemoCohort("simulated", out / "simulated", simulate=True, evaluate_args=[
            "--fast", "--folds", "3", "--repeats", str(args.repeats or 5)]))
    if "rosmap" in wanted:
        rosmap = find_rosmap(args.rosmap)
        base = out / "rosmap"
        cohorts.append(DemoCohort(
            "rosmap", base, modalities={"mrna": rosmap / "mrna.csv", "meth": rosmap / "meth.csv"},
            labels=_rosmap_labels(rosmap / "labels.csv", base / "inputs" / "labels.csv"),
            evaluate_args=["--fast", "--folds", "5", "--repeats", str(args.repeats or 10)],
            note=" The demo gave ROSMAP's labels (shipped all 'train') a stratified 80/20 train/test split "
                 "(seed 0): the held-out protocol, train, predict and prioritize use it."))
    jobs = max(1, min(args.jobs, len(cohorts) or 1))
    # Split the cores between concurrent cohorts instead of letting each stage take them all.
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    env = {**os.environ, **{v: os.environ.get(v, threads) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                                     "OPENBLAS_NUM_THREADS")}}
    t0 = time.perf_counter()
    _say(f"deepgami demo: {', '.join(c.name for c in cohorts)} -> {out}")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_worker_env, initargs=(env,)) as pool:
        cohorts = list(pool.map(_run_cohort_job, [(c, params) for c in cohorts]))
    _say(f"deepgami demo finished in {time.perf_counter() - t0:.0f}s")
    failed = [c for c in cohorts if c.failed]
    for c in cohorts:
        if c.report.is_file():
            print(c.report)
    for c in failed:
        for text in c.failed:
            _say(f"error: {c.name}: {text}")
    return 1 if failed or not cohorts else 0


if __name__ == "__main__":
    sys.exit(main())
