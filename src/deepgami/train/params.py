"""Training parameters: the packaged defaults (YAML), a user's file over them, validation, the grid."""

from __future__ import annotations

import copy
import itertools
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from deepgami.data.preprocessing import SCALINGS, SELECTIONS
from deepgami.errors import InputError
from deepgami.nn.network import ACTIVATIONS, AUX_TARGETS, IMPUTERS

# Hyperparameters the CV grid search may vary (the paper's list).
GRID_KEYS = (
    "hidden_layers",
    "dropout",
    "learning_rate",
    "weight_decay",
    "lambda",
    "batch_size",
    "latent_dim",
    "group_lasso",
    "early_stopping_on",
)
MISSING = ("impute", "complete_case")
BALANCES = ("none", "smote", "class_weights")
MONITORS = ("total", "task")
ENCODER_INITS = ("targets", "random")


# -- parameters ---------------------------------------------------------------------------------


def default_params() -> dict:
    """The packaged defaults (src/deepgami/train/default_params.yaml) as a fresh dict."""
    text = resources.files("deepgami.train").joinpath("default_params.yaml").read_text()
    return yaml.safe_load(text)


def read_params_file(path: str | Path) -> dict:
    """The mapping in a params YAML file (train's parameters and evaluate's `evaluate:` section)."""
    try:
        user = yaml.safe_load(Path(path).read_text())
    except OSError as err:
        raise InputError(path, f"cannot read params file: {err.strerror or err}") from None
    except yaml.YAMLError as err:
        raise InputError(path, f"not valid YAML: {str(err).splitlines()[0]}") from None
    user = {} if user is None else user
    if not isinstance(user, dict):
        raise InputError(path, "params file must be a mapping of parameter: value")
    return user


def load_params(path: str | Path | None = None, overrides: dict | None = None) -> dict:
    """Defaults, then the YAML file at `path`, then `overrides`; validated. Raises InputError."""
    params = default_params()
    sources: list[tuple[Any, dict]] = []
    if path is not None:
        # One params file serves train and evaluate: its `evaluate:` section is evaluate's alone.
        user = {k: v for k, v in read_params_file(path).items() if k != "evaluate"}
        sources.append((path, user))
    if overrides:
        sources.append((path, overrides))
    for where, user in sources:
        params = merge_params(params, user, where)
    validate_params(params, path)
    return params


def merge_params(base: dict, user: dict, where: Any = None) -> dict:
    """`user` over `base`: a user grid replaces only the grid entries it names."""
    out = copy.deepcopy(base)
    for key, value in user.items():
        if key not in out:
            raise InputError(where, f"unknown parameter {key!r} (known: {', '.join(sorted(out))})")
        if key == "grid":
            if not isinstance(value, dict):
                raise InputError(where, "'grid' must be a mapping of hyperparameter: [values]")
            for gkey, gval in value.items():
                if gkey not in GRID_KEYS:
                    raise InputError(
                        where, f"unknown grid entry {gkey!r} (known: {', '.join(GRID_KEYS)})"
                    )
                out["grid"][gkey] = gval
        else:
            out[key] = value
    return out


