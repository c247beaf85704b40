"""Small helpers shared by every layer (core: imports nothing of deepgami but `errors`): package
versions for provenance, JSON-ready copies, deterministic PNGs, examples in error messages and the
`--split` filter of the commands."""

from __future__ import annotations

import functools
import platform
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deepgami.errors import InputError

if TYPE_CHECKING:  # only for annotations: matplotlib and mudata are imported by the callers
    import mudata as md
    import torch
    from matplotlib.figure import Figure

# What a model or an evaluation records about the software that made it.
PACKAGES = (
    "deepgami",
    "torch",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "imbalanced-learn",
    "anndata",
    "mudata",
    "matplotlib",
    "captum",
    "safetensors",
)


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Return the versions of Python and of the installed packages `names`.

    Packages that are not installed are given as ``not installed``.

    Parameters
    ----------
    names : tuple of str, default PACKAGES
        Distribution names, as pip knows them.

    Returns
    -------
    dict
        ``{"python": "3.x.y", name: version, ...}`` in the order given (a fresh dict).
    """
    return dict(_versions(tuple(names)))


@functools.cache
def _versions(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    out = [("python", platform.python_version())]
    for name in names:
        try:
            out.append((name, version(name)))
        except PackageNotFoundError:
            out.append((name, "not installed"))
    return tuple(out)


def jsonable(obj: Any) -> Any:
    """Return a JSON-ready copy of `obj`.

    Numpy scalars and arrays are made plain, tuples made lists, keys made strings, NaN made None
    (JSON has no NaN).

    Parameters
    ----------
    obj : Any
        Nested dicts, lists, tuples, numpy values and plain values.

    Returns
    -------
    Any
        What `json.dumps` writes as valid JSON.
    """
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and np.isnan(obj):
        return None
    return obj


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write `fig` as a PNG without a software or time tag, and close it.

    Without the tags, the same inputs give the same bytes.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        A matplotlib figure.
    path : str or pathlib.Path
        Where to write it.

    Returns
    -------
    Path
        `path`.
    """
    import matplotlib.pyplot as plt

    path = Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path


def examples(values: Iterable[Any], n: int = 3) -> str:
    """The first `n` values, comma-separated, and how many more there are (for error messages).

    Parameters
    ----------
    values : iterable
        Anything iterable; each value is shown with `str`.
    n : int, default 3
        How many to show.

    Returns
    -------
    str
        E.g. ``"a, b, c (+4 more)"``.
    """
    values = [str(v) for v in values]
    more = f" (+{len(values) - n} more)" if len(values) > n else ""
    return ", ".join(values[:n]) + more


def split_mask(
    mdata: md.MuData, split: str, source: Any = None, column: str = "split"
) -> np.ndarray:
    """Boolean per sample of `mdata`: whether its `column` equals `split` (the commands' ``--split``).

    Parameters
    ----------
    mdata : mudata.MuData
        A cohort.
    split : str
        The split wanted (``train``, ``test``, ``independent``).
    source : Any, optional
        The file the cohort came from, named in errors.
    column : str, default "split"
        The split column of ``mdata.obs``.

    Returns
    -------
    numpy.ndarray
        At least one True.

    Raises
    ------
    InputError
        When the cohort has no split column or no sample in `split`.
    """
    if column not in mdata.obs:
        raise InputError(source, f"--split {split}: the cohort has no '{column}' column")
    values = mdata.obs[column].astype(str).to_numpy()
    keep = values == split
    if not keep.any():
        raise InputError(
            source, f"no sample has split '{split}' (splits: {', '.join(sorted(set(values)))})"
        )
    return keep


def resolve_device(name: str | None = "auto") -> torch.device:
    """The torch device of a ``--device`` option.

    Parameters
    ----------
    name : str or None, default "auto"
        ``auto`` (CUDA when available, else CPU; also for None), ``cpu``, ``cuda`` or ``cuda:<index>``.

    Returns
    -------
    torch.device
        The device to train and predict on.

    Raises
    ------
    InputError
        When CUDA is asked for and this machine (or container) has no usable CUDA device, or the
        name is not a device.
    """
    import torch

    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InputError(
                None,
                f"--device {name}: CUDA is not available on this machine (torch "
                f"{torch.__version__}, CUDA build {torch.version.cuda or 'none'}); use --device cpu or auto",
            )
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(
                None, f"--device {name}: only {torch.cuda.device_count()} CUDA device(s)"
            )
        return device
    raise InputError(None, f"--device {name}: choose auto, cpu or cuda")
