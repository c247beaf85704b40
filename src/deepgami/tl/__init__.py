"""Tools over a cohort and a trained model, scanpy style: each writes predictable MuData slots named
by `key_added` (with the call's ``params`` in ``uns[key_added]["params"]``) and returns None, or
with ``copy=True`` the written copy.

- `predict`: ``obs[f"{key_added}_predicted"]``, ``obsm[f"{key_added}_proba"]`` (samples x classes),
  ``uns[key_added]`` (``params``; ``metrics`` when labels are known).
- `prioritize`: ``uns[key_added]`` = the ``features``, ``latent`` and ``links`` tables,
  ``params`` and ``provenance``.
- `enrichment`: ``uns[key_added]`` = the over-representation ``table`` of the top links' genes in
  a GMT file's gene sets, and ``params``.
"""

from deepgami.tl._tools import enrichment, predict, prioritize

__all__ = ["enrichment", "predict", "prioritize"]
