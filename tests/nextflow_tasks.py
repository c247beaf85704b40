"""Render and run a Nextflow module's `script:` or `stub:` the way Nextflow runs one task.

Shared by tests/test_pipeline.py (each task run on the host with bin/ on PATH) and
tests/container/run_stages.py (the same tasks run in the image, as `make container-test`). There is
no Nextflow here: a module's `input:`/`output:` declarations are read from its text (the process is
parsed with reftrace), its `${...}` expressions are evaluated by a small evaluator of the Groovy
the module scripts use, the inputs are staged by symlink as Nextflow stages them, and the rendered
script runs with the `process.shell` of nextflow.config.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import reftrace
import yaml

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
# process.shell of nextflow.config
TASK_SHELL = ["bash", "-C", "-e", "-u", "-o", "pipefail"]


# -- reading a module ------------------------------------------------------------------------------

SECTION_RE = re.compile(r"^\s*(input|output|when|script|stub|shell|exec):\s*$", re.M)


@dataclass
class Module:
    path: Path
    process: reftrace.Process
    text: str
    sections: dict[str, str]

    @property
    def name(self) -> str:
        return self.process.name


def load_module(directory: str) -> Module:
    path = REPO / "modules" / "local" / directory / "main.nf"
    parsed = reftrace.Module.from_file(str(path))
    assert not isinstance(parsed, reftrace.ParseError), parsed
    (process,) = parsed.processes
    text = path.read_text()
    body = text[text.index("{") + 1 : text.rindex("}")]
    marks = list(SECTION_RE.finditer(body))
    sections = {
        m.group(1): body[m.end() : marks[i + 1].start() if i + 1 < len(marks) else len(body)]
        for i, m in enumerate(marks)
    }
    return Module(path, process, text, sections)


def strip_comments(section: str) -> list[str]:
    return [
        line.split("//")[0].strip() for line in section.splitlines() if line.split("//")[0].strip()
    ]


def input_declarations(module: Module) -> list[tuple[str, str, str]]:
    """(kind, name, options) of every val()/path() input, in order."""
    decls = []
    for line in strip_comments(module.sections["input"]):
        decls += re.findall(r"\b(val|path)\((\w+)([^)]*)\)", line)
    return decls


def output_patterns(module: Module, optional: bool = True) -> list[str]:
    """The quoted patterns of every path output (`path("x")`, `path "x"`); with `optional` False,
    not those of `optional: true` outputs."""
    patterns = []
    for line in strip_comments(module.sections["output"]):
        if not optional and re.search(r"\boptional\s*:\s*true\b", line):
            continue
        patterns += [m[1] for m in re.findall(r"""\bpath\s*\(?\s*(["'])(.*?)\1""", line)]
    return patterns


def split_script(section: str) -> tuple[list[str], str]:
    """The Groovy `def` lines before the triple-quoted string, and the string's raw content."""
    start = section.index('"""')
    end = section.index('"""', start + 3)
    preamble = [line.strip() for line in section[:start].splitlines() if line.strip()]
    return preamble, section[start + 3 : end]


# -- a small evaluator for the Groovy the module scripts use -------------------------------------


class GroovyError(AssertionError):
    pass


def _truthy(value: Any) -> bool:
    return value not in (None, "", [], 0, False)


def _scan_top(expr: str, token: str) -> int:
    """Index of the first `token` outside quotes and brackets, or -1."""
    depth, quote, i = 0, None, 0
    while i < len(expr):
        ch = expr[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and expr.startswith(token, i):
            if token == "?" and expr[i + 1 : i + 2] in (":", "."):
                i += 2
                continue
            return i
        i += 1
    return -1


def _lookup(path: str, env: dict[str, Any]) -> Any:
    head, *rest = path.split(".")
    if head not in env:
        raise GroovyError(f"unknown variable '{head}' (not a process input or a def)")
    value = env[head]
    for i, part in enumerate(rest):
        if not isinstance(value, dict):
            raise GroovyError(f"cannot read '{part}' of {path}")
        if part not in value:
            if head == "task" and rest[:1] == ["ext"]:
                return None  # task.ext.<anything> is null unless configured
            raise GroovyError(f"'{'.'.join([head, *rest[: i + 1]])}' is not set for this test task")
        value = value[part]
    return value


def groovy_eval(expr: str, env: dict[str, Any]) -> Any:
    expr = expr.strip()
    at = _scan_top(expr, "?:")
    if at >= 0:
        left = groovy_eval(expr[:at], env)
        return left if _truthy(left) else groovy_eval(expr[at + 2 :], env)
    at = _scan_top(expr, "?")
    if at >= 0:
        rest = expr[at + 1 :]
        colon = _scan_top(rest, ":")
        if colon < 0:
            raise GroovyError(f"ternary without ':' in {expr!r}")
        return groovy_eval(
            rest[:colon] if _truthy(groovy_eval(expr[:at], env)) else rest[colon + 1 :], env
        )
    for op in ("==", "!="):
        at = _scan_top(expr, op)
        if at >= 0:
            equal = groovy_eval(expr[:at], env) == groovy_eval(expr[at + 2 :], env)
            return equal if op == "==" else not equal
    if expr.startswith("!"):
        return not _truthy(groovy_eval(expr[1:], env))
    if len(expr) >= 2 and expr[0] == expr[-1] == "'":
        return expr[1:-1].replace("\\'", "'").replace("\\\\", "\\")
    if len(expr) >= 2 and expr[0] == expr[-1] == '"':
        return interpolate(expr[1:-1], env)
    if re.fullmatch(r"[A-Za-z_]\w*(\.\w+)*", expr):
        return _lookup(expr, env)
    raise GroovyError(f"unsupported Groovy expression in a module script: {expr!r}")


def _render(value: Any, expr: str) -> str:
    if value is None:
        raise GroovyError("$" + "{" + expr + "} is null")
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return str(value)


ESCAPES = {"\\": "\\", "$": "$", '"': '"', "'": "'", "n": "\n", "t": "\t"}


def interpolate(text: str, env: dict[str, Any]) -> str:
    """A Groovy GString's value: `${expr}` replaced, escapes undone; a bare `$name` is refused."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "\n":  # Groovy keeps backslash-newline in triple-quoted strings
                out.append("\\\n")
            elif nxt in ESCAPES:
                out.append(ESCAPES[nxt])
            else:
                raise GroovyError(f"unknown escape \\{nxt}")
            i += 2
        elif ch == "$" and text[i + 1 : i + 2] == "{":
            depth, j = 1, i + 2
            while depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            expr = text[i + 2 : j - 1]
            out.append(_render(groovy_eval(expr, env), expr))
            i = j
        elif ch == "$" and re.match(r"[A-Za-z_]", text[i + 1 : i + 2]):
            raise GroovyError(
                f"bare ${text[i + 1 : i + 20]}...: write ${{...}} or escape \\$ in module scripts"
            )
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def render_block(module: Module, section: str, env: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The bash script of `section` (script or stub) for one task, and the env after its defs."""
    preamble, body = split_script(module.sections[section])
    env = dict(env)
    for line in preamble:
        m = re.fullmatch(r"def\s+(\w+)\s*=\s*(.+)", line)
        if not m:
            raise GroovyError(
                f"{module.path}: only `def name = expr` lines may precede the script string: {line!r}"
            )
        env[m.group(1)] = groovy_eval(m.group(2), env)
    return textwrap.dedent(interpolate(body, env)).strip() + "\n", env


# -- staging and running one task ----------------------------------------------------------------


def stage_inputs(module: Module, workdir: Path, values: dict[str, Any]) -> dict[str, Any]:
    """Symlink path inputs into `workdir` as Nextflow stages them; return the variables' values."""
    staged: dict[str, Any] = {}
    decls = input_declarations(module)
    assert [name for _, name, _ in decls] == list(values), (
        f"{module.name}: inputs are {[n for _, n, _ in decls]}"
    )
    for kind, name, options in decls:
        value = values[name]
        if kind == "val":
            staged[name] = value
            continue
        files = value if isinstance(value, list) else ([] if value in (None, "") else [value])
        stage_as = re.search(r"stageAs:\s*'([^']+)'", options)
        names = []
        for index, source in enumerate(files, start=1):
            source = Path(source)
            if stage_as:
                directory, _, leaf = stage_as.group(1).partition("/")
                assert leaf == "*", f"{module.name}: unsupported stageAs {stage_as.group(1)}"
                target = Path(directory.replace("*", str(index))) / source.name
            else:
                target = Path(source.name)
            (workdir / target).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(source, workdir / target)
            names.append(str(target))
        staged[name] = names if isinstance(value, list) else (names[0] if names else [])
    return staged


def task_env(
    module: Module, meta: dict[str, Any], staged: dict[str, Any], ext: dict[str, Any]
) -> dict[str, Any]:
    return {
        "meta": meta,
        "task": {"ext": dict(ext), "cpus": 1, "process": f"DEEPGAMI:{module.name}", "attempt": 1},
        "workflow": {"containerEngine": None},
        **staged,
    }


def host_executor(workdir: Path, exports: dict[str, str]) -> subprocess.CompletedProcess:
    """Run `.command.sh` in `workdir` on this machine, bin/ and this Python's bin/ first on PATH."""
    path = os.pathsep.join([str(REPO / "bin"), str(VENV_BIN), os.environ.get("PATH", "")])
    return subprocess.run(
        [*TASK_SHELL, ".command.sh"],
        cwd=workdir,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path, "OMP_NUM_THREADS": "1", **exports},
        timeout=900,
    )


Executor = Callable[[Path, dict[str, str]], subprocess.CompletedProcess]


def run_task(
    module: Module,
    section: str,
    workdir: Path,
    inputs: dict[str, Any],
    ext: dict[str, Any] | None = None,
    executor: Executor = host_executor,
    exports: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Stage, render and run one task's `section`; assert every output pattern matches a file.

    `ext` plays the role of conf/*.config's `ext.*` settings for the process (none by default);
    `executor` runs the rendered `.command.sh` in `workdir` (on the host by default), with
    `exports` set in its environment (nextflow.config's `env` scope).
    """
    values = dict(inputs)
    meta = values["meta"]
    staged = stage_inputs(module, workdir, values)
    script, env = render_block(module, section, task_env(module, meta, staged, ext or {}))
    (workdir / ".command.sh").write_text(script)
    result = executor(workdir, exports or {})
    assert result.returncode == 0, (
        f"{module.name} {section} failed:\n{script}\n{result.stdout}\n{result.stderr}"
    )
    for pattern in output_patterns(module, optional=False):
        rendered = interpolate(pattern, env)
        assert list(workdir.glob(rendered)), (
            f"{module.name} {section}: no file matches output '{rendered}'"
        )
    versions = yaml.safe_load((workdir / "versions.yml").read_text())
    assert list(versions) == [f"DEEPGAMI:{module.name}"]
    return env
