"""Evaluation: the paper's protocols, DeepGAMI's ablations and the baselines, on the same splits.

One call, `evaluate`, fits every method on the training rows of every split of every protocol and
scores it on that split's held-out rows, with the same per-fold preprocessing
(`deepgami.data.preprocessing`, fitted on training rows only) and the same metric functions
(`deepgami.metrics`). `write_evaluation` writes the tidy tables, the figures and `report.html`.

Protocols
    holdout      the cohort's split column (train/test) when it has both, else a stratified 80/20 split
    cv           stratified k-fold cross-validation over all labelled samples
    repeated     N stratified random 80/20 splits; pairwise KS tests between methods on the scores
    independent  train on all labelled samples of the cohort, test on another cohort file

Methods
    deepgami                  all modalities, and each single modality with the others imputed
    deepgami_meanfill         (derived) each single modality with the others' blocks mean-filled
    deepgami_dense            the same network without priors (dense encoders, as many latent nodes)
    deepgami_random_prior     each prior replaced by a random network with the same edge count
    deepgami_bernoulli_prior  prior edges kept with p = 0.8, other pairs added with p = 0.2
    baselines                 scikit-learn on the concatenated modalities (`deepgami.evaluation.baselines`)
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import math
import platform
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from deepgami.evaluation import baselines as bl
from deepgami.errors import InputError, atomic_path

PROTOCOLS = ("holdout", "cv", "repeated", "independent")
DEFAULT_PROTOCOLS = ("holdout", "cv", "repeated")
DEEPGAMI_METHODS = ("deepgami", "deepgami_dense", "deepgami_random_prior", "deepgami_bernoulli_prior")
PRIOR_METHODS = ("deepgami_dense", "deepgami_random_prior", "deepgami_bernoulli_prior")
MEANFILL = "deepgami_meanfill"
TUNE_MODES = ("once", "each", "none")
METRIC_COLUMNS = ["method", "modalities", "protocol", "split", "metric", "value"]
# Stable indices for seeds: a method keeps its seed whichever other methods run.
_METHOD_INDEX = {m: i for i, m in enumerate(DEEPGAMI_METHODS + bl.CLASSIFIERS + ("ridge", "lasso"))}
# A Bernoulli network with more edges than this would not fit a sparse encoder in memory.
MAX_BERNOULLI_EDGES = 20_000_000

METHOD_LABELS = {
    "deepgami": "DeepGAMI",
    MEANFILL: "DeepGAMI (mean-fill)",
    "deepgami_dense": "DeepGAMI, no prior (dense)",
    "deepgami_random_prior": "DeepGAMI, random prior",
    "deepgami_bernoulli_prior": "DeepGAMI, Bernoulli prior",
    "logistic_regression": "Logistic regression",
    "lasso_logistic": "Lasso-logistic",
    "random_forest": "Random forest",
    "svm": "SVM",
    "mlp": "MLP",
    "ridge": "Ridge regression",
    "lasso": "Lasso",
}


def method_names(task: str = "classification") -> tuple[str, ...]:
    """Methods `evaluate` runs by default for a task, in report order."""
    return DEEPGAMI_METHODS + bl.names(task)


@dataclass
class EvalConfig:
    """What `evaluate` runs. `fast` skips DeepGAMI's grid search (first value of each grid entry)
    and uses the baselines' small grids with at most 3 inner folds."""

    protocols: Sequence[str] = DEFAULT_PROTOCOLS
    folds: int = 5
    repeats: int = 20
    test_fraction: float = 0.2
    methods: Sequence[str] | None = None
    fast: bool = False
    tune: str = "once"
    inner_folds: int = 5
    bernoulli_keep: float = 0.8
    bernoulli_add: float = 0.2
    seed: int = 0

    def check(self) -> None:
        """Raise InputError on a value `evaluate` cannot use."""
        unknown = [p for p in self.protocols if p not in PROTOCOLS]
        if unknown or not self.protocols:
            raise InputError(None, f"--protocols: unknown protocol '{unknown[0] if unknown else ''}' "
                                   f"(choose from {', '.join(PROTOCOLS)})")
        if self.folds < 2:
            raise InputError(None, f"--folds must be at least 2 (got {self.folds})")
        if self.repeats < 1:
            raise InputError(None, f"--repeats must be at least 1 (got {self.repeats})")
        if not 0 < self.test_fraction < 1:
            raise InputError(None, f"--test-fraction must be in (0, 1) (got {self.test_fraction})")
        if self.tune not in TUNE_MODES:
            raise InputError(None, f"--tune must be one of {', '.join(TUNE_MODES)} (got {self.tune})")
        if self.inner_folds < 2:
            raise InputError(None, f"--inner-folds must be at least 2 (got {self.inner_folds})")
        for name, p in (("--bernoulli-keep", self.bernoulli_keep), ("--bernoulli-add", self.bernoulli_add)):
            if not 0 <= p <= 1:
                raise InputError(None, f"{name} must be a probability in [0, 1] (got {p})")


