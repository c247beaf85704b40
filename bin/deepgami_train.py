#!/usr/bin/env python3
"""TRAIN: `deepgami train` (cohort .h5mu -> model directory).

A thin entry for the Nextflow process: every argument goes to the `deepgami train` command, which
parses and checks it (`deepgami train --help`); bad input exits 2 with a one-line error.

    deepgami_train.py cohort.h5mu --out model [--params params.yaml] [--device cpu|cuda] [train options]
"""

from __future__ import annotations

import sys

from deepgami.cli import main


def run(argv: list[str]) -> int:
    """Run `deepgami train` with `argv` (the arguments after the command name)."""
    return main(["train", *argv])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
