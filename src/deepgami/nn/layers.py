"""Sparse linear layers guided by a prior network (biological DropConnect).

A DeepGAMI encoder connects input features (SNPs, TFs, CpGs) to latent genes only along the edges of
a prior network. :class:`SparseMaskedLinear` stores one trainable weight per edge, so its memory and
time grow with the number of edges, never with ``in_features * out_features``.

Implementation (measured in ``benchmarks/scale.py``; alternatives in ``benchmarks/README.md``):

- Autograd through a rebuilt COO/CSR weight is 30-40x slower than a gather (PERF-NOTES), so a custom
  :class:`torch.autograd.Function` does the work with an explicit backward.
- All kernels want the minibatch feature-major, ``xt = x.T`` of shape (in, batch), so that one
  feature's values over the batch are contiguous. The transpose is made once per forward (on CPU via
  numpy, which is ~2x faster than torch's strided copy here and backs large arrays with huge pages,
  saving most of the page faults of a fresh 256 MB buffer at 1e6 SNPs x 64 samples).
- Forward: ``y.T = embedding_bag(xt, src grouped by dst, per_sample_weights=w)``, a gather-sum per
  output node (FBGEMM on CPU; ~3x faster than MKL's CSR @ dense for these shapes).
- Weight gradient: a sampled dense-dense product (SDDMM) with :func:`torch.sparse.sampled_addmm` over
  edges sorted by source: it streams ``xt`` once, reads rows of the small ``grad.T`` and writes the
  per-edge dot products straight into the gradient buffer, never materialising per-edge rows.
- Input gradient: only when ``ctx.needs_input_grad[0]`` (integrated gradients needs it; training the
  first layer does not): ``embedding_bag(grad.T, dst grouped by src, per_sample_weights=w)``.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SparseMaskedLinear"]

_INT32_MAX = 2**31 - 1


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


def _feature_major(x: torch.Tensor) -> torch.Tensor:
    """Contiguous ``x.T`` (in, batch); free when ``x`` is already a transposed view of one."""
    xt = x.t()
    if xt.is_contiguous():
        # a view keeps autograd's version counter: in-place edits before backward are detected
        return xt
    if (
        x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and not (x.is_conj() or x.is_neg())
    ):
        # numpy's transpose copy is ~2x faster than torch's here, and numpy asks for huge pages
        return torch.from_numpy(np.ascontiguousarray(x.detach().numpy().T))
    return xt.contiguous()


def _forward_t(layer: SparseMaskedLinear, xt: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``(W * M).T @ xt`` as (out, batch): for each output, the weighted sum of its sources' rows."""
    w_by_dst = weight.index_select(0, layer._user_by_dst)
    return F.embedding_bag(
        layer._src_by_dst,
        xt,
        layer._dst_ptr,
        mode="sum",
        per_sample_weights=w_by_dst,
        include_last_offset=True,
    )


