"""The tpe search: the space in the params file, seeded trials, pruning, and its use by fit."""

from __future__ import annotations

import math

import numpy as np
import pytest

import model_fixtures
from model_fixtures import single_thread  # noqa: F401  (autouse)
from deepgami.errors import InputError
from deepgami.train import Settings, cv_splits, tpe_search

FOLDS = cv_splits(np.arange(40) % 2, 4, seed=0, stratify=True)


STRUCTURE = {"self_edges": {"choice": [False, True]}, "encoder_lr_scale": {"choice": [0.0, 1.0]}}


def _settings(**changes) -> Settings:
    over = {"search": "tpe", "n_trials": 24, "cv_folds": 4, "space": STRUCTURE}
    over.update(changes)
    return Settings.from_mapping(over)


def _bowl(best_wd: float, fold_noise: float = 0.0):
    """A fold function whose score peaks at weight_decay = best_wd (log scale), no networks."""

    def fit_fold(s, setting, f, tr, te, seed):
        wd = setting.training.weight_decay
        gap = math.log10(wd) - math.log10(best_wd) if wd > 0 else 9.0
        noise = fold_noise * np.random.default_rng(seed).normal()
        return {"loss": gap**2 + setting.training.group_lasso + noise}

    return fit_fold


def _search(params: Settings, fit_fold, seed: int = 0, dense: bool = False):
    return tpe_search(params, dense, FOLDS, fit_fold, lambda row: -row["loss"], seed)


def test_tpe_starts_at_the_grid_and_finds_a_log_scale_optimum_far_from_it():
    params = _settings()
    table, settings, best = _search(params, _bowl(3e-4))
    grid = params.points(dense=False)
    assert settings[: len(grid)] == grid  # the grid's points are the first trials, whole
    chosen = settings[best].training
    # The grid holds 0.01 and 0.03 only; the optimum is 1.5 decades below them.
    assert 1e-4 <= chosen.weight_decay <= 1e-3, chosen.weight_decay
    assert chosen.group_lasso < 0.003  # the score pays for group lasso: the search turns it down
    assert table["setting"].nunique() == params.n_trials


def test_tpe_is_deterministic_for_a_seed_and_differs_across_seeds():
    params = _settings(n_trials=10)
    first = _search(params, _bowl(1e-3), seed=4)
    again = _search(params, _bowl(1e-3), seed=4)
    other = _search(params, _bowl(1e-3), seed=5)
    assert first[1] == again[1] and first[2] == again[2]
    assert first[0].equals(again[0])
    assert first[1] != other[1]


def test_tpe_prunes_trials_whose_first_folds_lag_and_never_selects_them():
    params = _settings(n_trials=20)
    table, settings, best = _search(params, _bowl(1e-3))
    folds = table.groupby("setting")["fold"].count()
    pruned = set(table.loc[table["pruned"], "setting"])
    assert pruned, "some trials are stopped early"
    assert all(folds[s] < len(FOLDS) for s in pruned)
    assert best not in pruned
    means = table[~table["pruned"]].groupby("setting")["score"].mean()
    assert best == int(means.idxmax())


def test_prior_only_entries_are_left_out_without_a_prior():
    params = _settings(n_trials=6)
    dense_keys = {d.key for d in params.space_for(dense=True)}
    assert {"self_edges", "encoder_lr_scale"} & dense_keys == set()
    assert {"self_edges", "encoder_lr_scale"} <= {d.key for d in params.space_for(dense=False)}
    _, settings, _ = _search(params, _bowl(1e-3), dense=True)
    assert all(s.architecture.self_edges is False for s in settings)


def test_the_space_round_trips_through_the_params_file_form():
    params = _settings(space={"weight_decay": {"log": [1e-5, 1e-2]}, "self_edges": None})
    again = Settings.from_mapping(params.to_dict())
    assert again.space == params.space
    assert "self_edges" not in {d.key for d in params.space}
    assert again.to_dict()["space"]["weight_decay"] == {"log": [1e-5, 1e-2]}


@pytest.mark.parametrize(
    "space, message",
    [
        (
            {"weight_decay": {"log": [0.1, 0.01]}},
            "space.weight_decay: log must be [low, high] with 0 < low < high, got [0.1, 0.01]",
        ),
        (
            {"weight_decay": {"log": [0, 0.01]}},
            "space.weight_decay: log must be [low, high] with 0 < low < high, got [0, 0.01]",
        ),
        (
            {"hidden_layers": {"log": [1, 2]}},
            "space.hidden_layers: log ranges are for learning_rate, weight_decay, lambda, group_lasso, dropout, encoder_lr_scale, modality_dropout; use choice",
        ),
        (
            {"hidden_layers": {"choice": [[8], [0]]}},
            "space.hidden_layers: hidden_layers entries are lists of positive layer widths, got [0]",
        ),
        (
            {"self_edges": {"choice": ["yes"]}},
            "space.self_edges: self_edges must be true or false, got 'yes'",
        ),
        (
            {"dropout": {"choice": []}},
            "space.dropout: choice must be a non-empty list and stand alone",
        ),
        (
            {"weight_decay": [0.1, 1.0]},
            "space.weight_decay must be {log: [low, high]} (with an optional 'or: value') or {choice: [values]}",
        ),
        (
            {"weight_decy": {"log": [0.1, 1.0]}},
            "unknown space entry 'weight_decy' (did you mean 'weight_decay'?)",
        ),
    ],
)
def test_bad_space_entries_are_input_errors_naming_the_entry(space, message):
    with pytest.raises(InputError) as err:
        Settings.from_mapping({"space": space}, "p.yaml")
    assert str(err.value) == f"p.yaml: {message}"


@pytest.mark.parametrize(
    "over, message",
    [
        ({"search": "random"}, "search must be one of grid, tpe, got 'random'"),
        ({"n_trials": 0}, "n_trials must be an integer >= 1, got 0"),
    ],
)
def test_bad_search_settings_are_input_errors(over, message):
    with pytest.raises(InputError) as err:
        Settings.from_mapping(over, "p.yaml")
    assert str(err.value) == f"p.yaml: {message}"


def test_fit_with_tpe_records_every_trial_and_refits_the_selected_one():
    from deepgami.model import DeepGAMI

    mdata, _ = model_fixtures.simulated_mudata(n_samples=80, seed=3, n_snps=30, n_genes=8, n_tfs=4)
    params = model_fixtures.fast_params(search="tpe", n_trials=5, max_epochs=4, space=STRUCTURE)
    model = DeepGAMI.fit(mdata, params, seed=1)
    again = DeepGAMI.fit(mdata, params, seed=1)
    table = model.cv_results
    assert table["setting"].nunique() == 5 and "pruned" in table
    assert model.config["training"]["search"] == "tpe"
    assert model.config["training"]["n_pruned"] == table.loc[table["pruned"], "setting"].nunique()
    best = model.config["cv"]["selected_setting"]
    assert best == int(table[~table["pruned"]].groupby("setting")["score"].mean().idxmax())
    chosen = table.loc[table["setting"] == best, "grid"].iloc[0]
    assert all(f'"{k}": ' in chosen for k in ("weight_decay", "self_edges", "encoder_lr_scale"))
    assert model.config["setting"] == again.config["setting"]
    np.testing.assert_array_equal(model.predict_proba(mdata), again.predict_proba(mdata))
