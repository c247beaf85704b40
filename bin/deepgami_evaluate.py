#!/usr/bin/env python3
"""EVALUATE: `deepgami evaluate` (cohort -> DeepGAMI against its ablations and the baselines, report.html).

A thin entry for the Nextflow process: every argument goes to the `deepgami evaluate` command, which
parses and checks it (`deepgami evaluate --help`); bad input exits 2 with a one-line error.

    deepgami_evaluate.py cohort.h5mu --out evaluate [--params params.yaml] [--model-dir model] [--prioritize-dir prioritize] [--device cpu|cuda]
"""

from __future__ import annotations

import sys

from deepgami.cli import main


def run(argv: list[str]) -> int:
    """Run `deepgami evaluate` with `argv` (the arguments after the command name)."""
    return main(["evaluate", *argv])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
