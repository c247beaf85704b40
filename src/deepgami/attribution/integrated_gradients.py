"""Integrated gradients for input features, latent genes and every prior link.

What is attributed
------------------
For each class ``c`` the explained output ``F_c`` is, by default (``target="logit"``), the class's
*centered logit* ``z_c - mean_k z_k``. Softmax ignores a shift common to all logits, so a raw logit
carries an arbitrary component; the centered logit does not, and for two classes it is
``+-(z_case - z_control) / 2``, so both classes get the same ranking with opposite signs.
``target="probability"`` explains the softmax probability instead. A numeric phenotype explains
the predicted value (one block, class ``value``).

Baseline ``x'`` (``baseline=``): ``zero`` is the all-zero *preprocessed* input, which under the
default standard scaling is the training mean of every feature; ``mean`` is the training mean
mapped through the fitted preprocessing (the two coincide for standard scaling and differ for
``minmax`` / ``log1p``). Samples: those having every model modality, so that each sample's
attribution explains the prediction from its own data (a missing block would be imputed).

The three levels
----------------
- Features: Captum ``IntegratedGradients`` on all modalities' inputs jointly; its convergence
  delta (``sum of attributions - (F(x) - F(x'))``) is reported per sample.
- Latent nodes: integrated gradients at each encoder's output after the activation (the
  DropConnect output ``C_k``), from ``C_k(x')`` to ``C_k(x)``, which is what Captum's
  ``LayerIntegratedGradients`` at those layers computes (it too interpolates in layer space, all
  blocks together); it is run as ``IntegratedGradients`` on ``head_logits`` so that the shared
  activation module needs no hook.
- Links: a masked linear encoder computes ``z_j = sum_i x_i w_ij + b_j`` (then the network's
  node normalization and activation, ``activate``), so along the input path
  ``dF/dx_i = sum_j w_ij dF/dz_j`` and

      IG_i = (x_i - x'_i) * avg_alpha dF/dx_i = sum_j (x_i - x'_i) w_ij G_j,
      G_j  = avg_alpha dF/dz_j (x' + alpha (x - x'))   (Captum's alphas and step weights)

  The term of edge (i, j) is the link attribution; summed over a feature's edges it reproduces
  the feature's integrated gradient exactly (up to float rounding). The encoder being affine, the
  input path maps onto the straight path between its outputs, so ``G`` (samples x latent, per
  class) comes from one encoder forward plus a pass over the path through the layers above it;
  then all edges are scored in chunks, so memory stays bounded and no per-node Captum call is
  needed.

Scores per sample are reduced to ``mean_attribution`` (mean signed) and ``importance`` (mean
absolute value, the ranking score). Ranks: 1 = most important, within each class over the whole
table (all modalities / priors), plus ``rank_in_modality``; ties are broken by name. The same model
and cohort give identical tables (only the timings in the summary vary).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from deepgami.data.lazy_inputs import InputBlock, materialize
from deepgami.nn.layers import SparseMaskedLinear
from deepgami.nn.network import DeepGAMINetwork

if TYPE_CHECKING:
    import mudata as md

    from deepgami.model import DeepGAMI, ModelInputs

__all__ = [
    "BASELINES",
    "TARGETS",
    "Prioritization",
    "RawAttributions",
    "attribute",
    "baseline_inputs",
    "encoder_path_gradients",
    "integrated_gradients",
    "link_scores",
    "output_function",
    "precision_at_k",
    "prioritize",
    "rank_table",
    "select_samples",
]

BASELINES = ("zero", "mean")
TARGETS = ("logit", "probability")
DEFAULT_N_STEPS = 50
DEFAULT_METHOD = "gausslegendre"  # Captum's default
# Bounds on working memory, in float32 values: interpolated inputs of one path batch (Captum), and
# the (samples x edges) block of per-sample link attributions scored at once.
PATH_BATCH_FLOATS = 1 << 24
EDGE_CHUNK_FLOATS = 2_000_000
# Latent values per batch of the link pass: every layer above the encoders keeps a few tensors of
# this size for the backward, so it is kept smaller than the input budget.
LATENT_BATCH_FLOATS = 1 << 22
REGRESSION_CLASS = "value"
FLOAT_FORMAT = "%.6g"  # fixed, so the same model and cohort give byte-identical tables


# -- building blocks on a bare network ----------------------------------------------------------


def output_function(
    task: str = "classification", target: str = "logit"
) -> Callable[[Tensor], Tensor]:
    """Return the map from logits (B, C) to the explained outputs (B, C).

    The outputs are centered logits, probabilities, or the value itself for a numeric phenotype.
    With centered logits the function has ``mirrors_binary = True``: with two classes, one
    class's attributions are the exact negatives of the other's.

    Parameters
    ----------
    task : str, default "classification"
        ``classification`` or ``regression`` (the logits are returned as they are).
    target : {"logit", "probability"}
        For a classification: centered logits or softmax probabilities.

    Returns
    -------
    callable
        The map from a (B, C) logit tensor to the (B, C) explained outputs.

    Raises
    ------
    ValueError
        When `target` is not one of `TARGETS` (classification only).
    """
    if task == "regression":
        return lambda logits: logits
    if target == "logit":

        def centered(logits: Tensor) -> Tensor:
            return logits - logits.mean(dim=1, keepdim=True)

        # With two classes the centered logits are exact negatives of each other (so are their
        # gradients, bit for bit): one class's attributions give the other's.
        centered.mirrors_binary = True  # type: ignore[attr-defined]
        return centered
    if target == "probability":
        return lambda logits: torch.softmax(logits, dim=1)
    raise ValueError(f"target must be one of {TARGETS}, not {target!r}")


def _from_latent(module: DeepGAMINetwork, latent: Sequence[Tensor]) -> Tensor:
    # Every modality is present for the attributed samples, so the head sees the encoded blocks.
    return module.head_logits(list(latent))


@contextlib.contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """Eval mode and no parameter gradients: otherwise the sparse layers' backward would also
    compute weight gradients nobody asked for (the most expensive part of their backward)."""
    flags = [p.requires_grad for p in module.parameters()]
    training = module.training
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags, strict=False):
            p.requires_grad_(flag)
        module.train(training)


def _approximation(n_steps: int, method: str) -> tuple[Tensor, list[float]]:
    """Step weights and alphas on [0, 1] of the rule Captum's IG uses for `method`, so the link pass
    walks exactly the path IG walks. Written here because Captum exposes these only in a private
    module (`captum.attr._utils`); the rules are the textbook ones and a test checks they match."""
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n_steps)
        alphas, steps = (nodes + 1) / 2, weights / 2
    elif method.startswith("riemann_"):
        grid = np.linspace(0.0, 1.0, n_steps)
        offsets = {
            "riemann_left": np.arange(n_steps) / n_steps,
            "riemann_right": np.arange(1, n_steps + 1) / n_steps,
            "riemann_middle": (np.arange(n_steps) + 0.5) / n_steps,
            "riemann_trapezoid": grid,
        }
        if method not in offsets:
            raise ValueError(f"unknown integration method '{method}'")
        alphas = offsets[method]
        steps = np.full(n_steps, 1.0 / n_steps)
        if (
            method == "riemann_trapezoid"
        ):  # Captum halves the end weights of 1/n (weights sum to 1 - 1/n)
            steps[[0, -1]] /= 2
    else:
        raise ValueError(f"unknown integration method '{method}'")
    return torch.tensor(steps, dtype=torch.float32), [float(a) for a in alphas]


def _batching(
    n_samples: int, width: int, n_steps: int, budget: int | None = None
) -> tuple[int, int]:
    """(samples per chunk, path steps per batch) with about `budget` (default PATH_BATCH_FLOATS)
    interpolated values per batch."""
    rows = max(1, (PATH_BATCH_FLOATS if budget is None else budget) // max(width, 1))
    if rows >= n_samples:
        return max(n_samples, 1), max(1, min(n_steps, rows // max(n_samples, 1)))
    return rows, 1


def integrated_gradients(
    module: DeepGAMINetwork,
    xs: Sequence[Tensor],
    baselines: Sequence[Tensor],
    target: int,
    transform: Callable[[Tensor], Tensor],
    n_steps: int = DEFAULT_N_STEPS,
    method: str = DEFAULT_METHOD,
    at: str = "inputs",
) -> tuple[list[Tensor], Tensor]:
    """Compute Captum integrated gradients of output `target`, at the inputs or the latent blocks.

    With ``at="latent"`` the path runs from the baseline's latent blocks (each encoder's
    post-activation output) to the sample's.

    Parameters
    ----------
    module : DeepGAMINetwork
        The network.
    xs : sequence of torch.Tensor
        Per modality, the samples (n x n_k, preprocessed units).
    baselines : sequence of torch.Tensor
        Per modality, the baseline: `baselines[k]` is a (n_k,) input vector.
    target : int
        The output index explained.
    transform : callable
        Maps the logits to the explained outputs (:func:`output_function`).
    n_steps : int, default DEFAULT_N_STEPS
        Steps of Captum's approximation of the path integral.
    method : str, default DEFAULT_METHOD
        Captum's approximation method.
    at : {"inputs", "latent"}
        Where the attributions are taken: each modality's inputs or its latent block.

    Returns
    -------
    attributions : list of torch.Tensor
        Per-sample attributions per modality (n x n_k, or n x L).
    delta : torch.Tensor
        The convergence delta per sample.

    Raises
    ------
    ValueError
        When `at` is neither ``inputs`` nor ``latent``.
    """
    from captum.attr import IntegratedGradients

    base_inputs = [b.reshape(1, -1).to(x.dtype) for b, x in zip(baselines, xs, strict=False)]
    if at == "inputs":

        def forward(*inputs: Tensor) -> Tensor:
            return transform(module.logits(*inputs))

        return _chunked_ig(
            module, IntegratedGradients(forward), xs, base_inputs, target, n_steps, method
        )
    if at != "latent":
        raise ValueError(f"at must be 'inputs' or 'latent', got {at!r}")

    def forward_latent(*latent: Tensor) -> Tensor:
        return transform(_from_latent(module, latent))

    with _frozen(module), torch.no_grad():
        base_latent = [c.reshape(1, -1) for c in module.encode(base_inputs)]
        latent = module.encode(xs)
    return _chunked_ig(
        module, IntegratedGradients(forward_latent), latent, base_latent, target, n_steps, method
    )


def _chunked_ig(
    module: DeepGAMINetwork,
    ig: Any,
    inputs: Sequence[Tensor],
    bases: Sequence[Tensor],
    target: int,
    n_steps: int,
    method: str,
) -> tuple[list[Tensor], Tensor]:
    """Captum IG over chunks of samples, each path batch about PATH_BATCH_FLOATS values wide.
    Returns per-sample attributions per input (n x width) and the convergence delta per sample."""
    n = inputs[0].shape[0]
    chunk, steps = _batching(n, sum(x.shape[1] for x in inputs), n_steps)
    attrs: list[list[Tensor]] = [[] for _ in inputs]
    deltas = []
    with _frozen(module):
        for s0 in range(0, n, chunk):
            part = tuple(x[s0 : s0 + chunk] for x in inputs)
            out, delta = ig.attribute(
                part,
                baselines=tuple(bases),
                target=target,
                n_steps=n_steps,
                method=method,
                internal_batch_size=part[0].shape[0] * steps,
                return_convergence_delta=True,
            )
            for k, a in enumerate(out):
                attrs[k].append(a.detach())
            deltas.append(delta.detach().reshape(-1))
    return [torch.cat(a) for a in attrs], torch.cat(deltas)


def encoder_path_gradients(
    module: DeepGAMINetwork,
    xs: Sequence[Tensor],
    baselines: Sequence[Tensor],
    targets: Sequence[int],
    transform: Callable[[Tensor], Tensor],
    n_steps: int = DEFAULT_N_STEPS,
    method: str = DEFAULT_METHOD,
    modalities: Sequence[int] | None = None,
) -> dict[int, dict[int, Tensor]]:
    """Path-averaged gradients of the outputs at the encoders' pre-activation outputs.

    An encoder is affine, so the image of the input path ``x' + alpha (x - x')`` is the straight
    path ``z' + alpha (z - z')`` between the encoder outputs: each encoder runs once on the inputs
    and once on the baseline, and the path steps only differentiate the network above the encoders
    (normalization, activation, head). One forward per path batch serves all targets.

    Parameters
    ----------
    module : DeepGAMINetwork
        The network.
    xs, baselines : sequence of torch.Tensor
        Per modality, the samples (n x p_k) and the baseline (p_k,).
    targets : sequence of int
        Output indices.
    transform : callable
        Maps the logits to the explained outputs (:func:`output_function`).
    n_steps, method : int and str
        Captum's approximation of the path integral (alphas and weights).
    modalities : sequence of int, optional
        The blocks to return (default: the sparse encoders).

    Returns
    -------
    dict
        ``G[target][k]``: an (n x L) tensor per target and returned block.
    """
    if modalities is None:
        modalities = [
            k for k, enc in enumerate(module.encoders) if isinstance(enc, SparseMaskedLinear)
        ]
    modalities, targets, n, n_latent = (
        list(modalities),
        list(targets),
        xs[0].shape[0],
        module.n_latent,
    )
    out = {
        t: {k: torch.zeros(n, n_latent, dtype=torch.float32) for k in modalities} for t in targets
    }
    if not modalities or not targets or n == 0:
        return out
    z_base, dz = _encoder_ends(module, xs, baselines)
    with _frozen(module):
        _walk_latent_path(module, z_base, dz, targets, modalities, transform, n_steps, method, out)
    return out


def _add_weighted(
    out: dict[int, dict[int, Tensor]],
    grads: dict[int, tuple[Tensor, ...]],
    modalities: list[int],
    rows: tuple[int, int],
    step_sizes: Tensor,
) -> None:
    """Add the step-weighted sum of one batch's path gradients (steps x rows x L) to `out`."""
    s0, s1 = rows
    weights = step_sizes.view(-1, 1, 1)
    for t, per_block in grads.items():
        for k, g in zip(modalities, per_block, strict=False):
            out[t][k][s0:s1] += (g.view(len(step_sizes), s1 - s0, g.shape[-1]) * weights).sum(0)


