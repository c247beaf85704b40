"""Sparse linear layers guided by a prior network (biological DropConnect).

A DeepGAMI encoder connects input features (SNPs, TFs, CpGs) to latent genes only along the edges of
a prior network. :class:`SparseMaskedLinear` stores one trainable weight per edge, so its memory and
time grow with the number of edges, never with ``in_features * out_features``.

Implementation notes (see ``/work/shared/PERF-NOTES.md`` and ``benchmarks/scale.py``):

- Autograd through a rebuilt COO/CSR weight is 30-40x slower than a gather, so a custom
  :class:`torch.autograd.Function` does the work with an explicit backward.
- Edges are processed in blocks of consecutive sources. Each block transposes its slice of the
  input once (small, cache resident), so no transposed copy of a whole minibatch is ever made:
  at 1e6 SNPs such a copy is 256 MB per minibatch, and allocating and page-faulting it costs more
  than the arithmetic.
- Forward: per block, gather the block's input rows, scale by the edge weights and ``index_add_``
  into the (out, batch) result.
- Weight gradient: a sampled dense-dense product (SDDMM) per block via
  :func:`torch.sparse.sampled_addmm`, a fused kernel that never materialises per-edge rows; its
  output is written in place into the gradient buffer.
- Input gradient: computed only when ``ctx.needs_input_grad[0]`` (integrated gradients needs it,
  training the first layer does not), as a CSR product per block.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

__all__ = ["SparseMaskedLinear"]

# Edges per block. A block's transposed input slice is about
# min(EDGES_PER_BLOCK, n_sources) * batch * 4 bytes; 2**15 keeps it a few MB at batch 64
# (measured in benchmarks/scale.py, see benchmarks/README.md).
EDGES_PER_BLOCK = 1 << 15


@contextmanager
def _quiet_sparse_csr():
    # torch warns once that sparse CSR is "beta"; that warning says nothing actionable to users.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")
        yield


def _as_index_tensor(a: np.ndarray | torch.Tensor, name: str) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        t = a.detach().cpu()
        if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
            raise TypeError(f"{name} must hold integer indices, got dtype {t.dtype}")
        t = t.to(torch.int64)
    else:
        arr = np.asarray(a)
        if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{name} must hold integer indices, got dtype {arr.dtype}")
        t = torch.from_numpy(arr.astype(np.int64, copy=True))
    if t.dim() != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(t.shape)}")
    return t.contiguous()


def _plan_blocks(sptr: np.ndarray, n_sources: int, per_block: int) -> list[tuple[int, int, int, int]]:
    """Split sources into blocks ``(s0, s1, e0, e1)`` of consecutive sources.

    A block holds at most ``per_block`` edges and spans at most ``per_block`` sources, unless a
    single source has more edges. Sources without edges at a block's ends are left out.
    """
    blocks: list[tuple[int, int, int, int]] = []
    n_edges = int(sptr[-1])
    s0 = 0
    while s0 < n_sources:
        e0 = int(sptr[s0])
        if e0 == n_edges:
            break
        # skip leading sources without edges: they contribute nothing
        s0 = int(np.searchsorted(sptr, e0, side="right")) - 1
        limit_e = int(np.searchsorted(sptr, e0 + per_block, side="right")) - 1
        s1 = min(max(limit_e, s0 + 1), s0 + per_block, n_sources)
        s1 = max(s1, s0 + 1)
        e1 = int(sptr[s1])
        # trim trailing sources without edges
        s1_trim = int(np.searchsorted(sptr, e1, side="left"))
        blocks.append((s0, max(s1_trim, s0 + 1), e0, e1))
        s0 = s1
    return blocks


class _SparseMaskedLinearFn(torch.autograd.Function):
    """``y = x @ (W * M) + b`` over an edge list, with an explicit backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, layer: SparseMaskedLinear) -> torch.Tensor:  # noqa: E501
        n_out = layer.out_features
        batch = x.shape[0]
        ws = weight if layer._order_is_identity else weight.index_select(0, layer._order)
        yt = torch.zeros(n_out, batch, dtype=x.dtype, device=x.device)
        dsts, ls = layer._dst_sorted, layer._local_src
        for s0, s1, e0, e1 in layer._blocks:
            xb = x[:, s0:s1].t().contiguous()
            rows = xb.index_select(0, ls[e0:e1]).mul_(ws[e0:e1, None])
            yt.index_add_(0, dsts[e0:e1], rows)
        y = torch.empty(batch, n_out, dtype=x.dtype, device=x.device)
        if bias is None:
            y.copy_(yt.t())
        else:
            torch.add(yt.t(), bias, out=y)
        ctx.layer = layer
        ctx.has_bias = bias is not None
        ctx.save_for_backward(x, ws)
        return y

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        layer: SparseMaskedLinear = ctx.layer
        x, ws = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x = grad_w = grad_b = None
        if need_b and ctx.has_bias:
            grad_b = grad_out.sum(0)
        if not (need_x or need_w):
            return grad_x, grad_w, grad_b, None
        n_in, n_out = layer.in_features, layer.out_features
        # (out, batch) contiguous; gt.t() is then the (batch, out) operand that sampled_addmm
        # transposes back without a copy.
        gt = grad_out.t().contiguous()
        dsts, sptr = layer._dst_sorted, layer._src_ptr
        with _quiet_sparse_csr():
            if need_w:
                gws = torch.zeros_like(ws)
                gtt = gt.t()
                for s0, s1, e0, e1 in layer._blocks:
                    xb = x[:, s0:s1].t().contiguous()
                    pattern = torch.sparse_csr_tensor(
                        sptr[s0 : s1 + 1] - e0, dsts[e0:e1], gws[e0:e1], (s1 - s0, n_out), check_invariants=False
                    )
                    # writes x_blk^T @ grad sampled at the block's edges straight into gws[e0:e1]
                    torch.sparse.sampled_addmm(pattern, xb, gtt, beta=0.0, out=pattern)
                if layer._order_is_identity:
                    grad_w = gws
                else:
                    grad_w = torch.empty_like(gws).index_copy_(0, layer._order, gws)
            if need_x:
                grad_x = torch.zeros(x.shape[0], n_in, dtype=gt.dtype, device=gt.device)
                for s0, s1, e0, e1 in layer._blocks:
                    a_blk = torch.sparse_csr_tensor(
                        sptr[s0 : s1 + 1] - e0, dsts[e0:e1], ws[e0:e1], (s1 - s0, n_out), check_invariants=False
                    )
                    grad_x[:, s0:s1] = torch.sparse.mm(a_blk, gt).t()
        return grad_x, grad_w, grad_b, None


