"""The `deepgami` subcommands, one module each (`register(subparsers)` and `run(args)`), and options they share."""

from __future__ import annotations

import argparse


def add_device_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """Add the ``--device auto|cpu|cuda`` option of train, predict, prioritize and evaluate.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    what : str
        What runs on the device, named in the help (e.g. ``"training"``).
    """
    parser.add_argument(
        "--device",
        default="auto",
        metavar="auto|cpu|cuda",
        help=f"where {what} runs: auto (CUDA when available, else the CPU; default), cpu, or cuda "
        "(an error when no CUDA device is available)",
    )


def add_overwrite_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--overwrite``: let --out replace what deepgami did not write (never an input).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    """
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace --out even when it holds files deepgami did not write there (an input of "
        "this command is never replaced)",
    )


def add_simulation_output_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--out``, ``--seed`` and ``--overwrite`` of the simulators.

    The simulators are `simulate` and `simulate-cells`.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    """
    parser.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output directory (created; must not exist or be empty)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed; same seed, same bytes (default 0)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace --out if it holds a previous simulation"
    )
