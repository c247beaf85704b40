"""Accuracy of DeepGAMI against the acceptance figures (run by hand; never part of the tests).

    .venv/bin/python benchmarks/accuracy.py --out benchmarks/out/accuracy [--only sim,multi,shared,rosmap]

Cohorts are made the way users make them: `deepgami simulate` then `deepgami build` (priors eqtl and
grn), and `deepgami build` on the bundled ROSMAP data (mrna + meth, no priors). Every DeepGAMI figure
is from `DeepGAMI.fit` with the packaged default parameters (k-fold CV grid search on training rows
only, then refit) and seed 0.

- sim: binary simulated cohort of default size; held-out (split == test) AUC with both modalities,
  with genotype only (expression block imputed) and with genotype only and mean-fill, beside the
  Bayes-optimal AUC in truth.json and beside oracle logistic regressions that are handed the true
  gene programs (an upper bound on what any model learns from this many samples).
- sim_large (not in the default --only): the same generator at 3,000 samples, to show how far
  the gap to the Bayes-optimal AUC is a matter of sample size.
- multi: the same with --classes 3: balanced accuracy against chance (1/3) and Bayes.
- shared: --shared-signal 1.0 (every TF's expression is genetic): held-out R^2 of the imputed
  expression block and genotype-only AUC against mean-fill; shared_total (not in the default
  --only) the same with early stopping on the total validation loss (task + lambda * auxiliary).
- rosmap: 5-fold CV on the 245 samples; in each fold DeepGAMI.fit (with its own inner CV) and a
  logistic regression tuned by inner CV (C on a grid of 20, scaler fitted on the fold's training
  rows), same folds; mean AUC and balanced accuracy, mrna-only (meth imputed) and the held-out R^2
  of the meth block.
Writes accuracy.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from deepgami.datasets import rosmap_dir

ROOT = Path(__file__).resolve().parents[1]
# DEEPGAMI_ROSMAP: another copy of the ROSMAP folder.
ROSMAP = Path(os.environ.get("DEEPGAMI_ROSMAP", rosmap_dir()))  # default: the bundled copy


def cli(*args: str) -> None:
    from deepgami.cli import main

    code = main([str(a) for a in args])
    if code != 0:
        raise SystemExit(f"deepgami {' '.join(map(str, args))} failed with exit code {code}")


def simulated_cohort(work: Path, name: str, *sim_args: str) -> tuple[Path, dict]:
    """`deepgami simulate` + `deepgami build`; returns the cohort path and truth.json."""
    sim_dir, cohort = work / name, work / f"{name}.h5mu"
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
    return cohort, json.loads((sim_dir / "truth.json").read_text())


def rosmap_cohort(work: Path) -> Path:
    cohort = work / "rosmap.h5mu"
    if not cohort.exists():
        cli(
            "build",
            "--modality",
            f"mrna={ROSMAP / 'mrna.csv'}",
            "--modality",
            f"meth={ROSMAP / 'meth.csv'}",
            "--labels",
            ROSMAP / "labels.csv",
            "--out",
            cohort,
            "--quiet",
        )
    return cohort


def _held_out(model, data, rows) -> dict:
    flat, _, r2 = model._evaluate(data, rows)
    return {**flat, **{f"r2_{m}": v for m, v in r2.items()}}


def _fit_on(data, train_rows, seed: int = 0):
    """DeepGAMI.fit with default params on `train_rows` only (split relabelled, other rows 'test')."""
    from dataclasses import replace

    from deepgami.model import DeepGAMI

    split = np.full(len(data.obs_names), "test", dtype=object)
    split[train_rows] = "train"
    return DeepGAMI.fit(replace(data, split=split), seed=seed)


def oracle_aucs(sim_dir: Path, truth: dict) -> dict:
    """Logistic regressions given the true gene programs (standardized SNPs and TFs through the
    causal prior weights): all 200 programs (L2, and L1) and only the causal genes' programs."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import roc_auc_score

    geno = pd.read_csv(sim_dir / "genotype.csv", index_col=0)
    expr = pd.read_csv(sim_dir / "expression.csv", index_col=0)
    labels = pd.read_csv(sim_dir / "labels.csv", index_col=0).loc[geno.index]
    eqtl = pd.read_csv(sim_dir / "eqtl.tsv", sep="\t")
    grn = pd.read_csv(sim_dir / "grn.tsv", sep="\t")
    z = (geno - geno.mean()) / geno.std().replace(0, 1)
    tfs = sorted(set(grn["source"]))
    x = (expr[tfs] - expr[tfs].mean()) / expr[tfs].std()
    genes = sorted(set(grn["target"]))
    programs = pd.DataFrame(0.0, index=geno.index, columns=genes)
    for table, inputs, kinds in ((eqtl, z, ("cis",)), (grn, x, ("causal",))):
        for r in table[table["kind"].isin(kinds)].itertuples(index=False):
            programs[r.target] += r.weight * inputs[r.source]
    y = (labels["label"] == truth["classes"][1]).to_numpy().astype(int)
    train = (labels["split"] == "train").to_numpy()
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key, cols, kw in (
            ("oracle_all_programs_l2", genes, {}),
            ("oracle_all_programs_l1", genes, {"penalty": "l1", "solver": "saga"}),
            ("oracle_causal_programs", truth["causal_genes"], {}),
        ):
            X = programs[cols].to_numpy()
            lr = LogisticRegressionCV(Cs=20, max_iter=5000, scoring="roc_auc", **kw).fit(
                X[train], y[train]
            )
            out[key] = float(roc_auc_score(y[~train], lr.predict_proba(X[~train])[:, 1]))
    return out


