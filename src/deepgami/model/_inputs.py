"""The one ingestion path from a cohort to the network, for fit, predict and attribution:
MuData -> `CohortArrays` (`read_arrays` for training, `read_modalities` for prediction) ->
`align_inputs` -> `ModelInputs` (what the network reads).

Feature alignment: a model remembers, per modality, the names of its input features in encoder
order. `align_inputs` looks those names up in the cohort (any order, extra features ignored). When
predicting, a cohort that covers at least `min_coverage` of a modality's features has the missing
ones filled with their training mean (counted in `ModelInputs.filled`); below that, and always when
training, a missing feature is an InputError, never a silent shift of columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import mudata as md
import numpy as np
import pandas as pd
import torch

from deepgami.data.arrays import CohortArrays
from deepgami.data.lazy_inputs import InputBlock, PreprocessedRows
from deepgami.data.preprocessing import ModalityPreprocessor
from deepgami.errors import InputError


@dataclass
class ModelInputs:
    """Inputs per model modality (preprocessed on demand, zeros where absent) and presence (n x K).

    Parameters
    ----------
    obs_names : list of str
        The samples' names.
    modalities : list of str
        The model's modalities, in encoder order.
    xs : list of InputBlock
        The inputs of each modality, preprocessed on demand.
    present : torch.Tensor
        Which modalities each sample has (n x K, boolean).
    filled : dict of str to int, default {}
        Per modality: features filled with their training mean.
    """

    obs_names: list[str]
    modalities: list[str]
    xs: list[InputBlock]
    present: torch.Tensor
    filled: dict[str, int] = field(
        default_factory=dict
    )  # per modality: features filled with their training mean

    def rows(self, idx: np.ndarray) -> ModelInputs:
        """Return the inputs of rows `idx` (positions).

        Parameters
        ----------
        idx : numpy.ndarray
            The positions of the rows.

        Returns
        -------
        ModelInputs
            The rows' inputs.
        """
        t = torch.as_tensor(idx, dtype=torch.long)
        return ModelInputs(
            [self.obs_names[i] for i in idx],
            self.modalities,
            [x[t] for x in self.xs],
            self.present[t],
            self.filled,
        )

    def only(self, keep: Sequence[int]) -> ModelInputs:
        """Return the same inputs with every modality outside positions `keep` marked absent.

        The absent modalities are imputed.

        Parameters
        ----------
        keep : Sequence of int
            The positions of the modalities to keep.

        Returns
        -------
        ModelInputs
            The inputs with the other modalities absent.
        """
        present = self.present.clone()
        present[:, [k for k in range(len(self.modalities)) if k not in keep]] = False
        return ModelInputs(self.obs_names, self.modalities, self.xs, present, self.filled)


def align_inputs(
    preprocessors: Sequence[ModalityPreprocessor],
    data: CohortArrays,
    rows: np.ndarray | None = None,
    given: Sequence[str] | None = None,
    min_coverage: float = 1.0,
) -> ModelInputs:
    """Turn rows `rows` (default: all) of `data` into the network's inputs.

    Each modality's columns are looked up by the names its preprocessor was fitted on and
    preprocessed when a (mini)batch is materialized. `data.modalities` must be the model's
    modalities, in order. A modality outside `given` (default: every one the cohort has) or
    without a matrix is zeros and absent, so the network imputes it. A modality that has at least
    `min_coverage` (a share, default 1: all) of the model's features gets the missing ones at
    their training mean; below it, an InputError names the coverage.

    Parameters
    ----------
    preprocessors : Sequence of ModalityPreprocessor
        The model's fitted preprocessors, one per modality.
    data : CohortArrays
        The cohort's arrays, with the model's modalities in order.
    rows : numpy.ndarray or None, default None
        The rows to take (None: all).
    given : Sequence of str or None, default None
        The modalities given (None: every one the cohort has).
    min_coverage : float, default 1.0
        The share of a modality's model features the cohort must have.

    Returns
    -------
    ModelInputs
        The network's inputs.

    Raises
    ------
    InputError
        When a given modality has less than `min_coverage` of the model's features.
    """
    rows = np.arange(len(data.obs_names)) if rows is None else np.asarray(rows, dtype=np.int64)
    present = data.present[rows]
    xs: list[InputBlock] = []
    filled: dict[str, int] = {}
    for k, (m, prep) in enumerate(zip(data.modalities, preprocessors, strict=False)):
        if data.X[k] is None or (given is not None and m not in given):
            present[:, k] = False
            xs.append(torch.zeros((len(rows), len(prep.features)), dtype=torch.float32))
            continue
        idx = data.var_names[k].get_indexer(pd.Index(prep.features))
        missing = idx < 0
        if not missing.any():
            xs.append(PreprocessedRows(data.X[k], rows, idx, prep, present[:, k], m))
            continue
        coverage = 1 - missing.mean()
        if coverage < min_coverage:
            names = [f for f, gone in zip(prep.features, missing, strict=False) if gone]
            raise InputError(
                None,
                f"modality '{m}' of the cohort has {coverage:.1%} of the model's {len(idx)} input "
                f"features ({int(missing.sum())} missing, e.g. {', '.join(names[:3])}), below the "
                f"minimum coverage {min_coverage:g}",
            )
        # A float copy with NaN where a feature is missing: preprocessing fills NaN with the training
        # mean. Only a cohort that lacks features pays for the copy.
        block = np.full((data.X[k].shape[0], len(idx)), np.nan, dtype=np.float32)
        block[:, ~missing] = data.X[k][:, idx[~missing]]
        filled[m] = int(missing.sum())
        xs.append(PreprocessedRows(block, rows, np.arange(len(idx)), prep, present[:, k], m))
    return ModelInputs(
        [str(data.obs_names[i]) for i in rows],
        list(data.modalities),
        xs,
        torch.from_numpy(np.ascontiguousarray(present)),
        filled,
    )


def given_modalities(
    model_modalities: Sequence[str], mdata: md.MuData, modalities: Sequence[str] | None
) -> list[str]:
    """Return the modalities a prediction uses.

    These are `modalities` (checked), or every model modality the cohort has.

    Parameters
    ----------
    model_modalities : Sequence of str
        The model's modalities.
    mdata : mudata.MuData
        The cohort.
    modalities : Sequence of str or None
        The modalities asked for (None: every model modality the cohort has).

    Returns
    -------
    list of str
        The modalities to give, without duplicates.

    Raises
    ------
    InputError
        When a modality is unknown to the model or absent from the cohort, or none is left.
    """
    if modalities is None:
        use = [m for m in model_modalities if m in mdata.mod]
        if not use:
            raise InputError(
                None,
                f"the cohort has none of the model's modalities ({', '.join(model_modalities)})",
            )
        return use
    use = list(dict.fromkeys(modalities))
    unknown = [m for m in use if m not in model_modalities]
    if unknown:
        raise InputError(
            None, f"unknown modality '{unknown[0]}'; the model has: {', '.join(model_modalities)}"
        )
    absent = [m for m in use if m not in mdata.mod]
    if absent:
        raise InputError(
            None, f"the cohort has no modality '{absent[0]}' (it has: {', '.join(mdata.mod)})"
        )
    if not use:
        raise InputError(None, "give at least one modality")
    return use
