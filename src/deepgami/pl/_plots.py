"""`deepgami.pl.roc`, `deepgami.pl.top_links`, `deepgami.pl.importance`: thin over the report's
figures, with scanpy's ``ax`` / ``show`` / ``return_fig``."""

from __future__ import annotations

from collections.abc import Sequence

import mudata as md
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from deepgami.report.figures import importance_bars, kaplan_meier_curves, roc_curves
from deepgami.report.linkplot import top_links_figure


def _finish(
    fig: Figure, ax: Axes | None, show: bool | None, return_fig: bool
) -> Figure | Axes | None:
    """scanpy's return convention: the figure with `return_fig`; else show it (the default) and
    return None, or with ``show=False`` return its Axes."""
    if return_fig:
        return fig
    if show is None or show:
        import matplotlib.pyplot as plt

        plt.show()
        return None
    return ax if ax is not None else fig.axes[0]


def _pyplot(ax: Axes | None, return_fig: bool) -> bool:
    """A new figure goes through pyplot (shown inline) unless the caller takes the figure."""
    return ax is None and not return_fig


def roc(
    data: pd.DataFrame | md.MuData,
    classes: Sequence[str] | None = None,
    *,
    key: str = "deepgami",
    label_key: str = "label",
    method: str = "deepgami",
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Figure | Axes | None:
    """ROC curve of predictions against the known labels.

    Parameters
    ----------
    data : pandas.DataFrame or mudata.MuData
        A prediction table (:meth:`DeepGAMI.predict`), or a cohort on which
        :func:`deepgami.tl.predict` stored ``obsm[f"{key}_proba"]``.
    classes : sequence of str or None, default None
        Class names in probability-column order (default: from the probability columns).
    key : str, default "deepgami"
        The `key_added` of :func:`deepgami.tl.predict` when `data` is a cohort.
    label_key : str, default "label"
        The column of the known labels: of ``mdata.obs`` for a cohort, else of the table.
    method : str, default "deepgami"
        The name in the legend (and its colour).
    ax : matplotlib.axes.Axes or None, default None
        Draw on this Axes (default: a new figure).
    show : bool or None, default None
        Show the figure (default True); False returns the Axes.
    return_fig : bool, default False
        Return the Figure.

    Returns
    -------
    matplotlib.figure.Figure, matplotlib.axes.Axes or None
        See `show` and `return_fig`. Two classes: the second is positive; more:
        micro-averaged one-vs-rest.

    Raises
    ------
    ValueError
        When fewer than two classes are among the labelled samples.
    """
    if isinstance(data, md.MuData):
        proba = data.obsm[f"{key}_proba"]
        table = pd.DataFrame({"label": data.obs[label_key].astype(str).to_numpy()})
        for c in proba.columns:
            table[f"prob_{c}"] = proba[c].to_numpy()
    else:
        table = data.rename(columns={label_key: "label"})
    if classes is None:
        classes = [c[len("prob_") :] for c in table.columns if c.startswith("prob_")]
    rows = table.dropna(subset=["label"]).assign(
        method=method, modalities="all", protocol="holdout", split=0
    )
    fig = roc_curves(rows, list(classes), "holdout", ax=ax, pyplot=_pyplot(ax, return_fig))
    if fig is None:
        raise ValueError("a ROC curve needs two or more classes among the labelled samples")
    return _finish(fig, ax, show, return_fig)


def top_links(
    data: pd.DataFrame | dict | md.MuData,
    cls: str | None = None,
    top: int = 30,
    *,
    key: str = "deepgami_prioritize",
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Figure | Axes | None:
    """The `top` highest-ranked prior links of class `cls` as a source -> latent gene network.

    Parameters
    ----------
    data : pandas.DataFrame, dict or mudata.MuData
        A cohort on which :func:`deepgami.tl.prioritize` stored its tables under `key`, or the
        ``links`` table itself (or a dict holding it).
    cls : str or None, default None
        The class (default: the first in the table).
    top : int, default 30
        How many links to draw.
    key : str, default "deepgami_prioritize"
        The `key_added` of :func:`deepgami.tl.prioritize` when `data` is a cohort.
    ax : matplotlib.axes.Axes or None, default None
        Draw on this Axes (default: a new figure).
    show : bool or None, default None
        Show the figure (default True); False returns the Axes.
    return_fig : bool, default False
        Return the Figure.

    Returns
    -------
    matplotlib.figure.Figure, matplotlib.axes.Axes or None
        See `show` and `return_fig`.

    Raises
    ------
    ValueError
        When the links table is empty (a model without priors).
    """
    links = data.uns[key] if isinstance(data, md.MuData) else data
    if isinstance(links, dict):
        links = links["links"]
    if links.empty:
        raise ValueError("the links table is empty (a model without priors has no links)")
    cls = str(links["class"].iloc[0]) if cls is None else cls
    fig = top_links_figure(links, cls, top, ax=ax, pyplot=_pyplot(ax, return_fig))
    return _finish(fig, ax, show, return_fig)


def importance(
    data: pd.DataFrame | md.MuData,
    cls: str | None = None,
    top: int = 15,
    title: str | None = None,
    *,
    key: str = "deepgami_prioritize",
    table: str = "features",
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Figure | Axes | None:
    """Horizontal bars of the top `top` importances of a prioritization table.

    Parameters
    ----------
    data : pandas.DataFrame or mudata.MuData
        A cohort on which :func:`deepgami.tl.prioritize` stored its tables under `key`, or one
        of its ``features``, ``latent`` or ``links`` tables.
    cls : str or None, default None
        Keep the rows of this class (default: the first in the table).
    top : int, default 15
        How many bars.
    title : str or None, default None
        Figure title (default: the class).
    key : str, default "deepgami_prioritize"
        The `key_added` of :func:`deepgami.tl.prioritize` when `data` is a cohort.
    table : {"features", "latent", "links"}, default "features"
        Which of its tables: ``features``, ``latent`` or ``links``.
    ax : matplotlib.axes.Axes or None, default None
        Draw on this Axes (default: a new figure).
    show : bool or None, default None
        Show the figure (default True); False returns the Axes.
    return_fig : bool, default False
        Return the Figure.

    Returns
    -------
    matplotlib.figure.Figure, matplotlib.axes.Axes or None
        See `show` and `return_fig`.

    Raises
    ------
    ValueError
        When the table has no importance column or no rows.
    """
    frame = data.uns[key][table] if isinstance(data, md.MuData) else data
    if "class" in frame:
        cls = str(frame["class"].iloc[0]) if cls is None else cls
        frame = frame[frame["class"].astype(str) == cls]
    title = title if title is not None else f"top {top}, class {cls}"
    fig = importance_bars(frame, title, top, ax=ax, pyplot=_pyplot(ax, return_fig))
    if fig is None:
        raise ValueError("the table has no importance column or no rows")
    return _finish(fig, ax, show, return_fig)


def kaplan_meier(
    table: pd.DataFrame,
    target: str = "survival",
    *,
    ax: Axes | None = None,
    show: bool | None = None,
    return_fig: bool = False,
) -> Figure | Axes | None:
    """Kaplan-Meier curves of a survival target by predicted risk group.

    The groups are the tertiles of the training risk (`<target>:risk_group` of a prediction
    table, :meth:`DeepGAMI.predict` of a model with a survival target).

    Parameters
    ----------
    table : pandas.DataFrame
        A prediction table with ``<target>:time``, ``<target>:event`` and ``<target>:risk_group``.
    target : str, default "survival"
        The survival target's name.
    ax : matplotlib.axes.Axes or None, default None
        Draw on this Axes (default: a new figure).
    show : bool or None, default None
        Show the figure (default True); False returns the Axes.
    return_fig : bool, default False
        Return the Figure.

    Returns
    -------
    matplotlib.figure.Figure, matplotlib.axes.Axes or None
        See `show` and `return_fig`.

    Raises
    ------
    ValueError
        When the table has no known time, event and risk group of `target`.
    """
    columns = [f"{target}:{c}" for c in ("time", "event", "risk_group")]
    missing = [c for c in columns if c not in table]
    if missing:
        raise ValueError(f"the table has no column {', '.join(missing)}")
    fig = kaplan_meier_curves(*(table[c] for c in columns), ax=ax, pyplot=_pyplot(ax, return_fig))
    if fig is None:
        raise ValueError(f"no sample has a known time, event and risk group of '{target}'")
    return _finish(fig, ax, show, return_fig)
