"""`deepgami.pl.roc`, `deepgami.pl.top_links`, `deepgami.pl.importance`: thin over the report's figures."""

from __future__ import annotations

from collections.abc import Sequence

import mudata as md
import pandas as pd
from matplotlib.figure import Figure

from deepgami.report.figures import importance_bars, roc_curves
from deepgami.report.linkplot import top_links_figure


def roc(
    table: pd.DataFrame | md.MuData,
    classes: Sequence[str] | None = None,
    *,
    key: str = "deepgami",
    method: str = "deepgami",
) -> Figure:
    """ROC curve of predictions against the known labels.

    Parameters
    ----------
    table
        A prediction table (`DeepGAMI.predict`, `deepgami.tl.predict`), or a cohort on which
        `deepgami.tl.predict` stored ``obsm[f"{key}_proba"]``.
    classes
        Class names in probability-column order (default: from the table's ``prob_<class>`` columns).
    key
        The `key_added` of `deepgami.tl.predict` when `table` is a cohort.
    method
        The name in the legend (and its colour).

    Returns
    -------
    matplotlib.figure.Figure
        Two classes: the second is positive; more: micro-averaged one-vs-rest.
    """
    if isinstance(table, md.MuData):
        proba = table.obsm[f"{key}_proba"]
        frame = pd.DataFrame({"label": table.obs["label"].astype(str).to_numpy()})
        for c in proba.columns:
            frame[f"prob_{c}"] = proba[c].to_numpy()
        table = frame
    if classes is None:
        classes = [c[len("prob_") :] for c in table.columns if c.startswith("prob_")]
    rows = table.dropna(subset=["label"]).assign(
        method=method, modalities="all", protocol="holdout", split=0
    )
    fig = roc_curves(rows, list(classes), "holdout")
    if fig is None:
        raise ValueError("a ROC curve needs two or more classes among the labelled samples")
    return fig


def top_links(links: pd.DataFrame | dict, cls: str | None = None, top: int = 30) -> Figure:
    """The `top` highest-ranked prior links of class `cls` as a source -> latent gene network.

    Parameters
    ----------
    links
        The ``links`` table of `deepgami.tl.prioritize` (or its returned dict).
    cls
        The class (default: the first in the table).
    top
        How many links to draw.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if isinstance(links, dict):
        links = links["links"]
    if links.empty:
        raise ValueError("the links table is empty (a model without priors has no links)")
    cls = str(links["class"].iloc[0]) if cls is None else cls
    return top_links_figure(links, cls, top)


def importance(
    table: pd.DataFrame, cls: str | None = None, top: int = 15, title: str | None = None
) -> Figure:
    """Horizontal bars of the top `top` importances of a prioritization table.

    Parameters
    ----------
    table
        The ``features``, ``latent`` or ``links`` table of `deepgami.tl.prioritize`.
    cls
        Keep the rows of this class (default: the first in the table).
    top
        How many bars.
    title
        Figure title (default: the class).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if "class" in table:
        cls = str(table["class"].iloc[0]) if cls is None else cls
        table = table[table["class"].astype(str) == cls]
    fig = importance_bars(table, title if title is not None else f"top {top}, class {cls}", top)
    if fig is None:
        raise ValueError("the table has no importance column or no rows")
    return fig
