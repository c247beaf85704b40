"""Plots, scanpy style: each function returns a matplotlib Figure (it does not save or show it;
`deepgami.utils.save_png` writes a deterministic PNG).

- `roc`: ROC curve of a model's predictions on a cohort (or of a prediction table).
- `top_links`: the top prior links of one class as a bipartite network.
- `importance`: horizontal bars of the top features, latent nodes or links.
"""

from deepgami.pl._plots import importance, roc, top_links

__all__ = ["importance", "roc", "top_links"]
