"""`deepgami evaluate`: DeepGAMI, its ablations and the baselines under the paper's protocols."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from deepgami.commands import add_device_argument, add_overwrite_argument
from deepgami.errors import InputError, claim_output

DESCRIPTION = """\
Evaluate DeepGAMI against its ablations and scikit-learn baselines on the same splits, with the
same per-fold preprocessing (fitted on training rows only) and the same metrics.

methods (--methods, default all):
  deepgami                  all modalities, and each modality alone (others imputed; also
                            mean-filled, reported as deepgami_meanfill)
  deepgami_dense            no prior: dense encoders into as many latent nodes
  deepgami_random_prior     priors replaced by random networks with the same edge counts
  deepgami_bernoulli_prior  prior edges kept with p=--bernoulli-keep, others added with p=--bernoulli-add
  deepgami_alone            trained on each modality alone (its prior kept; same splits and setting),
                            scored from it (metrics.tsv rows with modalities = that modality);
                            n/a for a one-modality cohort
  baselines on the concatenated modalities, tuned by inner CV:
<baselines>
  Prior ablations are reported as "n/a (cohort has no prior)" for a cohort without priors.

protocols (--protocols, default holdout,cv,repeated; --fast: holdout,cv; independent with --test-cohort):
  holdout      the cohort's split column (train/test), else a stratified 80/20 split
  cv           stratified --folds-fold cross-validation
  repeated     --repeats stratified random 80/20 splits (default 10), with pairwise KS tests
  independent  train on COHORT, test on --test-cohort
  The prior ablations run on --ablation-protocols (default holdout,independent); deepgami_alone
  on every protocol, as deepgami.

comparisons: paired_tests.tsv and the report's verdict line give, per method, DeepGAMI's mean
paired difference in AUC and balanced accuracy over the same splits with a 95% interval (corrected
resampled t-test of Nadeau and Bengio for CV folds and repeated splits; paired bootstrap of the
held-out samples for a single split). With deepgami_alone, per modality m, a row with reference
deepgami[m] and method deepgami_alone[m]: DeepGAMI trained on all and predicted from m, minus
DeepGAMI trained on m alone (a second verdict line in the report).

cost: units (split x method) run in --jobs worker processes (default: the CPUs), with the same
results for any --jobs. On a 1,200-sample simulated cohort with two free cores, the defaults take
about 9 minutes and --fast about 2 (README, "Evaluation: what it costs"); --budget MINUTES runs only
the repeated splits that fit (at least 2) and says so in the report.

DeepGAMI's grid (params YAML) is searched once, by cv_folds-fold CV on the training samples of the
first split, and that setting is used on every split (--tune each: search on every split; --tune
none or --fast: the first value of each grid entry). The params YAML may hold an `evaluate:`
section with any of the options below (e.g. `evaluate: {repeats: 100, fast: false}`); command-line
options override it.

