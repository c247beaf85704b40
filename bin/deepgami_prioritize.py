#!/usr/bin/env python3
"""PRIORITIZE: `deepgami prioritize` (model directory + cohort -> features.tsv, latent.tsv, links.tsv).

A thin entry for the Nextflow process: every argument goes to the `deepgami prioritize` command, which
parses and checks it (`deepgami prioritize --help`); bad input exits 2 with a one-line error.

    deepgami_prioritize.py model cohort.h5mu --out prioritize [--split test] [--device cpu|cuda]
"""

from __future__ import annotations

import sys

from deepgami.cli import main


def run(argv: list[str]) -> int:
    """Run `deepgami prioritize` with `argv` (the arguments after the command name)."""
    return main(["prioritize", *argv])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
