"""ROSMAP (mRNA + methylation): DeepGAMI against the baselines under the paper's protocols.

    .venv/bin/python benchmarks/rosmap_eval.py [--repeats 100] [--fast] [--out benchmarks/out/rosmap_eval]

Builds the cohort from the bundled ROSMAP data (245 samples; the shipped split column is all
`train`, so the held-out protocol draws a stratified 80/20 split), runs `deepgami evaluate` with
the default parameters (DeepGAMI's grid searched once by 5-fold CV; baselines with their full grids
and 5-fold inner CV on every split), and prints DeepGAMI's figures beside each baseline's, per
protocol, plus the KS tests of DeepGAMI against each baseline. Writes the evaluation directory
(report.html included), `figures.md` and `timing.json` under --out. The paper used 100 repeated
splits; the default here is 20 so that a run fits in about half an hour on two cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

from deepgami.datasets import rosmap_dir

REPO = Path(__file__).resolve().parents[1]
ROSMAP = rosmap_dir()  # the bundled copy


def build(modalities: list[str], out: Path) -> Path:
    from deepgami.cli import main

    cohort = out / "cohort.h5mu"
    argv = [
        "build",
        *[a for m in modalities for a in ("--modality", f"{m}={ROSMAP / f'{m}.csv'}")],
        "--labels",
        str(ROSMAP / "labels.csv"),
        "--out",
        str(cohort),
        "--quiet",
    ]
    if main(argv) != 0:
        sys.exit("build failed")
    return cohort


def figures_table(summary: pd.DataFrame, ks: pd.DataFrame, protocols: list[str]) -> str:
    """Markdown: per protocol, AUC and balanced accuracy (mean ± sd) of each method; KS of DeepGAMI."""
    s = summary[
        (summary["modalities"] == "all") & summary["metric"].isin(["auc", "balanced_accuracy"])
    ]
    methods = list(dict.fromkeys(s["method"]))
    lines = [
        "| method | " + " | ".join(f"{p} AUC | {p} bal. acc." for p in protocols) + " |",
        "|---|" + "---|" * (2 * len(protocols)),
    ]
    for m in methods:
        cells = []
        for p in protocols:
            for metric in ("auc", "balanced_accuracy"):
                r = s[(s["method"] == m) & (s["protocol"] == p) & (s["metric"] == metric)]
                if r.empty or pd.isna(r["mean"].iloc[0]):
                    cells.append(r["note"].iloc[0] if len(r) and r["note"].iloc[0] else "")
                    continue
                mean, sd = r["mean"].iloc[0], r["sd"].iloc[0]
                cells.append(f"{mean:.3f}" + ("" if pd.isna(sd) else f" ± {sd:.3f}"))
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    if ks is not None and not ks.empty:
        k = ks[(ks["method_a"] == "deepgami") | (ks["method_b"] == "deepgami")]
        lines += [
            "",
            "KS tests, DeepGAMI against each method (repeated splits):",
            "",
            "| metric | other | DeepGAMI mean | other mean | D | p | p (BH) |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in k.itertuples():
            other, mine, theirs = (
                (r.method_b, r.mean_a, r.mean_b)
                if r.method_a == "deepgami"
                else (r.method_a, r.mean_b, r.mean_a)
            )
            lines.append(
                f"| {r.metric} | {other} | {mine:.3f} | {theirs:.3f} | {r.statistic:.2f} | "
                f"{r.pvalue:.3g} | {r.pvalue_bh:.3g} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "rosmap_eval"))
    parser.add_argument("--modalities", default="mrna,meth")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--fast", action="store_true", help="evaluate --fast (no DeepGAMI grid search, small grids)"
    )
    parser.add_argument("--methods", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from deepgami.data.cohort import read_cohort
    from deepgami.evaluation import EvalConfig, evaluate
    from deepgami.report.outputs import write_evaluation
    from deepgami.train import load_params

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cohort = build(args.modalities.split(","), out)
    config = EvalConfig(
        protocols=("holdout", "cv", "repeated"),
        folds=args.folds,
        repeats=args.repeats,
        fast=args.fast,
        seed=args.seed,
        methods=args.methods.split(",") if args.methods else None,
    )
    t0, c0 = time.perf_counter(), time.process_time()
    result = evaluate(
        read_cohort(cohort),
        load_params(None),
        config,
        cohort_name="ROSMAP (" + args.modalities + ")",
        log=lambda text: print(text, file=sys.stderr, flush=True),
    )
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    write_evaluation(result, out / "evaluate")
    table = figures_table(result.summary, result.ks_tests, list(result.info["protocols"]))
    header = (
        f"ROSMAP {args.modalities}: {len(result.info['methods'])} methods; protocols "
        + "; ".join(f"{p}: {v['how']}" for p, v in result.info["protocols"].items())
        + f"; {'fast' if args.fast else 'full'} settings; wall {wall:.0f}s, CPU {cpu:.0f}s\n"
    )
    (out / "figures.md").write_text(header + "\n" + table + "\n")
    (out / "timing.json").write_text(
        json.dumps({"wall_s": wall, "cpu_s": cpu, "per_method_wall_s": result.seconds}, indent=1)
        + "\n"
    )
    print(header)
    print(table)
    print(f"\nreport: {out / 'evaluate' / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
