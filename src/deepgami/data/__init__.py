"""Data: reading matrices, genotypes and priors; the cohort MuData; preprocessing; simulation.

The lowest layer of the library: it imports no other deepgami sub-package (`deepgami.errors` and
`deepgami.utils` aside). Only `lazy_inputs.py` imports torch (its rows become tensors); everything
else here stays torch-free.
"""
