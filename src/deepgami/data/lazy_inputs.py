"""Network inputs preprocessed on demand, one minibatch at a time.

A genotype modality is stored as int8 dosages: 2 GB at 1e6 SNPs x 2,000 samples, where a
preprocessed float32 copy would be 8 GB (and a float64 one 16 GB). `PreprocessedRows` keeps a
reference to the raw matrix plus the rows and columns the model uses, and converts only the rows a
minibatch asks for, straight into the feature-major layout the sparse encoder reads.

`Batch` (training) and `ModelInputs` (prediction) hold these in place of tensors: indexing rows
gives another `PreprocessedRows` (no copy), and `materialize` turns a list of them into tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from deepgami.data.preprocessing import ModalityPreprocessor
from deepgami.errors import InputError

# A materialized chunk holds at most this many float32 values (256 MB), whatever the width.
CHUNK_VALUES = 2**26


class PreprocessedRows:
    """Rows and columns of a raw samples x features matrix, preprocessed when materialized.

    Rows `rows` and columns `cols` are preprocessed by `prep` only when :meth:`tensor` is called;
    rows whose `present` is False become all-zero (the modality is absent). Indexing gives another
    `PreprocessedRows` over a subset of the rows (no copy).

    Parameters
    ----------
    raw : numpy.ndarray
        The stored matrix (int8 dosages or float32), shared, never modified.
    rows : numpy.ndarray
        Integer positions of the samples, in order.
    cols : numpy.ndarray
        Integer positions of `prep.features` among the raw columns.
    prep : ModalityPreprocessor
        The fitted preprocessing (fill, log1p, center, scale).
    present : numpy.ndarray
        Per row, whether the sample has the modality.
    modality : str
        Name used in error messages.
    all_cols : bool or None, optional
        Whether `cols` is every raw column in order (then a row gather suffices); None checks it.
        Row subsets pass it on so that the check runs once.
    """

    def __init__(
        self,
        raw: np.ndarray,
        rows: np.ndarray,
        cols: np.ndarray,
        prep: ModalityPreprocessor,
        present: np.ndarray,
        modality: str,
        all_cols: bool | None = None,
    ) -> None:
        self.raw, self.prep, self.modality = raw, prep, modality
        self.rows = np.asarray(rows, dtype=np.int64)
        self.cols = np.asarray(cols, dtype=np.int64)
        self.present = np.asarray(present, dtype=bool)
        # Most guided modalities use every stored column in order: then a row gather suffices.
        # Checked once; row subsets (every minibatch) inherit it.
        self._all_cols = (
            len(self.cols) == raw.shape[1] and bool(np.all(self.cols == np.arange(raw.shape[1])))
            if all_cols is None
            else all_cols
        )

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_rows, n_features)`` of the materialized block."""
        return len(self.rows), len(self.cols)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx: Tensor | np.ndarray | slice) -> PreprocessedRows:
        if isinstance(idx, Tensor):
            idx = idx.numpy()
        return PreprocessedRows(
            self.raw,
            self.rows[idx],
            self.cols,
            self.prep,
            self.present[idx],
            self.modality,
            self._all_cols,
        )

    def tensor(self) -> Tensor:
        """Materialize the rows as a preprocessed tensor.

        Returns
        -------
        torch.Tensor
            The float32 (rows, features) block: a transposed view of a C-contiguous
            (features, rows) array; all-zero rows where the modality is absent.

        Raises
        ------
        InputError
            If preprocessing fails (e.g. negative values under log1p scaling).
        """
        block = self.raw[self.rows] if self._all_cols else self.raw[np.ix_(self.rows, self.cols)]
        try:
            xt = self.prep.transform(block, feature_major=True)
        except ValueError as err:
            raise InputError(None, f"modality '{self.modality}': {err}") from None
        xt[:, ~self.present] = 0.0
        return torch.from_numpy(xt).t()


InputBlock = Tensor | PreprocessedRows


def materialize(xs: Sequence[InputBlock]) -> list[Tensor]:
    """Turn a list of input blocks into tensors.

    Parameters
    ----------
    xs : sequence of torch.Tensor or PreprocessedRows
        Input blocks; tensors pass through.

    Returns
    -------
    list of torch.Tensor
        One tensor per block.
    """
    return [x.tensor() if isinstance(x, PreprocessedRows) else x for x in xs]


def chunk_rows(xs: Sequence[InputBlock], at_most: int = 1024) -> int:
    """Choose the rows per chunk so that one materialized chunk of all blocks fits CHUNK_VALUES.

    Parameters
    ----------
    xs : sequence of torch.Tensor or PreprocessedRows
        Input blocks (only their widths matter).
    at_most : int, default 1024
        Upper bound on the rows per chunk.

    Returns
    -------
    int
        Rows per chunk, at least 1.
    """
    width = sum(int(x.shape[1]) for x in xs)
    return max(1, min(at_most, CHUNK_VALUES // max(width, 1)))