def validate_params(params: dict, where: Any = None) -> None:
    """Raise InputError on a value the training cannot use."""

    def bad(message: str) -> None:
        raise InputError(where, message)

    grid = params.get("grid", {})
    for key in GRID_KEYS:
        values = grid.get(key)
        if not isinstance(values, list) or not values:
            bad(f"grid.{key} must be a non-empty list of values")
        for v in values:
            if key == "hidden_layers":
                if not isinstance(v, list) or not all(isinstance(h, int) and h > 0 for h in v):
                    bad(f"grid.hidden_layers entries are lists of positive layer widths, got {v!r}")
            elif key in ("batch_size", "latent_dim"):
                if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                    bad(f"grid.{key} values must be positive integers, got {v!r}")
            elif key == "early_stopping_on":
                if v not in MONITORS:
                    bad(
                        f"grid.early_stopping_on values must be one of {', '.join(MONITORS)}, got {v!r}"
                    )
            elif key == "dropout":
                if not _is_number(v) or not 0 <= v < 1:
                    bad(f"grid.dropout values must be in [0, 1), got {v!r}")
            elif not _is_number(v) or v < 0 or (key == "learning_rate" and v == 0):
                bad(f"grid.{key} values must be non-negative numbers, got {v!r}")
    for key, lo in (
        ("cv_folds", 0),
        ("bagging", 0),
        ("max_epochs", 1),
        ("patience", 1),
        ("selection_top_k", 1),
        ("min_features", 1),
    ):
        v = params.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            bad(f"{key} must be an integer >= {lo}, got {v!r}")
    scale = params.get("encoder_lr_scale")
    if not _is_number(scale) or scale < 0:
        bad(f"encoder_lr_scale must be a non-negative number, got {scale!r}")
    for key, lo, hi in (
        ("val_fraction", 0.0, 0.5),
        ("selection_pvalue", 0.0, 1.0),
        ("modality_dropout", 0.0, 1.0),
    ):
        v = params.get(key)
        if not _is_number(v) or not lo <= v <= hi:
            bad(f"{key} must be a number in [{lo}, {hi}], got {v!r}")
    for key, allowed in (
        ("imputer", IMPUTERS),
        ("encoder_activation", ACTIVATIONS),
        ("aux_target", AUX_TARGETS),
        ("missing", MISSING),
        ("balance", BALANCES),
        ("encoder_init", ENCODER_INITS),
    ):
        if params.get(key) not in allowed:
            bad(f"{key} must be one of {', '.join(allowed)}, got {params.get(key)!r}")
    if not (isinstance(params.get("latent_norm"), bool) or params.get("latent_norm") == "trained"):
        bad(f"latent_norm must be true, false or trained, got {params.get('latent_norm')!r}")
    for key in ("calibrate_imputer", "self_edges"):
        if not isinstance(params.get(key), bool):
            bad(f"{key} must be true or false, got {params.get(key)!r}")
    for key, allowed in (("selection", SELECTIONS), ("scaling", SCALINGS)):
        v = params.get(key)
        values = v.values() if isinstance(v, dict) else [v]
        for item in values:
            if item not in allowed:
                bad(
                    f"{key} must be one of {', '.join(allowed)} (or a mapping modality: value), got {item!r}"
                )


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def expand_grid(params: dict, dense: bool = True) -> list[dict]:
    """One flat setting per grid point: the fixed parameters plus one value per grid entry.

    With a prior (`dense=False`) `latent_dim` is unused, so settings differing only in it merge.
    """
    fixed = {k: v for k, v in params.items() if k != "grid"}
    grid = params["grid"]
    settings, seen = [], set()
    for combo in itertools.product(*(grid[k] for k in GRID_KEYS)):
        setting = dict(fixed, **dict(zip(GRID_KEYS, combo, strict=False)))
        if not dense:
            setting["latent_dim"] = None
        key = json.dumps(setting, sort_keys=True)
        if key not in seen:
            seen.add(key)
            settings.append(setting)
    return settings


def as_setting(params: dict, dense: bool = True) -> dict:
    """A flat setting from full params with one value per grid entry, or from a flat setting."""
    if "grid" not in params:
        merged = default_params()
        grid = merged.pop("grid")
        for k in GRID_KEYS:
            merged[k] = grid[k][0]
        unknown = set(params) - set(merged)
        if unknown:
            raise ValueError(f"unknown parameters: {sorted(unknown)}")
        merged.update(params)
        if not dense:
            merged["latent_dim"] = None
        return merged
    settings = expand_grid(params, dense)
    if len(settings) != 1:
        raise ValueError(
            f"params describe {len(settings)} grid settings; give one value per grid entry"
        )
    return settings[0]


def grid_label(setting: dict) -> str:
    """Short, stable text of a setting's grid values (a cv_results column)."""
    return json.dumps(
        {k: setting[k] for k in GRID_KEYS if setting.get(k) is not None}, sort_keys=True
    )
