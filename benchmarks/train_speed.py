"""Training time and peak memory of `deepgami train` (run by hand; never part of the tests).

    .venv/bin/python benchmarks/train_speed.py --out benchmarks/out/train_speed [--repeats 1]

Cohorts: the default-size binary `deepgami simulate` cohort (600 samples, 1,000 SNPs, 40 TFs, 200
genes, priors eqtl + grn; 480 training samples) and ROSMAP (245 samples, mrna + meth, 200 + 200
features, no priors), both built with `deepgami build` (see accuracy.py). Each run is the real
command, `deepgami train COHORT --out DIR --quiet` with the packaged defaults, in its own child
process; per run: wall seconds, CPU seconds (user + system) and the child's peak RSS (ru_maxrss,
from os.wait4, so it is that process alone). CPU seconds are the more robust figure on a shared
machine. Writes train_speed.tsv and prints it.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accuracy import ROOT, rosmap_cohort, simulated_cohort  # noqa: E402

FIELDS = ["cohort", "samples", "extra", "repeat", "wall_s", "cpu_s", "peak_rss_mib", "exit_code"]


def run_train(cohort: Path, model_dir: Path, extra: list[str]) -> dict:
    return run_deepgami("train", str(cohort), "--out", str(model_dir), "--quiet", *extra)


def run_deepgami(*args: str) -> dict:
    """Wall and CPU seconds, peak RSS (of that process alone) and exit code of one deepgami command."""
    cmd = [sys.executable, "-m", "deepgami", *args]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        print(err, file=sys.stderr)
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "exit_code": code,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "train_speed"))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--extra", default="", help="extra arguments for deepgami train, e.g. '--cv-folds 3'"
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    work = out / "cohorts"
    work.mkdir(parents=True, exist_ok=True)
    cohorts = {
        "simulated (default size)": (simulated_cohort(work, "sim_binary")[0], 600),
        "rosmap": (rosmap_cohort(work), 245),
    }
    extra = args.extra.split()
    rows = []
    for name, (path, n) in cohorts.items():
        for r in range(args.repeats):
            row = {
                "cohort": name,
                "samples": n,
                "extra": " ".join(extra),
                "repeat": r,
                **run_train(path, out / "models" / f"{path.stem}_{r}", extra),
            }
            rows.append(row)
            print("\t".join(str(row[f]) for f in FIELDS), flush=True)
    with open(out / "train_speed.tsv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
