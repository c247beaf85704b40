"""Evaluation figures (matplotlib ``Figure`` objects, no pyplot state and no backend switch): ROC curves, per-class recall, repeated-split box plots,
DeepGAMI by input modalities, training curves. One colour per method in every figure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from deepgami.evaluation.baselines import BASELINES
from deepgami.report.labels import PROTOCOL_LABELS, method_label
from deepgami.utils import save_png

# Fixed per method, so a method has the same colour in every figure and every report.
METHOD_COLORS = {
    "deepgami": "#1f5fa8",
    "deepgami_meanfill": "#86b4e0",
    "deepgami_dense": "#6a3d9a",
    "deepgami_random_prior": "#e07b24",
    "deepgami_bernoulli_prior": "#c0392b",
    "deepgami_alone": "#2ca58d",
    # The baselines' colours live in their registry.
    **{name: b.color for name, b in BASELINES.items()},
}
_FALLBACK = ["#17becf", "#bcbd22", "#e377c2", "#393b79"]
STYLE = {
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "font.size": 9,
    "axes.titlesize": 10,
    "legend.fontsize": 8,
    "legend.frameon": False,
}


def new_figure(figsize: tuple[float, float], pyplot: bool = False) -> Figure:
    """Create a new, empty figure.

    A plain ``Figure`` (drawn and saved without any backend), or with `pyplot` one that pyplot
    manages (shown inline in a notebook, by ``plt.show()`` elsewhere).

    Parameters
    ----------
    figsize : tuple of float
        Width and height in inches.
    pyplot : bool, default False
        Create it through pyplot.

    Returns
    -------
    matplotlib.figure.Figure
        The empty figure.
    """
    if pyplot:
        import matplotlib.pyplot as plt

        return plt.figure(figsize=figsize)
    return Figure(figsize=figsize)


def new_axes(
    figsize: tuple[float, float], ax: Axes | None = None, pyplot: bool = False
) -> tuple[Figure, Axes]:
    """`ax` and its figure, or the one Axes of a :func:`new_figure`.

    Parameters
    ----------
    figsize : tuple of float
        Size of a new figure, in inches.
    ax : matplotlib.axes.Axes, optional
        Draw on this Axes instead.
    pyplot : bool, default False
        A new figure is pyplot's (see :func:`new_figure`).

    Returns
    -------
    tuple of Figure and Axes
        The figure and the Axes to draw on.
    """
    if ax is not None:
        return ax.figure, ax
    fig = new_figure(figsize, pyplot)
    return fig, fig.subplots()


def method_color(method: str) -> str:
    """The fixed colour of a method, the same in every figure.

    Parameters
    ----------
    method : str
        A method id (``deepgami``, a baseline's name, ...).

    Returns
    -------
    str
        A hex colour; unknown methods get a stable one from a small fallback palette.
    """
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    return _FALLBACK[sum(map(ord, method)) % len(_FALLBACK)]


def label(method: str) -> str:
    """Return the display name of a method (`deepgami.report.labels`).

    Parameters
    ----------
    method : str
        A method id (``deepgami``, a baseline's name, ...).

    Returns
    -------
    str
        The display name (the id when unknown).
    """
    return method_label(method)


def save(fig: Figure, path: str | Path) -> Path:
    """Save `fig` as a PNG without a timestamp, so the same inputs give the same bytes.

    The figure is closed (see `deepgami.utils.save_png`).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    path : str or pathlib.Path
        Where to write it.

    Returns
    -------
    pathlib.Path
        `path`.
    """
    return save_png(fig, path)


def _ordered(methods: Sequence[str], order: Sequence[str] | None) -> list[str]:
    present = list(dict.fromkeys(methods))
    if order is None:
        return present
    return [m for m in order if m in present] + [m for m in present if m not in order]


def roc_curves(
    predictions: pd.DataFrame,
    classes: Sequence[str],
    protocol: str,
    order: Sequence[str] | None = None,
    ax: Axes | None = None,
    pyplot: bool = False,
) -> Figure | None:
    """Draw the ROC curve of each method (all modalities) on one protocol's held-out predictions.

    The predictions are pooled over the protocol's splits. Two classes: the second class is
    positive; more: micro-averaged one-vs-rest.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Held-out predictions: method, modalities, protocol, split, label, ``prob_<class>``.
    classes : sequence of str
        Class names in probability-column order.
    protocol : str
        Which protocol's predictions to draw.
    order : sequence of str, optional
        Methods in legend order (others after them).
    ax : matplotlib.axes.Axes, optional
        Draw on this Axes (default: a new figure).
    pyplot : bool, default False
        A new figure is pyplot's (see :func:`new_figure`).

    Returns
    -------
    matplotlib.figure.Figure or None
        The figure; None without predictions of that protocol or with fewer than two classes.
    """
    sub = predictions[(predictions["protocol"] == protocol) & (predictions["modalities"] == "all")]
    if sub.empty or len(classes) < 2:
        return None
    with mpl.rc_context(STYLE):
        fig, ax = new_axes((5.2, 4.6), ax, pyplot)
        ax.plot([0, 1], [0, 1], color="#bbbbbb", lw=1, ls="--")
        for method in _ordered(sub["method"], order):
            curve = _roc(sub[sub["method"] == method], classes)
            if curve is None:
                continue
            fpr, tpr, auc = curve
            ax.plot(
                fpr,
                tpr,
                color=method_color(method),
                lw=2.2 if method == "deepgami" else 1.4,
                label=f"{label(method)} ({auc:.3f})",
            )
        pooled = sub.groupby("method")["split"].nunique().max() > 1
        ax.set_title(_roc_title(protocol, classes, pooled))
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.legend(loc="lower right", title="method (AUC)")
    return fig


def _roc_title(protocol: str, classes: Sequence[str], pooled: bool) -> str:
    """'ROC, <protocol> (pooled folds)' over the positive class or the averaging."""
    what = f"{classes[1]} vs {classes[0]}" if len(classes) == 2 else "micro-averaged one-vs-rest"
    return f"ROC, {PROTOCOL_LABELS.get(protocol, protocol)}{' (pooled folds)' if pooled else ''}\n{what}"


def _roc(rows: pd.DataFrame, classes: Sequence[str]) -> tuple[Any, Any, float] | None:
    """False and true positive rates and the AUC of one method's rows (None with one class)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    rows = rows[rows["label"].astype(str).isin(classes)]
    proba = rows[[f"prob_{c}" for c in classes]].to_numpy(dtype=float)
    ok = ~np.isnan(proba).any(axis=1)
    y = rows["label"].astype(str).to_numpy()[ok]
    proba = proba[ok]
    if len(np.unique(y)) < 2:
        return None
    if len(classes) == 2:
        truth, score = (y == classes[1]).astype(int), proba[:, 1]
    else:
        truth = (y[:, None] == np.asarray(classes)[None, :]).astype(int).ravel()
        score = proba.ravel()
    fpr, tpr, _ = roc_curve(truth, score)
    return fpr, tpr, roc_auc_score(truth, score)


def recall_bars(
    metrics: pd.DataFrame,
    classes: Sequence[str],
    protocols: Sequence[str],
    order: Sequence[str] | None = None,
) -> Figure | None:
    """Draw the recall per class and method (all modalities), one panel per protocol.

    Each bar is the mean over splits, with the standard deviation.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The tidy per-split metrics (method, modalities, protocol, split, metric, value).
    classes : sequence of str
        The class names (a ``recall_<class>`` metric each).
    protocols : sequence of str
        The protocols to draw, in panel order (those without recalls are left out).
    order : sequence of str, optional
        Methods in legend order (others after them).

    Returns
    -------
    matplotlib.figure.Figure or None
        The figure; None without recall metrics.
    """
    sub = metrics[
        (metrics["modalities"] == "all")
        & metrics["metric"].str.startswith("recall_")
        & metrics["protocol"].isin(protocols)
    ]
    if sub.empty:
        return None
    protocols = [p for p in protocols if p in set(sub["protocol"])]
    methods = _ordered(sub["method"], order)
    with mpl.rc_context(STYLE):
        panel = max(2.8, 0.28 * len(methods) * len(classes) + 0.8)
        fig = new_figure((panel * len(protocols) + 0.6, 3.4))
        axes = fig.subplots(1, len(protocols), squeeze=False, sharey=True)
        width = 0.8 / len(methods)
        for ax, protocol in zip(axes[0], protocols, strict=False):
            for i, method in enumerate(methods):
                means, sds = [], []
                for c in classes:
                    v = sub[
                        (sub["protocol"] == protocol)
                        & (sub["method"] == method)
                        & (sub["metric"] == f"recall_{c}")
                    ]["value"]
                    means.append(v.mean() if len(v) else np.nan)
                    sds.append(v.std(ddof=1) if len(v) > 1 else 0.0)
                x = np.arange(len(classes)) - 0.4 + width * (i + 0.5)
                ax.bar(
                    x,
                    means,
                    width * 0.92,
                    yerr=sds,
                    color=method_color(method),
                    label=label(method),
                    error_kw={"lw": 0.8, "capsize": 1.5, "ecolor": "#444444"},
                )
            ax.set_xticks(np.arange(len(classes)), [str(c) for c in classes])
            ax.set_ylim(0, 1.05)
            ax.set_title(PROTOCOL_LABELS.get(protocol, protocol))
            ax.grid(axis="x", visible=False)
        axes[0][0].set_ylabel("recall (sensitivity per class)")
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5))
        fig.tight_layout()
    return fig


