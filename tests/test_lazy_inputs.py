"""PreprocessedRows: the on-demand preprocessing equals preprocessing the rows up front."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepgami.errors import InputError
from deepgami.data.lazy_inputs import PreprocessedRows, chunk_rows, materialize
from deepgami.data.preprocessing import ModalityPreprocessor, fit_scaling


@pytest.mark.parametrize("dtype", [np.int8, np.float32])
def test_materialized_rows_equal_eager_transform(dtype):
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 3, size=(40, 9)).astype(dtype)
    rows, cols = np.array([5, 1, 30, 7, 2]), np.array([8, 0, 3])
    present = np.array([True, False, True, True, True])
    prep = ModalityPreprocessor(
        ["c8", "c0", "c3"], "standard", *fit_scaling(raw, "standard", np.arange(20), cols)
    )
    lazy = PreprocessedRows(raw, rows, cols, prep, present, "snp")
    expected = prep.transform(raw[rows][:, cols].astype(np.float32))
    expected[~present] = 0.0
    got = lazy.tensor()
    assert got.dtype == torch.float32 and tuple(got.shape) == (5, 3) == lazy.shape
    np.testing.assert_array_equal(got.numpy(), expected)
    # Row indexing composes without materializing; tensors pass through materialize untouched.
    sub = lazy[torch.tensor([3, 0])]
    assert isinstance(sub, PreprocessedRows)
    np.testing.assert_array_equal(sub.tensor().numpy(), expected[[3, 0]])
    t = torch.ones(2, 2)
    assert materialize([t, sub[1:]])[0] is t


def test_fit_scaling_on_row_and_column_subset_equals_fit_on_the_copy():
    rng = np.random.default_rng(1)
    raw = rng.standard_normal((50, 12)).astype(np.float32)
    raw[3, 4] = np.nan
    rows, cols = np.arange(0, 50, 3), np.array([4, 0, 11])
    for scaling in ("standard", "minmax"):
        a = fit_scaling(raw, scaling, rows, cols)
        b = fit_scaling(raw[rows][:, cols], scaling)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_log1p_on_negative_values_names_the_modality():
    raw = np.array([[1.0, -2.0], [0.5, 3.0]], dtype=np.float32)
    prep = ModalityPreprocessor(
        ["a", "b"],
        "log1p",
        np.zeros(2, np.float32),
        np.zeros(2, np.float32),
        np.ones(2, np.float32),
    )
    with pytest.raises(
        InputError, match="modality 'meth': scaling 'log1p' needs non-negative values"
    ):
        PreprocessedRows(raw, np.arange(2), np.arange(2), prep, np.ones(2, bool), "meth").tensor()


def test_chunk_rows_bounds_a_chunk_by_width():
    wide = torch.zeros(3, 1_000_000)
    assert chunk_rows([wide]) == 67  # 2**26 values / 1e6 features
    assert chunk_rows([torch.zeros(3, 10)]) == 1024
