"""Scale benchmark of the prior-masked first layer: sparse (`SparseMaskedLinear`) vs dense masked.

    .venv/bin/python benchmarks/scale.py --sizes 1e3,1e4,1e5 --out benchmarks/out/scale
    .venv/bin/python benchmarks/scale.py --sizes 1e6 --layers sparse --out benchmarks/out/scale1e6

For each number of SNPs: 20,000 genes, ~2 prior edges per SNP (2 uniform targets, duplicates
merged), 2,000 samples of int8 genotypes (0/1/2) converted to float32 one minibatch of 64 at a time,
model = first layer -> ReLU -> Linear(genes, 2), cross-entropy, Adam. Per configuration, measured
in its own child process so that peak RSS (``ru_maxrss``) is that configuration's alone:

- ``epoch_s``: wall seconds of one training epoch (after 2 warm-up minibatches), ``epoch_cpu_s``
  its process CPU seconds (more robust than wall time on a shared machine);
- ``link_s``: link prioritisation over all samples, a stand-in for the attribution pass: per edge
  ``sum_samples x_i * w_ij * dlogit/dh_j`` (gradient of the class-1 logit at latent node j);
- ``peak_rss_gib``: the child's peak resident memory, genotypes included.

The dense masked layer is skipped when its weight alone would exceed ``--dense-limit-gb`` (4 GB).
Writes ``scale.tsv`` and a log-log ``scale.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

FIELDS = [
    "n_snps",
    "n_genes",
    "n_edges",
    "n_samples",
    "batch_size",
    "batch_layout",
    "layer",
    "status",
    "epoch_s",
    "epoch_cpu_s",
    "link_s",
    "link_cpu_s",
    "peak_rss_gib",
    "setup_s",
    "final_loss",
    "threads",
    "load_1min",
    "note",
]


def make_edges(
    n_snps: int, n_genes: int, per_snp: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """~``per_snp`` uniform target genes per SNP, duplicates merged, sorted by (snp, gene)."""
    src = np.repeat(np.arange(n_snps, dtype=np.int64), per_snp)
    dst = rng.integers(0, n_genes, size=src.size, dtype=np.int64)
    key = np.unique(src * n_genes + dst)
    return key // n_genes, key % n_genes


def make_genotypes(n_samples: int, n_snps: int, rng: np.random.Generator) -> np.ndarray:
    """int8 dosages 0/1/2, filled row block by row block to keep temporaries small."""
    g = np.empty((n_samples, n_snps), dtype=np.int8)
    step = max(1, (1 << 26) // max(n_snps, 1))
    for i in range(0, n_samples, step):
        g[i : i + step] = rng.integers(0, 3, size=g[i : i + step].shape, dtype=np.int8)
    return g


def dense_weight_bytes(n_snps: int, n_genes: int) -> int:
    return 4 * n_snps * n_genes


def run_child(args: argparse.Namespace) -> dict:
    import torch
    from torch import nn

    from deepgami.nn.layers import SparseMaskedLinear

    if args.threads:
        torch.set_num_threads(args.threads)
    n_snps, n_genes = int(args.size), args.n_genes
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    src, dst = make_edges(n_snps, n_genes, args.edges_per_snp, rng)
    geno = make_genotypes(args.n_samples, n_snps, rng)
    # a label with some signal through the prior, so that training does something
    signal = geno[:, : min(n_snps, 50)].astype(np.float32).sum(1)
    labels = torch.as_tensor((signal > np.median(signal)).astype(np.int64))

    class DenseMaskedLinear(nn.Module):
        """y = x @ (W * M) + b with a dense (in, out) weight: the layer the sparse one replaces."""

        def __init__(self) -> None:
            super().__init__()
            mask = torch.zeros(n_snps, n_genes, dtype=torch.bool)
            mask[torch.as_tensor(src), torch.as_tensor(dst)] = True
            self.register_buffer("mask", mask)
            fan_in = mask.sum(0).clamp(min=1).float()
            self.weight = nn.Parameter((torch.rand(n_snps, n_genes) * 2 - 1) / fan_in.sqrt())
            self.bias = nn.Parameter(torch.zeros(n_genes))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x @ (self.weight * self.mask) + self.bias

    first = (
        SparseMaskedLinear(n_snps, n_genes, src, dst)
        if args.layer == "sparse"
        else DenseMaskedLinear()
    )
    head = nn.Linear(n_genes, 2)
    model = nn.Sequential(first, nn.ReLU(), head)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    setup_s = time.perf_counter() - t0

    def batch(idx: np.ndarray) -> torch.Tensor:
        """int8 -> float32 for one minibatch, as a (batch, snps) tensor."""
        rows = geno[np.sort(idx)]
        if args.batch_layout == "features":
            # convert and transpose in one pass to a feature-major (snps, batch) array and hand the
            # layer its (batch, snps) view: SparseMaskedLinear then needs no transpose of its own
            return torch.from_numpy(rows.T.astype(np.float32, order="C")).t()
        return torch.from_numpy(rows.astype(np.float32))

    def step(idx: np.ndarray) -> float:
        x = batch(idx)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), labels[np.sort(idx)])
        loss.backward()
        opt.step()
        return float(loss)

    perm = rng.permutation(args.n_samples)
    for k in range(2):  # warm-up: first-call costs (allocator, thread pools, Adam state)
        step(perm[k * args.batch_size : (k + 1) * args.batch_size])
    perm = rng.permutation(args.n_samples)
    losses = []
    w0, c0 = time.perf_counter(), time.process_time()
    for i in range(0, args.n_samples, args.batch_size):
        losses.append(step(perm[i : i + args.batch_size]))
    epoch_s, epoch_cpu_s = time.perf_counter() - w0, time.process_time() - c0
    # other processes on the machine inflate wall time (not CPU time): record how busy it was
    load_1min = os.getloadavg()[0]

    # link prioritisation: per edge sum_b x_bi * w_ij * d logit_1 / d h_bj
    t1, c1 = time.perf_counter(), time.process_time()
    scores = torch.zeros(len(src), dtype=torch.float64)
    src_t, dst_t = torch.as_tensor(src), torch.as_tensor(dst)
    for i in range(0, args.n_samples, args.batch_size):
        x = batch(np.arange(i, min(i + args.batch_size, args.n_samples)))
        with torch.no_grad():
            h = first(x)
        h.requires_grad_(True)
        (grad_h,) = torch.autograd.grad(head(torch.relu(h))[:, 1].sum(), h)
        if args.layer == "sparse":
            scores += first.edge_products(x, grad_h).double()
        else:
            # the dense way: x^T g over all (in, out) pairs, read at the edges
            scores += (x.T @ grad_h)[src_t, dst_t].double()
    w_edges = (
        first.weight.detach() if args.layer == "sparse" else first.weight.detach()[src_t, dst_t]
    )
    scores *= w_edges.double()
    link_s, link_cpu_s = time.perf_counter() - t1, time.process_time() - c1
    assert torch.isfinite(scores).all()

    return {
        "n_snps": n_snps,
        "n_genes": n_genes,
        "n_edges": len(src),
        "n_samples": args.n_samples,
        "batch_size": args.batch_size,
        "batch_layout": args.batch_layout,
        "layer": args.layer,
        "status": "ok",
        "epoch_s": round(epoch_s, 3),
        "epoch_cpu_s": round(epoch_cpu_s, 3),
        "link_s": round(link_s, 3),
        "link_cpu_s": round(link_cpu_s, 3),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
        "setup_s": round(setup_s, 2),
        "final_loss": round(float(np.mean(losses[-5:])), 4),
        "threads": torch.get_num_threads(),
        "load_1min": round(load_1min, 2),
        "note": "",
    }


def run_kernels(sizes: list[int], args: argparse.Namespace, out: Path) -> None:
    """Per-minibatch CPU time of the kernel alternatives behind SparseMaskedLinear (one process)."""
    import warnings

    import torch
    import torch.nn.functional as F

    warnings.filterwarnings("ignore", message=".*[Ss]parse CSR.*")
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []

    def timed(fn, rep: int = 3) -> float:
        fn()
        best = math.inf
        for _ in range(rep):
            c = time.process_time()
            fn()
            best = min(best, time.process_time() - c)
        return best

    for n in sizes:
        rng = np.random.default_rng(args.seed)
        src_np, dst_np = make_edges(n, args.n_genes, args.edges_per_snp, rng)
        src, dst = torch.as_tensor(src_np), torch.as_tensor(dst_np)
        n_edges, b, n_out = len(src_np), args.batch_size, args.n_genes
        w = torch.randn(n_edges)
        x = torch.from_numpy(rng.integers(0, 3, size=(b, n), dtype=np.int8).astype(np.float32))
        g = torch.randn(b, n_out)
        gt = g.t().contiguous()
        xt = torch.from_numpy(
            np.ascontiguousarray(x.numpy().T)
        )  # as the layer makes it (huge pages)
        s_ptr = torch.zeros(n + 1, dtype=torch.int64)
        s_ptr[1:] = torch.bincount(src, minlength=n).cumsum(0)
        by_dst = torch.as_tensor(np.lexsort((src_np, dst_np)))
        d_ptr = torch.zeros(n_out + 1, dtype=torch.int64)
        d_ptr[1:] = torch.bincount(dst, minlength=n_out).cumsum(0)
        src_by_dst, w_by_dst = src[by_dst], w[by_dst]
        a_dst = torch.sparse_csr_tensor(
            d_ptr, src_by_dst, w_by_dst, (n_out, n), check_invariants=False
        )
        pattern = torch.sparse_csr_tensor(
            s_ptr, dst, torch.zeros(n_edges), (n, n_out), check_invariants=False
        )

        def chunked_sddmm(chunk: int = 8192) -> torch.Tensor:
            res = torch.empty(n_edges)
            for k in range(0, n_edges, chunk):
                sl = slice(k, k + chunk)
                res[sl] = (xt.index_select(0, src[sl]) * gt.index_select(0, dst[sl])).sum(1)
            return res

        cases = {
            "transpose x (torch .t().contiguous())": lambda: x.t().contiguous(),
            "transpose x (numpy, used)": lambda: np.ascontiguousarray(x.numpy().T),
            "forward: gather + index_add_ (autograd-free)": lambda: torch.zeros(
                b, n_out
            ).index_add_(1, dst, x[:, src] * w),
            "forward: MKL CSR(out,in) @ xt": lambda: torch.sparse.mm(a_dst, xt),
            "forward: embedding_bag over xt (used)": lambda: F.embedding_bag(
                src_by_dst,
                xt,
                d_ptr,
                mode="sum",
                per_sample_weights=w_by_dst,
                include_last_offset=True,
            ),
            "weight grad: chunked (xt[src] * gt[dst]).sum(1)": chunked_sddmm,
            "weight grad: sampled_addmm, edges by source (used)": lambda: (
                torch.sparse.sampled_addmm(pattern, xt, gt.t(), beta=0.0)
            ),
            "input grad: embedding_bag over gt (used)": lambda: F.embedding_bag(
                dst, gt, s_ptr, mode="sum", per_sample_weights=w, include_last_offset=True
            ),
        }
        for name, fn in cases.items():
            t = timed(fn)
            rows.append(
                {
                    "n_snps": n,
                    "n_edges": n_edges,
                    "kernel": name,
                    "cpu_ms_per_minibatch": round(1e3 * t, 1),
                    "threads": torch.get_num_threads(),
                }
            )
            print(f"{n:>9} {name:55s} {1e3 * t:9.1f} ms", flush=True)
    with open(out / "kernels.tsv", "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter="\t")
        wr.writeheader()
        wr.writerows(rows)
    print(f"wrote {out / 'kernels.tsv'}")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    panels = [
        ("epoch_s", "seconds per training epoch"),
        ("link_s", "link prioritisation (s)"),
        ("peak_rss_gib", "peak RSS (GiB)"),
    ]
    for ax, (key, title) in zip(axes, panels):
        for layer, style in (("sparse", "o-"), ("dense", "s--")):
            pts = sorted(
                (r["n_snps"], float(r[key]))
                for r in rows
                if r["layer"] == layer and r["status"] == "ok"
            )
            if pts:
                ax.plot(*zip(*pts), style, label=f"{layer} masked layer")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("SNPs (inputs); ~2 edges per SNP, 20,000 genes")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    skipped = sorted(
        r["n_snps"] for r in rows if r["layer"] == "dense" and r["status"] == "skipped"
    )
    if skipped:
        axes[0].text(
            0.03,
            0.55,
            "dense not run (weight > 4 GB)\nat " + ", ".join(f"{n:.0e}" for n in skipped),
            transform=axes[0].transAxes,
            ha="left",
            va="center",
            fontsize=8,
        )
    axes[0].axhline(60, color="grey", lw=0.8, ls=":")
    axes[2].axhline(8, color="grey", lw=0.8, ls=":")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--sizes", default="1e3,1e4,1e5,1e6", help="comma-separated numbers of SNPs, e.g. 1e3,1e4"
    )
    p.add_argument(
        "--layers", default="sparse,dense", help="which first layers to run: sparse,dense"
    )
    p.add_argument(
        "--out", default="benchmarks/out/scale", help="output folder for scale.tsv and scale.png"
    )
    p.add_argument("--n-genes", type=int, default=20_000)
    p.add_argument("--edges-per-snp", type=int, default=2)
    p.add_argument("--n-samples", type=int, default=2_000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--dense-limit-gb",
        type=float,
        default=4.0,
        help="skip the dense layer above this weight size",
    )
    p.add_argument(
        "--batch-layout",
        choices=["features", "samples"],
        default="features",
        help="memory layout of each float32 minibatch: features = (snps, batch) handed over as its "
        "transposed view (default; saves the sparse layer a transpose), samples = (batch, snps)",
    )
    p.add_argument(
        "--threads", type=int, default=0, help="torch threads in each child (0: torch's default)"
    )
    p.add_argument("--timeout", type=float, default=3600, help="seconds per configuration")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--kernels",
        action="store_true",
        help="instead: CPU ms per minibatch of the kernel alternatives, written to kernels.tsv",
    )
    # internal: one configuration in this process
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--size", type=float, help=argparse.SUPPRESS)
    p.add_argument("--layer", choices=["sparse", "dense"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:
        print(json.dumps(run_child(args)), flush=True)
        return 0

    sizes = [int(float(s)) for s in args.sizes.split(",") if s.strip()]
    layers = [s.strip() for s in args.layers.split(",") if s.strip()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.kernels:
        run_kernels(sizes, args, out)
        return 0
    rows: list[dict] = []
    for n in sizes:
        for layer in layers:
            base = {
                "n_snps": n,
                "n_genes": args.n_genes,
                "n_samples": args.n_samples,
                "batch_size": args.batch_size,
                "batch_layout": args.batch_layout,
                "layer": layer,
            }
            gb = dense_weight_bytes(n, args.n_genes) / 1e9
            if layer == "dense" and gb > args.dense_limit_gb:
                rows.append(
                    {
                        **base,
                        "status": "skipped",
                        "note": f"dense weight {gb:.1f} GB > {args.dense_limit_gb:g} GB",
                    }
                )
                print(f"{n:>9} {layer:6} skipped ({rows[-1]['note']})", flush=True)
                continue
            cmd = [
                sys.executable,
                __file__,
                "--child",
                "--size",
                str(n),
                "--layer",
                layer,
                "--n-genes",
                str(args.n_genes),
                "--edges-per-snp",
                str(args.edges_per_snp),
                "--n-samples",
                str(args.n_samples),
                "--batch-size",
                str(args.batch_size),
                "--batch-layout",
                args.batch_layout,
                "--threads",
                str(args.threads),
                "--seed",
                str(args.seed),
            ]
            try:
                res = subprocess.run(
                    cmd, capture_output=True, text=True, timeout=args.timeout, env=os.environ.copy()
                )
            except subprocess.TimeoutExpired:
                rows.append({**base, "status": "timeout", "note": f"> {args.timeout:g} s"})
                print(f"{n:>9} {layer:6} timeout", flush=True)
                continue
            if res.returncode != 0:
                err = (res.stderr.strip().splitlines() or ["?"])[-1]
                rows.append(
                    {**base, "status": "failed", "note": f"exit {res.returncode}: {err}"[:200]}
                )
                print(f"{n:>9} {layer:6} failed: {rows[-1]['note']}", flush=True)
                continue
            row = json.loads(res.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(
                f"{n:>9} {layer:6} epoch {row['epoch_s']:8.2f} s (cpu {row['epoch_cpu_s']:.2f})  links {row['link_s']:7.2f} s (cpu {row['link_cpu_s']:.2f})  "
                f"peak RSS {row['peak_rss_gib']:6.2f} GiB  edges {row['n_edges']}  load {row['load_1min']}",
                flush=True,
            )
    with open(out / "scale.tsv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS, delimiter="\t", extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in FIELDS})
    plot(rows, out / "scale.png")
    print(f"wrote {out / 'scale.tsv'} and {out / 'scale.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
