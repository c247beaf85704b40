"""The top prior links of one class as a bipartite network: sources (SNPs, TFs) on the left, latent
genes on the right, edge width proportional to link importance, colour by sign of the mean
attribution (a matplotlib ``Figure``; no pyplot state, no backend switch)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from deepgami.report.figures import new_axes
from deepgami.utils import save_png

__all__ = ["top_links_figure", "write_link_figures"]

POSITIVE = "#c0392b"  # raises the explained output
NEGATIVE = "#1f5fa8"  # lowers it
# One colour per prior (fixed order of appearance), so eQTL and GRN sources differ at a glance.
PRIOR_COLORS = ["#2e8b57", "#d4a21a", "#6a3d9a", "#8c564b", "#17becf"]
GENE_COLOR = "#555555"
MAX_WIDTH = 6.0
MIN_WIDTH = 0.4


def top_links_figure(
    links: pd.DataFrame, cls: str, top: int = 30, ax: Axes | None = None, pyplot: bool = False
) -> Figure:
    """Bipartite drawing of the `top` highest-ranked links of class `cls` in a links table.

    Parameters
    ----------
    links : pandas.DataFrame
        Columns source, target, prior, class, mean_attribution, importance, rank.
    cls : str
        The class whose links are drawn.
    top : int, default 30
        How many links.
    ax : matplotlib.axes.Axes, optional
        Draw on this Axes (default: a new figure).
    pyplot : bool, default False
        A new figure is pyplot's (see :func:`deepgami.report.figures.new_figure`).

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on.
    """
    table = links[links["class"].astype(str) == str(cls)].sort_values("rank").head(max(int(top), 1))
    # Nodes ordered by their strongest shown link, so the heaviest edges sit at the top.
    sources = list(dict.fromkeys(table["source"].astype(str)))
    targets = list(dict.fromkeys(table["target"].astype(str)))
    height = max(len(sources), len(targets), 4)
    y_src, y_tgt = _rows(sources, height), _rows(targets, height)
    priors = list(dict.fromkeys(table["prior"].astype(str)))
    prior_color = {p: PRIOR_COLORS[i % len(PRIOR_COLORS)] for i, p in enumerate(priors)}
    src_prior = dict(zip(table["source"].astype(str), table["prior"].astype(str), strict=False))
    fig, ax = new_axes((6.4, 0.9 + 0.28 * height), ax, pyplot)
    _draw_edges(ax, table, y_src, y_tgt)
    for name, y in y_src.items():
        ax.scatter(
            [0.0], [y], s=36, color=prior_color[src_prior[name]], zorder=2, edgecolors="white"
        )
        ax.text(-0.04, y, name, ha="right", va="center", fontsize=8)
    for name, y in y_tgt.items():
        ax.scatter([1.0], [y], s=36, color=GENE_COLOR, marker="s", zorder=2, edgecolors="white")
        ax.text(1.04, y, name, ha="left", va="center", fontsize=8)
    ax.set_xlim(-0.6, 1.6)
    ax.set_ylim(-1.0, height)
    ax.axis("off")
    ax.set_title(
        f"Top {len(table)} prior links, class {cls}\n(edge width = importance, mean |IG|)",
        fontsize=10,
    )
    _legend(ax, priors, prior_color)
    return fig


def _rows(names: list[str], height: int) -> dict[str, float]:
    """Evenly spaced heights of a column of nodes, top to bottom."""
    if len(names) == 1:
        return {names[0]: height / 2}
    step = (height - 1) / (len(names) - 1)
    return {n: height - 1 - i * step for i, n in enumerate(names)}


def _draw_edges(
    ax: Axes, table: pd.DataFrame, y_src: dict[str, float], y_tgt: dict[str, float]
) -> None:
    """One line per link, width by importance, colour by the sign of its mean attribution."""
    imp = table["importance"].to_numpy(dtype=float)
    peak = float(imp.max()) if len(imp) and imp.max() > 0 else 1.0
    # Draw light edges first so heavy ones stay visible on top.
    for row in table.iloc[::-1].itertuples(index=False):
        width = MIN_WIDTH + (MAX_WIDTH - MIN_WIDTH) * float(row.importance) / peak
        color = POSITIVE if float(row.mean_attribution) >= 0 else NEGATIVE
        ax.plot(
            [0.0, 1.0],
            [y_src[str(row.source)], y_tgt[str(row.target)]],
            color=color,
            lw=width,
            alpha=0.55,
            solid_capstyle="round",
            zorder=1,
        )


def _legend(ax: Axes, priors: list[str], prior_color: dict[str, str]) -> None:
    """Edge signs, one marker per prior's sources, the latent genes."""
    handles = [
        Line2D([], [], color=POSITIVE, lw=3, label="raises output"),
        Line2D([], [], color=NEGATIVE, lw=3, label="lowers output"),
    ]
    handles += [
        Line2D([], [], color=prior_color[p], marker="o", lw=0, label=f"{p} source") for p in priors
    ]
    handles += [Line2D([], [], color=GENE_COLOR, marker="s", lw=0, label="latent gene")]
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=3,
        fontsize=7,
        frameon=False,
    )


def write_link_figures(links: pd.DataFrame, directory: str | Path, top: int = 30) -> list[Path]:
    """Write one `links_<class>.png` per class of a links table.

    None is written for a model without priors (an empty table).

    Parameters
    ----------
    links : pandas.DataFrame
        A links table (see :func:`top_links_figure`).
    directory : str or pathlib.Path
        Where to write the figures.
    top : int, default 30
        How many links each figure draws.

    Returns
    -------
    list of pathlib.Path
        The written figures, one per class in the table's order.
    """
    from deepgami.attribution.integrated_gradients import file_stem

    if not len(links):
        return []
    return [
        save_png(top_links_figure(links, cls, top), Path(directory) / f"links_{file_stem(cls)}.png")
        for cls in dict.fromkeys(links["class"])
    ]
