"""Time link importance for every prior edge of a large random DeepGAMI model.

Default size (the issue's target: under 2 minutes): a 20,000-SNP -> 2,000-gene sparse encoder with
100,000 edges, a second small dense modality (100 features), a 64-unit head, 2 classes, 500 samples,
50 Gauss-Legendre steps. Stages, timed separately and in this order so the peak RSS after the link
stage is the link stage's own:

  links     path-averaged gradients at the encoder outputs + scores of all edges, both classes
  features  Captum IntegratedGradients on the inputs, both classes
  latent    integrated gradients at the encoder outputs, both classes

Also checks the link completeness (links summed per SNP vs Captum's feature attribution).
Writes benchmarks/out/prioritize_speed.json. Run: .venv/bin/python benchmarks/prioritize_speed.py
(--quick: a 10x smaller model, for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch

from deepgami.attribution.integrated_gradients import (
    EDGE_CHUNK_FLOATS,
    encoder_path_gradients,
    integrated_gradients,
    link_scores,
    output_function,
)
from deepgami.nn.network import DeepGAMINetwork

OUT = Path(__file__).parent / "out" / "prioritize_speed.json"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def random_model(
    n_snps: int, n_genes: int, n_edges: int, n_dense: int, seed: int
) -> DeepGAMINetwork:
    rng = np.random.default_rng(seed)
    # unique random (snp, gene) pairs
    keys = rng.choice(n_snps * n_genes, size=n_edges, replace=False)
    src, dst = np.divmod(np.sort(keys), n_genes)
    torch.manual_seed(seed)
    net = DeepGAMINetwork(
        [n_snps, n_dense],
        n_genes,
        2,
        edges=[(torch.as_tensor(src), torch.as_tensor(dst)), None],
        hidden_layers=(64,),
        dropout=0.5,
        encoder_activation="relu",
    )
    return net.eval()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--snps", type=int, default=20_000)
    parser.add_argument("--genes", type=int, default=2_000)
    parser.add_argument("--edges", type=int, default=100_000)
    parser.add_argument(
        "--dense", type=int, default=100, help="features of the second (dense) modality"
    )
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="10x smaller model and samples / 5")
    parser.add_argument("--skip-captum", action="store_true", help="time only the link stage")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.quick:
        args.snps, args.genes, args.edges, args.samples = (
            args.snps // 10,
            args.genes // 10,
            args.edges // 10,
            100,
        )

    rng = np.random.default_rng(1)
    net = random_model(args.snps, args.genes, args.edges, args.dense, seed=0)
    # standardized dosages (what preprocessing hands the network) and a standard normal block
    maf = rng.uniform(0.05, 0.5, args.snps)
    dosage = rng.binomial(2, maf, size=(args.samples, args.snps)).astype(np.float32)
    snp = torch.from_numpy((dosage - 2 * maf) / np.sqrt(2 * maf * (1 - maf))).float()
    dense = torch.randn(args.samples, args.dense, generator=torch.Generator().manual_seed(2))
    xs = [snp, dense]
    bases = [torch.zeros(args.snps), torch.zeros(args.dense)]
    transform = output_function("classification", "logit")
    targets = [0, 1]
    result = {
        "size": {
            "snps": args.snps,
            "genes": args.genes,
            "edges": args.edges,
            "dense_features": args.dense,
            "samples": args.samples,
            "n_steps": args.steps,
            "classes": len(targets),
        },
        "threads": torch.get_num_threads(),
        "machine": {
            "cpus": __import__("os").cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "edge_chunk_floats": EDGE_CHUNK_FLOATS,
        "rss_mb_before": round(rss_mb(), 1),
        # the machine is shared: the load at the start says how much of it this run had
        "load_average_start": [round(v, 2) for v in __import__("os").getloadavg()],
    }

    t0 = time.perf_counter()
    grads = encoder_path_gradients(net, xs, bases, targets, transform, n_steps=args.steps)
    t_grad = time.perf_counter() - t0
    enc = net.encoders[0]
    diff = xs[0] - bases[0]
    scores = {}
    t1 = time.perf_counter()
    for t in targets:
        scores[t] = link_scores(diff, enc.src, enc.dst, enc.weight.detach(), grads[t][0])
    t_scores = time.perf_counter() - t1
    result["links"] = {
        "seconds": round(time.perf_counter() - t0, 2),
        "path_gradients_seconds": round(t_grad, 2),
        "edge_scoring_seconds": round(t_scores, 2),
        "peak_rss_mb": round(rss_mb(), 1),
        "edges_scored": int(enc.n_edges * len(targets)),
    }
    print(f"links: {result['links']}", flush=True)

    if not args.skip_captum:
        t0 = time.perf_counter()
        feats, delta = {}, {}
        for t in targets:
            attrs, d = integrated_gradients(net, xs, bases, t, transform, n_steps=args.steps)
            a = attrs[0]
            feats[t] = (
                a.mean(0, dtype=torch.float64).numpy(),
                a.abs().mean(0, dtype=torch.float64).numpy(),
            )
            delta[t] = d
        result["features"] = {
            "seconds": round(time.perf_counter() - t0, 2),
            "peak_rss_mb": round(rss_mb(), 1),
            "delta_max_abs": float(max(d.abs().max() for d in delta.values())),
        }
        print(f"features: {result['features']}", flush=True)
        errs = []
        for t in targets:
            summed = np.bincount(enc.src.numpy(), weights=scores[t][0], minlength=enc.in_features)
            # relative to the largest feature importance (mean |IG|), as the completeness test does
            errs.append(float(np.abs(summed - feats[t][0]).max() / max(feats[t][1].max(), 1e-30)))
        result["completeness_error_relative"] = max(errs)
        t0 = time.perf_counter()
        for t in targets:
            integrated_gradients(net, xs, bases, t, transform, n_steps=args.steps, at="latent")
        result["latent"] = {
            "seconds": round(time.perf_counter() - t0, 2),
            "peak_rss_mb": round(rss_mb(), 1),
        }
        print(f"latent: {result['latent']}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
