"""`deepgami.tl.predict` and `deepgami.tl.prioritize`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mudata as md
import pandas as pd

from deepgami.attribution.integrated_gradients import prioritize as _prioritize
from deepgami.model import DeepGAMI
from deepgami.model._validate import check_modalities, check_mudata
from deepgami.utils import jsonable


def predict(
    model: DeepGAMI,
    mdata: md.MuData,
    modalities: Sequence[str] | None = None,
    *,
    fill: str = "impute",
    key_added: str = "deepgami",
    copy: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, md.MuData]:
    """Predict every sample's phenotype from all or some modalities and store the result in `mdata`.

    Parameters
    ----------
    model
        A trained model.
    mdata
        The cohort; features are matched by name.
    modalities
        The modalities to give (default: every model modality the cohort has); the latent blocks
        of the others are imputed from them.
    fill
        ``impute`` (the model's imputers) or ``mean`` (the training mean, a baseline).
    key_added
        Prefix of the slots written: ``obs[f"{key_added}_predicted"]``, ``obsm[f"{key_added}_proba"]``
        (classification) and ``uns[key_added]``.
    copy
        Write into a copy of `mdata` and return it too.

    Returns
    -------
    pandas.DataFrame or (pandas.DataFrame, MuData)
        The prediction table (`sample`, `label`, `predicted`, `prob_<class>`, `modalities`), and the
        copy when `copy` is True.

    Examples
    --------
    >>> table = dg.tl.predict(model, mdata, modalities=["snp"], key_added="snp_only")  # doctest: +SKIP
    >>> mdata.obs["snp_only_predicted"]  # doctest: +SKIP
    """
    modalities = _check_args(model, mdata, modalities)
    target = mdata.copy() if copy else mdata
    table = model.predict(target, modalities, fill=fill)
    index = target.obs_names
    target.obs[f"{key_added}_predicted"] = pd.Series(table["predicted"].to_numpy(), index=index)
    if model.task == "classification":
        proba = table[[f"prob_{c}" for c in model.classes]].to_numpy()
        target.obsm[f"{key_added}_proba"] = pd.DataFrame(
            proba, index=index, columns=list(model.classes)
        )
    known = "label" in table and table["label"].notna().any()
    target.uns[key_added] = jsonable(
        {
            "modalities": list(modalities)
            if modalities is not None
            else [m for m in model.modalities if m in target.mod],
            "fill": fill,
            "metrics": _plain_metrics(model.metrics(table)) if known else {},
        }
    )
    return (table, target) if copy else table


def prioritize(
    model: DeepGAMI,
    mdata: md.MuData,
    *,
    key_added: str = "deepgami_prioritize",
    **options: Any,
) -> dict[str, pd.DataFrame]:
    """Rank input features, latent nodes and prior links by integrated gradients.

    Parameters
    ----------
    model
        A trained model.
    mdata
        The cohort; the samples (of ``split``, when given) that have every model modality are explained.
    key_added
        ``mdata.uns[key_added]`` receives the three tables.
    **options
        Passed to `deepgami.attribution.integrated_gradients.prioritize`: ``split`` (explain only that
        split), ``classes``, ``baseline`` (``zero`` or ``mean``), ``target``, ``n_steps``, ``method``,
        ``networks``.

    Returns
    -------
    dict
        ``{"features": ..., "latent": ..., "links": ...}`` DataFrames with columns such as source,
        target, modality, prior, class, importance, rank (as `deepgami prioritize` writes).
    """
    _check_args(model, mdata)
    result = _prioritize(model, mdata, **options)
    tables = {"features": result.features, "latent": result.latent, "links": result.links}
    mdata.uns[key_added] = dict(tables)
    return tables


def _plain_metrics(metrics: dict) -> dict:
    """Scalar metrics only (nested confusion matrices do not fit every MuData writer)."""
    return {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}


def _check_args(model: object, mdata: object, modalities: object = None) -> list[str] | None:
    """TypeError naming the argument of a wrong type; the modality names as a list."""
    if not isinstance(model, DeepGAMI):  # e.g. its path: DeepGAMI.load(path) reads one
        raise TypeError(
            "model must be a DeepGAMI model (DeepGAMI.fit or DeepGAMI.load), "
            f"got {type(model).__name__}"
        )
    check_mudata(mdata)
    return check_modalities(modalities)
