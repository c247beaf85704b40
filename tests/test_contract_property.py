"""The command-line contract under random inputs (#23, hypothesis): `build` on random valid and
invalid tables, and `run` on random samplesheets, in folders with spaces and non-ASCII names,
either succeed or exit 2 with one stderr line and leave no output behind."""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepgami.cli import main

FOLDERS = ["in put", "données", "x", "séq 2 ü"]
SAMPLES = ["A", "B", "C", "D", "É", "S 1", "7"]
CELLS = ["0", "1", "2", "0.5", "-1.25", "", "NA", "inf", "-inf", "abc"]
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _table(header: list[str], rows: list[list[str]], sep: str, bom: bool, crlf: bool, quote: bool):
    def cell(value: str) -> str:
        return f'"{value}"' if quote else value

    end = "\r\n" if crlf else "\n"
    lines = [sep.join(cell(h) for h in header)] + [sep.join(r) for r in rows]
    return ("\ufeff" if bom else "") + end.join(lines) + end


@st.composite
def build_cases(draw) -> dict:
    """Files of one `build` call (name -> text) and its arguments."""
    n = draw(st.integers(1, 6))
    samples = draw(
        st.lists(st.sampled_from(SAMPLES), min_size=n, max_size=n, unique=draw(st.booleans()))
    )
    sep = draw(st.sampled_from([",", "\t"]))
    ext = ".csv" if sep == "," else ".tsv"
    style = {k: draw(st.booleans()) for k in ("bom", "crlf", "quote")}
    files, modalities = {}, []
    for m in range(draw(st.integers(1, 2))):
        n_feat = draw(st.integers(1, 3))
        # Mostly numbers, so that valid tables are drawn as often as invalid ones.
        value = (
            st.one_of(st.sampled_from(CELLS[:5]), st.sampled_from(CELLS))
            if draw(st.booleans())
            else st.sampled_from(CELLS[:5])
        )
        cells = st.lists(value, min_size=n_feat, max_size=n_feat)
        rows = draw(st.lists(cells, min_size=n, max_size=n))
        header = ["sample"] + [f"m{m}f{j}" for j in range(n_feat)]
        name = f"mod {m}é{ext}"
        files[name] = _table(header, [[s, *r] for s, r in zip(samples, rows)], sep, **style)
        modalities += ["--modality", f"m{m}={name}"]
    labelled = draw(
        st.one_of(
            st.just(list(dict.fromkeys(samples))),
            st.lists(st.sampled_from(SAMPLES), min_size=1, max_size=7, unique=True),
        )
    )
    classes = st.sampled_from(["case", "control", "other"])
    header, rows = ["sample", "label"], [[s, draw(classes)] for s in labelled]
    if draw(st.booleans()):
        header.append("split")
        for row in rows:
            row.append(draw(st.sampled_from(["train", "test", "", "bogus"])))
    files[f"labels{ext}"] = _table(header, rows, sep, **style)
    extra = draw(st.sampled_from([[], ["--no-split"], ["--test-fraction", "0.5"]]))
    missing = draw(st.sampled_from(["error", "mean", "drop-feature"]))
    args = [*modalities, "--labels", f"labels{ext}", "--missing", missing, *extra]
    return {"files": files, "args": args, "folder": draw(st.sampled_from(FOLDERS))}


def _run(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue()


def _assert_contract(code: int, err: str, out: Path, before: set[Path], root: Path) -> None:
    if code == 0:
        assert out.exists(), err
        return
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and err.strip().endswith(lines[0]), err
    assert not out.exists(), err
    assert set(root.rglob("*")) == before, "a failed command left files behind"


@SETTINGS
@given(case=build_cases())
def test_build_succeeds_or_fails_in_one_line(case):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / case["folder"]
        root.mkdir()
        for name, text in case["files"].items():
            (root / name).write_text(text, encoding="utf-8")
        args = [a if "=" not in a else a.replace("=", f"={root}/", 1) for a in case["args"]]
        args[args.index("--labels") + 1] = str(root / args[args.index("--labels") + 1])
        out = root / "out dir" / "cohört.h5mu"
        before = set(root.rglob("*"))
        code, err = _run(["build", *args, "--out", str(out), "--quiet"])
        _assert_contract(code, err, out, before, root)


@st.composite
def samplesheets(draw) -> dict:
    """A samplesheet over existing and missing files, with odd ids and columns."""
    ids = draw(st.lists(st.sampled_from(["c1", "c 2", "ç3", "", "c1"]), min_size=1, max_size=3))
    header = draw(
        st.sampled_from(
            [
                ["id", "labels", "modalities"],
                ["id", "labels"],
                ["id", "labels", "modalities", "priors"],
            ]
        )
    )
    files = st.sampled_from(["l a.csv", "lé.csv", "missing.csv", ""])
    mods = st.sampled_from(["snp=s n p.csv;expr=é.csv", "snp=s n p.csv", "snp", "a=missing.csv"])
    rows = []
    for cohort in ids:
        row = [cohort, draw(files)]
        if "modalities" in header:
            row.append(draw(mods))
        if "priors" in header:
            row.append(draw(st.sampled_from(["", "snp:eqtl=e q.tsv", "bad"])))
        rows.append(row)
    return {"header": header, "rows": rows, "folder": draw(st.sampled_from(FOLDERS))}


@SETTINGS
@given(sheet=samplesheets())
def test_run_refuses_bad_samplesheets_in_one_line(sheet):
    """Valid sheets are only read (running them takes minutes); a bad one stops `run` at once."""
    from deepgami.errors import InputError
    from deepgami.pipeline.samplesheet import read_samplesheet

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / sheet["folder"]
        root.mkdir()
        for name in ("l a.csv", "lé.csv", "s n p.csv", "é.csv", "e q.tsv"):
            (root / name).write_text("sample,x\nA,1\n", encoding="utf-8")
        path = root / "sheet ü.csv"
        path.write_text(_table(sheet["header"], sheet["rows"], ",", False, False, False))
        try:
            rows = read_samplesheet(path)
        except InputError as err:
            assert "\n" not in str(err)
            out = root / "results"
            before = set(root.rglob("*"))
            code, text = _run(["run", "--samplesheet", str(path), "--outdir", str(out)])
            _assert_contract(code, text, out, before, root)
            return
        assert all(p.is_file() for row in rows for p in row.modalities.values())
