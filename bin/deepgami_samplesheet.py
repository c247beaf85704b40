#!/usr/bin/env python3
"""SAMPLESHEET_CHECK: validate the samplesheet and write it as the Nextflow workflow consumes it.

Every samplesheet rule lives in Python (deepgami.pipeline.samplesheet): the schema
(assets/schema_input.json), unique ids, the reserved modality name 'all', priors naming a modality,
the single-cell columns, and each row's prediction sets. The workflow only wires channels from the
CSV written here (columns: deepgami.pipeline.samplesheet.PIPELINE_COLUMNS); it resolves and checks
the paths itself, since it stages them (remote ones included).

    deepgami_samplesheet.py samplesheet.csv --schema schema_input.json --out samplesheet.valid.tsv
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Validate `samplesheet` and write the pipeline table; exit 2 with one line on bad input."""
    parser = argparse.ArgumentParser(
        prog="deepgami_samplesheet.py", description=__doc__.splitlines()[0]
    )
    parser.add_argument("samplesheet")
    parser.add_argument("--out", required=True, help="the TSV the workflow reads")
    parser.add_argument(
        "--schema", help="schema_input.json (default: the one of the installed assets/)"
    )
    args = parser.parse_args(argv)
    if args.schema:
        os.environ["DEEPGAMI_ASSETS"] = str(Path(args.schema).resolve().parent)

    from deepgami.errors import InputError
    from deepgami.pipeline.samplesheet import PIPELINE_COLUMNS, pipeline_table

    try:
        table = pipeline_table(args.samplesheet)
    except InputError as err:
        print(f"deepgami_samplesheet.py: error: {err}", file=sys.stderr)
        return 2
    with open(args.out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=PIPELINE_COLUMNS, delimiter="\t", lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
