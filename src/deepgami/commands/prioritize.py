"""`deepgami prioritize`: model directory + cohort -> ranked features, latent genes and prior links."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from deepgami.commands import add_device_argument, add_overwrite_argument
from deepgami.errors import InputError, claim_output

DESCRIPTION = """\
Explain a trained model with integrated gradients (Captum), per class: input features of every
modality, latent nodes (each encoder's output after its activation, i.e. the DropConnect output),
and every prior link (SNP->gene, TF->gene). A feature's link attributions sum exactly to its
feature attribution. Attributions use the samples (of --split, when given) that have every model
modality, against a baseline in preprocessed units (--baseline zero: all-zero input, which under
standard scaling is the training mean). The explained output is the class's centered logit
(logit minus the mean logit; --target probability for the softmax probability).

files written into --out (replaced as a whole):
  features.tsv  feature, modality, class, mean_attribution, importance, rank, rank_in_modality, top_decile
  latent.tsv    node, modality (encoder block), class, ... (same score columns)
  links.tsv     source, target, modality, prior, class, weight, ... (empty without priors)
  *.parquet     the same three tables
  summary.json  samples used, split, baseline, target, n_steps, convergence deltas, timings
  links_<class>.png   top links as a bipartite network (models with priors)
  enrichment.tsv      with --gmt: over-representation of top-decile link genes per class

importance = mean over samples of |attribution| (the ranking score); mean_attribution = mean signed
attribution. rank 1 = most important, within the class over the whole table (all modalities);
rank_in_modality within the class and modality; ties broken by name. top_decile: rank <= ceil(n/10).
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `prioritize` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subparsers of the ``deepgami`` command.
    """
    p = sub.add_parser(
        "prioritize",
        help="rank input features, latent genes and prior links by integrated gradients",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL_DIR", help="directory written by 'deepgami train'")
    p.add_argument("cohort", metavar="COHORT.h5mu", help="cohort built by 'deepgami build'")
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output directory (replaces a previous prioritization; see --overwrite)",
    )
    add_overwrite_argument(p)
    p.add_argument(
        "--split",
        metavar="NAME",
        help="explain only samples whose split column equals NAME (e.g. test); default: all samples",
    )
    p.add_argument(
        "--class",
        dest="classes",
        action="append",
        metavar="C",
        help="class to explain; repeat or comma-separate for several (default: every class)",
    )
    _add_attribution_arguments(p)
    p.add_argument("--no-figures", action="store_true", help="do not draw the link figures")
    add_device_argument(
        p, "the networks' forward passes (integrated gradients themselves run on the CPU for now)"
    )
    p.add_argument(
        "--gmt",
        metavar="FILE",
        help="gene sets (GMT) for an over-representation test of the top-decile link genes "
        "(hypergeometric, BH FDR; background: all latent genes)",
    )
    p.add_argument(
        "--gmt-min-size",
        type=int,
        default=3,
        metavar="N",
        help="skip gene sets with fewer latent genes than N (default 3)",
    )
    p.add_argument(
        "--gmt-max-size",
        type=int,
        default=500,
        metavar="N",
        help="skip gene sets with more latent genes than N (default 500)",
    )
    p.set_defaults(func=run)


def _add_attribution_arguments(p: argparse.ArgumentParser) -> None:
    """How integrated gradients run: baseline, target, steps, method, networks, top links."""
    p.add_argument(
        "--baseline",
        choices=("zero", "mean"),
        default="zero",
        help="zero: all-zero preprocessed input (= training mean under standard scaling; default); "
        "mean: the training mean of each feature, preprocessed",
    )
    p.add_argument(
        "--target",
        choices=("logit", "probability"),
        default="logit",
        help="explained output per class: centered logit (default) or softmax probability",
    )
    p.add_argument(
        "--n-steps",
        type=int,
        default=50,
        metavar="N",
        help="integration steps (default 50, as Captum)",
    )
    p.add_argument(
        "--method",
        default="gausslegendre",
        choices=(
            "gausslegendre",
            "riemann_trapezoid",
            "riemann_left",
            "riemann_right",
            "riemann_middle",
        ),
        help="integral approximation (default gausslegendre, as Captum)",
    )
    p.add_argument(
        "--networks",
        choices=("all", "refit"),
        default="all",
        help="a bagged model: explain all its networks and average them (default; exactly the "
        "ensemble's signed attributions) or only the refit on all training samples (faster)",
    )
    p.add_argument(
        "--top-links",
        type=int,
        default=30,
        metavar="N",
        help="links drawn in each links_<class>.png (default 30)",
    )


def _classes(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    out = [c.strip() for v in values for c in v.split(",") if c.strip()]
    return out or None


def run(args: argparse.Namespace) -> int:
    """Prioritize as the command line says and write the output directory.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``deepgami prioritize`` arguments.

    Returns
    -------
    int
        The exit code, 0.
    """
    from deepgami.attribution.enrichment import read_gmt, top_link_enrichment
    from deepgami.model import DeepGAMI
    from deepgami.utils import resolve_device

    out, device = Path(args.out), resolve_device(args.device)
    claim = claim_output(out, "prioritize", [args.model, args.cohort, args.gmt], args.overwrite)
    for flag, value in (("--n-steps", args.n_steps), ("--top-links", args.top_links)):
        if value < 1:
            raise InputError(None, f"{flag} must be >= 1, got {value}")
    # Read everything that can fail on user input before the (long) attribution run.
    gene_sets = read_gmt(args.gmt) if args.gmt else None
    model = DeepGAMI.load(args.model)
    if gene_sets is not None and model.config.get("latent_nodes") is None:
        raise InputError(
            args.gmt,
            "enrichment needs a model with prior links (its latent nodes are genes); "
            "this model has no prior",
        )
    result = _prioritize(args, model, device)
    enrichment = None
    if gene_sets is not None:
        enrichment, summary = top_link_enrichment(
            {c: result.top_link_genes(c) for c in result.summary["classes"]},
            model.latent_nodes,
            gene_sets,
            args.gmt_min_size,
            args.gmt_max_size,
        )
        result.summary["enrichment"] = {"gmt": str(args.gmt), **summary}
    _write(args, claim, result, enrichment)
    print(
        f"wrote {out}: {len(result.features)} feature, {len(result.latent)} latent and {len(result.links)} "
        f"link rows over {result.summary['n_samples']} samples"
    )
    return 0


def _prioritize(args: argparse.Namespace, model: Any, device: Any) -> Any:
    """Run the attribution on the cohort, on `device`; errors name the cohort."""
    from deepgami.attribution import prioritize
    from deepgami.data.cohort import read_cohort
    from deepgami.train import device_scope

    mdata = read_cohort(args.cohort)
    try:
        with device_scope(device):
            result = prioritize(
                model,
                mdata,
                split=args.split or None,
                classes=_classes(args.classes),
                baseline=args.baseline,
                target=args.target,
                n_steps=args.n_steps,
                method=args.method,
                source=args.cohort,
                networks=args.networks,
            )
    except InputError as err:
        if err.path is None:
            raise InputError(args.cohort, err.message) from None
        raise
    result.summary["model"] = str(args.model)
    result.summary["cohort"] = str(args.cohort)
    return result


def _write(args: argparse.Namespace, claim: Any, result: Any, enrichment: Any) -> None:
    """The tables, summary.json, link figures and enrichment.tsv, all or none."""
    from deepgami.attribution import FLOAT_FORMAT

    with claim.atomic() as tmp:
        tmp.mkdir()
        result.write(tmp)
        if not args.no_figures:
            from deepgami.report.linkplot import write_link_figures

            write_link_figures(result.links, tmp, top=args.top_links)
        if enrichment is not None:
            enrichment.to_csv(
                tmp / "enrichment.tsv",
                sep="\t",
                index=False,
                float_format=FLOAT_FORMAT,
                lineterminator="\n",
            )
