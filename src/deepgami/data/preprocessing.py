"""Per-fold preprocessing, fitted on training rows only: feature selection, scaling, balancing.

Every function here that learns something takes the training rows and nothing else; held-out rows
only ever pass through `ModalityPreprocessor.transform`. The fitted state is plain numbers and
names, so it goes into config.json as lists.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

SCALINGS = ("standard", "minmax", "log1p", "none")
SELECTIONS = ("none", "pvalue", "topk")

# Columns per chunk in the univariate tests: bounds the float64 working copy (n x chunk).
_CHUNK = 4096


def _column_blocks(
    X: np.ndarray, rows: np.ndarray | None, cols: np.ndarray
) -> Iterator[tuple[slice, np.ndarray]]:
    """(position in `cols`, float64 copy of X[rows, cols block]) for blocks of _CHUNK columns, so
    that a genotype matrix is never copied whole (a float64 copy of 1e6 SNPs x 2,000 is 16 GB).
    NaN cells are filled with their column's mean over `rows`."""
    for start in range(0, len(cols), _CHUNK):
        c = cols[start : start + _CHUNK]
        block = np.asarray(X[:, c] if rows is None else X[np.ix_(rows, c)], dtype=np.float64)
        nan = np.isnan(block)
        if nan.any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
                means = np.nan_to_num(np.nanmean(block, axis=0), nan=0.0)
            block = np.where(nan, means, block)
        yield slice(start, start + len(c)), block


