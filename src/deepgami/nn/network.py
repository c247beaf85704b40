"""The DeepGAMI network: one encoder per modality, cross-modal imputation of latent blocks, a head.

This module only computes (scvi-tools style); `deepgami.model.DeepGAMI` owns data, training,
saving and prediction. Shapes: K modalities, L latent nodes, B samples in a batch.

    x_k (B, n_k) --encoder_k--> z_k --norm, act--> C_k (B, L)   encoder sparse from the prior, else dense
    C_j* = mean over present i != j of f_ij(C_i)     f: alpha*C + beta (paper), per_node, linear, mlp
    block_j = C_j if modality j is present else C_j*
    logits = head(concat(gate_k * block_k))         dropout -> [Linear, ReLU, Dropout]* -> Linear

Public pieces for attribution: `encoders[k](x)` (pre-activation z_k), `activate(k, z_k)` (-> C_k),
`head_logits(blocks)` (-> logits), and `logits(*xs)` (the whole map, Captum's forward signature).

The auxiliary loss is MSE(f_ij(C_i), C_j) over samples that have both modalities. Two guards keep
it from being won by shrinking the imputed-to block (the published reference ends with that block
at half the spread of the other and alpha of 0.02-0.06, i.e. mean-fill): the target C_j is
detached, and each latent node is standardized (`LatentNorm`), so no block can shrink. The head
still selects genes through per-node gates under weight decay.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from deepgami.nn.layers import SparseMaskedLinear

IMPUTERS = ("scalar", "per_node", "linear", "mlp")
ACTIVATIONS = ("relu", "tanh", "linear")
AUX_TARGETS = ("detach", "normalize", "joint")
FILLS = ("impute", "mean")

# Hidden width of the `mlp` imputer is capped: L x L weights are fine at a few hundred nodes,
# not at 20,000 genes.
MLP_IMPUTER_MAX_HIDDEN = 256


class AffineImputer(nn.Module):
    """Affine map ``alpha * C + beta`` between latent blocks.

    Scalar ``alpha`` and ``beta`` (the paper's map) or one pair per latent node.

    Parameters
    ----------
    n_latent : int
        Number of latent nodes.
    per_node : bool, default False
        Learn one ``(alpha, beta)`` pair per latent node instead of one shared pair.
    """

    def __init__(self, n_latent: int, per_node: bool = False) -> None:
        super().__init__()
        shape = (n_latent,) if per_node else (1,)
        self.alpha = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))

    def forward(self, latent: Tensor) -> Tensor:
        """Apply the map to a latent block.

        Parameters
        ----------
        latent : torch.Tensor
            Latent block ``C`` of shape ``(B, L)``.

        Returns
        -------
        torch.Tensor
            ``alpha * C + beta``, of shape ``(B, L)``.
        """
        return latent * self.alpha + self.beta


def make_imputer(kind: str, n_latent: int) -> nn.Module:
    """Build the map f_ij from one latent block to another.

    Parameters
    ----------
    kind : str
        ``"scalar"`` or ``"per_node"`` (:class:`AffineImputer`), ``"linear"`` (a full L x L
        linear layer) or ``"mlp"`` (one ReLU hidden layer of at most ``MLP_IMPUTER_MAX_HIDDEN``
        units).
    n_latent : int
        Number of latent nodes L.

    Returns
    -------
    torch.nn.Module
        A module mapping ``(B, L)`` to ``(B, L)``.

    Raises
    ------
    ValueError
        If ``kind`` is not one of ``IMPUTERS``.
    """
    if kind == "scalar":
        return AffineImputer(n_latent, per_node=False)
    if kind == "per_node":
        return AffineImputer(n_latent, per_node=True)
    if kind == "linear":
        return nn.Linear(n_latent, n_latent)
    if kind == "mlp":
        hidden = min(n_latent, MLP_IMPUTER_MAX_HIDDEN)
        return nn.Sequential(nn.Linear(n_latent, hidden), nn.ReLU(), nn.Linear(hidden, n_latent))
    raise ValueError(f"imputer must be one of {IMPUTERS}, not {kind!r}")


# How the head reads the K latent blocks: side by side, or added gene by gene.
COMBINES = ("concat", "sum")


def _activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "tanh":
        return nn.Tanh()
    if name == "linear":
        return nn.Identity()
    raise ValueError(f"encoder_activation must be one of {ACTIVATIONS}, not {name!r}")


class LatentNorm(nn.Module):
    """Standardize each latent node over the samples that have the modality.

    Batch statistics in training, running ones in eval; only samples that have the modality count:
    absent samples' all-zero inputs must not move them.

    Normalized blocks cannot shrink, so the auxiliary MSE cannot be won by collapsing a block,
    and node-wise maps (alpha * C + beta) compare blocks on the same scale.

    Parameters
    ----------
    n : int
        Number of latent nodes.
    momentum : float, default 0.1
        Weight of the current batch in the running mean and variance updates.
    eps : float, default 1e-5
        Added to the variance before the square root.
    """

    def __init__(self, n: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("running_mean", torch.zeros(n))
        self.register_buffer("running_var", torch.ones(n))

    def forward(self, x: Tensor, rows: Tensor | None = None) -> Tensor:
        """Standardize ``x`` node by node.

        Parameters
        ----------
        x : torch.Tensor
            Latent pre-activations of shape ``(B, L)``.
        rows : torch.Tensor or None, optional
            Boolean (or index) selection of the samples whose statistics count in training
            (those that have the modality); ``None`` uses all. In eval mode, or with fewer than
            two selected samples, the running statistics are used instead.

        Returns
        -------
        torch.Tensor
            ``(x - mean) / sqrt(var + eps)`` for every sample, shape ``(B, L)``.
        """
        sample = x if rows is None else x[rows]
        if self.training and sample.shape[0] >= 2:
            mean = sample.mean(dim=0)
            var = sample.var(dim=0, unbiased=False)
            with torch.no_grad():
                n = sample.shape[0]
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(var.detach() * n / (n - 1), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) / torch.sqrt(var + self.eps)


class NetworkOutput(NamedTuple):
    """Everything one forward pass computes; lists are indexed by modality.

    Parameters
    ----------
    logits : torch.Tensor
        Head output of shape ``(B, n_outputs)``.
    latent : list of torch.Tensor
        C_k from each modality's own input (meaningless where absent).
    imputed : list of torch.Tensor
        C_k* from the other present modalities (or the training mean).
    blocks : list of torch.Tensor
        What the head saw: C_k where present, else C_k*.
    """

    logits: Tensor  # (B, n_outputs)
    latent: list[Tensor]  # C_k from each modality's own input (meaningless where absent)
    imputed: list[Tensor]  # C_k* from the other present modalities (or the training mean)
    blocks: list[Tensor]  # what the head saw: C_k where present, else C_k*


def _encoders(
    n_inputs: Sequence[int], edges: list[tuple[Tensor, Tensor] | None], n_latent: int
) -> nn.ModuleList:
    """One encoder per modality: masked by its prior's edges, or dense without a prior."""
    encoders = nn.ModuleList()
    for n_in, edge in zip(n_inputs, edges, strict=False):
        if edge is None:
            encoders.append(nn.Linear(int(n_in), n_latent))
        else:
            src, dst = edge
            encoders.append(SparseMaskedLinear(int(n_in), n_latent, src, dst))
    return encoders


def _head(
    width: int, hidden_layers: Sequence[int], dropout: float, n_outputs: int
) -> nn.Sequential:
    """The feed-forward head: dropout, then [Linear, ReLU, Dropout] per hidden layer, then Linear."""
    layers: list[nn.Module] = [nn.Dropout(dropout)]
    for h in hidden_layers:
        layers += [nn.Linear(width, int(h)), nn.ReLU(), nn.Dropout(dropout)]
        width = int(h)
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)


