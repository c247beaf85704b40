"""Typed training settings: the packaged defaults (YAML), a user's file or keyword arguments over
them, validated once where they enter, then frozen dataclasses all the way down.

`Settings` is what a user gives (`Settings.from_yaml`, `Settings.from_mapping`, `load_params`): the
`SearchSpace` (the CV grid), `cv_folds` and the fixed values. Each grid point is a `Setting`, what
one fit reads, in three parts of one concern each: `PreprocessingSettings` (rows, selection,
scaling), `ArchitectureSettings` (the network) and `TrainingSettings` (the loop, early stopping,
bagging). Flat keys keep the names of `default_params.yaml` (``lambda`` is
`TrainingSettings.aux_weight`).
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from deepgami.data.preprocessing import SCALINGS, SELECTIONS, per_modality
from deepgami.errors import InputError
from deepgami.nn.network import ACTIVATIONS, AUX_TARGETS, COMBINES, IMPUTERS

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
# How the search runs (not what one fit reads).
SEARCH_KEYS = ("cv_folds", "search", "n_trials", "space")
SEARCHES = ("grid", "tpe")
# What the tpe sampler may vary: the grid's keys and these structural or training choices.
PRIOR_ONLY_KEYS = ("self_edges", "encoder_lr_scale")
SPACE_KEYS = (*GRID_KEYS, *PRIOR_ONLY_KEYS, "modality_dropout", "latent_combine")
# Keys a `log` range may vary (positive real numbers).
_LOG_KEYS = (
    "learning_rate",
    "weight_decay",
    "lambda",
    "group_lasso",
    "dropout",
    "encoder_lr_scale",
    "modality_dropout",
)
# modality_dropout: auto. Side by side (no prior) every block has its own latent nodes, and always
# hiding one trains each block's part of the head to predict alone (late fusion, lower variance on
# a few hundred samples). No-prior cohorts, paired over the same splits, against 0.3: ROSMAP
# mrna + meth +0.004 AUC (20 splits), a simulated genotype + expression cohort +0.008 (10);
# small, never below. Summed blocks are parts of the same genes: hiding one
# blanks part of every gene, so it stays occasional (benchmarks/README.md).
AUTO_MODALITY_DROPOUT = {"concat": 1.0, "sum": 0.3}
MISSING = ("impute", "complete_case")
BALANCES = ("none", "smote", "class_weights")
MONITORS = ("total", "task")
ENCODER_INITS = ("targets", "joint", "random")
# The encoder_init values that start the sparse encoders at the prior's regression.
REGRESSION_STARTS = ("targets", "joint")
# Flat keys whose dataclass field has another name (``lambda`` is a Python keyword).
_FIELD_OF = {"lambda": "aux_weight"}
_KEY_OF = {v: k for k, v in _FIELD_OF.items()}


# -- the settings of one fit ------------------------------------------------------------------------


@dataclass(frozen=True)
class PreprocessingSettings:
    """Which rows a fit uses and how each modality is selected and scaled (fitted on training rows).

    `selection` and `scaling` are one value for all modalities or a ``{modality: value}`` mapping.

    Parameters
    ----------
    missing : str, default "impute"
        ``impute`` (samples lacking a modality train on its imputed block) or ``complete_case``
        (train on samples that have every modality).
    selection : str or dict, default "none"
        ``none``, ``pvalue`` or ``topk`` (t-test / ANOVA on training rows), or one per modality.
    selection_pvalue : float, default 0.05
        The p-value threshold of ``pvalue`` selection.
    selection_top_k : int, default 1000
        The number of features ``topk`` selection keeps.
    min_features : int, default 10
        Selection keeps at least this many features per modality.
    scaling : str or dict, default "standard"
        ``standard``, ``minmax``, ``log1p`` (then standard) or ``none``, or one per modality.
    """

    missing: str = "impute"
    selection: str | dict = "none"
    selection_pvalue: float = 0.05
    selection_top_k: int = 1000
    min_features: int = 10
    scaling: str | dict = "standard"

    def modality_options(self, modality: str) -> dict:
        """Keyword arguments of `deepgami.data.preprocessing.fit_modality` for one modality.

        Parameters
        ----------
        modality
            The modality's name (a key of a per-modality mapping).

        Returns
        -------
        dict
            ``selection``, ``pvalue``, ``top_k``, ``min_features`` and ``scaling``.
        """
        return {
            "selection": per_modality(self.selection, modality, "none"),
            "pvalue": float(self.selection_pvalue),
            "top_k": int(self.selection_top_k),
            "min_features": int(self.min_features),
            "scaling": per_modality(self.scaling, modality, "standard"),
        }


@dataclass(frozen=True)
class ArchitectureSettings:
    """The network: head, latent nodes without a prior, imputer, encoder start and normalization.

    Parameters
    ----------
    hidden_layers : tuple of int, default (8,)
        Widths of the head's hidden ReLU layers (empty: a linear head).
    dropout : float, default 0.0
        Dropout on the concatenated latent blocks and after each hidden layer.
    latent_dim : int or None, default 32
        Latent nodes when the cohort has no prior (dense mode); ignored otherwise.
    imputer : str, default "scalar"
        ``scalar``, ``per_node``, ``linear`` or ``mlp``.
    encoder_activation : str, default "linear"
        ``linear``, ``relu`` or ``tanh``, on each (normalized) latent block.
    latent_norm : bool or str, default "trained"
        ``trained`` (standardize the latent nodes of encoders that train), True (all) or False
        (none).
    encoder_init : str, default "joint"
        ``joint`` (one ridge regression per latent gene on its prior sources in every modality,
        split among the encoders, so that a gene's blocks add up to it), ``targets`` (each sparse
        encoder starts at its own regression of its latent genes on their prior sources) or
        ``random`` (Kaiming-uniform).
    self_edges : bool, default False
        Whether a latent gene measured in a guided modality also feeds its own node.
    latent_combine : str, default "auto"
        ``concat`` (the head reads the blocks side by side), ``sum`` (their sum per latent gene)
        or ``auto`` (sum when the cohort has a prior, whose blocks are parts of the same genes;
        concat without one).
    """

    hidden_layers: tuple[int, ...] = (8,)
    dropout: float = 0.0
    latent_dim: int | None = 32
    imputer: str = "scalar"
    encoder_activation: str = "linear"
    latent_norm: bool | str = "trained"
    encoder_init: str = "joint"
    self_edges: bool = False
    latent_combine: str = "auto"

    def network_config(
        self,
        n_inputs: list[int],
        n_latent: int | None,
        n_outputs: int,
        prior_edges: list[int | None],
        latent_norm: list[bool],
    ) -> dict:
        """The architecture as config.json records it and `build_network` reads it.

        Parameters
        ----------
        n_inputs
            Inputs kept per modality.
        n_latent
            Latent nodes of a cohort with a prior (None: `latent_dim`).
        n_outputs
            Classes, or 1 for a numeric phenotype.
        prior_edges
            Per encoder, how many of its edges (the first ones) are prior links; None: dense.
        latent_norm
            Which latent blocks `LatentNorm` standardizes.

        Returns
        -------
        dict
            The ``network`` section of config.json.
        """
        return {
            "n_inputs": list(n_inputs),
            "n_latent": int(n_latent) if n_latent is not None else int(self.latent_dim),
            "n_outputs": int(n_outputs),
            "sparse": [n is not None for n in prior_edges],
            "prior_edges": list(prior_edges),
            "hidden_layers": [int(h) for h in self.hidden_layers],
            "dropout": float(self.dropout),
            "imputer": self.imputer,
            "encoder_activation": self.encoder_activation,
            "latent_norm": list(latent_norm),
            "latent_combine": self.combine_for(prior_edges),
        }

    def combine_for(self, prior_edges: list[int | None]) -> str:
        """How the head reads the latent blocks (`latent_combine` with ``auto`` resolved).

        Parameters
        ----------
        prior_edges
            Per encoder, its prior edge count (None: dense).

        Returns
        -------
        str
            ``concat`` or ``sum``.
        """
        if self.latent_combine != "auto":
            return self.latent_combine
        # With a prior every block holds the same genes; frozen encoders keep their regression
        # units, so a gene's blocks add up to its program (simulated cohorts: an L1 logistic
        # regression on the summed blocks matches one on the true programs, on the concatenated
        # blocks it is 0.035 AUC lower; benchmarks/README.md).
        return "sum" if any(n is not None for n in prior_edges) else "concat"


@dataclass(frozen=True)
class TrainingSettings:
    """The fit loop: Adam, the loss, minibatches, early stopping, balance, calibration, bagging.

    Parameters
    ----------
    learning_rate : float, default 0.005
        Adam's learning rate.
    weight_decay : float, default 0.01
        Adam's L2 penalty.
    aux_weight : float, default 1.0
        The weight of the auxiliary imputation loss (``lambda`` in the params file).
    batch_size : int, default 32
        Rows per minibatch.
    group_lasso : float, default 0.03
        The penalty on the head's use of each latent gene.
    early_stopping_on : str, default "task"
        The validation loss that stops training: ``task``, or ``total`` (task + lambda * auxiliary).
    max_epochs : int, default 100
        The most epochs trained.
    patience : int, default 20
        Early stopping: epochs without a lower inner-validation loss.
    val_fraction : float, default 0.2
        The inner validation split of the training rows, used for early stopping only.
    calibrate_imputer : bool, default True
        Whether to refit scalar/per_node imputers by least squares on the inner validation rows.
    encoder_lr_scale : float, default 0.0
        The learning rate of encoders that start at the prior's regression, relative to the head's
        (0 freezes them).
    bagging : int, default 5
        Networks added to the refit, each fitted on a random 80% of the training rows and
        stopped early on the other 20%.
    aux_target : str, default "detach"
        ``detach``, ``normalize`` or ``joint``: how the auxiliary loss treats its target.
    modality_dropout : float or str, default "auto"
        The chance, per training sample and epoch, that one present modality is hidden from the
        head; ``auto``: 1.0 when the head reads the blocks side by side (``concat``), 0.3 when it
        reads their sum (see `hiding_rate`).
    balance : str, default "none"
        ``none``, ``smote`` or ``class_weights``.
    target_weights : dict or None, default None
        Several targets: the loss weight per target name (None or a missing name: 1, equal); the
        loss is the weighted mean over targets, so only the ratios matter.
    """

    learning_rate: float = 0.005
    weight_decay: float = 0.01
    aux_weight: float = 1.0
    batch_size: int = 32
    group_lasso: float = 0.03
    early_stopping_on: str = "task"
    max_epochs: int = 100
    patience: int = 20
    val_fraction: float = 0.2
    calibrate_imputer: bool = True
    encoder_lr_scale: float = 0.0
    bagging: int = 5
    aux_target: str = "detach"
    modality_dropout: float | str = "auto"
    balance: str = "none"
    target_weights: dict | None = None

    def hiding_rate(self, combine: str) -> float:
        """The modality dropout rate (`modality_dropout` with ``auto`` resolved).

        Parameters
        ----------
        combine
            How the head reads the latent blocks: ``concat`` or ``sum``.

        Returns
        -------
        float
            The chance that a training row with two or more modalities has one hidden.
        """
        if self.modality_dropout != "auto":
            return float(self.modality_dropout)
        return AUTO_MODALITY_DROPOUT[combine]


_PARTS = (
    ("preprocessing", PreprocessingSettings),
    ("architecture", ArchitectureSettings),
    ("training", TrainingSettings),
)
# Flat key -> the part that holds it.
_PART_OF = {_KEY_OF.get(f.name, f.name): part for part, cls in _PARTS for f in fields(cls)}


@dataclass(frozen=True)
class Setting:
    """One point of the search space: everything one fit reads.

    Parameters
    ----------
    preprocessing : PreprocessingSettings
        Which rows a fit uses and how each modality is selected and scaled.
    architecture : ArchitectureSettings
        The network.
    training : TrainingSettings
        The fit loop.
    """

    preprocessing: PreprocessingSettings
    architecture: ArchitectureSettings
    training: TrainingSettings

    @classmethod
    def from_flat(cls, values: Mapping[str, Any]) -> Setting:
        """A setting from flat, already validated values.

        Parameters
        ----------
        values
            Every key of `default_params.yaml` but ``grid`` and ``cv_folds``, one value each.

        Returns
        -------
        Setting
            Not validated again: use `as_setting` or `Setting.replace` for user values.
        """
        parts: dict[str, dict] = {part: {} for part, _ in _PARTS}
        for key, value in values.items():
            parts[_PART_OF[key]][_FIELD_OF.get(key, key)] = _frozen_value(key, value)
        return cls(*(kind(**parts[part]) for part, kind in _PARTS))

    def to_dict(self) -> dict:
        """The flat setting in the key order of the YAML file (config.json's ``setting``).

        Returns
        -------
        dict
            Plain JSON values (lists, not tuples).
        """
        flat = {}
        for part, _ in _PARTS:
            for f in fields(getattr(self, part)):
                value = getattr(getattr(self, part), f.name)
                flat[_KEY_OF.get(f.name, f.name)] = _plain(value)
        return {k: flat[k] for k in _FLAT_ORDER}

    def replace(self, **changes: Any) -> Setting:
        """A copy with some flat keys changed (checked like a user's keyword arguments).

        Parameters
        ----------
        **changes
            Flat keys (``max_epochs=2``, ``bagging=0``, ``latent_dim=16``) and their values.

        Returns
        -------
        Setting
            The changed copy.
        """
        unknown = [k for k in changes if k not in _PART_OF]
        if unknown:
            raise TypeError(_unknown_message(unknown[0], _PART_OF, "setting"))
        merged = {**self.to_dict(), **changes}
        _validate_fixed(merged, None, keys=[k for k in changes if k not in GRID_KEYS])
        for key in (k for k in changes if k in GRID_KEYS and changes[k] is not None):
            _validate_grid_values(key, [changes[key]], None, prefix="")
        return Setting.from_flat(merged)

    def label(self) -> str:
        """Short, stable text of the setting's grid values.

        Returns
        -------
        str
            JSON of the grid keys (a cv_results column).
        """
        return grid_label(self.to_dict())


# -- what a user gives: the search space and the fixed values --------------------------------------


@dataclass(frozen=True)
class Dimension:
    """One entry of the tpe search space (`space:` in the params file).

    Parameters
    ----------
    key : str
        The flat key it varies (one of `SPACE_KEYS`).
    log : tuple of float, optional
        ``(low, high)``: a log-uniform number in that range.
    exact : float, optional
        With `log`, also this exact value, as a separate choice (``or: 0`` = the penalty off).
    choices : tuple
        Without `log`: the values to choose from.
    """

    key: str
    log: tuple[float, float] | None = None
    exact: float | None = None
    choices: tuple = ()

    def suggest(self, trial: Any) -> Any:
        """The value an Optuna trial draws for this entry.

        Parameters
        ----------
        trial
            An `optuna.Trial`.

        Returns
        -------
        Any
            A value of the key (layer widths as a list).
        """
        if self.log is None:  # Optuna's categorical choices must be scalars: JSON text of each
            return json.loads(
                trial.suggest_categorical(self.key, [json.dumps(c) for c in self.choices])
            )
        if self.exact is not None and trial.suggest_categorical(f"{self.key}:exact", [True, False]):
            return self.exact
        return trial.suggest_float(self.key, *self.log, log=True)

    def trial_params(self, value: Any) -> dict | None:
        """The Optuna parameters that give `value` (to enqueue a grid point), or None.

        Parameters
        ----------
        value
            A value of the key.

        Returns
        -------
        dict or None
            None when the entry cannot draw `value`.
        """
        if self.log is None:
            text = json.dumps(_plain(value))
            return {self.key: text} if text in [json.dumps(c) for c in self.choices] else None
        if self.exact is not None and value == self.exact:
            return {f"{self.key}:exact": True}
        if not self.log[0] <= value <= self.log[1]:
            return None
        return {
            self.key: float(value),
            **({f"{self.key}:exact": False} if self.exact is not None else {}),
        }

    def to_dict(self) -> dict:
        """The entry as the params file writes it.

        Returns
        -------
        dict
            ``{"log": [low, high], "or": value}`` or ``{"choice": [...]}``.
        """
        if self.log is None:
            return {"choice": [_plain(c) for c in self.choices]}
        return {"log": list(self.log), **({"or": self.exact} if self.exact is not None else {})}


@dataclass(frozen=True)
class SearchSpace:
    """The CV grid: candidate values per hyperparameter (`GRID_KEYS`); their product is searched.

    Parameters
    ----------
    values : tuple of tuple
        ``(grid key, candidate values)`` pairs.
    """

    values: tuple[tuple[str, tuple], ...]

    def __getitem__(self, key: str) -> tuple:
        return dict(self.values)[key]

    def points(self) -> list[dict]:
        """Every combination of the candidate values.

        Returns
        -------
        list of dict
            Flat ``{grid key: value}`` dicts in product order.
        """
        grid = dict(self.values)
        return [
            dict(zip(GRID_KEYS, combo, strict=True))
            for combo in itertools.product(*(grid[k] for k in GRID_KEYS))
        ]


@dataclass(frozen=True)
class Settings:
    """Training settings as a user gives them: the search space, `cv_folds` and fixed values.

    Build with `Settings.from_yaml`, `Settings.from_mapping` or `load_params`; both validate once.

    Parameters
    ----------
    search : SearchSpace
        The CV grid.
    cv_folds : int
        Folds of the grid search (0 or 1 skips it).
    fixed : dict
        The non-grid keys as given; read them typed from a point (`first().training`).
    method : str, default "grid"
        ``grid`` (the grid's points) or ``tpe`` (the grid's points, then Optuna's TPE over
        `space`).
    n_trials : int, default 1
        The settings a tpe search tries in all.
    space : tuple of Dimension, default ()
        What a tpe search varies beyond the grid.

    Examples
    --------
    >>> from deepgami.train import Settings
    >>> s = Settings.from_mapping({"max_epochs": 20, "dropout": 0.1, "weight_decay": 0.01})
    >>> s.points()[0].architecture.dropout, len(s.points())  # early_stopping_on: task, total
    (0.1, 2)
    """

    search: SearchSpace
    cv_folds: int
    fixed: dict  # the non-grid keys as given; read them typed from a point (`first().training`)
    method: str = "grid"
    n_trials: int = 1
    space: tuple[Dimension, ...] = ()

    @classmethod
    def from_mapping(cls, mapping: Mapping | None = None, where: Any = None) -> Settings:
        """The packaged defaults with `mapping` laid over them, validated.

        Parameters
        ----------
        mapping
            Keys of `default_params.yaml`; ``grid`` replaces only the grid entries it names, and a
            grid key given outside ``grid`` fixes that entry to its one value.
        where
            The file the mapping came from, named in errors.

        Returns
        -------
        Settings
            Validated; an `InputError` naming the key otherwise.
        """
        merged = merge_params(default_params(), dict(mapping or {}), where)
        validate_params(merged, where)
        grid = tuple((k, tuple(_frozen_value(k, v) for v in merged["grid"][k])) for k in GRID_KEYS)
        fixed = {k: v for k, v in merged.items() if k not in ("grid", *SEARCH_KEYS)}
        space = tuple(_dimension(k, v, where) for k, v in merged["space"].items())
        return cls(
            SearchSpace(grid),
            int(merged["cv_folds"]),
            fixed,
            merged["search"],
            int(merged["n_trials"]),
            space,
        )

    @classmethod
    def from_yaml(cls, path: str | Path | None, overrides: Mapping | None = None) -> Settings:
        """Defaults, then the YAML file at `path` (its ``evaluate:`` section left out), then
        `overrides`.

        Parameters
        ----------
        path
            A params file (None: the defaults).
        overrides
            Keys laid over the file (the CLI's ``--cv-folds``, ``--max-epochs``).

        Returns
        -------
        Settings
            Validated; an `InputError` naming the file and the key otherwise.
        """
        user: dict = {}
        if path is not None:
            # One params file serves train and evaluate: its `evaluate:` section is evaluate's alone.
            user = {k: v for k, v in read_params_file(path).items() if k != "evaluate"}
        merged = merge_params(default_params(), user, path)
        if overrides:
            merged = merge_params(merged, dict(overrides), path)
        return cls.from_mapping(merged, path)

    def with_overrides(self, overrides: Mapping, where: Any = None) -> Settings:
        """A copy with more keys laid over it (keyword arguments of `DeepGAMI.fit`).

        Parameters
        ----------
        overrides
            As for `from_mapping`.
        where
            Named in errors.

        Returns
        -------
        Settings
            Validated again.
        """
        return Settings.from_mapping(merge_params(self.to_dict(), dict(overrides), where), where)

    def to_dict(self) -> dict:
        """The nested mapping of the YAML file (config.json's ``params``).

        Returns
        -------
        dict
            ``grid`` first, then the fixed keys, in the YAML file's order.
        """
        out: dict = {"grid": {k: [_plain(v) for v in vals] for k, vals in self.search.values}}
        search = {
            "cv_folds": self.cv_folds,
            "search": self.method,
            "n_trials": self.n_trials,
            # A default entry the user removed stays removed when this is read again.
            "space": {
                **{key: None for key in _DEFAULTS["space"]},
                **{d.key: d.to_dict() for d in self.space},
            },
        }
        for key in _YAML_ORDER:
            out[key] = search[key] if key in search else _plain(self.fixed[key])
        return out

    def points(self, dense: bool = True) -> list[Setting]:
        """Return one `Setting` per grid point.

        With a prior (`dense=False`) `latent_dim` is unused, so points differing only in it merge.

        Parameters
        ----------
        dense
            Whether the cohort has no prior (its latent nodes are `latent_dim` unnamed ones).

        Returns
        -------
        list of Setting
            In grid-product order, duplicates dropped.
        """
        out, seen = [], set()
        for point in self.search.points():
            flat = dict(self.fixed, **point)
            if not dense:
                flat["latent_dim"] = None
            key = json.dumps(_plain(flat), sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append(Setting.from_flat(flat))
        return out

    def single(self, dense: bool = True) -> Setting:
        """The setting of a one-point grid.

        Parameters
        ----------
        dense
            As for `points`.

        Returns
        -------
        Setting
            A ValueError when the grid has more points.
        """
        points = self.points(dense)
        if len(points) != 1:
            raise ValueError(
                f"params describe {len(points)} grid settings; give one value per grid entry"
            )
        return points[0]

    def first(self, dense: bool = True) -> Setting:
        """The first grid point (the untuned setting).

        Parameters
        ----------
        dense
            As for `points`.

        Returns
        -------
        Setting
            The first value of each grid entry.
        """
        return self.points(dense)[0]

    def space_for(self, dense: bool = True) -> tuple[Dimension, ...]:
        """The tpe search space for a cohort (prior-only entries left out without a prior).

        Parameters
        ----------
        dense
            As for `points`.

        Returns
        -------
        tuple of Dimension
            The entries that apply.
        """
        skip = PRIOR_ONLY_KEYS if dense else ("latent_dim",)
        return tuple(d for d in self.space if d.key not in skip)

    def point(self, values: Mapping[str, Any], dense: bool = True) -> Setting:
        """The grid's first point with some keys set (a tpe trial's setting).

        Parameters
        ----------
        values
            Flat keys of `SPACE_KEYS` and values drawn from the space (valid by construction).
        dense
            As for `points`.

        Returns
        -------
        Setting
            The setting.
        """
        flat = {**self.fixed, **self.search.points()[0], **values}
        if not dense:
            flat["latent_dim"] = None
        return Setting.from_flat(flat)


# -- building and checking ----------------------------------------------------------------------


def default_params() -> dict:
    """The packaged defaults (src/deepgami/train/default_params.yaml).

    Returns
    -------
    dict
        A fresh copy of the YAML mapping.
    """
    text = resources.files("deepgami.train").joinpath("default_params.yaml").read_text()
    return yaml.safe_load(text)


_DEFAULTS = default_params()
_YAML_ORDER = [k for k in _DEFAULTS if k != "grid"]
# A flat setting's keys: the fixed ones in the YAML's order, then the grid keys (as before).
_FLAT_ORDER = [k for k in _YAML_ORDER if k not in SEARCH_KEYS] + list(GRID_KEYS)


def read_params_file(path: str | Path) -> dict:
    """The mapping in a params YAML file (train's parameters and evaluate's `evaluate:` section).

    Parameters
    ----------
    path
        The YAML file.

    Returns
    -------
    dict
        Not validated; an `InputError` naming the file when it is unreadable or not a mapping.
    """
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


def load_params(
    path: str | Path | Settings | None = None, overrides: Mapping | None = None
) -> Settings:
    """Defaults, then the YAML file at `path`, then `overrides`; validated.

    Parameters
    ----------
    path
        A params YAML file (None: the packaged defaults).
    overrides
        Keys laid over the file.

    Returns
    -------
    Settings
        An `InputError` naming the file and the key when a key is unknown or a value out of range.
    """
    return Settings.from_yaml(path, overrides)


def merge_params(base: dict, user: Mapping, where: Any = None) -> dict:
    """Lay `user` over `base`.

    A user grid replaces only the grid entries it names; a grid key given outside ``grid`` fixes
    that entry to its one value.

    Parameters
    ----------
    base
        A full params mapping (``grid`` and the fixed keys).
    user
        Keys to lay over it.
    where
        Named in errors.

    Returns
    -------
    dict
        A new mapping, not validated; an unknown key is an `InputError` with a suggestion.
    """
    out = json.loads(json.dumps(base))  # a deep copy of plain YAML values
    for key, value in user.items():
        if key == "grid":
            if not isinstance(value, Mapping):
                raise InputError(where, "'grid' must be a mapping of hyperparameter: [values]")
            for gkey, gval in value.items():
                if gkey not in GRID_KEYS:
                    raise InputError(where, _unknown_message(gkey, GRID_KEYS, "grid entry"))
                out["grid"][gkey] = gval
        elif key == "space":
            _merge_space(out["space"], value, where)
        elif key in GRID_KEYS:
            out["grid"][key] = [value]
        elif key in out:
            out[key] = value
        else:
            raise InputError(where, _unknown_message(key, [*out, *GRID_KEYS], "parameter"))
    return out


def _merge_space(space: dict, user: Any, where: Any) -> None:
    """Lay a user's `space` over `space`: each entry named replaces that entry; null removes it."""
    if user is None:
        space.clear()
        return
    if not isinstance(user, Mapping):
        raise InputError(
            where, "'space' must be a mapping of parameter: {log: [low, high]} or {choice: [...]}"
        )
    for key, entry in user.items():
        if key not in SPACE_KEYS:
            raise InputError(where, _unknown_message(key, SPACE_KEYS, "space entry"))
        if entry is None:
            space.pop(key, None)
        else:
            space[key] = entry


def _dimension(key: str, entry: Any, where: Any) -> Dimension:
    """A validated `Dimension` from a params file's `space` entry (InputError naming it)."""
    name = f"space.{key}"
    if not isinstance(entry, Mapping) or not entry or set(entry) - {"log", "or", "choice"}:
        raise InputError(
            where,
            f"{name} must be {{log: [low, high]}} (with an optional 'or: value') or {{choice: [values]}}",
        )
    if "choice" in entry:
        choices = entry["choice"]
        if set(entry) != {"choice"} or not isinstance(choices, list) or not choices:
            raise InputError(where, f"{name}: choice must be a non-empty list and stand alone")
        for value in choices:
            _validate_value(key, value, where, name)
        return Dimension(key, choices=tuple(_plain(c) for c in choices))
    bounds = entry.get("log")
    if key not in _LOG_KEYS:
        raise InputError(where, f"{name}: log ranges are for {', '.join(_LOG_KEYS)}; use choice")
    if (
        not (isinstance(bounds, list) and len(bounds) == 2 and all(_is_number(b) for b in bounds))
        or not 0 < bounds[0] < bounds[1]
    ):
        raise InputError(
            where, f"{name}: log must be [low, high] with 0 < low < high, got {bounds!r}"
        )
    for value in [*bounds, *([entry["or"]] if "or" in entry else [])]:
        _validate_value(key, value, where, name)
    exact = float(entry["or"]) if "or" in entry else None
    return Dimension(key, log=(float(bounds[0]), float(bounds[1])), exact=exact)


def _validate_value(key: str, value: Any, where: Any, name: str) -> None:
    """InputError (naming `name`) on a value `key` cannot take."""
    try:
        if key in GRID_KEYS:
            _validate_grid_values(key, [value], None, prefix="")
        else:
            _validate_fixed({key: value}, None, keys=[key])
    except InputError as err:
        raise InputError(where, f"{name}: {err.message}") from None


def _validate_search(params: Mapping, where: Any) -> None:
    """InputError on `search` or `n_trials` out of range."""
    if params.get("search") not in SEARCHES:
        raise InputError(
            where, f"search must be one of {', '.join(SEARCHES)}, got {params.get('search')!r}"
        )
    if not _is_int(params.get("n_trials"), 1):
        raise InputError(where, f"n_trials must be an integer >= 1, got {params.get('n_trials')!r}")


def _unknown_message(key: Any, known: Iterable[str], what: str) -> str:
    """``unknown parameter 'lerning_rate' (did you mean 'learning_rate'?)``, or the known keys."""
    known = sorted(set(known) - {"grid"} if what == "parameter" else set(known))
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}"
    return f"unknown {what} {key!r} ({hint})"


def validate_params(params: dict, where: Any = None) -> None:
    """Raise InputError on a value the training cannot use (naming its key).

    Parameters
    ----------
    params
        A full params mapping.
    where
        Named in errors.
    """
    grid = params.get("grid", {})
    for key in GRID_KEYS:
        values = grid.get(key)
        if not isinstance(values, list) or not values:
            raise InputError(where, f"grid.{key} must be a non-empty list of values")
        _validate_grid_values(key, values, where, prefix="grid.")
    _validate_search(params, where)
    _validate_fixed(
        {k: v for k, v in params.items() if k not in ("search", "n_trials", "space")}, where
    )


def _validate_grid_values(key: str, values: list, where: Any, prefix: str) -> None:
    """InputError on a grid value out of range; `prefix` is ``grid.`` in a grid, empty alone."""
    name = f"{prefix}{key}"
    for v in values:
        if key == "hidden_layers":
            if not isinstance(v, (list, tuple)) or not all(_is_int(h, 1) for h in v):
                raise InputError(
                    where, f"{name} entries are lists of positive layer widths, got {v!r}"
                )
        elif key in ("batch_size", "latent_dim"):
            if not _is_int(v, 1):
                raise InputError(where, f"{name} values must be positive integers, got {v!r}")
        elif key == "early_stopping_on":
            if v not in MONITORS:
                raise InputError(
                    where, f"{name} values must be one of {', '.join(MONITORS)}, got {v!r}"
                )
        elif key == "dropout":
            if not _is_number(v) or not 0 <= v < 1:
                raise InputError(where, f"{name} values must be in [0, 1), got {v!r}")
        elif not _is_number(v) or v < 0 or (key == "learning_rate" and v == 0):
            kind = "positive" if key == "learning_rate" else "non-negative"
            raise InputError(where, f"{name} values must be {kind} numbers, got {v!r}")


_INTEGERS = (
    ("cv_folds", 0),
    ("bagging", 0),
    ("max_epochs", 1),
    ("patience", 1),
    ("selection_top_k", 1),
    ("min_features", 1),
)
_RANGES = (
    ("encoder_lr_scale", 0.0, math.inf),
    ("val_fraction", 0.0, 0.5),
    ("selection_pvalue", 0.0, 1.0),
    ("modality_dropout", 0.0, 1.0),
)
# Range keys that also take "auto".
_AUTO_KEYS = ("modality_dropout",)
_CHOICES = (
    ("imputer", IMPUTERS),
    ("encoder_activation", ACTIVATIONS),
    ("aux_target", AUX_TARGETS),
    ("missing", MISSING),
    ("balance", BALANCES),
    ("encoder_init", ENCODER_INITS),
    ("latent_combine", ("auto", *COMBINES)),
)


def _validate_fixed(params: Mapping, where: Any, keys: Iterable[str] | None = None) -> None:
    """InputError on a fixed (non-grid) value out of range; only `keys` when given."""
    check = set(params) if keys is None else set(keys)
    for key, lo in (x for x in _INTEGERS if x[0] in check):
        if not _is_int(params.get(key), lo):
            raise InputError(where, f"{key} must be an integer >= {lo}, got {params.get(key)!r}")
    for key, lo, hi in (x for x in _RANGES if x[0] in check):
        v = params.get(key)
        auto = key in _AUTO_KEYS
        if (auto and v == "auto") or (_is_number(v) and lo <= v <= hi):
            continue
        span = "a non-negative number" if hi == math.inf else f"a number in [{lo}, {hi}]"
        raise InputError(where, f"{key} must be {span}{' or auto' if auto else ''}, got {v!r}")
    for key, allowed in (x for x in _CHOICES if x[0] in check):
        if params.get(key) not in allowed:
            raise InputError(
                where, f"{key} must be one of {', '.join(allowed)}, got {params.get(key)!r}"
            )
    weights = params.get("target_weights")
    if (
        "target_weights" in check
        and weights is not None
        and not (
            isinstance(weights, dict) and all(_is_number(w) and w >= 0 for w in weights.values())
        )
    ):
        raise InputError(
            where, f"target_weights must be a mapping target: weight >= 0, got {weights!r}"
        )
    mode = params.get("latent_norm")
    if "latent_norm" in check and not (isinstance(mode, bool) or mode == "trained"):
        raise InputError(where, f"latent_norm must be true, false or trained, got {mode!r}")
    for key in (k for k in ("calibrate_imputer", "self_edges") if k in check):
        if not isinstance(params.get(key), bool):
            raise InputError(where, f"{key} must be true or false, got {params.get(key)!r}")
    for key, allowed in (
        x for x in (("selection", SELECTIONS), ("scaling", SCALINGS)) if x[0] in check
    ):
        v = params.get(key)
        for item in v.values() if isinstance(v, dict) else [v]:
            if item not in allowed:
                raise InputError(
                    where,
                    f"{key} must be one of {', '.join(allowed)} (or a mapping modality: value), "
                    f"got {item!r}",
                )


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any, lo: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo


def _frozen_value(key: str, value: Any) -> Any:
    """A value fit for a frozen dataclass: layer widths as a tuple, mappings copied."""
    if key == "hidden_layers":
        return tuple(int(h) for h in value)
    return dict(value) if isinstance(value, Mapping) else value


def _plain(value: Any) -> Any:
    """JSON-shaped copy: tuples as lists, mappings as dicts."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


# -- the grid ---------------------------------------------------------------------------------


def expand_grid(params: Settings | Mapping, dense: bool = True) -> list[Setting]:
    """One `Setting` per grid point (`Settings.points`).

    Parameters
    ----------
    params
        Settings, or a mapping over the defaults (validated first).
    dense
        Whether the cohort has no prior.

    Returns
    -------
    list of Setting
        In grid-product order.
    """
    return as_settings(params).points(dense)


def as_settings(params: Settings | Mapping | None, where: Any = None) -> Settings:
    """`params` as `Settings`.

    Parameters
    ----------
    params
        Settings (returned as is), or a mapping laid over the defaults (None: the defaults).
    where
        Named in errors.

    Returns
    -------
    Settings
        Validated.
    """
    if isinstance(params, Settings):
        return params
    if params is not None and not isinstance(params, Mapping):
        raise TypeError(f"params must be Settings or a mapping, not {type(params).__name__}")
    return Settings.from_mapping(params, where)


def as_setting(params: Settings | Setting | Mapping, dense: bool = True) -> Setting:
    """One `Setting` from what a caller has.

    Parameters
    ----------
    params
        A `Setting` (as is), `Settings` or a nested mapping with a one-point grid, or a flat
        mapping (grid keys with one value each) laid over the defaults' first grid point.
    dense
        Whether the cohort has no prior (otherwise `latent_dim` is None).

    Returns
    -------
    Setting
        A ValueError for a grid of several points or an unknown key.
    """
    if isinstance(params, Setting):
        return params if dense else params.replace(latent_dim=None)
    if isinstance(params, Settings) or "grid" in params:
        return as_settings(params).single(dense)
    unknown = [k for k in params if k not in _PART_OF and k != "cv_folds"]
    if unknown:
        raise ValueError(_unknown_message(unknown[0], _PART_OF, "parameter"))
    base = Settings.from_mapping({}).first(dense=True)
    setting = base.replace(**{k: v for k, v in params.items() if k != "cv_folds"})
    return setting if dense else setting.replace(latent_dim=None)


def grid_label(setting: Setting | Mapping, space: Iterable[Dimension] = ()) -> str:
    """Short, stable text of a setting's grid values.

    Parameters
    ----------
    setting
        A `Setting` or its flat dict (config.json's ``setting``).
    space
        Search-space entries whose keys are shown too (a tpe search's structural choices).

    Returns
    -------
    str
        JSON of the grid keys (and the space's) that are not None, sorted (a cv_results column).
    """
    flat = setting.to_dict() if isinstance(setting, Setting) else setting
    keys = [*GRID_KEYS, *(d.key for d in space if d.key not in GRID_KEYS)]
    return json.dumps({k: _plain(flat[k]) for k in keys if flat.get(k) is not None}, sort_keys=True)
