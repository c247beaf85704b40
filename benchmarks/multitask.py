"""Several targets and survival: the two acceptance measurements of issue 25, over repeated splits.

1. Multi-task: a simulated cohort with two targets sharing half of their causal programs
   (`simulate --targets 2 --shared-programs 0.5 --missing-fraction 0.3`, the second target missing
   for 30% of the samples). On each random split, DeepGAMI trained on both targets and trained on
   each target alone (the same settings and seed); the held-out AUC of each target, and the paired
   difference multi - single with the Nadeau-Bengio corrected interval. `--disjoint`: each split
   is its own 250 samples of one simulated population (no sample in two splits), so the splits
   are independent and the interval is the ordinary paired t.
2. Survival: a simulated cohort with a time-to-event outcome (`simulate --survival`). On each split:
   DeepGAMI (Cox head), the penalized Cox baseline (`deepgami.evaluation.baselines` "coxnet":
   scikit-survival's `CoxnetSurvivalAnalysis`, elastic net, alpha by 3-fold CV of Harrell's C on
   the training rows, on all features standardized on them) and the
   oracle Cox model on the true causal programs (`CoxPHSurvivalAnalysis`, alpha 1e-3, on
   programs.csv); Harrell's C-index on the held-out rows, paired differences as above.

    nice -n 10 python benchmarks/multitask.py --out benchmarks/results/multitask --splits 10

Writes ``multitask_splits.tsv`` and ``survival_splits.tsv`` (one row per split) and
``summary.tsv`` (mean difference, 95% interval, p per comparison). benchmarks/family.py's
`multitarget_shared` and `survival` settings use `only_target`, `harrell_c`, `coxnet_c` and
`oracle_cox_c` from here.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import mudata as md
import numpy as np
import pandas as pd

from deepgami import build_cohort, metrics
from deepgami.data.arrays import read_arrays
from deepgami.data.simulate import simulate_cohort
from deepgami.evaluation.significance import corrected_t
from deepgami.model import DeepGAMI
from deepgami.train import expand_grid

# Multi-task: a small cohort with many candidate genes, where choosing the causal ones is hard.
MULTITASK_SIZES = {
    "n_samples": 250,
    "n_snps": 800,
    "n_tfs": 30,
    "n_genes": 200,
    "n_causal_genes": 8,
}
SURVIVAL_SIZES = {"n_samples": 500, "n_snps": 400, "n_tfs": 20, "n_genes": 60, "n_causal_genes": 8}
PARAMS = {"cv_folds": 0, "bagging": 0, "max_epochs": 80, "patience": 15}
TEST_FRACTION = 0.2


def _cohort(sim, label_column, survival_columns=None) -> md.MuData:
    return build_cohort(
        {"snp": sim.genotype, "expr": sim.expression},
        sim.labels.drop(columns="split"),
        {"snp:eqtl": sim.eqtl, "expr:grn": sim.grn},
        label_column=label_column,
        survival_columns=survival_columns,
    )


def only_target(mdata: md.MuData, name: str) -> md.MuData:
    """The same cohort with one of its targets (the multi-task code path with one target).

    benchmarks/family.py's `multitarget_shared` setting fits its single-task arm with it too.

    Parameters
    ----------
    mdata
        A multi-target cohort.
    name
        The target to keep.

    Returns
    -------
    mudata.MuData
        A copy whose target table holds `name` only.
    """
    one = mdata.copy()
    table = one.uns["deepgami"]["targets"]
    k = list(table["name"]).index(name)
    one.uns["deepgami"]["targets"] = {key: [table[key][k]] for key in ("name", "kind", "columns")}
    return one


def _splits(
    n: int, n_splits: int, seed: int, disjoint: bool = False
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Random 80/20 splits of n rows; `disjoint`: of n_splits disjoint blocks of n / n_splits."""
    rng = np.random.default_rng(seed)
    size = n // n_splits if disjoint else n
    n_test = int(round(TEST_FRACTION * size))
    if disjoint:
        perm = rng.permutation(n)
        blocks = [perm[r * size : (r + 1) * size] for r in range(n_splits)]
    else:
        blocks = [rng.permutation(n) for _ in range(n_splits)]
    return [(np.sort(b[n_test:]), np.sort(b[:n_test])) for b in blocks]


