"""`DeepGAMI`: the user-facing model. It takes a cohort MuData, trains (CV grid search + refit),
saves a state_dict + config.json, loads, and predicts from any subset of modalities.

Typical use::

    model = DeepGAMI.fit(mdata, load_params("params.yaml"), seed=0)
    model.save("model_dir")
    model = DeepGAMI.load("model_dir")
    table = model.predict(mdata, modalities=["snp"])   # expression block imputed

For evaluation and ablations, `fit_predict_fold` fits one setting on given rows and scores given
held-out rows, optionally with each modality's prior swapped for another edge list.

Feature alignment: a model remembers, per modality, the names of its input features in encoder
order. Prediction looks those names up in the cohort (any order, extra features ignored); a
missing feature is an InputError, never a silent shift of columns.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import mudata as md
import numpy as np
import pandas as pd
import torch

from deepgami import __version__
from deepgami.data import cohort
from deepgami.data.arrays import CohortArrays, PriorOverride, latent_targets, read_arrays, usable_rows
from deepgami.errors import InputError, atomic_path
from deepgami.data.lazy_inputs import InputBlock, PreprocessedRows, chunk_rows, materialize
from deepgami.metrics import block_r2, classification_metrics, regression_metrics, selection_score
from deepgami.nn.network import DeepGAMINetwork
from deepgami.data.preprocessing import ModalityPreprocessor, class_weights, fit_modality_for, smote_oversample
from deepgami.train import (
    Batch,
    as_setting,
    calibrate_imputers,
    cv_splits,
    derive_seed,
    encode_in_chunks,
    expand_grid,
    grid_search,
    init_encoders_from_targets,
    inner_split,
    load_params,
    set_latent_means,
    summarize_cv,
    train_network,
)

CONFIG_FORMAT = 1
MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"
CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "auc", "auc_weighted", "f1_macro", "log_loss")
REGRESSION_METRICS = ("mse", "r2", "pearson")


# -- inputs prepared for the network --------------------------------------------------------------

@dataclass
class ModelInputs:
    """Inputs per model modality (preprocessed on demand, zeros where absent) and presence (n x K)."""

    obs_names: list[str]
    modalities: list[str]
    xs: list[InputBlock]
    present: torch.Tensor

    def rows(self, idx: np.ndarray) -> ModelInputs:
        t = torch.as_tensor(idx, dtype=torch.long)
        return ModelInputs([self.obs_names[i] for i in idx], self.modalities, [x[t] for x in self.xs],
                           self.present[t])


@dataclass
class FoldResult:
    """What `fit_predict_fold` returns: the fitted model and its held-out scores.

    `metrics` and `predictions` are keyed by the inputs given: `all`, each single modality (the
    others imputed) and `<modality>_meanfill` (the others replaced by their training mean).
    """

    model: DeepGAMI
    metrics: dict[str, dict]
    predictions: dict[str, pd.DataFrame]
    imputation_r2: dict[str, float | None]
    history: pd.DataFrame


# Below this many encoder weights one thread is faster than several: the ops are tiny and, on a
# shared machine, a second intra-op thread spin-waiting for a busy core costs up to 10x.
SINGLE_THREAD_MAX_WEIGHTS = 5_000_000
# Each bagged network is fitted on this share of the training rows.
BAG_FRACTION = 0.8
# model.pt holds the first network's state_dict as is and member i's under "members.<i>.".
MEMBER_PREFIX = "members."


@contextlib.contextmanager
def threads_for(n_weights: int) -> Iterator[None]:
    """One torch thread for networks of at most SINGLE_THREAD_MAX_WEIGHTS encoder weights; the
    thread count is fixed by the network, so results are reproducible (CPU kernels used here are
    deterministic for a given thread count)."""
    previous = torch.get_num_threads()
    if n_weights <= SINGLE_THREAD_MAX_WEIGHTS:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _threads(data: CohortArrays) -> contextlib.AbstractContextManager:
    """Training's thread policy, sized before the network exists (dense encoders ~256 nodes)."""
    return threads_for(sum(len(e[0]) if e is not None else x.shape[1] * 256 for x, e in zip(data.X, data.edges)))


