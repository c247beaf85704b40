"""Preprocessing of single-cell inputs, scanpy style.

``dg.pp.pseudobulk(adata, donor_key=..., cell_type_key=...)``.
"""

from deepgami.data.pseudobulk import NORMALIZATIONS, pseudobulk

__all__ = ["NORMALIZATIONS", "pseudobulk"]
