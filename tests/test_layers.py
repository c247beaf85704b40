"""Tests for the sparse prior-masked linear layer against a dense masked oracle."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch import nn

import deepgami.nn.layers as layers_mod
from deepgami.nn.layers import SparseMaskedLinear


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny tensors: a second OpenMP thread only adds synchronisation stalls on a busy 2-core box
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class DenseMaskedLinear(nn.Module):
    """Oracle: y = x @ (W * M) + b with a dense (in, out) weight and a fixed 0/1 mask."""

    def __init__(self, mask: np.ndarray, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.register_buffer("mask", torch.as_tensor(mask != 0, dtype=weight.dtype))
        self.weight = nn.Parameter(weight.clone())
        self.bias = None if bias is None else nn.Parameter(bias.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x @ (self.weight * self.mask)
        return y if self.bias is None else y + self.bias


def random_mask(n_in: int, n_out: int, density: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = rng.random((n_in, n_out)) < density
    # inputs without edges and outputs without edges must both work
    mask[1] = False
    mask[-3:] = False
    mask[:, 0] = False
    mask[:, -1] = False
    return mask


def oracle_for(layer: SparseMaskedLinear, mask: np.ndarray) -> DenseMaskedLinear:
    bias = None if layer.bias is None else layer.bias.detach()
    return DenseMaskedLinear(mask, layer.dense_weight().detach(), bias)


@pytest.mark.parametrize("batch", [1, 6])
@pytest.mark.parametrize("shuffle", [False, True], ids=["sorted", "shuffled"])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_dense_oracle(batch, shuffle, bias):
    torch.manual_seed(0)
    n_in, n_out = 41, 17
    mask = random_mask(n_in, n_out, 0.15, seed=batch)
    src, dst = np.nonzero(mask)
    if shuffle:
        perm = np.random.default_rng(3).permutation(src.size)
        src, dst = src[perm], dst[perm]
    layer = SparseMaskedLinear(n_in, n_out, src, dst, bias=bias)
    oracle = oracle_for(layer, mask)

    x = torch.randn(batch, n_in, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    y, y_ref = layer(x), oracle(x_ref)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)

    grad = torch.randn_like(y)
    y.backward(grad)
    y_ref.backward(grad)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-5, atol=1e-5)
    # weight gradient per edge, in the caller's edge order
    torch.testing.assert_close(
        layer.weight.grad,
        oracle.weight.grad[torch.as_tensor(src), torch.as_tensor(dst)],
        rtol=1e-5,
        atol=1e-5,
    )
    if bias:
        torch.testing.assert_close(layer.bias.grad, oracle.bias.grad, rtol=1e-5, atol=1e-5)
    # outputs without edges carry only the bias
    expected_empty = layer.bias.detach()[0] if bias else torch.tensor(0.0)
    torch.testing.assert_close(y.detach()[:, 0], expected_empty.expand(batch))
    # inputs without edges get zero gradient
    assert torch.all(x.grad[:, 1] == 0)


def test_weight_grad_without_input_grad_and_input_grad_without_weight_grad():
    torch.manual_seed(1)
    mask = random_mask(30, 9, 0.3, seed=4)
    layer = SparseMaskedLinear.from_mask(mask)
    oracle = oracle_for(layer, mask)
    x = torch.randn(5, 30)
    layer(x).square().sum().backward()
    oracle(x).square().sum().backward()
    src, dst = np.nonzero(mask)
    torch.testing.assert_close(layer.weight.grad, oracle.weight.grad[src, dst])

    # frozen weights, gradient w.r.t. the input only (integrated gradients)
    layer.weight.requires_grad_(False)
    layer.bias.requires_grad_(False)
    xg = x.clone().requires_grad_(True)
    xr = x.clone().requires_grad_(True)
    (layer(xg) ** 3).sum().backward()
    (oracle(xr) ** 3).sum().backward()
    torch.testing.assert_close(xg.grad, xr.grad)


def test_leading_dimensions_are_kept():
    torch.manual_seed(2)
    mask = random_mask(12, 5, 0.4, seed=5)
    layer = SparseMaskedLinear.from_mask(mask)
    x = torch.randn(2, 3, 12)
    y = layer(x)
    assert y.shape == (2, 3, 5)
    torch.testing.assert_close(y, oracle_for(layer, mask)(x))


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_weight_count_and_from_mask_formats():
    mask = random_mask(25, 11, 0.25, seed=6)
    nnz = int(mask.sum())
    built = {}
    for name, m in {
        "numpy": mask,
        "numpy-float": mask.astype(np.float32) * 0.5,
        "csr": sp.csr_matrix(mask),
        "coo": sp.coo_matrix(mask),
        "csc-array": sp.csc_array(mask),
        "torch": torch.as_tensor(mask),
        "torch-sparse-csr": torch.as_tensor(mask, dtype=torch.float32).to_sparse_csr(),
    }.items():
        torch.manual_seed(0)
        layer = SparseMaskedLinear.from_mask(m)
        assert layer.weight.shape == (nnz,), name
        assert layer.n_edges == nnz
        assert layer.bias.shape == (11,)
        assert layer.src.dtype == torch.int64 and layer.dst.dtype == torch.int64
        assert torch.equal(
            (layer.dense_weight() != 0).to(torch.int64), torch.as_tensor(mask, dtype=torch.int64)
        ), name
        built[name] = layer
    ref = built["numpy"]
    for name, layer in built.items():
        assert torch.equal(layer.src, ref.src) and torch.equal(layer.dst, ref.dst), name
        assert torch.equal(layer.weight, ref.weight), name


def test_from_mask_ignores_explicit_zeros_and_keeps_shape():
    m = sp.csr_matrix(
        (np.array([1.0, 0.0, 2.0]), (np.array([0, 1, 3]), np.array([2, 0, 1]))), shape=(5, 4)
    )
    layer = SparseMaskedLinear.from_mask(m, bias=False)
    assert (layer.in_features, layer.out_features) == (5, 4)
    assert layer.n_edges == 2
    assert layer.bias is None
    assert layer.src.tolist() == [0, 3] and layer.dst.tolist() == [2, 1]
    with pytest.raises(ValueError, match="2-D"):
        SparseMaskedLinear.from_mask(np.ones(3))


def test_invalid_edges_are_rejected():
    with pytest.raises(ValueError, match="duplicate"):
        SparseMaskedLinear(4, 3, np.array([0, 1, 0]), np.array([2, 2, 2]))
    with pytest.raises(ValueError, match="src indices"):
        SparseMaskedLinear(4, 3, np.array([0, 4]), np.array([0, 1]))
    with pytest.raises(ValueError, match="dst indices"):
        SparseMaskedLinear(4, 3, np.array([0, 1]), np.array([0, -1]))
    with pytest.raises(ValueError, match="same length"):
        SparseMaskedLinear(4, 3, np.array([0, 1]), np.array([0]))
    with pytest.raises(TypeError, match="integer"):
        SparseMaskedLinear(4, 3, np.array([0.0, 1.0]), np.array([0, 1]))
    layer = SparseMaskedLinear(4, 3, np.array([0, 1]), np.array([0, 1]))
    with pytest.raises(ValueError, match="last dimension"):
        layer(torch.zeros(2, 5))


def test_init_is_deterministic_and_scaled_by_fan_in():
    rng = np.random.default_rng(7)
    # output 0 gets 400 edges, output 1 gets 4, output 2 none
    src = np.concatenate([np.arange(400), np.arange(4)])
    dst = np.concatenate([np.zeros(400, int), np.ones(4, int)])
    perm = rng.permutation(src.size)
    src, dst = src[perm], dst[perm]
    torch.manual_seed(123)
    a = SparseMaskedLinear(400, 3, src, dst)
    torch.manual_seed(123)
    b = SparseMaskedLinear(400, 3, src, dst)
    torch.manual_seed(124)
    c = SparseMaskedLinear(400, 3, src, dst)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    assert not torch.equal(a.weight, c.weight)

    w = a.weight.detach()
    dst_t = torch.as_tensor(dst)
    w0, w1 = w[dst_t == 0], w[dst_t == 1]
    assert w0.abs().max() <= 1 / np.sqrt(400) + 1e-7
    assert w1.abs().max() <= 1 / np.sqrt(4) + 1e-7
    # not collapsed to zero either: a uniform draw over 400 values spans most of its range
    assert w0.abs().max() > 0.8 / np.sqrt(400)
    assert a.bias[2].item() == 0.0
    assert abs(a.bias[0].item()) <= 1 / np.sqrt(400)


def test_no_edges_at_all():
    layer = SparseMaskedLinear(6, 4, np.array([], dtype=np.int64), np.array([], dtype=np.int64))
    assert layer.n_edges == 0
    x = torch.randn(3, 6, requires_grad=True)
    y = layer(x)
    torch.testing.assert_close(y, layer.bias.detach().expand(3, 4))
    y.sum().backward()
    assert layer.weight.grad.shape == (0,)
    torch.testing.assert_close(layer.bias.grad, torch.full((4,), 3.0))
    assert torch.all(x.grad == 0)


def test_state_dict_roundtrip_rebuilds_plan():
    torch.manual_seed(3)
    mask_a = random_mask(20, 7, 0.3, seed=8)
    a = SparseMaskedLinear.from_mask(mask_a)
    assert set(a.state_dict()) == {"weight", "bias", "src", "dst"}
    # a layer with the same number of edges but different ones: loading must switch its edges
    mask_b = np.zeros_like(mask_a)
    flat = np.flatnonzero(~mask_a.ravel())[: int(mask_a.sum())]
    mask_b.ravel()[flat] = True
    b = SparseMaskedLinear.from_mask(mask_b)
    x = torch.randn(4, 20)
    assert not torch.allclose(a(x), b(x))
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(b(x), a(x))


def test_gradcheck_float64():
    torch.manual_seed(4)
    mask = random_mask(9, 5, 0.4, seed=9)
    src, dst = np.nonzero(mask)
    perm = np.random.default_rng(0).permutation(src.size)
    layer = SparseMaskedLinear(9, 5, src[perm], dst[perm]).double()
    x = torch.randn(3, 9, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda inp, w, b: layers_mod._SparseMaskedLinearFn.apply(inp, w, b, layer),
        (x, layer.weight, layer.bias),
    )


def test_training_reduces_loss_on_a_prior_supported_signal():
    # the label depends only on links in the prior: the sparse model must be able to learn it
    torch.manual_seed(5)
    rng = np.random.default_rng(5)
    n_in, n_out, n = 60, 6, 256
    mask = rng.random((n_in, n_out)) < 0.2
    x = torch.as_tensor(rng.integers(0, 3, size=(n, n_in)), dtype=torch.float32)
    src, dst = np.nonzero(mask)
    true_w = torch.zeros(n_in, n_out)
    true_w[src, dst] = torch.randn(src.size)
    yclass = ((x @ true_w).sum(1) > (x @ true_w).sum(1).median()).long()
    model = nn.Sequential(SparseMaskedLinear.from_mask(mask), nn.ReLU(), nn.Linear(n_out, 2))
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    loss_fn = nn.CrossEntropyLoss()
    first = loss_fn(model(x), yclass).item()
    for _ in range(150):
        opt.zero_grad()
        loss = loss_fn(model(x), yclass)
        loss.backward()
        opt.step()
    assert loss.item() < 0.6 * first


def test_integrated_gradients_completeness():
    captum_attr = pytest.importorskip("captum.attr")
    torch.manual_seed(6)
    mask = random_mask(15, 4, 0.35, seed=10)
    model = nn.Sequential(SparseMaskedLinear.from_mask(mask), nn.Tanh(), nn.Linear(4, 2))
    x = torch.randn(3, 15)
    base = torch.zeros_like(x)
    ig = captum_attr.IntegratedGradients(model)
    attr, delta = ig.attribute(x, base, target=1, n_steps=200, return_convergence_delta=True)
    assert attr.shape == x.shape
    assert torch.all(attr[:, 1] == 0)  # an input without prior edges gets no attribution
    assert delta.abs().max() < 1e-2


def test_edge_products_is_the_weight_gradient():
    torch.manual_seed(7)
    mask = random_mask(18, 6, 0.3, seed=11)
    src, dst = np.nonzero(mask)
    perm = np.random.default_rng(1).permutation(src.size)
    layer = SparseMaskedLinear(18, 6, src[perm], dst[perm])
    x = torch.randn(5, 18)
    g = torch.randn(5, 6)
    expected = (x.T @ g)[torch.as_tensor(src[perm]), torch.as_tensor(dst[perm])]
    torch.testing.assert_close(layer.edge_products(x, g), expected)
    layer(x).backward(g)
    torch.testing.assert_close(layer.weight.grad, expected)
    with pytest.raises(ValueError, match="rows"):
        layer.edge_products(x, g[:4])


def test_feature_major_input_view_gives_same_result_without_a_transpose_copy():
    torch.manual_seed(8)
    mask = random_mask(300, 20, 0.02, seed=12)
    layer = SparseMaskedLinear.from_mask(mask)
    xt = torch.randn(300, 8)  # (in, batch) contiguous, as a genotype loader may build it
    x_view = xt.t()
    torch.testing.assert_close(layer(x_view), layer(x_view.contiguous()))
    # the layer's internal (in, batch) operand is the caller's buffer itself
    assert layers_mod._feature_major(x_view).data_ptr() == xt.data_ptr()
    x = x_view.clone().requires_grad_(True)
    layer(x).sum().backward()
    ref = x_view.contiguous().requires_grad_(True)
    oracle_for(layer, mask)(ref).sum().backward()
    torch.testing.assert_close(x.grad, ref.grad)