def _walk_latent_path(
    module: DeepGAMINetwork,
    z_base: list[Tensor],
    dz: list[Tensor],
    targets: list[int],
    modalities: list[int],
    transform: Callable[[Tensor], Tensor],
    n_steps: int,
    method: str,
    out: dict[int, dict[int, Tensor]],
) -> None:
    """Accumulate into `out` the gradients along the latent path, in batches of samples x steps
    that bound memory."""
    step_sizes, alphas = _approximation(n_steps, method)
    n, n_latent = dz[0].shape
    chunk, steps = _batching(n, len(module.encoders) * n_latent, n_steps, LATENT_BATCH_FLOATS)
    for s0 in range(0, n, chunk):
        s1 = min(s0 + chunk, n)
        for a0 in range(0, n_steps, steps):
            a1 = min(a0 + steps, n_steps)
            with torch.no_grad():
                z = [
                    torch.cat([zb + alpha * d[s0:s1] for alpha in alphas[a0:a1]], dim=0)
                    for zb, d in zip(z_base, dz, strict=False)
                ]
            grads = _latent_gradients(module, z, targets, modalities, transform)
            _add_weighted(out, grads, modalities, (s0, s1), step_sizes[a0:a1])


def _encoder_ends(
    module: DeepGAMINetwork, xs: Sequence[Tensor], baselines: Sequence[Tensor]
) -> tuple[list[Tensor], list[Tensor]]:
    """Each encoder's output on the baseline (1 x L) and its difference to the outputs on the
    samples (n x L): the two ends of the straight latent path."""
    n = xs[0].shape[0]
    with _frozen(module), torch.no_grad():
        z_base = [
            enc(b.reshape(1, -1).to(x.dtype))
            for enc, b, x in zip(module.encoders, baselines, xs, strict=False)
        ]
        # encoder outputs of all samples, in row chunks that bound the input slices read at once
        rows, _ = _batching(n, sum(x.shape[1] for x in xs), 1)
        z_x = [
            torch.cat([enc(x[r : r + rows]) for r in range(0, n, rows)])
            for enc, x in zip(module.encoders, xs, strict=False)
        ]
        dz = [zx - zb for zx, zb in zip(z_x, z_base, strict=False)]
    return z_base, dz


