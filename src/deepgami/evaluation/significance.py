"""Comparing methods: paired differences to DeepGAMI with 95% intervals, and pairwise KS tests.

`paired_tests` answers "does DeepGAMI beat this method on these splits?": for each method and main
metric, the mean paired difference (DeepGAMI minus the method) over the same splits, with

- the corrected resampled t-test of Nadeau and Bengio (Machine Learning 52:239, 2003) for repeated
  random splits and CV folds: the variance of the mean difference is (1/J + n_test/n_train) s^2
  rather than s^2 / J, since the splits' training sets overlap; t with J - 1 degrees of freedom;
- a paired bootstrap over the held-out samples (`scipy.stats.bootstrap`, percentile interval) for
  a single split (the held-out split, the independent cohort).

`verdict` turns the comparison with the best baseline into one sentence. The paper's comparison,
pairwise two-sample Kolmogorov-Smirnov tests on the repeated splits' scores (`pairwise_ks`, with
Benjamini-Hochberg adjusted p-values), is kept beside them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from deepgami.evaluation.targets import value_columns
from deepgami.metrics import harrell_c

KS_COLUMNS = [
    "protocol",
    "metric",
    "method_a",
    "method_b",
    "n_a",
    "n_b",
    "mean_a",
    "mean_b",
    "statistic",
    "pvalue",
    "pvalue_bh",
]


def benjamini_hochberg(pvalues: Sequence[float]) -> np.ndarray:
    """Compute Benjamini-Hochberg adjusted p-values.

    They are the same numbers as `scipy.stats.false_discovery_control`.

    Parameters
    ----------
    pvalues : Sequence of float
        The p-values to adjust.

    Returns
    -------
    numpy.ndarray
        The adjusted p-values, in the order given.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    n = len(p)
    if n == 0:
        return p
    order = np.argsort(p, kind="stable")
    ranked = p[order] * n / np.arange(1, n + 1)
    # Step-up: each adjusted value is the smallest one at its rank or above.
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.clip(adjusted, 0.0, 1.0)
    return out


def pairwise_ks(scores: pd.DataFrame, methods: Sequence[str] | None = None) -> pd.DataFrame:
    """Run a two-sided two-sample KS test between every pair of methods, per (protocol, metric).

    The test is `scipy.stats.ks_2samp` (exact where scipy chooses it), between the per-split
    scores of every pair of methods. Methods are paired in the order of `methods` (default:
    first appearance); p-values are adjusted by Benjamini-Hochberg within each (protocol, metric).

    Parameters
    ----------
    scores : pandas.DataFrame
        Tidy scores: columns protocol, metric, method, value (one row per split).
    methods : Sequence of str or None, default None
        The methods to pair, in order (None: every method, in order of first appearance).

    Returns
    -------
    pandas.DataFrame
        One row per pair, with KS_COLUMNS.
    """
    rows = []
    for (protocol, metric), group in scores.groupby(["protocol", "metric"], sort=False):
        order = list(methods) if methods is not None else list(dict.fromkeys(group["method"]))
        values = {
            m: group.loc[group["method"] == m, "value"].dropna().to_numpy(dtype=np.float64)
            for m in order
        }
        pairs = []
        for a, b in combinations([m for m in order if len(values.get(m, [])) >= 2], 2):
            res = stats.ks_2samp(values[a], values[b])
            pairs.append(
                {
                    "protocol": protocol,
                    "metric": metric,
                    "method_a": a,
                    "method_b": b,
                    "n_a": len(values[a]),
                    "n_b": len(values[b]),
                    "mean_a": float(values[a].mean()),
                    "mean_b": float(values[b].mean()),
                    "statistic": float(res.statistic),
                    "pvalue": float(res.pvalue),
                }
            )
        adjusted = benjamini_hochberg([r["pvalue"] for r in pairs])
        for r, q in zip(pairs, adjusted, strict=False):
            r["pvalue_bh"] = float(q)
        rows.extend(pairs)
    return pd.DataFrame(rows, columns=KS_COLUMNS)


# -- paired differences to DeepGAMI ------------------------------------------------------------------

