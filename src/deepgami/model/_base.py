"""`BaseModel`: what a fitted DeepGAMI model is and does without training: its registry (config),
inputs, prediction from any subset of modalities, metrics and the imputed latent blocks.

`DeepGAMI` (deepgami_model.py) adds fitting, saving and loading; the fitting modules below it
(`_fitting`, `_tuning`, `_evaluate`) build and score instances of this class, so they never import
the user-facing class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mudata as md
import numpy as np
import pandas as pd
import torch

from deepgami.data import cohort
from deepgami.data.arrays import CohortArrays, read_modalities
from deepgami.data.lazy_inputs import chunk_rows, materialize
from deepgami.data.preprocessing import ModalityPreprocessor
from deepgami.errors import InputError
from deepgami.metrics import block_r2, classification_metrics, regression_metrics
from deepgami.model._inputs import ModelInputs, align_inputs, given_modalities
from deepgami.model._targets import (
    output_values,
    prediction_columns,
    target_labels,
    target_metrics,
)
from deepgami.model._validate import check_modalities, check_mudata
from deepgami.nn.network import DeepGAMINetwork
from deepgami.train import current_device, device_scope, encode_in_chunks, to_device

# Share of a modality's model features a cohort must have for prediction; the rest get their training mean.
MIN_COVERAGE = 0.9


class BaseModel:
    """A fitted network (`module`), its fitted preprocessing and its config.

    The config is the data registry: modalities, feature order, latent nodes, classes,
    preprocessing, setting, seed, versions.

    Parameters
    ----------
    module : DeepGAMINetwork
        The refit network.
    config : dict
        The model's config (what config.json holds).
    preprocessors : Sequence of ModalityPreprocessor
        One fitted preprocessor per modality, in `config["modalities"]` order.
    bagged : Sequence of DeepGAMINetwork, default ()
        Further networks whose outputs are averaged with `module`'s (they share its preprocessing).
    """

    def __init__(
        self,
        module: DeepGAMINetwork,
        config: dict,
        preprocessors: Sequence[ModalityPreprocessor],
        bagged: Sequence[DeepGAMINetwork] = (),
    ) -> None:
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

    # -- the registry -------------------------------------------------------------------------

    @property
    def modalities(self) -> list[str]:
        """The model's modalities, in encoder order."""
        return list(self.config["modalities"])

    @property
    def task(self) -> str:
        """``classification`` or ``regression``."""
        return str(self.config["task"])

    @property
    def targets(self) -> list[dict] | None:
        """Several targets: the config's ``targets`` entries (name, kind, outputs...); else None."""
        return self.config.get("targets")

    @property
    def classes(self) -> list[str]:
        """Class names in output order (empty for regression)."""
        return list(self.config["classes"])

    @property
    def latent_nodes(self) -> list[str]:
        """Names of the latent nodes (prior target genes), or `latent_0..` in dense mode."""
        nodes = self.config.get("latent_nodes")
        return (
            list(nodes)
            if nodes is not None
            else [f"latent_{i}" for i in range(self.module.n_latent)]
        )

    def features(self, modality: str) -> list[str]:
        """Return the input features of `modality`, in encoder order.

        Parameters
        ----------
        modality : str
            One of the model's modalities.

        Returns
        -------
        list of str
            The modality's input features.
        """
        return list(self.preprocessors[self.modalities.index(modality)].features)

    def edges(self, modality: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Return the edges of `modality`'s sparse encoder, else None.

        The prior links come first, then any self-edges (`config["network"]["prior_edges"]` counts
        the former).

        Parameters
        ----------
        modality : str
            One of the model's modalities.

        Returns
        -------
        tuple of numpy.ndarray or None
            (src into `features(modality)`, dst into `latent_nodes`) of a sparse encoder; None for a
            dense one.
        """
        enc = self.module.encoders[self.modalities.index(modality)]
        if isinstance(enc, torch.nn.Linear):
            return None
        return enc.src.numpy().copy(), enc.dst.numpy().copy()

    # -- inputs -------------------------------------------------------------------------------

    def inputs(self, data: CohortArrays, rows: np.ndarray | None = None) -> ModelInputs:
        """Turn rows `rows` of cohort arrays into network inputs.

        This is the path of fitting and evaluation.

        Parameters
        ----------
        data : CohortArrays
            The cohort's arrays, with the model's modalities in its order.
        rows : numpy.ndarray or None, default None
            The rows to take (None: every row).

        Returns
        -------
        ModelInputs
            The preprocessed inputs and presence masks of the rows.

        Raises
        ------
        InputError
            If the cohort's modalities differ from the model's.
        """
        if data.modalities != self.modalities:
            raise InputError(
                None,
                f"cohort modalities {data.modalities} differ from the model's {self.modalities}",
            )
        return align_inputs(self.preprocessors, data, rows)

    def prepare_inputs(
        self,
        mdata: md.MuData,
        modalities: Sequence[str] | None = None,
        min_coverage: float = MIN_COVERAGE,
    ) -> ModelInputs:
        """Build inputs per model modality and presence masks for every sample of `mdata`.

        `modalities` restricts which modalities are given (default: every model modality the
        cohort has); the rest are marked absent, so the network imputes their blocks. A sample's
        presence also requires it to have the modality in the cohort. A given modality that has at
        least `min_coverage` of the model's features gets the missing ones at their training mean
        (counted in the result's `filled`); below that it is an InputError.

        Parameters
        ----------
        mdata : mudata.MuData
            The cohort.
        modalities : Sequence of str or None, default None
            The modalities to give (None: every model modality the cohort has).
        min_coverage : float, default MIN_COVERAGE
            The share of a modality's model features the cohort must have.

        Returns
        -------
        ModelInputs
            The preprocessed inputs, presence masks and filled-feature counts.

        Raises
        ------
        TypeError
            If `mdata` is not a MuData or `modalities` does not hold modality names.
        InputError
            If a modality is unknown or absent, or a given modality has too few of the model's
            features.
        """
        check_mudata(mdata, "data")
        use = given_modalities(self.modalities, mdata, check_modalities(modalities))
        return align_inputs(
            self.preprocessors,
            read_modalities(mdata, self.modalities),
            given=use,
            min_coverage=min_coverage,
        )

    # -- prediction ---------------------------------------------------------------------------

    @torch.no_grad()
    def _forward(self, inputs: ModelInputs, fill: str = "impute") -> np.ndarray:
        """Probabilities (n x classes) or predicted values (n,), averaged over the member networks;
        NaN for samples with no modality."""
        device = current_device()  # the `device` of predict / predict_proba (CPU: nothing moves)
        for net in self.members:
            net.eval()
            if device.type != "cpu":
                net.to(device)
        chunks = []
        step = chunk_rows(inputs.xs)
        for start in range(0, len(inputs.obs_names), step):
            sl = slice(start, start + step)
            xs = to_device(
                materialize([x[sl] for x in inputs.xs]), device
            )  # once per chunk, for every member
            (present,) = to_device([inputs.present[sl]], device)
            logits = [net(xs, present, fill=fill).logits.double().cpu() for net in self.members]
            if self.targets is not None:
                chunks.append(output_values(self.targets, logits))
            elif self.task == "regression":
                t = self.config["target"]
                chunks.append(torch.stack(logits).mean(0)[:, 0].numpy() * t["std"] + t["mean"])
            else:
                chunks.append(
                    torch.stack([torch.softmax(z, dim=1) for z in logits]).mean(0).numpy()
                )
        n_out = 0 if self.task == "regression" else len(self.classes)
        if self.targets is not None:
            n_out = int(self.config["network"]["n_outputs"])
        if device.type != "cpu":
            for net in self.members:
                net.to("cpu")
        values = np.concatenate(chunks) if chunks else np.zeros((0, n_out) if n_out else 0)
        none = ~inputs.present.numpy().any(axis=1)
        values[none] = np.nan
        return values

    def predict_proba(
        self,
        data: md.MuData | ModelInputs,
        modalities: Sequence[str] | None = None,
        fill: str = "impute",
        device: str | torch.device | None = None,
        min_coverage: float = MIN_COVERAGE,
    ) -> np.ndarray:
        """Class probabilities (samples x classes, columns in `classes` order).

        Parameters
        ----------
        data, modalities, fill, device, min_coverage
            As for `predict`.

        Returns
        -------
        numpy.ndarray
            NaN rows for samples with none of the given modalities.
        """
        if self.task == "regression":
            raise ValueError("predict_proba is for classification models; use predict")
        inputs = (
            data
            if isinstance(data, ModelInputs)
            else self.prepare_inputs(data, modalities, min_coverage)
        )
        with device_scope(device):
            return self._forward(inputs, fill)

    def predict(
        self,
        data: md.MuData | ModelInputs,
        modalities: Sequence[str] | None = None,
        fill: str = "impute",
        labels: Sequence[Any] | None = None,
        device: str | torch.device | None = None,
        min_coverage: float = MIN_COVERAGE,
    ) -> pd.DataFrame:
        """Predict every sample of a cohort from all or some of its modalities.

        Parameters
        ----------
        data
            A cohort, or inputs from `prepare_inputs`.
        modalities
            The modalities to give (default: all the cohort has); the others' blocks are imputed.
        fill
            ``impute`` (the model's imputers) or ``mean`` (the training mean, a baseline).
        labels
            Known labels per sample (default: ``mdata.obs['label']`` when there is one).
        device
            Where the networks run (``cpu``, ``cuda``, a `torch.device`; None: the enclosing
            `deepgami.train.device_scope`, else the CPU). Results come back to the CPU.
        min_coverage
            The share of a modality's model features the cohort must have; the missing ones are
            filled with their training mean (default 0.9). Below it, an InputError.

        Returns
        -------
        pandas.DataFrame
            One row per sample: `sample`, `label` (when known), `predicted`, `prob_<class>` per
            class, `modalities` (the given modalities the sample has, comma-separated).
            ``table.attrs["filled_features"]``: per modality, how many features were filled.
        """
        if isinstance(data, ModelInputs):
            inputs = data
        else:
            inputs = self.prepare_inputs(data, modalities, min_coverage)
            if labels is None and self.targets is not None:
                labels = target_labels(data, self.targets)
            elif labels is None and cohort.LABEL in data.obs:
                labels = data.obs[cohort.LABEL].tolist()
        with device_scope(device):
            values = self._forward(inputs, fill)
        return self._prediction_table(inputs, values, labels)

    def _prediction_table(
        self, inputs: ModelInputs, values: np.ndarray, labels: Sequence[Any] | None
    ) -> pd.DataFrame:
        """`predict`'s table from the averaged outputs (probabilities, or values)."""
        table = pd.DataFrame({"sample": inputs.obs_names})
        present = inputs.present.numpy()
        if self.targets is not None:
            given = labels if isinstance(labels, pd.DataFrame) or labels is None else None
            for key, column in prediction_columns(self.targets, values, given).items():
                table[key] = column
        if labels is not None and self.targets is None:
            table["label"] = [
                None if pd.isna(v) else (float(v) if self.task == "regression" else str(v))
                for v in labels
            ]
        if self.task == "regression":
            table["predicted"] = values
        elif self.targets is None:
            pred = np.array(
                [self.classes[i] for i in np.nan_to_num(values, nan=0.0).argmax(axis=1)],
                dtype=object,
            )
            pred[~present.any(axis=1)] = None
            table["predicted"] = pred
            for c, cls_name in enumerate(self.classes):
                table[f"prob_{cls_name}"] = values[:, c]
        table["modalities"] = [
            ",".join(m for m, p in zip(self.modalities, row, strict=False) if p) for row in present
        ]
        table.attrs["filled_features"] = dict(inputs.filled)
        return table

    def metrics(self, table: pd.DataFrame) -> dict:
        """Compute metrics of a `predict` table over rows with a known label (and a prediction).

        Parameters
        ----------
        table : pandas.DataFrame
            What `predict` returned.

        Returns
        -------
        dict
            Classification: accuracy, balanced_accuracy, auc, f1_macro, per-class recall, ...;
            regression: mse, r2, pearson. Empty without labels.
        """
        if self.targets is not None:
            return target_metrics(table, self.targets)
        if "label" not in table:
            return {}
        ok = table["label"].notna() & table["predicted"].notna()
        if self.task == "regression":
            return regression_metrics(
                table.loc[ok, "label"].astype(float), table.loc[ok, "predicted"].astype(float)
            )
        known = ok & table["label"].isin(self.classes)
        proba = table.loc[known, [f"prob_{c}" for c in self.classes]].to_numpy()
        out = classification_metrics(table.loc[known, "label"], proba, self.classes)
        out["n_excluded_unknown_label"] = int((ok & ~known).sum())
        return out

    # -- imputation ---------------------------------------------------------------------------

    @torch.no_grad()
    def latent_blocks(self, inputs: ModelInputs) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Compute the (encoded, imputed) latent blocks per modality of the refit network.

        Bagged networks have latent blocks of their own. imputed_k comes from the other present
        modalities only, so it can be compared with encoded_k where modality k is present.

        Parameters
        ----------
        inputs : ModelInputs
            The inputs and presence masks of the samples.

        Returns
        -------
        encoded : list of numpy.ndarray
            Each modality's encoded latent block (samples x latent nodes).
        imputed : list of numpy.ndarray
            Each modality's latent block imputed from the other present modalities.
        """
        latent = encode_in_chunks(self.module, inputs.xs)
        enc = [b.numpy() for b in latent]
        imputed = []
        for k in range(len(self.modalities)):
            without = inputs.present.clone()
            without[:, k] = False
            imputed.append(self.module.impute(latent, without)[k].numpy())
        return enc, imputed

    def imputation_r2(self, inputs: ModelInputs) -> dict[str, float | None]:
        """Compute the held-out R^2 of each latent block imputed from the others.

        It is taken over samples that have the modality and at least one other (pooled over latent
        nodes).

        Parameters
        ----------
        inputs : ModelInputs
            The inputs and presence masks of the samples.

        Returns
        -------
        dict of str to float or None
            Each modality's R^2 (None when fewer than two samples qualify).
        """
        enc, imputed = self.latent_blocks(inputs)
        present = inputs.present.numpy()
        out = {}
        for k, m in enumerate(self.modalities):
            rows = present[:, k] & (present.sum(axis=1) >= 2)
            out[m] = block_r2(enc[k][rows], imputed[k][rows]) if rows.sum() >= 2 else None
        return out
