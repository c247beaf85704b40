"""The `deepgami` command: one subcommand per module in `deepgami.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from deepgami import __version__
from deepgami.errors import InputError, env_error, output_claims

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
    """Build the ``deepgami`` argument parser, with one subcommand per module in `COMMANDS`.

    Each module ``deepgami.commands.<name>`` adds its subcommand with ``register(subparsers)``.

    Returns
    -------
    argparse.ArgumentParser
        The parser; the subcommand chosen sets ``args.func``.
    """
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
    """Run one ``deepgami`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit code: 0 success, 2 bad input, 3 an environment error (permission, read-only,
        no space, a busy output, ...), 130 interrupted. Errors are one line on stderr; ``--debug``
        shows the traceback instead.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with output_claims():
            result = args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # noqa: BLE001 - only the user-error kinds are caught below
        user = _user_error(err)
        if user is None or args.debug:
            raise
        print(f"error: {user}", file=sys.stderr)
        return user.exit_code
    return int(result or 0)


def _user_error(err: Exception) -> InputError | None:
    """The one-line error of `err`, or None for a bug (a traceback is the right report)."""
    if isinstance(err, InputError):
        return err
    if isinstance(err, OSError):
        return env_error(err)
    if type(err).__name__ == "SafetensorError":  # raised while writing, e.g. a full disk
        from deepgami.errors import safetensors_env_error

        return safetensors_env_error(err, None)
    return None


if __name__ == "__main__":
    sys.exit(main())