def univariate_pvalues(
    X: np.ndarray,
    y: np.ndarray,
    task: str,
    rows: np.ndarray | None = None,
    cols: np.ndarray | None = None,
) -> np.ndarray:
    """Compute a univariate p-value per column.

    One-way ANOVA F-test across classes (for two classes this is Student's t-test, p identical),
    or the F-test of Pearson correlation for a numeric phenotype. Constant columns get p = 1, NaN
    cells count as their column's mean. The matrix is read in column blocks, so a genotype matrix
    is never copied whole.

    Parameters
    ----------
    X : numpy.ndarray
        Raw values, samples x variables (any numeric dtype).
    y : numpy.ndarray
        Class codes or numeric phenotype of the tested rows; belongs to `rows`.
    task : str
        ``"regression"`` for the correlation test; anything else runs the ANOVA.
    rows : numpy.ndarray or None, optional
        Rows tested (default all).
    cols : numpy.ndarray or None, optional
        Columns tested (default all).

    Returns
    -------
    numpy.ndarray
        The float64 p-value per tested column, in the order of `cols`; all 1 when there are too few
        rows (regression: fewer than 3; classification: not more than the number of classes) or
        fewer than two classes or a constant phenotype.
    """
    cols = np.arange(X.shape[1]) if cols is None else np.asarray(cols, dtype=np.int64)
    n, n_vars = (X.shape[0] if rows is None else len(rows)), len(cols)
    out = np.ones(n_vars, dtype=np.float64)
    if task == "regression":
        yc = np.asarray(y, dtype=np.float64)
        yc = yc - yc.mean()
        ynorm = np.sqrt(np.sum(yc**2))
        if n < 3 or ynorm == 0:
            return out
        for sl, xc in _column_blocks(X, rows, cols):
            xc = xc - xc.mean(axis=0)
            xnorm = np.sqrt(np.sum(xc**2, axis=0))
            with np.errstate(divide="ignore", invalid="ignore"):
                r = (yc @ xc) / (xnorm * ynorm)
                r2 = np.clip(r**2, 0.0, 1.0)
                f = r2 * (n - 2) / (1.0 - r2)
            p = stats.f.sf(f, 1, n - 2)
            p[xnorm == 0] = 1.0
            p[(xnorm > 0) & (r2 >= 1.0)] = 0.0
            out[sl] = p
        return out
    codes = np.asarray(y)
    groups = np.unique(codes)
    n_groups = len(groups)
    if n_groups < 2 or n <= n_groups:
        return out
    masks = [codes == g for g in groups]
    counts = np.array([m.sum() for m in masks], dtype=np.float64)
    for sl, xc in _column_blocks(X, rows, cols):
        grand = xc.mean(axis=0)
        means = np.stack([xc[m].mean(axis=0) for m in masks])
        between = np.sum(counts[:, None] * (means - grand) ** 2, axis=0)
        total = np.sum((xc - grand) ** 2, axis=0)
        within = np.maximum(total - between, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            f = (between / (n_groups - 1)) / (within / (n - n_groups))
        p = stats.f.sf(f, n_groups - 1, n - n_groups)
        # Exact separation (within == 0) is the strongest evidence; no spread at all is none.
        p[(within <= 1e-12 * np.maximum(total, 1e-300)) & (between > 0)] = 0.0
        p[total <= 0] = 1.0
        p[np.isnan(p)] = 1.0
        out[sl] = p
    return out


def select_features(
    pvalues: np.ndarray,
    method: str,
    pvalue: float = 0.05,
    top_k: int = 1000,
    min_features: int = 10,
) -> np.ndarray:
    """Select columns by their p-values.

    At least `min_features` columns (or all, when fewer) survive, so a strict threshold cannot
    empty a modality. Ties are broken by column order, so the choice is deterministic.

    Parameters
    ----------
    pvalues : numpy.ndarray
        P-value per column.
    method : str
        ``"pvalue"`` keeps p <= `pvalue`, ``"topk"`` the `top_k` smallest p-values, ``"none"``
        every column.
    pvalue : float, default 0.05
        Threshold for ``"pvalue"``.
    top_k : int, default 1000
        Number of columns kept by ``"topk"``.
    min_features : int, default 10
        Minimum number of columns kept.

    Returns
    -------
    numpy.ndarray
        Indices (ascending) of the kept columns.

    Raises
    ------
    ValueError
        If `method` is not one of ``SELECTIONS``.
    """
    n = len(pvalues)
    if method == "none" or n == 0:
        return np.arange(n)
    if method not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, not {method!r}")
    order = np.lexsort((np.arange(n), pvalues))  # by p-value, then position
    if method == "topk":
        keep = order[: max(int(top_k), 0)]
    else:
        keep = np.flatnonzero(pvalues <= pvalue)
    if len(keep) < min(min_features, n):
        keep = order[: min(min_features, n)]
    return np.sort(keep)


@dataclass
class ModalityPreprocessor:
    """Fitted preprocessing of one modality: which features, NaN fill values, and scaling.

    `features` is the encoder's input order. :meth:`transform` expects raw values of exactly those
    features, in that order, and returns float32 ready for the network.

    Parameters
    ----------
    features : list of str
        Kept feature names, in the encoder's input order.
    scaling : str, default "standard"
        One of ``SCALINGS``: ``"standard"``, ``"minmax"``, ``"log1p"`` or ``"none"``.
    fill : numpy.ndarray
        The float32 value per feature that replaces NaN cells (raw scale).
    center : numpy.ndarray
        The float32 value per feature subtracted after the fill (and log1p).
    scale : numpy.ndarray
        The float32 value per feature the centred values are divided by.
    """

    features: list[str]
    scaling: str = "standard"
    fill: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    center: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    scale: np.ndarray = field(default_factory=lambda: np.ones(0, np.float32))

    def transform(self, X: np.ndarray, feature_major: bool = False) -> np.ndarray:
        """Return a float32 preprocessed copy of raw rows `X`.

        Parameters
        ----------
        X : numpy.ndarray
            Raw values, samples x `features` (any numeric dtype).
        feature_major : bool, default False
            Return it transposed, a C-contiguous (features, samples) array: the layout the sparse
            encoder reads, made in the same pass that converts int8 dosages.

        Returns
        -------
        numpy.ndarray
            The float32 result, samples x features (or features x samples with `feature_major`).

        Raises
        ------
        ValueError
            If `X` does not have one column per feature, or scaling is ``"log1p"`` and a value is
            negative.
        """
        if X.shape[1] != len(self.features):
            raise ValueError(f"expected {len(self.features)} columns, got {X.shape[1]}")
        may_have_nan = X.dtype.kind == "f"  # int8 dosages never do
        if feature_major:
            X = X.T.astype(np.float32, order="C")
            fill, center, scale = self.fill[:, None], self.center[:, None], self.scale[:, None]
        else:
            X = np.array(X, dtype=np.float32, copy=True)
            fill, center, scale = self.fill, self.center, self.scale
        nan = np.isnan(X) if may_have_nan else None
        if nan is not None and nan.any():
            X[nan] = np.broadcast_to(fill, X.shape)[nan]
        if self.scaling == "log1p":
            if (X < 0).any():
                raise ValueError("scaling 'log1p' needs non-negative values")
            np.log1p(X, out=X)
        X -= center
        X /= scale
        return X

    def to_dict(self) -> dict:
        """Serialize the fitted state as plain lists (for config.json).

        Returns
        -------
        dict
            ``features``, ``scaling``, ``fill``, ``center`` and ``scale``; read back by
            :meth:`from_dict`.
        """
        return {
            "features": list(self.features),
            "scaling": self.scaling,
            "fill": [float(v) for v in self.fill],
            "center": [float(v) for v in self.center],
            "scale": [float(v) for v in self.scale],
        }

    @classmethod
    def from_dict(cls, data: dict) -> ModalityPreprocessor:
        """Rebuild a preprocessor from :meth:`to_dict`'s output.

        Parameters
        ----------
        data : dict
            With keys ``features``, ``scaling``, ``fill``, ``center`` and ``scale``.

        Returns
        -------
        ModalityPreprocessor
            The preprocessor, with float32 arrays.
        """
        return cls(
            features=[str(f) for f in data["features"]],
            scaling=str(data["scaling"]),
            fill=np.asarray(data["fill"], dtype=np.float32),
            center=np.asarray(data["center"], dtype=np.float32),
            scale=np.asarray(data["scale"], dtype=np.float32),
        )


def fit_scaling(
    X: np.ndarray, scaling: str, rows: np.ndarray | None = None, cols: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit the fill values, center and scale of ``X[rows, cols]``.

    `log1p` is log(1 + x) followed by standardization (the usual expression-count recipe);
    `minmax` maps the training range onto [0, 1]; constant columns get scale 1.

    Parameters
    ----------
    X : numpy.ndarray
        Raw values, samples x variables; read in column blocks.
    scaling : str
        One of ``SCALINGS``: ``"standard"``, ``"minmax"``, ``"log1p"`` or ``"none"``.
    rows : numpy.ndarray or None, optional
        Training rows (default all).
    cols : numpy.ndarray or None, optional
        Columns to fit (default all).

    Returns
    -------
    tuple of numpy.ndarray
        The float32 ``(fill, center, scale)`` per column: fill values are the training means on the
        raw scale. With no rows: fill and center 0, scale 1.

    Raises
    ------
    ValueError
        If `scaling` is unknown, or is ``"log1p"`` and a value is negative.
    """
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {SCALINGS}, not {scaling!r}")
    cols = np.arange(X.shape[1]) if cols is None else np.asarray(cols, dtype=np.int64)
    n = X.shape[0] if rows is None else len(rows)
    fill, center, scale = np.zeros(len(cols)), np.zeros(len(cols)), np.ones(len(cols))
    if n == 0:
        return fill.astype(np.float32), center.astype(np.float32), scale.astype(np.float32)
    for sl, block in _column_blocks(X, rows, cols):
        fill[sl] = block.mean(axis=0)
        if scaling == "log1p":
            if (block < 0).any():
                raise ValueError("scaling 'log1p' needs non-negative values")
            block = np.log1p(block)
        if scaling in ("standard", "log1p"):
            center[sl], scale[sl] = block.mean(axis=0), block.std(axis=0)
        elif scaling == "minmax":
            center[sl] = block.min(axis=0)
            scale[sl] = block.max(axis=0) - center[sl]
    scale = np.where(scale > 1e-12, scale, 1.0)
    return fill.astype(np.float32), center.astype(np.float32), scale.astype(np.float32)


def fit_modality(
    X: np.ndarray,
    var_names: Sequence[str],
    y: np.ndarray,
    task: str,
    candidates: np.ndarray | None = None,
    selection: str = "none",
    pvalue: float = 0.05,
    top_k: int = 1000,
    min_features: int = 10,
    scaling: str = "standard",
    rows: np.ndarray | None = None,
) -> tuple[ModalityPreprocessor, np.ndarray]:
    """Fit one modality's preprocessing on its training rows.

    Parameters
    ----------
    X : numpy.ndarray
        Raw values (float32 or int8 dosages, samples x all variables); read in column blocks.
    var_names : sequence of str
        The modality's variable names (columns of X).
    y : numpy.ndarray
        Class codes or numeric phenotype of the training rows.
    task : str
        ``"classification"`` or ``"regression"`` (chooses the selection test).
    candidates : numpy.ndarray or None, optional
        Column indices allowed as inputs (a guided modality's prior sources); the selection test
        runs among them, so `top_k` counts prior sources. Default: every column.
    selection : str, default "none"
        Feature selection method, one of ``SELECTIONS`` (see :func:`select_features`).
    pvalue : float, default 0.05
        Threshold of the ``"pvalue"`` selection.
    top_k : int, default 1000
        Number of columns kept by the ``"topk"`` selection.
    min_features : int, default 10
        Minimum number of columns a selection keeps.
    scaling : str, default "standard"
        One of ``SCALINGS`` (see :func:`fit_scaling`).
    rows : numpy.ndarray or None, optional
        The training rows that have this modality (default: every row of X).

    Returns
    -------
    preprocessor : ModalityPreprocessor
        The fitted preprocessor.
    cols : numpy.ndarray
        The kept column indices into `var_names` (ascending).
    """
    cols = (
        np.arange(X.shape[1])
        if candidates is None
        else np.unique(np.asarray(candidates, dtype=np.int64))
    )
    if selection != "none" and len(cols):
        pvals = univariate_pvalues(X, y, task, rows, cols)
        cols = cols[select_features(pvals, selection, pvalue, top_k, min_features)]
    fill, center, scale = fit_scaling(X, scaling, rows, cols)
    names = [str(var_names[c]) for c in cols]
    return ModalityPreprocessor(names, scaling, fill, center, scale), cols


def per_modality(value: str | dict, modality: str, default: str) -> str:
    """Resolve a setting given once for all modalities, or as a mapping {modality: value}.

    Parameters
    ----------
    value : str or dict
        The setting, or a mapping {modality: value}.
    modality : str
        The modality to resolve it for.
    default : str
        Returned when `value` is a mapping without `modality`.

    Returns
    -------
    str
        The modality's value.
    """
    return value.get(modality, default) if isinstance(value, dict) else value


def class_weights(codes: np.ndarray, n_classes: int) -> np.ndarray:
    """Compute 'balanced' class weights.

    ``n / (n_seen * count_c)``, with ``n_seen`` the number of classes present; classes absent
    from training get weight 0.

    Parameters
    ----------
    codes : numpy.ndarray
        Integer class code per training row.
    n_classes : int
        Number of classes.

    Returns
    -------
    numpy.ndarray
        The float32 weight per class.
    """
    counts = np.bincount(codes, minlength=n_classes).astype(np.float64)
    weights = np.zeros(n_classes)
    seen = counts > 0
    weights[seen] = len(codes) / (seen.sum() * counts[seen])
    return weights.astype(np.float32)


def smote_oversample(
    xs: Sequence[np.ndarray], present: np.ndarray, codes: np.ndarray, seed: int
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Append SMOTE samples (imbalanced-learn) until every class has the majority's count.

    Interpolating a sample that lacks a modality is undefined, so the synthetic samples come from
    training rows that have every modality (their preprocessed blocks concatenated), while class
    counts are taken over all rows. Classes with fewer than two complete rows are not grown
    (SMOTE needs a neighbour).

    Parameters
    ----------
    xs : sequence of numpy.ndarray
        Preprocessed blocks, one per modality (samples x features).
    present : numpy.ndarray
        Boolean (samples x modalities).
    codes : numpy.ndarray
        Integer class code per row.
    seed : int
        Random state of the sampler.

    Returns
    -------
    xs : list of numpy.ndarray
        The blocks with synthetic rows (float32) appended.
    present : numpy.ndarray
        Presence, all True for the synthetic rows.
    codes : numpy.ndarray
        Class codes, synthetic ones appended.
    """
    from imblearn.over_sampling import SMOTE

    counts = np.bincount(codes)
    complete = present.all(axis=1)
    sub_codes = codes[complete]
    sub_counts = np.bincount(sub_codes, minlength=len(counts))
    target = counts.max()
    # Classes SMOTE can grow: >= 2 complete rows (it needs a neighbour).
    strategy = {
        int(c): int(sub_counts[c] + target - counts[c])
        for c in range(len(counts))
        if counts[c] < target and sub_counts[c] >= 2
    }
    if not strategy:
        return list(xs), present, codes
    k_neighbors = int(min(5, min(sub_counts[c] for c in strategy) - 1))
    widths = [x.shape[1] for x in xs]
    joined = np.concatenate([x[complete] for x in xs], axis=1)
    sampler = SMOTE(sampling_strategy=strategy, k_neighbors=k_neighbors, random_state=seed)
    resampled, new_codes = sampler.fit_resample(joined, sub_codes)
    # imbalanced-learn appends synthetic rows after the originals.
    synthetic = resampled[len(sub_codes) :].astype(np.float32)
    synthetic_codes = np.asarray(new_codes[len(sub_codes) :], dtype=codes.dtype)
    bounds = np.cumsum([0] + widths)
    out_xs = [
        np.concatenate([x, synthetic[:, bounds[m] : bounds[m + 1]]]) for m, x in enumerate(xs)
    ]
    out_present = np.concatenate([present, np.ones((len(synthetic), present.shape[1]), dtype=bool)])
    return out_xs, out_present, np.concatenate([codes, synthetic_codes])
