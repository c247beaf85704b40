"""DeepGAMI against tuned baselines on repeated stratified splits, paired over splits (run by hand).

    .venv/bin/python benchmarks/repeated_splits.py [--cohorts rosmap,rosmap3,sim,shared] [--splits 20]
        [--params PARAMS.yaml] [--out benchmarks/out/repeated_splits]

One 5-fold CV of 245 samples has a standard error of ~0.03 AUC, too coarse to tell a 0.02 deficit
from a tie. Here every method is fitted on exactly the same training rows of `--splits` random
stratified 70/30 splits, and each method is compared with the L2 logistic regression by the paired
mean difference over splits, with the Nadeau-Bengio corrected resampled t interval (the training
sets of repeated splits overlap, so the naive paired t interval is far too narrow).

Cohorts (made as users make them, `deepgami simulate` / `deepgami build`):

- rosmap: the bundled ROSMAP data (deepgami.datasets.rosmap_dir()), mrna + meth, no prior (dense encoders). The shipped split column
  is ignored: the splits are drawn over all 245 samples.
- rosmap3: the same with miRNA, the bundle's three omics (mrna + meth + mirna).
- sim: `deepgami simulate` defaults (600 samples, seed 0), priors eqtl (snp) and grn (expr). Extra
  rows: the Bayes-optimal AUC of each test set (truth_probabilities.csv) and an oracle L1 logistic
  regression handed the true latent programs of every gene (as in benchmarks/accuracy.py; the
  inputs' standardization fitted on the training rows).
- shared: the same with `--shared-signal 0.5` (genotype drives part of TF expression); the row of
  interest is genotype only with the expression block imputed minus genotype only with mean-fill.

Methods per split: DeepGAMI.fit (the packaged defaults, or `--params`; its own inner CV on the
training rows), scored with all modalities, with each single modality (the other block imputed) and
with each single modality and mean-fill; L2 logistic regression and RBF SVM from
`deepgami.baselines` (tuned by inner 5-fold CV on the training rows, scaler fitted on them), on the
concatenated modalities and, for logistic regression, on each modality alone.
Writes `repeated_splits.json` (every split's figures and the summaries) and prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from deepgami.datasets import rosmap_dir

ROOT = Path(__file__).resolve().parents[1]
ROSMAP = Path(os.environ.get("DEEPGAMI_ROSMAP", rosmap_dir()))  # default: the bundled copy
# The ROSMAP cohorts: mrna + meth (the figures), and with miRNA, the bundle's three omics.
ROSMAP_OMICS = {"rosmap": ("mrna", "meth"), "rosmap3": ("mrna", "meth", "mirna")}
TEST_FRACTION = 0.3


def corrected_resampled_t(
    diffs: Sequence[float], n_train: int, n_test: int, level: float = 0.95
) -> tuple[float, float, float]:
    """Mean of paired differences over repeated random splits and its corrected resampled t interval.

    Nadeau & Bengio (2003), "Inference for the generalization error", Machine Learning 52:239-281:
    with J splits whose training sets overlap, the variance of the mean difference is not s^2 / J
    but (1 / J + n_test / n_train) * s^2 (s^2 the sample variance of the J differences); the
    interval uses Student's t with J - 1 degrees of freedom.

    Parameters
    ----------
    diffs
        One paired difference (method A minus method B) per split.
    n_train, n_test
        Training and test set sizes of each split.
    level
        Coverage of the two-sided interval.

    Returns
    -------
    tuple of float
        (mean, lower, upper); lower = upper = mean with fewer than two splits.
    """
    from scipy import stats

    d = np.asarray([v for v in diffs if v is not None and np.isfinite(v)], dtype=np.float64)
    if len(d) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(d.mean())
    if len(d) < 2:
        return mean, mean, mean
    se = np.sqrt((1.0 / len(d) + n_test / n_train) * d.var(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, df=len(d) - 1) * se)
    return mean, mean - half, mean + half


# -- cohorts --------------------------------------------------------------------------------------


def cli(*args: object) -> None:
    from deepgami.cli import main

    code = main([str(a) for a in args])
    if code != 0:
        raise SystemExit(f"deepgami {' '.join(map(str, args))} failed with exit code {code}")


def build_cohort(work: Path, name: str) -> tuple[Path, Path | None]:
    """The cohort file (and the simulation folder, for simulated cohorts)."""
    cohort = work / f"{name}.h5mu"
    if name in ROSMAP_OMICS:
        if not cohort.exists():
            cli(
                "build",
                *(f"--modality={m}={ROSMAP / f'{m}.csv'}" for m in ROSMAP_OMICS[name]),
                "--labels",
                ROSMAP / "labels.csv",
                "--out",
                cohort,
                "--quiet",
            )
        return cohort, None
    sim_args = {"sim": [], "shared": ["--shared-signal", "0.5"]}[name]
    sim_dir = work / name
    if not cohort.exists():
        cli("simulate", "--out", sim_dir, "--seed", "0", "--overwrite", *sim_args)
        cli(
            "build",
            "--modality",
            f"snp={sim_dir / 'genotype.csv'}",
            "--modality",
            f"expr={sim_dir / 'expression.csv'}",
            "--labels",
            sim_dir / "labels.csv",
            "--prior",
            f"snp:eqtl={sim_dir / 'eqtl.tsv'}",
            "--prior",
            f"expr:grn={sim_dir / 'grn.tsv'}",
            "--out",
            cohort,
            "--quiet",
        )
    return cohort, sim_dir


def true_programs(sim_dir: Path, obs_names: Sequence[str], train: np.ndarray) -> np.ndarray:
    """Each gene's true latent program (causal prior weights x standardized SNPs and TFs), rows in
    `obs_names` order; standardization from the `train` positions only."""
    import pandas as pd

    geno = pd.read_csv(sim_dir / "genotype.csv", index_col=0).loc[list(obs_names)]
    expr = pd.read_csv(sim_dir / "expression.csv", index_col=0).loc[list(obs_names)]
    eqtl = pd.read_csv(sim_dir / "eqtl.tsv", sep="\t")
    grn = pd.read_csv(sim_dir / "grn.tsv", sep="\t")

    def z(frame: pd.DataFrame) -> pd.DataFrame:
        fit = frame.iloc[train]
        return (frame - fit.mean()) / fit.std().replace(0, 1)

    snps, tfs = z(geno), z(expr[sorted(set(grn["source"]))])
    genes = sorted(set(grn["target"]))
    programs = pd.DataFrame(0.0, index=geno.index, columns=genes)
    for table, inputs, kinds in ((eqtl, snps, ("cis",)), (grn, tfs, ("causal",))):
        for r in table[table["kind"].isin(kinds)].itertuples(index=False):
            programs[r.target] += r.weight * inputs[r.source]
    return programs.to_numpy()


# -- one split ------------------------------------------------------------------------------------


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score))


def baseline_auc(
    name: str,
    X: np.ndarray,
    codes: np.ndarray,
    tr: np.ndarray,
    te: np.ndarray,
    seed: int,
    fast: bool = False,
) -> float:
    """Held-out AUC of a `deepgami.baselines` method tuned by inner 5-fold CV on the training rows."""
    from sklearn.preprocessing import StandardScaler

    from deepgami.evaluation.baselines import fit_baseline, predict_scores

    scaler = StandardScaler().fit(X[tr])
    fitted = fit_baseline(
        name, scaler.transform(X[tr]), codes[tr], seed=seed, inner_folds=5, fast=fast
    )
    return _auc(codes[te] == 1, predict_scores(fitted, scaler.transform(X[te]), 2)[:, 1])


def oracle_auc(programs: np.ndarray, codes: np.ndarray, tr: np.ndarray, te: np.ndarray) -> float:
    """L1 logistic regression on the true programs, C by inner 5-fold CV (AUC) on the training rows."""
    from sklearn.linear_model import LogisticRegressionCV

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lr = LogisticRegressionCV(
            Cs=20,
            cv=5,
            penalty="l1",
            solver="saga",
            max_iter=5000,
            scoring="roc_auc",
            random_state=0,
        ).fit(programs[tr], codes[tr])
    return _auc(codes[te] == 1, lr.predict_proba(programs[te])[:, 1])


def run_split(
    data, codes: np.ndarray, tr: np.ndarray, te: np.ndarray, params: dict, seed: int, extras: dict
) -> dict:
    """Every method's held-out AUC on one split (DeepGAMI and baselines on the same rows)."""
    from deepgami.model import DeepGAMI
    from deepgami.model._evaluate import evaluate_rows

    split = np.full(len(data.obs_names), "test", dtype=object)
    split[tr] = "train"
    start = time.perf_counter()
    model = DeepGAMI.fit(replace(data, split=split), params, seed=seed)
    out: dict = {"deepgami_seconds": round(time.perf_counter() - start, 2)}
    flat, _, _ = evaluate_rows(model, data, te)
    mods = data.modalities
    out["deepgami"] = flat["all_auc"]
    for m in mods:
        out[f"deepgami_{m}_imputed"] = flat[f"{m}_auc"]
        out[f"deepgami_{m}_meanfill"] = flat[f"{m}_meanfill_auc"]
        out[f"r2_{m}"] = flat.get(f"r2_{m}")
    out["setting"] = {
        k: model.config["setting"][k]
        for k in ("weight_decay", "early_stopping_on", "hidden_layers")
    }
    X = [np.asarray(x, dtype=np.float64) for x in data.X]
    both = np.hstack(X)
    out["lr"] = baseline_auc("logistic_regression", both, codes, tr, te, seed)
    if extras.get("single_lr"):
        for m, x in zip(mods, X):
            out[f"lr_{m}"] = baseline_auc("logistic_regression", x, codes, tr, te, seed)
    if extras.get("svm"):
        out["svm"] = baseline_auc("svm", both, codes, tr, te, seed, fast=True)
    if "sim_dir" in extras:
        out["oracle_l1"] = oracle_auc(
            true_programs(extras["sim_dir"], data.obs_names, tr), codes, tr, te
        )
        out["bayes"] = _auc(codes[te] == 1, extras["truth_score"][te])
    return out


