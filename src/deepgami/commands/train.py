"""`deepgami train`: cohort .h5mu -> model directory (CV grid search, refit, report files)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from deepgami.commands import add_device_argument, add_overwrite_argument
from deepgami.errors import InputError, claim_output


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `train` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subparsers of the `deepgami` parser.
    """
    p = sub.add_parser(
        "train",
        help="train a DeepGAMI model on a cohort (k-fold CV grid search, then refit)",
        description="Train DeepGAMI on the cohort's training samples (split == 'train' when the cohort has a "
        "split column): a k-fold cross-validated grid search over the hyperparameters in the params file, "
        "then a refit of the best setting on all training samples, joined by `bagging` networks fitted on "
        "random 80% subsets of them (predictions average all; bagging: 0 in the params file for the refit "
        "alone). Writes model.safetensors (weights), "
        "config.json, cv_results.tsv, cv_summary.tsv, training_history.tsv and imputation.json.",
    )
    p.add_argument("cohort", metavar="COHORT.h5mu", help="cohort built by 'deepgami build'")
    p.add_argument(
        "--out",
        required=True,
        metavar="MODEL_DIR",
        help="output model directory (replaces a previous model; see --overwrite)",
    )
    add_overwrite_argument(p)
    p.add_argument(
        "--params",
        metavar="PARAMS.yaml",
        help="training parameters over the defaults (see deepgami/train/default_params.yaml)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="random seed (default: 0); same seed, same model"
    )
    p.add_argument(
        "--cv-folds", type=int, metavar="K", help="override cv_folds (0 or 1: no grid search)"
    )
    p.add_argument("--max-epochs", type=int, metavar="N", help="override max_epochs")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    add_device_argument(p, "training")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train a model on the cohort as the command line says and write the model directory.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.

    Returns
    -------
    int
        The exit status (0).

    Raises
    ------
    InputError
        When an input is not valid; one without a path names the cohort.
    """
    from deepgami.data.cohort import read_cohort
    from deepgami.model import DeepGAMI
    from deepgami.train import load_params

    out = Path(args.out)
    claim = claim_output(out, "model", [args.cohort, args.params], args.overwrite)
    overrides = {}
    if args.cv_folds is not None:
        overrides["cv_folds"] = args.cv_folds
    if args.max_epochs is not None:
        overrides["max_epochs"] = args.max_epochs
    from deepgami.utils import resolve_device

    device = resolve_device(args.device)
    params = load_params(args.params, overrides)
    mdata = read_cohort(args.cohort)
    start = time.perf_counter()
    try:
        model = DeepGAMI.fit(
            mdata,
            params,
            seed=args.seed,
            progress=not args.quiet and sys.stderr.isatty(),
            device=device,
        )
    except InputError as err:
        if err.path is None:
            raise InputError(args.cohort, err.message) from None
        raise
    with claim.atomic() as tmp:
        model.save(tmp)
    from deepgami.model import prior_warning

    warning = prior_warning(model.config)
    if warning is not None:
        print(warning, file=sys.stderr)
    if not args.quiet:
        for line in summary_lines(model, time.perf_counter() - start):
            print(line)
    return 0


def summary_lines(model, seconds: float) -> list[str]:
    """Compose a few lines for the terminal: chosen setting, CV scores, imputation R^2.

    Parameters
    ----------
    model : DeepGAMI
        The fitted model.
    seconds : float
        The seconds training took.

    Returns
    -------
    list of str
        The lines.
    """
    cfg = model.config
    n_bagged = len(model.members) - 1
    bagged = f" + {n_bagged} bagged" if n_bagged else ""
    training = cfg["training"]
    pruned = f", {training['n_pruned']} stopped early" if training.get("n_pruned") else ""
    lines = [
        f"trained on {training['n_train']} samples in {seconds:.1f} s "
        f"({training['n_settings']} setting(s){pruned} x {training['cv_folds']} fold(s) + refit"
        f"{bagged})"
    ]
    cv = cfg.get("cv")
    if cv:
        mean = cv["mean"]
        metric = "r2" if cfg["task"] == "regression" else "auc"
        parts = [f"all {metric} {_fmt(mean.get(f'all_{metric}'))}"]
        parts += [f"{m}-only {_fmt(mean.get(f'{m}_{metric}'))}" for m in cfg["modalities"]]
        lines.append("cross-validated: " + ", ".join(parts))
    from deepgami.train import grid_label

    lines.append(f"selected: {grid_label(cfg['setting'])}")
    if model.imputation and len(cfg["modalities"]) > 1:  # one modality: nothing to impute
        r2 = [f"{m} {_fmt(b['r2_mean'])}" for m, b in model.imputation["blocks"].items()]
        lines.append("imputation R^2 (held-out): " + ", ".join(r2))
    return lines


def _fmt(value) -> str:
    return "NA" if value is None else f"{value:.3f}"
