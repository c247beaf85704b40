"""Wall time of `deepgami evaluate` on a simulated 1,200-sample cohort, and what each part costs.

    python benchmarks/evaluate_speed.py --work /tmp/evaluate_speed [--jobs 2] [--parts]

Simulates `deepgami simulate --n-samples 1200 --seed 0` (genotype + expression, eQTL and GRN priors),
builds it, then times `deepgami evaluate` with the defaults and with `--fast` (each as its own
process, as a user runs it). `--parts` also times one held-out split per method (full and fast
grids), DeepGAMI without bagging and the grid search alone, from which the README's cost table is
computed. Prints one JSON object. Times depend on the machine's load; run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def _deepgami(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "deepgami", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def cohort(work: Path) -> Path:
    """The 1,200-sample simulated cohort (made once)."""
    h5mu = work / "cohort.h5mu"
    if not h5mu.exists():
        sim = work / "sim"
        _deepgami(
            "simulate", "--out", str(sim), "--n-samples", "1200", "--seed", "0", "--overwrite"
        )
        _deepgami(
            "build",
            "--modality",
            f"snp={sim / 'genotype.csv'}",
            "--modality",
            f"expr={sim / 'expression.csv'}",
            "--labels",
            str(sim / "labels.csv"),
            "--prior",
            f"snp:eqtl={sim / 'eqtl.tsv'}",
            "--prior",
            f"expr:grn={sim / 'grn.tsv'}",
            "--out",
            str(h5mu),
            "--quiet",
        )
    return h5mu


def parts(h5mu: Path) -> dict:
    """Seconds of one held-out split per method (full and fast grids), unbagged DeepGAMI, the grid search."""
    import torch

    from deepgami.data.arrays import read_arrays
    from deepgami.data.cohort import read_cohort
    from deepgami.evaluation import EvalConfig, evaluate
    from deepgami.evaluation.fits import tune_deepgami
    from deepgami.evaluation.splits import eligible_rows, make_splits
    from deepgami.train import load_params

    torch.set_num_threads(1)
    mdata = read_cohort(h5mu)
    params = load_params(None)
    out = {}
    for fast in (False, True):
        res = evaluate(mdata, params, EvalConfig(protocols=("holdout",), tune="none", fast=fast))
        out["holdout_split_fast" if fast else "holdout_split"] = {
            k: round(v, 1) for k, v in res.seconds.items()
        }
    unbagged = params.with_overrides({"bagging": 0})
    res = evaluate(
        mdata, unbagged, EvalConfig(protocols=("holdout",), tune="none", methods=("deepgami",))
    )
    out["deepgami_without_bagging"] = round(res.seconds["deepgami"], 1)
    data = read_arrays(mdata)
    (split,), _ = make_splits(data, "holdout", EvalConfig(), eligible_rows(data))
    t0 = time.perf_counter()
    tune_deepgami(data, split.train, params, 7)
    out["grid_search"] = round(time.perf_counter() - t0, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", default="/tmp/evaluate_speed")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--parts", action="store_true", help="also time each part (adds about 5 minutes)"
    )
    parser.add_argument("--skip-full", action="store_true", help="time --fast only")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    h5mu = cohort(work)
    result: dict = {
        "cohort": "deepgami simulate --n-samples 1200 --seed 0",
        "jobs": args.jobs,
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg()[0],
    }
    runs = [("fast", ["--fast"])] + ([] if args.skip_full else [("defaults", [])])
    for name, extra in runs:
        result[f"evaluate_{name}_s"] = round(
            _deepgami(
                "evaluate",
                str(h5mu),
                "--out",
                str(work / f"eval_{name}"),
                "--jobs",
                str(args.jobs),
                "--quiet",
                *extra,
            ),
            1,
        )
        run = json.loads((work / f"eval_{name}" / "run.json").read_text())
        result[f"evaluate_{name}_verdict"] = run.get("verdict")
    if args.parts:
        result["parts_s"] = parts(h5mu)
    result["load_after"] = os.getloadavg()[0]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