# -- summary --------------------------------------------------------------------------------------

def method_labels(mods: list[str]) -> dict[str, str]:
    """Every method's key and label for a cohort of modalities `mods` (two or more)."""
    every = " + ".join(mods)
    labels = {"deepgami": f"DeepGAMI, {every}"}
    for m in mods:
        others = " + ".join(o for o in mods if o != m)
        labels[f"deepgami_{m}_imputed"] = f"DeepGAMI, {m} only ({others} imputed)"
        labels[f"deepgami_{m}_meanfill"] = f"DeepGAMI, {m} only ({others} mean-fill)"
    labels["lr"] = f"L2 logistic regression, {every}"
    labels.update({f"lr_{m}": f"L2 logistic regression, {m} only" for m in mods})
    labels["svm"] = f"RBF SVM, {every}"
    labels["oracle_l1"] = "oracle: L1 logistic regression on the true programs"
    labels["bayes"] = "Bayes-optimal (truth)"
    return labels


def summarize(splits: list[dict], mods: list[str], n_train: int, n_test: int) -> dict:
    """Mean AUC per method, paired differences (to LR, and the contrasts the issue asks about)
    with corrected resampled t intervals."""
    labels = method_labels(mods)
    rows = []
    for key in (k for k in labels if k in splits[0]):
        values = np.array([s[key] for s in splits], dtype=np.float64)
        mean, lo, hi = corrected_resampled_t([s[key] - s["lr"] for s in splits], n_train, n_test)
        rows.append(
            {
                "key": key,
                "label": labels[key],
                "mean": float(values.mean()),
                "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                "diff_lr": mean,
                "diff_lr_lo": lo,
                "diff_lr_hi": hi,
            }
        )
    every, contrasts = " + ".join(mods), {}
    for m in mods:
        others = " + ".join(o for o in mods if o != m)
        contrasts[f"DeepGAMI {every} minus {m} only ({others} imputed)"] = (
            "deepgami",
            f"deepgami_{m}_imputed",
        )
    for m in mods:
        contrasts[f"DeepGAMI {m} only: imputed minus mean-fill"] = (
            f"deepgami_{m}_imputed",
            f"deepgami_{m}_meanfill",
        )
    contrasts[f"DeepGAMI {every} minus LR {mods[0]} only"] = ("deepgami", f"lr_{mods[0]}")
    contrasts["DeepGAMI minus oracle"] = ("deepgami", "oracle_l1")
    contrasts["DeepGAMI minus Bayes"] = ("deepgami", "bayes")
    paired = []
    for label, (x, y) in contrasts.items():
        if x in splits[0] and y in splits[0]:
            mean, lo, hi = corrected_resampled_t([s[x] - s[y] for s in splits], n_train, n_test)
            paired.append({"contrast": label, "mean": mean, "lo": lo, "hi": hi})
    return {
        "n_splits": len(splits),
        "n_train": n_train,
        "n_test": n_test,
        "methods": rows,
        "paired": paired,
    }


