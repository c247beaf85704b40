"""`deepgami predict`: model directory + cohort -> predictions TSV (+ metrics JSON with labels)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from deepgami.commands import add_device_argument, add_overwrite_argument
from deepgami.errors import InputError, claim_output

FLOAT_FORMAT = "%.6f"  # fixed, so the same model and cohort give byte-identical files


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `predict` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subparsers of the ``deepgami`` command.
    """
    p = sub.add_parser(
        "predict",
        help="predict phenotypes from all or some modalities (missing latent blocks imputed)",
        description="Predict each sample's phenotype with a trained model. Input features are matched by name "
        "(any column order; extra features are ignored). A cohort that lacks some of a modality's features but still "
        "has at least --min-coverage of them gets the missing ones at their training mean (counted on stderr and in "
        "the metrics JSON); below that, prediction is refused. With --modalities, only "
        "those modalities are used and the others' latent blocks are imputed from them. Writes one row per "
        "sample (sample, label when known, predicted, prob_<class>..., modalities) and, when labels are "
        "known, <out stem>.metrics.json. A model of several targets writes <target>:<column> "
        "columns (classes: label, predicted, prob_<class>; numeric: label, predicted; survival: "
        "time, event, risk, risk_group) and the metrics JSON holds one entry per target under "
        "'targets' (survival: Harrell's c_index and Uno's c_index_uno). With a survival target whose "
        "time and event are known for scored samples, <out stem>.km.png shows Kaplan-Meier curves "
        "by predicted risk group (low / mid / high: the tertiles of the training risk).",
    )
    p.add_argument("model", metavar="MODEL_DIR", help="directory written by 'deepgami train'")
    p.add_argument("cohort", metavar="COHORT.h5mu", help="cohort built by 'deepgami build'")
    p.add_argument("--out", required=True, metavar="PREDICTIONS.tsv", help="output table")
    p.add_argument(
        "--modalities",
        metavar="a,b",
        help="comma-separated modalities to use (default: all the model's)",
    )
    p.add_argument(
        "--split",
        metavar="NAME",
        help="predict only samples whose split column equals NAME (e.g. test)",
    )
    p.add_argument(
        "--fill",
        choices=("impute", "mean"),
        default="impute",
        help="missing latent blocks: imputed from the given modalities (default) or the training mean",
    )
    p.add_argument(
        "--min-coverage",
        type=float,
        default=0.9,
        metavar="F",
        help="share of each modality's model features the cohort must have; the missing ones are "
        "filled with their training mean (default 0.9; 1 = every feature required)",
    )
    add_device_argument(p, "prediction")
    add_overwrite_argument(p)
    p.add_argument("--quiet", action="store_true", help="no notes on stderr (errors only)")
    p.set_defaults(func=run)


def metrics_path(out: Path) -> Path:
    """Return the path of the metrics file: `<out stem>.metrics.json` beside the predictions.

    Parameters
    ----------
    out : pathlib.Path
        The predictions table.

    Returns
    -------
    pathlib.Path
        The metrics JSON path.
    """
    return out.with_name(f"{out.stem}.metrics.json")


def km_path(out: Path) -> Path:
    """Return the path of the Kaplan-Meier figure: `<out stem>.km.png` beside the predictions.

    Parameters
    ----------
    out : pathlib.Path
        The predictions table.

    Returns
    -------
    pathlib.Path
        The PNG path.
    """
    return out.with_name(f"{out.stem}.km.png")


def survival_targets(model: Any) -> list[str]:
    """Return the names of a model's survival targets (none for a one-label model).

    Parameters
    ----------
    model : deepgami.model.DeepGAMI
        A trained model.

    Returns
    -------
    list of str
        The survival targets' names, in output order.
    """
    return [t["name"] for t in model.targets or [] if t["kind"] == "survival"]


def _write_km(table: Any, names: list[str], claim: Any) -> None:
    """Draw the Kaplan-Meier figure of the survival targets by risk group (when some time and
    event are known) onto the claimed path."""
    from deepgami.report.figures import survival_targets_km
    from deepgami.utils import save_png

    fig = survival_targets_km(table, names)
    if fig is not None:
        with claim.atomic() as tmp:
            save_png(fig, tmp)


def run(args: argparse.Namespace) -> int:
    """Predict the cohort's phenotypes with the model and write the table (and the metrics).

    The metrics JSON is written only when some labels are known.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``deepgami predict`` arguments.

    Returns
    -------
    int
        The exit code, 0.

    Raises
    ------
    InputError
        When --min-coverage is not in (0, 1], or the cohort does not fit the model.
    """
    from deepgami.data.cohort import SPLIT, read_cohort
    from deepgami.model import DeepGAMI
    from deepgami.utils import resolve_device, split_mask

    out = Path(args.out)
    inputs = [args.model, args.cohort]
    claim = claim_output(out, "predictions", inputs, args.overwrite)
    metrics_claim = claim_output(metrics_path(out), "metrics", inputs, args.overwrite)
    km_claim = claim_output(km_path(out), "figure", inputs, args.overwrite)
    if not 0 < args.min_coverage <= 1:
        raise InputError(None, f"--min-coverage must be in (0, 1], got {args.min_coverage}")
    device = resolve_device(args.device)
    model = DeepGAMI.load(args.model)
    mdata = read_cohort(args.cohort)
    modalities = None
    if args.modalities is not None:
        modalities = [m.strip() for m in args.modalities.split(",") if m.strip()]
    if args.split is not None:
        mdata = mdata[split_mask(mdata, args.split, args.cohort, SPLIT)].copy()
    try:
        table = model.predict(
            mdata, modalities, fill=args.fill, device=device, min_coverage=args.min_coverage
        )
    except InputError as err:
        if err.path is None:
            raise InputError(args.cohort, err.message) from None
        raise
    filled = table.attrs.get("filled_features", {})
    for m, n in filled.items() if not args.quiet else ():
        print(
            f"{args.cohort}: filled {n} of the model's {len(model.features(m))} '{m}' features with their "
            "training mean",
            file=sys.stderr,
        )
    metrics = _table_metrics(model, table)
    with claim.atomic() as tmp:
        table.to_csv(
            tmp, sep="\t", index=False, float_format=FLOAT_FORMAT, lineterminator="\n", na_rep="NA"
        )
        if metrics is not None:
            metrics = {
                "modalities": modalities or [m for m in model.modalities if m in mdata.mod],
                "fill": args.fill,
                "filled_features": filled,
                **metrics,
            }
            with metrics_claim.atomic() as mtmp:
                mtmp.write_text(json.dumps(metrics, indent=1) + "\n")
    survival = survival_targets(model)
    if survival:
        _write_km(table, survival, km_claim)
    return 0


def _table_metrics(model: Any, table: Any) -> dict | None:
    """The metrics of the scored rows, scored once: one label's, or each target's under
    ``targets``; None without a known label (then no metrics file)."""
    if model.targets is not None:
        found = model.metrics(table)
        return {"targets": found} if found else None
    return model.metrics(table) if "label" in table and table["label"].notna().any() else None
