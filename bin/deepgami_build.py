#!/usr/bin/env python3
"""BUILD_COHORT helper: pair staged modality/prior files with their names, then `deepgami build`.

Nextflow stages a row's files under generated folders (modality1/, prior1/, ...), in the order of
the names carried in the meta map; this script zips the two back into --modality NAME=PATH and
--prior MODALITY:NAME=PATH. Any other argument is passed to `deepgami build` unchanged.

    deepgami_build.py --labels labels.csv --modality-names snp,expr \\
        --modality-files modality1/genotype.csv modality2/expression.csv \\
        [--prior-specs snp:eqtl --prior-files prior1/eqtl.tsv] --out cohort.h5mu [build options]
"""

from __future__ import annotations

import argparse
import sys

from deepgami.cli import main as deepgami_main


def _names(value: str) -> list[str]:
    return [v for v in value.split(",") if v]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deepgami_build.py", description=__doc__.splitlines()[0])
    parser.add_argument("--labels", required=True)
    parser.add_argument(
        "--modality-names", required=True, type=_names, help="comma-separated, in file order"
    )
    parser.add_argument("--modality-files", required=True, nargs="+")
    parser.add_argument(
        "--prior-specs",
        default=[],
        type=_names,
        help="MODALITY:NAME, comma-separated, in file order",
    )
    parser.add_argument("--prior-files", default=[], nargs="*")
    parser.add_argument("--out", required=True)
    args, passthrough = parser.parse_known_args(argv)
    if len(args.modality_names) != len(args.modality_files):
        parser.error(
            f"{len(args.modality_names)} modality names but {len(args.modality_files)} files"
        )
    if len(args.prior_specs) != len(args.prior_files):
        parser.error(f"{len(args.prior_specs)} prior specs but {len(args.prior_files)} files")
    build = ["build", "--labels", args.labels, "--out", args.out]
    for name, path in zip(args.modality_names, args.modality_files, strict=False):
        build += ["--modality", f"{name}={path}"]
    for spec, path in zip(args.prior_specs, args.prior_files, strict=False):
        build += ["--prior", f"{spec}={path}"]
    return deepgami_main(build + passthrough)


if __name__ == "__main__":
    sys.exit(main())
