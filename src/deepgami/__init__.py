"""DeepGAMI: biologically guided auxiliary learning for multimodal integration and imputation.

The Python API, scverse style (``import deepgami as dg``)::

    mdata = dg.datasets.rosmap()                     # or dg.read_cohort("cohort.h5mu"), dg.build_cohort(...)
    model = dg.DeepGAMI.fit(mdata, {"max_epochs": 30})
    dg.tl.predict(model, mdata, modalities=["mrna"])  # obs["deepgami_predicted"], obsm["deepgami_proba"]
    dg.tl.prioritize(model, mdata)                    # uns["deepgami_prioritize"]
    dg.pl.importance(mdata, top=10)                   # ax=, show=, return_fig= as in scanpy

Names are imported on first use (module `__getattr__`), so ``import deepgami`` and the command line
start without loading torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public name -> the module that defines it.
_OBJECTS = {
    "read_cohort": "deepgami.data.cohort",
    "write_cohort": "deepgami.data.cohort",
    "build_cohort": "deepgami.data.assemble",
    "DeepGAMI": "deepgami.model",
    "load_params": "deepgami.train",
}
_SUBMODULES = ("datasets", "pl", "pp", "tl", "testing", "utils")

__all__ = ["__version__", *_OBJECTS, *_SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in _OBJECTS:
        value = getattr(importlib.import_module(_OBJECTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"deepgami.{name}")
    else:
        raise AttributeError(f"module 'deepgami' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