def split_boxplots(
    metrics: pd.DataFrame,
    protocol: str,
    metric_names: Sequence[str],
    order: Sequence[str] | None = None,
) -> Figure | None:
    """Draw the per-split scores of each method (all modalities) as box plots with the points.

    One panel per metric.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The tidy per-split metrics (method, modalities, protocol, split, metric, value).
    protocol : str
        Which protocol's splits to draw.
    metric_names : sequence of str
        The metrics, one panel each.
    order : sequence of str, optional
        Methods in legend order (others after them).

    Returns
    -------
    matplotlib.figure.Figure or None
        The figure; None without scores of that protocol and those metrics.
    """
    sub = metrics[
        (metrics["protocol"] == protocol)
        & (metrics["modalities"] == "all")
        & metrics["metric"].isin(metric_names)
    ]
    if sub.empty:
        return None
    methods = _ordered(sub["method"], order)
    rng = np.random.default_rng(0)  # jitter; fixed so the figure is reproducible
    with mpl.rc_context(STYLE):
        fig = new_figure((1.2 + 0.62 * len(methods) * len(metric_names) + 1, 4.2))
        axes = fig.subplots(1, len(metric_names), squeeze=False)
        for ax, metric in zip(axes[0], metric_names, strict=False):
            values = [
                sub[(sub["method"] == m) & (sub["metric"] == metric)]["value"].to_numpy()
                for m in methods
            ]
            box = ax.boxplot(
                values,
                patch_artist=True,
                widths=0.6,
                showfliers=False,
                medianprops={"color": "#222222"},
            )
            for patch, m in zip(box["boxes"], methods, strict=False):
                patch.set_facecolor(method_color(m))
                patch.set_alpha(0.55)
            for i, v in enumerate(values):
                ax.scatter(
                    i + 1 + rng.uniform(-0.15, 0.15, len(v)),
                    v,
                    s=8,
                    color=method_color(methods[i]),
                    edgecolor="none",
                    zorder=3,
                )
            ax.set_xticks(
                np.arange(1, len(methods) + 1), [label(m) for m in methods], rotation=35, ha="right"
            )
            ax.set_title(metric.replace("_", " "))
            ax.grid(axis="x", visible=False)
        n = sub.groupby("method")["split"].nunique().max()
        fig.suptitle(f"{PROTOCOL_LABELS.get(protocol, protocol)}: {n} splits", fontsize=10)
        fig.tight_layout()
    return fig