def _fit_score(
    mdata: md.MuData, train: np.ndarray, test: np.ndarray, seed: int, params: dict | None = None
) -> dict:
    data = read_arrays(mdata)
    if (params or {}).get("tuned"):  # the shipped defaults: the search on the training rows
        from deepgami.model import tune_setting

        rest = {k: v for k, v in params.items() if k != "tuned"}
        setting, _ = tune_setting(data, train, rest, seed)
    else:
        setting = expand_grid({**PARAMS, **(params or {})}, dense=False)[0]
    model = DeepGAMI.fit_bagged(data, train, setting, seed)
    table = model.predict(mdata[mdata.obs_names[test]].copy())
    return model.metrics(table)


def multitask(
    n_splits: int, seed: int, params: dict | None = None, disjoint: bool = False
) -> pd.DataFrame:
    """Multi-task minus single-task held-out AUC per target and split.

    `disjoint`: one simulated population of n_splits cohorts of MULTITASK_SIZES' samples (the
    same programs and effects), each split 80/20 once, so no sample is in two splits.
    """
    sizes = dict(MULTITASK_SIZES)
    if disjoint:
        sizes["n_samples"] *= n_splits
    sim = simulate_cohort(
        **sizes,
        seed=seed,
        n_targets=2,
        shared_programs=0.5,
        missing_fraction=0.3,
        interaction=0,
    )
    both = _cohort(sim, "label,label2")
    rows = []
    for r, (train, test) in enumerate(_splits(both.n_obs, n_splits, seed, disjoint)):
        started = time.time()
        multi = _fit_score(both, train, test, seed + r, params)
        row = {"split": r}
        for name in ("label", "label2"):
            single = _fit_score(only_target(both, name), train, test, seed + r, params)
            row[f"{name}_multi_auc"] = multi[name]["auc"]
            row[f"{name}_single_auc"] = single[name]["auc"]
        row["seconds"] = round(time.time() - started, 1)
        print(row, flush=True)
        rows.append(row)
    return pd.DataFrame(rows)


def harrell_c(y: np.ndarray, risk: np.ndarray) -> float | None:
    """Harrell's C-index of predicted risks (`deepgami.metrics.harrell_c` on a structured array).

    Parameters
    ----------
    y
        Structured survival array (``event``, ``time``; `sksurv.util.Surv`).
    risk
        Predicted risk per row (higher: earlier event).

    Returns
    -------
    float or None
        The concordance index (None: no comparable pair).
    """
    return metrics.harrell_c(y["event"], y["time"], risk)


def coxnet_c(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, seed: int) -> float:
    """Held-out C-index of the registered penalized Cox baseline (evaluation.baselines "coxnet").

    Parameters
    ----------
    X
        Features, every row.
    y
        Structured survival array, every row.
    train, test
        Row positions.
    seed
        Seed of the inner CV.

    Returns
    -------
    float
        Harrell's C on the test rows of the model fitted on the training rows: scaler fitted on
        them, alpha by 3-fold CV of Harrell's C on them.
    """
    from sklearn.preprocessing import StandardScaler

    from deepgami.evaluation import baselines as bl

    scaler = StandardScaler().fit(X[train])
    fitted = bl.fit_baseline("coxnet", scaler.transform(X[train]), y[train], "survival", seed, 3)
    return harrell_c(y[test], bl.predict_scores(fitted, scaler.transform(X[test])))


