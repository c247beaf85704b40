"""Peak memory and time of `deepgami train` and `deepgami predict` on a genome-scale cohort.

    .venv/bin/python benchmarks/train_scale.py --snps 1000000 --out benchmarks/out/train_scale

Issue #7, build item 2 (memory discipline end to end): the cohort is 2,000 samples x `--snps` int8
dosages (2 GB at 1e6), an expression modality (`--tfs` TFs + `--genes` genes, float32), an eQTL
prior with about 2 edges per SNP into the genes and a GRN prior (3 TFs per gene). This process
builds it with `cohort.build_cohort` and writes the .h5mu (its own memory is not measured); then
`deepgami train` (one setting, no grid search, `--epochs` epochs) and `deepgami predict` run as
child processes, and their wall time and peak RSS (ru_maxrss of each, from os.wait4) are reported. Seconds per epoch are
timed afterwards in this process, between the training hook's epoch ends.

The point is the ceiling: the raw int8 matrix is held once, and minibatches become float32 only as
the network asks for them. A dense float32 copy of 1e6 x 2,000 would be 8 GB by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_speed import run_deepgami  # noqa: E402


def make_cohort(
    path: Path, n_samples: int, n_snps: int, n_tfs: int, n_genes: int, seed: int
) -> dict:
    import anndata as ad
    import pandas as pd

    from deepgami.data.cohort import PriorInput, assemble_cohort, write_cohort

    rng = np.random.default_rng(seed)
    samples = [f"S{i:05d}" for i in range(n_samples)]
    geno = np.empty((n_samples, n_snps), dtype=np.int8)
    step = max(1, 2**26 // n_snps)
    for i in range(0, n_samples, step):
        geno[i : i + step] = rng.integers(0, 3, size=geno[i : i + step].shape, dtype=np.int8)
    snps = [f"rs{j}" for j in range(n_snps)]
    tfs, genes = [f"TF{j}" for j in range(n_tfs)], [f"GENE{j}" for j in range(n_genes)]
    expr = rng.standard_normal((n_samples, n_tfs + n_genes), dtype=np.float32)
    # A phenotype the model can learn: the first genes' expression.
    score = expr[:, n_tfs : n_tfs + 10].sum(axis=1)
    labels = pd.DataFrame(
        {"label": np.where(score > np.median(score), "case", "control")}, index=pd.Index(samples)
    )
    eqtl = pd.DataFrame(
        {
            "source": np.repeat(snps, 2),
            "target": np.asarray(genes, dtype=object)[rng.integers(0, n_genes, 2 * n_snps)],
        }
    )
    grn = pd.DataFrame(
        {
            "source": np.asarray(tfs, dtype=object)[rng.integers(0, n_tfs, 3 * n_genes)],
            "target": np.repeat(genes, 3),
        }
    )
    modalities = {
        "snp": ad.AnnData(geno, obs=pd.DataFrame(index=samples), var=pd.DataFrame(index=snps)),
        "expr": ad.AnnData(
            expr, obs=pd.DataFrame(index=samples), var=pd.DataFrame(index=tfs + genes)
        ),
    }
    mdata, report = assemble_cohort(
        modalities, labels, [PriorInput("snp", "eqtl", eqtl), PriorInput("expr", "grn", grn)]
    )
    write_cohort(mdata, path)
    return {name: info["edges_kept"] for name, info in report.priors.items()}


def epoch_seconds(cohort: Path, params: Path, epochs: int, seed: int) -> list[float]:
    """Wall seconds of each training epoch after the first (minibatches and the validation pass),
    timed in this process through the `on_epoch` hook: loading and setup are left out."""
    from deepgami.data.cohort import read_cohort
    from deepgami.data.arrays import read_arrays
    from deepgami.model import DeepGAMI
    from deepgami.model._fitting import threads_for
    from deepgami.train import expand_grid, load_params

    data = read_arrays(read_cohort(cohort))
    setting = expand_grid(load_params(params, {"max_epochs": epochs}), dense=False)[0]
    stamps: list[float] = []
    with threads_for(
        sum(len(e[0]) for e in data.edges if e is not None)
    ):  # the thread policy of `train`
        DeepGAMI.fit_rows(
            data,
            np.arange(len(data.obs_names)),
            setting,
            seed,
            on_epoch=lambda *_: stamps.append(time.perf_counter()),
        )
    return [round(b - a, 1) for a, b in zip(stamps, stamps[1:])]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--snps", type=int, default=1_000_000)
    parser.add_argument("--tfs", type=int, default=1000)
    parser.add_argument("--genes", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--bagging",
        type=int,
        default=0,
        help="bagged networks beside the one fit (default 0: the figures are per network)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/train_scale"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cohort = args.out / f"cohort_{args.samples}x{args.snps}.h5mu"
    start = time.perf_counter()
    edges = (
        make_cohort(cohort, args.samples, args.snps, args.tfs, args.genes, args.seed)
        if not cohort.exists()
        else {}
    )
    make_s = time.perf_counter() - start
    params = args.out / "params.yaml"
    params.write_text(
        f"grid:\n  weight_decay: [0.01]\n  early_stopping_on: [task]\n  batch_size: [{args.batch_size}]\n"
        f"cv_folds: 0\npatience: 100\nbagging: {args.bagging}\n"
    )
    result = {
        "samples": args.samples,
        "snps": args.snps,
        "genes": args.genes,
        "tfs": args.tfs,
        "edges": edges,
        "batch_size": args.batch_size,
        "cohort_mb": round(cohort.stat().st_size / 1e6, 1),
        "make_cohort_s": round(make_s, 1),
    }
    model = args.out / "model"
    for stage, cmd in (
        (
            "train",
            [
                "train",
                str(cohort),
                "--out",
                str(model),
                "--params",
                str(params),
                "--max-epochs",
                str(args.epochs),
                "--quiet",
            ],
        ),
        (
            "predict",
            ["predict", str(model), str(cohort), "--out", str(args.out / "predictions.tsv")],
        ),
    ):
        run = run_deepgami(*cmd)
        if run["exit_code"] != 0:
            raise SystemExit(f"deepgami {stage} failed with exit code {run['exit_code']}")
        result[f"{stage}_s"], result[f"{stage}_peak_rss_gib"] = (
            run["wall_s"],
            run["peak_rss_mib"] / 1024,
        )
    result["epoch_s"] = epoch_seconds(cohort, params, args.epochs, args.seed)
    result = {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}
    result["cpu_count"] = os.cpu_count()
    print(json.dumps(result))
    (args.out / "train_scale.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