def modality_bars(
    metrics: pd.DataFrame, modalities: Sequence[str], protocols: Sequence[str], metric: str = "auc"
) -> Figure | None:
    """Draw DeepGAMI's scores by the modalities given at test time, one group per protocol.

    The bars are: all modalities, each alone with the others imputed, each alone with the
    others mean-filled, and (where `deepgami_alone` ran) DeepGAMI trained on that modality alone;
    mean and sd over splits.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The tidy per-split metrics (method, modalities, protocol, split, metric, value).
    modalities : sequence of str
        The model's modalities.
    protocols : sequence of str
        The protocols to draw, in group order (those without scores are left out).
    metric : str, default "auc"
        The metric drawn.

    Returns
    -------
    matplotlib.figure.Figure or None
        The figure; None without DeepGAMI scores of that metric.
    """
    methods = ["deepgami", "deepgami_meanfill", "deepgami_alone"]
    sub = metrics[metrics["method"].isin(methods) & (metrics["metric"] == metric)]
    if sub.empty:
        return None
    sets = [("deepgami", "all", "all modalities")]
    alone = set(sub.loc[sub["method"] == "deepgami_alone", "modalities"])
    for m in modalities:
        sets.append(("deepgami", m, f"{m} only, others imputed"))
        sets.append(("deepgami_meanfill", m, f"{m} only, others mean-filled"))
        if m in alone:
            sets.append(("deepgami_alone", m, f"{m} only, trained on {m} alone"))
    protocols = [p for p in protocols if p in set(sub["protocol"])]
    with mpl.rc_context(STYLE):
        fig, ax = new_axes((1.5 + 0.5 * len(sets) * len(protocols), 3.8))
        width = 0.8 / len(sets)
        for i, (method, mods, text) in enumerate(sets):
            means, sds = [], []
            for p in protocols:
                v = sub[
                    (sub["protocol"] == p) & (sub["method"] == method) & (sub["modalities"] == mods)
                ]["value"]
                means.append(v.mean() if len(v) else np.nan)
                sds.append(v.std(ddof=1) if len(v) > 1 else 0.0)
            color = method_color(method)
            k = 0 if mods == "all" else modalities.index(mods) + 1
            shade = 1.0 if k == 0 else 0.55 + 0.45 * (k / max(len(modalities), 1))
            x = np.arange(len(protocols)) - 0.4 + width * (i + 0.5)
            ax.bar(
                x,
                means,
                width * 0.92,
                yerr=sds,
                color=color,
                alpha=shade,
                label=text,
                hatch="//" if method == "deepgami_meanfill" else None,
                edgecolor="white",
                error_kw={"lw": 0.8, "capsize": 1.5, "ecolor": "#444444"},
            )
        ax.set_xticks(np.arange(len(protocols)), [PROTOCOL_LABELS.get(p, p) for p in protocols])
        ax.set_ylabel(metric.replace("_", " "))
        lo = np.nanmin(sub["value"]) if len(sub) else 0.5
        ax.set_ylim(max(0.0, min(0.5, lo - 0.05)), 1.0)
        ax.set_title("DeepGAMI by the modalities given at test time")
        ax.grid(axis="x", visible=False)
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig


