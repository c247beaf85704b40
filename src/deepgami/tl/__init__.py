"""Tools over a cohort and a trained model, scanpy style: each returns DataFrames and writes its
results to predictable MuData slots named by `key_added`.

- `predict`: ``mdata.obs[f"{key_added}_predicted"]``, ``mdata.obsm[f"{key_added}_proba"]`` (samples x
  classes), ``mdata.uns[key_added]`` (modalities given, fill, metrics when labels are known).
- `prioritize`: ``mdata.uns[key_added]`` = ``{"features", "latent", "links"}`` tables.
"""

from deepgami.tl._tools import predict, prioritize

__all__ = ["predict", "prioritize"]
