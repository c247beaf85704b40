"""Time and peak memory of `deepgami build` on a large genotype dosage CSV.

    .venv/bin/python benchmarks/build_large.py --samples 2000 --snps 100000 --out benchmarks/out/build

Writes the dosage CSV (0/1/2, samples as rows) and a label table, runs `deepgami build` in a child
process, and reports wall seconds and the child's peak RSS (ru_maxrss). Target (issue #2):
2,000 x 100,000 in under 2 minutes and under 4 GiB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def write_dosage_csv(path: Path, n_samples: int, n_snps: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    header = "sample," + ",".join(f"rs{j}" for j in range(n_snps)) + "\n"
    with open(path, "wb") as handle:
        handle.write(header.encode())
        for i in range(n_samples):
            digits = rng.integers(0, 3, n_snps, dtype=np.uint8) + ord("0")
            row = np.full(2 * n_snps, ord(","), dtype=np.uint8)
            row[1::2] = digits  # ",d,d,...,d" after the sample id
            handle.write(f"S{i:06d}".encode() + row.tobytes() + b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--snps", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/build"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    geno = args.out / f"dosage_{args.samples}x{args.snps}.csv"
    labels = args.out / "labels.csv"
    if not geno.exists():
        write_dosage_csv(geno, args.samples, args.snps)
    labels.write_text(
        "sample,label\n"
        + "".join(f"S{i:06d},{'case' if i % 2 else 'control'}\n" for i in range(args.samples))
    )
    cohort = args.out / "cohort.h5mu"
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "deepgami",
            "build",
            "--modality",
            f"snp={geno}",
            "--labels",
            str(labels),
            "--out",
            str(cohort),
        ],
        check=True,
    )
    seconds = time.perf_counter() - start
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    result = {
        "samples": args.samples,
        "snps": args.snps,
        "csv_mb": round(geno.stat().st_size / 1e6, 1),
        "seconds": round(seconds, 1),
        "peak_rss_gib": round(peak_gib, 2),
        "h5mu_mb": round(cohort.stat().st_size / 1e6, 1),
    }
    print(json.dumps(result))
    (args.out / "build_large.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