def _latent_gradients(
    module: DeepGAMINetwork,
    z: list[Tensor],
    targets: list[int],
    modalities: list[int],
    transform: Callable[[Tensor], Tensor],
) -> dict[int, tuple[Tensor, ...]]:
    """Per target, the gradients of the output at the pre-activation blocks of `modalities`
    (one forward pass for all targets)."""
    leaves = [zk.requires_grad_(k in modalities) for k, zk in enumerate(z)]
    out = {}
    with torch.enable_grad():
        y = transform(_from_latent(module, [module.activate(k, zk) for k, zk in enumerate(leaves)]))
        wanted = [leaves[k] for k in modalities]
        for i, t in enumerate(targets):
            out[t] = torch.autograd.grad(y[:, t].sum(), wanted, retain_graph=i < len(targets) - 1)
    return out


def link_scores(
    diff: Tensor,
    src: Tensor,
    dst: Tensor,
    weight: Tensor,
    grad: Tensor,
    chunk_floats: int = EDGE_CHUNK_FLOATS,
) -> tuple[np.ndarray, np.ndarray]:
    """Compute the mean signed and mean absolute per-sample attribution of every edge.

    The attribution of edge k for a sample is ``diff[:, src[k]] * weight[k] * grad[:, dst[k]]``
    (``diff = x - x'``, ``grad`` = path-averaged gradient at the encoder output). Edges are scored
    in chunks of about `chunk_floats` values, so no (samples x edges) matrix is ever held.

    Parameters
    ----------
    diff : torch.Tensor
        The samples minus the baseline, ``x - x'`` (samples x input features).
    src : torch.Tensor
        The input feature index of each edge.
    dst : torch.Tensor
        The encoder output (latent node) index of each edge.
    weight : torch.Tensor
        The learned weight of each edge.
    grad : torch.Tensor
        The path-averaged gradient at the encoder output (samples x latent nodes).
    chunk_floats : int, default EDGE_CHUNK_FLOATS
        About how many values are held per chunk of edges.

    Returns
    -------
    mean : numpy.ndarray
        The mean signed attribution of each edge (float64).
    mean_abs : numpy.ndarray
        The mean absolute attribution of each edge (float64).
    """
    n, n_edges = diff.shape[0], int(src.numel())
    mean = np.zeros(n_edges, dtype=np.float64)
    mean_abs = np.zeros(n_edges, dtype=np.float64)
    per = max(1, int(chunk_floats) // max(n, 1))
    with torch.no_grad():
        # feature- and node-major copies, so each edge gathers contiguous rows of n samples
        diff_t, grad_t = diff.t().contiguous(), grad.t().contiguous()
        for e0 in range(0, n_edges, per):
            e1 = min(e0 + per, n_edges)
            v = diff_t.index_select(0, src[e0:e1])
            v.mul_(grad_t.index_select(0, dst[e0:e1])).mul_(weight[e0:e1, None])
            # float32 sums over samples (relative error ~1e-7 x sqrt(n)): float64 would cost a third more
            mean[e0:e1] = v.sum(1).numpy()
            mean_abs[e0:e1] = v.abs_().sum(1).numpy()
    mean /= max(n, 1)
    mean_abs /= max(n, 1)
    return mean, mean_abs


# -- one call on a bare network -----------------------------------------------------------------


@dataclass
class RawAttributions:
    """Reduced scores per target (output index) and modality index, as arrays in encoder order.

    `features[t][k]` / `latent[t][k]` / `links[t][k]` are ``(mean_attribution, importance)``;
    `links[t]` holds only sparse encoders. `delta_*[t]` are per-sample convergence deltas;
    `completeness[t][k]` is max over features of |sum of its link means - its feature mean|
    divided by the largest feature importance (mean |attribution|) of that block; `seconds`
    times each stage.

    Parameters
    ----------
    targets : list of int
        The output indices explained.
    features : dict of int to dict of int to tuple of numpy.ndarray
        ``(mean_attribution, importance)`` per target and modality, per input feature.
    latent : dict of int to dict of int to tuple of numpy.ndarray
        ``(mean_attribution, importance)`` per target and modality, per latent node.
    links : dict of int to dict of int to tuple of numpy.ndarray
        ``(mean_attribution, importance)`` per target and sparse encoder, per edge.
    delta_features : dict of int to numpy.ndarray
        Per target, the per-sample convergence deltas of the feature level.
    delta_latent : dict of int to numpy.ndarray
        Per target, the per-sample convergence deltas of the latent level.
    output_change : dict of int to numpy.ndarray
        Per target, the per-sample change of the explained output, ``F(x) - F(x')``.
    completeness : dict of int to dict of int to float
        Per target and sparse encoder, the relative completeness error of the links.
    seconds : dict of str to float
        Seconds per level.
    mirrored : bool, default False
        Two classes, centered logits: the second target is the first negated.
    """

    targets: list[int]
    features: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    latent: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    links: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    delta_features: dict[int, np.ndarray] = field(default_factory=dict)
    delta_latent: dict[int, np.ndarray] = field(default_factory=dict)
    output_change: dict[int, np.ndarray] = field(default_factory=dict)
    completeness: dict[int, dict[int, float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    mirrored: bool = False  # two classes, centered logits: the second target is the first negated


def _mirror(res: RawAttributions, done: int, other: int) -> None:
    """Fill target `other` as the exact negative of target `done` (two-class centered logits)."""
    neg = lambda pair: (-pair[0], pair[1].copy())  # noqa: E731  (importance is unchanged)
    for level in (res.features, res.latent, res.links):
        if done in level:
            level[other] = {k: neg(v) for k, v in level[done].items()}
    for level in (res.delta_features, res.delta_latent, res.output_change):
        if done in level:
            level[other] = -level[done]
    if done in res.completeness:
        res.completeness[other] = dict(res.completeness[done])
    res.targets = [done, other]
    res.mirrored = True


def _reduce(a: Tensor) -> tuple[np.ndarray, np.ndarray]:
    return a.mean(0, dtype=torch.float64).numpy(), a.abs().mean(0, dtype=torch.float64).numpy()


def attribute(
    module: DeepGAMINetwork,
    xs: Sequence[InputBlock],
    baselines: Sequence[Tensor],
    targets: Sequence[int],
    transform: Callable[[Tensor], Tensor],
    n_steps: int = DEFAULT_N_STEPS,
    method: str = DEFAULT_METHOD,
    levels: Sequence[str] = ("features", "latent", "links"),
) -> RawAttributions:
    """Features, latent nodes and links for each output index in `targets` (all samples present).

    The samples explained are preprocessed to float32 once (integrated gradients revisits them at
    every step); the work on them is chunked.

    Parameters
    ----------
    module : DeepGAMINetwork
        The network.
    xs, baselines : sequence of torch.Tensor
        Per modality, the samples and the baseline (preprocessed units).
    targets : sequence of int
        Output indices to explain.
    transform : callable
        Maps the logits to the explained outputs (:func:`output_function`).
    n_steps, method : int and str
        Captum's approximation of the path integral.
    levels : sequence of str
        Which of ``features``, ``latent`` and ``links`` to compute.

    Returns
    -------
    RawAttributions
        Mean signed and absolute attributions per target and modality, convergence deltas,
        link completeness and seconds per level.
    """
    xs = [x.to(torch.float32).contiguous() for x in materialize(xs)]
    baselines = [torch.as_tensor(b, dtype=torch.float32).reshape(-1) for b in baselines]
    targets = list(dict.fromkeys(int(t) for t in targets))
    if getattr(transform, "mirrors_binary", False) and module.n_outputs == 2 and len(targets) == 2:
        res = attribute(module, xs, baselines, targets[:1], transform, n_steps, method, levels)
        _mirror(res, targets[0], targets[1])
        return res
    res = RawAttributions(list(targets))
    sparse = [k for k, enc in enumerate(module.encoders) if isinstance(enc, SparseMaskedLinear)]
    with _frozen(module), torch.no_grad():
        start = [b.reshape(1, -1) for b in baselines]
        f_x, f_base = transform(module.logits(*xs)), transform(module.logits(*start))
    for t in targets:
        res.output_change[t] = (f_x[:, t] - f_base[0, t]).double().numpy()
    for level in ("features", "latent"):
        if level in levels:
            _ig_level(res, level, module, xs, baselines, transform, n_steps, method)
    if "links" in levels and sparse:
        _link_level(res, module, xs, baselines, transform, n_steps, method, sparse)
        if "features" in levels:
            _completeness(res, module, targets, sparse)
    return res


def _ig_level(
    res: RawAttributions,
    level: str,
    module: DeepGAMINetwork,
    xs: list[Tensor],
    baselines: list[Tensor],
    transform: Callable[[Tensor], Tensor],
    n_steps: int,
    method: str,
) -> None:
    """Integrated gradients at the inputs (``features``) or the latent blocks (``latent``) of
    every target into `res`, with their convergence deltas and seconds."""
    t0 = time.perf_counter()
    for t in res.targets:
        at = "inputs" if level == "features" else "latent"
        attrs, delta = integrated_gradients(
            module, xs, baselines, t, transform, n_steps, method, at=at
        )
        getattr(res, level)[t] = {k: _reduce(a) for k, a in enumerate(attrs)}
        getattr(res, f"delta_{level}")[t] = delta.double().numpy()
    res.seconds[level] = time.perf_counter() - t0


def _link_level(
    res: RawAttributions,
    module: DeepGAMINetwork,
    xs: list[Tensor],
    baselines: list[Tensor],
    transform: Callable[[Tensor], Tensor],
    n_steps: int,
    method: str,
    sparse: list[int],
) -> None:
    """Attributions of every prior link of the sparse encoders into `res`, with their seconds."""
    t0 = time.perf_counter()
    targets = res.targets
    grads = encoder_path_gradients(
        module, xs, baselines, targets, transform, n_steps, method, sparse
    )
    for t in targets:
        res.links[t] = {}
        for k in sparse:
            enc = module.encoders[k]
            diff = xs[k] - baselines[k].reshape(1, -1)
            res.links[t][k] = link_scores(diff, enc.src, enc.dst, enc.weight.detach(), grads[t][k])
    res.seconds["links"] = time.perf_counter() - t0


def _completeness(
    res: RawAttributions, module: DeepGAMINetwork, targets: list[int], sparse: list[int]
) -> None:
    """Per target and sparse encoder: how far the links' attributions, summed per input feature,
    are from the features' (relative to the largest mean |attribution|)."""
    for t in targets:
        res.completeness[t] = {}
        for k in sparse:
            enc = module.encoders[k]
            summed = np.bincount(
                enc.src.numpy(), weights=res.links[t][k][0], minlength=enc.in_features
            )
            feat, feat_abs = res.features[t][k]
            # scale: the largest mean |attribution|; signed means can all be near 0
            scale = float(feat_abs.max()) if feat.size else 0.0
            err = float(np.abs(summed - feat).max()) if feat.size else 0.0
            res.completeness[t][k] = err / scale if scale > 0 else err


def average_attributions(raws: Sequence[RawAttributions]) -> RawAttributions:
    """Combine the attributions of networks whose outputs a model averages (bagging).

    The attributions are over the same samples. Integrated gradients is linear in the function
    explained, so signed means, convergence deltas and output changes average exactly to the
    ensemble's; `importance` (mean |attribution|) becomes the mean over networks of each one's.
    Completeness errors: the worst network's.

    Parameters
    ----------
    raws : sequence of RawAttributions
        One per network, with the same targets, modalities and samples.

    Returns
    -------
    RawAttributions
        The ensemble's attributions (the one given when there is one network); seconds are summed.
    """
    if len(raws) == 1:
        return raws[0]
    first = raws[0]
    out = RawAttributions(list(first.targets), mirrored=first.mirrored)
    for name in ("features", "latent", "links"):
        level = getattr(out, name)
        for t, blocks in getattr(first, name).items():
            level[t] = {
                k: tuple(np.mean([getattr(r, name)[t][k][i] for r in raws], axis=0) for i in (0, 1))
                for k in blocks
            }
    for name in ("delta_features", "delta_latent", "output_change"):
        getattr(out, name).update(
            {t: np.mean([getattr(r, name)[t] for r in raws], axis=0) for t in getattr(first, name)}
        )
    out.completeness = {
        t: {k: max(r.completeness[t][k] for r in raws) for k in blocks}
        for t, blocks in first.completeness.items()
    }
    out.seconds = {k: sum(r.seconds.get(k, 0.0) for r in raws) for k in first.seconds}
    return out


# -- tables ---------------------------------------------------------------------------------------


def rank_table(table: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """Add the rank columns to a table of attributions.

    The columns are `rank` (1 = most important, within each class over the whole table),
    `rank_in_modality` (within class and modality) and `top_decile` (rank <= ceil(n / 10) within
    the class). Ties in `importance` are broken by the `names` columns, so the order is
    deterministic. Rows come back sorted by class (in order of first appearance) and rank.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns class, modality, importance and the `names` columns.
    names : sequence of str
        The columns that name a row (e.g. ``["feature"]``), the tie-breakers in that order.

    Returns
    -------
    pandas.DataFrame
        A sorted copy with the three columns added (a fresh index).
    """
    table = table.reset_index(drop=True)
    class_order = {c: i for i, c in enumerate(dict.fromkeys(table["class"]))}
    keys = [table[c].astype(str).to_numpy() for c in reversed(list(names))]
    order = np.lexsort(
        (
            *keys,
            -table["importance"].to_numpy(dtype=np.float64),
            table["class"].map(class_order).to_numpy(),
        )
    )
    table = table.iloc[order].reset_index(drop=True)
    table["rank"] = table.groupby("class", sort=False).cumcount() + 1
    table["rank_in_modality"] = table.groupby(["class", "modality"], sort=False).cumcount() + 1
    size = table.groupby("class", sort=False)["rank"].transform("size")
    table["top_decile"] = table["rank"] <= np.ceil(size / 10.0)
    return table


@dataclass
class Prioritization:
    """The result of :func:`prioritize`: three ranked tables and a run summary.

    `features`: feature, modality, class, mean_attribution, importance, rank, rank_in_modality,
    top_decile. `latent`: node, modality (the encoder block), class, ... . `links`: source, target,
    modality, prior, class, weight (learned), mean_attribution, importance, ... (empty for a model
    without priors).

    Parameters
    ----------
    features : pandas.DataFrame
        The ranked input features.
    latent : pandas.DataFrame
        The ranked latent nodes.
    links : pandas.DataFrame
        The ranked prior links.
    summary : dict
        The run summary (written as summary.json).
    """

    features: pd.DataFrame
    latent: pd.DataFrame
    links: pd.DataFrame
    summary: dict

    def top_link_genes(self, cls: str) -> list[str]:
        """Return the latent genes that are the target of at least one top-decile link of `cls`.

        Parameters
        ----------
        cls : str
            The class.

        Returns
        -------
        list of str
            The genes, sorted.
        """
        rows = self.links[(self.links["class"] == cls) & self.links["top_decile"]]
        return sorted(set(rows["target"].astype(str)))

    def write(self, directory: str | Path) -> list[Path]:
        """Write features/latent/links as TSV and Parquet, and summary.json.

        The link figures are `deepgami.report.linkplot`'s.

        Parameters
        ----------
        directory : str or pathlib.Path
            An existing directory.

        Returns
        -------
        list of pathlib.Path
            The written files.
        """
        directory = Path(directory)
        written = []
        for name, table in (
            ("features", self.features),
            ("latent", self.latent),
            ("links", self.links),
        ):
            written.append(directory / f"{name}.tsv")
            table.to_csv(
                written[-1], sep="\t", index=False, float_format=FLOAT_FORMAT, lineterminator="\n"
            )
            written.append(directory / f"{name}.parquet")
            table.to_parquet(written[-1], index=False)
        written.append(directory / "summary.json")
        written[-1].write_text(json.dumps(self.summary, indent=1) + "\n")
        return written


def file_stem(name: str) -> str:
    """Make a class name safe for a file name (`a/b c` -> `a_b_c`).

    Parameters
    ----------
    name : str
        The class name (any value is turned into a string).

    Returns
    -------
    str
        Letters, digits, ``.``, ``_`` and ``-`` only; ``class`` when nothing is left.
    """
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._") or "class"


FEATURE_COLUMNS = [
    "feature",
    "modality",
    "class",
    "mean_attribution",
    "importance",
    "rank",
    "rank_in_modality",
    "top_decile",
]
LATENT_COLUMNS = [
    "node",
    "modality",
    "class",
    "mean_attribution",
    "importance",
    "rank",
    "rank_in_modality",
    "top_decile",
]
LINK_COLUMNS = [
    "source",
    "target",
    "modality",
    "prior",
    "class",
    "weight",
    "mean_attribution",
    "importance",
    "rank",
    "rank_in_modality",
    "top_decile",
]


def baseline_inputs(model: DeepGAMI, kind: str = "zero") -> list[Tensor]:
    """Return the baseline per modality, in preprocessed units.

    Parameters
    ----------
    model : DeepGAMI
        The trained model.
    kind : {"zero", "mean"}
        Zeros, or the training mean preprocessed.

    Returns
    -------
    list of torch.Tensor
        One float32 vector per modality, as long as its features.

    Raises
    ------
    ValueError
        When `kind` is not one of `BASELINES`.
    """
    if kind not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, not {kind!r}")
    out = []
    for prep in model.preprocessors:
        if kind == "zero":
            out.append(torch.zeros(len(prep.features), dtype=torch.float32))
        else:
            out.append(
                torch.from_numpy(
                    prep.transform(np.asarray(prep.fill, dtype=np.float32).reshape(1, -1))[0]
                )
            )
    return out


def _delta_stats(delta: np.ndarray, change: np.ndarray) -> dict:
    if delta.size == 0:
        return {"mean_abs": None, "max_abs": None, "relative": None}
    scale = float(np.mean(np.abs(change)))
    return {
        "mean_abs": float(np.mean(np.abs(delta))),
        "max_abs": float(np.max(np.abs(delta))),
        "relative": float(np.mean(np.abs(delta)) / scale) if scale > 0 else None,
    }


def prior_link_counts(model: DeepGAMI) -> list[int | None]:
    """Count, per modality, how many of its encoder's edges (the first ones) are prior links.

    Models saved before self-edges existed have prior links only.

    Parameters
    ----------
    model : DeepGAMI
        The trained model.

    Returns
    -------
    list of int or None
        One count per modality; None for a dense encoder.
    """
    counts = model.config.get("network", {}).get("prior_edges")
    if counts is not None:
        return [None if c is None else int(c) for c in counts]
    return [
        enc.n_edges if isinstance(enc, SparseMaskedLinear) else None
        for enc in model.module.encoders
    ]


def select_samples(
    model: DeepGAMI, mdata: md.MuData, split: str | None = None, source: str | None = None
) -> tuple[ModelInputs, dict[str, int]]:
    """Select the samples to explain: in `split` (when given) and having every model modality.

    Parameters
    ----------
    model : DeepGAMI
        The trained model.
    mdata : mudata.MuData
        The cohort.
    split : str, optional
        Keep only the samples of this split.
    source : str, optional
        The file the cohort came from, named in errors.

    Returns
    -------
    inputs : ModelInputs
        The model inputs of the samples kept.
    counts : dict of str to int
        What was kept and left out: ``n_samples``, ``n_not_in_split``, ``n_incomplete``.

    Raises
    ------
    InputError
        When `split` is missing, or no sample in it has every model modality.
    """
    from deepgami.data import cohort
    from deepgami.errors import InputError
    from deepgami.utils import split_mask

    inputs = model.prepare_inputs(mdata)
    n_all = len(inputs.obs_names)
    keep = np.ones(n_all, dtype=bool)
    if split:
        keep &= split_mask(mdata, split, source, cohort.SPLIT)
    in_split = int(keep.sum())
    complete = inputs.present.numpy().all(axis=1)
    keep &= complete
    if not keep.any():
        raise InputError(
            source,
            f"none of the {in_split} samples{f' in split {split!r}' if split else ''} has every "
            f"model modality ({', '.join(model.modalities)}); attributions need complete samples",
        )
    counts = {
        "n_samples": int(keep.sum()),
        "n_not_in_split": int(n_all - in_split),
        "n_incomplete": int(in_split - keep.sum()),
    }
    return inputs.rows(np.flatnonzero(keep)), counts


def _threads(module: DeepGAMINetwork) -> contextlib.AbstractContextManager:
    # Same policy as training: tiny networks run fastest, and reproducibly, on one thread.
    from deepgami.model._fitting import threads_for

    return threads_for(sum(enc.weight.numel() for enc in module.encoders))


def prioritize(
    model: DeepGAMI,
    mdata: md.MuData,
    split: str | None = None,
    classes: Sequence[str] | None = None,
    baseline: str = "zero",
    target: str = "logit",
    n_steps: int = DEFAULT_N_STEPS,
    method: str = DEFAULT_METHOD,
    source: str | None = None,
    networks: str = "all",
) -> Prioritization:
    """Rank input features, latent nodes and prior links of a trained `DeepGAMI` model on a cohort.

    Parameters
    ----------
    model : DeepGAMI
        A trained :class:`deepgami.model.DeepGAMI`.
    mdata : mudata.MuData
        The cohort; samples in `split` (all when None) having every modality are used.
    split : str, optional
        The ``obs['split']`` value of the samples to explain (None: all).
    classes : sequence of str, optional
        Which classes to explain (default all; a numeric phenotype has ``value``).
    baseline : {"zero", "mean"}
        ``zero`` (preprocessed zeros = training mean under standard scaling) or ``mean``.
    target : {"logit", "probability"}
        ``logit`` (centered logit) or ``probability``.
    n_steps, method : int and str
        The integral's approximation, as in Captum.
    source : str, optional
        The cohort's path, for error messages.
    networks : {"all", "refit"}
        ``all`` explains every network of a bagged model and averages them; ``refit`` only the
        refit on all training samples (``model.module``).

    Returns
    -------
    Prioritization
        The features, latent and links tables, and the provenance (``summary``).
    """
    _check_options(target, n_steps, networks)
    members = model.members if networks == "all" else model.members[:1]
    t_start = time.perf_counter()
    chosen, targets = _chosen_classes(model, classes)
    inputs, counts = select_samples(model, mdata, split, source)
    transform = (
        output_function(model.task, target)
        if model.targets is None
        else multi_output_function(model.targets, target)
    )
    bases = baseline_inputs(model, baseline)
    with _threads(model.module):
        xs = [x.to(torch.float32).contiguous() for x in materialize(inputs.xs)]  # once for all
        raw = average_attributions(
            [attribute(net, xs, bases, targets, transform, n_steps, method) for net in members]
        )
    pairs = list(zip(targets, chosen, strict=False))
    options = {"split": split, "target": target, "baseline": baseline, "method": method}
    summary = _provenance(model, raw, pairs, counts, options, int(n_steps), len(members))
    summary["seconds"]["total"] = round(time.perf_counter() - t_start, 3)
    tables = [
        _feature_table(model, raw, pairs),
        _latent_table(model, raw, pairs),
        _link_table(model, raw, pairs, members),
    ]
    if model.targets is not None:
        tables = [_with_phenotype(t) for t in tables]
    return Prioritization(*tables, summary)


def _with_phenotype(table: pd.DataFrame) -> pd.DataFrame:
    """Several targets: a `phenotype` column (the target) before `class` (``<target>:<class>``,
    ``<target>:value`` or ``<target>:risk``); links.tsv's `target` is the link's latent gene."""
    table = table.copy()
    table.insert(
        int(table.columns.get_loc("class")),
        "phenotype",
        table["class"].astype(str).str.split(":", n=1).str[0],
    )
    return table


def multi_output_function(
    specs: Sequence[dict], target: str = "logit"
) -> Callable[[Tensor], Tensor]:
    """Return the explained outputs of a multi-target model: each block on its own.

    Classes blocks become centered logits (or probabilities) within the block; numeric values and
    survival risks stay as they are.

    Parameters
    ----------
    specs : sequence of dict
        The model's ``targets`` entries (``kind``, ``start``, ``width``).
    target : {"logit", "probability"}
        For classes blocks: centered logits or softmax probabilities.

    Returns
    -------
    callable
        The map from a (B, outputs) logit tensor to the (B, outputs) explained outputs.
    """
    per_block = output_function("classification", target)

    def explained(logits: Tensor) -> Tensor:
        parts = []
        for s in specs:
            block = logits[:, s["start"] : s["start"] + s["width"]]
            parts.append(per_block(block) if s["kind"] == "classes" else block)
        return torch.cat(parts, dim=1)

    return explained


def _check_options(target: str, n_steps: int, networks: str) -> None:
    """Refuse an unknown target, a step count below one or an unknown `networks`."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, not {target!r}")
    if int(n_steps) < 1:
        raise ValueError("n_steps must be >= 1")
    if networks not in ("all", "refit"):
        raise ValueError(f"networks must be 'all' or 'refit', not {networks!r}")


def _chosen_classes(model: DeepGAMI, classes: Sequence[str] | None) -> tuple[list[str], list[int]]:
    """The classes to explain (all by default) and their output indices."""
    from deepgami.errors import InputError

    names = model.classes if model.task == "classification" else [REGRESSION_CLASS]
    if model.targets is not None:
        names = output_names(model.targets)
        wanted = [str(c) for c in classes or []]
        classes = [n for n in names if n in wanted or n.split(":")[0] in wanted] or classes
    if classes is None:
        chosen = list(names)
    else:
        chosen = list(dict.fromkeys(str(c) for c in classes))
        unknown = [c for c in chosen if c not in names]
        if unknown:
            raise InputError(
                None, f"unknown class '{unknown[0]}'; the model has: {', '.join(names)}"
            )
    return chosen, [names.index(c) for c in chosen]


def output_names(specs: Sequence[dict]) -> list[str]:
    """Name each output of a multi-target model, in output order.

    ``<target>:<class>``, ``<target>:value`` or ``<target>:risk``.

    Parameters
    ----------
    specs : sequence of dict
        The model's ``targets`` entries.

    Returns
    -------
    list of str
        One name per output.
    """
    names = []
    for s in specs:
        if s["kind"] == "classes":
            names += [f"{s['name']}:{c}" for c in s["classes"]]
        else:
            names.append(f"{s['name']}:{'risk' if s['kind'] == 'survival' else REGRESSION_CLASS}")
    return names


def _feature_table(model: DeepGAMI, raw: Any, pairs: list[tuple[int, str]]) -> pd.DataFrame:
    """Input features ranked per class (FEATURE_COLUMNS)."""
    rows = []
    for t, cls in pairs:
        for k, m in enumerate(model.modalities):
            mean, imp = raw.features[t][k]
            rows.append(
                pd.DataFrame(
                    {
                        "feature": model.features(m),
                        "modality": m,
                        "class": cls,
                        "mean_attribution": mean,
                        "importance": imp,
                    }
                )
            )
    return rank_table(pd.concat(rows, ignore_index=True), ["feature", "modality"])[FEATURE_COLUMNS]


def _latent_table(model: DeepGAMI, raw: Any, pairs: list[tuple[int, str]]) -> pd.DataFrame:
    """Latent nodes ranked per class and modality block (LATENT_COLUMNS)."""
    latent_names = np.asarray(model.latent_nodes, dtype=object)
    rows = []
    for t, cls in pairs:
        for k, m in enumerate(model.modalities):
            mean, imp = raw.latent[t][k]
            rows.append(
                pd.DataFrame(
                    {
                        "node": latent_names,
                        "modality": m,
                        "class": cls,
                        "mean_attribution": mean,
                        "importance": imp,
                    }
                )
            )
    return rank_table(pd.concat(rows, ignore_index=True), ["node", "modality"])[LATENT_COLUMNS]


def _link_table(
    model: DeepGAMI, raw: Any, pairs: list[tuple[int, str]], members: list[DeepGAMINetwork]
) -> pd.DataFrame:
    """Prior links ranked per class (LINK_COLUMNS); empty without a prior-guided encoder."""
    latent_names = np.asarray(model.latent_nodes, dtype=object)
    prior_links = prior_link_counts(model)
    rows = []
    for t, cls in pairs:
        for k, m in enumerate(model.modalities):
            if k not in raw.links.get(t, {}):
                continue
            enc = model.module.encoders[k]
            n = prior_links[k]  # the self-edges after them are not prior links
            mean, imp = raw.links[t][k]
            feats = np.asarray(model.features(m), dtype=object)
            weights = [net.encoders[k].weight.detach().double().numpy()[:n] for net in members]
            rows.append(
                pd.DataFrame(
                    {
                        "source": feats[enc.src.numpy()[:n]],
                        "target": latent_names[enc.dst.numpy()[:n]],
                        "modality": m,
                        "prior": str(model.config.get("priors", {}).get(m) or ""),
                        "class": cls,
                        "weight": np.mean(weights, axis=0),
                        "mean_attribution": mean[:n],
                        "importance": imp[:n],
                    }
                )
            )
    if not rows:
        text = ("source", "target", "modality", "prior", "class")
        return pd.DataFrame(
            {c: pd.Series(dtype=object if c in text else float) for c in LINK_COLUMNS}
        )
    return rank_table(pd.concat(rows, ignore_index=True), ["source", "target", "prior"])[
        LINK_COLUMNS
    ]


TARGET_DESCRIPTIONS = {
    "logit": "class logit minus the mean logit over classes (softmax is shift-invariant)",
    "probability": "softmax probability of the class",
    "value": "predicted phenotype (standardized units)",
}
BASELINE_DESCRIPTIONS = {
    "zero": "all-zero preprocessed input (= the training mean under standard scaling)",
    "mean": "training mean of each feature, preprocessed",
}


def _provenance(
    model: DeepGAMI,
    raw: Any,
    pairs: list[tuple[int, str]],
    counts: dict[str, int],
    options: dict[str, Any],
    n_steps: int,
    n_members: int,
) -> dict[str, Any]:
    """What was explained and how (samples, target, baseline, convergence, sizes)."""
    target = options["target"] if model.task in ("classification", "multi") else "value"
    prior_links = prior_link_counts(model)
    return {
        "split": options["split"] or None,
        **counts,
        "samples": "samples in the split having every model modality",
        "classes": [cls for _, cls in pairs],
        "target": target,
        "target_description": TARGET_DESCRIPTIONS[target],
        "baseline": options["baseline"],
        "baseline_description": BASELINE_DESCRIPTIONS[options["baseline"]],
        "method": options["method"],
        "n_steps": n_steps,
        "convergence_delta": {
            cls: {
                "features": _delta_stats(raw.delta_features[t], raw.output_change[t]),
                "latent": _delta_stats(raw.delta_latent[t], raw.output_change[t]),
            }
            for t, cls in pairs
        },
        "link_completeness_error": {
            cls: {model.modalities[k]: v for k, v in raw.completeness.get(t, {}).items()}
            for t, cls in pairs
        },
        "binary_classes_mirrored": bool(raw.mirrored),
        "networks_explained": n_members,
        "n_features": int(sum(len(model.features(m)) for m in model.modalities)),
        "n_latent_nodes": int(model.module.n_latent),
        "n_links": int(sum(n for n in prior_links if n is not None)),
        "seconds": {k: round(v, 3) for k, v in raw.seconds.items()},
        "versions": _versions(),
    }


def _versions() -> dict[str, str]:
    """Versions of the packages that computed the attributions."""
    import captum

    from deepgami import __version__

    return {"deepgami": __version__, "captum": captum.__version__, "torch": torch.__version__}


def precision_at_k(
    links: pd.DataFrame, truth_links: Sequence[dict], cls: str | None = None
) -> float:
    """Return the share of the top-K links of a class that are true links.

    K is the number of true links; links are matched on (source, target, prior).

    Parameters
    ----------
    links : pandas.DataFrame
        A ranked links table (source, target, prior, class, rank).
    truth_links : sequence of dict
        The true links, each with ``source``, ``target`` and ``prior``.
    cls : str, optional
        The class (default: the table's first class).

    Returns
    -------
    float
        The precision at K; NaN without true links.
    """
    table = links if cls is None else links[links["class"] == cls]
    if cls is None and table["class"].nunique() > 1:
        table = table[table["class"] == table["class"].iloc[0]]
    true = {(d["source"], d["target"], d["prior"]) for d in truth_links}
    k = len(true)
    if k == 0:
        return math.nan
    top = table.nsmallest(k, "rank")
    return float(
        np.mean(
            [
                (s, t, p) in true
                for s, t, p in zip(top["source"], top["target"], top["prior"], strict=False)
            ]
        )
    )