def training_curves(histories: dict[str, pd.DataFrame]) -> Figure | None:
    """Draw the loss per epoch (training and inner validation) of each history.

    The best epoch is marked.

    Parameters
    ----------
    histories : dict of str to pandas.DataFrame
        Training histories by panel title (``epoch``, ``train_loss`` and optionally ``val_loss``
        and ``best`` columns); the title's first word, a method id, picks the colour. Empty
        histories and those without an ``epoch`` column are skipped.

    Returns
    -------
    matplotlib.figure.Figure or None
        The figure, one panel per history; None when no history is left.
    """
    histories = {
        k: h for k, h in histories.items() if h is not None and not h.empty and "epoch" in h
    }
    if not histories:
        return None
    with mpl.rc_context(STYLE):
        n = len(histories)
        cols = min(n, 3)
        rows = (n + cols - 1) // cols
        fig = new_figure((3.6 * cols, 2.9 * rows))
        axes = fig.subplots(rows, cols, squeeze=False)
        for ax, (title, h) in zip(axes.ravel(), histories.items(), strict=False):
            method = title.split(" ")[0]
            color = method_color(method) if method in METHOD_COLORS else "#1f5fa8"
            ax.plot(h["epoch"], h["train_loss"], color=color, lw=1.5, label="training")
            if "val_loss" in h and h["val_loss"].notna().any():
                ax.plot(h["epoch"], h["val_loss"], color=color, lw=1.5, ls="--", label="validation")
            if "best" in h and h["best"].astype(str).str.lower().eq("true").any():
                best = h.loc[h["best"].astype(str).str.lower() == "true", "epoch"].iloc[0]
                ax.axvline(best, color="#888888", lw=0.8, ls=":")
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.set_ylabel("loss")
            ax.legend()
        for ax in axes.ravel()[n:]:
            ax.set_visible(False)
        fig.tight_layout()
    return fig


