"""Per-fold preprocessing, fitted on training rows only: feature selection, scaling, balancing.

Every function here that learns something takes the training rows and nothing else; held-out rows
only ever pass through `ModalityPreprocessor.transform`. The fitted state is plain numbers and
names, so it goes into config.json as lists.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy import stats

SCALINGS = ("standard", "minmax", "log1p", "none")
SELECTIONS = ("none", "pvalue", "topk")

# Columns per chunk in the univariate tests: bounds the float64 working copy (n x chunk).
_CHUNK = 4096


def univariate_pvalues(X: np.ndarray, y: np.ndarray, task: str) -> np.ndarray:
    """P-value per column: one-way ANOVA F-test across classes (for two classes this is Student's
    t-test, p identical), or the F-test of Pearson correlation for a numeric phenotype.

    Constant columns get p = 1. Works in column chunks so a float32 genotype matrix is never
    copied whole to float64.
    """
    n, n_vars = X.shape
    out = np.ones(n_vars, dtype=np.float64)
    if task == "regression":
        yc = np.asarray(y, dtype=np.float64)
        yc = yc - yc.mean()
        ynorm = np.sqrt(np.sum(yc**2))
        if n < 3 or ynorm == 0:
            return out
        for start in range(0, n_vars, _CHUNK):
            xc = np.asarray(X[:, start : start + _CHUNK], dtype=np.float64)
            xc = xc - xc.mean(axis=0)
            xnorm = np.sqrt(np.sum(xc**2, axis=0))
            with np.errstate(divide="ignore", invalid="ignore"):
                r = (yc @ xc) / (xnorm * ynorm)
                r2 = np.clip(r**2, 0.0, 1.0)
                f = r2 * (n - 2) / (1.0 - r2)
            p = stats.f.sf(f, 1, n - 2)
            p[xnorm == 0] = 1.0
            p[(xnorm > 0) & (r2 >= 1.0)] = 0.0
            out[start : start + _CHUNK] = p
        return out
    codes = np.asarray(y)
    groups = np.unique(codes)
    n_groups = len(groups)
    if n_groups < 2 or n <= n_groups:
        return out
    masks = [codes == g for g in groups]
    counts = np.array([m.sum() for m in masks], dtype=np.float64)
    for start in range(0, n_vars, _CHUNK):
        xc = np.asarray(X[:, start : start + _CHUNK], dtype=np.float64)
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
        out[start : start + _CHUNK] = p
    return out


def select_features(
    pvalues: np.ndarray, method: str, pvalue: float = 0.05, top_k: int = 1000, min_features: int = 10
) -> np.ndarray:
    """Indices (ascending) of the kept columns: p <= `pvalue`, or the `top_k` smallest p-values.

    At least `min_features` columns (or all, when fewer) survive, so a strict threshold cannot
    empty a modality. Ties are broken by column order, so the choice is deterministic.
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

    `features` is the encoder's input order. transform() expects raw values of exactly those
    features, in that order, and returns float32 ready for the network.
    """

    features: list[str]
    scaling: str = "standard"
    fill: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    center: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    scale: np.ndarray = field(default_factory=lambda: np.ones(0, np.float32))

    def transform(self, X: np.ndarray) -> np.ndarray:
        if X.shape[1] != len(self.features):
            raise ValueError(f"expected {len(self.features)} columns, got {X.shape[1]}")
        X = np.array(X, dtype=np.float32, copy=True)
        nan = np.isnan(X)
        if nan.any():
            X[nan] = np.broadcast_to(self.fill, X.shape)[nan]
        if self.scaling == "log1p":
            if (X < 0).any():
                raise ValueError("scaling 'log1p' needs non-negative values")
            np.log1p(X, out=X)
        X -= self.center
        X /= self.scale
        return X

    def to_dict(self) -> dict:
        return {
            "features": list(self.features),
            "scaling": self.scaling,
            "fill": [float(v) for v in self.fill],
            "center": [float(v) for v in self.center],
            "scale": [float(v) for v in self.scale],
        }

    @classmethod
    def from_dict(cls, data: dict) -> ModalityPreprocessor:
        return cls(
            features=[str(f) for f in data["features"]],
            scaling=str(data["scaling"]),
            fill=np.asarray(data["fill"], dtype=np.float32),
            center=np.asarray(data["center"], dtype=np.float32),
            scale=np.asarray(data["scale"], dtype=np.float32),
        )


def fit_scaling(X: np.ndarray, scaling: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fill values (training means, raw scale), center and scale from training rows `X`.

    `log1p` is log(1 + x) followed by standardization (the usual expression-count recipe);
    `minmax` maps the training range onto [0, 1]; constant columns get scale 1.
    """
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {SCALINGS}, not {scaling!r}")
    n_vars = X.shape[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        fill = np.nanmean(X, axis=0, dtype=np.float64) if len(X) else np.zeros(n_vars)
    fill = np.nan_to_num(fill, nan=0.0).astype(np.float32)
    X = np.where(np.isnan(X), fill, X).astype(np.float64) if np.isnan(X).any() else X.astype(np.float64)
    if scaling == "log1p":
        if (X < 0).any():
            raise ValueError("scaling 'log1p' needs non-negative values")
        X = np.log1p(X)
    if scaling in ("standard", "log1p"):
        center = X.mean(axis=0) if len(X) else np.zeros(n_vars)
        scale = X.std(axis=0) if len(X) else np.ones(n_vars)
    elif scaling == "minmax":
        center = X.min(axis=0) if len(X) else np.zeros(n_vars)
        scale = (X.max(axis=0) - center) if len(X) else np.ones(n_vars)
    else:
        center, scale = np.zeros(n_vars), np.ones(n_vars)
    scale = np.where(scale > 1e-12, scale, 1.0)
    return fill, center.astype(np.float32), scale.astype(np.float32)


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
) -> tuple[ModalityPreprocessor, np.ndarray]:
    """Fit one modality's preprocessing on its training rows.

    Args:
        X: raw values, training rows that have this modality (float32, n x all variables).
        var_names: the modality's variable names (columns of X).
        y: class codes or numeric phenotype of those rows.
        candidates: column indices allowed as inputs (a guided modality's prior sources); the
            selection test runs among them, so `top_k` counts prior sources.
    Returns:
        the fitted preprocessor and the kept column indices into `var_names` (ascending).
    """
    cols = np.arange(X.shape[1]) if candidates is None else np.unique(np.asarray(candidates, dtype=np.int64))
    if selection != "none" and len(cols):
        Xc = X[:, cols]
        if np.isnan(Xc).any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                Xc = np.where(np.isnan(Xc), np.nan_to_num(np.nanmean(Xc, axis=0)), Xc)
        pvals = univariate_pvalues(Xc, y, task)
        cols = cols[select_features(pvals, selection, pvalue, top_k, min_features)]
    fill, center, scale = fit_scaling(X[:, cols], scaling)
    names = [str(var_names[c]) for c in cols]
    return ModalityPreprocessor(names, scaling, fill, center, scale), cols


def class_weights(codes: np.ndarray, n_classes: int) -> np.ndarray:
    """'Balanced' weights n / (n_classes * count_c); classes absent from training get weight 0."""
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
    counts are taken over all rows. Returns the arrays with synthetic rows appended.
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
    out_xs = [np.concatenate([x, synthetic[:, bounds[m] : bounds[m + 1]]]) for m, x in enumerate(xs)]
    out_present = np.concatenate([present, np.ones((len(synthetic), present.shape[1]), dtype=bool)])
    return out_xs, out_present, np.concatenate([codes, synthetic_codes])
