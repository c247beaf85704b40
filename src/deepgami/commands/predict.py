"""`deepgami predict`: model directory + cohort -> predictions TSV (+ metrics JSON with labels)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deepgami.errors import InputError, atomic_path

FLOAT_FORMAT = "%.6f"  # fixed, so the same model and cohort give byte-identical files


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="predict phenotypes from all or some modalities (missing latent blocks imputed)",
        description="Predict each sample's phenotype with a trained model. Input features are matched by name "
        "(any column order; extra features are ignored; a missing one is an error). With --modalities, only "
        "those modalities are used and the others' latent blocks are imputed from them. Writes one row per "
        "sample (sample, label when known, predicted, prob_<class>..., modalities) and, when labels are "
        "known, <out stem>.metrics.json.",
    )
    p.add_argument("model", metavar="MODEL_DIR", help="directory written by 'deepgami train'")
    p.add_argument("cohort", metavar="COHORT.h5mu", help="cohort built by 'deepgami build'")
    p.add_argument("--out", required=True, metavar="PREDICTIONS.tsv", help="output table")
    p.add_argument("--modalities", metavar="a,b", help="comma-separated modalities to use (default: all the model's)")
    p.add_argument("--split", metavar="NAME", help="predict only samples whose split column equals NAME (e.g. test)")
    p.add_argument("--fill", choices=("impute", "mean"), default="impute",
                   help="missing latent blocks: imputed from the given modalities (default) or the training mean")
    p.set_defaults(func=run)


def metrics_path(out: Path) -> Path:
    """`<out stem>.metrics.json` beside the predictions."""
    return out.with_name(f"{out.stem}.metrics.json")


def run(args: argparse.Namespace) -> int:
    from deepgami.data.cohort import SPLIT, read_cohort
    from deepgami.model import DeepGAMI

    out = Path(args.out)
    model = DeepGAMI.load(args.model)
    mdata = read_cohort(args.cohort)
    modalities = None
    if args.modalities is not None:
        modalities = [m.strip() for m in args.modalities.split(",") if m.strip()]
    if args.split is not None:
        if SPLIT not in mdata.obs:
            raise InputError(args.cohort, f"--split {args.split}: the cohort has no '{SPLIT}' column")
        keep = (mdata.obs[SPLIT].astype(str) == args.split).to_numpy()
        if not keep.any():
            values = sorted(set(mdata.obs[SPLIT].astype(str)))
            raise InputError(args.cohort, f"no sample has split '{args.split}' (splits: {', '.join(values)})")
        mdata = mdata[keep].copy()
    try:
        table = model.predict(mdata, modalities, fill=args.fill)
    except InputError as err:
        if err.path is None:
            raise InputError(args.cohort, err.message) from None
        raise
    metrics = model.metrics(table) if "label" in table and table["label"].notna().any() else None
    with atomic_path(out) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format=FLOAT_FORMAT, lineterminator="\n", na_rep="NA")
        if metrics is not None:
            metrics = {"modalities": modalities or [m for m in model.modalities if m in mdata.mod],
                       "fill": args.fill, **metrics}
            with atomic_path(metrics_path(out)) as mtmp:
                mtmp.write_text(json.dumps(metrics, indent=1) + "\n")
    return 0