class DeepGAMINetwork(nn.Module):
    """Encoders, pairwise imputers and a feed-forward head for one or more modalities.

    With one modality there is no imputer and no auxiliary term: encoders and head only.

    Parameters
    ----------
    n_inputs : sequence of int
        Input features per modality.
    n_latent : int
        Latent nodes shared by all modalities (prior targets, or ``latent_dim``).
    n_outputs : int
        Classes (softmax), or 1 for a numeric phenotype.
    edges : sequence of (torch.Tensor, torch.Tensor) or None, optional
        Per modality, ``(src, dst)`` index tensors of its prior (``src`` into its inputs, ``dst``
        into the latent nodes) for a sparse encoder, or ``None`` for a dense one; ``None`` overall
        makes every encoder dense. To rebuild a saved network, pass index tensors of the right
        length; ``load_state_dict`` fills them in.
    hidden_layers : sequence of int, default (64,)
        Widths of the head's hidden ReLU layers.
    dropout : float, default 0.5
        Dropout probability on the concatenated blocks and after each hidden layer.
    imputer : str, default "scalar"
        ``"scalar"``, ``"per_node"``, ``"linear"`` or ``"mlp"`` (see :func:`make_imputer`).
    encoder_activation : str, default "relu"
        ``"relu"``, ``"tanh"`` or ``"linear"``, applied to each encoder's output.
    latent_norm : bool or sequence of bool, default True
        Standardize each latent node before the activation (:class:`LatentNorm`): one flag for
        every modality, or one per modality.
    latent_combine : str, default "concat"
        ``"concat"``: the head reads the K blocks side by side (K x L inputs, the paper);
        ``"sum"``: it reads their sum, one input per latent node (the blocks must be the same
        genes, e.g. each modality's part of a gene's program).

    Raises
    ------
    ValueError
        If there is no modality, ``edges`` or ``latent_norm`` has the wrong
        length, or ``imputer`` or ``encoder_activation`` is unknown.
    """

    def __init__(
        self,
        n_inputs: Sequence[int],
        n_latent: int,
        n_outputs: int,
        edges: Sequence[tuple[Tensor, Tensor] | None] | None = None,
        hidden_layers: Sequence[int] = (64,),
        dropout: float = 0.5,
        imputer: str = "scalar",
        encoder_activation: str = "relu",
        latent_norm: bool | Sequence[bool] = True,
        latent_combine: str = "concat",
    ) -> None:
        super().__init__()
        if latent_combine not in COMBINES:
            raise ValueError(f"latent_combine must be one of {COMBINES}, not {latent_combine!r}")
        n_mod = len(n_inputs)
        if n_mod < 1:
            raise ValueError("DeepGAMI needs at least one modality")
        edges = list(edges) if edges is not None else [None] * n_mod
        if len(edges) != n_mod:
            raise ValueError("edges must have one entry (or None) per modality")
        self.n_modalities = n_mod
        self.n_latent = int(n_latent)
        self.n_outputs = int(n_outputs)
        self.encoders = _encoders(n_inputs, edges, self.n_latent)
        self.activation = _activation(encoder_activation)
        flags = (
            [bool(latent_norm)] * n_mod
            if isinstance(latent_norm, bool)
            else [bool(f) for f in latent_norm]
        )
        if len(flags) != n_mod:
            raise ValueError("latent_norm must be one flag or one per modality")
        self.normalized = flags
        # Every modality keeps its LatentNorm buffers (saved models share one layout); only flagged ones apply.
        self.norms = (
            nn.ModuleList([LatentNorm(self.n_latent) for _ in range(n_mod)]) if any(flags) else None
        )
        # One map per ordered pair (i -> j); keys avoid '.', which ModuleDict forbids.
        self.imputers = nn.ModuleDict(
            {
                self.pair_key(i, j): make_imputer(imputer, self.n_latent)
                for i in range(n_mod)
                for j in range(n_mod)
                if i != j
            }
        )
        self.latent_combine = latent_combine
        self.n_head_blocks = 1 if latent_combine == "sum" else n_mod
        self.head = _head(
            self.n_head_blocks * self.n_latent, hidden_layers, dropout, self.n_outputs
        )
        # Per-node gates on the head's inputs. Under weight decay the product gate x weight acts
        # like a group lasso over latent nodes, so the head can ignore most genes even though
        # every (normalized) node has unit variance. Summed blocks share one gate per node, so
        # each modality's part of a gene keeps the same weight.
        self.gates = nn.Parameter(torch.ones(self.n_head_blocks, self.n_latent))
        # Training-set mean of each latent block: the mean-fill baseline, saved with the weights.
        self.register_buffer("latent_mean", torch.zeros(n_mod, self.n_latent))

    @staticmethod
    def pair_key(i: int, j: int) -> str:
        """Return the key of the imputer that predicts block j from block i.

        Parameters
        ----------
        i : int
            Index of the source modality.
        j : int
            Index of the target modality.

        Returns
        -------
        str
            The key in :attr:`imputers`, ``"{i}_to_{j}"``.
        """
        return f"{i}_to_{j}"

    # -- forward pieces (public: attribution runs integrated gradients through them) --------

    def encode(self, xs: Sequence[Tensor], present: Tensor | None = None) -> list[Tensor]:
        """Compute the latent block C_k of each modality from its own (preprocessed) inputs.

        Parameters
        ----------
        xs : sequence of torch.Tensor
            One input per modality, of shape ``(B, n_k)``.
        present : torch.Tensor or None, optional
            Boolean ``(B, K)``: restricts the training-time normalization statistics to the
            samples that have each modality; in eval mode it has no effect.

        Returns
        -------
        list of torch.Tensor
            C_k of shape ``(B, L)`` per modality.

        Raises
        ------
        ValueError
            If ``xs`` does not hold one input per modality.
        """
        if len(xs) != self.n_modalities:
            raise ValueError(f"expected {self.n_modalities} inputs, got {len(xs)}")
        return [
            self.activate(k, enc(x), None if present is None else present[:, k])
            for k, (enc, x) in enumerate(zip(self.encoders, xs, strict=False))
        ]

    def activate(self, k: int, pre: Tensor, rows: Tensor | None = None) -> Tensor:
        """Turn encoder k's output into the latent block C_k.

        Applies normalization (when enabled) then the activation.

        Parameters
        ----------
        k : int
            Index of the modality.
        pre : torch.Tensor
            Encoder k's pre-activation output, ``encoders[k](x)``, of shape ``(B, L)``.
        rows : torch.Tensor or None, optional
            Samples whose statistics the training-time normalization uses (see
            :class:`LatentNorm`); ``None`` uses all.

        Returns
        -------
        torch.Tensor
            C_k of shape ``(B, L)``.
        """
        if self.norms is not None and self.normalized[k]:
            pre = self.norms[k](pre, rows)
        return self.activation(pre)

    def impute(self, latent: Sequence[Tensor], present: Tensor) -> list[Tensor]:
        """Impute C_j* for every j: the mean of f_ij(C_i) over the modalities i != j a sample has.

        Parameters
        ----------
        latent : sequence of torch.Tensor
            C_i of shape ``(B, L)`` per modality.
        present : torch.Tensor
            Boolean ``(B, K)``: which blocks each sample may impute from.

        Returns
        -------
        list of torch.Tensor
            C_j* of shape ``(B, L)`` per modality; zero for a sample with no other modality.
        """
        weights = present.to(latent[0].dtype)
        out = []
        for j in range(self.n_modalities):
            total = torch.zeros_like(latent[j])
            count = torch.zeros_like(weights[:, :1])
            for i in range(self.n_modalities):
                if i == j:
                    continue
                w = weights[:, i : i + 1]
                total = total + w * self.imputers[self.pair_key(i, j)](latent[i])
                count = count + w
            out.append(total / count.clamp(min=1.0))
        return out

    def combine(
        self, latent: Sequence[Tensor], imputed: Sequence[Tensor], present: Tensor
    ) -> list[Tensor]:
        """Take the observed block where the modality is present, the imputed one where it is not.

        Parameters
        ----------
        latent : sequence of torch.Tensor
            Observed blocks C_k of shape ``(B, L)``.
        imputed : sequence of torch.Tensor
            Imputed blocks C_k* of shape ``(B, L)``.
        present : torch.Tensor
            Boolean ``(B, K)``.

        Returns
        -------
        list of torch.Tensor
            The blocks the head sees, one per modality.
        """
        return [
            torch.where(present[:, k : k + 1], latent[k], imputed[k])
            for k in range(self.n_modalities)
        ]

    def forward(
        self,
        xs: Sequence[Tensor],
        present: Tensor | None = None,
        fill: str = "impute",
        head_present: Tensor | None = None,
    ) -> NetworkOutput:
        """Run the full pass: encoders, imputation and head.

        Parameters
        ----------
        xs : sequence of torch.Tensor
            One preprocessed input per modality, of shape ``(B, n_k)``.
        present : torch.Tensor or None, optional
            Boolean ``(B, K)``: which modalities each sample has (default: all).
        fill : str, default "impute"
            ``"impute"`` fills missing blocks by cross-modal imputation; ``"mean"`` replaces them
            by their training mean instead (a baseline).
        head_present : torch.Tensor or None, optional
            Boolean ``(B, K)`` (default: ``present``): which observed blocks the head may use;
            the others are imputed from those, as at prediction time (training hides modalities
            this way).

        Returns
        -------
        NetworkOutput
            Logits, latent, imputed and head blocks.

        Raises
        ------
        ValueError
            If ``fill`` is unknown or ``xs`` does not hold one input per modality.
        """
        if present is None:
            present = torch.ones(
                xs[0].shape[0], self.n_modalities, dtype=torch.bool, device=xs[0].device
            )
        head_present = present if head_present is None else head_present & present
        latent = self.encode(xs, present)
        if fill == "impute":
            imputed = self.impute(latent, head_present)
        elif fill == "mean":
            imputed = [self.latent_mean[k].expand_as(latent[k]) for k in range(self.n_modalities)]
        else:
            raise ValueError(f"fill must be one of {FILLS}, not {fill!r}")
        blocks = self.combine(latent, imputed, head_present)
        return NetworkOutput(self.head_logits(blocks), latent, imputed, blocks)

    def head_logits(self, blocks: Sequence[Tensor]) -> Tensor:
        """Compute the logits from the K latent blocks the head sees.

        Gates, concatenation (or the sum of the blocks), feed-forward.

        Parameters
        ----------
        blocks : sequence of torch.Tensor
            One block of shape ``(B, L)`` per modality.

        Returns
        -------
        torch.Tensor
            Logits of shape ``(B, n_outputs)``.
        """
        if self.latent_combine == "sum":
            return self.head(torch.stack(list(blocks)).sum(dim=0) * self.gates[0])
        return self.head(torch.cat([b * self.gates[k] for k, b in enumerate(blocks)], dim=1))

    def logits(self, *xs: Tensor, present: Tensor | None = None) -> Tensor:
        """Map ``(x_1, ..., x_K)`` to logits, the signature Captum's attribution methods expect.

        Parameters
        ----------
        *xs : torch.Tensor
            One preprocessed input per modality, of shape ``(B, n_k)``.
        present : torch.Tensor or None, optional
            Boolean ``(B, K)``: which modalities each sample has (default: all).

        Returns
        -------
        torch.Tensor
            Logits of shape ``(B, n_outputs)``.
        """
        return self.forward(list(xs), present).logits

    def head_group_norm(self) -> Tensor:
        """Compute a group-lasso penalty that lets the head use few latent genes.

        The sum over latent nodes of the L2 norm of the head's weights out of that node in every
        block. One group per gene, not per block: choosing a gene costs the same whether the head
        reads it from one modality or from all, so the head does not pay twice for a program that
        two encoders split between them (simulated cohorts: +0.01-0.02 held-out AUC over one group
        per block node).

        Returns
        -------
        torch.Tensor
            The penalty, a scalar (differentiable).
        """
        first = next(m for m in self.head if isinstance(m, nn.Linear))
        per_block = first.weight.reshape(first.weight.shape[0], self.n_head_blocks, self.n_latent)
        return torch.linalg.vector_norm(per_block, dim=(0, 1)).sum()

    def auxiliary_loss(
        self, latent: Sequence[Tensor], present: Tensor, target: str = "detach"
    ) -> Tensor:
        """Compute the auxiliary imputation loss.

        The mean over ordered pairs (i, j) of MSE(f_ij(C_i), C_j) on samples having both i and j.

        Parameters
        ----------
        latent : sequence of torch.Tensor
            C_k of shape ``(B, L)`` per modality.
        present : torch.Tensor
            Boolean ``(B, K)``: which modalities each sample has.
        target : str, default "detach"
            ``"detach"`` stops gradients into C_j; ``"normalize"`` divides the MSE by the variance
            of C_j in the batch (1 - R^2, which shrinking C_j cannot lower; pairs with fewer than
            two shared samples are skipped); ``"joint"`` is the reference's plain MSE with
            gradients into both sides (prone to collapse, kept for comparison).

        Returns
        -------
        torch.Tensor
            The loss, a scalar; zero when no pair has a shared sample.

        Raises
        ------
        ValueError
            If ``target`` is not one of ``AUX_TARGETS``.
        """
        if target not in AUX_TARGETS:
            raise ValueError(f"aux_target must be one of {AUX_TARGETS}, not {target!r}")
        losses = []
        for i in range(self.n_modalities):
            for j in range(self.n_modalities):
                if i == j:
                    continue
                rows = present[:, i] & present[:, j]
                n_rows = int(rows.sum())
                if n_rows == 0 or (target == "normalize" and n_rows < 2):
                    continue
                pred = self.imputers[self.pair_key(i, j)](latent[i][rows])
                goal = latent[j][rows]
                if target == "detach":
                    goal = goal.detach()
                mse = torch.mean((pred - goal) ** 2)
                if target == "normalize":
                    mse = mse / (goal.var(dim=0, unbiased=False).mean() + 1e-8)
                losses.append(mse)
        if not losses:
            return latent[0].new_zeros(())
        return torch.stack(losses).mean()