PAIRED_COLUMNS = [
    "protocol",
    "metric",
    "method",
    "reference",
    "test",
    "n",
    "mean_reference",
    "mean_method",
    "difference",
    "ci_low",
    "ci_high",
    "pvalue",
    "significant",
]
PAIRED_METRICS = {
    "classification": ("auc", "balanced_accuracy"),
    "regression": ("r2", "mse"),
    "survival": ("c_index",),
}
NB_TEST = "corrected resampled t (Nadeau-Bengio)"
BOOTSTRAP_TEST = "paired bootstrap over held-out samples"
BOOTSTRAP_RESAMPLES = 2000
# Preferred protocol for the verdict: the most splits first.
VERDICT_PROTOCOLS = ("repeated", "cv", "holdout", "independent")


def corrected_t(
    differences: Sequence[float], test_train_ratio: float, confidence: float = 0.95
) -> tuple[float, float, float, float]:
    """Run a Nadeau-Bengio corrected resampled t-test of paired per-split differences.

    It needs two or more differences.

    Parameters
    ----------
    differences : Sequence of float
        The paired per-split differences.
    test_train_ratio : float
        n_test / n_train of one split (1 / (k - 1) for k-fold CV).
    confidence : float, default 0.95
        The confidence level of the interval.

    Returns
    -------
    tuple of float
        (mean difference, interval low, interval high, two-sided p-value).
    """
    d = np.asarray(differences, dtype=np.float64)
    n = len(d)
    mean = float(d.mean())
    se = float(np.sqrt((1.0 / n + test_train_ratio) * d.var(ddof=1)))
    if se == 0.0:  # every split gives the same difference
        return mean, mean, mean, 1.0 if mean == 0.0 else 0.0
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * se
    p = float(2 * stats.t.sf(abs(mean) / se, n - 1))
    return mean, mean - half, mean + half, p


