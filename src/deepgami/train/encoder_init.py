"""Starting the encoders at the prior's own regression, calibrating the imputers, latent means."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

from deepgami.data.lazy_inputs import InputBlock, chunk_rows, materialize
from deepgami.nn.network import AffineImputer, DeepGAMINetwork
from deepgami.train.loop import Batch

# Latent genes with more prior sources than this start from marginal (per-edge) regressions
# instead of a joint ridge fit: a d x d solve per gene is cheap for eQTL/GRN fan-ins of a few to a
# few hundred, not for thousands.
RIDGE_MAX_FAN_IN = 512
# The joint fits read one float32 (features x rows) copy of the modality; above this many values
# (1 GiB) the start is the marginal regression per edge, streamed a chunk of rows at a time.
JOINT_INIT_MAX_VALUES = 2**28


@torch.no_grad()
def init_encoders_from_targets(
    net: DeepGAMINetwork,
    xs: Sequence[InputBlock],
    present: Tensor,
    targets: np.ndarray,
    n_prior: Sequence[int | None] | None = None,
    ridge: float = 0.01,
    min_rows: int = 5,
    joint: bool = False,
) -> dict[str, int]:
    """Start each sparse encoder at a ridge regression of its latent genes on their prior sources.

    Node g of modality k gets the weights that best predict `targets[:, g]` (the standardized
    measurement of gene g; NaN where not measured or not a variable of the cohort) from g's
    sources in modality k, over rows having both. This is the eQTL / GRN regression of the prior
    itself (PrediXcan-style predicted expression); it uses no labels.

    `joint`: one regression per gene on the union of its sources in every guided modality (its
    eQTL SNPs and its TFs together, over rows having all of them), its coefficients split among
    the encoders, so that the blocks of a gene add up to that one fit. Separate fits each take
    the part of the gene their sources predict; when genotype drives TF expression both take the
    TF-mediated genetic part, and a summed head counts it twice. A gene whose joint fit has too
    few rows, or whose modalities do not all fit in one float32 copy (JOINT_INIT_MAX_VALUES in
    all), keeps the separate start.

    `n_prior[k]`: the first n_prior[k] edges of encoder k are the prior's; the rest are self-edges
    (a gene's own measurement into its node), which start at weight 1 and stay out of the
    regression: the node starts as the measured gene plus its regulators' fit, so the prior
    links carry their regression weights from the start (fitting the measurement on itself
    would give the self-edge everything and the regulators nothing).

    `ridge`: the penalty per row on standardized inputs. Nodes without a measured target, or with
    too few rows, keep their random start. A modality too large for one float32 copy
    (JOINT_INIT_MAX_VALUES) gets marginal regressions (`_marginal_init`).

    Parameters
    ----------
    net : DeepGAMINetwork
        The network whose sparse encoders are started (updated in place).
    xs : Sequence of InputBlock
        The training inputs of each modality.
    present : torch.Tensor
        Which modalities each training row has (rows x K, boolean).
    targets : numpy.ndarray
        The standardized measurement of each latent gene (rows x latent nodes; NaN where unknown).
    n_prior : Sequence of int or None, optional
        Per encoder, how many of its edges (the first ones) are the prior's (None: all of them).
    ridge : float, default 0.01
        The ridge penalty per row.
    min_rows : int, default 5
        The fewest rows a node's regression needs.
    joint : bool, default False
        One regression per gene over all modalities' sources instead of one per modality.

    Returns
    -------
    dict of str to int
        Per modality index, how many nodes were initialized.
    """
    from deepgami.nn.layers import SparseMaskedLinear

    out: dict[str, int] = {}
    guided: list[tuple[int, int]] = []  # (modality, prior edges) of the in-memory encoders
    for k, enc in enumerate(net.encoders):
        if not isinstance(enc, SparseMaskedLinear) or enc.n_edges == 0:
            continue
        prior = enc.n_edges if n_prior is None or n_prior[k] is None else int(n_prior[k])
        if xs[k].shape[0] * xs[k].shape[1] > JOINT_INIT_MAX_VALUES:
            out[str(k)] = _marginal_init(
                enc, xs[k], present[:, k].numpy(), targets, ridge, min_rows
            )
            enc.weight[prior:] = 1.0  # the self-edges, as below
            continue
        guided.append((k, prior))
    size = sum(xs[k].shape[0] * xs[k].shape[1] for k, _ in guided)
    # Separate fits hold one modality's copy at a time; a joint fit needs them all at once.
    together = joint and size <= JOINT_INIT_MAX_VALUES
    for group in [guided] if together else [[g] for g in guided]:
        sources = [_Sources(k, net.encoders[k], xs[k], present[:, k].numpy(), p) for k, p in group]
        _ridge_init(sources, targets, ridge, min_rows)
        out.update({str(s.k): s.store() for s in sources})
    return dict(sorted(out.items(), key=lambda kv: int(kv[0])))


class _Sources:
    """One in-memory guided modality: its data (features x rows), its prior edges grouped by
    latent node, and float64 copies of its encoder's weights and bias being started."""

    def __init__(self, k: int, enc: nn.Module, x: InputBlock, have: np.ndarray, prior: int):
        self.k, self.enc, self.have = k, enc, have
        self.weight = enc.weight.detach().double().numpy().copy()
        self.weight[prior:] = 1.0  # self-edges: the measured gene itself, out of the regression
        self.bias = enc.bias.detach().double().numpy().copy() if enc.bias is not None else None
        self.src, dst = enc.src.numpy()[:prior], enc.dst.numpy()[:prior]
        self.by_dst = np.argsort(dst, kind="stable")
        self.ptr = np.zeros(enc.out_features + 1, dtype=np.int64)  # over the prior edges only
        np.cumsum(np.bincount(dst, minlength=enc.out_features), out=self.ptr[1:])
        # (features, rows), C-contiguous: a gene's sources are whole rows of it, cheap to gather.
        self.xt = materialize([x])[0].numpy().T
        self.done = 0

    def edges(self, g: int) -> np.ndarray:
        """The prior edges into node g."""
        return self.by_dst[self.ptr[g] : self.ptr[g + 1]]

    def columns(self, edges: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The sources of `edges` on `rows` (rows x edges, float64)."""
        return self.xt[self.src[edges]][:, rows].T.astype(np.float64)

    def set_node(self, g: int, edges: np.ndarray, w: np.ndarray, b: float) -> None:
        """Write node g's start (its prior edges' weights and its bias)."""
        self.weight[edges] = w
        if self.bias is not None:
            self.bias[g] = b
        self.done += 1

    def store(self) -> int:
        """Copy the start into the encoder; returns the nodes set."""
        enc = self.enc
        enc.weight.copy_(torch.from_numpy(self.weight).to(enc.weight.dtype))
        if self.bias is not None:
            enc.bias.copy_(torch.from_numpy(self.bias).to(enc.bias.dtype))
        return self.done


def _ridge_init(
    group: Sequence[_Sources], targets: np.ndarray, ridge: float, min_rows: int
) -> None:
    """Fit each measured node on its sources in every modality of `group` together (one
    modality: the separate start); a node whose joint fit fails gets one fit per modality."""
    target_ok = ~np.isnan(targets)
    for g in np.flatnonzero(target_ok.any(axis=0)):
        parts = [(s, s.edges(g)) for s in group]
        parts = [(s, e) for s, e in parts if len(e) > 0]
        if len(parts) > 1 and _fit_node(parts, g, targets, target_ok[:, g], ridge, min_rows):
            continue
        for part in parts:
            _fit_node([part], g, targets, target_ok[:, g], ridge, min_rows)


def _fit_node(
    parts: Sequence[tuple[_Sources, np.ndarray]],
    g: int,
    targets: np.ndarray,
    ok: np.ndarray,
    ridge: float,
    min_rows: int,
) -> bool:
    """One ridge regression of target g on the sources `parts` name, over rows having all of
    them, split back into each part's weights; False (nothing written) when it cannot be fitted."""
    rows = np.flatnonzero(ok & np.logical_and.reduce([s.have for s, _ in parts]))
    if len(rows) < min_rows:
        return False
    blocks = [s.columns(e, rows) for s, e in parts]
    fit = _ridge_node(np.hstack(blocks), targets[rows, g].astype(np.float64), ridge)
    if fit is None:
        return False
    w, intercept = fit
    if len(parts) == 1:
        parts[0][0].set_node(g, parts[0][1], w, intercept)
        return True
    # Each part takes its own centring and an equal share of the target's mean (~0 on these
    # rows): the blocks add up to the joint fit, intercept included.
    ym, at = targets[rows, g].mean(), np.cumsum([0] + [b.shape[1] for b in blocks])
    for i, ((s, e), b) in enumerate(zip(parts, blocks, strict=True)):
        wi = w[at[i] : at[i + 1]]
        s.set_node(g, e, wi, ym / len(parts) - b.mean(axis=0) @ wi)
    return True


def _ridge_node(X: np.ndarray, y: np.ndarray, ridge: float) -> tuple[np.ndarray, float] | None:
    """Ridge weights and intercept of `y` on the columns of `X` (lambda = ridge * rows; marginal
    slopes above RIDGE_MAX_FAN_IN columns); None when they are not finite or all zero."""
    xm, ym = X.mean(axis=0), y.mean()
    Xc, yc = X - xm, y - ym
    lam = ridge * len(y)
    if X.shape[1] <= RIDGE_MAX_FAN_IN:
        gram = Xc.T @ Xc + lam * np.eye(X.shape[1])
        w = np.linalg.solve(gram, Xc.T @ yc)
    else:
        w = (Xc.T @ yc) / ((Xc * Xc).sum(axis=0) + lam)
    if not np.all(np.isfinite(w)) or not np.any(w):
        return None
    return w, ym - xm @ w


def _marginal_init(
    enc: nn.Module,
    x: InputBlock,
    have: np.ndarray,
    targets: np.ndarray,
    ridge: float,
    min_rows: int,
) -> int:
    """Per edge s -> g: the ridge slope of target g on source s alone, sum(x_s y_g) / (sum(x_s^2) +
    ridge n), accumulated over chunks of rows with the layer's own edge kernel (inputs are
    standardized by the fold's scaler, targets by `latent_targets`, so no centering is needed)."""
    y_ok = ~np.isnan(targets) & have[:, None]
    n_g = y_ok.sum(axis=0)
    xy = torch.zeros(enc.n_edges, dtype=torch.float64)
    xx = torch.zeros(enc.in_features, dtype=torch.float64)
    step = chunk_rows([x])
    for s in range(0, x.shape[0], step):
        xc = materialize([x[s : s + step]])[0]
        yc = torch.from_numpy(
            np.where(y_ok[s : s + step], targets[s : s + step], 0.0).astype(np.float32)
        )
        xy += enc.edge_products(xc, yc).double()
        xx += (xc.double() ** 2 * torch.from_numpy(have[s : s + step, None])).sum(dim=0)
    node_ok = torch.from_numpy(n_g >= min_rows) & (
        torch.bincount(enc.dst, minlength=enc.out_features) > 0
    )
    slope = xy / (xx[enc.src] + ridge * torch.from_numpy(n_g).double()[enc.dst]).clamp(min=1e-12)
    enc.weight.copy_(
        torch.where(node_ok[enc.dst], slope, enc.weight.detach().double()).to(enc.weight.dtype)
    )
    if enc.bias is not None:
        enc.bias.copy_(torch.where(node_ok, torch.zeros_like(enc.bias), enc.bias))
    return int(node_ok.sum())


@torch.no_grad()
def calibrate_imputers(
    net: DeepGAMINetwork, data: Batch, min_rows: int = 5
) -> dict[str, tuple[float, float]]:
    """Refit each affine imputer (scalar or per-node alpha, beta) by least squares on `data`.

    The auxiliary loss fits the maps on the rows the encoders were trained on, where the encoders
    have co-adapted to predict each other, so the maps overstate how much one block tells about
    another; on new samples such a map imputes worse than the mean. Refit on the inner validation
    rows (never used for gradient steps), alpha shrinks to what holds out-of-sample, down to 0
    (the training mean) when the modalities share nothing.

    Parameters
    ----------
    net : DeepGAMINetwork
        The network whose imputers are refitted (updated in place).
    data : Batch
        The rows to refit on (the inner validation rows).
    min_rows : int, default 5
        The fewest rows having both modalities a pair's imputer needs to be refitted.

    Returns
    -------
    dict of str to tuple of float
        {pair: (mean alpha, mean beta)} of each refitted imputer.
    """
    latent = encode_in_chunks(net, data.xs)
    out = {}
    for i in range(net.n_modalities):
        for j in range(net.n_modalities):
            imp = net.imputers[net.pair_key(i, j)] if i != j else None
            if not isinstance(imp, AffineImputer):
                continue
            rows = data.present[:, i] & data.present[:, j]
            if int(rows.sum()) < min_rows:
                continue
            x, y = latent[i][rows].double(), latent[j][rows].double()
            if imp.alpha.numel() == 1:
                x, y = x.reshape(-1, 1), y.reshape(-1, 1)
            xc, yc = x - x.mean(dim=0), y - y.mean(dim=0)
            var = (xc * xc).mean(dim=0)
            alpha = torch.where(
                var > 1e-12, (xc * yc).mean(dim=0) / var.clamp(min=1e-12), torch.zeros_like(var)
            )
            beta = y.mean(dim=0) - alpha * x.mean(dim=0)
            imp.alpha.copy_(alpha.float().reshape(imp.alpha.shape))
            imp.beta.copy_(beta.float().reshape(imp.beta.shape))
            out[net.pair_key(i, j)] = (float(alpha.mean()), float(beta.mean()))
    return out


@torch.no_grad()
def encode_in_chunks(net: DeepGAMINetwork, xs: Sequence[InputBlock]) -> list[Tensor]:
    """Compute the latent blocks (eval mode) of every row, a memory-bounded chunk at a time.

    Parameters
    ----------
    net : DeepGAMINetwork
        The network whose encoders run (set to eval mode).
    xs : Sequence of InputBlock
        The inputs of each modality.

    Returns
    -------
    list of torch.Tensor
        Each modality's latent block (rows x latent nodes).
    """
    net.eval()
    n, step = int(xs[0].shape[0]), chunk_rows(xs)
    parts = [net.encode(materialize([x[s : s + step] for x in xs])) for s in range(0, n, step)]
    if not parts:
        return [torch.zeros(0, net.n_latent) for _ in range(net.n_modalities)]
    return [torch.cat([p[k] for p in parts]) for k in range(net.n_modalities)]


@torch.no_grad()
def set_latent_means(net: DeepGAMINetwork, data: Batch) -> None:
    """Store each block's mean over the rows that have the modality (the mean-fill baseline).

    Parameters
    ----------
    net : DeepGAMINetwork
        The network whose latent means are set (updated in place).
    data : Batch
        The rows the means are taken over.
    """
    latent = encode_in_chunks(net, data.xs)
    for k, block in enumerate(latent):
        rows = data.present[:, k]
        mean = (
            block[rows].double().mean(dim=0)
            if bool(rows.any())
            else torch.zeros(net.n_latent, dtype=torch.float64)
        )
        net.latent_mean[k].copy_(mean.float())
