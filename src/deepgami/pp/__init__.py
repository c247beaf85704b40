"""Preprocessing of single-cell inputs, scanpy style: ``dg.pp.pseudobulk(adata, donor_key=..., cell_type_key=...)``."""

from deepgami.data.pseudobulk import (
    NORMALIZATIONS,
    cell_types_in,
    pseudobulk,
    safe_name,
)

__all__ = ["NORMALIZATIONS", "cell_types_in", "pseudobulk", "safe_name"]
