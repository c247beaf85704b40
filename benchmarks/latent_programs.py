"""How much of the true gene programs DeepGAMI's latent blocks hold, and how a head should read them
(issue 22; run by hand, never in the tests).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/latent_programs.py --setting binary_weak
        [--splits 2] [--out benchmarks/out/family]

On a family setting (benchmarks/family.py; its cohorts are simulated under --out/cohorts and
reused) and its first splits: fit one DeepGAMI network with the packaged defaults but no search and
no bagging, encode every sample, and give an L1 logistic regression (lasso for a numeric phenotype,
the family's wide log grid, inner CV) the latent blocks read three ways: the genotype block alone,
the expression block alone, both side by side (what a `latent_combine: concat` head reads) and their
sum per latent gene (`latent_combine: sum`). The oracle is the same regression handed the true
programs. Also printed: the mean correlation of each summed latent gene with its true program.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import family  # noqa: E402


def read_ways(prep: family.Prepared, tr: np.ndarray, te: np.ndarray, seed: int) -> dict:
    """The held-out metric of an L1 model on each way of reading the latent blocks of one split."""
    from deepgami.model import DeepGAMI

    split = np.full(len(prep.y), "test", dtype=object)
    split[tr] = "train"
    model = DeepGAMI.fit(replace(prep.data, split=split), {"cv_folds": 0, "bagging": 0}, seed=seed)
    blocks = [np.asarray(b) for b in model.latent_blocks(model.inputs(prep.data))[0]]
    summed = np.sum(blocks, axis=0)
    ways = {
        "oracle_programs": prep.programs,
        "summed_blocks": summed,
        "concatenated_blocks": np.hstack(blocks),
        **{f"{m}_block": b for m, b in zip(prep.data.modalities, blocks, strict=True)},
    }
    lasso = lambda Xt, yt: family._linear_cv(prep.task, "l1", Xt, yt, seed)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = {k: family._fit_score(prep, X, tr, te, lasso) for k, X in ways.items()}
    genes = list(program_names(prep))
    corr = [
        np.corrcoef(summed[:, j], prep.programs[:, genes.index(node)])[0, 1]
        for j, node in enumerate(model.latent_nodes)
    ]
    out["corr_summed_program"] = float(np.nanmean(corr))
    return out


def program_names(prep: family.Prepared) -> list[str]:
    """The genes of programs.csv's columns (prep.programs' column order)."""
    import pandas as pd

    sim_dir = prep.cohort.parent / prep.setting.name
    path = sim_dir / prep.truth["files"]["programs"]
    return list(pd.read_csv(path, index_col=0, nrows=0).columns)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setting", default="binary_weak", help="a benchmarks/family.py setting")
    parser.add_argument("--splits", type=int, default=2)
    parser.add_argument("--out", default=str(family.ROOT / "benchmarks" / "out" / "family"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    setting = next(s for s in family.SETTINGS if s.name == args.setting)
    work = Path(args.out) / "cohorts"
    work.mkdir(parents=True, exist_ok=True)
    prep = family.prepare(work, setting)
    splits = family.splits_of(prep, 5, args.seed)[: args.splits]  # the family's first splits
    for i, (tr, te) in enumerate(splits):
        row = read_ways(prep, tr, te, args.seed)
        print(
            json.dumps(
                {"setting": args.setting, "split": i, **{k: round(v, 4) for k, v in row.items()}}
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
