"""Parameters, grid, splits, the fit loop, preprocessing, and leakage."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from scipy import stats

import model_fixtures
from model_fixtures import single_thread  # noqa: F401  (autouse)
from deepgami.errors import InputError
from deepgami.data.arrays import read_arrays
from deepgami.model import fit_predict_fold
from deepgami.nn.network import DeepGAMINetwork
from deepgami.data.preprocessing import (
    ModalityPreprocessor,
    class_weights,
    fit_modality,
    fit_scaling,
    select_features,
    smote_oversample,
    univariate_pvalues,
)
from deepgami.train import (
    GRID_KEYS,
    SEARCH_KEYS,
    Batch,
    as_setting,
    calibrate_imputers,
    cv_splits,
    default_params,
    expand_grid,
    hide_modalities,
    init_encoders_from_targets,
    inner_split,
    load_params,
    train_network,
)

FULL = os.environ.get("DEEPGAMI_FULL") == "1"


# -- parameters -------------------------------------------------------------------------------------


def test_defaults_are_valid_and_small():
    params = load_params(None)
    assert set(params.to_dict()["grid"]) == set(GRID_KEYS)
    # The default search stays small enough for `deepgami train` on a few hundred samples.
    assert len(expand_grid(params)) <= 4


def test_params_file_merges_over_defaults(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("grid:\n  dropout: [0.1, 0.2]\nmax_epochs: 7\nscaling: {snp: none}\n")
    params = load_params(path)
    assert params.search["dropout"] == (0.1, 0.2)
    assert list(params.search["learning_rate"]) == default_params()["grid"]["learning_rate"]
    assert params.fixed["max_epochs"] == 7 and params.fixed["scaling"] == {"snp": "none"}
    assert params.first().preprocessing.scaling == {"snp": "none"}


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("bogus: 1\n", "unknown parameter 'bogus'"),
        ("grid:\n  depth: [1]\n", "unknown grid entry 'depth'"),
        ("grid:\n  dropout: 0.5\n", "grid.dropout must be a non-empty list"),
        ("grid:\n  dropout: [1.5]\n", "grid.dropout values"),
        ("grid:\n  hidden_layers: [64]\n", "grid.hidden_layers entries"),
        ("imputer: cubic\n", "imputer must be one of"),
        ("scaling: {snp: zscore}\n", "scaling must be one of"),
        ("max_epochs: 0\n", "max_epochs must be an integer"),
        (
            "lerning_rate: 0.01\n",
            "unknown parameter 'lerning_rate' (did you mean 'learning_rate'?)",
        ),
        ("grid:\n  dropuot: [0.1]\n", "unknown grid entry 'dropuot' (did you mean 'dropout'?)"),
        ("dropout: 1.5\n", "dropout values must be in [0, 1), got 1.5"),
        ("learning_rate: -1\n", "learning_rate values must be positive numbers, got -1"),
        ("modality_dropout: 2\n", "modality_dropout must be a number in [0.0, 1.0] or auto, got 2"),
        ("- a\n- b\n", "must be a mapping"),
        ("grid: [\n", "not valid YAML"),
    ],
)
def test_bad_params_are_input_errors(tmp_path, text, fragment):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_params(path)
    assert fragment in str(err.value) and str(path) in str(err.value)


def test_missing_params_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot read params file"):
        load_params(tmp_path / "nope.yaml")


def test_grid_expansion_and_single_setting():
    params = load_params(
        None,
        {
            "grid": {
                "dropout": [0.1, 0.2],
                "latent_dim": [4, 8],
                "weight_decay": [0.0],
                "lambda": [1.0],
                "early_stopping_on": ["task"],
            }
        },
    )
    assert len(expand_grid(params, dense=True)) == 4
    # With a prior the latent dimension is fixed by the prior: duplicates merge.
    assert len(expand_grid(params, dense=False)) == 2
    with pytest.raises(ValueError):
        as_setting(params)
    one = as_setting({"dropout": 0.3})
    assert (
        one.architecture.dropout == 0.3
        and one.training.learning_rate == default_params()["grid"]["learning_rate"][0]
    )
    with pytest.raises(ValueError):
        as_setting({"not_a_param": 1})


# -- splits -----------------------------------------------------------------------------------------


def test_cv_splits_are_stratified_disjoint_and_seeded():
    y = np.array(["a"] * 30 + ["b"] * 10)
    splits = cv_splits(y, 5, seed=3, stratify=True)
    assert len(splits) == 5
    tests = np.concatenate([te for _, te in splits])
    assert sorted(tests) == list(range(40))
    for tr, te in splits:
        assert not set(tr) & set(te)
        assert (y[te] == "b").sum() == 2
    again = cv_splits(y, 5, seed=3, stratify=True)
    assert all((a[1] == b[1]).all() for a, b in zip(splits, again))


def test_inner_split_is_stratified_and_small_sets_skip_validation():
    y = np.array([0] * 40 + [1] * 20)
    tr, va = inner_split(y, 0.25, seed=1, stratify=True)
    assert len(va) == 15 and not set(tr) & set(va)
    assert (y[va] == 1).sum() == 5
    tr, va = inner_split(np.array([0, 1, 0]), 0.2, seed=1, stratify=True)
    assert len(va) == 0 and len(tr) == 3


def test_hide_modalities_keeps_one_block_per_row():
    present = torch.tensor([[True, True]] * 200 + [[True, False]] * 50)
    hidden = hide_modalities(present, 0.5, torch.Generator().manual_seed(0))
    assert bool((hidden.sum(1) >= 1).all())
    assert bool((hidden[200:] == present[200:]).all())  # single-modality rows untouched
    frac = float((hidden[:200].sum(1) == 1).float().mean())
    assert 0.35 < frac < 0.65
    # Rate 1 (auto without a prior: late fusion): every row of two or three blocks loses exactly one.
    present = torch.tensor([[True, True, True]] * 100 + [[True, True, False]] * 100)
    hidden = hide_modalities(present, 1.0, torch.Generator().manual_seed(0))
    assert bool((hidden.sum(1) == present.sum(1) - 1).all()) and bool((hidden <= present).all())


# -- the fit loop -------------------------------------------------------------------------------------


def _toy_batch(n: int, seed: int) -> Batch:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, 6, generator=g)
    b = a[:, :4] + 0.5 * torch.randn(n, 4, generator=g)
    y = (a[:, 0] + a[:, 1] > 0).long()
    return Batch([a, b], torch.ones(n, 2, dtype=torch.bool), y)


def test_train_network_early_stops_and_restores_the_best_epoch():
    setting = as_setting(
        {
            "learning_rate": 0.05,
            "max_epochs": 60,
            "patience": 5,
            "hidden_layers": [32],
            "dropout": 0.0,
            "weight_decay": 0.0,
            "batch_size": 16,
            "lambda": 0.5,
        }
    )
    torch.manual_seed(0)
    net = DeepGAMINetwork([6, 4], 8, 2, hidden_layers=[32], dropout=0.0)
    train, val = _toy_batch(48, 0), _toy_batch(40, 1)
    history, best = train_network(net, train, val, setting.training, "classification", seed=0)
    assert len(history) < 60  # stopped early: 48 samples and 32 hidden units overfit fast
    assert history["best"].sum() == 1 and int(history.loc[history["best"], "epoch"].iloc[0]) == best
    assert len(history) == best + 5
    # The restored weights are those of the best epoch.
    from deepgami.train import evaluate_loss, task_loss_fn

    task, _ = evaluate_loss(
        net, val, "classification", task_loss_fn("classification"), 0.5, "detach"
    )
    assert task == pytest.approx(
        float(history.loc[history["best"], "val_task_loss"].iloc[0]), rel=1e-5
    )


def test_train_network_is_deterministic():
    setting = as_setting({"max_epochs": 5, "hidden_layers": [8], "modality_dropout": 0.3})
    outs = []
    for _ in range(2):
        torch.manual_seed(123)  # a different global state must not matter: the loop seeds itself
        net = DeepGAMINetwork([6, 4], 8, 2, hidden_layers=[8])
        torch.manual_seed(0)
        net.load_state_dict(DeepGAMINetwork([6, 4], 8, 2, hidden_layers=[8]).state_dict())
        train_network(
            net, _toy_batch(48, 0), _toy_batch(20, 1), setting.training, "classification", seed=7
        )
        outs.append(torch.cat([p.detach().flatten() for p in net.parameters()]))
    assert torch.equal(outs[0], outs[1])


def test_started_encoders_train_at_the_scaled_learning_rate():
    def moved(scale: float) -> tuple[float, float, float]:
        setting = as_setting(
            {
                "max_epochs": 5,
                "hidden_layers": [8],
                "encoder_lr_scale": scale,
                "weight_decay": 0.0,
                "learning_rate": 0.01,
            }
        )
        torch.manual_seed(0)
        net = DeepGAMINetwork([6, 4], 8, 2, hidden_layers=[8])
        before = {n: p.detach().clone() for n, p in net.named_parameters()}
        train_network(
            net, _toy_batch(48, 0), None, setting.training, "classification", seed=0, started=[0]
        )
        change = {n: float((p.detach() - before[n]).abs().sum()) for n, p in net.named_parameters()}
        enc0 = sum(v for n, v in change.items() if n.startswith("encoders.0."))
        enc1 = sum(v for n, v in change.items() if n.startswith("encoders.1."))
        return enc0, enc1, sum(change.values()) - enc0 - enc1

    frozen, full, slow = moved(0.0), moved(1.0), moved(0.1)
    assert frozen[0] == 0.0 and frozen[1] > 0 and frozen[2] > 0  # only the started encoder is held
    assert 0 < slow[0] < 0.3 * full[0]  # Adam's step is proportional to the learning rate
    assert full[1] > 0 and slow[1] > 0


def test_calibrated_imputer_falls_back_to_the_mean_without_shared_signal():
    torch.manual_seed(0)
    net = DeepGAMINetwork(
        [6, 6], 4, 2, hidden_layers=[], encoder_activation="linear", latent_norm=False
    ).eval()
    with torch.no_grad():
        for enc in net.encoders:
            enc.bias.zero_()
    g = torch.Generator().manual_seed(0)
    independent = Batch(
        [torch.randn(400, 6, generator=g), torch.randn(400, 6, generator=g)],
        torch.ones(400, 2, dtype=torch.bool),
        torch.zeros(400, dtype=torch.long),
    )
    fitted = calibrate_imputers(net, independent)
    assert abs(fitted[net.pair_key(0, 1)][0]) < 0.1
    x = torch.randn(400, 6, generator=g)
    shared = Batch(
        [x, x.clone()], torch.ones(400, 2, dtype=torch.bool), torch.zeros(400, dtype=torch.long)
    )
    net.encoders[1].load_state_dict(net.encoders[0].state_dict())
    fitted = calibrate_imputers(net, shared)
    assert fitted[net.pair_key(0, 1)][0] == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("path", ["joint", "marginal"])
def test_encoders_start_at_the_regression_of_each_latent_gene_on_its_prior_sources(
    path, monkeypatch
):
    """`encoder_init: targets`: node g of a sparse encoder starts at the least-squares fit of gene g's
    measured value on g's sources; genes that are not measured (NaN) keep their random start; rows
    lacking the modality are left out; no labels are used. `marginal` is the path of modalities too
    large for one float32 copy: per-edge slopes, which agree here because the sources are independent."""
    import deepgami.train.encoder_init

    if path == "marginal":
        monkeypatch.setattr(deepgami.train.encoder_init, "JOINT_INIT_MAX_VALUES", 0)
    rng = np.random.default_rng(0)
    n = 300
    xa, xb = rng.normal(size=(n, 6)), rng.normal(size=(n, 4))
    edges_a = (torch.tensor([0, 1, 2, 3, 4, 5]), torch.tensor([0, 0, 1, 1, 2, 2]))
    edges_b = (torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 2]))
    net = DeepGAMINetwork([6, 4], 3, 2, edges=[edges_a, edges_b], hidden_layers=[])
    targets = np.column_stack(
        [2 * xa[:, 0] - xa[:, 1], 0.5 * xa[:, 2] + xb[:, 1], np.full(n, np.nan)]
    )
    targets += 0.01 * rng.normal(size=targets.shape)
    present = torch.ones(n, 2, dtype=torch.bool)
    present[:20, 1] = False  # absent rows hold zeros: they must not enter the fit
    xs = [torch.tensor(xa, dtype=torch.float32), torch.tensor(xb, dtype=torch.float32)]
    xs[1][:20] = 0.0
    before = [enc.weight.detach().clone() for enc in net.encoders]
    done = init_encoders_from_targets(net, xs, present, targets)
    assert done == {"0": 2, "1": 2}
    wa, wb = net.encoders[0].weight.detach(), net.encoders[1].weight.detach()
    # gene 1's other half (from modality b) is noise to modality a's fit: wider tolerance there
    assert wa[:2].numpy() == pytest.approx([2.0, -1.0], abs=0.05)  # ridge shrinks by ~1%
    assert wa[2:4].numpy() == pytest.approx([0.5, 0.0], abs=0.2)
    assert torch.equal(wa[4:], before[0][4:])  # gene 2 is not measured
    assert wb[1].item() == pytest.approx(1.0, abs=0.1) and abs(wb[0].item()) < 0.15
    assert torch.equal(wb[2:], before[1][2:])
    # the pre-normalization output of node 0 tracks the measured gene
    pre = net.encoders[0](xs[0]).detach().numpy()[:, 0]
    assert np.corrcoef(pre, targets[:, 0])[0, 1] > 0.99


def test_a_joint_start_splits_one_regression_per_gene_among_the_encoders():
    """`encoder_init: joint`: when a SNP drives a TF, separate starts both take the TF-mediated
    genetic part (the SNP's trans edge in the genotype encoder and the TF in the expression one),
    so the summed blocks count it twice; the joint start is one ridge fit of the gene on all its
    sources, split among the encoders: the blocks add up to that fit (over rows having both
    modalities) and track the gene's program better than the separate start."""
    rng = np.random.default_rng(1)
    n, f = 400, 0.5
    snp = rng.normal(size=(n, 3))  # cis eQTL, driver of the TF (trans edge), decoy
    tf = np.column_stack([np.sqrt(f) * snp[:, 1] + np.sqrt(1 - f) * rng.normal(size=n)])
    tf = np.column_stack([tf, rng.normal(size=n)])  # the gene's TF and a decoy TF
    program = 0.7 * snp[:, 0] + 0.7 * tf[:, 0]
    gene = program + 0.3 * rng.normal(size=n)
    target = ((gene - gene.mean()) / gene.std())[:, None]
    edges = [(torch.tensor([0, 1, 2]), torch.zeros(3, dtype=torch.long))] + [
        (torch.tensor([0, 1]), torch.zeros(2, dtype=torch.long))
    ]
    present = torch.ones(n, 2, dtype=torch.bool)
    present[:40, 1] = False  # rows lacking the TFs are left out of the joint fit
    xs = [torch.tensor(snp, dtype=torch.float32), torch.tensor(tf, dtype=torch.float32)]
    xs[1][:40] = 0.0
    summed = {}
    for joint in (False, True):
        net = DeepGAMINetwork([3, 2], 1, 2, edges=edges, hidden_layers=[])
        done = init_encoders_from_targets(net, xs, present, target, joint=joint)
        assert done == {"0": 1, "1": 1}
        summed[joint] = sum(
            enc(x).detach().double().numpy()[:, 0] for enc, x in zip(net.encoders, xs, strict=True)
        )
        w_snp = net.encoders[0].weight.detach().numpy()
    rows = np.arange(40, n)
    X = np.hstack([snp, tf])[rows]
    Xc, yc = X - X.mean(axis=0), target[rows, 0] - target[rows, 0].mean()
    w = np.linalg.solve(Xc.T @ Xc + 0.01 * len(rows) * np.eye(5), Xc.T @ yc)
    ridge_fit = target[rows, 0].mean() + (np.hstack([snp, tf]) - X.mean(axis=0)) @ w
    assert summed[True][rows] == pytest.approx(ridge_fit[rows], abs=1e-4)
    assert w_snp == pytest.approx(w[:3], abs=1e-5) and abs(w_snp[1]) < 0.1  # no trans part
    corr = {j: np.corrcoef(summed[j][rows], program[rows])[0, 1] for j in summed}
    assert corr[True] > 0.99 and corr[True] - corr[False] > 0.02


def test_target_initialization_uses_measured_latent_genes_and_no_labels():
    mdata, _ = model_fixtures.simulated_mudata(n_samples=120, seed=0)
    data = read_arrays(mdata)
    from deepgami.data.arrays import latent_targets

    rows = np.flatnonzero(data.split == "train")
    targets = latent_targets(data, rows)
    assert targets.shape == (len(rows), len(data.latent_nodes))
    assert np.allclose(np.nanmean(targets, axis=0), 0, atol=1e-9) and not np.isnan(targets).any()
    shuffled = data.labels.copy()
    np.random.default_rng(1).shuffle(shuffled)
    from dataclasses import replace

    assert np.array_equal(latent_targets(replace(data, labels=shuffled), rows), targets)


# -- preprocessing ------------------------------------------------------------------------------------


def test_univariate_pvalues_match_scipy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 9)).astype(np.float32)
    y2 = np.repeat([0, 1], 30)
    X[y2 == 1, 0] += 1.0
    X[:, 8] = 3.0  # constant
    p = univariate_pvalues(X, y2, "classification")
    X = X.astype(np.float64)  # scipy computes in the input's precision
    expected = stats.ttest_ind(X[y2 == 0, :8], X[y2 == 1, :8]).pvalue
    np.testing.assert_allclose(p[:8], expected, rtol=1e-6)
    assert p[8] == 1.0
    y3 = np.repeat([0, 1, 2], 20)
    p3 = univariate_pvalues(X[:, :8], y3, "classification")
    np.testing.assert_allclose(
        p3, [stats.f_oneway(*[X[y3 == c, j] for c in range(3)]).pvalue for j in range(8)], rtol=1e-6
    )
    yr = X[:, 1] + rng.normal(size=60)
    pr = univariate_pvalues(X[:, :8], yr, "regression")
    np.testing.assert_allclose(
        pr, [stats.pearsonr(X[:, j], yr).pvalue for j in range(8)], rtol=1e-5
    )


