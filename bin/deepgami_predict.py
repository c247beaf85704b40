#!/usr/bin/env python3
"""PREDICT: `deepgami predict` (model directory + cohort -> predictions TSV and metrics JSON).

A thin entry for the Nextflow process: every argument goes to the `deepgami predict` command, which
parses and checks it (`deepgami predict --help`); bad input exits 2 with a one-line error.

    deepgami_predict.py model cohort.h5mu --out predictions/all.tsv [--modalities snp] [--split test] [--device cpu|cuda]
"""

from __future__ import annotations

import sys

from deepgami.cli import main


def run(argv: list[str]) -> int:
    """Run `deepgami predict` with `argv` (the arguments after the command name)."""
    return main(["predict", *argv])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
