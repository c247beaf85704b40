"""`deepgami simulate`: write a planted-signal genotype + expression cohort as raw user files."""

from __future__ import annotations

import argparse
import sys

from deepgami.commands import add_simulation_output_arguments

DESCRIPTION = """\
Simulate a cohort with a known answer: SNP dosages, TF and target-gene expression, a phenotype,
an eQTL prior (SNP -> gene) and a GRN prior (TF -> gene). Each gene's program is a weighted sum of
some of its eQTL SNPs and of some of its TFs (the other prior edges are decoys); a few causal genes
drive the phenotype linearly and non-linearly. truth.json records the causal genes and links and
the Bayes-optimal test AUC. Prints the `deepgami build` command to run next.

files written into --out:
  genotype.csv      sample + one column per SNP (snp00001..), dosages 0/1/2
  expression.csv    sample + TFs (TF001..) + target genes (GENE0001..)
  labels.csv        sample,label,split (control/case, class0..classK-1, or a number; train/test)
  eqtl.tsv          source,target,weight,kind (cis | trans | decoy)
  grn.tsv           source,target,weight,kind (causal | decoy)
  truth.json        causal links and genes, Bayes-optimal metrics, seed and settings
  truth_probabilities.csv  the true class probabilities per sample (truth_expected.csv, the
                    expected value, for --phenotype numeric)
  programs.csv      every gene's true program per sample (the oracle's inputs)
  genetic_programs.csv  the genetic part of every program (its expectation given the genotype)
"""


def _run(args: argparse.Namespace) -> int:
    from deepgami.data.simulate import build_command, simulate
    from deepgami.errors import claim_output

    claim = claim_output(args.out, "simulation", (), args.overwrite)
    cohort, paths = simulate(
        args.out,
        fmt=args.format,
        overwrite=args.overwrite,
        seed=args.seed,
        n_samples=args.n_samples,
        n_snps=args.n_snps,
        n_tfs=args.n_tfs,
        n_genes=args.n_genes,
        classes=args.classes,
        shared_signal=args.shared_signal,
        test_fraction=args.test_fraction,
        n_causal_genes=args.n_causal_genes,
        effect_size=args.effect_size,
        expression_noise=args.expression_noise,
        eqtl_edges_per_gene=args.eqtl_edges_per_gene,
        eqtl_causal_per_gene=args.eqtl_causal_per_gene,
        grn_edges_per_gene=args.grn_edges_per_gene,
        grn_causal_per_gene=args.grn_causal_per_gene,
        phenotype=args.phenotype,
        targets_measured=args.targets_measured,
        interaction=args.interaction,
        n_targets=args.targets,
        shared_programs=args.shared_programs,
        missing_fraction=args.missing_fraction,
        survival=args.survival,
    )
    claim.mark()
    truth = cohort.truth
    if "bayes_optimal_test_r2" in truth:
        what, bayes = "a numeric phenotype; Bayes-optimal test R^2", truth["bayes_optimal_test_r2"]
    else:
        what = f"{len(truth['classes'])} classes; Bayes-optimal test AUC"
        bayes = truth["bayes_optimal_test_auc"]
    print(
        f"simulated {len(cohort.labels)} samples x ({cohort.genotype.shape[1]} SNPs, "
        f"{cohort.expression.shape[1]} expression features), {what} {bayes:.3f}",
        file=sys.stderr,
    )
    print(build_command(paths))
    return 0


def _add_phenotype_arguments(p: argparse.ArgumentParser) -> None:
    """The phenotype type, whether target genes are measured and the interaction weight."""
    p.add_argument(
        "--phenotype",
        choices=("classes", "ordinal", "numeric"),
        default="classes",
        help="classes: logit (binary) or softmax over --classes scores; ordinal: --classes ordered "
        "classes by thresholding one score; numeric: that score plus noise (default classes)",
    )
    p.add_argument(
        "--targets-measured",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="put the target genes in expression.csv; --no-targets-measured writes only the TFs, "
        "the targets stay the priors' (unmeasured) latent nodes (default: measured)",
    )
    p.add_argument(
        "--interaction",
        type=float,
        default=1.0,
        metavar="W",
        help="weight of the phenotype's product and square terms; 0: linear (default 1)",
    )
    _add_outcome_arguments(p)


