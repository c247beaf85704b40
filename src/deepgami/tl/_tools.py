"""`deepgami.tl.predict`, `deepgami.tl.prioritize` and `deepgami.tl.enrichment`, scanpy style:
each writes predictable slots of the cohort and returns None, or with ``copy=True`` the written
copy (the cohort itself is left as it was)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import mudata as md
import pandas as pd

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
) -> md.MuData | None:
    """Predict every sample's phenotype from all or some modalities and store the result in `mdata`.

    Parameters
    ----------
    model : DeepGAMI
        A trained model.
    mdata : mudata.MuData
        The cohort; features are matched by name.
    modalities : sequence of str or None, default None
        The modalities to give (default: every model modality the cohort has); the latent blocks
        of the others are imputed from them.
    fill : {"impute", "mean"}, default "impute"
        ``impute`` (the model's imputers) or ``mean`` (the training mean, a baseline).
    key_added : str, default "deepgami"
        Names the slots written: ``obs[f"{key_added}_predicted"]``, ``obsm[f"{key_added}_proba"]``
        (classification), and ``uns[key_added]`` with ``params`` (modalities, fill) and
        ``metrics`` (when labels are known). A model of several targets writes
        ``obs[f"{key_added}_{target}_predicted"]`` (survival: ``_risk``, ``_risk_group``) and
        ``obsm[f"{key_added}_{target}_proba"]`` per target, and per-target metrics.
    copy : bool, default False
        Write into a copy of `mdata` and return it.

    Returns
    -------
    mudata.MuData or None
        The written copy with `copy`, else None (`mdata` is written). The prediction table
        itself is :meth:`DeepGAMI.predict`'s.

    Raises
    ------
    TypeError
        When `model` is not a :class:`~deepgami.DeepGAMI`, `mdata` not a MuData, or
        `modalities` not strings.

    Examples
    --------
    >>> dg.tl.predict(model, mdata, modalities=["snp"], key_added="snp_only")  # doctest: +SKIP
    >>> mdata.obs["snp_only_predicted"]  # doctest: +SKIP
    """
    modalities = _check_args(model, mdata, modalities)
    target = mdata.copy() if copy else mdata
    table = model.predict(target, modalities, fill=fill)
    index = target.obs_names
    if model.targets is not None:
        known = _store_targets(model, target, table, key_added)
    else:
        target.obs[f"{key_added}_predicted"] = pd.Series(table["predicted"].to_numpy(), index=index)
        known = "label" in table and table["label"].notna().any()
    if model.task == "classification":
        proba = table[[f"prob_{c}" for c in model.classes]].to_numpy()
        target.obsm[f"{key_added}_proba"] = pd.DataFrame(
            proba, index=index, columns=list(model.classes)
        )
    given = list(modalities) if modalities is not None else model.modalities
    result = jsonable(
        {
            "params": {"modalities": [m for m in given if m in target.mod], "fill": fill},
            "metrics": _metrics_slot(model, table) if known else {},
        }
    )
    # The default key is the cohort's own slot (priors, split, targets): add to it, never replace.
    target.uns[key_added] = {**dict(target.uns.get(key_added, {})), **result}
    return target if copy else None


def _store_targets(model: DeepGAMI, mdata: md.MuData, table: pd.DataFrame, key: str) -> bool:
    """Several targets: ``obs[f"{key}_{target}_predicted"]`` (survival: ``_risk`` and
    ``_risk_group``) and ``obsm[f"{key}_{target}_proba"]`` per classes target; whether any target
    value is known."""
    index = mdata.obs_names
    for spec in model.targets:
        name = spec["name"]
        columns = ("risk", "risk_group") if spec["kind"] == "survival" else ("predicted",)
        for column in columns:
            values = table[f"{name}:{column}"].to_numpy()
            mdata.obs[f"{key}_{name}_{column}"] = pd.Series(values, index=index)
        if spec["kind"] == "classes":
            proba = table[[f"{name}:prob_{c}" for c in spec["classes"]]].to_numpy()
            mdata.obsm[f"{key}_{name}_proba"] = pd.DataFrame(
                proba, index=index, columns=list(spec["classes"])
            )
    return bool(model.metrics(table))


def prioritize(
    model: DeepGAMI,
    mdata: md.MuData,
    *,
    split: str | None = None,
    classes: Sequence[str] | None = None,
    baseline: str = "zero",
    target: str = "logit",
    n_steps: int | None = None,
    method: str | None = None,
    networks: str = "all",
    key_added: str = "deepgami_prioritize",
    copy: bool = False,
) -> md.MuData | None:
    """Rank input features, latent nodes and prior links by integrated gradients.

    Parameters
    ----------
    model : DeepGAMI
        A trained model.
    mdata : mudata.MuData
        The cohort; the samples (of `split`) that have every model modality are explained.
    split : str or None, default None
        Explain only the samples of this ``obs['split']`` value (default: all).
    classes : sequence of str or None, default None
        The classes to explain (default: all).
    baseline : {"zero", "mean"}, default "zero"
        ``zero`` (the training mean under standard scaling) or ``mean``.
    target : {"logit", "probability"}, default "logit"
        ``logit`` (centered) or ``probability``.
    n_steps : int or None, default None
        The integral's number of steps, as in Captum (default: deepgami's).
    method : str or None, default None
        The integral's approximation method, as in Captum (default: deepgami's).
    networks : {"all", "refit"}, default "all"
        ``all`` (every network of a bagged model, averaged) or ``refit``.
    key_added : str, default "deepgami_prioritize"
        ``uns[key_added]`` receives the ``features``, ``latent`` and ``links`` tables, the
        ``params`` of this call and the ``provenance`` (`summary.json` of the command line).
    copy : bool, default False
        Write into a copy of `mdata` and return it.

    Returns
    -------
    mudata.MuData or None
        The written copy with `copy`, else None (`mdata` is written).

    Raises
    ------
    TypeError
        When `model` is not a :class:`~deepgami.DeepGAMI` or `mdata` not a MuData.
    """
    _check_args(model, mdata)
    from deepgami.attribution import integrated_gradients as ig

    params = dict(split=split, classes=classes, baseline=baseline, target=target, networks=networks)
    params["classes"] = None if classes is None else [str(c) for c in classes]
    params["n_steps"] = ig.DEFAULT_N_STEPS if n_steps is None else int(n_steps)
    params["method"] = ig.DEFAULT_METHOD if method is None else method
    result = ig.prioritize(model, mdata, **params)
    out = mdata.copy() if copy else mdata
    tables = {"features": result.features, "latent": result.latent, "links": result.links}
    out.uns[key_added] = {**tables, "params": _h5_safe(jsonable(params))}
    out.uns[key_added]["provenance"] = _h5_safe(jsonable(result.summary))
    return out if copy else None


def enrichment(
    mdata: md.MuData,
    gmt: str | os.PathLike,
    *,
    key: str = "deepgami_prioritize",
    min_size: int = 3,
    max_size: int = 500,
    key_added: str = "deepgami_enrichment",
    copy: bool = False,
) -> md.MuData | None:
    """Over-representation of each class's top-link target genes in the gene sets of a GMT file.

    The selection is the latent genes targeted by a top-decile link of the class (from
    :func:`prioritize`'s ``links`` table); the background is every latent gene of the model (its
    ``latent`` table), as ``deepgami prioritize --gmt`` does.

    Parameters
    ----------
    mdata : mudata.MuData
        A cohort on which :func:`prioritize` stored its tables under `key`.
    gmt : str or os.PathLike
        A GMT file of gene sets (nothing is downloaded).
    key : str, default "deepgami_prioritize"
        The `key_added` of :func:`prioritize`.
    min_size : int, default 3
        Sets whose overlap with the background is smaller are not tested.
    max_size : int, default 500
        Sets whose overlap with the background is larger are not tested.
    key_added : str, default "deepgami_enrichment"
        ``uns[key_added]`` receives the ``table`` (class, gene_set, ..., pvalue, fdr) and the
        ``params``.
    copy : bool, default False
        Write into a copy of `mdata` and return it.

    Returns
    -------
    mudata.MuData or None
        The written copy with `copy`, else None (`mdata` is written).

    Raises
    ------
    ValueError
        When the ``links`` table is empty (a model without prior links).
    """
    from deepgami.attribution.enrichment import read_gmt, top_link_enrichment

    links, latent = mdata.uns[key]["links"], mdata.uns[key]["latent"]
    if links.empty:
        raise ValueError("the links table is empty: enrichment needs a model with prior links")
    top = links[links["top_decile"].astype(bool)]
    # Classes in the order prioritize explained them (a ranked table mixes them).
    classes = [str(c) for c in mdata.uns[key]["provenance"]["classes"]]
    selected = {
        c: sorted(set(top.loc[top["class"].astype(str) == c, "target"].astype(str)))
        for c in classes
    }
    background = list(dict.fromkeys(latent["node"].astype(str)))
    table, summary = top_link_enrichment(selected, background, read_gmt(gmt), min_size, max_size)
    out = mdata.copy() if copy else mdata
    params = {"gmt": str(gmt), "key": key, **summary}
    out.uns[key_added] = {"table": table, "params": _h5_safe(jsonable(params))}
    return out if copy else None


def _metrics_slot(model: DeepGAMI, table: pd.DataFrame) -> dict:
    """What ``uns[key]["metrics"]`` holds: scalar metrics, per target for several targets."""
    metrics = model.metrics(table)
    if model.targets is not None:
        return {name: _plain_metrics(values) for name, values in metrics.items()}
    return _plain_metrics(metrics)


def _plain_metrics(metrics: dict) -> dict:
    """Scalar metrics only (nested confusion matrices do not fit every MuData writer)."""
    return {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}


def _h5_safe(value: object) -> object:
    """`value` with None as "" and other objects (versions) as text: an .h5mu stores neither, and
    the cohort must stay writable."""
    if isinstance(value, dict):
        return {k: _h5_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_h5_safe(v) for v in value]
    if value is None:
        return ""
    return value if type(value) in (str, int, float, bool) else str(value)


def _check_args(model: object, mdata: object, modalities: object = None) -> list[str] | None:
    """TypeError naming the argument of a wrong type; the modality names as a list."""
    if not isinstance(model, DeepGAMI):  # e.g. its path: DeepGAMI.load(path) reads one
        raise TypeError(
            "model must be a DeepGAMI model (DeepGAMI.fit or DeepGAMI.load), "
            f"got {type(model).__name__}"
        )
    check_mudata(mdata)
    return check_modalities(modalities)