def _finish(yt: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    y = torch.empty(yt.shape[1], yt.shape[0], dtype=yt.dtype, device=yt.device)
    if bias is None:
        return y.copy_(yt.t())
    return torch.add(yt.t(), bias, out=y)


def _edge_sddmm(layer: SparseMaskedLinear, xt: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per edge ``xt[src_k] . gt[dst_k]`` (a sampled ``xt @ gt.T``), in the layer's edge order."""
    out_src = torch.zeros(layer.n_edges, dtype=gt.dtype, device=gt.device)
    with _quiet_sparse_csr():
        pattern = torch.sparse_csr_tensor(
            layer._src_ptr,
            layer._dst_by_src,
            out_src,
            (layer.in_features, layer.out_features),
            check_invariants=False,
        )
        # edges sorted by source: xt is streamed once, rows of the small gt are reused from cache;
        # results land in out_src in place. gt.t() is transposed back by the kernel without a copy.
        torch.sparse.sampled_addmm(pattern, xt, gt.t(), beta=0.0, out=pattern)
    if layer._order_is_identity:
        return out_src
    return torch.empty_like(out_src).index_copy_(0, layer._order, out_src)


class _SparseMaskedLinearFn(torch.autograd.Function):
    """``y = x @ (W * M) + b`` over an edge list, with an explicit backward."""

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        layer: SparseMaskedLinear,
    ) -> torch.Tensor:  # noqa: E501
        xt = _feature_major(x)
        y = _finish(_forward_t(layer, xt, weight), bias)
        ctx.layer = layer
        ctx.has_bias = bias is not None
        # xt is only needed for the weight gradient; don't keep it (in * batch floats) otherwise
        ctx.save_for_backward(xt if ctx.needs_input_grad[1] else None, weight)
        return y

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        layer: SparseMaskedLinear = ctx.layer
        xt, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x = grad_w = grad_b = None
        if need_b and ctx.has_bias:
            grad_b = grad_out.sum(0)
        if not (need_x or need_w):
            return grad_x, grad_w, grad_b, None
        # (out, batch): rows of the upstream gradient per output node, contiguous
        gt = grad_out.t().contiguous()
        if need_w:
            grad_w = _edge_sddmm(layer, xt, gt)
        if need_x:
            w_src = weight if layer._order_is_identity else weight.index_select(0, layer._order)
            gxt = F.embedding_bag(
                layer._dst_by_src,
                gt,
                layer._src_ptr,
                mode="sum",
                per_sample_weights=w_src,
                include_last_offset=True,
            )
            grad_x = gxt.t()
        return grad_x, grad_w, grad_b, None


class SparseMaskedLinear(nn.Module):
    """Linear layer whose weights live only on the edges of a prior network.

    Computes ``y = x @ (W * M) + b`` where ``M`` is the (in, out) prior mask, but stores and updates
    one weight per edge: ``weight[k]`` connects input ``src[k]`` to output ``dst[k]``.

    Parameters
    ----------
    in_features : int
        Number of inputs (e.g. SNPs).
    out_features : int
        Number of outputs (latent genes).
    src : numpy.ndarray or torch.Tensor
        1-D integer indices: edge ``k`` goes from input ``src[k]`` to output ``dst[k]``. The given
        order is kept: ``weight[k]`` belongs to ``(src[k], dst[k])``.
    dst : numpy.ndarray or torch.Tensor
        1-D integer indices of each edge's output, the same length as ``src``.
    bias : bool, default True
        Whether to learn an additive bias per output.

    Attributes
    ----------
    weight : torch.nn.Parameter
        One trainable weight per edge, shape ``(n_edges,)``.
    bias : torch.nn.Parameter or None
        The per-output bias, shape ``(out_features,)``, or ``None`` without one.
    src, dst : torch.Tensor
        The edges' input and output indices (buffers, saved with the state dict).

    Raises
    ------
    ValueError
        If ``in_features`` or ``out_features`` is negative, ``src`` and ``dst`` differ in length
        or are not 1-D, an index lies outside its range, or an edge is duplicated (merge duplicates
        upstream; a duplicate would silently double a link's weight and its attribution).
    TypeError
        If ``src`` or ``dst`` does not hold integer indices.

    Notes
    -----
    Initialisation follows :class:`torch.nn.Linear` (kaiming-uniform, ``a=sqrt(5)``) with each
    output's fan-in taken as its number of incoming edges: ``weight[k] ~ U(-1/sqrt(d), 1/sqrt(d))``
    with ``d`` the in-degree of ``dst[k]``; the bias uses the same bound (0 for outputs without
    edges). Draws come from torch's global generator, so :func:`torch.manual_seed` fixes them.
    Double backward is not supported.

    Speed: the kernels work on the minibatch feature-major, ``(in, batch)``. A loader that builds
    each float32 minibatch that way and passes its transposed view (``layer(xt.T)``) saves the
    layer a transpose (about a third of a training step at 1e6 SNPs); any other layout works too.
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
            raise ValueError(
                f"in_features and out_features must be >= 0, got {in_features}, {out_features}"
            )
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        src_t = _as_index_tensor(src, "src")
        dst_t = _as_index_tensor(dst, "dst")
        if src_t.numel() != dst_t.numel():
            raise ValueError(
                f"src and dst must have the same length, got {src_t.numel()} and {dst_t.numel()}"
            )
        if src_t.numel():
            if int(src_t.min()) < 0 or int(src_t.max()) >= self.in_features:
                raise ValueError(
                    f"src indices must lie in [0, {self.in_features}), got [{int(src_t.min())}, {int(src_t.max())}]"
                )
            if int(dst_t.min()) < 0 or int(dst_t.max()) >= self.out_features:
                raise ValueError(
                    f"dst indices must lie in [0, {self.out_features}), got [{int(dst_t.min())}, {int(dst_t.max())}]"
                )
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
    def from_mask(
        cls, mask: sp.spmatrix | sp.sparray | np.ndarray | torch.Tensor, bias: bool = True
    ) -> SparseMaskedLinear:
        """Build a layer from an (in, out) mask; its nonzero entries are the edges.

        Edges are ordered by source, then target (row-major). Explicitly stored zeros are not edges.

        Parameters
        ----------
        mask : scipy.sparse.spmatrix, scipy.sparse.sparray, numpy.ndarray or torch.Tensor
            2-D ``(in, out)`` mask, dense or sparse.
        bias : bool, default True
            Whether to learn an additive bias per output.

        Returns
        -------
        SparseMaskedLinear
            A freshly initialised layer with one weight per nonzero entry of ``mask``.

        Raises
        ------
        ValueError
            If ``mask`` is not 2-D.
        """
        if len(mask.shape) != 2:
            raise ValueError(f"mask must be 2-D (in, out), got shape {tuple(mask.shape)}")
        if sp.issparse(mask):
            coo = sp.coo_array(mask)
            coo.sum_duplicates()
            keep = coo.data != 0
            src, dst = np.asarray(coo.row)[keep], np.asarray(coo.col)[keep]
        elif isinstance(mask, torch.Tensor) and mask.layout != torch.strided:
            coo = mask.detach().cpu().to_sparse_coo().coalesce()
            keep = (coo.values() != 0).numpy()
            src, dst = (a.numpy()[keep] for a in coo.indices())
        else:
            arr = (
                mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
            )
            src, dst = np.nonzero(arr)
        n_in, n_out = (int(v) for v in mask.shape)
        order = np.lexsort((dst, src))
        return cls(n_in, n_out, src[order].astype(np.int64), dst[order].astype(np.int64), bias=bias)

    def _build_plan(self) -> None:
        """Derive the edge orders (by source, by target) and CSR offsets from ``src``/``dst``."""
        src = self.src.detach().cpu().numpy()
        dst = self.dst.detach().cpu().numpy()
        n_edges = src.size
        key = src * max(self.out_features, 1) + dst
        order = np.argsort(key, kind="stable")  # user index of the k-th edge by (src, dst)
        skey = key[order]
        if n_edges > 1:
            dup = np.flatnonzero(skey[1:] == skey[:-1])
            if dup.size:
                k = int(order[dup[0]])
                raise ValueError(
                    f"duplicate edges: {dup.size} repeated (src, dst) pairs, first ({int(src[k])}, {int(dst[k])}); "
                    "merge duplicate prior edges before building the layer"
                )
        by_dst = np.lexsort((src, dst))  # user index of the k-th edge by (dst, src)
        s_ptr = np.zeros(self.in_features + 1, dtype=np.int64)
        np.cumsum(np.bincount(src, minlength=self.in_features), out=s_ptr[1:])
        d_ptr = np.zeros(self.out_features + 1, dtype=np.int64)
        np.cumsum(np.bincount(dst, minlength=self.out_features), out=d_ptr[1:])
        # embedding_bag runs ~10% faster on int32 indices
        small = max(n_edges, self.in_features, self.out_features) <= _INT32_MAX
        idx = np.int32 if small else np.int64
        device = self.src.device

        def buf(name: str, a: np.ndarray, dtype: type = np.int64) -> None:
            # non-persistent: derived from src/dst, rebuilt on load; moved by .to() like any buffer
            self.register_buffer(
                name,
                torch.from_numpy(np.ascontiguousarray(a, dtype=dtype)).to(device),
                persistent=False,
            )

        self._order_is_identity = bool(np.array_equal(order, np.arange(n_edges)))
        buf("_order", order)
        buf("_user_by_dst", by_dst)
        buf("_src_by_dst", src[by_dst], idx)
        buf("_dst_ptr", d_ptr, idx)
        buf("_dst_by_src", dst[order], idx)
        buf("_src_ptr", s_ptr, idx)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):  # noqa: D102
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        # src/dst may have changed in place: the derived plan must follow
        self._build_plan()

    def reset_parameters(self) -> None:
        """Reinitialise the weights and bias (kaiming-uniform).

        Each output's fan-in is its number of incoming edges; see the class's Notes.
        """
        deg = torch.bincount(self.dst.detach().cpu(), minlength=self.out_features).to(torch.float64)
        bound = torch.where(deg > 0, 1.0 / deg.clamp(min=1).sqrt(), torch.zeros_like(deg))
        with torch.no_grad():
            w = torch.empty(self.weight.shape, dtype=torch.float64).uniform_(-1.0, 1.0)
            w.mul_(bound[self.dst.detach().cpu()])
            self.weight.copy_(w)
            if self.bias is not None:
                b = (
                    torch.empty(self.out_features, dtype=torch.float64)
                    .uniform_(-1.0, 1.0)
                    .mul_(bound)
                )
                self.bias.copy_(b)

    # -- public API ------------------------------------------------------------------------------
    @property
    def n_edges(self) -> int:
        """Number of prior edges (= number of weights)."""
        return int(self.weight.numel())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(..., in_features)`` to ``(..., out_features)``.

        Parameters
        ----------
        x : torch.Tensor
            Input of shape ``(..., in_features)``, of the weight's dtype.

        Returns
        -------
        torch.Tensor
            ``x @ (W * M) + b``, of shape ``(..., out_features)``.

        Raises
        ------
        ValueError
            If the last dimension of ``x`` is not ``in_features``.
        TypeError
            If the dtype of ``x`` differs from the weight's.
        """
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"expected last dimension {self.in_features}, got input of shape {tuple(x.shape)}"
            )
        if x.dtype != self.weight.dtype:
            raise TypeError(
                f"input dtype {x.dtype} does not match weight dtype {self.weight.dtype}"
            )
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        if torch.is_grad_enabled() and (
            x2.requires_grad
            or self.weight.requires_grad
            or (self.bias is not None and self.bias.requires_grad)
        ):
            y = _SparseMaskedLinearFn.apply(x2, self.weight, self.bias, self)
        else:
            # inference: nothing to save for a backward pass
            y = _finish(_forward_t(self, _feature_major(x2), self.weight), self.bias)
        return y.reshape(*lead, self.out_features)

    def edge_products(self, x: torch.Tensor, grad_out: torch.Tensor) -> torch.Tensor:
        """Compute per edge ``k`` the product ``sum_b x[b, src[k]] * grad_out[b, dst[k]]``.

        This is the weight gradient for an upstream gradient ``grad_out`` (batch, out); multiplied
        by ``weight`` it gives an input x weight x gradient score per prior link. No autograd graph
        is built; memory is O(n_edges + in_features * batch).

        Parameters
        ----------
        x : torch.Tensor
            Inputs of shape ``(..., in_features)``.
        grad_out : torch.Tensor
            Upstream gradient of shape ``(..., out_features)``, with as many rows as ``x``.

        Returns
        -------
        torch.Tensor
            Shape ``(n_edges,)``, in the layer's edge order.

        Raises
        ------
        ValueError
            If ``x`` and ``grad_out`` have different numbers of rows.
        """
        x2 = x.detach().reshape(-1, self.in_features)
        g2 = grad_out.detach().reshape(-1, self.out_features)
        if x2.shape[0] != g2.shape[0]:
            raise ValueError(f"x has {x2.shape[0]} rows but grad_out has {g2.shape[0]}")
        return _edge_sddmm(self, _feature_major(x2), g2.t().contiguous())

    def dense_weight(self) -> torch.Tensor:
        """Build the dense ``(in, out)`` matrix ``W * M``.

        For tests and small inspection only.

        Returns
        -------
        torch.Tensor
            The ``(in_features, out_features)`` weight matrix, zero off the edges; differentiable
            with respect to :attr:`weight`.
        """
        dense = torch.zeros(
            self.in_features, self.out_features, dtype=self.weight.dtype, device=self.weight.device
        )
        return dense.index_put((self.src, self.dst), self.weight)

    def extra_repr(self) -> str:
        """Describe the layer's sizes in its ``repr``.

        Returns
        -------
        str
            ``in_features``, ``out_features``, ``n_edges`` and whether there is a bias.
        """
        return f"in_features={self.in_features}, out_features={self.out_features}, n_edges={self.n_edges}, bias={self.bias is not None}"
