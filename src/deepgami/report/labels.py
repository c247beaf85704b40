"""The one table of display names: methods, metrics and protocols, for the report, figures and CLI."""

from __future__ import annotations

from typing import Any

from deepgami.evaluation.baselines import BASELINES

METHOD_LABELS = {
    "deepgami": "DeepGAMI",
    "deepgami_meanfill": "DeepGAMI (mean-fill)",
    "deepgami_dense": "DeepGAMI, no prior (dense)",
    "deepgami_random_prior": "DeepGAMI, random prior",
    "deepgami_bernoulli_prior": "DeepGAMI, Bernoulli prior",
    "deepgami_alone": "DeepGAMI, trained on one modality",
    # The baselines' labels live in their registry.
    **{name: b.label for name, b in BASELINES.items()},
}

METRIC_LABELS = {
    "auc": "AUC",
    "balanced_accuracy": "Balanced acc.",
    "accuracy": "Accuracy",
    "f1_macro": "F1 (macro)",
    "r2": "R\u00b2",
    "pearson": "Pearson r",
    "mse": "MSE",
    "rmse": "RMSE",
    "c_index": "C-index",
    "c_index_uno": "Uno's C",
}

PROTOCOL_LABELS = {
    "holdout": "held-out split",
    "cv": "cross-validation",
    "repeated": "repeated random splits",
    "independent": "independent cohort",
}


def method_label(method: str) -> str:
    """Return the display name of a method (its id when unknown).

    Parameters
    ----------
    method : str
        The method id, e.g. ``deepgami_dense`` or a baseline's name; ``deepgami[snp]`` and
        ``deepgami_alone[snp]`` name the two sides of a paired row of ``deepgami_alone``.

    Returns
    -------
    str
        The display name, e.g. ``DeepGAMI, no prior (dense)``.
    """
    if method.endswith("]") and "[" in method:  # the paired rows of deepgami_alone
        name, modality = method[:-1].split("[", 1)
        if name == "deepgami":
            return f"DeepGAMI trained on all, predicted from {modality}"
        if name == "deepgami_alone":
            return f"DeepGAMI trained on {modality} alone"
    return METHOD_LABELS.get(method, method)


def metric_label(metric: str) -> str:
    """Return the display name of a metric (its id when unknown).

    Parameters
    ----------
    metric : str
        The metric id, e.g. ``balanced_accuracy``.

    Returns
    -------
    str
        The display name, e.g. ``Balanced acc.``.
    """
    return METRIC_LABELS.get(metric, metric)


def protocol_label(protocol: str) -> str:
    """Return the lower-case name of a protocol, for running text and figure titles.

    Parameters
    ----------
    protocol : str
        The protocol id, e.g. ``holdout`` (its id is returned when unknown).

    Returns
    -------
    str
        The name, e.g. ``held-out split``.
    """
    return PROTOCOL_LABELS.get(protocol, protocol)


def protocol_title(protocol: str) -> str:
    """Return the protocol's name as a heading: 'Held-out split'.

    Parameters
    ----------
    protocol : str
        The protocol id, e.g. ``holdout``.

    Returns
    -------
    str
        The name with a capital first letter.
    """
    text = protocol_label(protocol)
    return text[:1].upper() + text[1:]


def verdict_sentence(row: dict[str, Any] | None) -> str | None:
    """Return the report's one-line verdict from a row of the paired tests.

    E.g. "DeepGAMI vs the best baseline (SVM, repeated random splits): +0.012 AUC, 95% interval
    -0.010 to +0.034, not significant".

    Parameters
    ----------
    row : dict or None
        The row `deepgami.evaluation.significance.verdict` returns (reference, method, protocol,
        metric, difference, ci_low, ci_high, significant), or None.

    Returns
    -------
    str or None
        The sentence, or None without a row.
    """
    if not row:
        return None
    word = "significant" if row["significant"] else "not significant"
    return (
        f"{method_label(row['reference'])} vs the best baseline ({method_label(row['method'])}, "
        f"{protocol_label(row['protocol'])}): {row['difference']:+.3f} {metric_label(row['metric'])}, "
        f"95% interval {row['ci_low']:+.3f} to {row['ci_high']:+.3f}, {word}"
    )


def alone_sentence(rows: list[dict[str, Any]] | None) -> str | None:
    """Return the report's line on DeepGAMI trained on all vs on each modality alone.

    E.g. "DeepGAMI trained on all vs on one modality alone (cross-validation, AUC, predicted from
    that modality): snp +0.031 (95% interval -0.010 to +0.072, not significant); expr ...".

    Parameters
    ----------
    rows : list of dict or None
        The rows `deepgami.evaluation.significance.alone_verdict` returns (modality, protocol,
        metric, difference, ci_low, ci_high, significant).

    Returns
    -------
    str or None
        The sentence, or None without rows.
    """
    if not rows:
        return None
    parts = [
        f"{r['modality']} {r['difference']:+.3f} (95% interval {r['ci_low']:+.3f} to "
        f"{r['ci_high']:+.3f}, {'significant' if r['significant'] else 'not significant'})"
        for r in rows
    ]
    first = rows[0]
    return (
        f"DeepGAMI trained on all vs on one modality alone ({protocol_label(first['protocol'])}, "
        f"{metric_label(first['metric'])}, predicted from that modality): " + "; ".join(parts)
    )
