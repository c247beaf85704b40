#!/usr/bin/env python3
"""PSEUDOBULK: `deepgami pseudobulk` (cell-level .h5ad -> one pseudobulk .h5ad per cell type).

A thin entry for the Nextflow process: every argument goes to the `deepgami pseudobulk` command, which
parses and checks it (`deepgami pseudobulk --help`); bad input exits 2 with a one-line error.

    deepgami_pseudobulk.py cells.h5ad --donor-key donor --cell-type-key cell_type --out pseudobulk
"""

from __future__ import annotations

import sys

from deepgami.cli import main


def run(argv: list[str]) -> int:
    """Run `deepgami pseudobulk` with `argv` (the arguments after the command name)."""
    return main(["pseudobulk", *argv])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
