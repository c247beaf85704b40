"""Integrated gradients for features, latent nodes and prior links (deepgami.attribution), and the
gene-set over-representation test (deepgami.attribution.enrichment)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import hypergeom

sys.path.insert(0, str(Path(__file__).parent))

from model_fixtures import dense_mudata, simulated_mudata  # noqa: E402

from deepgami.attribution import integrated_gradients as attr_mod  # noqa: E402
from deepgami.data import cohort  # noqa: E402
from deepgami.attribution.integrated_gradients import (  # noqa: E402
    encoder_path_gradients,
    integrated_gradients,
    link_scores,
    output_function,
    precision_at_k,
    prioritize,
    rank_table,
)
from deepgami.attribution.enrichment import benjamini_hochberg, over_representation, read_gmt  # noqa: E402
from deepgami.errors import InputError  # noqa: E402
from deepgami.model import DeepGAMI  # noqa: E402
from deepgami.nn.network import DeepGAMINetwork  # noqa: E402
from deepgami.data.preprocessing import ModalityPreprocessor, fit_scaling  # noqa: E402

DATA = Path(__file__).parent / "data"


def tiny_network(activation: str = "tanh", n_outputs: int = 3, seed: int = 0) -> DeepGAMINetwork:
    """A sparse modality (15 inputs, some without edges), a dense one (6 inputs), 5 latent nodes."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    mask = rng.random((15, 5)) < 0.4
    mask[3] = False  # an input without edges
    mask[:, 4] = False  # a latent node without edges
    src, dst = np.nonzero(mask)
    net = DeepGAMINetwork(
        [15, 6],
        5,
        n_outputs,
        edges=[(torch.as_tensor(src), torch.as_tensor(dst)), None],
        hidden_layers=(8,),
        dropout=0.3,
        encoder_activation=activation,
    )
    return net.eval()


def tiny_inputs(n: int = 7, seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 15, generator=g), torch.randn(n, 6, generator=g)]


def per_sample_links(net, xs, bases, grads, k=0):
    enc = net.encoders[k]
    diff = xs[k] - bases[k].reshape(1, -1)
    return diff[:, enc.src] * enc.weight.detach() * grads[:, enc.dst]


# -- completeness: link attributions decompose feature attributions ------------------------------


