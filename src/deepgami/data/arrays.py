"""A cohort as arrays (`CohortArrays`): what every fit, prediction, the baselines and evaluation read
from a MuData, once, without torch. `read_arrays` reads a cohort for training (priors and latent
nodes included); `read_modalities` reads only the matrices of given modalities, for prediction.
`usable_rows` is the one rule for which rows a fit trains on; `self_edges` the edges from latent
genes measured in a guided modality to their own nodes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import mudata as md
import numpy as np
import pandas as pd

from deepgami.data import cohort
from deepgami.data.preprocessing import per_modality
from deepgami.data.targets import TargetArrays, read_target_arrays
from deepgami.errors import InputError

PriorOverride = Mapping[str, tuple[np.ndarray, np.ndarray] | tuple[str, np.ndarray, np.ndarray]]


@dataclass
class CohortArrays:
    """A cohort as arrays, read once from a MuData.

    Raw matrices per modality (aligned to `obs_names`), presence, labels, latent nodes and each
    modality's prior edges (src into its features, dst into latent nodes).

    A modality the cohort lacks (only from `read_modalities`) has `X` None, no variables and no
    presence.

    Parameters
    ----------
    obs_names : pandas.Index
        Sample names; rows of every matrix follow them.
    modalities : list of str
        Modality names, in order.
    X : list of numpy.ndarray or None
        Raw matrix per modality (samples x features, as stored), None for a modality the cohort
        lacks.
    var_names : list of pandas.Index
        Feature names per modality.
    present : numpy.ndarray
        Boolean (samples x modalities): which modalities each sample has.
    labels : numpy.ndarray or None
        Phenotype per sample (float for regression, str or None for classification), or None when
        the cohort has no label column.
    task : str
        ``"classification"`` or ``"regression"``.
    classes : list of str
        Class names in order (empty for regression).
    split : numpy.ndarray or None
        The cohort's split column as strings, or None when it has none.
    latent_nodes : list of str or None
        Latent genes (targets common to all priors), or None.
    priors : list of str or None
        Prior name per modality, None for an unguided one.
    edges : list of tuple of numpy.ndarray or None
        ``(src, dst)`` prior edges per modality, None for an unguided one.
    targets : list of TargetArrays or None, default None
        Every target of a multi-target cohort (`task` is then ``multi``, `labels` None); None for
        a one-label cohort.
    """

    obs_names: pd.Index
    modalities: list[str]
    X: list[np.ndarray | None]
    var_names: list[pd.Index]
    present: np.ndarray
    labels: np.ndarray | None
    task: str
    classes: list[str]
    split: np.ndarray | None
    latent_nodes: list[str] | None
    priors: list[str | None]
    edges: list[tuple[np.ndarray, np.ndarray] | None]
    targets: list[TargetArrays] | None = None

    def has_label(self) -> np.ndarray:
        """Tell for each row whether the sample has a label (any target, for several).

        Returns
        -------
        numpy.ndarray
            Boolean per row; all False when the cohort has no labels.
        """
        if self.targets is not None:
            return np.column_stack([t.known() for t in self.targets]).any(axis=1)
        if self.labels is None:
            return np.zeros(len(self.obs_names), dtype=bool)
        return ~pd.isna(self.labels)


def strata(data: CohortArrays, rows: np.ndarray) -> tuple[np.ndarray, bool]:
    """Return what splits of `rows` are stratified by, and whether they are.

    One label: the labels, stratified for classes. Several targets: the first target's classes
    when it is a classes target known on every row (so one classes target splits as one label
    does), else no stratification.

    Parameters
    ----------
    data : CohortArrays
        The cohort.
    rows : numpy.ndarray
        The rows being split.

    Returns
    -------
    tuple of (numpy.ndarray, bool)
        One value per row, and whether to stratify by them.
    """
    if data.targets is None:
        return data.labels[rows], data.task == "classification"
    first = data.targets[0]
    if first.kind == "classes" and first.known()[rows].all():
        return first.values[rows], True
    return np.zeros(len(rows)), False


def label_task(values: pd.Series) -> tuple[str, list[str]]:
    """Infer the task and classes of a phenotype.

    Parameters
    ----------
    values : pandas.Series
        The phenotype column.

    Returns
    -------
    tuple of (str, list of str)
        ``("regression", [])`` for a float phenotype, else ``("classification", classes)`` with
        the class names in order (a categorical's categories, else the sorted distinct values).
    """
    if pd.api.types.is_float_dtype(values.dtype):
        return "regression", []
    if isinstance(values.dtype, pd.CategoricalDtype):
        return "classification", [str(c) for c in values.cat.categories]
    return "classification", sorted({str(v) for v in values if not pd.isna(v)})


def read_arrays(mdata: md.MuData, prior_override: PriorOverride | None = None) -> CohortArrays:
    """Read everything training needs from a cohort, once.

    Parameters
    ----------
    mdata : mudata.MuData
        A cohort as built by `deepgami build`.
    prior_override : Mapping or None, optional
        Maps a modality to a replacement edge list `(src, dst)` (or `(name, src, dst)`) in
        `cohort.modality_edges` indices.

    Returns
    -------
    CohortArrays
        With latent nodes, prior names and edges.

    Raises
    ------
    InputError
        If the cohort has no modality, a guided modality but no latent nodes, prior
        edges out of range, a prior with no edge into the latent nodes, or priors sharing no
        target gene.
    """
    mods = cohort.modalities(mdata)
    if not mods:
        raise InputError(None, "the cohort has no modality")
    latent = cohort.latent_nodes(mdata)
    priors, edges = [], []
    for m in mods:
        found = cohort.modality_edges(mdata, m)
        if prior_override is not None and m in prior_override:
            given = prior_override[m]
            name = given[0] if len(given) == 3 else f"override:{found[0] if found else 'none'}"
            found = (name, *given[-2:])
        if found is None:
            priors.append(None)
            edges.append(None)
            continue
        name, src, dst = found
        if latent is None:
            raise InputError(
                None, f"modality '{m}' has prior edges but the cohort has no latent nodes"
            )
        src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
        n_feat = mdata.mod[m].n_vars
        if len(src) != len(dst) or (
            len(src)
            and (src.min() < 0 or src.max() >= n_feat or dst.min() < 0 or dst.max() >= len(latent))
        ):
            raise InputError(
                None,
                f"prior edges of modality '{m}' index outside its {n_feat} features "
                f"or the {len(latent)} latent nodes",
            )
        if len(src) == 0:
            raise InputError(
                None,
                f"prior '{name}' of modality '{m}' has no edge into the {len(latent)} "
                "latent nodes (targets common to all priors)",
            )
        priors.append(str(name))
        edges.append((src, dst))
    if latent is not None and len(latent) == 0:
        raise InputError(None, "the priors share no target gene, so there are no latent nodes")
    return replace(read_modalities(mdata, mods), latent_nodes=latent, priors=priors, edges=edges)


def read_modalities(mdata: md.MuData, names: list[str] | None = None) -> CohortArrays:
    """Read the matrices, presence, labels and split of some modalities, without priors.

    The matrices are as stored, not copied. A name the cohort lacks gets no matrix.

    Parameters
    ----------
    mdata : mudata.MuData
        A cohort as built by `deepgami build`.
    names : list of str or None, optional
        Modalities to read, in the order wanted (a model's modalities); default: every modality of
        the cohort.

    Returns
    -------
    CohortArrays
        With `latent_nodes` None and no prior edges.
    """
    names = cohort.modalities(mdata) if names is None else list(names)
    n = mdata.n_obs
    obs = mdata.obs
    labels, task, classes = None, "classification", []
    if cohort.LABEL in obs and cohort.target_records(mdata) is None:
        task, classes = label_task(obs[cohort.LABEL])
        raw = obs[cohort.LABEL]
        if task == "regression":
            labels = raw.to_numpy(dtype=np.float64)
        else:
            labels = np.array([None if pd.isna(v) else str(v) for v in raw], dtype=object)
    targets = read_target_arrays(mdata)
    if targets is not None:
        labels, task, classes = None, "multi", []
    split = obs[cohort.SPLIT].astype(str).to_numpy() if cohort.SPLIT in obs else None
    have = [m in mdata.mod for m in names]
    return CohortArrays(
        obs_names=pd.Index(mdata.obs_names.astype(str)),
        modalities=names,
        # As stored: int8 dosages stay int8 (4x smaller); minibatches become float32 on the fly.
        X=[
            cohort.modality_matrix(mdata, m, dtype=None) if h else None
            for m, h in zip(names, have, strict=False)
        ],
        var_names=[
            pd.Index(mdata.mod[m].var_names.astype(str)) if h else pd.Index([])
            for m, h in zip(names, have, strict=False)
        ],
        present=(
            np.column_stack(
                [
                    cohort.present(mdata, m) if h else np.zeros(n, dtype=bool)
                    for m, h in zip(names, have, strict=False)
                ]
            )
            if names
            else np.zeros((n, 0), dtype=bool)
        ),
        labels=labels,
        task=task,
        classes=classes,
        split=split,
        latent_nodes=None,
        priors=[None] * len(names),
        edges=[None] * len(names),
        targets=targets,
    )


def latent_targets(
    data: CohortArrays, rows: np.ndarray, scaling: str | dict = "standard"
) -> np.ndarray | None:
    """Return the measured value of each latent gene on `rows`, standardized.

    Standardized over the rows that have it (log1p first where that modality's scaling is log1p).
    Used only to start the encoders (`encoder_init: targets`), never as a model input.

    Parameters
    ----------
    data : CohortArrays
        The cohort.
    rows : numpy.ndarray
        Integer indices of the rows to read.
    scaling : str or dict, default "standard"
        Scaling for all modalities, or a mapping {modality: scaling}; only ``"log1p"`` changes the
        values here.

    Returns
    -------
    numpy.ndarray or None
        Rows x latent nodes; NaN where the gene is not a variable of any modality or the sample
        lacks that modality. None when no latent gene is measured.
    """
    if data.latent_nodes is None:
        return None
    nodes = pd.Index(data.latent_nodes)
    out = np.full((len(rows), len(nodes)), np.nan)
    found = False
    for k, m in enumerate(data.modalities):
        pos = data.var_names[k].get_indexer(nodes)
        hit = np.flatnonzero(pos >= 0)
        have = data.present[rows, k]
        if len(hit) == 0 or not have.any():
            continue
        values = np.asarray(data.X[k][np.ix_(rows[have], pos[hit])], dtype=np.float64)
        if per_modality(scaling, m, "standard") == "log1p":
            values = np.log1p(np.clip(values, 0, None))
        sd = values.std(axis=0)
        ok = np.isfinite(sd) & (sd > 0)
        values = (values - values.mean(axis=0)) / np.where(ok, sd, 1.0)
        values[:, ~ok] = np.nan
        block = out[have]
        block[:, hit] = values
        out[have] = block
        found = found or bool(ok.any())
    return out if found else None


def self_edges(
    var_names: pd.Index, latent_nodes: Sequence[str], src: np.ndarray, dst: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Find the self-edges of a guided modality.

    From each latent gene that is one of its features to that gene's own node, where the prior has
    no such edge already.

    Parameters
    ----------
    var_names : pandas.Index
        The modality's features.
    latent_nodes : sequence of str
        The cohort's latent genes.
    src : numpy.ndarray
        The prior's edges' sources (feature indices).
    dst : numpy.ndarray
        The prior's edges' targets (node indices).

    Returns
    -------
    tuple of numpy.ndarray
        (src, dst) of the edges to add, in node order.
    """
    pos = var_names.get_indexer(pd.Index(latent_nodes))
    nodes = np.flatnonzero(pos >= 0)
    # (feature, node) pairs as one integer each, so the prior's own g -> g edges drop out vectorized
    # (priors have up to millions of edges).
    width = len(latent_nodes)
    nodes = nodes[
        ~np.isin(
            pos[nodes].astype(np.int64) * width + nodes,
            np.asarray(src, dtype=np.int64) * width + np.asarray(dst, dtype=np.int64),
        )
    ]
    return pos[nodes].astype(np.int64), nodes.astype(np.int64)


def usable_rows(data: CohortArrays, rows: np.ndarray, missing: str = "impute") -> np.ndarray:
    """Select the rows a fit can train on.

    Those labelled, with at least one modality (every modality when `missing` is complete_case).
    This is the one rule for which rows a fit trains on.

    Parameters
    ----------
    data : CohortArrays
        The cohort.
    rows : numpy.ndarray
        Candidate row indices.
    missing : str, default "impute"
        ``"impute"`` or ``"complete_case"`` (the training setting's missing-modality rule).

    Returns
    -------
    numpy.ndarray
        The usable row indices (int64), in the given order.
    """
    rows = np.asarray(rows, dtype=np.int64)
    rows = rows[data.has_label()[rows] & data.present[rows].any(axis=1)]
    if missing == "complete_case":
        rows = rows[data.present[rows].all(axis=1)]
    return rows
