"""The `deepgami` command: one subcommand per module in `deepgami.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from deepgami import __version__
from deepgami.errors import InputError

# Order shown in --help; each name is a module deepgami.commands.<name> with register(subparsers)
# (the subcommand may spell it with '-': simulate_cells registers `simulate-cells`).
COMMANDS = (
    "simulate",
    "simulate_cells",
    "build",
    "pseudobulk",
    "train",
    "predict",
    "prioritize",
    "evaluate",
    "run",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepgami",
        description="DeepGAMI: biologically guided multimodal phenotype prediction, imputation "
        "and prioritization of prior-network links (SNP->gene, TF->gene).",
    )
    parser.add_argument("--version", action="version", version=f"deepgami {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"deepgami.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except InputError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
