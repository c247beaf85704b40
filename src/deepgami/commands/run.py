"""`deepgami run`: the whole pipeline on one machine, one samplesheet row per cohort."""

from __future__ import annotations

import argparse
import shlex

from deepgami.errors import InputError, claim_output

DESCRIPTION = """\
Run the pipeline's stages for every samplesheet row without Nextflow: build -> train ->
predict (all modalities, and each modality alone) -> prioritize -> evaluate, then one summary
table across rows. Rows run in parallel (--max-workers). Same samplesheet, schema and output layout as
`nextflow run . --input SHEET --outdir DIR`:

  <outdir>/<id>/cohort.h5mu, model/, predictions/{all,<modality>}.tsv, prioritize/, evaluate/
  <outdir>/summary.tsv, <outdir>/summary.html, <outdir>/pipeline_info/logs/

--resume skips every stage whose recorded inputs (file contents and arguments) are unchanged and
whose outputs are complete and unchanged (ledger: <outdir>/.deepgami_run.json).
"""


def _run(args: argparse.Namespace) -> int:
    import sys

    from deepgami.pipeline import profiles
    from deepgami.pipeline.runner import STAGES, RunSettings, run_pipeline

    # The output folder is a workspace the stages fill, never replaced as a whole: any folder will
    # do, and each stage's command guards its own outputs (a stage never replaces a user's file).
    claim_output(args.outdir, "run", [args.samplesheet], flag="--outdir")
    skip = frozenset(s.strip() for item in args.skip for s in item.split(",") if s.strip())
    profile = None if args.profile == "none" else args.profile
    if args.profile is None and profiles.is_bundled_test_samplesheet(args.samplesheet):
        profile = "test"
        print(
            "deepgami run: the bundled test samplesheet: using the test profile's reduced settings "
            "(--profile none for the full ones)",
            file=sys.stderr,
        )
    # The profile's arguments first: the user's --stage-args come after them and win.
    stage_args: dict[str, list[str]] = profiles.stage_args(profile)
    for item in args.stage_args:
        stage, sep, value = item.partition("=")
        if not sep or stage not in STAGES:
            raise InputError(
                None,
                f"--stage-args '{item}' is not STAGE=ARGS with STAGE one of {', '.join(STAGES)}",
            )
        stage_args.setdefault(stage, []).extend(shlex.split(value))
    settings = RunSettings(
        seed=args.seed,
        eval_split=args.split or None,
        skip=skip,
        stage_args=stage_args,
        max_workers=args.max_workers,
        resume=args.resume,
        progress=False if args.no_progress else None,
    )
    return run_pipeline(args.samplesheet, args.outdir, settings)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `run` subcommand.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The subparsers of the ``deepgami`` command.
    """
    p = sub.add_parser(
        "run",
        help="run the whole pipeline on this machine (no Nextflow needed)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--samplesheet",
        required=True,
        metavar="SHEET.csv",
        help="CSV (or .tsv) with columns id, labels, modalities[, cell_type, priors, params]; "
        "relative paths are resolved against the samplesheet's directory",
    )
    p.add_argument(
        "--outdir",
        required=True,
        metavar="DIR",
        help="output directory (filled, never emptied: a stage refuses to replace a file that "
        "deepgami did not write there)",
    )
    p.add_argument(
        "--max-workers",
        type=int,
        default=1,
        metavar="N",
        help="cohorts processed at the same time (default: 1)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="skip stages whose inputs are unchanged and whose outputs are complete",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed passed to `deepgami train` (default: 0)"
    )
    p.add_argument(
        "--split",
        default="test",
        help="split used by predict and prioritize (default: test; '' for every sample)",
    )
    p.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="STAGE[,STAGE]",
        help="stages not to run: prioritize, evaluate (or predict, train, build)",
    )
    p.add_argument(
        "--stage-args",
        action="append",
        default=[],
        metavar="STAGE=ARGS",
        help="extra arguments for one stage's command, like Nextflow's ext.args, e.g. "
        "--stage-args 'evaluate=--fast --protocols holdout' (repeatable)",
    )
    p.add_argument(
        "--profile",
        choices=("test", "demo", "none"),
        help="reduced settings (deepgami.pipeline.profiles): test = the Nextflow test profile's "
        "(default for the bundled assets/samplesheet_test.csv), demo = make demo's; none = full settings",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    p.set_defaults(func=_run)
