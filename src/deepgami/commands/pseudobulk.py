"""`deepgami pseudobulk`: a cell-level .h5ad -> one donors x genes .h5ad per cell type."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from deepgami.commands import add_overwrite_argument
from deepgami.errors import InputError, claim_output

DESCRIPTION = """\
Sum the raw counts of a cell-level AnnData per donor and cell type (scanpy's sc.get.aggregate),
drop donor x cell type pairs with fewer than --min-cells cells, drop genes with a non-zero sum in
fewer than --min-donors-per-gene donors (per cell type), normalize, and write one .h5ad per cell
type with donors as samples: the expression modality of a per-cell-type cohort.

normalization (--normalize):
  log1p_cpm  log1p(count / donor library size * 1e6)   (default; log-CPM as in edgeR/limma-voom)
  cpm        count / donor library size * 1e6
  none       the raw sums
The library size is the donor's total over the genes kept for that cell type. The raw sums are
always kept in .layers['counts'].

files written into --out (replaced as a whole):
  <cell_type>.h5ad  donors x genes; .obs['n_cells'] = cells summed, .var['n_donors'] = donors with
                    a non-zero sum, X = normalized, layers['counts'] = raw sums. The file name is
                    the cell type with characters other than letters, digits and _.+- replaced by _.
  pseudobulk.json   settings, and per cell type the donors, cells and genes kept and dropped

examples:
  deepgami pseudobulk cells.h5ad --donor-key donor --cell-type-key cell_type --out pseudobulk/
  deepgami pseudobulk cells.h5ad --donor-key individualID --cell-type-key subclass \\
      --layer counts --min-cells 20 --min-donors-per-gene 0.25 --out pseudobulk/
  deepgami build --modality snp=genotype.csv --modality expr=pseudobulk/Microglia.h5ad \\
      --labels labels.csv --out microglia.h5mu

Bad input (missing file or key, counts that are not non-negative integers, a cell type with no
donor left) is a one-line error, exit code 2, and nothing is written.
"""


def _fraction_or_count(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not number >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (got {value})")
    return number


def run(args: argparse.Namespace) -> int:
    """Read the cells, pseudobulk them, write every output atomically.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``deepgami pseudobulk`` arguments.

    Returns
    -------
    int
        The exit code, 0.
    """
    import anndata as ad

    from deepgami.data.pseudobulk import pseudobulk

    path, out = Path(args.cells), Path(args.out)
    claim = claim_output(out, "pseudobulk", [path], args.overwrite)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        cells = ad.read_h5ad(path)
    except Exception as err:  # h5py/anndata raise many types for corrupt files
        raise InputError(path, f"cannot read h5ad: {str(err).splitlines()[0]}") from None
    result, report = pseudobulk(
        cells,
        args.donor_key,
        args.cell_type_key,
        layer=args.layer,
        min_cells=args.min_cells,
        min_donors_per_gene=args.min_donors_per_gene,
        normalize=args.normalize,
        path=path,
    )
    report = {"input": path.name, **report}
    with claim.atomic() as tmp:
        tmp.mkdir()
        for cell_type, adata in result.items():
            adata.write_h5ad(tmp / report["cell_types"][cell_type]["file"])
        (tmp / "pseudobulk.json").write_text(json.dumps(report, indent=2) + "\n")
    for cell_type, entry in report["cell_types"].items():
        print(
            f"{cell_type}: {entry['n_donors']} donors, {entry['n_genes']} genes, {entry['n_cells']} cells "
            f"({len(entry['dropped_donors'])} donors with < {args.min_cells} cells dropped) -> "
            f"{out / entry['file']}",
            file=sys.stderr,
        )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `pseudobulk` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subparsers of the ``deepgami`` command.
    """
    p = sub.add_parser(
        "pseudobulk",
        help="sum a cell-level .h5ad per donor and cell type: one expression file per cell type",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "cells", metavar="CELLS.h5ad", help="cells x genes AnnData with raw integer counts"
    )
    p.add_argument(
        "--donor-key", required=True, metavar="KEY", help=".obs column with each cell's donor"
    )
    p.add_argument(
        "--cell-type-key",
        required=True,
        metavar="KEY",
        help=".obs column with each cell's cell type",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output directory (replaces a previous pseudobulk output; see --overwrite)",
    )
    add_overwrite_argument(p)
    p.add_argument("--layer", metavar="L", help="layer with the raw counts (default: X)")
    p.add_argument(
        "--min-cells",
        type=int,
        default=10,
        metavar="N",
        help="drop donor x cell type pairs with fewer cells (default 10)",
    )
    p.add_argument(
        "--min-donors-per-gene",
        type=_fraction_or_count,
        default=0.1,
        metavar="F",
        help="keep genes with a non-zero sum in at least F donors of the cell type: a fraction "
        "when F < 1, else a count (default 0.1)",
    )
    p.add_argument(
        "--normalize",
        choices=("log1p_cpm", "cpm", "none"),
        default="log1p_cpm",
        help="normalization of the sums (default log1p_cpm)",
    )
    p.set_defaults(func=run)
