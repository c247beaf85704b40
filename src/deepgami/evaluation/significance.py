"""Comparing methods over repeated splits: pairwise two-sample Kolmogorov-Smirnov tests.

The paper compares methods by the distributions of their test scores over repeated random
80/20 splits with KS tests. `pairwise_ks` does that for every pair of methods and adds
Benjamini-Hochberg adjusted p-values over the pairs of one metric.
"""

from __future__ import annotations

from itertools import combinations
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

KS_COLUMNS = ["protocol", "metric", "method_a", "method_b", "n_a", "n_b", "mean_a", "mean_b", "statistic",
              "pvalue", "pvalue_bh"]


def benjamini_hochberg(pvalues: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (the same numbers as `scipy.stats.false_discovery_control`)."""
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
    """Two-sided two-sample KS test (`scipy.stats.ks_2samp`, exact where scipy chooses it) between
    the per-split scores of every pair of methods, per (protocol, metric).

    `scores` is tidy: columns protocol, metric, method, value (one row per split). Methods are
    paired in the order of `methods` (default: first appearance). Returns KS_COLUMNS.
    """
    rows = []
    for (protocol, metric), group in scores.groupby(["protocol", "metric"], sort=False):
        order = list(methods) if methods is not None else list(dict.fromkeys(group["method"]))
        values = {m: group.loc[group["method"] == m, "value"].dropna().to_numpy(dtype=np.float64) for m in order}
        pairs = []
        for a, b in combinations([m for m in order if len(values.get(m, [])) >= 2], 2):
            res = stats.ks_2samp(values[a], values[b])
            pairs.append({"protocol": protocol, "metric": metric, "method_a": a, "method_b": b,
                          "n_a": len(values[a]), "n_b": len(values[b]), "mean_a": float(values[a].mean()),
                          "mean_b": float(values[b].mean()), "statistic": float(res.statistic),
                          "pvalue": float(res.pvalue)})
        adjusted = benjamini_hochberg([r["pvalue"] for r in pairs])
        for r, q in zip(pairs, adjusted):
            r["pvalue_bh"] = float(q)
        rows.extend(pairs)
    return pd.DataFrame(rows, columns=KS_COLUMNS)
