#!/usr/bin/env python3
"""SUMMARY helper: one table over every cohort x prediction set, from PREDICT's metrics files.

Each metrics file is a `<prediction_set>.metrics.json` written by `deepgami predict`; --cohorts
(and --cell-types) name the cohort of each file, in the same order.

    deepgami_summary.py --cohorts a,a,b --cell-types=x,x, \\
        --metrics metrics1/all.metrics.json metrics2/snp.metrics.json metrics3/all.metrics.json \\
        --out summary.tsv [--html summary.html]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deepgami.errors import InputError
from deepgami.pipeline.runner import SummaryEntry, write_summary

SUFFIX = ".metrics.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="deepgami_summary.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--cohorts", required=True, help="comma-separated cohort id per metrics file"
    )
    parser.add_argument(
        "--cell-types", default="", help="comma-separated cell type per metrics file (may be empty)"
    )
    parser.add_argument("--metrics", required=True, nargs="+", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--html", type=Path)
    args = parser.parse_args(argv)
    cohorts = args.cohorts.split(",")
    cell_types = args.cell_types.split(",") if args.cell_types else [""] * len(cohorts)
    if not len(cohorts) == len(cell_types) == len(args.metrics):
        parser.error(
            f"{len(cohorts)} cohorts, {len(cell_types)} cell types and {len(args.metrics)} metrics files"
        )
    entries = []
    try:
        for cohort, cell_type, path in zip(cohorts, cell_types, args.metrics, strict=False):
            if not path.name.endswith(SUFFIX):
                raise InputError(path, f"expected a <prediction_set>{SUFFIX} file")
            entries.append(SummaryEntry(cohort, cell_type, path.name[: -len(SUFFIX)], path))
        write_summary(entries, args.out, args.html)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