@dataclass
class Split:
    """Training and held-out rows (positions into the cohort arrays) of one split of a protocol."""

    protocol: str
    index: int
    train: np.ndarray
    test: np.ndarray


@dataclass
class EvaluationResult:
    """Everything `write_evaluation` writes: tidy tables, training histories and the run record."""

    metrics: pd.DataFrame
    predictions: pd.DataFrame
    summary: pd.DataFrame
    ks_tests: pd.DataFrame
    histories: pd.DataFrame
    tuning: pd.DataFrame | None
    baseline_params: pd.DataFrame
    info: dict
    seconds: dict[str, float] = field(default_factory=dict)


# -- splits ------------------------------------------------------------------------------------

def eligible_rows(data: Any, rows: np.ndarray | None = None) -> np.ndarray:
    """Rows with a known label (one of the classes) and at least one modality."""
    ok = data.has_label() & data.present.any(axis=1)
    if data.task == "classification":
        ok &= np.isin(np.asarray(data.labels, dtype=object), data.classes)
    idx = np.flatnonzero(ok)
    return idx if rows is None else np.intersect1d(idx, rows)


def _check_classes(data: Any, rows: np.ndarray, need: int, what: str) -> None:
    if data.task != "classification":
        if len(rows) < 2 * need:
            raise InputError(None, f"{len(rows)} labelled samples are too few for {what}")
        return
    counts = pd.Series(data.labels[rows]).value_counts()
    if len(counts) < 2:
        raise InputError(None, f"{what} needs two classes; the labelled samples hold one")
    if counts.min() < need:
        raise InputError(None, f"class '{counts.idxmin()}' has {counts.min()} samples, too few for {what} "
                               f"(needs {need})")


def make_splits(data: Any, protocol: str, config: EvalConfig, rows: np.ndarray) -> tuple[list[Split], str]:
    """The splits of `protocol` over `rows` (eligible positions) and a sentence saying how they were made."""
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

    from deepgami.train import cv_splits, derive_seed

    classify = data.task == "classification"
    y = data.labels[rows]
    seed = derive_seed(config.seed, 10 + PROTOCOLS.index(protocol)) % 2**32
    if protocol == "holdout":
        if data.split is not None:
            tr, te = rows[data.split[rows] == "train"], rows[data.split[rows] == "test"]
            if len(tr) and len(te):
                return [Split("holdout", 0, tr, te)], (f"the cohort's split column ({len(tr)} train, "
                                                       f"{len(te)} test samples)")
        _check_classes(data, rows, 2, "a held-out split")
        splitter = (StratifiedShuffleSplit if classify else ShuffleSplit)(
            n_splits=1, test_size=config.test_fraction, random_state=seed)
        tr, te = next(splitter.split(np.zeros(len(rows)), y if classify else None))
        why = "no test rows in the split column" if data.split is not None else "no split column"
        return [Split("holdout", 0, rows[np.sort(tr)], rows[np.sort(te)])], (
            f"a {'stratified ' if classify else ''}random {1 - config.test_fraction:.0%}/{config.test_fraction:.0%} "
            f"split ({why}; {len(tr)} train, {len(te)} test samples)")
    if protocol == "cv":
        _check_classes(data, rows, config.folds, f"{config.folds}-fold cross-validation")
        folds = cv_splits(y, config.folds, seed, classify)
        return [Split("cv", i, rows[tr], rows[te]) for i, (tr, te) in enumerate(folds)], (
            f"{'stratified ' if classify else ''}{config.folds}-fold cross-validation over {len(rows)} samples")
    if protocol == "repeated":
        _check_classes(data, rows, 2, "repeated random splits")
        splitter = (StratifiedShuffleSplit if classify else ShuffleSplit)(
            n_splits=config.repeats, test_size=config.test_fraction, random_state=seed)
        splits = [Split("repeated", i, rows[np.sort(tr)], rows[np.sort(te)])
                  for i, (tr, te) in enumerate(splitter.split(np.zeros(len(rows)), y if classify else None))]
        return splits, (f"{config.repeats} {'stratified ' if classify else ''}random "
                        f"{1 - config.test_fraction:.0%}/{config.test_fraction:.0%} splits of {len(rows)} samples")
    raise ValueError(protocol)


