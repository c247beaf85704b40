"""How much of the true gene programs DeepGAMI's latent blocks hold, and how a head should read them
(issue 22; run by hand, never in the tests).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/latent_programs.py --setting binary_weak
        [--splits 2] [--encoder-init targets,joint] [--ridge 0.01] [--out benchmarks/out/family]

On a family setting (benchmarks/family.py; its cohorts are simulated under --out/cohorts and
reused) and its first splits: fit one DeepGAMI network per `--encoder-init` value with the packaged
defaults but no search and no bagging, encode every sample, and give an L1 logistic regression
(lasso for a numeric phenotype, the family's wide log grid, inner CV) the latent blocks read
several ways: the genotype block alone, the expression block alone, both side by side (what a
`latent_combine: concat` head reads) and their sum per latent gene (`latent_combine: sum`); and
the summed-blocks model scored on the genotype block plus the expression block imputed from it
(as DeepGAMI predicts from snp; fitted on that reading it would equal the genotype block alone,
of which a scalar imputer's block is an affine copy). The oracles are the same regression handed
the true programs and their genetic part. Also printed: DeepGAMI's own test metric (all
modalities, from snp), the mean correlation of each summed latent gene with its true program and
of the genotype reading with the program's genetic part, and the seconds per network.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import family  # noqa: E402


def read_ways(
    prep: family.Prepared, tr: np.ndarray, te: np.ndarray, seed: int, encoder_init: str
) -> dict:
    """The held-out metric of an L1 model on each way of reading the latent blocks of one split."""
    from deepgami.model import DeepGAMI
    from deepgami.model._evaluate import evaluate_rows

    split = np.full(len(prep.y), "test", dtype=object)
    split[tr] = "train"
    params = {"cv_folds": 0, "bagging": 0, "encoder_init": encoder_init}
    model = DeepGAMI.fit(replace(prep.data, split=split), params, seed=seed)
    encoded, imputed = model.latent_blocks(model.inputs(prep.data))
    blocks = [np.asarray(b) for b in encoded]
    summed = np.sum(blocks, axis=0)
    snp, expr = (prep.data.modalities.index(m) for m in ("snp", "expr"))
    # What a summed head reads from the genotype alone: the snp block plus the imputed expr block.
    from_snp = blocks[snp] + np.asarray(imputed[expr])
    ways = {
        "oracle_programs": prep.programs,
        "summed_blocks": summed,
        "concatenated_blocks": np.hstack(blocks),
        **{f"{m}_block": b for m, b in zip(prep.data.modalities, blocks, strict=True)},
        "oracle_genetic": prep.genetic,
    }
    lasso = lambda Xt, yt: family._linear_cv(prep.task, "l1", Xt, yt, seed)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = {k: family._fit_score(prep, X, tr, te, lasso) for k, X in ways.items()}
        # The summed-blocks model scored on the genotype reading: DeepGAMI's "from snp".
        out["summed_model_from_snp"] = _fit_apply(prep, summed, from_snp, tr, te, lasso)
    _, tables, _ = evaluate_rows(model, prep.data, te)
    for key, table in (("deepgami", "all"), ("deepgami_snp", "snp")):
        pred = family._table_pred(model, tables[table], prep.task)
        out[key] = family.score(prep.task, prep.y[te], pred)
    genes = list(program_names(prep))
    col = [genes.index(node) for node in model.latent_nodes]
    out["corr_summed_program"] = _mean_corr(summed, prep.programs[:, col])
    out["corr_from_snp_genetic"] = _mean_corr(from_snp, prep.genetic[:, col])
    return out


def _mean_corr(a: np.ndarray, b: np.ndarray) -> float:
    """The mean over columns of the correlation of `a` with `b`."""
    return float(np.nanmean([np.corrcoef(a[:, j], b[:, j])[0, 1] for j in range(a.shape[1])]))


def _fit_apply(prep, X_fit: np.ndarray, X_score: np.ndarray, tr, te, fit) -> float:
    """Scale and fit on `X_fit`'s training rows, score on `X_score`'s test rows."""
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(X_fit[tr])
    model = fit(scaler.transform(X_fit[tr]), prep.y[tr])
    Xte = scaler.transform(X_score[te])
    pred = model.predict(Xte) if prep.task == "regression" else model.predict_proba(Xte)
    return family.score(prep.task, prep.y[te], np.asarray(pred, dtype=np.float64))


def set_start_ridge(ridge: float) -> None:
    """Make `DeepGAMI.fit` start the encoders with ridge penalty `ridge` (not a params key: the
    library fixes it; this measures what another value would do)."""
    import functools

    import deepgami.model._fitting as fitting

    fitting.init_encoders_from_targets = functools.partial(
        fitting.init_encoders_from_targets, ridge=ridge
    )


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
    parser.add_argument(
        "--encoder-init",
        default="targets,joint",
        help="comma-separated encoder_init values, each fitted on the same splits",
    )
    parser.add_argument(
        "--ridge",
        type=float,
        default=None,
        help="the encoder start's ridge penalty per row (default: the library's, 0.01)",
    )
    args = parser.parse_args(argv)
    if args.ridge is not None:
        set_start_ridge(args.ridge)
    setting = next(s for s in family.SETTINGS if s.name == args.setting)
    work = Path(args.out) / "cohorts"
    work.mkdir(parents=True, exist_ok=True)
    prep = family.prepare(work, setting)
    splits = family.splits_of(prep, 5, args.seed)[: args.splits]  # the family's first splits
    for i, (tr, te) in enumerate(splits):
        for init in args.encoder_init.split(","):
            start = time.perf_counter()
            row = read_ways(prep, tr, te, args.seed, init)
            head = {"setting": args.setting, "split": i, "encoder_init": init}
            row = {k: round(v, 4) for k, v in row.items()}
            wall = {"seconds": round(time.perf_counter() - start, 1)}
            print(json.dumps({**head, **row, **wall}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