class SparseMaskedLinear(nn.Module):
    """Linear layer whose weights live only on the edges of a prior network.

    Computes ``y = x @ (W * M) + b`` where ``M`` is the (in, out) prior mask, but stores and updates
    one weight per edge: ``weight[k]`` connects input ``src[k]`` to output ``dst[k]``.

    Parameters
    ----------
    in_features
        Number of inputs (e.g. SNPs).
    out_features
        Number of outputs (latent genes).
    src, dst
        Edge ``k`` goes from input ``src[k]`` to output ``dst[k]`` (integer indices). The given
        order is kept: ``weight[k]`` belongs to ``(src[k], dst[k])``. Duplicate edges raise
        :class:`ValueError` (merge them upstream; a duplicate would silently double a link's
        weight and its attribution).
    bias
        Whether to learn an additive bias per output.

    Notes
    -----
    Initialisation follows :class:`torch.nn.Linear` (kaiming-uniform, ``a=sqrt(5)``) with each
    output's fan-in taken as its number of incoming edges: ``weight[k] ~ U(-1/sqrt(d), 1/sqrt(d))``
    with ``d`` the in-degree of ``dst[k]``; the bias uses the same bound (0 for outputs without
    edges). Draws come from torch's global generator, so :func:`torch.manual_seed` fixes them.
    Double backward is not supported.
    """

    weight: nn.Parameter
    bias: nn.Parameter | None
    src: torch.Tensor
    dst: torch.Tensor

    def __init__(
        self,
        in_features: int,
        out_features: int,
        src: np.ndarray | torch.Tensor,
        dst: np.ndarray | torch.Tensor,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if in_features < 0 or out_features < 0:
            raise ValueError(f"in_features and out_features must be >= 0, got {in_features}, {out_features}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        src_t = _as_index_tensor(src, "src")
        dst_t = _as_index_tensor(dst, "dst")
        if src_t.numel() != dst_t.numel():
            raise ValueError(f"src and dst must have the same length, got {src_t.numel()} and {dst_t.numel()}")
        if src_t.numel():
            if int(src_t.min()) < 0 or int(src_t.max()) >= self.in_features:
                raise ValueError(f"src indices must lie in [0, {self.in_features}), got [{int(src_t.min())}, {int(src_t.max())}]")
            if int(dst_t.min()) < 0 or int(dst_t.max()) >= self.out_features:
                raise ValueError(f"dst indices must lie in [0, {self.out_features}), got [{int(dst_t.min())}, {int(dst_t.max())}]")
        self.register_buffer("src", src_t)
        self.register_buffer("dst", dst_t)
        self.weight = nn.Parameter(torch.empty(src_t.numel()))
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_features))
        else:
            self.register_parameter("bias", None)
        self._build_plan()
        self.reset_parameters()

    # -- construction helpers -------------------------------------------------------------------
    @classmethod
    def from_mask(cls, mask: sp.spmatrix | sp.sparray | np.ndarray | torch.Tensor, bias: bool = True) -> SparseMaskedLinear:
        """Build a layer from an (in, out) mask; its nonzero entries are the edges.

        Edges are ordered by source, then target (row-major). Explicitly stored zeros are not edges.
        """
        if len(mask.shape) != 2:
            raise ValueError(f"mask must be 2-D (in, out), got shape {tuple(mask.shape)}")
        if sp.issparse(mask):
            coo = sp.coo_array(mask)
            coo.sum_duplicates()
            keep = coo.data != 0
            src, dst = np.asarray(coo.row)[keep], np.asarray(coo.col)[keep]
        else:
            arr = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
            src, dst = np.nonzero(arr)
        n_in, n_out = (int(v) for v in mask.shape)
        order = np.lexsort((dst, src))
        return cls(n_in, n_out, src[order].astype(np.int64), dst[order].astype(np.int64), bias=bias)

    def _build_plan(self) -> None:
        """Derive the sorted edge order and source blocks from ``src``/``dst``."""
        src = self.src.detach().cpu().numpy()
        dst = self.dst.detach().cpu().numpy()
        n_edges = src.size
        key = src * max(self.out_features, 1) + dst
        order = np.argsort(key, kind="stable")
        skey = key[order]
        if n_edges > 1:
            dup = np.flatnonzero(skey[1:] == skey[:-1])
            if dup.size:
                k = int(order[dup[0]])
                raise ValueError(
                    f"duplicate edges: {dup.size} repeated (src, dst) pairs, first ({int(src[k])}, {int(dst[k])}); "
                    "merge duplicate prior edges before building the layer"
                )
        s_sorted = src[order]
        d_sorted = dst[order]
        sptr = np.zeros(self.in_features + 1, dtype=np.int64)
        np.cumsum(np.bincount(s_sorted, minlength=self.in_features), out=sptr[1:])
        blocks = _plan_blocks(sptr, self.in_features, EDGES_PER_BLOCK)
        local = np.empty(n_edges, dtype=np.int64)
        for s0, _s1, e0, e1 in blocks:
            local[e0:e1] = s_sorted[e0:e1] - s0
        device = self.src.device
        self._order_is_identity = bool(np.array_equal(order, np.arange(n_edges)))
        self._blocks = blocks
        # non-persistent: derived from src/dst, rebuilt on load; moved by .to() like any buffer
        self.register_buffer("_order", torch.from_numpy(order.astype(np.int64)).to(device), persistent=False)
        self.register_buffer("_dst_sorted", torch.from_numpy(d_sorted.astype(np.int64)).to(device), persistent=False)
        self.register_buffer("_local_src", torch.from_numpy(local).to(device), persistent=False)
        self.register_buffer("_src_ptr", torch.from_numpy(sptr).to(device), persistent=False)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):  # noqa: D102
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
        # src/dst may have changed in place: the derived plan must follow
        self._build_plan()

    def reset_parameters(self) -> None:
        """Kaiming-uniform init with each output's fan-in = its number of incoming edges."""
        deg = torch.bincount(self.dst.detach().cpu(), minlength=self.out_features).to(torch.float64)
        bound = torch.where(deg > 0, 1.0 / deg.clamp(min=1).sqrt(), torch.zeros_like(deg))
        with torch.no_grad():
            w = torch.empty(self.weight.shape, dtype=torch.float64).uniform_(-1.0, 1.0)
            w.mul_(bound[self.dst.detach().cpu()])
            self.weight.copy_(w)
            if self.bias is not None:
                b = torch.empty(self.out_features, dtype=torch.float64).uniform_(-1.0, 1.0).mul_(bound)
                self.bias.copy_(b)

    # -- public API ------------------------------------------------------------------------------
    @property
    def n_edges(self) -> int:
        """Number of prior edges (= number of weights)."""
        return int(self.weight.numel())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(..., in_features)`` to ``(..., out_features)``."""
        if x.shape[-1] != self.in_features:
            raise ValueError(f"expected last dimension {self.in_features}, got input of shape {tuple(x.shape)}")
        if x.dtype != self.weight.dtype:
            raise TypeError(f"input dtype {x.dtype} does not match weight dtype {self.weight.dtype}")
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        y = _SparseMaskedLinearFn.apply(x2, self.weight, self.bias, self)
        return y.reshape(*lead, self.out_features)

    def dense_weight(self) -> torch.Tensor:
        """Dense ``(in, out)`` matrix ``W * M`` (differentiable); for tests and small inspection only."""
        dense = torch.zeros(self.in_features, self.out_features, dtype=self.weight.dtype, device=self.weight.device)
        return dense.index_put((self.src, self.dst), self.weight)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, n_edges={self.n_edges}, bias={self.bias is not None}"