def test_select_features_modes():
    p = np.array([0.5, 0.01, 0.2, 0.001, 0.04, 0.9])
    assert list(select_features(p, "none")) == [0, 1, 2, 3, 4, 5]
    assert list(select_features(p, "pvalue", pvalue=0.05, min_features=1)) == [1, 3, 4]
    assert list(select_features(p, "topk", top_k=2, min_features=1)) == [1, 3]
    # A strict threshold keeps min_features best rather than emptying the modality.
    assert list(select_features(p, "pvalue", pvalue=1e-9, min_features=2)) == [1, 3]


def test_scalings():
    X = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]], dtype=np.float32)
    for scaling in ("standard", "minmax", "log1p", "none"):
        fill, center, scale = fit_scaling(X, scaling)
        prep = ModalityPreprocessor(["a", "b"], scaling, fill, center, scale)
        out = prep.transform(X)
        assert out.dtype == np.float32
        assert np.all(np.isfinite(out))
    prep = ModalityPreprocessor(["a", "b"], "standard", *fit_scaling(X, "standard"))
    np.testing.assert_allclose(prep.transform(X)[:, 0], [-1.2247449, 0.0, 1.2247449], rtol=1e-5)
    np.testing.assert_allclose(prep.transform(X)[:, 1], 0.0)  # constant column: scale 1
    mm = ModalityPreprocessor(["a", "b"], "minmax", *fit_scaling(X, "minmax"))
    np.testing.assert_allclose(mm.transform(X)[:, 0], [0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="non-negative"):
        fit_scaling(-X, "log1p")
    # NaN takes the training mean; the dict round trip is exact.
    nan = np.array([[np.nan, 1.0]], dtype=np.float32)
    np.testing.assert_allclose(prep.transform(nan)[0, 0], 0.0, atol=1e-6)
    again = ModalityPreprocessor.from_dict(prep.to_dict())
    np.testing.assert_array_equal(again.transform(X), prep.transform(X))


def test_fit_modality_selects_among_prior_sources():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 40)
    X = rng.normal(size=(80, 6)).astype(np.float32)
    X[:, 0] += 2 * y  # strongest, but not a prior source
    X[:, 4] += 1 * y
    prep, cols = fit_modality(
        X,
        list("abcdef"),
        y,
        "classification",
        candidates=np.array([2, 3, 4, 4]),
        selection="topk",
        top_k=1,
        min_features=1,
    )
    assert list(cols) == [4] and prep.features == ["e"]