# -- the independent cohort ----------------------------------------------------------------------

def combine_cohorts(train: Any, test: Any, test_path: str | None = None) -> tuple[Any, np.ndarray, np.ndarray]:
    """One CohortArrays holding the training cohort's rows, then the test cohort's rows, with the
    test matrices reordered to the training cohort's features (looked up by name).

    A test cohort may lack a whole modality (its block is then absent for every test sample) but
    not single features of a modality it has. Returns (arrays, training positions, test positions).
    """
    from deepgami.data.arrays import CohortArrays

    if test.task != train.task:
        raise InputError(test_path, f"the test cohort's phenotype is {test.task}, the training cohort's {train.task}")
    shared = [m for m in train.modalities if m in test.modalities]
    if not shared:
        raise InputError(test_path, f"the test cohort has none of the modalities {', '.join(train.modalities)}")
    n_a, n_b = len(train.obs_names), len(test.obs_names)
    xs, present = [], np.zeros((n_a + n_b, len(train.modalities)), dtype=bool)
    present[:n_a] = train.present
    for k, m in enumerate(train.modalities):
        j = test.modalities.index(m) if m in test.modalities else None
        # int8 only when both cohorts store int8 dosages; float32 dosages must not be truncated.
        dtype = np.result_type(train.X[k].dtype, test.X[j].dtype if j is not None else train.X[k].dtype)
        block = np.zeros((n_b, train.X[k].shape[1]), dtype=dtype)
        if j is not None:
            idx = test.var_names[j].get_indexer(train.var_names[k])
            if (idx < 0).any():
                missing = train.var_names[k][idx < 0]
                raise InputError(test_path, f"modality '{m}' lacks {len(missing)} of the training cohort's "
                                            f"{len(idx)} features (e.g. {', '.join(map(str, missing[:3]))})")
            block = test.X[j][:, idx].astype(dtype, copy=False)
            present[n_a:, k] = test.present[:, j]
        xs.append(np.concatenate([train.X[k].astype(dtype, copy=False), block]))
    labels = None
    if train.labels is not None:
        other = test.labels if test.labels is not None else np.full(n_b, None, dtype=object)
        labels = np.concatenate([np.asarray(train.labels, dtype=object if train.task == "classification" else float),
                                 np.asarray(other, dtype=object if train.task == "classification" else float)])
    split = np.array(["train"] * n_a + ["independent"] * n_b, dtype=object)
    obs = pd.Index([f"{s}" for s in train.obs_names] + [f"{s}" for s in test.obs_names])
    if obs.has_duplicates:  # both files may use the same ids; tell them apart in predictions
        obs = pd.Index(list(train.obs_names) + [f"test:{s}" for s in test.obs_names])
    combined = CohortArrays(obs_names=obs, modalities=list(train.modalities), X=xs, var_names=list(train.var_names),
                            present=present, labels=labels, task=train.task, classes=list(train.classes),
                            split=split, latent_nodes=train.latent_nodes, priors=list(train.priors),
                            edges=list(train.edges))
    return combined, np.arange(n_a), np.arange(n_a, n_a + n_b)


# -- ablation networks ---------------------------------------------------------------------------