@functools.lru_cache(maxsize=1)
def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for name in ("deepgami", "torch", "numpy", "pandas", "scikit-learn", "imbalanced-learn", "anndata", "mudata"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = __version__ if name == "deepgami" else "unknown"
    return out


class DeepGAMI:
    """A trained DeepGAMI model: the network (`module`), its fitted preprocessing and its config;
    `members` are the networks whose outputs it averages (`module` first, then any bagged ones).

    Build one with `DeepGAMI.fit` (grid search + refit) or `DeepGAMI.fit_rows` (one setting), or
    `DeepGAMI.load`. After `fit`, `cv_results`, `cv_summary`, `history` and `imputation` hold the
    training report that `save` writes next to the weights.
    """

    def __init__(self, module: DeepGAMINetwork, config: dict, preprocessors: Sequence[ModalityPreprocessor],
                 bagged: Sequence[DeepGAMINetwork] = ()) -> None:
        self.module = module
        # The networks whose outputs are averaged: the refit first, then any bagged ones. They share
        # the preprocessing, the inputs and the prior edges.
        self.members: list[DeepGAMINetwork] = [module, *bagged]
        self.config = config
        self.preprocessors = list(preprocessors)
        self.history: pd.DataFrame | None = None
        self.cv_results: pd.DataFrame | None = None
        self.cv_summary: pd.DataFrame | None = None
        self.imputation: dict | None = None

    # -- properties ---------------------------------------------------------------------------

    @property
    def modalities(self) -> list[str]:
        return list(self.config["modalities"])

    @property
    def task(self) -> str:
        return str(self.config["task"])

    @property
    def classes(self) -> list[str]:
        return list(self.config["classes"])

    @property
    def latent_nodes(self) -> list[str]:
        """Names of the latent nodes (prior target genes), or `latent_0..` in dense mode."""
        nodes = self.config.get("latent_nodes")
        return list(nodes) if nodes is not None else [f"latent_{i}" for i in range(self.module.n_latent)]

    def features(self, modality: str) -> list[str]:
        """Input features of `modality`, in encoder order."""
        return list(self.preprocessors[self.modalities.index(modality)].features)

    def edges(self, modality: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(src into `features(modality)`, dst into `latent_nodes`) of a sparse encoder, else None."""
        enc = self.module.encoders[self.modalities.index(modality)]
        if isinstance(enc, torch.nn.Linear):
            return None
        return enc.src.numpy().copy(), enc.dst.numpy().copy()

    # -- training -----------------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        mdata: md.MuData | CohortArrays,
        params: dict | None = None,
        seed: int = 0,
        *,
        cv_folds: int | None = None,
        max_epochs: int | None = None,
        split: str | None = "train",
        progress: bool = False,
        prior_override: PriorOverride | None = None,
    ) -> DeepGAMI:
        """Grid search by k-fold CV on the training rows, then refit the best setting on all of them.

        Training rows: those whose `split` equals `split` when the cohort has a split column
        (`split=None` uses all), with a label and at least one modality. Early stopping always uses
        an inner validation split of the rows being fitted, never the fold being scored.
        """
        params = load_params(None) if params is None else params
        params = dict(params)
        if cv_folds is not None:
            params["cv_folds"] = int(cv_folds)
        if max_epochs is not None:
            params["max_epochs"] = int(max_epochs)
        data = mdata if isinstance(mdata, CohortArrays) else read_arrays(mdata, prior_override)
        rows = np.flatnonzero(data.has_label() & data.present.any(axis=1))
        if split is not None and data.split is not None:
            rows = rows[data.split[rows] == split]
        if len(rows) == 0:
            raise InputError(None, f"no labelled training samples (split == '{split}') with any modality")
        if data.task == "classification":
            seen = sorted(set(data.labels[rows]))
            if len(seen) < 2:
                raise InputError(None, f"training samples hold a single class ({seen[0] if seen else 'none'})")
        settings = expand_grid(params, dense=data.latent_nodes is None)
        n_folds = int(params["cv_folds"])
        stratify = data.task == "classification"
        if n_folds >= 2:
            y = data.labels[rows]
            if stratify and np.unique(y, return_counts=True)[1].min() < n_folds:
                small = pd.Series(y).value_counts().idxmin()
                raise InputError(None, f"class '{small}' has fewer training samples than cv_folds={n_folds}")
            if len(rows) < 2 * n_folds:
                raise InputError(None, f"{len(rows)} training samples are too few for cv_folds={n_folds}")
            splits = cv_splits(y, n_folds, derive_seed(seed, 1), stratify)
        else:
            splits, settings = [], settings[:1]
        n_fits = len(settings) * len(splits) + 1 + int(params["bagging"])
        bar = _progress_bar(n_fits, progress)
        try:
            with _threads(data):
                table, best = None, 0
                fold_r2: dict[str, list[float]] = {}
                if splits:

                    def fit_fold(s: int, setting: dict, f: int, tr: np.ndarray, te: np.ndarray, fold_seed: int) -> dict:
                        bar.set_description(f"setting {s + 1}/{len(settings)} fold {f + 1}/{len(splits)}")
                        model = cls.fit_rows(data, rows[tr], setting, fold_seed, on_epoch=_epoch_hook(bar))
                        scores, _, r2 = model._evaluate(data, rows[te])
                        bar.update(1)
                        return {"best_epoch": int(model.config["training"]["best_epoch"]), **scores}

                    table, best = grid_search(settings, splits, fit_fold,
                                              lambda row: selection_score(_unflatten(row, "all"), data.task), seed)
                bar.set_description("refit on all training rows")
                model = cls.fit_bagged(data, rows, settings[best], derive_seed(seed, 2), on_epoch=_epoch_hook(bar),
                                       on_fit=lambda: bar.update(1))
        finally:
            bar.close()
        model.config["seed"] = int(seed)
        model.config["params"] = params
        model.config["training"]["n_settings"] = len(settings)
        model.config["training"]["cv_folds"] = len(splits)
        if table is not None:
            model.cv_results = table
            model.cv_summary = summarize_cv(table, best)
            chosen = table[table["setting"] == best]
            model.config["cv"] = {
                "selected_setting": int(best),
                "metric": "r2" if data.task == "regression" else "log_loss",
                "mean": {c: _float(chosen[c].mean()) for c in chosen.columns
                         if c not in ("setting", "fold", "grid") and pd.api.types.is_numeric_dtype(chosen[c])},
            }
            for m in data.modalities:
                col = f"r2_{m}"
                if col in chosen:
                    fold_r2[m] = [_float(v) for v in chosen[col]]
        model.imputation = {
            "description": "R^2 of each latent block imputed from the other modalities against the block "
                           "encoded from its own data (pooled over latent nodes), on held-out rows",
            "held_out": "CV test folds of the selected setting" if fold_r2 else None,
            "blocks": {
                m: {
                    "imputed_from": [o for o in data.modalities if o != m],
                    "r2_mean": _mean_or_none(fold_r2.get(m, [])),
                    "r2_per_fold": fold_r2.get(m, []),
                    "r2_refit_validation": model.config["training"]["imputation_r2_validation"].get(m),
                }
                for m in data.modalities
            },
        }
        return model

    @classmethod
    def fit_bagged(
        cls,
        data: CohortArrays,
        rows: np.ndarray,
        setting: dict,
        seed: int,
        on_epoch: Callable[[int, float, float | None], None] | None = None,
        on_fit: Callable[[], None] | None = None,
    ) -> DeepGAMI:
        """`fit_rows` on all `rows`, plus `setting['bagging']` networks each fitted on a random
        (stratified) BAG_FRACTION of them with the first one's preprocessing; the model averages
        their outputs. A few hundred samples leave the head's choice among hundreds of latent genes
        noisy, and averaging over subsets steadies it (+0.03 held-out AUC on simulated cohorts)."""
        model = cls.fit_rows(data, rows, setting, seed, on_epoch)
        if on_fit is not None:
            on_fit()
        rows = usable_rows(data, rows, setting)
        stratify = data.task == "classification"
        for b in range(int(setting["bagging"])):
            bag, _ = inner_split(data.labels[rows] if stratify else np.zeros(len(rows)), 1 - BAG_FRACTION,
                                 derive_seed(seed, 6, b), stratify)
            member = cls.fit_rows(data, rows[bag], setting, derive_seed(seed, 7, b), on_epoch, model.preprocessors)
            model.members.append(member.module)
            if on_fit is not None:
                on_fit()
        model.config["network"]["n_members"] = len(model.members)
        return model

    @classmethod
    def fit_rows(
        cls,
        data: CohortArrays,
        rows: np.ndarray,
        setting: dict,
        seed: int,
        on_epoch: Callable[[int, float, float | None], None] | None = None,
        shared_preprocessing: Sequence[ModalityPreprocessor] | None = None,
    ) -> DeepGAMI:
        """Fit one setting on rows `rows` of `data` (preprocessing included, fitted on those rows
        only, unless `shared_preprocessing` is given: then the network uses it, as a bagged member)."""
        mods = data.modalities
        rows = usable_rows(data, rows, setting)
        if len(rows) < 4:
            raise InputError(None, f"only {len(rows)} usable training samples")
        task = data.task
        if task == "classification":
            codes = np.array([data.classes.index(v) for v in data.labels[rows]], dtype=np.int64)
            y_fit = codes
        else:
            y_raw = data.labels[rows].astype(np.float64)
            y_mean, y_std = float(y_raw.mean()), float(y_raw.std() or 1.0)
            y_fit = y_raw
        # Preprocessing: each modality on the training rows that have it.
        preprocessors, edges = [], []
        for k, m in enumerate(mods):
            have = data.present[rows, k]
            if not have.any():
                raise InputError(None, f"no training sample has modality '{m}'")
            if shared_preprocessing is not None:
                prep = shared_preprocessing[k]
                cols = data.var_names[k].get_indexer(pd.Index(prep.features))
            else:
                candidates = None if data.edges[k] is None else data.edges[k][0]
                try:
                    prep, cols = fit_modality_for(setting, m, data.X[k], data.var_names[k], y_fit[have], task,
                                                  candidates, rows=rows[have])
                except ValueError as err:
                    raise InputError(None, f"modality '{m}': {err}") from None
            preprocessors.append(prep)
            if data.edges[k] is None:
                edges.append(None)
            else:
                src, dst = data.edges[k]
                keep = np.isin(src, cols)
                edges.append((np.searchsorted(cols, src[keep]), dst[keep]))
        n_latent = len(data.latent_nodes) if data.latent_nodes is not None else int(setting["latent_dim"])
        n_out = 1 if task == "regression" else len(data.classes)
        network_config = {
            "n_inputs": [len(p.features) for p in preprocessors],
            "n_latent": n_latent,
            "n_outputs": n_out,
            "sparse": [e is not None for e in edges],
            "hidden_layers": [int(h) for h in setting["hidden_layers"]],
            "dropout": float(setting["dropout"]),
            "imputer": setting["imputer"],
            "encoder_activation": setting["encoder_activation"],
            "latent_norm": bool(setting["latent_norm"]),
        }
        config = {
            "format_version": CONFIG_FORMAT,
            "modalities": mods,
            "task": task,
            "classes": list(data.classes) if task == "classification" else [],
            "latent_nodes": data.latent_nodes,
            "priors": {m: p for m, p in zip(mods, data.priors)},
            "network": network_config,
            "preprocessing": {m: p.to_dict() for m, p in zip(mods, preprocessors)},
            "setting": setting,
            "seed": int(seed),
            "versions": _versions(),
            "training": {"n_train": int(len(rows))},
        }
        if task == "regression":
            config["target"] = {"mean": y_mean, "std": y_std}
        torch.manual_seed(seed)
        module = DeepGAMINetwork(
            network_config["n_inputs"], n_latent, n_out,
            edges=[None if e is None else (torch.as_tensor(e[0]), torch.as_tensor(e[1])) for e in edges],
            hidden_layers=network_config["hidden_layers"], dropout=network_config["dropout"],
            imputer=network_config["imputer"], encoder_activation=network_config["encoder_activation"],
            latent_norm=network_config["latent_norm"])
        model = cls(module, config, preprocessors)
        inputs = model._inputs_from_arrays(data, rows)
        if task == "classification":
            y_t = torch.as_tensor(codes)
        else:
            y_t = torch.as_tensor((y_fit - y_mean) / y_std, dtype=torch.float32)
        tr, va = inner_split(codes if task == "classification" else y_fit, float(setting["val_fraction"]),
                             derive_seed(seed, 3), task == "classification")
        train = Batch(inputs.xs, inputs.present, y_t).rows(tr)
        val = Batch(inputs.xs, inputs.present, y_t).rows(va) if len(va) else None
        if setting["encoder_init"] == "targets" and data.latent_nodes is not None:
            targets = latent_targets(data, rows[tr], setting["scaling"])
            if targets is not None:
                config["training"]["encoder_init"] = init_encoders_from_targets(
                    module, train.xs, train.present, targets)
        weight = None
        if task == "classification" and setting["balance"] == "smote":
            # SMOTE makes new rows, so it works on a preprocessed float32 copy of the training rows.
            xs, pres, yy = smote_oversample([x.numpy() for x in materialize(train.xs)], train.present.numpy(),
                                            train.y.numpy(), derive_seed(seed, 4) % 2**31)
            train = Batch([torch.from_numpy(x) for x in xs], torch.from_numpy(pres), torch.from_numpy(yy))
        elif task == "classification" and setting["balance"] == "class_weights":
            weight = class_weights(train.y.numpy(), n_out)
        started = [int(k) for k, n in config["training"].get("encoder_init", {}).items() if n > 0]
        history, best_epoch = train_network(module, train, val, setting, task, derive_seed(seed, 5), weight,
                                            on_epoch, started)
        set_latent_means(module, train)
        # Held-out R^2 of the inner validation rows, unless they are about to fit the imputers.
        config["training"]["imputation_r2_validation"] = (
            model.imputation_r2(inputs.rows(va)) if len(va) and not setting["calibrate_imputer"]
            else {m: None for m in mods})
        if setting["calibrate_imputer"] and val is not None:
            calibrate_imputers(module, val)
        model.history = history
        config["training"].update(best_epoch=int(best_epoch), epochs_run=int(len(history)),
                                  n_inner_train=int(len(train)), n_validation=int(len(va)))
        return model

    # -- inputs -------------------------------------------------------------------------------

    def _block(self, k: int, X: np.ndarray, var_names: pd.Index, rows: np.ndarray, present: np.ndarray) -> PreprocessedRows:
        """Rows `rows` of modality k's raw matrix X, its columns looked up by name (never by
        position), preprocessed when a (mini)batch is materialized."""
        prep = self.preprocessors[k]
        idx = var_names.get_indexer(pd.Index(prep.features))
        if (idx < 0).any():
            missing = [f for f, i in zip(prep.features, idx) if i < 0]
            raise InputError(None, f"modality '{self.modalities[k]}' of the cohort lacks {len(missing)} of the "
                                   f"model's {len(prep.features)} input features (e.g. {', '.join(missing[:3])})")
        return PreprocessedRows(X, rows, idx, prep, present, self.modalities[k])

    def _inputs_from_arrays(self, data: CohortArrays, rows: np.ndarray) -> ModelInputs:
        if data.modalities != self.modalities:
            raise InputError(None, f"cohort modalities {data.modalities} differ from the model's {self.modalities}")
        rows = np.asarray(rows, dtype=np.int64)
        present = data.present[rows]
        xs = [self._block(k, data.X[k], data.var_names[k], rows, present[:, k]) for k in range(len(self.modalities))]
        return ModelInputs([str(data.obs_names[i]) for i in rows], self.modalities, xs,
                           torch.from_numpy(present.copy()))

    def prepare_inputs(self, mdata: md.MuData, modalities: Sequence[str] | None = None) -> ModelInputs:
        """Preprocessed float32 inputs per model modality and presence masks for every sample.

        `modalities` restricts which modalities are given (default: every model modality the
        cohort has); the rest are marked absent, so the network imputes their blocks. A sample's
        presence also requires it to have the modality in the cohort.
        """
        use = self._check_modalities(mdata, modalities)
        n = mdata.n_obs
        xs: list[InputBlock] = []
        present = np.zeros((n, len(self.modalities)), dtype=bool)
        for k, m in enumerate(self.modalities):
            if m in use:
                present[:, k] = cohort.present(mdata, m)
                xs.append(self._block(k, cohort.modality_matrix(mdata, m, dtype=None),
                                      pd.Index(mdata.mod[m].var_names.astype(str)), np.arange(n), present[:, k]))
            else:
                xs.append(torch.zeros((n, len(self.preprocessors[k].features)), dtype=torch.float32))
        return ModelInputs([str(s) for s in mdata.obs_names], self.modalities, xs, torch.from_numpy(present))

    def _check_modalities(self, mdata: md.MuData, modalities: Sequence[str] | None) -> list[str]:
        if modalities is None:
            use = [m for m in self.modalities if m in mdata.mod]
            if not use:
                raise InputError(None, f"the cohort has none of the model's modalities ({', '.join(self.modalities)})")
            return use
        use = list(dict.fromkeys(modalities))
        unknown = [m for m in use if m not in self.modalities]
        if unknown:
            raise InputError(None, f"unknown modality '{unknown[0]}'; the model has: {', '.join(self.modalities)}")
        absent = [m for m in use if m not in mdata.mod]
        if absent:
            raise InputError(None, f"the cohort has no modality '{absent[0]}' (it has: {', '.join(mdata.mod)})")
        if not use:
            raise InputError(None, "give at least one modality")
        return use

    # -- prediction ---------------------------------------------------------------------------

    @torch.no_grad()
    def _forward(self, inputs: ModelInputs, fill: str = "impute") -> np.ndarray:
        """Probabilities (n x classes) or predicted values (n,), averaged over the member networks;
        NaN for samples with no modality."""
        for net in self.members:
            net.eval()
        chunks = []
        step = chunk_rows(inputs.xs)
        for start in range(0, len(inputs.obs_names), step):
            sl = slice(start, start + step)
            xs = materialize([x[sl] for x in inputs.xs])  # once per chunk, for every member
            logits = [net(xs, inputs.present[sl], fill=fill).logits.double() for net in self.members]
            if self.task == "regression":
                t = self.config["target"]
                chunks.append(torch.stack(logits).mean(0)[:, 0].numpy() * t["std"] + t["mean"])
            else:
                chunks.append(torch.stack([torch.softmax(z, dim=1) for z in logits]).mean(0).numpy())
        n_out = 0 if self.task == "regression" else len(self.classes)
        values = np.concatenate(chunks) if chunks else np.zeros((0, n_out) if n_out else 0)
        none = ~inputs.present.numpy().any(axis=1)
        values[none] = np.nan
        return values

    def predict_proba(self, data: md.MuData | ModelInputs, modalities: Sequence[str] | None = None,
                      fill: str = "impute") -> np.ndarray:
        """Class probabilities (samples x classes, columns in `classes` order).

        Missing blocks are imputed (`fill="mean"`: the training mean, a baseline). Rows of samples
        with none of the given modalities are NaN.
        """
        if self.task == "regression":
            raise ValueError("predict_proba is for classification models; use predict")
        inputs = data if isinstance(data, ModelInputs) else self.prepare_inputs(data, modalities)
        return self._forward(inputs, fill)

    def predict(self, data: md.MuData | ModelInputs, modalities: Sequence[str] | None = None,
                fill: str = "impute", labels: Sequence[Any] | None = None) -> pd.DataFrame:
        """One row per sample: `sample`, `label` (when known), `predicted`, `prob_<class>` per class,
        `modalities` (the given modalities the sample has, comma-separated)."""
        if isinstance(data, ModelInputs):
            inputs = data
        else:
            inputs = self.prepare_inputs(data, modalities)
            if labels is None and cohort.LABEL in data.obs:
                labels = data.obs[cohort.LABEL].tolist()
        values = self._forward(inputs, fill)
        table = pd.DataFrame({"sample": inputs.obs_names})
        if labels is not None:
            table["label"] = [None if pd.isna(v) else (float(v) if self.task == "regression" else str(v)) for v in labels]
        present = inputs.present.numpy()
        if self.task == "regression":
            table["predicted"] = values
        else:
            pred = np.array([self.classes[i] for i in np.nan_to_num(values, nan=0.0).argmax(axis=1)], dtype=object)
            pred[~present.any(axis=1)] = None
            table["predicted"] = pred
            for c, cls_name in enumerate(self.classes):
                table[f"prob_{cls_name}"] = values[:, c]
        table["modalities"] = [",".join(m for m, p in zip(self.modalities, row) if p) for row in present]
        return table

    def metrics(self, table: pd.DataFrame) -> dict:
        """Metrics of a `predict` table over rows with a known label (and a prediction)."""
        if "label" not in table:
            return {}
        ok = table["label"].notna() & table["predicted"].notna()
        if self.task == "regression":
            return regression_metrics(table.loc[ok, "label"].astype(float), table.loc[ok, "predicted"].astype(float))
        known = ok & table["label"].isin(self.classes)
        proba = table.loc[known, [f"prob_{c}" for c in self.classes]].to_numpy()
        out = classification_metrics(table.loc[known, "label"], proba, self.classes)
        out["n_excluded_unknown_label"] = int((ok & ~known).sum())
        return out

    # -- imputation --------------------------------------------------------------------------

    @torch.no_grad()
    def latent_blocks(self, inputs: ModelInputs) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(encoded, imputed) latent blocks per modality of the refit network (bagged networks have
        latent blocks of their own); imputed_k comes from the other present modalities only, so it
        can be compared with encoded_k where modality k is present."""
        latent = encode_in_chunks(self.module, inputs.xs)
        enc = [b.numpy() for b in latent]
        imputed = []
        for k in range(len(self.modalities)):
            without = inputs.present.clone()
            without[:, k] = False
            imputed.append(self.module.impute(latent, without)[k].numpy())
        return enc, imputed

    def imputation_r2(self, inputs: ModelInputs) -> dict[str, float | None]:
        """Held-out R^2 of each latent block imputed from the others, over samples that have the
        modality and at least one other (pooled over latent nodes)."""
        enc, imputed = self.latent_blocks(inputs)
        present = inputs.present.numpy()
        out = {}
        for k, m in enumerate(self.modalities):
            rows = present[:, k] & (present.sum(axis=1) >= 2)
            out[m] = block_r2(enc[k][rows], imputed[k][rows]) if rows.sum() >= 2 else None
        return out

    # -- evaluation on rows of a cohort ------------------------------------------------------

    def _evaluate(self, data: CohortArrays, rows: np.ndarray) -> tuple[dict, dict[str, pd.DataFrame], dict]:
        """Held-out metrics with all modalities, each single modality (others imputed) and each
        single modality with mean-fill, plus the imputation R^2 per block."""
        inputs = self._inputs_from_arrays(data, rows)
        labels = data.labels[rows] if data.labels is not None else None
        input_sets = {"all": inputs}
        for k, m in enumerate(self.modalities):
            only = inputs.present.clone()
            only[:, [j for j in range(len(self.modalities)) if j != k]] = False
            input_sets[m] = ModelInputs(inputs.obs_names, inputs.modalities, inputs.xs, only)
        flat, tables = {}, {}
        names = CLASSIFICATION_METRICS if self.task == "classification" else REGRESSION_METRICS
        for key, given in list(input_sets.items()) + [(f"{m}_meanfill", input_sets[m]) for m in self.modalities]:
            table = self.predict(given, fill="mean" if key.endswith("_meanfill") else "impute", labels=labels)
            tables[key] = table
            scores = self.metrics(table)
            for name in names:
                flat[f"{key}_{name}"] = _float(scores.get(name))
        r2 = self.imputation_r2(inputs)
        for m, v in r2.items():
            flat[f"r2_{m}"] = _float(v)
        return flat, tables, r2

    # -- persistence ----------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write `model.pt` (state_dict), `config.json` and the training report files into the
        directory `path` (replaced atomically)."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise InputError(path, "exists and is not a directory")
        with atomic_path(path, suffix="") as tmp:
            tmp.mkdir()
            state = dict(self.module.state_dict())
            for i, net in enumerate(self.members[1:], start=1):
                state.update({f"{MEMBER_PREFIX}{i}.{k}": v for k, v in net.state_dict().items()})
            torch.save(state, tmp / MODEL_FILE)
            (tmp / CONFIG_FILE).write_text(json.dumps(_jsonable(self.config), indent=1) + "\n")
            if self.history is not None:
                self.history.to_csv(tmp / "training_history.tsv", sep="\t", index=False, float_format="%.6f",
                                    lineterminator="\n")
            if self.cv_results is not None:
                self.cv_results.to_csv(tmp / "cv_results.tsv", sep="\t", index=False, float_format="%.6f",
                                       lineterminator="\n")
            if self.cv_summary is not None:
                self.cv_summary.to_csv(tmp / "cv_summary.tsv", sep="\t", index=False, float_format="%.6f",
                                       lineterminator="\n")
            if self.imputation is not None:
                (tmp / "imputation.json").write_text(json.dumps(_jsonable(self.imputation), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> DeepGAMI:
        """Rebuild a saved model; the weights are read with `torch.load(..., weights_only=True)`."""
        path = Path(path)
        config_path, weights_path = path / CONFIG_FILE, path / MODEL_FILE
        if not path.is_dir():
            raise InputError(path, "model directory not found")
        for p in (config_path, weights_path):
            if not p.is_file():
                raise InputError(path, f"not a DeepGAMI model directory (no {p.name})")
        try:
            config = json.loads(config_path.read_text())
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
        except (json.JSONDecodeError, RuntimeError, OSError) as err:
            raise InputError(path, f"unreadable model files ({str(err).splitlines()[0]})") from None
        if config.get("format_version") != CONFIG_FORMAT:
            raise InputError(config_path, f"unsupported model format {config.get('format_version')!r}")
        net = config["network"]
        networks = []
        for i in range(int(net.get("n_members", 1))):
            prefix = f"{MEMBER_PREFIX}{i}." if i else ""
            own = {k[len(prefix):]: v for k, v in state.items()
                   if k.startswith(prefix) and (prefix or not k.startswith(MEMBER_PREFIX))}
            try:
                # Edges live in the state_dict buffers; pass them to the constructor so any structure
                # the layer derives from them at construction is rebuilt from the real edges.
                edges = [(own[f"encoders.{k}.src"], own[f"encoders.{k}.dst"]) if sparse else None
                         for k, sparse in enumerate(net["sparse"])]
                module = DeepGAMINetwork(net["n_inputs"], net["n_latent"], net["n_outputs"], edges=edges,
                                         hidden_layers=net["hidden_layers"], dropout=net["dropout"],
                                         imputer=net["imputer"], encoder_activation=net["encoder_activation"],
                                         latent_norm=net["latent_norm"])
                module.load_state_dict(own)
            except (RuntimeError, KeyError) as err:
                raise InputError(weights_path, "weights do not match config.json "
                                               f"(network {i}: {str(err).splitlines()[0]})") from None
            module.eval()
            networks.append(module)
        preprocessors = [ModalityPreprocessor.from_dict(config["preprocessing"][m]) for m in config["modalities"]]
        model = cls(networks[0], config, preprocessors, bagged=networks[1:])
        for name, attr in (("training_history.tsv", "history"), ("cv_results.tsv", "cv_results"),
                           ("cv_summary.tsv", "cv_summary")):
            if (path / name).is_file():
                setattr(model, attr, pd.read_csv(path / name, sep="\t"))
        if (path / "imputation.json").is_file():
            model.imputation = json.loads((path / "imputation.json").read_text())
        return model


def fit_predict_fold(
    mdata: md.MuData | CohortArrays,
    train_idx: Sequence[int],
    test_idx: Sequence[int],
    params: dict,
    seed: int = 0,
    prior_override: PriorOverride | None = None,
    on_epoch: Callable[[int, float, float | None], None] | None = None,
) -> FoldResult:
    """Fit one parameter setting on rows `train_idx` (positions in `mdata.obs_names`) and score it on
    `test_idx`: the building block of `deepgami evaluate` and of ablations.

    `params` is a full params dict whose grid has one value per entry, or a flat setting.
    `prior_override` maps a modality to another edge list `(src, dst)` in the indices of
    `cohort.modality_edges` (e.g. a random network of the same size). Preprocessing and early
    stopping only ever see `train_idx` rows.
    """
    data = mdata if isinstance(mdata, CohortArrays) else read_arrays(mdata, prior_override)
    setting = as_setting(params, dense=data.latent_nodes is None)
    test_idx = np.asarray(test_idx, dtype=np.int64)
    with _threads(data):
        model = DeepGAMI.fit_bagged(data, np.asarray(train_idx, dtype=np.int64), setting, seed, on_epoch=on_epoch)
        flat, tables, r2 = model._evaluate(data, test_idx)
    metrics = {key: model.metrics(table) for key, table in tables.items()}
    return FoldResult(model, metrics, tables, r2, model.history)


# -- small helpers ----------------------------------------------------------------------------------

def _float(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if np.isnan(value) else value


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def _unflatten(row: dict, key: str) -> dict:
    prefix = f"{key}_"
    return {k[len(prefix):]: v for k, v in row.items() if isinstance(k, str) and k.startswith(prefix)}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return None if np.isnan(obj) else float(obj)
    return obj


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_description(self, text: str) -> None: ...
    def set_postfix_str(self, text: str, refresh: bool = True) -> None: ...
    def close(self) -> None: ...


def _progress_bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="fit", file=sys.stderr, dynamic_ncols=True, leave=False)


def _epoch_hook(bar: Any) -> Callable[[int, float, float | None], None]:
    def hook(epoch: int, train_loss: float, val_loss: float | None) -> None:
        text = f"epoch {epoch} train {train_loss:.3f}" + (f" val {val_loss:.3f}" if val_loss is not None else "")
        bar.set_postfix_str(text, refresh=False)

    return hook
