#!/usr/bin/env python3
"""PSEUDOBULK: `deepgami pseudobulk` (cell-level .h5ad -> one pseudobulk .h5ad per cell type).

A thin entry for the Nextflow process: every argument goes to the `deepgami pseudobulk` command, which
parses and checks it (`deepgami pseudobulk --help`); bad input exits 2 with a one-line error.
With `--cohorts FILE --row-id ID` it then writes FILE, a TSV with one line per cohort the row fans
out into (id, cell_type, file: deepgami.pipeline.samplesheet.fan_out_ids, the rule `deepgami run`
uses too); the workflow spreads the row into those cohorts without a rule of its own.

    deepgami_pseudobulk.py cells.h5ad --donor-key donor --cell-type-key cell_type --out pseudobulk \\
        [--cohorts cohorts.tsv --row-id brain]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from deepgami.cli import main


def write_cohorts(path: str, row_id: str, out: str) -> None:
    """Write `path`: the cohorts of row `row_id` from the cell types `deepgami pseudobulk` wrote."""
    from deepgami.pipeline.samplesheet import fan_out_ids

    report = json.loads((Path(out) / "pseudobulk.json").read_text())
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["id", "cell_type", "file"])
        writer.writerows(fan_out_ids(row_id, list(report["cell_types"])))


def run(argv: list[str]) -> int:
    """Run `deepgami pseudobulk` with `argv` (the arguments after the command name)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--cohorts")
    parser.add_argument("--row-id")
    parser.add_argument("--out")
    known, _ = parser.parse_known_args(argv)
    passthrough = list(argv)
    for flag in ("--cohorts", "--row-id"):
        if flag in passthrough:
            at = passthrough.index(flag)
            del passthrough[at : at + 2]
    code = main(["pseudobulk", *passthrough])
    if code == 0 and known.cohorts:
        if not known.row_id or not known.out:
            print(
                "deepgami_pseudobulk.py: error: --cohorts needs --row-id and --out", file=sys.stderr
            )
            return 2
        write_cohorts(known.cohorts, known.row_id, known.out)
    return code


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