def markdown(name: str, summary: dict) -> str:
    lines = [
        (
            f"**{name}**: {summary['n_splits']} stratified 70/30 splits ({summary['n_train']} train / "
            f"{summary['n_test']} test); 95% intervals: Nadeau-Bengio corrected resampled t"
        ),
        "",
        "| method | mean AUC (sd over splits) | paired difference to LR [95% CI] |",
        "| --- | ---: | ---: |",
    ]
    for r in summary["methods"]:
        diff = (
            ""
            if r["key"] == "lr"
            else f"{r['diff_lr']:+.3f} [{r['diff_lr_lo']:+.3f}, {r['diff_lr_hi']:+.3f}]"
        )
        lines.append(f"| {r['label']} | {r['mean']:.3f} ({r['sd']:.3f}) | {diff} |")
    lines += ["", "| paired contrast | mean [95% CI] |", "| --- | ---: |"]
    for p in summary["paired"]:
        lines.append(f"| {p['contrast']} | {p['mean']:+.3f} [{p['lo']:+.3f}, {p['hi']:+.3f}] |")
    return "\n".join(lines)


def run_cohort(work: Path, name: str, n_splits: int, params: dict, seed: int, extras: dict) -> dict:
    """Every method on `n_splits` stratified 70/30 splits of cohort `name` (built under `work`).

    Parameters
    ----------
    work
        Folder of the built cohorts.
    name
        rosmap, rosmap3, sim or shared.
    n_splits
        Number of random stratified splits.
    params
        DeepGAMI parameters (full, from `load_params`).
    seed
        Seed of the splits; split i fits DeepGAMI with seed + i.
    extras
        ``svm`` and ``single_lr`` (bool): which baselines besides the L2 logistic regression.

    Returns
    -------
    dict
        ``cohort``, ``splits`` (every split's figures), ``summary`` (see `summarize`) and
        ``wall_seconds``.
    """
    import pandas as pd
    from sklearn.model_selection import StratifiedShuffleSplit

    from deepgami.data.arrays import read_arrays
    from deepgami.data.cohort import read_cohort

    cohort, sim_dir = build_cohort(work, name)
    data = read_arrays(read_cohort(cohort))
    codes = np.array([data.classes.index(v) for v in data.labels], dtype=np.int64)
    extras = dict(extras)
    if sim_dir is not None:
        truth = pd.read_csv(sim_dir / "truth_probabilities.csv", index_col=0).loc[
            list(data.obs_names)
        ]
        extras["sim_dir"] = sim_dir
        extras["truth_score"] = truth[f"prob_{data.classes[1]}"].to_numpy()
    sss = StratifiedShuffleSplit(n_splits=n_splits, test_size=TEST_FRACTION, random_state=seed)
    per_split, start = [], time.perf_counter()
    for i, (tr, te) in enumerate(sss.split(np.zeros(len(codes)), codes)):
        tr, te = np.sort(tr), np.sort(te)
        per_split.append(run_split(data, codes, tr, te, params, seed + i, extras))
        shown = {
            k: v
            for k, v in per_split[-1].items()
            if isinstance(v, float) and not k.startswith("r2")
        }
        print(
            f"{name} split {i}: " + ", ".join(f"{k} {v:.3f}" for k, v in shown.items()),
            file=sys.stderr,
            flush=True,
        )
    return {
        "cohort": str(cohort),
        "splits": per_split,
        "summary": summarize(per_split, data.modalities, len(tr), len(te)),
        "wall_seconds": round(time.perf_counter() - start, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cohorts", default="rosmap,sim,shared", help="comma-separated: rosmap (mrna + meth), rosmap3 (and mirna), sim, shared"
    )
    parser.add_argument(
        "--splits", type=int, default=20, help="random 70/30 splits per cohort (default 20)"
    )
    parser.add_argument(
        "--sim-splits",
        type=int,
        default=None,
        help="splits for the simulated cohorts (default: --splits)",
    )
    parser.add_argument(
        "--params", default=None, help="DeepGAMI params YAML (default: the packaged defaults)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-baselines", action="store_true", help="only LR (no SVM, no single-modality LR)"
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "repeated_splits"))
    args = parser.parse_args(argv)

    import torch

    from deepgami.train.params import load_params

    torch.set_num_threads(1)
    params = load_params(args.params)
    out = Path(args.out)
    work = out / "cohorts"
    work.mkdir(parents=True, exist_ok=True)
    results_path = out / "repeated_splits.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    tables = []
    for name in args.cohorts.split(","):
        n_splits = args.splits if name in ROSMAP_OMICS or args.sim_splits is None else args.sim_splits
        extras: dict = {"svm": not args.no_baselines, "single_lr": not args.no_baselines}
        results[name] = run_cohort(work, name, n_splits, params, args.seed, extras)
        results[name]["params"] = args.params
        results_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
        tables.append(
            markdown(name, results[name]["summary"])
            + f"\n\n({results[name]['wall_seconds']} s wall)"
        )
        print(tables[-1], file=sys.stderr, flush=True)
    print("\n\n".join(tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