def random_network(n_features: int, n_latent: int, n_edges: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`n_edges` distinct (feature, latent node) pairs drawn uniformly: the paper's random prior."""
    n_pairs = n_features * n_latent
    codes = np.sort(rng.choice(n_pairs, size=min(n_edges, n_pairs), replace=False))
    return (codes // n_latent).astype(np.int64), (codes % n_latent).astype(np.int64)


def bernoulli_network(src: np.ndarray, dst: np.ndarray, n_features: int, n_latent: int, keep: float, add: float,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Keep each prior edge with probability `keep`; add each other (feature, node) pair with
    probability `add` (the paper's Bernoulli network, p = 0.8 / 0.2)."""
    edges = np.unique(np.asarray(src, dtype=np.int64) * n_latent + np.asarray(dst, dtype=np.int64))
    kept = edges[rng.random(len(edges)) < keep]
    n_other = n_features * n_latent - len(edges)
    n_add = int(rng.binomial(n_other, add)) if n_other > 0 else 0
    if n_add > MAX_BERNOULLI_EDGES:
        raise InputError(None, f"a Bernoulli network would add {n_add:,} edges ({n_features:,} features x "
                               f"{n_latent:,} latent nodes x p={add}); lower --bernoulli-add or select features")
    # Draw positions among the non-edges, then skip over the prior edges to get pair codes.
    picks = np.sort(rng.choice(n_other, size=n_add, replace=False)) if n_add else np.zeros(0, dtype=np.int64)
    added = picks + np.searchsorted(edges - np.arange(len(edges)), picks, side="right")
    codes = np.sort(np.concatenate([kept, added]))
    return (codes // n_latent).astype(np.int64), (codes % n_latent).astype(np.int64)


def variant_arrays(data: Any, method: str, config: EvalConfig, seed: int) -> Any:
    """The cohort arrays a DeepGAMI variant trains on: priors removed, randomized or perturbed."""
    if method == "deepgami":
        return data
    if method == "deepgami_dense":
        k = len(data.modalities)
        return dataclasses.replace(data, latent_nodes=None, priors=[None] * k, edges=[None] * k)
    rng = np.random.default_rng(seed)
    n_latent = len(data.latent_nodes)
    edges, priors = [], []
    for k, e in enumerate(data.edges):
        if e is None:
            edges.append(None)
            priors.append(None)
            continue
        n_features = data.X[k].shape[1]
        if method == "deepgami_random_prior":
            edges.append(random_network(n_features, n_latent, len(e[0]), rng))
            priors.append(f"random:{data.priors[k]}")
        else:
            edges.append(bernoulli_network(e[0], e[1], n_features, n_latent, config.bernoulli_keep,
                                           config.bernoulli_add, rng))
            priors.append(f"bernoulli:{data.priors[k]}")
        if len(edges[-1][0]) == 0:
            raise InputError(None, f"the {method} network of modality '{data.modalities[k]}' has no edge")
    return dataclasses.replace(data, edges=edges, priors=priors)


# -- DeepGAMI --------------------------------------------------------------------------------------

def tune_deepgami(data: Any, rows: np.ndarray, params: dict, seed: int) -> tuple[dict, pd.DataFrame | None]:
    """Grid search by `params['cv_folds']`-fold CV on `rows` (training rows of one split), as
    `deepgami train` does; returns the best setting and the per-fold table (None without a search)."""
    from deepgami.metrics import selection_score
    from deepgami.model import fit_predict_fold
    from deepgami.train import cv_splits, derive_seed, expand_grid, grid_search

    settings = expand_grid(params, dense=data.latent_nodes is None)
    n_folds = int(params["cv_folds"])
    if len(settings) == 1 or n_folds < 2:
        return settings[0], None
    classify = data.task == "classification"
    _check_classes(data, rows, n_folds, f"DeepGAMI's {n_folds}-fold grid search (cv_folds)")
    splits = cv_splits(data.labels[rows], n_folds, derive_seed(seed, 1), classify)

    def fit_fold(s: int, setting: dict, f: int, tr: np.ndarray, te: np.ndarray, fold_seed: int) -> dict:
        # Single networks, as in train's grid search: bagging is for the fits that are reported.
        res = fit_predict_fold(data, rows[tr], rows[te], dict(setting, bagging=0), fold_seed)
        keep = ("auc", "balanced_accuracy", "accuracy") if classify else ("r2", "mse")
        return {k: res.metrics["all"].get(k) for k in keep}

    table, best = grid_search(settings, splits, fit_fold, lambda row: selection_score(row, data.task), seed)
    table["selected"] = table["setting"] == best
    return settings[best], table


def _deepgami_setting(params: dict, dense: bool) -> dict:
    from deepgami.train import expand_grid

    return expand_grid(params, dense=dense)[0]


# -- baselines ---------------------------------------------------------------------------------------

def baseline_matrices(data: Any, train: np.ndarray, test: np.ndarray, setting: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Concatenated, preprocessed inputs for a baseline: (X_train, y_train, X_test, training rows used).

    Training rows are those with every modality. Each modality gets the same selection and
    scaling as DeepGAMI, fitted on those rows; a test sample lacking a modality gets the training
    mean of its features (so every method is scored on the same samples).
    """
    from deepgami.data.preprocessing import fit_modality_for

    train = train[data.present[train].all(axis=1)]
    if len(train) < 4:
        raise InputError(None, f"only {len(train)} training samples have every modality; baselines need more")
    if data.task == "classification":
        y = np.array([data.classes.index(v) for v in data.labels[train]], dtype=np.int64)
    else:
        y = data.labels[train].astype(np.float64)
    blocks_tr, blocks_te = [], []
    for k, m in enumerate(data.modalities):
        prep, cols = fit_modality_for(setting, m, data.X[k], data.var_names[k], y, data.task, rows=train)
        blocks_tr.append(prep.transform(data.X[k][train][:, cols]))
        raw = data.X[k][test][:, cols].astype(np.float32)
        raw[~data.present[test, k]] = np.nan  # transform fills NaN with the training mean
        blocks_te.append(prep.transform(raw))
    return np.concatenate(blocks_tr, axis=1), y, np.concatenate(blocks_te, axis=1), train


# -- metrics as tidy rows -------------------------------------------------------------------------

def flatten_metrics(scores: dict) -> dict[str, float]:
    """Scalar metrics of a `classification_metrics` / `regression_metrics` dict, `recall_<class>` per class."""
    out = {}
    for key, value in scores.items():
        if key == "recall" and isinstance(value, dict):
            for c, v in value.items():
                if v is not None:
                    out[f"recall_{c}"] = float(v)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and value is not None:
            if key == "n_excluded_unknown_label":
                continue
            if not (isinstance(value, float) and math.isnan(value)):
                out[key] = float(value)
    return out


def _score(data: Any, labels: np.ndarray, values: np.ndarray) -> dict:
    from deepgami.metrics import classification_metrics, regression_metrics

    if data.task == "classification":
        return classification_metrics(labels, values, data.classes)
    return regression_metrics(labels.astype(float), values)


def summarize(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation (n - 1) and number of splits per method x modalities x protocol x metric."""
    cols = ["method", "modalities", "protocol", "metric"]
    if metrics.empty:
        return pd.DataFrame(columns=cols + ["mean", "sd", "n_splits", "note"])
    grouped = metrics.groupby(cols, sort=False)["value"]
    out = grouped.agg(mean="mean", sd=lambda v: float(v.std(ddof=1)) if len(v) > 1 else np.nan,
                      n_splits="count").reset_index()
    out["note"] = ""
    return out


# -- the run ------------------------------------------------------------------------------------------

def package_versions() -> dict[str, str]:
    """Versions of Python and the packages an evaluation depends on."""
    out = {"python": platform.python_version()}
    for name in ("deepgami", "torch", "numpy", "pandas", "scipy", "scikit-learn", "anndata", "mudata", "matplotlib"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _data_summary(mdata: Any, data: Any) -> dict:
    build = mdata.uns.get("build", {}) if mdata is not None else {}
    priors = mdata.uns.get("priors", {}) if mdata is not None else {}
    return {
        "samples": int(len(data.obs_names)),
        "task": data.task,
        "classes": {str(c): int(np.sum(np.asarray(data.labels, dtype=object) == c)) for c in data.classes}
        if data.task == "classification" else {},
        "modalities": {m: {"features": int(x.shape[1]), "samples": int(data.present[:, k].sum())}
                       for k, (m, x) in enumerate(zip(data.modalities, data.X))},
        "complete_samples": int(data.present.all(axis=1).sum()),
        "priors": {str(name): {k: (v.item() if hasattr(v, "item") else v) for k, v in dict(info).items()}
                   for name, info in dict(priors).items()},
        "latent_nodes": None if data.latent_nodes is None else len(data.latent_nodes),
        "build": _plain(dict(build)),
    }


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def evaluate(
    mdata: Any,
    params: dict | None = None,
    config: EvalConfig | None = None,
    test_mdata: Any = None,
    *,
    cohort_name: str = "cohort",
    test_name: str | None = None,
    log: Callable[[str], None] | None = None,
) -> EvaluationResult:
    """Run every method on every split of every protocol and collect tidy metrics.

    Args:
        mdata: the cohort (MuData as written by `deepgami build`).
        params: DeepGAMI parameters (`deepgami.train.load_params`); their grid is searched
            once on the training rows of the first split (`config.tune`).
        config: protocols, splits, methods and ablation settings.
        test_mdata: an independent cohort for the `independent` protocol.
    """
    from deepgami.data.arrays import read_arrays
    from deepgami.model import BAG_FRACTION, fit_predict_fold
    from deepgami.train import derive_seed, load_params

    config = config or EvalConfig()
    config.check()
    params = load_params(None) if params is None else params
    say = log or (lambda text: None)
    t_start = time.perf_counter()
    data = read_arrays(mdata)
    own_summary = _data_summary(mdata, data)
    protocols = list(dict.fromkeys(config.protocols))
    if test_mdata is not None and "independent" not in protocols:
        protocols.append("independent")
    if "independent" in protocols and test_mdata is None:
        raise InputError(None, "the independent protocol needs a test cohort (--test-cohort OTHER.h5mu)")
    own_rows = eligible_rows(data)
    ind_train = ind_test = None
    if test_mdata is not None:
        test_data = read_arrays(test_mdata)
        data, ind_train, ind_test = combine_cohorts(data, test_data, test_name)
        ind_train, ind_test = eligible_rows(data, ind_train), eligible_rows(data, ind_test)
        if len(ind_test) == 0:
            raise InputError(test_name, "the test cohort has no sample labelled with one of the training classes "
                                        f"({', '.join(data.classes)})")
    if len(own_rows) == 0:
        raise InputError(None, "the cohort has no labelled sample with a modality")

    available = method_names(data.task)
    wanted = list(config.methods) if config.methods else list(available)
    unknown = [m for m in wanted if m not in available]
    if unknown:
        raise InputError(None, f"--methods: unknown method '{unknown[0]}' for a {data.task} cohort "
                               f"(choose from {', '.join(available)})")
    not_applicable = {}
    if data.latent_nodes is None:
        for m in PRIOR_METHODS:
            if m in wanted:
                not_applicable[m] = "n/a (cohort has no prior)"
    methods = [m for m in wanted if m not in not_applicable]
    dg_methods = [m for m in methods if m in DEEPGAMI_METHODS]
    base_methods = [m for m in methods if m not in DEEPGAMI_METHODS]

    splits: list[Split] = []
    protocol_notes = {}
    for p in protocols:
        if p == "independent":
            splits.append(Split("independent", 0, ind_train, ind_test))
            protocol_notes[p] = (f"trained on the {len(ind_train)} labelled samples of {cohort_name}, tested on "
                                 f"the {len(ind_test)} labelled samples of {test_name}")
            continue
        found, note = make_splits(data, p, config, own_rows)
        splits.extend(found)
        protocol_notes[p] = note

    # DeepGAMI's hyperparameters: searched once (training rows of the first split), or per split.
    notes = []
    inner_folds = min(config.inner_folds, 3) if config.fast else config.inner_folds
    tuning = None
    dense_cohort = data.latent_nodes is None
    if dg_methods and (config.fast or config.tune == "none"):
        setting = _deepgami_setting(params, dense_cohort)
        tune_text = "no grid search: the first value of each grid entry" + (" (--fast)" if config.fast else "")
    elif dg_methods and config.tune == "once":
        first = splits[0]
        say(f"tuning DeepGAMI by {params['cv_folds']}-fold CV on the {len(first.train)} training samples of "
            f"{first.protocol} split {first.index}")
        setting, tuning = tune_deepgami(data, first.train, params, derive_seed(config.seed, 7))
        score = "AUC" if data.task == "classification" else "R^2"
        tune_text = (f"grid search ({params['cv_folds']}-fold CV, best mean {score}) once, on the training samples "
                     f"of the first split ({first.protocol} {first.index}); that setting is used on every split"
                     if tuning is not None else "the grid has one setting (or cv_folds < 2): no search")
    else:
        setting = _deepgami_setting(params, dense_cohort)
        tune_text = "grid search on the training samples of every split"
    if dg_methods:
        notes.append(f"DeepGAMI hyperparameters: {tune_text}. The ablations reuse DeepGAMI's setting.")
        if int(setting["bagging"]):
            notes.append(f"Every DeepGAMI fit is bagged as in `deepgami train`: the fit on all training samples "
                         f"of the split plus {int(setting['bagging'])} networks on random {BAG_FRACTION:.0%} "
                         f"subsets of them, probabilities averaged.")
    if "deepgami_dense" in dg_methods:
        notes.append(f"deepgami_dense: the same network with dense encoders into as many latent nodes as the "
                     f"prior has ({len(data.latent_nodes)}).")
    if "deepgami_random_prior" in dg_methods:
        notes.append("deepgami_random_prior: each prior replaced, per split, by uniformly random "
                     "(feature, latent node) pairs with the prior's edge count.")
    if "deepgami_bernoulli_prior" in dg_methods:
        notes.append(f"deepgami_bernoulli_prior: per split, each prior edge kept with p = {config.bernoulli_keep} "
                     f"and every other (feature, latent node) pair added with p = {config.bernoulli_add}.")
    if base_methods:
        notes.append(
            f"Baselines: scikit-learn on the concatenated modalities, with DeepGAMI's per-fold selection and "
            f"scaling; tuned by {inner_folds}-fold inner CV on the training samples of every split ({'small' if config.fast else 'full'} grids); trained on samples with every modality; "
            "a test sample lacking a modality gets the training mean of its features.")
    if dense_cohort:
        notes.append("The cohort has no prior network: DeepGAMI runs with dense encoders into "
                     f"{setting.get('latent_dim')} latent nodes; prior ablations are not applicable.")
    if "deepgami" in dg_methods:
        notes.append("deepgami rows with a single modality: the other modalities hidden and imputed from it; "
                     "deepgami_meanfill: hidden and replaced by their training mean (a baseline for imputation).")

    records: list[dict] = []
    pred_frames: list[pd.DataFrame] = []
    histories: list[pd.DataFrame] = []
    base_params: list[dict] = []
    seconds: dict[str, float] = {m: 0.0 for m in methods}

    def add_rows(method: str, modalities: str, split: Split, scores: dict) -> None:
        for metric, value in flatten_metrics(scores).items():
            records.append({"method": method, "modalities": modalities, "protocol": split.protocol,
                            "split": split.index, "metric": metric, "value": value})

    def add_predictions(method: str, modalities: str, split: Split, samples: Sequence[str], labels: np.ndarray,
                        values: np.ndarray) -> None:
        frame = pd.DataFrame({"method": method, "modalities": modalities, "protocol": split.protocol,
                              "split": split.index, "sample": list(samples), "label": list(labels)})
        if data.task == "classification":
            for j, c in enumerate(data.classes):
                frame[f"prob_{c}"] = values[:, j]
        else:
            frame["predicted"] = values
        pred_frames.append(frame)

    p_index = {p: PROTOCOLS.index(p) for p in PROTOCOLS}
    for n_split, split in enumerate(splits):
        head = f"[{split.protocol} {split.index + 1}/{sum(s.protocol == split.protocol for s in splits)}]"
        split_setting = setting
        if dg_methods and config.tune == "each" and not config.fast:
            split_setting, _ = tune_deepgami(data, split.train, params,
                                             derive_seed(config.seed, 7, p_index[split.protocol], split.index))
        for method in methods:
            seed = derive_seed(config.seed, p_index[split.protocol], split.index, _METHOD_INDEX[method])
            t0 = time.perf_counter()
            if method in DEEPGAMI_METHODS:
                arrays = variant_arrays(data, method, config, derive_seed(seed, 99))
                use = dict(split_setting)
                if method == "deepgami_dense":
                    use["latent_dim"] = len(data.latent_nodes)
                res = fit_predict_fold(arrays, split.train, split.test, use, seed)
                for key, scores in res.metrics.items():
                    if key.endswith("_meanfill"):
                        if method != "deepgami":
                            continue
                        name, mods = MEANFILL, key[: -len("_meanfill")]
                    else:
                        name, mods = method, key
                    add_rows(name, mods, split, scores)
                    table = res.predictions[key]
                    cols = [f"prob_{c}" for c in data.classes] if data.task == "classification" else ["predicted"]
                    values = table[cols].to_numpy(dtype=np.float64)
                    add_predictions(name, mods, split, table["sample"], table["label"].to_numpy(),
                                    values if data.task == "classification" else values[:, 0])
                for m, r2 in res.imputation_r2.items():
                    if r2 is not None and not math.isnan(r2):
                        records.append({"method": method, "modalities": "all", "protocol": split.protocol,
                                        "split": split.index, "metric": f"imputation_r2_{m}", "value": float(r2)})
                if n_split == 0 or split.protocol == "independent":
                    hist = res.history.copy()
                    hist.insert(0, "method", method)
                    hist.insert(1, "protocol", split.protocol)
                    hist.insert(2, "split", split.index)
                    histories.append(hist)
                main = res.metrics["all"]
            else:
                Xtr, ytr, Xte, used = baseline_matrices(data, split.train, split.test, split_setting if dg_methods
                                                        else _deepgami_setting(params, dense_cohort))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fitted = bl.fit_baseline(method, Xtr, ytr, data.task, seed % 2**31, inner_folds, config.fast)
                values = bl.predict_scores(fitted, Xte, len(data.classes) if data.task == "classification" else None)
                labels = data.labels[split.test]
                main = _score(data, labels, values)
                add_rows(method, "all", split, main)
                add_predictions(method, "all", split, [str(data.obs_names[i]) for i in split.test], labels, values)
                base_params.append({"method": method, "protocol": split.protocol, "split": split.index,
                                    "n_train": len(used), "params": json.dumps(_plain(fitted.best_params),
                                                                               sort_keys=True),
                                    "inner_cv_score": fitted.inner_score})
            seconds[method] += time.perf_counter() - t0
            key_metric = "auc" if data.task == "classification" else "r2"
            value = main.get(key_metric)
            say(f"{head} {method}: {key_metric} {'n/a' if value is None else f'{value:.3f}'} "
                f"({time.perf_counter() - t0:.1f}s)")

    metrics = pd.DataFrame(records, columns=METRIC_COLUMNS)
    metrics["split"] = metrics["split"].astype(int)
    summary = summarize(metrics)
    na_rows = [{"method": m, "modalities": "all", "protocol": p, "metric": metric, "mean": np.nan, "sd": np.nan,
                "n_splits": 0, "note": reason}
               for m, reason in not_applicable.items() for p in protocols
               for metric in (("auc", "balanced_accuracy") if data.task == "classification" else ("r2",))]
    if na_rows:
        summary = pd.concat([summary, pd.DataFrame(na_rows)], ignore_index=True)
    ks_tests = pd.DataFrame()
    if "repeated" in protocols:
        from deepgami.evaluation.significance import pairwise_ks

        main_metrics = ("auc", "balanced_accuracy") if data.task == "classification" else ("r2", "mse")
        rep = metrics[(metrics["protocol"] == "repeated") & (metrics["modalities"] == "all")
                      & metrics["metric"].isin(main_metrics)]
        ks_tests = pairwise_ks(rep, methods=[m for m in methods if m in set(rep["method"])])
        notes.append("KS tests: two-sided two-sample Kolmogorov-Smirnov (scipy.stats.ks_2samp) between the "
                     "per-split scores of each pair of methods on the repeated splits; pvalue_bh is "
                     "Benjamini-Hochberg adjusted over the pairs of one metric.")
    else:
        from deepgami.evaluation.significance import KS_COLUMNS

        ks_tests = pd.DataFrame(columns=KS_COLUMNS)
    predictions = pd.concat(pred_frames, ignore_index=True) if pred_frames else pd.DataFrame()
    info = {
        "cohort": cohort_name,
        "test_cohort": test_name,
        "task": data.task,
        "classes": list(data.classes),
        "modalities": list(data.modalities),
        "data": own_summary,
        "test_data": _data_summary(test_mdata, test_data) if test_mdata is not None else None,
        "protocols": {p: {"splits": sum(s.protocol == p for s in splits), "how": protocol_notes[p]} for p in protocols},
        "methods": methods,
        "not_applicable": not_applicable,
        "config": _plain(dataclasses.asdict(config)),
        "params": _plain(params),
        "deepgami_setting": _plain(setting) if dg_methods else None,
        "baseline_grids": {m: _plain(bl.registry(data.task)[m].fast_grid if config.fast else bl.registry(data.task)[m].grid)
                           for m in base_methods},
        "notes": notes,
        "versions": package_versions(),
    }
    seconds["total"] = time.perf_counter() - t_start
    return EvaluationResult(metrics, predictions, summary, ks_tests,
                            pd.concat(histories, ignore_index=True) if histories else pd.DataFrame(),
                            tuning, pd.DataFrame(base_params), info, seconds)
