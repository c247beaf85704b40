"""`deepgami build`: user files -> one validated cohort `.h5mu`."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from deepgami.commands import add_overwrite_argument
from deepgami.errors import InputError, claim_output

MISSING_POLICIES = (
    "error",
    "mean",
    "drop-feature",
)  # = deepgami.data.readers.MISSING_POLICIES, kept light for --help

DEFAULT_TEST_FRACTION = 0.2
MODALITY_RE = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9_.-]*)=(?P<path>.+)$")
PRIOR_RE = re.compile(
    r"^(?P<modality>[A-Za-z][A-Za-z0-9_.-]*):(?P<name>[A-Za-z][A-Za-z0-9_.-]*)=(?P<path>.+)$"
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `build` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subparsers of the ``deepgami`` command.
    """
    p = sub.add_parser(
        "build",
        help="build a cohort .h5mu from modality matrices, labels and prior edge lists",
        description="Read one matrix per modality (samples as rows; CSV, TSV, Parquet, .h5ad, or genotypes as "
        "PLINK .bed, VCF/BCF, PLINK2 .pgen), a label table and optional prior networks (source/target edge "
        "lists), validate them, and write one MuData cohort file. A sample missing from a modality stays in "
        "the cohort; presence is recorded in mdata.obsm[<modality>].",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  deepgami build --modality snp=geno.csv --modality expr=expr.csv --labels labels.csv \\\n"
        "      --prior snp:eqtl=eqtl.tsv --out cohort.h5mu\n"
        "  # several targets (a sample may lack some) and a survival target:\n"
        "  deepgami build --modality expr=expr.csv --labels labels.csv \\\n"
        "      --label-column diagnosis,cerad,braak --survival-columns time,event --out multi.h5mu",
    )
    p.add_argument(
        "--modality",
        action="append",
        required=True,
        metavar="NAME=PATH",
        help="a modality and its matrix file; repeat for each modality",
    )
    p.add_argument(
        "--labels", required=True, metavar="PATH", help="CSV/TSV with a sample and a label column"
    )
    p.add_argument(
        "--sample-column",
        default="sample",
        help="sample id column of the label table (default: sample)",
    )
    p.add_argument(
        "--label-column",
        default=None,
        metavar="COLUMN[,COLUMN...]",
        help="phenotype column of the label table (default: label); several columns, e.g. "
        "diagnosis,cerad,braak, make one target each (classes, or numeric with 10+ distinct "
        "numbers); a sample may lack some (an empty cell) and trains the others",
    )
    p.add_argument(
        "--survival-columns",
        default=None,
        metavar="TIME,EVENT",
        help="a time-to-event target named 'survival': TIME a non-negative number, EVENT 1 "
        "(observed) or 0 (censored); alone or beside --label-column",
    )
    p.add_argument(
        "--split-column",
        default="split",
        help="optional train/test/independent column of the label table (default: split; ignored if absent)",
    )
    _add_split_arguments(p)
    p.add_argument(
        "--prior",
        action="append",
        default=[],
        metavar="MODALITY:NAME=PATH",
        help="prior edge list (columns source, target) guiding MODALITY's encoder, e.g. snp:eqtl=eqtl.tsv",
    )
    p.add_argument(
        "--missing",
        choices=MISSING_POLICIES,
        default="error",
        help="NaN/inf policy: error (default), mean (per-feature mean of observed values), "
        "drop-feature (drop features with any missing value)",
    )
    p.add_argument(
        "--prefix",
        action="store_true",
        help="name features <modality>:<feature> (needed when names collide across modalities)",
    )
    _add_output_arguments(p)
    p.set_defaults(func=run)


def _add_output_arguments(p: argparse.ArgumentParser) -> None:
    """--out, --overwrite and --quiet."""
    p.add_argument(
        "--out",
        required=True,
        metavar="COHORT.h5mu",
        help="output cohort file (replaces a previous cohort; see --overwrite)",
    )
    add_overwrite_argument(p)
    p.add_argument("--quiet", action="store_true", help="do not print the summary")


