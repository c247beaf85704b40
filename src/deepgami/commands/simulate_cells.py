"""`deepgami simulate-cells`: a single-cell cohort (cells.h5ad + genotype + labels) with known signal cell types."""

from __future__ import annotations

import argparse
import shlex
import sys

from deepgami.commands import add_simulation_output_arguments

DESCRIPTION = """\
Simulate a single-cell cohort with a known answer: donors with a phenotype (control/case,
balanced) and SNP dosages, and cells of --cell-types cell types with raw integer counts
(negative binomial). Only the --signal-cell-types (default: the first) carry the phenotype: in
them, --n-signal-genes genes move by +-effect/2 on the log scale with the phenotype. cis-eQTLs
make the genotype drive part of the expression of other genes, in every cell type, without
driving the phenotype. Cell-type proportions vary by donor. Prints a one-row samplesheet for
`deepgami run` (save it as samplesheet.csv inside --out).

files written into --out:
  cells.h5ad     cells x genes, raw counts in X (int32, sparse), .obs['donor'], .obs['cell_type']
  genotype.csv   sample (donor) + one column per SNP, dosages 0/1/2
  labels.csv     sample,label,split (control/case; train/test) per donor
  eqtl.tsv       source,target,beta: the simulated cis-eQTLs
  truth.json     signal cell types and genes, eQTLs, settings

cell types: Excitatory, Inhibitory, Microglia, Oligodendrocyte, Astrocyte, OPC, then CellType7..

examples:
  deepgami simulate-cells --out sc/ --cell-types 3 --signal-cell-types Microglia
  deepgami pseudobulk sc/cells.h5ad --donor-key donor --cell-type-key cell_type --out sc/pseudobulk
"""


def _run(args: argparse.Namespace) -> int:
    from deepgami.data.simulate_cells import simulate_cells
    from deepgami.errors import claim_output

    claim = claim_output(args.out, "simulation-cells", (), args.overwrite)
    signal = [c.strip() for v in args.signal_cell_types or [] for c in v.split(",") if c.strip()]
    paths = simulate_cells(
        args.out,
        overwrite=args.overwrite,
        seed=args.seed,
        n_donors=args.n_donors,
        cells_per_donor=args.cells_per_donor,
        cell_types=args.cell_types,
        signal_cell_types=signal,
        n_genes=args.n_genes,
        n_signal_genes=args.n_signal_genes,
        n_snps=args.n_snps,
        effect_size=args.effect_size,
        donor_sd=args.donor_sd,
        test_fraction=args.test_fraction,
    )
    claim.mark()
    print(
        f"simulated {args.n_donors} donors x {args.cell_types} cell types; cells in {paths['cells']}",
        file=sys.stderr,
    )
    q = shlex.quote
    print("id,labels,modalities,pseudobulk,donor_key,cell_type_key")
    print(
        f"sim,{q(paths['labels'].name)},snp={q(paths['genotype'].name)};expr={q(paths['cells'].name)},"
        "expr,donor,cell_type"
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `simulate-cells` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subparsers of the ``deepgami`` command.
    """
    p = sub.add_parser(
        "simulate-cells",
        help="write a single-cell cohort (cells.h5ad, genotype, labels) where chosen cell types carry the signal",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_simulation_output_arguments(p)
    p.add_argument("--n-donors", type=int, default=200, metavar="N", help="donors (default 200)")
    p.add_argument(
        "--cells-per-donor",
        type=int,
        default=90,
        metavar="N",
        help="cells per donor over all cell types (default 90)",
    )
    p.add_argument("--cell-types", type=int, default=3, metavar="K", help="cell types (default 3)")
    p.add_argument(
        "--signal-cell-types",
        action="append",
        metavar="NAME",
        help="cell types that carry the phenotype signal; repeat or comma-separate "
        "(default: the first cell type)",
    )
    p.add_argument("--n-genes", type=int, default=200, metavar="N", help="genes (default 200)")
    p.add_argument(
        "--n-signal-genes",
        type=int,
        default=20,
        metavar="N",
        help="genes whose expression in the signal cell types follows the phenotype (default 20)",
    )
    p.add_argument("--n-snps", type=int, default=200, metavar="N", help="SNPs (default 200)")
    p.add_argument(
        "--effect-size",
        type=float,
        default=0.5,
        metavar="X",
        help="log fold change case vs control of each signal gene (default 0.5)",
    )
    p.add_argument(
        "--donor-sd",
        type=float,
        default=0.3,
        metavar="SD",
        help="donor-level noise SD of log expression (default 0.3)",
    )
    p.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        metavar="F",
        help="stratified share of donors with split=test (default 0.2)",
    )
    p.set_defaults(func=_run)