def importance_bars(
    table: pd.DataFrame,
    title: str,
    top: int = 15,
    ax: Axes | None = None,
    pyplot: bool = False,
) -> Figure | None:
    """Horizontal bars of the top `top` importances of a prioritization table.

    Parameters
    ----------
    table : pandas.DataFrame
        A features, latent or links table (an ``importance`` column).
    title : str
        The title.
    top : int, default 15
        How many bars.
    ax : matplotlib.axes.Axes, optional
        Draw on this Axes (default: a new figure).
    pyplot : bool, default False
        A new figure is pyplot's (see :func:`new_figure`).

    Returns
    -------
    matplotlib.figure.Figure or None
        The figure; None for an empty table or one without importances.
    """
    if table is None or table.empty or "importance" not in table:
        return None
    name_col = next(
        (c for c in ("feature", "name", "source", "node", "latent", "target") if c in table),
        table.columns[0],
    )
    t = table.copy()
    if "source" in t and "target" in t:
        t["_name"] = t["source"].astype(str) + " \u2192 " + t["target"].astype(str)
    else:
        t["_name"] = t[name_col].astype(str)
    t = t.sort_values("importance", key=lambda v: -v.abs(), kind="stable").head(top).iloc[::-1]
    with mpl.rc_context(STYLE):
        own = ax is None
        fig, ax = new_axes((5.6, 0.28 * len(t) + 1.0), ax, pyplot)
        colors = [
            method_color("deepgami") if v >= 0 else METHOD_COLORS["deepgami_bernoulli_prior"]
            for v in t["importance"]
        ]
        ax.barh(np.arange(len(t)), t["importance"], color=colors)
        ax.set_yticks(np.arange(len(t)), t["_name"])
        ax.set_xlabel("importance")
        ax.set_title(title)
        ax.grid(axis="y", visible=False)
        if own:  # a caller's figure keeps its own layout
            fig.tight_layout()
    return fig


RISK_GROUP_COLORS = {"low": "#1b9e77", "mid": "#7570b3", "high": "#d95f02"}


def kaplan_meier_curves(
    time: Sequence[float],
    event: Sequence[float],
    group: Sequence[Any],
    title: str = "Kaplan-Meier by predicted risk group",
    ax: Axes | None = None,
    pyplot: bool = False,
) -> Figure | None:
    """Kaplan-Meier survival curves, one per predicted risk group (low / mid / high).

    Estimated with `sksurv.nonparametric.kaplan_meier_estimator` on the rows with a known time,
    event and group.

    Parameters
    ----------
    time : sequence of float
        Follow-up time per sample.
    event : sequence of float
        1 where the event was observed, 0 where censored.
    group : sequence
        The risk group per sample (``low``, ``mid``, ``high``; None where unknown).
    title : str, default "Kaplan-Meier by predicted risk group"
        The Axes title.
    ax : matplotlib.axes.Axes or None, default None
        Draw on this Axes (default: a new figure).
    pyplot : bool, default False
        A new figure is pyplot's (see :func:`new_figure`).

    Returns
    -------
    matplotlib.figure.Figure or None
        None when no group has a row with a known time.
    """
    from sksurv.nonparametric import kaplan_meier_estimator

    table = pd.DataFrame({"time": time, "event": event, "group": group}).dropna()
    if table.empty:
        return None
    fig, ax = new_axes((5.0, 3.6), ax, pyplot)
    for name in [g for g in RISK_GROUP_COLORS if g in set(table["group"])]:
        rows = table[table["group"] == name]
        t, s = kaplan_meier_estimator(rows["event"].to_numpy() == 1, rows["time"].to_numpy())
        ax.step(t, s, where="post", color=RISK_GROUP_COLORS[name], label=f"{name} (n={len(rows)})")
    ax.set_xlabel("time")
    ax.set_ylabel("survival probability")
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(frameon=False, title="predicted risk")
    return fig


def survival_targets_km(table: pd.DataFrame, targets: Sequence[str]) -> Figure | None:
    """Kaplan-Meier curves by predicted risk group, one panel per survival target.

    Each panel is :func:`kaplan_meier_curves` of ``<target>:time``, ``<target>:event`` and
    ``<target>:risk_group`` (the tertiles of the training risk) of a prediction table.

    Parameters
    ----------
    table : pandas.DataFrame
        A prediction table of a model with survival targets.
    targets : sequence of str
        The survival targets' names.

    Returns
    -------
    matplotlib.figure.Figure or None
        None when no target has a row with a known time, event and risk group.
    """
    columns = ("time", "event", "risk_group")
    known = [
        t
        for t in targets
        if all(f"{t}:{c}" in table for c in columns)
        and table[[f"{t}:{c}" for c in columns]].notna().all(axis=1).any()
    ]
    if not known:
        return None
    fig = new_figure((5.0 * len(known), 3.6))
    for ax, name in zip(np.atleast_1d(fig.subplots(1, len(known))), known, strict=True):
        kaplan_meier_curves(
            *(table[f"{name}:{c}"] for c in columns),
            title=f"{name}: Kaplan-Meier by predicted risk group",
            ax=ax,
        )
    fig.tight_layout()
    return fig