writes into --out (replaced atomically):
  metrics.tsv        tidy: method, modalities, protocol, split, metric, value
  summary.tsv        mean, sd and number of splits per method x modalities x protocol x metric
  paired_tests.tsv   DeepGAMI minus each method (and deepgami[m] minus deepgami_alone[m]): mean
                     paired difference, 95% interval, p-value
  ks_tests.tsv       pairwise KS tests on the repeated splits' scores
  predictions.tsv    held-out class probabilities of every method and split
  report.html        self-contained report (figures embedded); figures/*.png
  run.json, training_history.tsv, tuning.tsv, baseline_params.tsv

several targets or a survival target (built with --label-column a,b or --survival-columns
time,event): DeepGAMI is fitted once per split on every target (as `deepgami train` fits it); each
baseline per target, on the training samples where that target is known (survival: the penalized
Cox model, coxnet); each target is scored on the held-out samples where it is known (survival:
Harrell's C-index, and Uno's). The tables above gain a first column `target`; targets/<target>/
holds each target's own tables and report (verdict, paired tests, figures), and report.html
links them. The independent protocol takes one-label cohorts only.

examples:
  deepgami evaluate cohort.h5mu --out evaluation/
  deepgami evaluate cohort.h5mu --out evaluation/ --fast --methods deepgami,logistic_regression
  deepgami evaluate multi.h5mu --out evaluation/ --fast   # a cohort built with --label-column a,b
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Fills in the baselines' lines from their registry, only when help is shown (the registry's
    package imports pandas: every `deepgami` command registers this parser)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "<baselines>" in text:
            from deepgami.evaluation.baselines import help_lines

            text = text.replace("<baselines>", help_lines())
        return super()._fill_text(text, width, indent)


def _csv_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def read_eval_params(path: str | None) -> tuple[Any, dict]:
    """Read DeepGAMI's validated `Settings` and the YAML's `evaluate:` section.

    Parameters
    ----------
    path : str or None
        The params YAML file (None: the packaged defaults and no section).

    Returns
    -------
    params : Settings
        DeepGAMI's validated settings.
    section : dict
        The file's `evaluate:` section (empty when there is none).

    Raises
    ------
    InputError
        When the section is not a mapping, holds an unknown option, or the parameters are not valid.
    """
    from deepgami.evaluation.config import option_names
    from deepgami.train import Settings, read_params_file

    if path is None:
        return Settings.from_mapping(None), {}
    user = read_params_file(path)
    section = user.pop("evaluate", None) or {}
    if not isinstance(section, dict):
        raise InputError(path, "'evaluate' must be a mapping of option: value")
    known = option_names()
    unknown = [k for k in section if k not in known]
    if unknown:
        raise InputError(
            path, f"unknown evaluate option {unknown[0]!r} (known: {', '.join(known)})"
        )
    return Settings.from_mapping(user, path), section


def _run(args: argparse.Namespace) -> int:
    """Evaluate the cohort as the command line says and write the output directory."""
    import time

    from deepgami.data.cohort import read_cohort
    from deepgami.evaluation import evaluate
    from deepgami.evaluation.executor import progress_mode
    from deepgami.report.outputs import write_evaluation
    from deepgami.train import device_scope
    from deepgami.utils import resolve_device

    out = Path(args.out)
    inputs = [args.cohort, args.test_cohort, args.params, args.prioritize_dir, args.model_dir]
    claim = claim_output(out, "evaluate", inputs, args.overwrite)
    params, config = _eval_config(args)
    for flag, path in (("--prioritize-dir", args.prioritize_dir), ("--model-dir", args.model_dir)):
        if path is not None and not Path(path).is_dir():
            raise InputError(path, f"{flag}: directory not found")
    device = resolve_device(args.device)
    mdata = read_cohort(args.cohort)
    test = read_cohort(args.test_cohort) if args.test_cohort else None
    log = None if args.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    try:
        with device_scope(device):
            result = evaluate(
                mdata,
                params,
                config,
                test,
                cohort_name=Path(args.cohort).name,
                test_name=Path(args.test_cohort).name if args.test_cohort else None,
                log=log,
                jobs=args.jobs,
                progress=progress_mode(args.quiet),
            )
    except InputError as err:
        if err.path is None:
            raise InputError(args.cohort, err.message) from None
        raise
    result.info["notes"] = [*args.note, *result.info["notes"]]
    write_evaluation(result, out, prioritize_dir=args.prioritize_dir, model_dir=args.model_dir)
    claim.mark()
    if not args.quiet:
        _print_summary(result, time.perf_counter() - t0)
    print(out / "report.html")
    return 0


def _eval_config(args: argparse.Namespace) -> tuple[dict, Any]:
    """DeepGAMI's parameters and the checked `EvalConfig`: the params file's ``evaluate:``
    section, overridden by the command line."""
    from deepgami.evaluation import EvalConfig
    from deepgami.evaluation.config import option_names

    params, section = read_eval_params(args.params)
    values = {k: section[k] for k in option_names() if k in section}
    for key in ("protocols", "methods", "ablation_protocols"):
        if isinstance(values.get(key), str):
            values[key] = _csv_list(values[key])
    cli = {
        "protocols": _csv_list(args.protocols),
        "folds": args.folds,
        "repeats": args.repeats,
        "test_fraction": args.test_fraction,
        "methods": _csv_list(args.methods),
        "tune": args.tune,
        "inner_folds": args.inner_folds,
        "bernoulli_keep": args.bernoulli_keep,
        "bernoulli_add": args.bernoulli_add,
        "seed": args.seed,
        "fast": True if args.fast else None,
        "ablation_protocols": _csv_list(args.ablation_protocols),
        "budget": args.budget,
    }
    values.update({k: v for k, v in cli.items() if v is not None})
    if args.jobs is not None and args.jobs < 1:
        raise InputError(None, f"--jobs must be at least 1 (got {args.jobs})")
    try:
        config = EvalConfig(**values)
        config.check()
    except (TypeError, ValueError) as err:
        raise InputError(args.params, f"bad evaluate option: {err}") from None
    except InputError as err:
        raise InputError(args.params if section else None, err.message) from None
    return params, config


def _print_summary(result: Any, seconds: float) -> None:
    """The verdict line and what ran in how long, on stderr."""
    from deepgami.report.labels import alone_sentence, verdict_sentence

    for own in result.info.get("targets") or [result.info]:
        lines = [verdict_sentence(own.get("verdict")), alone_sentence(own.get("verdict_alone"))]
        for line in filter(None, lines):
            print(f"{own['name']}: {line}" if "name" in own else line, file=sys.stderr)
    times = ", ".join(f"{m} {s:.0f}s" for m, s in result.seconds.items() if m != "total")
    print(
        f"evaluated {len(result.info['methods'])} methods on "
        f"{sum(v['splits'] for v in result.info['protocols'].values())} splits in "
        f"{seconds:.0f}s ({times})",
        file=sys.stderr,
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `evaluate` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subparsers of the `deepgami` parser.
    """
    p = sub.add_parser(
        "evaluate",
        help="compare DeepGAMI, its ablations and baselines under the paper's protocols; write report.html",
        description=DESCRIPTION,
        formatter_class=_Formatter,
    )
    p.add_argument("cohort", metavar="COHORT.h5mu", help="cohort written by `deepgami build`")
    p.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output directory (replaces a previous evaluation atomically; see --overwrite)",
    )
    add_overwrite_argument(p)
    p.add_argument(
        "--params",
        metavar="PARAMS.yaml",
        help="DeepGAMI parameters (as for `deepgami train`), "
        "optionally with an `evaluate:` section",
    )
    p.add_argument(
        "--protocols",
        metavar="P[,P]",
        help="holdout,cv,repeated,independent (default: the first three)",
    )
    p.add_argument("--folds", type=int, metavar="K", help="cross-validation folds (default 5)")
    p.add_argument(
        "--repeats",
        type=int,
        metavar="N",
        help="repeated random splits (default 10; the paper used 100)",
    )
    p.add_argument(
        "--test-fraction",
        type=float,
        metavar="F",
        help="held-out share of the random splits (default 0.2)",
    )
    p.add_argument("--methods", metavar="M[,M]", help="methods to run (default: all)")
    p.add_argument(
        "--fast",
        action="store_true",
        help="no DeepGAMI grid search (first grid values), small baseline grids with at most 3 inner "
        "folds, and (without --protocols) only the held-out split and the CV folds",
    )
    p.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="worker processes for the (split x method) fits (default: the CPUs); results do not depend on it",
    )
    p.add_argument(
        "--budget",
        type=float,
        metavar="MINUTES",
        help="run only the repeated splits that fit in this many minutes (at least 2); noted in the report",
    )
    p.add_argument(
        "--ablation-protocols",
        metavar="P[,P]",
        help="protocols on which the prior ablations run (default holdout,independent)",
    )
    p.add_argument(
        "--tune",
        choices=("once", "each", "none"),
        help="DeepGAMI grid search: once on the first split (default), on each split, or none",
    )
    p.add_argument(
        "--inner-folds", type=int, metavar="K", help="baselines' inner CV folds (default 3)"
    )
    p.add_argument(
        "--bernoulli-keep",
        type=float,
        metavar="P",
        help="Bernoulli prior: keep a prior edge (default 0.8)",
    )
    p.add_argument(
        "--bernoulli-add",
        type=float,
        metavar="P",
        help="Bernoulli prior: add another pair (default 0.2)",
    )
    p.add_argument(
        "--test-cohort",
        metavar="OTHER.h5mu",
        help="independent cohort: train on COHORT, test on this",
    )
    p.add_argument(
        "--prioritize-dir",
        metavar="DIR",
        help="prioritization output to show (default: prioritize/ beside --out, if present)",
    )
    p.add_argument(
        "--model-dir",
        metavar="DIR",
        help="trained model whose training curves to show (default: model/ beside --out, if present)",
    )
    p.add_argument("--seed", type=int, help="seed of splits, networks and fits (default 0)")
    p.add_argument(
        "--note",
        action="append",
        default=[],
        metavar="TEXT",
        help="a sentence for the report's notes (e.g. how the run's settings were reduced); repeatable",
    )
    add_device_argument(
        p, "the DeepGAMI fits and predictions of this process (--jobs workers use the CPU)"
    )
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress (default: a bar on a terminal, one line per finished fit otherwise)",
    )
    p.set_defaults(func=_run)