def _add_split_arguments(p: argparse.ArgumentParser) -> None:
    """--test-fraction | --no-split, and --split-seed."""
    split = p.add_mutually_exclusive_group()
    split.add_argument(
        "--test-fraction",
        type=float,
        default=None,
        metavar="F",
        help="when the labels have no split column: the share of samples put in a seeded, "
        "stratified 'test' split (default: 0.2; recorded in mdata.uns['deepgami']['split']). "
        "When the default split cannot be drawn (a tiny cohort), every sample is 'train' and "
        "build says so; an explicit F that cannot be honoured is an error",
    )
    split.add_argument(
        "--no-split",
        action="store_true",
        help="when the labels have no split column: every sample is 'train' (no test split)",
    )
    p.add_argument(
        "--split-seed",
        type=int,
        default=0,
        metavar="N",
        help="seed of the generated split (default: 0)",
    )


def _test_fraction(args: argparse.Namespace) -> float:
    """--no-split: 0; else --test-fraction, or the default (which may fall back to no split)."""
    if args.no_split:
        return 0.0
    return DEFAULT_TEST_FRACTION if args.test_fraction is None else args.test_fraction


def _parse_pairs(values: list[str], pattern: re.Pattern, flag: str) -> list[re.Match]:
    matches = []
    for value in values:
        match = pattern.match(value)
        if not match:
            form = "NAME=PATH" if flag == "--modality" else "MODALITY:NAME=PATH"
            raise InputError(None, f"{flag} '{value}' is not of the form {form}")
        matches.append(match)
    return matches


def run(args: argparse.Namespace) -> int:
    """Build the cohort file from the command line's files (through `deepgami.build_cohort`).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``deepgami build`` arguments.

    Returns
    -------
    int
        The exit code, 0.
    """
    from deepgami.data.assemble import build_cohort
    from deepgami.data.cohort import write_cohort

    out = Path(args.out)
    if out.suffix != ".h5mu":
        raise InputError(out, "output must end in .h5mu")
    modality_specs = _parse_pairs(args.modality, MODALITY_RE, "--modality")
    prior_specs = _parse_pairs(args.prior, PRIOR_RE, "--prior")
    inputs = [args.labels] + [m["path"] for m in modality_specs] + [m["path"] for m in prior_specs]
    claim = claim_output(out, "cohort", inputs, args.overwrite)
    names = [m["name"] for m in modality_specs]
    if len(set(names)) != len(names):
        raise InputError(None, f"modality names must be unique (got {', '.join(names)})")
    mdata, report = build_cohort(
        {m["name"]: Path(m["path"]) for m in modality_specs},
        Path(args.labels),
        {f"{p['modality']}:{p['name']}": Path(p["path"]) for p in prior_specs},
        sample_column=args.sample_column,
        label_column=(
            args.label_column
            if args.label_column is not None
            else (None if args.survival_columns else "label")
        ),
        survival_columns=args.survival_columns,
        split_column=args.split_column,
        missing=args.missing,
        prefix=args.prefix,
        test_fraction=_test_fraction(args),
        split_seed=args.split_seed,
        split_fallback=args.test_fraction is None,
        return_report=True,
    )
    split = mdata.uns["deepgami"].get("split", {})
    if split.get("reason"):
        print(
            f"{args.labels}: no test split ({split['reason']}): every sample is 'train'",
            file=sys.stderr,
        )
    with claim.atomic() as tmp:
        write_cohort(mdata, tmp)
    if not args.quiet:
        _print_summary(out, mdata, report.lines())
    return 0


def _print_summary(out: Path, mdata, lines: list[str]) -> None:
    """What was written: the split and the build report."""
    print(f"wrote {out}")
    split = mdata.uns["deepgami"]["split"]
    counts = mdata.obs["split"].value_counts()
    if split["source"] == "generated":
        print(
            f"  split: generated (labels have none): {counts.get('train', 0)} train, "
            f"{counts.get('test', 0)} test (stratified, seed {split['seed']})"
        )
    elif split.get("reason"):
        print(f"  split: none ({split['reason']}): every sample is train")
    elif split["source"] == "none":
        print("  split: none (--no-split): every sample is train")
    for line in lines:
        print(f"  {line}")
