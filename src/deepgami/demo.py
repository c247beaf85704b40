"""`make demo`: the pipeline on a simulated cohort and on ROSMAP, in a few minutes.

    python -m deepgami.demo --out demo_out

The demo makes its inputs (a simulated cohort from `deepgami simulate`; ROSMAP from
`deepgami.datasets.rosmap_dir()` with a stratified 80/20 split added to its labels), writes a
samplesheet for them (``<out>/samplesheet.csv``) and runs the same stage graph as `deepgami run`
(`deepgami.pipeline.runner.run_pipeline`), the two cohorts side by side::

    build -> train -> predict (all, then each modality alone, on the test split) -> prioritize
    (test split) -> evaluate (with the model and prioritization in its report), then summary.tsv

with the reduced settings of the `demo` profile (`deepgami.pipeline.profiles`: a 300-sample simulated
cohort, a 4-point training grid with 3-fold CV, `deepgami evaluate --fast`), which each
report states. Outputs follow `deepgami run`'s layout: ``<out>/<cohort>/...``, logs in
``<out>/pipeline_info/logs/``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from deepgami.pipeline import profiles

ROSMAP_NOTE = (
    "For the ROSMAP cohort: ROSMAP's labels (shipped all 'train') were given a stratified 80/20 "
    "train/test split (seed 0) "
    "that train, predict, prioritize and the held-out protocol share."
)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _rosmap_labels(source: Path, out: Path, seed: int = 0) -> Path:
    """ROSMAP's labels with a stratified 80/20 train/test split (the shipped file has train only)."""
    import numpy as np
    import pandas as pd
    from sklearn.model_selection import StratifiedShuffleSplit

    labels = pd.read_csv(source)
    _, test = next(
        StratifiedShuffleSplit(1, test_size=0.2, random_state=seed).split(
            np.zeros(len(labels)), labels["label"]
        )
    )
    labels["split"] = "train"
    labels.loc[labels.index[test], "split"] = "test"
    out.parent.mkdir(parents=True, exist_ok=True)
    labels.to_csv(out, index=False)
    return out


def find_rosmap(explicit: str | None) -> Path:
    """Find the ROSMAP folder: ``--rosmap``, else the copy bundled with the package.

    The bundled copy is the ROSMAP training split of `deepgami.datasets`.

    Parameters
    ----------
    explicit : str or None
        The ``--rosmap`` folder, if given.

    Returns
    -------
    pathlib.Path
        The folder holding ``labels.csv``, ``mrna.csv`` and ``meth.csv``.

    Raises
    ------
    SystemExit
        If `explicit` lacks one of those files.
    """
    if explicit:
        path = Path(explicit)
        for name in ("labels.csv", "mrna.csv", "meth.csv"):
            if not (path / name).is_file():
                raise SystemExit(
                    f"error: {path}: no {name} (--rosmap needs labels.csv, mrna.csv and meth.csv)"
                )
        return path.resolve()
    from deepgami.datasets import rosmap_dir

    return rosmap_dir()


def write_inputs(out: Path, cohorts: Sequence[str], rosmap: str | None = None) -> Path:
    """Make the demo's inputs under ``<out>/inputs`` and the samplesheet naming them.

    Parameters
    ----------
    out : pathlib.Path
        The demo's output directory.
    cohorts : sequence of str
        Which cohorts to make: ``"simulated"`` and/or ``"rosmap"``.
    rosmap : str or None, optional
        ROSMAP folder (default: the copy bundled with the package).

    Returns
    -------
    pathlib.Path
        The samplesheet, ``<out>/samplesheet.csv``.

    Raises
    ------
    SystemExit
        If ``deepgami simulate`` fails or the ROSMAP folder lacks a file.
    """
    from deepgami.cli import main as cli_main

    inputs = out / "inputs"
    params = inputs / "params.yaml"
    params.parent.mkdir(parents=True, exist_ok=True)
    params.write_text(profiles.DEMO_PARAMS)
    rows = []
    if "simulated" in cohorts:
        sim = inputs / "simulated"
        code = cli_main(["simulate", "--out", str(sim), "--overwrite", *profiles.DEMO_SIMULATION])
        if code != 0:
            raise SystemExit(f"error: deepgami simulate failed (exit {code})")
        rows.append(
            {
                "id": "simulated",
                "labels": sim / "labels.csv",
                "modalities": f"snp={sim / 'genotype.csv'};expr={sim / 'expression.csv'}",
                "priors": f"snp:eqtl={sim / 'eqtl.tsv'};expr:grn={sim / 'grn.tsv'}",
                "params": params,
            }
        )
    if "rosmap" in cohorts:
        source = find_rosmap(rosmap)
        labels = _rosmap_labels(source / "labels.csv", inputs / "rosmap" / "labels.csv")
        rows.append(
            {
                "id": "rosmap",
                "labels": labels,
                "modalities": f"mrna={source / 'mrna.csv'};meth={source / 'meth.csv'}",
                "priors": "",
                "params": params,
            }
        )
    sheet = out / "samplesheet.csv"
    with open(sheet, "w", newline="") as handle:
        writer = csv.DictWriter(
            handle,
            fieldnames=["id", "labels", "modalities", "priors", "params"],
            lineterminator="\n",
        )
        writer.writeheader()
        writer.writerows({k: str(v) for k, v in row.items()} for row in rows)
    return sheet


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo from the command line (``python -m deepgami.demo``).

    Parameters
    ----------
    argv : sequence of str or None, optional
        Command-line arguments (default: ``sys.argv[1:]``): ``--out``, ``--rosmap``,
        ``--cohorts`` and ``--jobs``.

    Returns
    -------
    int
        The pipeline's exit code.

    Raises
    ------
    SystemExit
        On an unknown cohort in ``--cohorts`` or failing inputs.
    """
    parser = argparse.ArgumentParser(
        prog="python -m deepgami.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", default="demo_out", help="output directory (default: demo_out)")
    parser.add_argument(
        "--rosmap", help="ROSMAP folder (default: the copy bundled with the package)"
    )
    parser.add_argument(
        "--cohorts", default="simulated,rosmap", help="which cohorts (default: simulated,rosmap)"
    )
    parser.add_argument(
        "--jobs", type=int, default=2, help="cohorts run at the same time (default: 2)"
    )
    args = parser.parse_args(argv)

    from deepgami.pipeline.runner import RunSettings, run_pipeline

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    wanted = [c.strip() for c in args.cohorts.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in ("simulated", "rosmap")]
    if unknown or not wanted:
        raise SystemExit(
            f"error: --cohorts: unknown cohort '{unknown[0] if unknown else ''}' (simulated, rosmap)"
        )
    t0 = time.perf_counter()
    _say(f"deepgami demo: {', '.join(wanted)} -> {out}")
    sheet = write_inputs(out, wanted, args.rosmap)
    stage_args = profiles.stage_args("demo")
    if "rosmap" in wanted:
        stage_args["evaluate"] += ["--note", ROSMAP_NOTE]
    code = run_pipeline(
        sheet,
        out,
        RunSettings(max_workers=max(1, min(args.jobs, len(wanted))), stage_args=stage_args),
    )
    _say(f"deepgami demo finished in {time.perf_counter() - t0:.0f}s")
    for name in wanted:
        report = out / name / "evaluate" / "report.html"
        if report.is_file():
            print(report)
    return code


if __name__ == "__main__":
    sys.exit(main())
