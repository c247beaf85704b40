"""`report.html`: one self-contained page per evaluation (images base64-embedded, no network).

`write_report(eval_dir)` reads what `deepgami.report.outputs.write_evaluation` wrote into `eval_dir`
(metrics.tsv, summary.tsv, ks_tests.tsv, predictions.tsv, training_history.tsv, run.json), draws the
figures into `eval_dir/figures/` and writes `eval_dir/report.html`. Optional inputs: a
prioritization directory (features.tsv, latent.tsv, links.tsv) and a model directory
(training_history.tsv, config.json, cv_summary.tsv).

A small inline script records, once the page has loaded, how many images decoded and how many
rows the method table has (`<body data-images-loaded=.. data-images-total=.. data-method-rows=..>`),
so a headless browser can check the page (`chromium --headless --dump-dom`).
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deepgami.evaluation import DEEPGAMI_METHODS, MEANFILL
from deepgami.evaluation.config import ALONE, option_names
from deepgami.report.labels import (
    METRIC_LABELS,
    alone_sentence,
    method_label,
    protocol_label,
    protocol_title,
    verdict_sentence,
)

MAIN_METRICS = {
    "classification": ("auc", "balanced_accuracy", "accuracy", "f1_macro"),
    "regression": ("r2", "pearson", "mse"),
    "survival": ("c_index", "c_index_uno"),
}
TOP_ROWS = 15

CSS = """
:root{--ink:#1d2733;--muted:#5f6b7a;--line:#e3e7ee;--bg:#f6f8fb;--card:#fff;--accent:#1f5fa8}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:var(--ink);background:var(--bg)}
header{background:linear-gradient(120deg,#173f6e,#1f5fa8);color:#fff;padding:28px 40px 22px}
header h1{margin:0 0 4px;font-size:24px;font-weight:650}
header p{margin:0;opacity:.85}
header p.verdict{margin-top:10px;opacity:1;font-size:16px;font-weight:600}
nav{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid var(--line);padding:8px 40px}
nav a{color:var(--accent);text-decoration:none;margin-right:18px;font-size:13px}
main{max-width:1280px;margin:0 auto;padding:10px 40px 60px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 24px;margin:20px 0}
h2{font-size:18px;margin:0 0 12px;font-weight:650}
h3{font-size:15px;margin:18px 0 8px;font-weight:600}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:4px 0 8px}
.card{flex:1 1 160px;background:var(--bg);border:1px solid var(--line);border-radius:8px;padding:10px 14px}
.card .k{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:20px;font-weight:650}
table{border-collapse:collapse;font-size:13px;margin:6px 0 10px}
th,td{padding:5px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th{background:#eef2f7;font-weight:600;color:#33404f}
td.l,th.l{text-align:left}
#method-table td.l{white-space:normal;min-width:220px}
tr.dg td{background:#f3f8fe}
td.best{font-weight:700}
td.na{color:var(--muted);font-style:italic;text-align:left}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:-1px}
figure{margin:10px 0 18px}
figure img{max-width:100%;height:auto;border:1px solid var(--line);border-radius:6px;background:#fff}
figcaption{color:var(--muted);font-size:12.5px;margin-top:4px;max-width:900px}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:14px}
.note{color:var(--muted);font-size:13px}
ul.notes li{margin:3px 0}
details summary{cursor:pointer;color:var(--accent);margin:6px 0}
pre{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:10px;overflow:auto;font-size:12px}
.scroll{overflow-x:auto}
.pill{display:inline-block;background:#e8f0fb;color:var(--accent);border-radius:10px;padding:1px 8px;font-size:12px;margin-right:4px}
"""

CHECK_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var t = document.getElementById('method-table');
  document.body.dataset.imagesTotal = String(imgs.length);
  document.body.dataset.imagesLoaded = String(ok);
  document.body.dataset.methodRows = String(t && t.tBodies.length ? t.tBodies[0].rows.length : 0);
});
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _label(method: str) -> str:
    return method_label(method)


def _swatch(method: str) -> str:
    from deepgami.report.figures import method_color

    return f'<span class="sw" style="background:{method_color(method)}"></span>'


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.2e}"
        return f"{value:.{digits}f}"
    return str(value)


def _read_tsv(path: Path) -> pd.DataFrame | None:
    if not path.is_file() or path.stat().st_size == 0:
        return None
    try:
        return pd.read_csv(path, sep="\t")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError):
        return None


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def _figure(path: Path | None, alt: str, caption: str) -> str:
    if path is None or not path.is_file():
        return ""
    return f"<figure>{_img(path, alt)}<figcaption>{caption}</figcaption></figure>"


def _simple_table(
    frame: pd.DataFrame,
    left: Iterable[str] = (),
    table_id: str | None = None,
    max_rows: int | None = None,
) -> str:
    if frame is None or frame.empty:
        return '<p class="note">(empty)</p>'
    left = set(left)
    frame = frame.head(max_rows) if max_rows else frame
    head = "".join(f'<th class="{"l" if c in left else ""}">{_e(c)}</th>' for c in frame.columns)
    body = []
    for _, row in frame.iterrows():
        cells = "".join(
            f'<td class="{"l" if c in left else ""}">{_e(_fmt(row[c]))}</td>' for c in frame.columns
        )
        body.append(f"<tr>{cells}</tr>")
    ident = f' id="{table_id}"' if table_id else ""
    return f'<div class="scroll"><table{ident}><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


# -- sections ---------------------------------------------------------------------------------------


def _method_table(summary: pd.DataFrame, info: dict, protocols: Sequence[str]) -> str:
    """Rows: every method (all modalities) incl. n/a ones; columns: protocol x main metric, mean ± sd."""
    task = info["task"]
    metrics = MAIN_METRICS[task][:2]
    lower_better = {"mse", "rmse"}
    sub = summary[summary["modalities"] == "all"]
    methods = list(dict.fromkeys(list(info["methods"]) + list(info.get("not_applicable", {}))))
    order = [m for m in DEEPGAMI_METHODS if m in methods] + [
        m for m in methods if m not in DEEPGAMI_METHODS
    ]
    best: dict[tuple[str, str], float] = {}
    for p in protocols:
        for metric in metrics:
            vals = sub[(sub["protocol"] == p) & (sub["metric"] == metric)]["mean"].dropna()
            if len(vals):
                best[(p, metric)] = vals.min() if metric in lower_better else vals.max()
    head1 = '<th class="l" rowspan="2">method</th>' + "".join(
        f'<th colspan="{len(metrics)}">{_e(protocol_title(p))}</th>' for p in protocols
    )
    head2 = "".join(f"<th>{_e(METRIC_LABELS.get(m, m))}</th>" for _ in protocols for m in metrics)
    rows = []
    na = dict(info.get("not_applicable", {}))
    if ALONE in info["methods"]:  # no 'all' row: trained and scored per modality
        na[ALONE] = "per modality: see the missing-modalities table and the paired tests"
    for method in order:
        cls = ' class="dg"' if method in DEEPGAMI_METHODS else ""
        cells = [
            f'<td class="l">{_swatch(method)}{_e(_label(method))} <span class="note">({_e(method)})</span></td>'
        ]
        if method in na:
            cells.append(
                f'<td class="na" colspan="{len(metrics) * len(protocols)}">{_e(na[method])}</td>'
            )
        else:
            for p in protocols:
                for metric in metrics:
                    r = sub[
                        (sub["method"] == method)
                        & (sub["protocol"] == p)
                        & (sub["metric"] == metric)
                    ]
                    if r.empty or pd.isna(r["mean"].iloc[0]):
                        cells.append("<td></td>")
                        continue
                    mean, sd, n = r["mean"].iloc[0], r["sd"].iloc[0], int(r["n_splits"].iloc[0])
                    text = f"{mean:.3f}" + (f" ± {sd:.3f}" if n > 1 and not pd.isna(sd) else "")
                    is_best = (p, metric) in best and np.isclose(mean, best[(p, metric)])
                    cells.append(f'<td class="{"best" if is_best else ""}">{_e(text)}</td>')
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return (
        f'<div class="scroll"><table id="method-table"><thead><tr>{head1}</tr><tr>{head2}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _modality_table(summary: pd.DataFrame, info: dict, protocols: Sequence[str]) -> str:
    metric = MAIN_METRICS[info["task"]][0]
    sub = summary[(summary["metric"] == metric) & summary["method"].str.startswith("deepgami")]
    sub = sub[sub["mean"].notna()]
    if sub.empty:
        return ""
    combos = []
    for method in [m for m in DEEPGAMI_METHODS if m in set(sub["method"])] + (
        [MEANFILL] if MEANFILL in set(sub["method"]) else []
    ):
        for mods in ["all"] + list(info["modalities"]):
            if not sub[(sub["method"] == method) & (sub["modalities"] == mods)].empty:
                combos.append((method, mods))
    head = '<th class="l">method</th><th class="l">modalities given</th>' + "".join(
        f"<th>{_e(protocol_title(p))}</th>" for p in protocols
    )
    rows = []
    for method, mods in combos:
        cells = [
            f'<td class="l">{_swatch(method)}{_e(_label(method))}</td>',
            f'<td class="l">{_e("all" if mods == "all" else mods + " only")}</td>',
        ]
        for p in protocols:
            r = sub[
                (sub["method"] == method) & (sub["modalities"] == mods) & (sub["protocol"] == p)
            ]
            if r.empty:
                cells.append("<td></td>")
                continue
            mean, sd, n = r["mean"].iloc[0], r["sd"].iloc[0], int(r["n_splits"].iloc[0])
            cells.append(
                f"<td>{mean:.3f}" + (f" ± {sd:.3f}" if n > 1 and not pd.isna(sd) else "") + "</td>"
            )
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f"<h3>DeepGAMI with missing modalities ({_e(METRIC_LABELS.get(metric, metric))})</h3>"
        f'<div class="scroll"><table id="modality-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _headline(summary: pd.DataFrame, info: dict, protocols: Sequence[str]) -> str:
    """One sentence per protocol: DeepGAMI's main metric beside the best baseline's."""
    metric = MAIN_METRICS[info["task"]][0]
    sub = summary[(summary["modalities"] == "all") & (summary["metric"] == metric)].dropna(
        subset=["mean"]
    )
    items = []
    for p in protocols:
        s = sub[sub["protocol"] == p]
        dg = s[s["method"] == "deepgami"]
        others = s[~s["method"].str.startswith("deepgami")]
        if dg.empty or others.empty:
            continue
        best = others.loc[others["mean"].idxmax()]
        items.append(
            f"<li><b>{_e(protocol_title(p))}</b>: DeepGAMI {_e(METRIC_LABELS.get(metric, metric))} "
            f"{dg['mean'].iloc[0]:.3f}; best baseline {_e(_label(best['method']))} {best['mean']:.3f}</li>"
        )
    return f'<ul class="notes">{"".join(items)}</ul>' if items else ""


def _data_section(info: dict) -> str:
    d = info["data"]
    cards = [("samples", d["samples"]), ("task", d["task"])]
    if d.get("classes"):
        cards.append(("classes", ", ".join(f"{k}: {v}" for k, v in d["classes"].items())))
    cards.append(("modalities", ", ".join(d["modalities"])))
    cards.append(("samples with every modality", d["complete_samples"]))
    cards.append(
        ("latent nodes", d["latent_nodes"] if d["latent_nodes"] is not None else "dense (no prior)")
    )
    html_cards = "".join(
        f'<div class="card"><div class="k">{_e(k)}</div><div class="v">{_e(v)}</div></div>'
        for k, v in cards
    )
    mods = pd.DataFrame(
        [
            {
                "modality": m,
                "samples": v["samples"],
                "features": v["features"],
                "stored as": d.get("build", {}).get("modalities", {}).get(m, {}).get("dtype", ""),
            }
            for m, v in d["modalities"].items()
        ]
    )
    out = [
        f'<div class="cards">{html_cards}</div>',
        "<h3>Modalities</h3>",
        _simple_table(mods, left=["modality", "stored as"]),
    ]
    if d.get("priors"):
        pri = pd.DataFrame(
            [
                {
                    "prior": name,
                    "modality": p.get("modality", ""),
                    "edges kept": p.get("edges_kept", ""),
                    "of edges read": p.get("edges_read", ""),
                    "sources": p.get("sources", ""),
                    "targets": p.get("targets", ""),
                }
                for name, p in d["priors"].items()
            ]
        )
        out += ["<h3>Prior networks</h3>", _simple_table(pri, left=["prior", "modality"])]
    else:
        out.append(
            '<p class="note">No prior network in this cohort: DeepGAMI runs in fully connected mode.</p>'
        )
    if info.get("test_data"):
        t = info["test_data"]
        out.append(
            f'<p class="note">Independent test cohort <b>{_e(info.get("test_cohort"))}</b>: {t["samples"]} '
            "samples; " + ", ".join(f"{k}: {v}" for k, v in t.get("classes", {}).items()) + ".</p>"
        )
    return "".join(out)


def _paired_section(paired: pd.DataFrame | None, protocols: Sequence[str]) -> str:
    """Per protocol: DeepGAMI minus each method, mean paired difference with its 95% interval; then
    DeepGAMI trained on all minus trained on each modality alone, both predicted from it."""
    if paired is None or paired.empty:
        return '<p class="note">No paired tests (they need DeepGAMI and another method on the same splits).</p>'
    out = [
        '<p class="note">DeepGAMI minus each method on the same splits (positive: DeepGAMI better; for MSE '
        "negative is better). Several splits: the corrected resampled t-test of Nadeau and Bengio; one split: "
        "a paired bootstrap of the held-out samples. Significant when the 95% interval excludes 0.</p>"
    ]
    alone = paired["reference"].astype(str) != "deepgami"
    for p in [p for p in protocols if p in set(paired["protocol"])]:
        t = paired[(paired["protocol"] == p) & ~alone]
        if len(t):
            out.append(_paired_table(t, p, f"paired-{p}", _e(protocol_title(p))))
    if alone.any():
        out.append(
            "<h3>Trained on all vs on one modality alone</h3>"
            '<p class="note">DeepGAMI trained on every modality and predicted from one (the others '
            "imputed), minus DeepGAMI trained on that modality alone (deepgami_alone), on the same "
            "splits and held-out samples (positive: training on all helps).</p>"
        )
    for p in [p for p in protocols if p in set(paired.loc[alone, "protocol"])]:
        t = paired[(paired["protocol"] == p) & alone]
        out.append(_paired_table(t, p, f"paired-alone-{p}", _e(protocol_title(p))))
    return "".join(out)


def _paired_table(t: pd.DataFrame, protocol: str, table_id: str, title: str) -> str:
    """One protocol's paired rows as a table under its heading."""
    t = t.copy()
    t["significant"] = t["significant"].astype(str).str.lower() == "true"
    alone = (t["reference"].astype(str) != "deepgami").any()
    table = pd.DataFrame(
        {
            "metric": t["metric"].map(lambda m: METRIC_LABELS.get(m, m)),
            "method": t["method"].map(_label),
            "n": t["n"].astype(int),
            ("trained on all" if alone else "DeepGAMI"): t["mean_reference"].map(
                lambda v: f"{v:.3f}"
            ),
            ("trained alone" if alone else "method mean"): t["mean_method"].map(
                lambda v: f"{v:.3f}"
            ),
            "difference": t["difference"].map(lambda v: f"{v:+.3f}"),
            "95% interval": [
                f"{lo:+.3f} to {hi:+.3f}" for lo, hi in zip(t["ci_low"], t["ci_high"], strict=False)
            ],
            "p": t["pvalue"],
            "": ["significant" if v else "not significant" for v in t["significant"]],
        }
    )
    test = t["test"].iloc[0]
    n_word = "splits" if "Nadeau" in str(test) else "held-out samples"
    return f'<h3>{title} <span class="note">({_e(test)}; n = {n_word})</span></h3>' + _simple_table(
        table, left=["metric", "method", ""], table_id=table_id
    )


def _ks_section(ks: pd.DataFrame | None) -> str:
    if ks is None or ks.empty:
        return '<p class="note">No KS tests (they need the repeated protocol with two or more splits).</p>'
    t = ks.copy()
    t["_dg"] = ~(
        t["method_a"].str.startswith("deepgami") | t["method_b"].str.startswith("deepgami")
    )
    t = t.sort_values(["metric", "_dg", "pvalue"], kind="stable").drop(columns="_dg")
    involves = (t["method_a"] == "deepgami") | (t["method_b"] == "deepgami")
    t["method_a"] = t["method_a"].map(_label)
    t["method_b"] = t["method_b"].map(_label)
    t = t.rename(columns={"statistic": "D"})
    cols = [
        "metric",
        "method_a",
        "method_b",
        "n_a",
        "n_b",
        "mean_a",
        "mean_b",
        "D",
        "pvalue",
        "pvalue_bh",
    ]
    left = ["metric", "method_a", "method_b"]
    out = (
        _simple_table(t.loc[involves, cols], left=left, table_id="ks-table")
        if involves.any()
        else ""
    )
    if (~involves).any():
        out += (
            "<details><summary>Pairs of the other methods</summary>"
            + _simple_table(t.loc[~involves, cols], left=left)
            + "</details>"
        )
    return out


def _prioritization_section(pdir: Path | None, figdir: Path) -> str:
    """The top features, latent nodes and links of a prioritization directory, with figures."""
    if pdir is None:
        return (
            '<p class="note">No prioritization given (run <code>deepgami prioritize MODEL COHORT --out DIR</code> '
            "and pass <code>--prioritize-dir DIR</code>, or keep it beside the evaluation directory).</p>"
        )
    out = [f'<p class="note">From <code>{_e(pdir)}</code>.</p>']
    found = False
    for name, title in (
        ("features.tsv", "Top input features"),
        ("latent.tsv", "Top latent nodes"),
        ("links.tsv", "Top prior links"),
    ):
        table = _read_tsv(pdir / name)
        if table is None:
            continue
        found = True
        out.append(_top_table_html(table, name, title, figdir))
    links = [
        _figure(
            png,
            png.stem,
            f"Top prior links, as drawn by <code>deepgami prioritize</code> ({_e(png.name)}).",
        )
        for png in sorted(pdir.glob("links_*.png"))
    ]
    if links:
        out.append('<div class="grid2">' + "".join(links) + "</div>")
    if not found:
        out.append(
            '<p class="note">The directory holds no features.tsv, latent.tsv or links.tsv.</p>'
        )
    return "".join(out)


def _survival_html(ddir: Path) -> str:
    """The Kaplan-Meier figures `deepgami predict` drew into a predictions directory ("" if none)."""
    figs = [
        _figure(
            png,
            png.name,
            f"Kaplan-Meier curves of each survival target by predicted risk group (low / mid / "
            f"high: tertiles of the training risk), predictions <code>{_e(png.name[:-7])}</code> "
            f"of <code>{_e(ddir)}</code>.",
        )
        for png in sorted(ddir.glob("*.km.png"))
    ]
    return '<div class="grid2">' + "".join(figs) + "</div>" if figs else ""


def _top_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The TOP_ROWS best rows of a ranked table, each feature (node, link) once."""
    if "rank" in table:
        table = table.sort_values(["rank"] + [c for c in ("class",) if c in table], kind="stable")
    elif "importance" in table:
        table = table.sort_values("importance", key=lambda v: -v.abs(), kind="stable")
    # Per-class rows repeat a feature (for two classes the centered logits mirror each other):
    # list each feature once, at its best rank.
    key = (
        ["source", "target"]
        if "source" in table and "target" in table
        else [next((c for c in ("feature", "node", "name") if c in table), table.columns[0])]
    )
    if "node" in key and "modality" in table:  # a latent node has one block per modality
        key.append("modality")
    return table.drop_duplicates(subset=key, keep="first").head(TOP_ROWS)


def _top_table_html(table: pd.DataFrame, name: str, title: str, figdir: Path) -> str:
    """One prioritization table's top rows beside their bar chart."""
    from deepgami.report import figures

    if table.empty:
        return f'<h3>{_e(title)}</h3><p class="note">{_e(name)} is empty (no prior links).</p>'
    top = _top_rows(table)
    fig = figures.importance_bars(top, title, TOP_ROWS)
    png = figures.save(fig, figdir / f"prioritize_{name[:-4]}.png") if fig is not None else None
    wanted = (
        ("source", "target", "prior", "class", "importance", "rank")
        if "source" in top
        else ("feature", "node", "modality", "class", "importance", "mean_attribution", "rank")
    )
    shown = [c for c in wanted if c in top] or list(top.columns)
    left = [c for c in shown if top[c].dtype == object]
    return (
        f"<h3>{_e(title)}</h3>"
        + '<div class="grid2"><div>'
        + _simple_table(top[shown], left=left)
        + "</div><div>"
        + _figure(
            png,
            title,
            f"Top {TOP_ROWS} by importance ({_e(name)}; each listed once at its best "
            "rank over classes).",
        )
        + "</div></div>"
    )


def _settings_section(
    info: dict, tuning: pd.DataFrame | None, baseline_params: pd.DataFrame | None
) -> str:
    """Protocols, notes, evaluation settings, grids, chosen hyperparameters and versions."""
    cfg = info["config"]
    out = ['<h3>Protocols</h3><ul class="notes">']
    for p, v in info["protocols"].items():
        out.append(
            f"<li><b>{_e(protocol_title(p))}</b> ({v['splits']} split{'s' if v['splits'] != 1 else ''}): "
            f"{_e(v['how'])}</li>"
        )
    out.append('</ul><h3>Notes</h3><ul class="notes">')
    out += [f"<li>{_e(n)}</li>" for n in info.get("notes", [])]
    out.append("</ul>")
    # Every evaluate option but the methods, which the report lists on their own.
    settings = {k: cfg[k] for k in option_names() if k != "methods" and k in cfg}
    if cfg.get("methods"):
        settings["methods"] = cfg["methods"]
    out.append(
        "<h3>Evaluation settings</h3>"
        + _simple_table(
            pd.DataFrame(
                {"setting": list(settings), "value": [json.dumps(v) for v in settings.values()]}
            ),
            left=["setting", "value"],
        )
    )
    if info.get("deepgami_setting"):
        s = info["deepgami_setting"]
        out.append(
            "<h3>DeepGAMI setting used</h3><pre>"
            + _e(json.dumps(s, indent=1, sort_keys=True))
            + "</pre>"
        )
    out.append(_tuning_html(tuning))
    out.append(_baselines_html(info, baseline_params))
    out.append(
        "<details><summary>DeepGAMI parameters (params YAML merged with defaults)</summary><pre>"
        + _e(json.dumps(info.get("params", {}), indent=1, sort_keys=True))
        + "</pre></details>"
    )
    versions = info.get("versions", {})
    out.append(
        "<h3>Package versions</h3>"
        + " ".join(f'<span class="pill">{_e(k)} {_e(v)}</span>' for k, v in versions.items())
    )
    return "".join(out)


def _tuning_html(tuning: pd.DataFrame | None) -> str:
    """DeepGAMI's grid search, mean over inner folds ('' without one)."""
    if tuning is None or tuning.empty:
        return ""
    scores = ("all_log_loss", "all_auc", "all_balanced_accuracy", "all_r2")
    agg = tuning.groupby(["setting", "grid"], sort=False)[[c for c in scores if c in tuning]].mean()
    agg = agg.reset_index()
    agg["selected"] = agg["setting"].isin(
        tuning.loc[tuning["selected"].astype(str).str.lower() == "true", "setting"]
    )
    return (
        "<details><summary>DeepGAMI grid search (mean over inner folds)</summary>"
        + _simple_table(agg, left=["grid"])
        + "</details>"
    )


def _baselines_html(info: dict, baseline_params: pd.DataFrame | None) -> str:
    """The baselines' grids and the hyperparameters their inner CV chose ('' without them)."""
    out = []
    if info.get("baseline_grids"):
        grids = pd.DataFrame(
            {
                "method": [_label(m) for m in info["baseline_grids"]],
                "grid": [json.dumps(g) for g in info["baseline_grids"].values()],
            }
        )
        out.append("<h3>Baseline grids</h3>" + _simple_table(grids, left=["method", "grid"]))
    if baseline_params is not None and not baseline_params.empty:
        chosen = (
            baseline_params.groupby(["method", "params"])
            .size()
            .rename("splits")
            .reset_index()
            .sort_values(["method", "splits"], ascending=[True, False], kind="stable")
        )
        chosen["method"] = chosen["method"].map(_label)
        out.append(
            "<details><summary>Baseline hyperparameters chosen by inner CV (count of splits)</summary>"
            + _simple_table(chosen, left=["method", "params"])
            + "</details>"
        )
    return "".join(out)


# -- the page -------------------------------------------------------------------------------------------


def make_figures(
    eval_dir: Path,
    info: dict,
    metrics: pd.DataFrame,
    predictions: pd.DataFrame | None,
    model_history: pd.DataFrame | None,
    histories: pd.DataFrame | None,
) -> dict[str, Path]:
    """Draw the evaluation's figures into `eval_dir`/figures.

    Parameters
    ----------
    eval_dir : pathlib.Path
        The evaluation directory (``figures/`` is created in it).
    info : dict
        The evaluation's ``run.json`` (task, methods, protocols, classes, modalities).
    metrics : pandas.DataFrame
        The tidy per-split metrics (``metrics.tsv``).
    predictions : pandas.DataFrame or None
        The held-out predictions (``predictions.tsv``), for the ROC curves.
    model_history : pandas.DataFrame or None
        The trained model's ``training_history.tsv``.
    histories : pandas.DataFrame or None
        The evaluation's training histories (``training_history.tsv``), by method, protocol and
        split.

    Returns
    -------
    dict of str to pathlib.Path
        The written figures by key (``roc_<protocol>``, ``recall``, ``boxplot_<protocol>``,
        ``modalities``, ``training_curves``); a figure with nothing to draw is left out.
    """
    from deepgami.report import figures

    figdir = eval_dir / "figures"
    figdir.mkdir(exist_ok=True)
    order = list(info["methods"])
    if MEANFILL in set(metrics["method"]):
        order.insert(1, MEANFILL)
    protocols = list(info["protocols"])
    out: dict[str, Path] = {}

    def keep(key: str, fig: Any) -> None:
        if fig is not None:
            out[key] = figures.save(fig, figdir / f"{key}.png")

    classification = info["task"] == "classification"
    if classification and predictions is not None and not predictions.empty:
        for p in ("holdout", "cv", "independent"):
            if p in protocols:
                keep(f"roc_{p}", figures.roc_curves(predictions, info["classes"], p, order))
    if classification:
        keep("recall", figures.recall_bars(metrics, info["classes"], protocols, order))
    main = MAIN_METRICS[info["task"]][:2]
    if "repeated" in protocols:
        keep("boxplot_repeated", figures.split_boxplots(metrics, "repeated", main, order))
    if "cv" in protocols:
        keep("boxplot_cv", figures.split_boxplots(metrics, "cv", main, order))
    keep(
        "modalities",
        figures.modality_bars(
            metrics, list(info["modalities"]), protocols, MAIN_METRICS[info["task"]][0]
        ),
    )
    curves: dict[str, pd.DataFrame] = {}
    if model_history is not None:
        curves["deepgami (trained model)"] = model_history
    if histories is not None and not histories.empty:
        for (method, protocol, split), h in histories.groupby(
            ["method", "protocol", "split"], sort=False
        ):
            curves[f"{method} ({protocol} {split})"] = h
    keep("training_curves", figures.training_curves(curves))
    return out


def _find(explicit: str | Path | None, eval_dir: Path, name: str, marker: str) -> Path | None:
    """An explicit directory, else `<eval_dir>/../<name>` when it holds `marker`."""
    if explicit is not None:
        return Path(explicit)
    guess = eval_dir.parent / name
    return guess if (guess / marker).exists() else None


def write_report(
    eval_dir: str | Path,
    *,
    prioritize_dir: str | Path | None = None,
    model_dir: str | Path | None = None,
    final_dir: str | Path | None = None,
    predictions_dir: str | Path | None = None,
) -> Path:
    """Draw the figures and write `eval_dir/report.html` from the files of an evaluation directory.

    Parameters
    ----------
    eval_dir : str or pathlib.Path
        The evaluation directory (``run.json``, ``metrics.tsv``, ...).
    prioritize_dir, model_dir : str or pathlib.Path, optional
        Prioritization and model directories shown in the report; by default ``prioritize/`` and
        ``model/`` beside the final evaluation directory, when they exist.
    final_dir : str or pathlib.Path, optional
        Where the evaluation directory will finally live (default `eval_dir`).
    predictions_dir : str or pathlib.Path, optional
        A directory of ``deepgami predict`` outputs whose Kaplan-Meier figures (``*.km.png``:
        survival targets by predicted risk group) the report shows; by default ``predictions/``
        beside the final evaluation directory, when it holds one.

    Returns
    -------
    Path
        The written ``report.html``.
    """
    eval_dir = Path(eval_dir)
    final = Path(final_dir) if final_dir is not None else eval_dir
    info = json.loads((eval_dir / "run.json").read_text())
    t = _read_outputs(eval_dir)
    pdir = _find(prioritize_dir, final, "prioritize", "features.tsv")
    mdir = _find(model_dir, final, "model", "config.json")
    model_history = _read_tsv(mdir / "training_history.tsv") if mdir is not None else None
    figs = make_figures(
        eval_dir, info, t["metrics"], t["predictions"], model_history, t["histories"]
    )
    sections = _sections(info, t, figs, _prioritization_section(pdir, eval_dir / "figures"))
    ddir = _find(predictions_dir, final, "predictions", "all.km.png")
    if ddir is not None and _survival_html(ddir):
        sections.insert(3, ("survival", "Survival", _survival_html(ddir)))
    path = eval_dir / "report.html"
    path.write_text(_page(info, sections), encoding="utf-8")
    return path


def _sections(
    info: dict, t: dict[str, pd.DataFrame | None], figs: dict[str, Path], prioritization: str
) -> list[tuple[str, str, str]]:
    """The page's sections in order: (anchor, title, HTML)."""
    protocols = list(info["protocols"])
    sections = [
        ("data", "Data", _data_section(info)),
        ("results", "Results", _results_html(t["summary"], info, protocols)),
        ("figures", "Figures", _figures_html(figs, info)),
        ("paired", "Paired tests", _paired_section(t["paired"], protocols)),
        (
            "ks",
            "KS tests",
            '<p class="note">Pairwise two-sample Kolmogorov-Smirnov tests on the per-split scores '
            "of the repeated protocol.</p>" + _ks_section(t["ks"]),
        ),
        ("prioritization", "Prioritization", prioritization),
        (
            "training",
            "Training curves",
            _figure(
                figs.get("training_curves"),
                "training curves",
                "Loss per epoch (solid: training; dashed: inner validation used for "
                "early stopping; dotted: the restored best epoch).",
            )
            or '<p class="note">No training history.</p>',
        ),
        (
            "settings",
            "Parameters and versions",
            _settings_section(info, t["tuning"], t["baseline_params"]),
        ),
    ]
    return sections


def _read_outputs(eval_dir: Path) -> dict[str, pd.DataFrame | None]:
    """The evaluation's tables by file stem (None when absent; metrics and summary never)."""
    out = {
        name: _read_tsv(eval_dir / f"{name}.tsv")
        for name in (
            "metrics",
            "summary",
            "predictions",
            "ks_tests",
            "paired_tests",
            "training_history",
            "tuning",
            "baseline_params",
        )
    }
    if out["metrics"] is None:
        out["metrics"] = pd.DataFrame(
            columns=["method", "modalities", "protocol", "split", "metric", "value"]
        )
    if out["summary"] is None:
        out["summary"] = pd.DataFrame(
            columns=["method", "modalities", "protocol", "metric", "mean", "sd", "n_splits", "note"]
        )
    for frame in (out["metrics"], out["summary"]):
        frame["modalities"] = frame["modalities"].astype(str)
    predictions = out["predictions"]
    if predictions is not None:
        predictions["label"] = predictions["label"].astype(str)
        predictions["modalities"] = predictions["modalities"].astype(str)
    out["ks"], out["paired"] = out.pop("ks_tests"), out.pop("paired_tests")
    out["histories"] = out.pop("training_history")
    return out


def _results_html(summary: pd.DataFrame, info: dict, protocols: list[str]) -> str:
    """The results section: headline, method and modality tables, every metric."""
    return "".join(
        [
            _headline(summary, info, protocols),
            "<h3>All methods, all modalities (mean ± sd over splits; best per column in bold)</h3>",
            _method_table(summary, info, protocols),
            _modality_table(summary, info, protocols),
            "<details><summary>Every metric (summary.tsv)</summary>",
            _simple_table(
                summary.assign(method=summary["method"].map(_label)),
                left=["method", "modalities", "protocol", "metric", "note"],
            ),
            "</details>",
        ]
    )


def _figures_html(figs: dict[str, Path], info: dict) -> str:
    """The figures section: ROC curves, recall, scores per split, missing modalities."""
    classes = info.get("classes", [])
    positive = f" ({classes[1]} vs {classes[0]})" if len(classes) == 2 else ""
    out = []
    roc = [
        _figure(
            figs.get(f"roc_{p}"),
            f"ROC {p}",
            f"ROC curves on the {_e(protocol_label(p))}{positive}; "
            "cross-validation pools the out-of-fold predictions, legend AUCs are of the pooled curve.",
        )
        for p in ("holdout", "cv", "independent")
    ]
    roc = [r for r in roc if r]
    if roc:
        out.append('<h3>ROC curves</h3><div class="grid2">' + "".join(roc) + "</div>")
    if "recall" in figs:
        out.append(
            "<h3>Per-class recall</h3>"
            + _figure(
                figs["recall"],
                "recall per class",
                "Recall of each class (mean ± sd over the splits of each protocol).",
            )
        )
    box = [
        _figure(figs.get(k), k, c)
        for k, c in (
            (
                "boxplot_repeated",
                "Per-split scores over the repeated random splits (the distributions the KS tests compare).",
            ),
            ("boxplot_cv", "Per-fold scores of the cross-validation."),
        )
    ]
    if any(box):
        out.append("<h3>Scores per split</h3>" + "".join(box))
    if "modalities" in figs:
        out.append(
            "<h3>Missing modalities</h3>"
            + _figure(
                figs["modalities"],
                "DeepGAMI by modalities",
                "DeepGAMI given all modalities, or one modality with the "
                "others imputed from it (DeepGAMI's auxiliary imputation) or mean-filled.",
            )
        )
    return "".join(out) or '<p class="note">No figures.</p>'


def write_targets_report(eval_dir: str | Path) -> Path:
    """Write the report of a cohort with targets.

    It shows each target's verdict and headline, linked to the target's own report
    (``targets/<name>/report.html``).

    Parameters
    ----------
    eval_dir : str or pathlib.Path
        The evaluation directory (``run.json`` with ``targets``, ``summary.tsv``).

    Returns
    -------
    pathlib.Path
        The written ``report.html``.
    """
    eval_dir = Path(eval_dir)
    info = json.loads((eval_dir / "run.json").read_text())
    summary = _read_outputs(eval_dir)["summary"]
    blocks = []
    for t in info["targets"]:
        own = summary[summary["target"].astype(str) == t["name"]]
        lines = [verdict_sentence(t.get("verdict")), alone_sentence(t.get("verdict_alone"))]
        blocks.append(
            f'<h3>{_e(t["name"])} <span class="note">({_e(t["task"])})</span></h3>'
            + "".join(f'<p class="verdict">{_e(line)}</p>' for line in lines if line)
            + _headline(own, {**info, "task": t["task"]}, list(info["protocols"]))
            + f'<p><a href="targets/{_e(t["dir"])}/report.html">the whole report of '
            f"{_e(t['name'])}</a> (tables, figures, paired and KS tests)</p>"
        )
    sections = [
        ("targets", "Targets", "".join(blocks)),
        ("data", "Data", _data_section(info)),
        ("settings", "Parameters and versions", _settings_section(info, None, None)),
    ]
    path = eval_dir / "report.html"
    path.write_text(_page(info, sections), encoding="utf-8")
    return path


def _page(info: dict, sections: list[tuple[str, str, str]]) -> str:
    """The whole HTML page: header with the verdict, navigation, sections."""
    title = f"DeepGAMI evaluation: {info.get('cohort', '')}"
    if info.get("target"):
        title += f", target {info['target']}"
    nav = "".join(f'<a href="#{k}">{_e(t)}</a>' for k, t, _ in sections)
    body = "".join(
        f'<section id="{k}"><h2>{_e(t)}</h2>{content}</section>' for k, t, content in sections
    )
    sub = (
        f"{len(info['methods'])} methods &middot; protocols: "
        + ", ".join(_e(protocol_label(p)) for p in info["protocols"])
        + (" &middot; <b>fast settings</b>" if info["config"].get("fast") else "")
    )
    line = verdict_sentence(info.get("verdict"))
    verdict = f'<p id="verdict" class="verdict">{_e(line)}</p>' if line else ""
    line = alone_sentence(info.get("verdict_alone"))
    verdict += f'<p id="verdict-alone" class="verdict">{_e(line)}</p>' if line else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>\n<body>\n"
        f"<header><h1>{_e(title)}</h1><p>{sub}</p>{verdict}</header>\n<nav>{nav}</nav>\n"
        f"<main>{body}</main>\n<script>{CHECK_SCRIPT}</script>\n</body></html>\n"
    )