@pytest.mark.parametrize("target", ["logit", "probability"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_links_sum_to_feature_attributions_per_sample(target, activation):
    net = tiny_network(activation)
    xs = tiny_inputs()
    bases = [torch.full((15,), 0.1), torch.zeros(6)]
    transform = output_function("classification", target)
    grads = encoder_path_gradients(net, xs, bases, [0, 2], transform, n_steps=32)
    for t in (0, 2):
        feats, delta = integrated_gradients(net, xs, bases, t, transform, n_steps=32)
        links = per_sample_links(net, xs, bases, grads[t][0])
        summed = torch.zeros_like(feats[0]).index_add_(1, net.encoders[0].src, links)
        scale = feats[0].abs().max()
        assert scale > 0
        assert (summed - feats[0]).abs().max() <= 1e-4 * scale
        assert torch.all(feats[0][:, 3] == 0)  # no edges, no attribution
        # completeness of IG itself: the delta is small against the output change
        with torch.no_grad():
            change = (
                transform(net.logits(*xs))[:, t]
                - transform(net.logits(*[b.reshape(1, -1) for b in bases]))[0, t]
            )
        assert delta.abs().max() <= 0.05 * change.abs().max() + 1e-6


def test_path_batching_does_not_change_results(monkeypatch):
    net = tiny_network()
    xs = tiny_inputs(n=9)
    bases = [torch.zeros(15), torch.zeros(6)]
    transform = output_function("classification", "logit")
    full = encoder_path_gradients(net, xs, bases, [1], transform, n_steps=20)[1][0]
    feats_full, _ = integrated_gradients(net, xs, bases, 1, transform, n_steps=20)
    # force one sample and one step per batch: every chunking branch runs
    monkeypatch.setattr(attr_mod, "PATH_BATCH_FLOATS", 21)
    small = encoder_path_gradients(net, xs, bases, [1], transform, n_steps=20)[1][0]
    feats_small, _ = integrated_gradients(net, xs, bases, 1, transform, n_steps=20)
    torch.testing.assert_close(small, full, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(feats_small[0], feats_full[0], rtol=1e-5, atol=1e-7)


def test_link_scores_chunks_and_reductions():
    net = tiny_network()
    xs = tiny_inputs(n=11)
    bases = [torch.zeros(15), torch.zeros(6)]
    grads = encoder_path_gradients(net, xs, bases, [0], output_function(), n_steps=8)[0][0]
    enc = net.encoders[0]
    per = per_sample_links(net, xs, bases, grads)
    for chunk in (1, 13, 10_000):
        mean, mean_abs = link_scores(
            xs[0], enc.src, enc.dst, enc.weight.detach(), grads, chunk_floats=chunk
        )
        np.testing.assert_allclose(mean, per.mean(0).numpy(), rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(mean_abs, per.abs().mean(0).numpy(), rtol=1e-5, atol=1e-8)


def test_latent_attributions_match_captum_layer_ig():
    from captum.attr import LayerIntegratedGradients

    # With a linear activation the encoder output is the DropConnect output, so Captum's layer IG
    # at the encoder is the reference.
    net = tiny_network("linear")
    xs = tiny_inputs()
    bases = [torch.zeros(15), torch.zeros(6)]
    transform = output_function("classification", "logit")
    mine, delta = integrated_gradients(net, xs, bases, 1, transform, n_steps=40, at="latent")
    # all blocks interpolated together, as in the latent attribution (completeness over all blocks)
    lig = LayerIntegratedGradients(lambda *x: transform(net.logits(*x)), list(net.encoders))
    ref = lig.attribute(
        tuple(xs),
        baselines=tuple(b.reshape(1, -1).expand_as(x) for b, x in zip(bases, xs)),
        target=1,
        n_steps=40,
    )
    for k in range(2):
        torch.testing.assert_close(mine[k], ref[k], rtol=1e-4, atol=1e-6)
    total = sum(m.sum(1) for m in mine)
    with torch.no_grad():
        change = (
            transform(net.logits(*xs))[:, 1]
            - transform(net.logits(*[b.reshape(1, -1) for b in bases]))[0, 1]
        )
    torch.testing.assert_close(total - delta, change, rtol=1e-4, atol=1e-5)


def test_centered_logit_binary_classes_are_mirror_images():
    net = tiny_network(n_outputs=2)
    xs = tiny_inputs()
    bases = [torch.zeros(15), torch.zeros(6)]
    transform = output_function("classification", "logit")
    a0, _ = integrated_gradients(net, xs, bases, 0, transform, n_steps=16)
    a1, _ = integrated_gradients(net, xs, bases, 1, transform, n_steps=16)
    torch.testing.assert_close(a0[0], -a1[0], rtol=1e-5, atol=1e-7)


def test_binary_shortcut_matches_full_computation():
    net = tiny_network(n_outputs=2)
    xs = tiny_inputs()
    bases = [torch.zeros(15), torch.zeros(6)]
    fast = attr_mod.attribute(
        net, xs, bases, [0, 1], output_function("classification", "logit"), n_steps=8
    )
    assert fast.mirrored
    # the same transform without the flag computes both classes
    slow = attr_mod.attribute(
        net, xs, bases, [0, 1], lambda z: z - z.mean(dim=1, keepdim=True), n_steps=8
    )
    assert not slow.mirrored
    for level in ("features", "latent", "links"):
        for t in (0, 1):
            for k, (mean, imp) in getattr(slow, level)[t].items():
                np.testing.assert_allclose(
                    getattr(fast, level)[t][k][0], mean, rtol=1e-5, atol=1e-8
                )
                np.testing.assert_allclose(getattr(fast, level)[t][k][1], imp, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(fast.delta_features[0], slow.delta_features[0], atol=1e-6)


def test_parameters_left_trainable_and_mode_restored():
    net = tiny_network()
    net.train()
    integrated_gradients(
        net, tiny_inputs(), [torch.zeros(15), torch.zeros(6)], 0, output_function(), n_steps=4
    )
    assert net.training
    assert all(p.requires_grad for p in net.parameters())


# -- tables -------------------------------------------------------------------------------------


def test_rank_table_ties_by_name_and_top_decile():
    table = pd.DataFrame(
        {
            "feature": ["b", "a", "c", "d"] * 2 + ["e", "f"] * 2,
            "modality": ["m1"] * 8 + ["m2"] * 4,
            "class": ["x"] * 4 + ["y"] * 4 + ["x", "x", "y", "y"],
            "importance": [1.0, 1.0, 3.0, 0.0, 0.5, 0.2, 0.1, 0.9, 2.0, 0.0, 0.3, 0.4],
        }
    )
    ranked = rank_table(table, ["feature", "modality"])
    x = ranked[ranked["class"] == "x"]
    assert x["feature"].tolist() == ["c", "e", "a", "b", "d", "f"]  # a before b: same importance
    assert x["rank"].tolist() == [1, 2, 3, 4, 5, 6]
    assert x["rank_in_modality"].tolist() == [1, 1, 2, 3, 4, 2]
    assert x["top_decile"].tolist() == [True] + [False] * 5  # ceil(6 / 10) = 1
    assert ranked["class"].tolist() == ["x"] * 6 + ["y"] * 6


# -- end to end on a model with priors: an oracle with the planted weights -------------------------


def oracle_model(mdata, truth) -> DeepGAMI:
    """A linear DeepGAMI whose encoders hold the planted link weights (decoys 0) and whose head
    reads each causal gene's program: the ideal model for the attribution to recover."""
    mods = cohort.modalities(mdata)
    latent = cohort.latent_nodes(mdata)
    causal = {(d["source"], d["target"], d["prior"]): d["weight"] for d in truth["causal_links"]}
    edges, preps, priors = [], [], {}
    for m in mods:
        name, src, dst = cohort.modality_edges(mdata, m)
        priors[m] = name
        feats = [str(f) for f in mdata.mod[m].var_names]
        X = cohort.modality_matrix(mdata, m)
        fill, center, scale = fit_scaling(X, "standard")
        preps.append(ModalityPreprocessor(feats, "standard", fill, center, scale))
        edges.append((src, dst, name, feats))
    net = DeepGAMINetwork(
        [len(p.features) for p in preps],
        len(latent),
        2,
        edges=[(torch.as_tensor(s), torch.as_tensor(d)) for s, d, _, _ in edges],
        hidden_layers=(),
        dropout=0.0,
        encoder_activation="linear",
    )
    with torch.no_grad():
        for k, (src, dst, name, feats) in enumerate(edges):
            w = [causal.get((feats[s], latent[d], name), 0.0) for s, d in zip(src, dst)]
            net.encoders[k].weight.copy_(torch.tensor(w))
            net.encoders[k].bias.zero_()
        head = net.head[-1]
        head.weight.zero_()
        head.bias.zero_()
        for g in truth["causal_genes"]:
            j = latent.index(g)
            for k in range(len(mods)):
                head.weight[1, k * len(latent) + j] = 1.0
    config = {
        "modalities": mods,
        "task": "classification",
        "classes": ["control", "case"],
        "latent_nodes": latent,
        "priors": priors,
    }
    return DeepGAMI(net, config, preps)


@pytest.fixture(scope="module")
def sim():
    return simulated_mudata(
        n_samples=160, seed=3, n_snps=80, n_tfs=10, n_genes=16, n_causal_genes=3
    )


def test_oracle_model_ranks_planted_links_first(sim):
    mdata, truth = sim
    model = oracle_model(mdata, truth)
    res = prioritize(model, mdata, n_steps=16)
    assert res.summary["n_samples"] == mdata.n_obs
    for cls in ("control", "case"):
        assert precision_at_k(res.links, truth["causal_links"], cls) == 1.0
        lat = res.latent[(res.latent["class"] == cls)]
        top = lat.nsmallest(2 * len(truth["causal_genes"]), "rank")
        assert set(top["node"]) == set(truth["causal_genes"])
    # every feature's links sum to its feature attribution, in the written tables
    assert_tables_complete(res)
    delta = res.summary["convergence_delta"]["case"]["features"]
    assert delta["relative"] < 1e-3  # a linear model: IG is exact up to float rounding


def assert_tables_complete(res) -> None:
    links = res.links.groupby(["class", "source", "modality"], as_index=False)[
        "mean_attribution"
    ].sum()
    sparse = res.features[res.features["modality"].isin(set(res.links["modality"]))]
    merged = sparse.merge(
        links,
        left_on=["class", "feature", "modality"],
        right_on=["class", "source", "modality"],
        how="left",
        suffixes=("", "_links"),
    )
    # a feature without edges has no links and must have no attribution; a latent gene's own
    # measurement also feeds its node through a self-edge, which links.tsv leaves out
    merged["mean_attribution_links"] = merged["mean_attribution_links"].fillna(0.0)
    merged = merged[~merged["feature"].isin(set(res.latent["node"]))]
    peak = res.features["importance"].max()  # the largest absolute (mean |IG|) attribution
    assert (
        merged["mean_attribution"] - merged["mean_attribution_links"]
    ).abs().max() <= 1e-4 * peak


def test_tables_columns_and_class_choice(sim):
    mdata, truth = sim
    model = oracle_model(mdata, truth)
    res = prioritize(
        model, mdata, classes=["case"], baseline="mean", target="probability", n_steps=8
    )
    assert list(res.features.columns) == attr_mod.FEATURE_COLUMNS
    assert list(res.latent.columns) == attr_mod.LATENT_COLUMNS
    assert list(res.links.columns) == attr_mod.LINK_COLUMNS
    assert set(res.links["class"]) == {"case"}
    assert set(res.links["prior"]) == {"eqtl", "grn"}
    n_edges = sum(len(cohort.modality_edges(mdata, m)[1]) for m in model.modalities)
    assert len(res.links) == n_edges
    assert res.links["rank"].tolist() == list(range(1, n_edges + 1))
    assert res.summary["baseline"] == "mean" and res.summary["target"] == "probability"
    assert res.summary["link_completeness_error"]["case"]["snp"] < 1e-4
    with pytest.raises(InputError, match="unknown class 'nope'"):
        prioritize(model, mdata, classes=["nope"])
    with pytest.raises(InputError, match="no sample has split 'validation'"):
        prioritize(model, mdata, split="validation")


def test_split_and_incomplete_samples_are_left_out():
    mdata, truth = simulated_mudata(
        n_samples=60, seed=1, n_snps=40, n_tfs=6, n_genes=8, n_causal_genes=2, missing_expr=0.3
    )
    model = oracle_model(mdata, truth)
    res = prioritize(model, mdata, split="train", n_steps=4)
    in_split = int((mdata.obs["split"] == "train").sum())
    s = res.summary
    assert s["n_samples"] + s["n_incomplete"] == in_split
    assert s["n_incomplete"] > 0 and s["n_not_in_split"] == mdata.n_obs - in_split


def test_dense_model_gets_feature_and_latent_tables():
    from model_fixtures import fast_params

    mdata = dense_mudata(n_samples=60, n_a=6, n_b=5)
    model = DeepGAMI.fit(
        mdata, fast_params(max_epochs=3, cv_folds=0, grid={"latent_dim": [4]}), seed=0
    )
    res = prioritize(model, mdata, n_steps=8)
    assert len(res.links) == 0 and list(res.links.columns) == attr_mod.LINK_COLUMNS
    assert len(res.features) == 2 * (6 + 5)
    assert len(res.latent) == 2 * 2 * 4  # classes x blocks x nodes
    assert set(res.latent["node"]) == {f"latent_{i}" for i in range(4)}
    again = prioritize(model, mdata, n_steps=8)
    pd.testing.assert_frame_equal(res.features, again.features)  # same inputs, same numbers


# -- enrichment ---------------------------------------------------------------------------------


def test_read_gmt_and_errors(tmp_path):
    sets = read_gmt(DATA / "tiny.gmt")
    assert list(sets) == ["SET_A", "SET_B", "SET_C", "SET_BIG"]
    assert sets["SET_A"].genes == (
        "GENE0001",
        "GENE0002",
        "GENE0003",
        "GENE0004",
    )  # duplicate merged
    bad = tmp_path / "bad.gmt"
    bad.write_text("SET_A\tdesc\tG1\nSET_B\tonly-two-fields\n")
    with pytest.raises(InputError, match="line 2"):
        read_gmt(bad)
    bad.write_text("S\td\tG1\nS\td\tG2\n")
    with pytest.raises(InputError, match="appears twice"):
        read_gmt(bad)
    with pytest.raises(InputError, match="not found"):
        read_gmt(tmp_path / "missing.gmt")


def test_benjamini_hochberg_known_values():
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.5])
    # sorted: .005 .01 .03 .04 .5 -> *5/rank: .025 .025 .05 .05 .5
    np.testing.assert_allclose(benjamini_hochberg(p), [0.025, 0.05, 0.05, 0.025, 0.5])
    assert benjamini_hochberg(np.array([])).size == 0


def test_over_representation_hypergeometric():
    sets = read_gmt(DATA / "tiny.gmt")
    background = [f"GENE{i:04d}" for i in range(1, 21)]  # 20 genes; SET_A's members are all inside
    selected = ["GENE0001", "GENE0002", "GENE0003", "GENE0010", "NOT_IN_BACKGROUND"]
    table = over_representation(selected, background, sets, min_size=3, max_size=10)
    assert "SET_BIG" not in set(table["gene_set"])  # 12 background genes > max_size
    a = table.set_index("gene_set").loc["SET_A"]
    assert (
        a["overlap"] == 3
        and a["set_size"] == 4
        and a["n_selected"] == 4
        and a["n_background"] == 20
    )
    assert a["pvalue"] == pytest.approx(hypergeom.sf(2, 20, 4, 4))
    assert a["genes"] == "GENE0001,GENE0002,GENE0003"
    assert table["pvalue"].is_monotonic_increasing
    np.testing.assert_allclose(table["fdr"], benjamini_hochberg(table["pvalue"].to_numpy()))


def test_multiclass_and_numeric_phenotype():
    from model_fixtures import fast_params

    mdata, _ = simulated_mudata(
        n_samples=90, seed=2, n_snps=40, n_tfs=6, n_genes=8, n_causal_genes=2, classes=3
    )
    model = DeepGAMI.fit(mdata, fast_params(max_epochs=3, cv_folds=0), seed=0)
    res = prioritize(model, mdata, n_steps=8, target="probability")
    assert list(dict.fromkeys(res.links["class"])) == ["class0", "class1", "class2"]
    assert not res.summary["binary_classes_mirrored"]
    assert (
        max(v for per in res.summary["link_completeness_error"].values() for v in per.values())
        <= 1e-4
    )
    assert_tables_complete(res)

    dense = dense_mudata(n_samples=50, n_a=5, n_b=4, regression=True)
    reg = DeepGAMI.fit(
        dense, fast_params(max_epochs=3, cv_folds=0, grid={"latent_dim": [3]}), seed=0
    )
    out = prioritize(reg, dense, n_steps=8)
    assert set(out.features["class"]) == {"value"} and out.summary["target"] == "value"


def test_bagged_model_attributions_are_the_ensembles():
    from model_fixtures import fast_params

    mdata, _ = simulated_mudata(
        n_samples=90, seed=3, n_snps=40, n_tfs=6, n_genes=8, n_causal_genes=2
    )
    model = DeepGAMI.fit(mdata, fast_params(max_epochs=3, cv_folds=0, bagging=2), seed=0)
    assert len(model.members) == 3
    res = prioritize(model, mdata, n_steps=32)
    keys = ["class", "modality", "feature"]
    singles = [
        prioritize(
            DeepGAMI(net, model.config, model.preprocessors), mdata, n_steps=32
        ).features.sort_values(keys)
        for net in model.members
    ]
    ens = res.features.sort_values(keys)
    # IG is linear in the function explained: the ensemble's signed attributions are the members' mean ...
    np.testing.assert_allclose(
        ens["mean_attribution"],
        np.mean([s["mean_attribution"] for s in singles], axis=0),
        rtol=1e-6,
        atol=1e-9,
    )
    assert not np.allclose(singles[0]["mean_attribution"], singles[1]["mean_attribution"])
    # ... and they sum to the change of the ensemble's (averaged) centered logit from the baseline.
    inputs, _ = attr_mod.select_samples(model, mdata)
    xs = [x.to(torch.float32) for x in attr_mod.materialize(inputs.xs)]
    bases = [b.reshape(1, -1) for b in attr_mod.baseline_inputs(model, "zero")]
    transform = output_function("classification", "logit")
    with torch.no_grad():
        change = np.mean(
            [
                (transform(net.logits(*xs)) - transform(net.logits(*bases))).mean(0).numpy()
                for net in model.members
            ],
            axis=0,
        )
    summed = ens.groupby("class")["mean_attribution"].sum()
    for t, cls in enumerate(model.classes):
        assert summed[cls] == pytest.approx(
            float(change[t]), abs=0.05 * abs(float(change[t])) + 1e-4
        )
    # links still decompose the features, member by member and so on average
    assert (
        max(v for per in res.summary["link_completeness_error"].values() for v in per.values())
        <= 1e-4
    )
    assert res.summary["networks_explained"] == 3
    refit = prioritize(model, mdata, n_steps=32, networks="refit")
    assert refit.summary["networks_explained"] == 1
    np.testing.assert_array_equal(
        refit.features.sort_values(keys)["mean_attribution"], singles[0]["mean_attribution"]
    )


@pytest.mark.parametrize(
    "method",
    ["gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle"],
)
def test_integration_rule_is_the_one_captum_integrated_gradients_uses(method):
    from captum.attr import IntegratedGradients

    from deepgami.attribution.integrated_gradients import _approximation

    x = torch.tensor([[0.5, -1.5, 2.0]])
    ig = IntegratedGradients(lambda z: (z**3).sum(dim=1)).attribute(
        x, torch.zeros_like(x), n_steps=7, method=method
    )
    steps, alphas = _approximation(7, method)
    # d/dz z^3 = 3 z^2 along the straight path alpha * x
    ours = x * sum(w * 3 * (a * x) ** 2 for w, a in zip(steps.tolist(), alphas))
    torch.testing.assert_close(ig.float(), ours, rtol=1e-5, atol=1e-6)


def test_self_edges_feed_each_measured_gene_and_stay_out_of_links():
    """`self_edges: true`: every latent gene measured in a guided modality feeds its own node, after
    the prior's edges; links.tsv keeps the prior links only, and the self-edges start at weight 1."""
    from model_fixtures import fast_params

    from deepgami.data.arrays import read_arrays, self_edges

    mdata, _ = simulated_mudata(
        n_samples=90, seed=3, n_snps=40, n_tfs=6, n_genes=8, n_causal_genes=2
    )
    data = read_arrays(mdata)
    k = data.modalities.index("expr")
    src, dst = data.edges[k]
    genes = pd.Index(data.latent_nodes)
    add_src, add_dst = self_edges(data.var_names[k], data.latent_nodes, src, dst)
    assert (
        list(data.var_names[k][add_src]) == list(genes[add_dst]) == list(genes)
    )  # all 8 are expression features
    # an edge the prior already has is not added twice
    again = self_edges(
        data.var_names[k], data.latent_nodes, np.append(src, add_src[0]), np.append(dst, add_dst[0])
    )
    assert len(again[0]) == len(genes) - 1

    model = DeepGAMI.fit(
        mdata, fast_params(max_epochs=3, cv_folds=0, self_edges=True, encoder_lr_scale=0.0), seed=0
    )
    n_prior = [len(e[0]) if e is not None else None for e in data.edges]
    assert model.config["network"]["prior_edges"] == n_prior
    enc = model.module.encoders[k]
    assert enc.n_edges == n_prior[k] + len(genes)
    torch.testing.assert_close(
        enc.weight.detach()[n_prior[k] :], torch.ones(len(genes))
    )  # frozen at the start
    res = prioritize(model, mdata, n_steps=8)
    assert len(res.links) == 2 * sum(n_prior)  # two classes
    assert not (
        (res.links["source"] == res.links["target"]) & (res.links["modality"] == "expr")
    ).any()
    assert res.summary["n_links"] == sum(n_prior)
    assert_tables_complete(res)
    gene_rows = res.features[res.features["feature"].isin(genes)]
    assert (gene_rows["importance"] > 0).all()  # the measured genes now carry attribution