def _add_outcome_arguments(p: argparse.ArgumentParser) -> None:
    """More targets, missing values and a survival outcome (deepgami.data.simulate_targets)."""
    p.add_argument(
        "--targets",
        type=int,
        default=1,
        metavar="N",
        help="labels to draw (label, label2, ...); the extra ones share --shared-programs of the "
        "first label's causal genes (default 1)",
    )
    p.add_argument(
        "--shared-programs",
        type=float,
        default=0.5,
        metavar="F",
        help="share of an extra target's causal genes taken from the first label's (default 0.5)",
    )
    p.add_argument(
        "--missing-fraction",
        type=float,
        default=0.0,
        metavar="F",
        help="share of samples with no value for the last extra target (default 0)",
    )
    p.add_argument(
        "--survival",
        action="store_true",
        help="add a time-to-event outcome (time, event columns) from the first label's causal "
        "programs: exponential times, independent censoring",
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `simulate` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subparsers of the ``deepgami`` command.
    """
    p = sub.add_parser(
        "simulate",
        help="write a planted-signal genotype + expression cohort with known causal links",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_simulation_output_arguments(p)
    p.add_argument("--n-samples", type=int, default=600, metavar="N", help="samples (default 600)")
    p.add_argument("--n-snps", type=int, default=1000, metavar="N", help="SNPs (default 1000)")
    p.add_argument(
        "--n-tfs", type=int, default=40, metavar="N", help="transcription factors (default 40)"
    )
    p.add_argument(
        "--n-genes",
        type=int,
        default=200,
        metavar="N",
        help="target genes = latent nodes of both priors (default 200)",
    )
    p.add_argument(
        "--classes",
        type=int,
        default=2,
        metavar="K",
        help="phenotype classes: 2 gives control/case, more give class0.. (default 2)",
    )
    _add_phenotype_arguments(p)
    p.add_argument(
        "--shared-signal",
        type=float,
        default=0.0,
        metavar="F",
        help="fraction of each TF's variance driven by 2-3 cis SNPs, in [0, 1]; "
        "with F>0 "
        "those SNPs become trans-eQTL edges of the TF's targets, so a gene's expression "
        "latent is partly predictable from its genotype latent (R^2 about F) "
        "(default 0)",
    )
    p.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        metavar="F",
        help="stratified share of samples with split=test (default 0.2)",
    )
    p.add_argument(
        "--n-causal-genes",
        type=int,
        default=None,
        metavar="N",
        help="genes whose programs drive the phenotype (default min(10, --n-genes))",
    )
    p.add_argument(
        "--effect-size",
        type=float,
        default=1.0,
        metavar="X",
        help="multiplier of the phenotype scores; 1 gives a Bayes AUC near 0.9 (default 1)",
    )
    p.add_argument(
        "--expression-noise",
        type=float,
        default=0.5,
        metavar="SD",
        help="noise SD of observed gene expression, in program SD units (default 0.5)",
    )
    for prior, what in (("eqtl", "cis-eQTL SNPs"), ("grn", "TFs")):
        p.add_argument(
            f"--{prior}-edges-per-gene",
            type=int,
            default=None,
            metavar="N",
            help=f"prior edges ({what}) per gene (default: 2-4, drawn per gene)",
        )
        p.add_argument(
            f"--{prior}-causal-per-gene",
            type=int,
            default=None,
            metavar="N",
            help=f"how many of a gene's {prior} edges are causal, the rest decoys (default: drawn, "
            "at least one of each); e.g. --eqtl-edges-per-gene 8 --eqtl-causal-per-gene 2",
        )
    p.add_argument(
        "--format",
        choices=("csv", "tsv", "parquet"),
        default="csv",
        help="format of genotype and expression matrices (default csv)",
    )
    p.set_defaults(func=_run)
