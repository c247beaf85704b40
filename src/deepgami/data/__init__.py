"""Data: reading matrices, genotypes and priors; the cohort MuData; preprocessing; simulation.

The lowest layer of the library: nothing here imports torch or any other deepgami sub-package.
"""
