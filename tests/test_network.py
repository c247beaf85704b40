"""The nn.Module: shapes, presence handling, imputers, auxiliary loss, normalization, attribution."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model_fixtures import single_thread  # noqa: F401  (autouse)
from deepgami.nn.layers import SparseMaskedLinear
from deepgami.nn.network import IMPUTERS, DeepGAMINetwork, LatentNorm
from deepgami.train import Adam


def _edges(
    n_in: int, n_out: int, per_input: int = 2, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    src = np.repeat(np.arange(n_in), per_input)
    dst = np.concatenate([rng.choice(n_out, per_input, replace=False) for _ in range(n_in)])
    return torch.as_tensor(src), torch.as_tensor(dst)


def _net(**kw) -> DeepGAMINetwork:
    torch.manual_seed(0)
    args = dict(
        n_inputs=[12, 7], n_latent=5, n_outputs=3, edges=[_edges(12, 5), None], hidden_layers=[8]
    )
    args.update(kw)
    return DeepGAMINetwork(**args)


def _inputs(n: int = 10, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 12, generator=g), torch.randn(n, 7, generator=g)]


def test_forward_shapes_and_encoder_kinds():
    net = _net().eval()
    assert isinstance(net.encoders[0], SparseMaskedLinear) and isinstance(
        net.encoders[1], torch.nn.Linear
    )
    out = net(_inputs())
    assert out.logits.shape == (10, 3)
    assert [b.shape for b in out.latent] == [(10, 5), (10, 5)]
    assert len(out.imputed) == len(out.blocks) == 2
    # Everything present: the head sees the encoded blocks.
    for b, c in zip(out.blocks, out.latent):
        torch.testing.assert_close(b, c)


def test_one_modality_has_no_imputer_and_no_auxiliary_term():
    with pytest.raises(ValueError):
        DeepGAMINetwork([], 3, 2)
    net = DeepGAMINetwork([4], 3, 2)
    assert len(net.imputers) == 0
    out = net([torch.randn(5, 4)])
    assert out.logits.shape == (5, 2)
    assert float(net.auxiliary_loss(out.latent, torch.ones(5, 1, dtype=torch.bool))) == 0.0


def test_missing_block_is_the_imputed_one_and_ignores_its_inputs():
    net = _net().eval()
    xs = _inputs()
    present = torch.ones(10, 2, dtype=torch.bool)
    present[:4, 1] = False
    out = net(xs, present)
    torch.testing.assert_close(out.blocks[1][:4], out.imputed[1][:4])
    torch.testing.assert_close(out.blocks[1][4:], out.latent[1][4:])
    # The absent rows' inputs of modality 1 do not matter.
    xs2 = [xs[0], xs[1].clone()]
    xs2[1][:4] = 1e3
    torch.testing.assert_close(net(xs2, present).logits, out.logits)
    # The imputed block of modality 1 is f_01(C_0).
    expected = net.imputers[net.pair_key(0, 1)](out.latent[0])
    torch.testing.assert_close(out.imputed[1], expected)


def test_three_modalities_impute_from_the_present_others():
    torch.manual_seed(0)
    net = DeepGAMINetwork([4, 3, 5], 6, 2, hidden_layers=[4]).eval()
    g = torch.Generator().manual_seed(1)
    xs = [torch.randn(3, n, generator=g) for n in (4, 3, 5)]
    present = torch.tensor([[True, True, False], [True, False, False], [False, True, True]])
    out = net(xs, present)
    lat = out.latent
    f = lambda i, j: net.imputers[net.pair_key(i, j)](lat[i])  # noqa: E731
    torch.testing.assert_close(out.blocks[2][0], ((f(0, 2) + f(1, 2)) / 2)[0])
    torch.testing.assert_close(out.blocks[1][1], f(0, 1)[1])
    torch.testing.assert_close(out.blocks[2][1], f(0, 2)[1])
    torch.testing.assert_close(out.blocks[0][2], ((f(1, 0) + f(2, 0)) / 2)[2])


@pytest.mark.parametrize("kind", IMPUTERS)
def test_imputer_kinds(kind):
    net = _net(imputer=kind).eval()
    n_params = sum(p.numel() for p in net.imputers[net.pair_key(0, 1)].parameters())
    expected = {"scalar": 2, "per_node": 10, "linear": 5 * 5 + 5}.get(kind)
    if expected is not None:
        assert n_params == expected
    out = net(_inputs(), torch.tensor([[True, False]] * 10))
    assert out.imputed[1].shape == (10, 5)


def test_head_present_hides_observed_blocks():
    net = _net().eval()
    xs = _inputs()
    present = torch.ones(10, 2, dtype=torch.bool)
    hidden = present.clone()
    hidden[:, 1] = False
    out = net(xs, present, head_present=hidden)
    torch.testing.assert_close(out.blocks[1], out.imputed[1])
    torch.testing.assert_close(out.logits, net(xs, hidden).logits)


def test_mean_fill_uses_the_stored_training_mean():
    net = _net().eval()
    net.latent_mean[1] = torch.arange(5.0)
    present = torch.tensor([[True, False]] * 10)
    out = net(_inputs(), present, fill="mean")
    torch.testing.assert_close(out.blocks[1], torch.arange(5.0).expand(10, 5))


def test_auxiliary_loss_only_on_rows_with_both_modalities():
    net = _net(latent_norm=False).eval()
    xs = _inputs()
    present = torch.ones(10, 2, dtype=torch.bool)
    present[5:, 1] = False
    lat = net.encode(xs)
    loss = net.auxiliary_loss(lat, present)
    rows = slice(0, 5)
    manual = torch.stack(
        [
            torch.mean((net.imputers[net.pair_key(0, 1)](lat[0][rows]) - lat[1][rows]) ** 2),
            torch.mean((net.imputers[net.pair_key(1, 0)](lat[1][rows]) - lat[0][rows]) ** 2),
        ]
    ).mean()
    torch.testing.assert_close(loss, manual)
    none = torch.zeros(10, 2, dtype=torch.bool)
    assert float(net.auxiliary_loss(lat, none)) == 0.0


def test_detached_target_gets_no_auxiliary_gradient():
    net = _net(latent_norm=False)
    lat = net.encode(_inputs())
    present = torch.ones(10, 2, dtype=torch.bool)
    # Only the 0 -> 1 term: modality 1 is the target, so its encoder must get no gradient.
    loss = torch.mean((net.imputers[net.pair_key(0, 1)](lat[0]) - lat[1].detach()) ** 2)
    loss.backward()
    assert net.encoders[1].weight.grad is None
    net.zero_grad()
    lat = net.encode(_inputs())
    net.auxiliary_loss(lat, present, "joint").backward()
    assert net.encoders[1].weight.grad is not None and net.encoders[1].weight.grad.abs().sum() > 0


def _spread_after_aux_training(target: str, latent_norm: bool) -> tuple[float, float, float]:
    """Train on the auxiliary loss alone; return (std of the imputed-to block before, after, alpha)."""
    torch.manual_seed(0)
    net = DeepGAMINetwork(
        [20, 20], 10, 2, hidden_layers=[], latent_norm=latent_norm, encoder_activation="linear"
    )
    g = torch.Generator().manual_seed(0)
    shared = torch.randn(256, 4, generator=g)
    xs = [
        shared @ torch.randn(4, 20, generator=g) + torch.randn(256, 20, generator=g),
        shared @ torch.randn(4, 20, generator=g) + torch.randn(256, 20, generator=g),
    ]
    present = torch.ones(256, 2, dtype=torch.bool)
    opt = Adam(net.parameters(), lr=0.02)

    def spread() -> float:
        net.train()  # batch statistics: the spread the loss sees
        with torch.no_grad():
            return float(net.encode(xs, present)[1].std(dim=0, unbiased=False).mean())

    before = spread()
    for _ in range(120):
        net.train()
        loss = net.auxiliary_loss(net.encode(xs, present), present, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return before, spread(), float(net.imputers[net.pair_key(0, 1)].alpha.detach())


def test_joint_auxiliary_loss_shrinks_the_target_and_the_defaults_do_not():
    # The reference's failure: plain MSE with gradients into both blocks wins by shrinking them.
    before, after, _ = _spread_after_aux_training("joint", latent_norm=False)
    assert after < 0.5 * before
    # Detached target: no shrinking incentive on the target block.
    before, after, _ = _spread_after_aux_training("detach", latent_norm=False)
    assert after > 0.7 * before
    # Normalized blocks: unit spread by construction, and the map learns a real alpha.
    before, after, alpha = _spread_after_aux_training("detach", latent_norm=True)
    assert after == pytest.approx(1.0, abs=0.01)
    assert alpha > 0.2


def test_latent_norm_statistics_only_from_present_rows():
    norm = LatentNorm(3).train()
    x = torch.randn(8, 3)
    rows = torch.tensor([True] * 5 + [False] * 3)
    a = norm(x, rows)
    x2 = x.clone()
    x2[~rows] = 1e4
    norm2 = LatentNorm(3).train()
    b = norm2(x2, rows)
    torch.testing.assert_close(a[rows], b[rows])
    torch.testing.assert_close(norm.running_mean, norm2.running_mean)
    assert torch.allclose(a[rows].mean(0), torch.zeros(3), atol=1e-5)


def test_group_norm_penalty_and_gates():
    net = _net()
    first = net.head[1]
    assert isinstance(first, torch.nn.Linear)
    # one group per latent gene: its weights in both blocks (columns j and 5 + j) together
    w = first.weight.detach()
    by_gene = sum(torch.sqrt((w[:, j] ** 2).sum() + (w[:, 5 + j] ** 2).sum()) for j in range(5))
    torch.testing.assert_close(net.head_group_norm(), by_gene)
    assert net.head_group_norm() < first.weight.norm(dim=0).sum()  # not one group per block node
    with torch.no_grad():
        first.weight.zero_()
    net.head_group_norm().backward()  # finite (sub)gradient at zero
    assert torch.isfinite(first.weight.grad).all()
    assert net.gates.shape == (2, 5)


def test_state_dict_round_trip_rebuilds_the_sparse_edges():
    net = _net(imputer="per_node").eval()
    state = net.state_dict()
    rebuilt = DeepGAMINetwork(
        [12, 7],
        5,
        3,
        edges=[(state["encoders.0.src"], state["encoders.0.dst"]), None],
        hidden_layers=[8],
        imputer="per_node",
    ).eval()
    rebuilt.load_state_dict(state)
    xs = _inputs()
    torch.testing.assert_close(rebuilt(xs).logits, net(xs).logits)


def test_logits_wrapper_supports_integrated_gradients():
    from captum.attr import IntegratedGradients

    net = _net().eval()
    xs = tuple(x.requires_grad_() for x in _inputs(4))
    ig = IntegratedGradients(net.logits)
    attrs, delta = ig.attribute(
        xs,
        baselines=tuple(torch.zeros_like(x) for x in xs),
        target=1,
        return_convergence_delta=True,
        n_steps=32,
    )
    assert [a.shape for a in attrs] == [(4, 12), (4, 7)]
    assert float(delta.abs().max()) < 1e-2
    # Pieces compose to the full map.
    lat = [net.activate(k, net.encoders[k](x)) for k, x in enumerate(xs)]
    torch.testing.assert_close(net.head_logits(lat), net.logits(*xs))


def test_latent_norm_per_modality():
    """One flag per modality: a flagged block is standardized, an unflagged one keeps the encoder's
    units; the state dict keeps every modality's norm buffers either way (one saved layout)."""
    net = _net(latent_norm=[False, True], encoder_activation="linear").train()
    xs = [torch.randn(40, 12) * 3 + 1, torch.randn(40, 7)]
    latent = net.encode(xs)
    torch.testing.assert_close(latent[0], net.encoders[0](xs[0]))
    torch.testing.assert_close(latent[1].mean(0), torch.zeros(5), atol=1e-5, rtol=0)
    norm_keys = [k for k in _net().state_dict() if k.startswith("norms.")]
    assert norm_keys and [k for k in net.state_dict() if k.startswith("norms.")] == norm_keys
    with pytest.raises(ValueError, match="one flag or one per modality"):
        _net(latent_norm=[True])


def test_summed_blocks_give_the_head_one_input_per_latent_node():
    net = _net(latent_combine="sum").eval()
    first = net.head[1]
    assert first.in_features == 5 and net.gates.shape == (1, 5)
    out = net(_inputs())
    summed = (out.blocks[0] + out.blocks[1]) * net.gates[0]
    torch.testing.assert_close(out.logits, net.head(summed))
    # Swapping what the two blocks hold leaves a sum unchanged; side by side it would not.
    torch.testing.assert_close(net.head_logits(out.blocks[::-1]), out.logits)
    assert net.head_group_norm().shape == ()
    with pytest.raises(ValueError, match="latent_combine must be one of"):
        _net(latent_combine="mean")


def test_auto_combine_sums_blocks_with_a_prior_and_concatenates_without():
    from deepgami.train import ArchitectureSettings

    auto = ArchitectureSettings()
    assert auto.combine_for([120, None]) == "sum"
    assert auto.combine_for([None, None]) == "concat"
    assert ArchitectureSettings(latent_combine="concat").combine_for([120, None]) == "concat"