def _metric_rows(
    metric: str, task: str, y: np.ndarray, values: np.ndarray, idx: np.ndarray
) -> np.ndarray:
    """`metric` of each resample (rows of `idx`, positions into y / values), vectorized."""
    if task == "survival":
        return _harrell_rows(y, values, idx)
    yy = y[idx]
    if task == "regression":
        pred = values[idx]
        resid = ((yy - pred) ** 2).sum(axis=-1)
        if metric == "mse":
            return resid / yy.shape[-1]
        total = ((yy - yy.mean(axis=-1, keepdims=True)) ** 2).sum(axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return 1.0 - resid / total
    n_classes = values.shape[1]
    if metric == "balanced_accuracy":
        pred = values.argmax(axis=1)[idx]
        recalls = []
        for c in range(n_classes):
            pos = yy == c
            with np.errstate(divide="ignore", invalid="ignore"):
                recalls.append(
                    np.where(
                        pos.any(axis=-1),
                        (pos & (pred == c)).sum(axis=-1) / pos.sum(axis=-1),
                        np.nan,
                    )
                )
        return np.nanmean(np.stack(recalls), axis=0)
    # ROC AUC from ranks (Mann-Whitney); one-vs-rest macro average for several classes, as in
    # deepgami.metrics.classification_metrics.
    aucs = []
    for c in [1] if n_classes == 2 else range(n_classes):
        score = values[:, c][idx]
        pos = yy == c
        n_pos = pos.sum(axis=-1)
        n_neg = yy.shape[-1] - n_pos
        ranks = stats.rankdata(score, axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            aucs.append(((ranks * pos).sum(axis=-1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return np.mean(np.stack(aucs), axis=0)


def _harrell_rows(y: np.ndarray, risk: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Harrell's C of each resample; `y` holds (time, event) rows. scikit-survival's concordance
    is not vectorized over resamples: one call per resample (about a millisecond each)."""
    out = np.full(idx.shape[0], np.nan)
    for r, rows in enumerate(np.atleast_2d(idx)):
        c = harrell_c(y[rows, 1] == 1, y[rows, 0], risk[rows])
        if (
            c is not None
        ):  # a resample without a comparable pair has no C (NaN, dropped like an AUC's)
            out[r] = c
    return out


def paired_bootstrap(
    metric: str,
    task: str,
    y: np.ndarray,
    reference: np.ndarray,
    other: np.ndarray,
    seed: int,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = 0.95,
) -> tuple[float, float, float, float]:
    """Compute the difference metric(reference) - metric(other) on one held-out set, bootstrapped.

    Samples are resampled together for both methods (`scipy.stats.bootstrap`; percentile
    interval of the resamples with a defined metric); the p-value is twice the smaller share of
    resampled differences on either side of 0.

    Parameters
    ----------
    metric : str
        The metric compared.
    task : str
        ``classification``, ``regression`` or ``survival``.
    y : numpy.ndarray
        Class codes (or values) of the samples.
    reference : numpy.ndarray
        The reference method's probabilities (n x classes) or predictions for the samples.
    other : numpy.ndarray
        The other method's probabilities (n x classes) or predictions for the same samples.
    seed : int
        Seeds the resampling.
    n_resamples : int, default BOOTSTRAP_RESAMPLES
        The number of bootstrap resamples.
    confidence : float, default 0.95
        The confidence level of the interval.

    Returns
    -------
    tuple of float
        (difference, low, high, p-value); the last three are NaN when no resample has a defined
        metric.
    """
    y = np.asarray(y)
    full = np.arange(len(y))

    def diff(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        return _metric_rows(metric, task, y, reference, idx) - _metric_rows(
            metric, task, y, other, idx
        )

    point = float(diff(full[None, :])[0])
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        # A resample holding one class has no AUC: its NaN is dropped below instead of voiding the interval.
        warnings.simplefilter("ignore")
        res = stats.bootstrap(
            (full,),
            diff,
            n_resamples=n_resamples,
            vectorized=True,
            batch=250,
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    dist = res.bootstrap_distribution[np.isfinite(res.bootstrap_distribution)]
    if not len(dist):
        return point, float("nan"), float("nan"), float("nan")
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(dist, [tail, 100 - tail])
    p = float(min(1.0, 2 * min((dist <= 0).mean(), (dist >= 0).mean())))
    return point, float(low), float(high), p


def paired_tests(
    metrics: pd.DataFrame,
    predictions: pd.DataFrame,
    *,
    task: str,
    classes: Sequence[str],
    methods: Sequence[str],
    ratios: dict[str, float],
    reference: str = "deepgami",
    seed: int = 0,
) -> pd.DataFrame:
    """Compute paired differences `reference` minus each other method, per protocol and main metric.

    Multi-split protocols use `corrected_t`; single-split ones `paired_bootstrap` over the
    held-out samples. A difference is significant when its 95% interval excludes 0.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The tidy metrics table (rows with modalities 'all' are used).
    predictions : pandas.DataFrame
        The held-out predictions (for the bootstrap of single-split protocols).
    task : str
        ``classification``, ``regression`` or ``survival``.
    classes : Sequence of str
        The class names, in output order.
    methods : Sequence of str
        The methods to compare with `reference`, in order.
    ratios : dict of str to float
        n_test / n_train per multi-split protocol.
    reference : str, default "deepgami"
        The method the others are compared with.
    seed : int, default 0
        Seeds the bootstraps.

    Returns
    -------
    pandas.DataFrame
        One row per comparison, with PAIRED_COLUMNS.
    """
    rows = []
    main = metrics[(metrics["modalities"] == "all") & metrics["metric"].isin(PAIRED_METRICS[task])]
    for protocol in dict.fromkeys(main["protocol"]):
        sub = main[main["protocol"] == protocol]
        n_splits = sub["split"].nunique()
        for metric in PAIRED_METRICS[task]:
            table = sub[sub["metric"] == metric].pivot_table(
                index="split", columns="method", values="value"
            )
            if reference not in table:
                continue
            for _k, method in enumerate(m for m in methods if m != reference and m in table):
                pair = table[[reference, method]].dropna()
                row = {
                    "protocol": protocol,
                    "metric": metric,
                    **_pair_means(pair, reference, method),
                }
                if n_splits >= 2 and len(pair) >= 2:
                    est = corrected_t(pair[reference] - pair[method], ratios.get(protocol, 0.25))
                    row.update(test=NB_TEST, n=len(pair))
                elif n_splits == 1 and len(pair) == 1:
                    boot = _bootstrap_pair(
                        predictions, protocol, int(pair.index[0]), (reference, method), metric,
                        task, classes, seed,
                    )  # fmt: skip
                    if boot is None:
                        continue
                    est = boot[0]
                    row.update(test=BOOTSTRAP_TEST, n=boot[1])
                else:
                    continue
                diff, low, high, p = est
                row.update(
                    difference=diff,
                    ci_low=low,
                    ci_high=high,
                    pvalue=p,
                    significant=bool(np.isfinite(low) and (low > 0 or high < 0)),
                )
                rows.append(row)
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


def alone_tests(
    metrics: pd.DataFrame,
    predictions: pd.DataFrame,
    *,
    task: str,
    classes: Sequence[str],
    modalities: Sequence[str],
    ratios: dict[str, float],
    reference: str = "deepgami",
    alone: str = "deepgami_alone",
    seed: int = 0,
) -> pd.DataFrame:
    """Compute, per modality m, `reference` predicted from m minus `alone` trained on m.

    The rows of `reference` and `alone` with modalities m are compared as `paired_tests` compares
    methods on all modalities (same splits, same intervals); their `reference` and `method` read
    ``deepgami[m]`` and ``deepgami_alone[m]``. Held-out samples that lack m have no prediction
    from it and are left out of the bootstrap (as they are of the metrics).

    Parameters
    ----------
    metrics : pandas.DataFrame
        The tidy metrics table.
    predictions : pandas.DataFrame
        The held-out predictions (for the bootstrap of single-split protocols).
    task : str
        ``classification``, ``regression`` or ``survival``.
    classes : Sequence of str
        The class names, in output order.
    modalities : Sequence of str
        The cohort's modalities, in order.
    ratios : dict of str to float
        n_test / n_train per multi-split protocol.
    reference : str, default "deepgami"
        The method trained on every modality.
    alone : str, default "deepgami_alone"
        The method trained on one modality.
    seed : int, default 0
        Seeds the bootstraps.

    Returns
    -------
    pandas.DataFrame
        One row per protocol, main metric and modality, with PAIRED_COLUMNS.
    """
    frames = []
    cols = value_columns(task, list(classes))
    for m in modalities:
        names = {reference: f"{reference}[{m}]", alone: f"{alone}[{m}]"}
        met = _as_all(metrics, m, names)
        pred = _as_all(predictions, m, names) if len(predictions) else predictions
        if len(pred):
            pred = pred[np.isfinite(pred[cols].to_numpy(np.float64)).all(axis=1)]
        frames.append(
            paired_tests(
                met,
                pred,
                task=task,
                classes=classes,
                methods=[names[alone]],
                ratios=ratios,
                reference=names[reference],
                seed=seed,
            )  # fmt: skip
        )
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=PAIRED_COLUMNS)


def _as_all(table: pd.DataFrame, modality: str, names: dict[str, str]) -> pd.DataFrame:
    """The rows of the methods in `names` with modalities `modality`, renamed and marked 'all'."""
    keep = table["method"].isin(list(names)) & (table["modalities"].astype(str) == modality)
    out = table[keep].copy()
    out["method"] = out["method"].map(names)
    out["modalities"] = "all"
    return out


def _pair_means(pair: pd.DataFrame, reference: str, method: str) -> dict:
    """The method, the reference and their mean scores over the paired splits."""
    return {
        "method": method,
        "reference": reference,
        "mean_reference": float(pair[reference].mean()),
        "mean_method": float(pair[method].mean()),
    }


def _bootstrap_pair(
    predictions: pd.DataFrame,
    protocol: str,
    split: int,
    pair: tuple[str, str],
    metric: str,
    task: str,
    classes: Sequence[str],
    seed: int,
) -> tuple[tuple, int] | None:
    """The paired bootstrap of one split's held-out samples (reference, method) and its sample
    count; None with fewer than two samples."""
    reference, method = pair
    y, ref_v, oth_v = _paired_values(predictions, protocol, split, reference, method, task, classes)
    if len(y) < 2:
        return None
    est = paired_bootstrap(
        metric, task, y, ref_v, oth_v, _boot_seed(seed, protocol, metric, method)
    )
    return est, len(y)


def _boot_seed(seed: int, protocol: str, metric: str, method: str) -> int:
    import zlib

    return int(
        np.random.SeedSequence(
            [int(seed), zlib.crc32(f"{protocol}/{metric}/{method}".encode())]
        ).generate_state(1)[0]
    )


def _paired_values(
    predictions: pd.DataFrame,
    protocol: str,
    split: int,
    reference: str,
    method: str,
    task: str,
    classes: Sequence[str],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels (class codes or values) and both methods' predictions on the samples both scored."""
    p = predictions[
        (predictions["protocol"] == protocol)
        & (predictions["split"] == split)
        & (predictions["modalities"].astype(str) == "all")
    ]
    a = p[p["method"] == reference].set_index("sample")
    b = p[p["method"] == method].set_index("sample")
    shared = [s for s in a.index if s in b.index]
    a, b = a.loc[shared], b.loc[shared]
    cols = value_columns(task, list(classes))
    if task == "survival":
        y = a[["time", "event"]].to_numpy(np.float64)
        keep = np.isfinite(y).all(axis=1)
        return y[keep], a[cols[0]].to_numpy(np.float64)[keep], b[cols[0]].to_numpy(np.float64)[keep]
    if task == "classification":
        codes = {str(c): i for i, c in enumerate(classes)}
        y = np.array([codes.get(str(v), -1) for v in a["label"]])
        keep = y >= 0
        return y[keep], a[cols].to_numpy(np.float64)[keep], b[cols].to_numpy(np.float64)[keep]
    y = a["label"].to_numpy(np.float64)
    keep = np.isfinite(y)
    return y[keep], a[cols[0]].to_numpy(np.float64)[keep], b[cols[0]].to_numpy(np.float64)[keep]


def verdict(
    paired: pd.DataFrame, summary: pd.DataFrame, task: str, baselines: Sequence[str]
) -> dict | None:
    """Pick the comparison behind the report's verdict line.

    It compares DeepGAMI against the best baseline (highest mean of the main metric) on the
    protocol with the most splits (`VERDICT_PROTOCOLS` order).

    Parameters
    ----------
    paired : pandas.DataFrame
        What `paired_tests` returned.
    summary : pandas.DataFrame
        The summary table (mean of each metric per protocol, method and modalities).
    task : str
        ``classification``, ``regression`` or ``survival``.
    baselines : Sequence of str
        The baselines' names.

    Returns
    -------
    dict or None
        The paired_tests row as a dict (protocol, metric, method, difference, ci_low, ci_high,
        significant, ...), or None without a baseline to compare.
    """
    metric = PAIRED_METRICS[task][0]
    for protocol in VERDICT_PROTOCOLS:
        rows = paired[
            (paired["protocol"] == protocol)
            & (paired["metric"] == metric)
            & paired["method"].isin(list(baselines))
        ]
        if rows.empty:
            continue
        s = summary[
            (summary["protocol"] == protocol)
            & (summary["metric"] == metric)
            & (summary["modalities"] == "all")
            & summary["method"].isin(list(rows["method"]))
        ]
        s = s.dropna(subset=["mean"])
        best = str(s.loc[s["mean"].idxmax(), "method"]) if len(s) else str(rows["method"].iloc[0])
        row = rows[rows["method"] == best].iloc[0].to_dict()
        row["significant"] = str(row["significant"]).lower() == "true"
        return row
    return None


def alone_verdict(paired: pd.DataFrame, task: str) -> list[dict]:
    """Pick the rows of `alone_tests` behind the report's second header line.

    Those of the main metric on the protocol with the most splits (`VERDICT_PROTOCOLS` order),
    one per modality.

    Parameters
    ----------
    paired : pandas.DataFrame
        The paired tests, `alone_tests` rows included (their method reads ``deepgami_alone[m]``).
    task : str
        ``classification``, ``regression`` or ``survival``.

    Returns
    -------
    list of dict
        The rows as dicts, with ``modality`` added; empty without such rows.
    """
    metric = PAIRED_METRICS[task][0]
    alone = paired[paired["method"].astype(str).str.contains(r"\[", regex=True)]
    for protocol in VERDICT_PROTOCOLS:
        rows = alone[(alone["protocol"] == protocol) & (alone["metric"] == metric)]
        if rows.empty:
            continue
        out = []
        for row in rows.to_dict("records"):
            row["modality"] = str(row["method"]).split("[", 1)[1].rstrip("]")
            row["significant"] = str(row["significant"]).lower() == "true"
            out.append(row)
        return out
    return []