def oracle_cox_c(programs: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> float:
    """Held-out C-index of the oracle Cox model handed the true causal programs.

    Parameters
    ----------
    programs
        The outcome's true causal programs (samples x genes, programs.csv's columns), every row.
    y
        Structured survival array, every row.
    train, test
        Row positions.

    Returns
    -------
    float
        Harrell's C on the test rows of `CoxPHSurvivalAnalysis` (alpha 1e-3: a near-unpenalized
        fit that still converges) fitted on the training rows.
    """
    from sksurv.linear_model import CoxPHSurvivalAnalysis

    fitted = CoxPHSurvivalAnalysis(alpha=1e-3).fit(programs[train], y[train])
    return float(fitted.score(programs[test], y[test]))


def survival(n_splits: int, seed: int) -> pd.DataFrame:
    """DeepGAMI, the penalized Cox baseline and the oracle Cox: held-out C-index per split."""
    from sksurv.util import Surv

    sim = simulate_cohort(**SURVIVAL_SIZES, seed=seed, survival=True, interaction=0)
    mdata = _cohort(sim, None, "time,event")
    y = Surv.from_arrays(sim.labels["event"].to_numpy() == 1, sim.labels["time"].to_numpy())
    X = np.hstack([sim.genotype.to_numpy(np.float64), sim.expression.to_numpy(np.float64)])
    causal = sim.truth["targets"]["survival"]["causal_genes"]
    P = sim.programs[causal].to_numpy()
    rows = []
    for r, (train, test) in enumerate(_splits(mdata.n_obs, n_splits, seed)):
        started = time.time()
        ours = _fit_score(mdata, train, test, seed + r)["survival"]
        row = {
            "split": r,
            "deepgami_c": ours["c_index"],
            "deepgami_c_uno": ours["c_index_uno"],
            "coxnet_c": coxnet_c(X, y, train, test, seed + r),
            "oracle_c": oracle_cox_c(P, y, train, test),
            "seconds": round(time.time() - started, 1),
        }
        print(row, flush=True)
        rows.append(row)
    return pd.DataFrame(rows)


def summarize(
    multi: pd.DataFrame | None, surv: pd.DataFrame | None, disjoint: bool = False
) -> pd.DataFrame:
    """Paired differences with the corrected 95% interval (`disjoint` multi-task splits share no
    sample and are independent: the ordinary paired t interval)."""
    ratio = TEST_FRACTION / (1 - TEST_FRACTION)
    pairs = []
    if multi is not None:
        for name in ("label2", "label"):
            d = multi[f"{name}_multi_auc"] - multi[f"{name}_single_auc"]
            pairs.append((f"{name}: multi - single AUC", d, disjoint))
    if surv is not None:
        pairs.append(("C: deepgami - oracle Cox", surv["deepgami_c"] - surv["oracle_c"], False))
        pairs.append(("C: deepgami - coxnet", surv["deepgami_c"] - surv["coxnet_c"], False))
    out = []
    for what, d, independent in pairs:
        mean, lo, hi, p = corrected_t(d.to_numpy(), 0.0 if independent else ratio)
        out.append(
            {
                "comparison": what,
                "n_splits": len(d),
                "interval": "paired t" if independent else "corrected",
                "mean": mean,
                "low": lo,
                "high": hi,
                "p": p,
            }
        )
    return pd.DataFrame(out)


def main() -> None:
    """Run the measurements and write the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/multitask"))
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=("multitask", "survival"), default=None)
    parser.add_argument(
        "--linear-head", action="store_true", help="multi-task: no hidden layer (hidden_layers: [])"
    )
    parser.add_argument(
        "--bagging",
        type=int,
        default=None,
        help="multi-task: networks added to each fit (default: 0, the fixed settings; the shipped "
        "default is 5)",
    )
    parser.add_argument(
        "--tuned",
        action="store_true",
        help="multi-task: the shipped defaults (tpe search by 5-fold CV, bagging 5) instead of "
        "the fixed settings",
    )
    parser.add_argument(
        "--disjoint",
        action="store_true",
        help="multi-task: each split is its own cohort of 250 samples drawn from one simulated "
        "population (no sample in two splits: independent splits, ordinary paired t interval)",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    multi = surv = None
    if args.only in (None, "multitask"):
        extra = {"hidden_layers": []} if args.linear_head else {}
        if args.bagging is not None:
            extra["bagging"] = args.bagging
        params = {**extra, "tuned": True} if args.tuned else extra
        multi = multitask(args.splits, args.seed, params, args.disjoint)
        name = "multitask_linear_head" if args.linear_head else "multitask"
        name += "_tuned" if args.tuned else ""
        name += f"_bagging{args.bagging}" if args.bagging is not None else ""
        name += "_disjoint" if args.disjoint else ""
        multi.to_csv(args.out / f"{name}_splits.tsv", sep="\t", index=False)
    if args.only in (None, "survival"):
        surv = survival(args.splits, args.seed)
        surv.to_csv(args.out / "survival_splits.tsv", sep="\t", index=False)
    summary = summarize(multi, surv, args.disjoint)
    suffix = ("_" + args.only if args.only else "") + ("_linear_head" if args.linear_head else "")
    suffix += "_tuned" if args.tuned else ""
    suffix += f"_bagging{args.bagging}" if args.bagging is not None else ""
    suffix += "_disjoint" if args.disjoint else ""
    summary.to_csv(args.out / f"summary{suffix}.tsv", sep="\t", index=False)
    print(summary.to_string(index=False))


if __name__ == "__main__":
    main()
