"""The cohort: one MuData per cohort (or cohort x cell type), built from user files.

Layout (the README's "The cohort file"): `mdata.mod[m]` holds the samples that HAVE modality m;
presence is the boolean `mdata.obsm[m]`; the phenotype is `mdata.obs['label']` (and optional
`split`); priors are boolean sparse masks `mdata.varp['prior:NAME']` over `mdata.var_names`, and
`mdata.uns['deepgami']['priors'][NAME]['modality']` names the modality each guides.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepgami.data.readers import check_finite_cohort
from deepgami.data.targets import (
    MISSING_TEXT,
    TargetSpec,
    phenotype_kind,
    set_targets,
    target_records,
)
from deepgami.errors import InputError, atomic_path

LABEL = "label"
SPLIT = "split"
PRIOR_PREFIX = "prior:"
# uns['deepgami'][UNMEASURED][name]: a prior's edges into targets that are not variables.
UNMEASURED = "unmeasured_edges"

md.set_options(pull_on_update=False)


@dataclass
class PriorInput:
    """One prior edge list as read from a file, and the modality whose encoder it guides.

    Parameters
    ----------
    modality : str
        The modality whose encoder the prior guides.
    name : str
        The prior's name (stored as ``varp['prior:<name>']``).
    edges : pandas.DataFrame
        The edge list, with ``source`` and ``target`` columns.
    path : pathlib.Path or None, default None
        The file the edges were read from, named in error messages.
    """

    modality: str
    name: str
    edges: pd.DataFrame
    path: Path | None = None


@dataclass
class BuildReport:
    """What `assemble_cohort` kept and dropped; stored in `mdata.uns['build']` and printed.

    Parameters
    ----------
    samples : int, default 0
        Samples in the cohort.
    samples_without_label : dict of str to int
        Per modality, the samples dropped for having no label.
    labelled_without_data : int, default 0
        Labelled samples dropped for having no modality.
    modalities : dict of str to dict
        Per modality, its samples, features, dtype and missing-value counts.
    priors : dict of str to dict
        Per prior, the edges read and kept, and why the others were dropped.
    classes : dict of str to int
        Samples per class; for a numeric phenotype, its ``min`` and ``max``.
    task : str, default "classification"
        ``"classification"`` or ``"regression"``.
    latent : dict of str to int
        With priors: ``nodes`` (the latent nodes, targets common to all priors) and
        ``unmeasured`` (how many of them are not variables of the cohort).
    """

    samples: int = 0
    samples_without_label: dict[str, int] = field(default_factory=dict)
    labelled_without_data: int = 0
    modalities: dict[str, dict[str, Any]] = field(default_factory=dict)
    priors: dict[str, dict[str, Any]] = field(default_factory=dict)
    classes: dict[str, int] = field(default_factory=dict)
    task: str = "classification"
    latent: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """Render the report as the lines that `deepgami build` prints.

        Returns
        -------
        list of str
            One line for the samples, one per modality and one per prior.
        """
        out = [
            f"samples: {self.samples} ({self.task}; "
            + ", ".join(f"{k}: {v}" for k, v in self.classes.items())
            + ")"
        ]
        if self.labelled_without_data:
            out.append(f"labelled samples with no modality (dropped): {self.labelled_without_data}")
        for name, info in self.modalities.items():
            line = f"modality {name}: {info['samples']} samples x {info['features']} features ({info['dtype']})"
            if self.samples_without_label.get(name):
                line += f"; {self.samples_without_label[name]} samples without a label dropped"
            if info.get("missing_values"):
                line += f"; {info['missing_values']} missing values ({info['missing_policy']})"
            if info.get("dropped_features"):
                line += f"; {info['dropped_features']} features with missing values dropped"
            out.append(line)
        for name, info in self.priors.items():
            out.append(
                f"prior {name} -> {info['modality']}: {info['edges_kept']} of {info['edges_read']} edges kept "
                f"({info['edges_unknown_source']} with an unknown source, {info['edges_unknown_target']} with an "
                f"unknown target, {info['edges_duplicate']} duplicates); {info['sources']} sources, "
                f"{info['targets']} targets; {info['features_without_edges']} features of {info['modality']} have no edge"
                + (
                    f"; {info['unmeasured_targets']} targets are not variables of the cohort "
                    f"({info['edges_unmeasured_target']} edges kept into them)"
                    if info.get("unmeasured_targets")
                    else ""
                )
            )
        if self.latent:
            out.append(
                f"latent nodes: {self.latent['nodes']} (targets common to all priors), of which "
                f"{self.latent['unmeasured']} are not variables of the cohort (unmeasured latent "
                "nodes, random start)"
            )
        return out

    def to_uns(self) -> dict[str, Any]:
        """Return the report as the plain dict stored in ``mdata.uns['build']``.

        Returns
        -------
        dict
            Every field but ``priors`` (those live in ``uns['deepgami']['priors']``).
        """
        return {
            "samples": self.samples,
            "samples_without_label": dict(self.samples_without_label),
            "labelled_without_data": self.labelled_without_data,
            "modalities": {k: dict(v) for k, v in self.modalities.items()},
            "classes": dict(self.classes),
            "task": self.task,
            "latent": dict(self.latent),
        }


def _prefixed(modality: str, name: str) -> str:
    return f"{modality}:{name}"


def assemble_cohort(
    modalities: dict[str, ad.AnnData],
    labels: pd.DataFrame,
    priors: list[PriorInput] | None = None,
    prefix: bool = False,
    paths: dict[str, Path] | None = None,
    labels_path: Path | None = None,
    read_reports: dict[str, dict] | None = None,
    test_fraction: float | None = None,
    split_seed: int = 0,
    split_fallback: bool = False,
    targets: list[TargetSpec] | None = None,
) -> tuple[md.MuData, BuildReport]:
    """The validated in-memory step of :func:`deepgami.build_cohort` (files already read).

    Parameters
    ----------
    modalities : dict of str to anndata.AnnData
        Modality name -> AnnData (samples x features).
    labels : pandas.DataFrame
        Indexed by sample, with a ``label`` column (and optional ``split``).
    priors : list of PriorInput or None, default None
        Prior edge lists, each naming the modality it guides.
    prefix : bool, default False
        Name features ``<modality>:<feature>`` so that colliding names stay distinct.
    paths : dict of str to pathlib.Path or None, default None
        The source file of each modality, named in error messages.
    labels_path : pathlib.Path or None, default None
        The labels file, named in error messages.
    read_reports : dict of str to dict or None, default None
        Per modality, the reader's missing-value report.
    test_fraction : float or None, default None
        Without a split in `labels`: ``None`` leaves the cohort without one, ``0`` makes every
        sample ``train``, a fraction in (0, 1) draws a stratified split with `split_seed`.
    split_seed : int, default 0
        The random seed of a drawn split.
    split_fallback : bool, default False
        The split is an automatic one, not asked for: when it cannot be drawn (a tiny cohort),
        every sample is ``train`` and ``uns['deepgami']['split']['reason']`` says why.
    targets : list of TargetSpec or None, default None
        Several targets (`deepgami.data.targets`): `labels` holds their columns instead of
        ``label``; None: one ``label`` column, as before.

    Returns
    -------
    tuple of MuData and BuildReport
        The cohort, and what was kept and dropped. ``mdata.uns['deepgami']['split']`` records
        where the split came from (``labels``, ``generated`` or ``none``).
    """
    priors = priors or []
    paths = paths or {}
    report = BuildReport()
    if not modalities:
        raise InputError(None, "no modality given (use --modality NAME=PATH)")
    _check_feature_collisions(modalities, paths, prefix)
    kept = {
        name: _labelled_part(name, adata, labels, paths, labels_path, read_reports, report)
        for name, adata in modalities.items()
    }
    mdata = _in_label_order(md.MuData(kept), labels, report)
    if targets is None:
        _set_phenotype(mdata, labels.loc[mdata.obs_names], labels_path, report)
        _set_split(mdata, test_fraction, split_seed, labels_path, split_fallback)
    else:
        split = (test_fraction, split_seed, labels_path, split_fallback)
        _set_several(mdata, labels.loc[mdata.obs_names], targets, split, report)
    report.samples = mdata.n_obs
    _deepgami_uns(mdata)["priors"] = {}
    for prior in priors:
        _add_prior(mdata, prior, prefix, report)
    if priors:
        nodes = latent_nodes(mdata) or []
        unmeasured = int((~pd.Index(nodes).isin(mdata.var_names)).sum())
        report.latent = {"nodes": len(nodes), "unmeasured": unmeasured}
    mdata.uns["build"] = report.to_uns()
    _deepgami_uns(mdata)["modality_order"] = list(mdata.mod)
    return mdata, report


def _in_label_order(mdata: md.MuData, labels: pd.DataFrame, report: BuildReport) -> md.MuData:
    """The samples in label-file order, whatever order the modality files used."""
    with_data = labels.index.isin(mdata.obs_names)
    order = labels.index[with_data]
    if not order.equals(mdata.obs_names):
        mdata = mdata[order].copy()
    report.labelled_without_data = int((~with_data).sum())
    return mdata


def _deepgami_uns(mdata: md.MuData) -> dict[str, Any]:
    """``mdata.uns['deepgami']``, created empty when absent (deepgami's own slots live there)."""
    if "deepgami" not in mdata.uns:
        mdata.uns["deepgami"] = {}
    return mdata.uns["deepgami"]


def _labelled_part(
    name: str,
    adata: ad.AnnData,
    labels: pd.DataFrame,
    paths: dict[str, Path],
    labels_path: Path | None,
    read_reports: dict[str, dict] | None,
    report: BuildReport,
) -> ad.AnnData:
    """The samples of one modality that have a label; records its line of the build report."""
    shared = adata.obs_names.isin(labels.index)
    if not shared.any():
        # A matrix saved features x samples is the usual cause; say so rather than only "no match".
        transposed = adata.var_names.isin(labels.index).any()
        hint = "; its column names are sample ids: samples must be rows" if transposed else ""
        raise InputError(
            paths.get(name),
            f"no sample shared with the labels file{f' {labels_path}' if labels_path else ''} "
            f"(e.g. '{adata.obs_names[0]}' here vs '{labels.index[0]}' there){hint}",
        )
    report.samples_without_label[name] = int((~shared).sum())
    kept = adata[shared].copy() if not shared.all() else adata
    info = {"samples": kept.n_obs, "features": kept.n_vars, "dtype": str(kept.X.dtype)}
    if read_reports and name in read_reports:
        rr = read_reports[name]
        info.update(
            missing_values=rr["missing_values"],
            missing_policy=rr["policy"],
            dropped_features=len(rr["dropped_features"]),
        )
    report.modalities[name] = info
    return kept


def _set_several(
    mdata: md.MuData,
    table: pd.DataFrame,
    targets: list[TargetSpec],
    split: tuple[float | None, int, Path | None, bool],
    report: BuildReport,
) -> None:
    """Several targets: the split (drawn unstratified: no one target stratifies it), then the
    targets' columns and table (`set_targets`), and the report's line."""
    if SPLIT in table:
        mdata.obs[SPLIT] = table[SPLIT].replace("", "train").to_numpy()
    _set_split(mdata, *split, key=pd.Series(np.zeros(mdata.n_obs), index=mdata.obs_names))
    summary = set_targets(mdata, table, targets, split[2])
    report.task = "targets"
    report.classes = {
        name: ", ".join(f"{k} {v}" for k, v in info.items()) for name, info in summary.items()
    }


def _set_split(
    mdata: md.MuData,
    test_fraction: float | None,
    split_seed: int,
    labels_path: Path | None,
    split_fallback: bool = False,
    key: pd.Series | None = None,
) -> None:
    """Record where the split came from; draw one when the labels have none (stratified by
    `key`, default the label)."""
    if SPLIT in mdata.obs:
        mdata.uns["deepgami"] = {"split": {"source": "labels"}}
    elif test_fraction is not None:
        mdata.obs[SPLIT], info = _generated_split(
            mdata.obs[LABEL] if key is None else key,
            test_fraction,
            split_seed,
            labels_path,
            split_fallback,
        )
        mdata.uns["deepgami"] = {"split": info}


def _generated_split(
    labels: pd.Series, test_fraction: float, seed: int, source: Any, fallback: bool
) -> tuple[np.ndarray, dict[str, Any]]:
    """(split per sample, what uns records): `generate_split`, or all-train when `fallback` and
    the split cannot be drawn."""
    info: dict[str, Any] = {
        "source": "generated" if test_fraction > 0 else "none",
        "test_fraction": float(test_fraction),
        "seed": int(seed),
    }
    try:
        return generate_split(labels, test_fraction, seed, source), info
    except InputError as err:
        if not fallback:
            raise
        # An automatic convenience must not turn valid input into an error.
        info.update(source="none", reason=err.message.split("; give the labels")[0])
        return np.full(len(labels), "train", dtype=object), info


def generate_split(
    labels: pd.Series, test_fraction: float, seed: int = 0, source: Any = None
) -> np.ndarray:
    """A seeded train/test split of `labels`, stratified by class for a categorical phenotype.

    Parameters
    ----------
    labels : pandas.Series
        One label per sample (categorical classes, or floats for a numeric phenotype).
    test_fraction : float
        Share of samples in ``test``: 0 (every sample ``train``) or a number in (0, 1).
    seed : int, default 0
        Random seed; the same seed and labels give the same split.
    source : Any, default None
        The labels file, named in errors.

    Returns
    -------
    numpy.ndarray
        ``"train"`` / ``"test"`` per sample, in the order of `labels`.

    Raises
    ------
    InputError
        When `test_fraction` is out of range, or a class has too few samples to be in both parts.
    """
    from sklearn.model_selection import train_test_split

    if not 0 <= test_fraction < 1:
        raise InputError(source, f"--test-fraction must be in [0, 1) (got {test_fraction})")
    split = np.full(len(labels), "train", dtype=object)
    if test_fraction == 0:
        return split
    stratify = None if pd.api.types.is_float_dtype(labels) else labels.astype(str).to_numpy()
    try:
        _, test = train_test_split(
            np.arange(len(labels)), test_size=test_fraction, random_state=seed, stratify=stratify
        )
    except ValueError as err:  # a class with one sample, or fewer test samples than classes
        raise InputError(
            source,
            f"cannot draw a stratified {test_fraction:g} test split ({err}); give the labels "
            "a split column, or build with --no-split",
        ) from None
    split[test] = "test"
    return split


def _check_feature_collisions(
    modalities: dict[str, ad.AnnData], paths: dict[str, Path], prefix: bool = False
) -> None:
    """Refuse a feature name in two modalities; with `prefix` first name them
    ``<modality>:<feature>`` (in place)."""
    if prefix:
        for name, adata in modalities.items():
            adata.var_names = [_prefixed(name, v) for v in adata.var_names]
    seen: dict[str, str] = {}
    for name, adata in modalities.items():
        clashes = [v for v in adata.var_names if v in seen]
        if clashes:
            other = seen[clashes[0]]
            raise InputError(
                paths.get(name),
                f"{len(clashes)} feature names also appear in modality '{other}' (e.g. {', '.join(clashes[:3])}); "
                "rerun with --prefix to name features <modality>:<feature>",
            )
        seen.update(dict.fromkeys(adata.var_names, name))


def _set_phenotype(
    mdata: md.MuData, obs_labels: pd.DataFrame, labels_path: Path | None, report: BuildReport
) -> None:
    raw = obs_labels["label"].astype(str)
    empty = raw.str.lower().isin(MISSING_TEXT)
    if empty.any():
        bad = obs_labels.index[empty]
        raise InputError(
            labels_path, f"{len(bad)} samples have an empty label (e.g. {', '.join(bad[:3])})"
        )
    kind, found = phenotype_kind(raw, "label column", "samples with data", labels_path)
    if kind == "numeric":
        mdata.obs[LABEL] = found.to_numpy(dtype=np.float64)
        report.task = "regression"
        report.classes = {"min": float(found.min()), "max": float(found.max())}
    else:  # found: the samples per class
        mdata.obs[LABEL] = pd.Categorical(raw.to_numpy(), categories=list(found.index))
        report.classes = {str(k): int(v) for k, v in found.items()}
    if "split" in obs_labels:
        mdata.obs[SPLIT] = obs_labels["split"].replace("", "train").to_numpy()


def _add_prior(mdata: md.MuData, prior: PriorInput, prefix: bool, report: BuildReport) -> None:
    if prior.modality not in mdata.mod:
        raise InputError(
            prior.path,
            f"prior '{prior.name}' names modality '{prior.modality}', which is not one of: {', '.join(mdata.mod)}",
        )
    if f"{PRIOR_PREFIX}{prior.name}" in mdata.varp:
        raise InputError(prior.path, f"prior name '{prior.name}' given twice")
    features = mdata.mod[prior.modality].var_names
    sources = prior.edges["source"].astype(str)
    targets = prior.edges["target"].astype(str)
    if prefix:
        sources = sources.map(lambda s: _prefixed(prior.modality, s))
        targets = targets.map(_unprefixed_lookup(mdata))
    source_ok = sources.isin(features)
    if not source_ok.any():
        raise InputError(
            prior.path,
            f"none of the {sources.nunique()} sources are features of modality '{prior.modality}' "
            f"(e.g. '{prior.edges['source'].iloc[0]}' vs '{features[0]}')",
        )
    var_index = pd.Index(mdata.var_names)
    known = pd.DataFrame({"source": sources[source_ok], "target": targets[source_ok]})
    duplicates = int(known.duplicated().sum())
    known = known.drop_duplicates()
    # A target that is not a variable is still a latent node (an unmeasured gene, as in GenNet):
    # its edges cannot live in the n_vars x n_vars mask, so they are kept as a name table.
    measured = known["target"].isin(var_index).to_numpy()
    pairs, outside = known[measured], known[~measured]
    rows = var_index.get_indexer(pairs["source"])
    cols = var_index.get_indexer(pairs["target"])
    n = mdata.n_vars
    mask = sp.csr_matrix((np.ones(len(rows), dtype=bool), (rows, cols)), shape=(n, n), dtype=bool)
    mask.sum_duplicates()
    # mudata refuses `mdata.varp = {...}`; keys are assigned one at a time.
    mdata.varp[f"{PRIOR_PREFIX}{prior.name}"] = mask
    _store_unmeasured(mdata, prior.name, outside)
    info = {
        "modality": prior.modality,
        "edges_read": int(len(prior.edges)),
        "edges_kept": int(mask.nnz + len(outside)),
        "edges_unknown_source": int((~source_ok).sum()),
        "edges_unknown_target": 0,  # kept since #22: such targets are unmeasured latent nodes
        "edges_unmeasured_target": int(len(outside)),
        "edges_duplicate": duplicates,
        "sources": int(known["source"].nunique()),
        "targets": int(known["target"].nunique()),
        "unmeasured_targets": int(outside["target"].nunique()),
        "features_without_edges": int((~features.isin(known["source"])).sum()),
        "path": str(prior.path) if prior.path else "",
    }
    uns_priors = dict(prior_info(mdata))
    uns_priors[prior.name] = info
    _deepgami_uns(mdata)["priors"] = uns_priors
    report.priors[prior.name] = info


def _store_unmeasured(mdata: md.MuData, name: str, edges: pd.DataFrame) -> None:
    """Keep a prior's edges into targets that are not variables, as source/target name arrays
    under ``uns['deepgami']['unmeasured_edges'][name]`` (nothing stored when there are none)."""
    if len(edges) == 0:
        return
    table = dict(_deepgami_uns(mdata).get(UNMEASURED, {}))
    table[name] = {
        "source": edges["source"].to_numpy(dtype=str),
        "target": edges["target"].to_numpy(dtype=str),
    }
    _deepgami_uns(mdata)[UNMEASURED] = table


def unmeasured_edges(mdata: md.MuData, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Return a prior's edges into targets that are not variables of the cohort.

    Such targets are latent nodes all the same (unmeasured genes); their edges live in
    ``mdata.uns['deepgami']['unmeasured_edges'][name]``, not in the prior's ``varp`` mask.

    Parameters
    ----------
    mdata : mudata.MuData
        A cohort.
    name : str
        A prior name.

    Returns
    -------
    tuple of numpy.ndarray
        (source names, target names), empty when the prior has none (or the cohort predates them).
    """
    table = mdata.uns.get("deepgami", {}).get(UNMEASURED, {}).get(name)
    if table is None:
        return np.array([], dtype=str), np.array([], dtype=str)
    return np.asarray(table["source"]).astype(str), np.asarray(table["target"]).astype(str)


def _unprefixed_lookup(mdata: md.MuData):
    """Map a plain target name (`GENE1`) onto its prefixed variable (`expr:GENE1`) when unique."""
    plain = pd.Series(mdata.var_names, index=[v.split(":", 1)[-1] for v in mdata.var_names])
    unique = plain[~plain.index.duplicated(keep=False)]
    lookup = unique.to_dict()
    return lambda t: t if t in mdata.var_names else lookup.get(t, t)


def write_cohort(mdata: md.MuData, path: str | Path) -> None:
    """Write a cohort to an ``.h5mu`` file atomically.

    A failed write leaves no partial `.h5mu` behind.

    Parameters
    ----------
    mdata : mudata.MuData
        The cohort.
    path : str or pathlib.Path
        The ``.h5mu`` file to write.
    """
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata.write_h5mu(tmp)


def read_cohort(path: str | Path) -> md.MuData:
    """Open a cohort written by `deepgami build`, with a clear error for anything else.

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.h5mu`` file.

    Returns
    -------
    mudata.MuData
        The cohort.

    Raises
    ------
    InputError
        When the file is missing, unreadable or not a cohort (no label column).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mdata = md.read_h5mu(path)
    except Exception as err:  # h5py raises OSError/KeyError etc. for foreign files
        raise InputError(
            path, f"not a readable .h5mu cohort ({str(err).splitlines()[0]})"
        ) from None
    if LABEL not in mdata.obs and target_records(mdata) is None:
        raise InputError(
            path, f"cohort has no '{LABEL}' column in obs; build it with 'deepgami build'"
        )
    check_finite_cohort(mdata, path)  # an .h5mu edited outside `build`
    return mdata


def modalities(mdata: md.MuData) -> list[str]:
    """Modality names in build order.

    Parameters
    ----------
    mdata : mudata.MuData
        A cohort.

    Returns
    -------
    list of str
        ``uns['deepgami']['modality_order']`` (older cohorts: ``uns['modality_order']``), else
        the order of ``mdata.mod``.
    """
    # Older cohorts kept the order at the top level, uns["modality_order"].
    order = mdata.uns.get("deepgami", {}).get("modality_order", mdata.uns.get("modality_order"))
    return [str(m) for m in order] if order is not None else list(mdata.mod)


def present(mdata: md.MuData, modality: str) -> np.ndarray:
    """Tell, per sample, whether it has a modality.

    Parameters
    ----------
    mdata : mudata.MuData
        A cohort.
    modality : str
        A modality name.

    Returns
    -------
    numpy.ndarray
        Boolean per `mdata.obs_names`: whether the sample has `modality`.
    """
    if modality in mdata.obsm:
        return np.asarray(mdata.obsm[modality]).reshape(-1).astype(bool)
    return mdata.obs_names.isin(mdata.mod[modality].obs_names)


def modality_matrix(
    mdata: md.MuData, modality: str, dtype: Any = np.float32, rows: np.ndarray | None = None
) -> np.ndarray:
    """Return the modality's matrix aligned to `mdata.obs_names`.

    Rows of samples without the modality are 0; use :func:`present` to tell them apart (zeros
    are valid genotypes). `dtype=None` keeps int8 dosages and float32 as stored (anything else
    becomes float32). When the modality already lists every sample in order and no conversion is
    needed, this is the stored array itself (not a copy: do not modify it), so a genome-scale
    matrix is held once.

    Parameters
    ----------
    mdata : mudata.MuData
        A cohort.
    modality : str
        A modality name.
    dtype : numpy.dtype or None, default numpy.float32
        The dtype of the result; None keeps int8 and float32 as stored.
    rows : numpy.ndarray or None, default None
        Integer positions into `mdata.obs_names` to align to instead of all of them.

    Returns
    -------
    numpy.ndarray
        Samples (`mdata.obs_names`, or `rows`) x the modality's features.
    """
    adata = mdata.mod[modality]
    obs = mdata.obs_names if rows is None else mdata.obs_names[rows]
    where = adata.obs_names.get_indexer(obs)
    x = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
    if dtype is None:
        dtype = x.dtype if x.dtype in (np.int8, np.float32) else np.dtype(np.float32)
    dtype = np.dtype(dtype)
    if len(where) == x.shape[0] and np.array_equal(where, np.arange(len(where))):
        return x.astype(dtype, copy=False)
    out = np.zeros((len(obs), adata.n_vars), dtype=dtype)
    have = np.flatnonzero(where >= 0)
    step = max(1, 2**26 // max(adata.n_vars, 1))  # row blocks: no full-size temporary
    for start in range(0, len(have), step):
        part = have[start : start + step]
        out[part] = x[where[part]]
    return out


def prior_names(mdata: md.MuData) -> list[str]:
    """List the cohort's prior names.

    Parameters
    ----------
    mdata : mudata.MuData
        A cohort.

    Returns
    -------
    list of str
        The names ``NAME`` of the ``varp['prior:NAME']`` masks.
    """
    return [k[len(PRIOR_PREFIX) :] for k in mdata.varp if k.startswith(PRIOR_PREFIX)]


def prior_info(mdata: md.MuData) -> dict[str, Any]:
    """Per prior name, what the build kept (``modality``, edge counts, ``path``).

    Parameters
    ----------
    mdata : mudata.MuData
        A cohort.

    Returns
    -------
    dict
        ``mdata.uns['deepgami']['priors']``, or the top-level ``uns['priors']`` of older cohorts.
    """
    return mdata.uns.get("deepgami", {}).get("priors", mdata.uns.get("priors", {}))


def prior_modality(mdata: md.MuData, name: str) -> str:
    """The modality whose encoder prior `name` guides.

    Parameters
    ----------
    mdata : mudata.MuData
        A cohort.
    name : str
        A prior name (``varp['prior:<name>']``).

    Returns
    -------
    str
        The modality name.
    """
    return str(prior_info(mdata)[name]["modality"])


def latent_nodes(mdata: md.MuData) -> list[str] | None:
    """Return the prior targets common to all priors (the paper's latent genes).

    Parameters
    ----------
    mdata : mudata.MuData
        A cohort.

    Returns
    -------
    list of str or None
        The shared targets: those that are variables in `mdata.var_names` order, then the
        unmeasured ones (not variables of the cohort) sorted by name; None without priors.
    """
    names = prior_names(mdata)
    if not names:
        return None
    var_names = pd.Index(mdata.var_names.astype(str))
    common: set[str] | None = None
    for name in names:
        cols = np.flatnonzero(np.asarray(mdata.varp[PRIOR_PREFIX + name].sum(axis=0)).ravel() > 0)
        targets = set(var_names[cols]) | set(unmeasured_edges(mdata, name)[1])
        common = targets if common is None else common & targets
    common = common or set()
    measured = [str(v) for v in var_names[var_names.isin(list(common))]]
    return measured + sorted(str(v) for v in common - set(measured))


def modality_edges(mdata: md.MuData, modality: str) -> tuple[str, np.ndarray, np.ndarray] | None:
    """Return the edges of the prior that guides a modality.

    Edges into targets outside the latent nodes are dropped. None when no prior guides it.

    Parameters
    ----------
    mdata : mudata.MuData
        A cohort.
    modality : str
        A modality name.

    Returns
    -------
    tuple of (str, numpy.ndarray, numpy.ndarray) or None
        (prior name, source index into the modality's features, target index into
        :func:`latent_nodes`), sorted by source then target; None when no prior guides
        `modality`.

    Raises
    ------
    InputError
        When several priors guide `modality`.
    """
    names = [n for n in prior_names(mdata) if prior_modality(mdata, n) == modality]
    if not names:
        return None
    if len(names) > 1:
        raise InputError(
            None,
            f"modality '{modality}' is guided by several priors ({', '.join(names)}); merge them into one edge list",
        )
    name = names[0]
    latent = pd.Index(latent_nodes(mdata))
    mask = sp.coo_matrix(mdata.varp[PRIOR_PREFIX + name])
    var_names = mdata.var_names
    features = mdata.mod[modality].var_names
    sources, targets = unmeasured_edges(mdata, name)
    src = np.concatenate([features.get_indexer(var_names[mask.row]), features.get_indexer(sources)])
    dst = np.concatenate([latent.get_indexer(var_names[mask.col]), latent.get_indexer(targets)])
    keep = (src >= 0) & (dst >= 0)
    order = np.lexsort((dst[keep], src[keep]))
    return name, src[keep][order].astype(np.int64), dst[keep][order].astype(np.int64)
