"""The `deepgami` subcommands, one module each (`register(subparsers)` and `run(args)`), and options they share."""

from __future__ import annotations

import argparse


def add_device_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """The ``--device auto|cpu|cuda`` option of train, predict, prioritize and evaluate."""
    parser.add_argument("--device", default="auto", metavar="auto|cpu|cuda",
                        help=f"where {what} runs: auto (CUDA when available, else the CPU; default), cpu, or cuda "
                        "(an error when no CUDA device is available)")