def test_smote_and_class_weights():
    rng = np.random.default_rng(0)
    codes = np.array([0] * 30 + [1] * 10)
    present = np.ones((40, 2), dtype=bool)
    present[:5, 1] = False
    xs = [rng.normal(size=(40, 3)).astype(np.float32), rng.normal(size=(40, 2)).astype(np.float32)]
    out_xs, out_present, out_codes = smote_oversample(xs, present, codes, seed=0)
    assert np.bincount(out_codes).tolist() == [30, 30]
    assert out_xs[0].shape == (60, 3) and out_xs[1].shape == (60, 2) and out_present[40:].all()
    np.testing.assert_array_equal(out_xs[0][:40], xs[0])
    w = class_weights(codes, 3)
    np.testing.assert_allclose(w, [40 / 60, 40 / 20, 0.0], rtol=1e-6)


# -- leakage --------------------------------------------------------------------------------------


def test_scalers_and_selectors_never_see_held_out_rows():
    """Changing every held-out row (features and labels) leaves the fitted model bit-for-bit unchanged."""
    mdata = model_fixtures.dense_mudata(n_samples=80, seed=2)
    data = read_arrays(mdata)
    rng = np.random.default_rng(0)
    test_idx = np.sort(rng.choice(80, 20, replace=False))
    train_idx = np.setdiff1d(np.arange(80), test_idx)
    params = model_fixtures.fast_params(
        selection="topk",
        selection_top_k=5,
        min_features=2,
        scaling={"a": "standard", "b": "minmax"},
        balance="smote",
        max_epochs=3,
    )
    first = fit_predict_fold(data, train_idx, test_idx, params, seed=0)
    for k in range(2):
        data.X[k][test_idx] = rng.normal(1e3, 1e2, size=data.X[k][test_idx].shape)
    data.labels[test_idx] = np.where(data.labels[test_idx] == "case", "control", "case")
    second = fit_predict_fold(data, train_idx, test_idx, params, seed=0)
    assert first.model.config["preprocessing"] == second.model.config["preprocessing"]
    for key, value in first.model.module.state_dict().items():
        assert torch.equal(value, second.model.module.state_dict()[key]), key
    # The fitted scaler is exactly the training rows' mean and standard deviation.
    prep = first.model.preprocessors[0]
    cols = data.var_names[0].get_indexer(prep.features)
    X = read_arrays(mdata).X[0][train_idx][:, cols].astype(np.float64)
    np.testing.assert_allclose(prep.center, X.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(prep.scale, X.std(0), rtol=1e-5)


@pytest.mark.slow
def test_shuffled_training_labels_give_chance_auc():
    """With labels shuffled on the training rows, held-out AUC is not above chance.

    The fit to shuffled labels is a random direction in the latent genes, and the held-out labels are
    the real ones, so its AUC falls on either side of 0.5 by the chance overlap of that direction
    with the real signal (0.40 and 0.53 for seeds 0 and 1 with summed blocks, 60 latent genes).
    Leakage of held-out rows would push it up only: the bound is one-sided."""
    sizes = {} if FULL else {"n_snps": 300, "n_tfs": 20, "n_genes": 60, "n_causal_genes": 5}
    mdata, _ = model_fixtures.simulated_mudata(n_samples=4000 if FULL else 2000, seed=5, **sizes)
    data = read_arrays(mdata)
    train = np.flatnonzero(data.split == "train")
    test = np.flatnonzero(data.split == "test")
    data.labels[train] = np.random.default_rng(0).permutation(data.labels[train])
    params = load_params(None) if FULL else model_fixtures.fast_params(max_epochs=30, patience=10)
    result = fit_predict_fold(
        data,
        train,
        test,
        params if not FULL else params.first(),
        seed=0,
    )
    print(f"shuffled-label held-out AUC: {result.metrics['all']['auc']:.3f} on {len(test)} samples")
    assert result.metrics["all"]["auc"] <= 0.6


def test_adam_first_step_moves_each_weight_by_the_learning_rate():
    from deepgami.train import Adam

    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    opt = Adam([p], lr=0.1, weight_decay=0.5)
    (p * torch.tensor([2.0, -1.0, 0.5])).sum().backward()
    opt.step()
    # First step with bias correction: -lr * sign(grad + weight_decay * p).
    torch.testing.assert_close(p.detach(), torch.tensor([0.9, -1.9, 2.9]))
    opt.zero_grad()
    assert p.grad is None


@pytest.mark.parametrize("monitor, column", [("task", "val_task_loss"), ("total", "val_loss")])
def test_early_stopping_monitors_the_chosen_validation_loss(monitor, column):
    setting = as_setting(
        {
            "learning_rate": 0.05,
            "max_epochs": 30,
            "patience": 30,
            "hidden_layers": [16],
            "dropout": 0.0,
            "weight_decay": 0.0,
            "batch_size": 16,
            "lambda": 2.0,
            "early_stopping_on": monitor,
        }
    )
    torch.manual_seed(0)
    net = DeepGAMINetwork([6, 4], 8, 2, hidden_layers=[16], dropout=0.0)
    history, best = train_network(
        net, _toy_batch(48, 0), _toy_batch(40, 1), setting.training, "classification", seed=0
    )
    assert best == int(history.loc[history[column].idxmin(), "epoch"])


def test_train_and_evaluate_pick_the_same_setting_on_the_same_rows():
    """One tuner: `deepgami train` (DeepGAMI.fit) and `deepgami evaluate` (tune_deepgami) choose the
    same grid setting on the same training rows and seed, by the same rule (lowest log loss)."""
    from deepgami.evaluation.fits import tune_deepgami
    from deepgami.model import DeepGAMI, training_rows, tune_setting

    mdata, _ = model_fixtures.simulated_mudata(n_samples=60, seed=2, n_snps=30, n_genes=8, n_tfs=4)
    params = model_fixtures.fast_params(
        grid={"weight_decay": [0.0001, 0.5], "dropout": [0.0, 0.4]}, max_epochs=4, cv_folds=2
    )
    data = read_arrays(mdata)
    rows = training_rows(data)
    model = DeepGAMI.fit(data, params, seed=5)
    setting, table = tune_deepgami(data, rows, params, 5)
    assert table is not None and table["selected"].sum() == 2  # one setting, two folds
    assert setting.to_dict() == model.config["setting"]
    assert (
        int(table.loc[table["selected"], "setting"].iloc[0])
        == model.config["cv"]["selected_setting"]
    )
    means = table.groupby("setting")["all_log_loss"].mean()
    assert model.config["cv"]["selected_setting"] == int(means.idxmin())
    assert tune_setting(data, rows, params, 5)[0] == setting


def test_frozen_prior_encoders_keep_their_regression_units():
    """`latent_norm: trained` (default): a prior-guided encoder frozen at its regression start is not
    standardized (its block is in the measured gene's units), any encoder that trains is."""
    from deepgami.model._fitting import latent_norm_flags
    from deepgami.train import load_params

    mdata, _ = model_fixtures.simulated_mudata(n_samples=60, seed=0, n_snps=30, n_genes=8, n_tfs=4)
    data = read_arrays(mdata)
    setting = expand_grid(load_params(None), dense=False)[0]
    assert latent_norm_flags(data, setting, data.edges) == [False, False]
    assert latent_norm_flags(data, setting.replace(encoder_lr_scale=0.1), data.edges) == [
        True,
        True,
    ]
    assert latent_norm_flags(data, setting.replace(latent_norm=True), data.edges) == [True, True]
    assert latent_norm_flags(data, setting, [data.edges[0], None]) == [
        False,
        True,
    ]  # a dense encoder trains
    with pytest.raises(InputError, match="latent_norm must be true, false or trained"):
        load_params(None, {"latent_norm": "yes"})


def test_settings_dataclasses_match_the_yaml_defaults():
    """The YAML file is the one source of defaults: the dataclass defaults agree with its values
    (first value of each grid entry), and a setting round-trips through its flat dict."""
    from deepgami.train import (
        ArchitectureSettings,
        PreprocessingSettings,
        Setting,
        Settings,
        TrainingSettings,
    )

    first = Settings.from_mapping(None).first(dense=True)
    assert first == Setting(PreprocessingSettings(), ArchitectureSettings(), TrainingSettings())
    flat = first.to_dict()
    assert set(flat) == (set(default_params()) - {"grid", *SEARCH_KEYS}) | set(GRID_KEYS)
    assert as_setting(flat) == first and flat["lambda"] == first.training.aux_weight


def test_settings_are_frozen_and_replace_checks_keys():
    import dataclasses

    setting = load_params(None).first()
    with pytest.raises(dataclasses.FrozenInstanceError):
        setting.training.max_epochs = 3
    assert setting.replace(max_epochs=3).training.max_epochs == 3
    with pytest.raises(TypeError, match="did you mean 'patience'"):
        setting.replace(patiense=3)
    with pytest.raises(InputError, match="patience must be an integer >= 1"):
        setting.replace(patience=0)