def bench_sim(
    work: Path, name: str, *sim_args: str, oracle: bool = False, params: dict | None = None
) -> dict:
    from deepgami.data.cohort import read_cohort
    from deepgami.data.arrays import read_arrays
    from deepgami.model import DeepGAMI
    from deepgami.train import load_params

    cohort, truth = simulated_cohort(work, name, *sim_args)
    mdata = read_cohort(cohort)
    data = read_arrays(mdata)
    start = time.perf_counter()
    model = DeepGAMI.fit(data, load_params(None, params), seed=0)
    seconds = time.perf_counter() - start
    test = np.flatnonzero(data.split == "test")
    out = {
        "cohort": str(cohort),
        "n_train": int((data.split == "train").sum()),
        "n_test": int(len(test)),
        "fit_seconds": round(seconds, 1),
        "setting": model.config["setting"],
        "bayes_optimal_test_auc": truth["bayes_optimal_test_auc"],
        "bayes_optimal_test_balanced_accuracy": truth["bayes_optimal_test_balanced_accuracy"],
        "held_out": _held_out(model, data, test),
        "imputation_cv": model.imputation["blocks"],
    }
    if oracle:
        out["oracle"] = oracle_aucs(work / name, truth)
    return out


def bench_rosmap(work: Path, folds: int = 5) -> dict:
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score
    from sklearn.preprocessing import StandardScaler

    from deepgami.data.cohort import read_cohort
    from deepgami.data.arrays import read_arrays
    from deepgami.train import cv_splits

    data = read_arrays(read_cohort(rosmap_cohort(work)))
    y = data.labels
    positive = data.classes[1]
    X = np.hstack(data.X)
    rows = []
    for f, (tr, te) in enumerate(cv_splits(y, folds, seed=0, stratify=True)):
        start = time.perf_counter()
        model = _fit_on(data, tr, seed=0)
        dg = _held_out(model, data, te)
        dg_seconds = time.perf_counter() - start
        scaler = StandardScaler().fit(X[tr])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lr = LogisticRegressionCV(Cs=20, max_iter=5000, scoring="roc_auc").fit(
                scaler.transform(X[tr]), y[tr]
            )
        proba = lr.predict_proba(scaler.transform(X[te]))[:, list(lr.classes_).index(positive)]
        rows.append(
            {
                "fold": f,
                "deepgami_seconds": round(dg_seconds, 1),
                "setting": model.config["setting"],
                "deepgami_auc": dg["all_auc"],
                "deepgami_balanced_accuracy": dg["all_balanced_accuracy"],
                "deepgami_mrna_only_auc": dg["mrna_auc"],
                "deepgami_mrna_only_balanced_accuracy": dg["mrna_balanced_accuracy"],
                "deepgami_mrna_meanfill_auc": dg["mrna_meanfill_auc"],
                "deepgami_meth_only_auc": dg["meth_auc"],
                "r2_meth": dg["r2_meth"],
                "r2_mrna": dg["r2_mrna"],
                "lr_auc": float(roc_auc_score(y[te] == positive, proba)),
                "lr_balanced_accuracy": float(
                    balanced_accuracy_score(y[te], lr.predict(scaler.transform(X[te])))
                ),
            }
        )
        print(
            f"rosmap fold {f}: "
            + ", ".join(f"{k} {v:.3f}" for k, v in rows[-1].items() if isinstance(v, float)),
            file=sys.stderr,
            flush=True,
        )
    keys = [k for k in rows[0] if k not in ("fold", "setting")]
    mean = {k: float(np.mean([r[k] for r in rows if r[k] is not None])) for k in keys}
    return {"folds": rows, "mean": mean}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "accuracy"))
    parser.add_argument(
        "--only",
        default="sim,multi,shared,rosmap",
        help="comma-separated: sim, sim_large, multi, shared, shared_total, rosmap",
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    work = out / "cohorts"
    work.mkdir(parents=True, exist_ok=True)
    results_path = out / "accuracy.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for name in args.only.split(","):
        start = time.perf_counter()
        if name == "sim":
            results[name] = bench_sim(work, "sim_binary", oracle=True)
        elif name == "sim_large":
            results[name] = bench_sim(work, "sim_large", "--n-samples", "3000", oracle=True)
        elif name == "multi":
            results[name] = bench_sim(work, "sim_multi", "--classes", "3")
        elif name == "shared":
            results[name] = bench_sim(work, "sim_shared", "--shared-signal", "1.0")
        elif name == "shared_total":
            results[name] = bench_sim(
                work, "sim_shared", "--shared-signal", "1.0", params={"early_stopping_on": "total"}
            )
        elif name == "rosmap":
            results[name] = bench_rosmap(work)
        else:
            raise SystemExit(f"unknown benchmark {name!r}")
        results[name]["wall_seconds"] = round(time.perf_counter() - start, 1)
        results_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
        print(f"{name}: done in {results[name]['wall_seconds']} s", file=sys.stderr, flush=True)
    print(json.dumps(summary(results), indent=1))
    return 0


def summary(results: dict) -> dict:
    """The acceptance figures in one place."""
    out = {}
    for name in ("sim", "sim_large", "multi", "shared", "shared_total"):
        if name in results:
            r = results[name]
            h = r["held_out"]
            out[name] = {
                k: h.get(k)
                for k in (
                    "all_auc",
                    "all_balanced_accuracy",
                    "snp_auc",
                    "snp_meanfill_auc",
                    "snp_balanced_accuracy",
                    "snp_meanfill_balanced_accuracy",
                    "expr_auc",
                    "r2_expr",
                    "r2_snp",
                )
            }
            out[name]["bayes_auc"] = r["bayes_optimal_test_auc"]
            out[name]["bayes_balanced_accuracy"] = r["bayes_optimal_test_balanced_accuracy"]
            if "oracle" in r:
                out[name]["oracle"] = r["oracle"]
    if "rosmap" in results:
        out["rosmap"] = results["rosmap"]["mean"]
    return out


if __name__ == "__main__":
    sys.exit(main())
