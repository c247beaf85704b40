"""House rules that a reader meets in every file: short functions, numpydoc docstrings."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import deepgami

SRC = Path(__file__).resolve().parents[1] / "src" / "deepgami"
MAX_LINES = 60
# numpydoc checks every public object must pass. GL01 (summary on the line after the quotes) is
# left out: the project opens docstrings on the quotes' line, as scanpy does.
NUMPYDOC_CHECKS = (
    "GL02", "GL08", "PR01", "PR02", "PR07", "PR09", "RT01", "RT03",
    "SS01", "SS02", "SS03", "SS05", "SS06",
)  # fmt: skip


def long_functions() -> list[str]:
    """Every function in src/ whose code (signature to end, less its docstring) is over MAX_LINES.

    The docstring is not counted: numpydoc sections are required and say nothing of the function's
    concerns. argparse registration in commands/ is left out (one add_argument per option).
    """
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if path.parent.name == "commands" and node.name == "register":
                continue
            lines = node.end_lineno - node.lineno + 1
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                lines -= body[0].end_lineno - body[0].lineno + 1
            if lines > MAX_LINES:
                found.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_over_sixty_lines():
    assert long_functions() == []


def public_objects() -> dict[str, object]:
    """The public functions, classes and methods defined in the package, by dotted name."""
    names = {}
    for info in pkgutil.walk_packages(deepgami.__path__, "deepgami."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != info.name:
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                names[f"{info.name}.{name}"] = obj
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if not attr.startswith("_") and inspect.isfunction(member):
                        names[f"{info.name}.{name}.{attr}"] = member
    return names


def test_public_docstrings_follow_numpydoc():
    from numpydoc.docscrape import get_doc_object
    from numpydoc.validate import validate

    failures = []
    # By object, not by name: numpydoc would import `datasets.rosmap` as the data folder.
    for name, obj in public_objects().items():
        errors = validate(get_doc_object(obj))["errors"]
        codes = sorted({code for code, _ in errors if code in NUMPYDOC_CHECKS})
        if codes:
            failures.append(f"{name}: {', '.join(codes)}")
    assert failures == [], f"{len(failures)} docstrings fail numpydoc:\n" + "\n".join(failures)


@pytest.mark.parametrize("bad", ['def f(x):\n    """Add one."""\n    return x + 1\n'])
def test_numpydoc_check_catches_an_undocumented_parameter(tmp_path, monkeypatch, bad):
    from numpydoc.validate import validate

    (tmp_path / "npd_probe.py").write_text(bad)
    monkeypatch.syspath_prepend(str(tmp_path))
    codes = {code for code, _ in validate("npd_probe.f")["errors"]}
    assert {"PR01", "RT01"} <= codes
