"""Plots, scanpy style: each takes ``ax`` (draw there), ``show`` (default True: ``plt.show()`` and
return None; False: return the Axes) and ``return_fig`` (return the Figure).
`deepgami.utils.save_png` writes a deterministic PNG.

- `roc`: ROC curve of a cohort's stored predictions (or of a prediction table).
- `top_links`: the top prior links of one class as a bipartite network.
- `importance`: horizontal bars of the top features, latent nodes or links.
- `kaplan_meier`: Kaplan-Meier curves of a survival target by predicted risk group.
"""

from deepgami.pl._plots import importance, kaplan_meier, roc, top_links

__all__ = ["importance", "kaplan_meier", "roc", "top_links"]
