"""The `offlinepack` command line: the table of commands, each module imported only when its command runs."""

from __future__ import annotations

import typer

from offlinepack import __version__
from offlinepack.cli.group import output_survives_closed_pipe, with_table

# name -> ("module:attribute", one-line help for `offlinepack --help`). The help is each command's own first
# sentence, repeated here so listing the commands imports none of them (tests/test_cli_app.py keeps both equal).
COMMANDS: dict[str, tuple[str, str]] = {
    # user's machine
    "snapshot": ("offlinepack.cli.snapshot:snapshot",
                 "Capture this interpreter (tags, markers, installed distributions) as a target file for `--target`."),
    "targets": ("offlinepack.cli.targets:targets",
                "List built-in targets (use a name with `--target`, or a snapshot file / folder instead)."),
    "lock": ("offlinepack.cli.lock:lock",
             "Lock requirements for a target kernel: its markers and wheel tags, its installed versions held."),
    "build": ("offlinepack.cli.build:build",
              "Download (through the cache), verify and build the wheels a target lacks into a flat Kaggle dataset "
              "folder."),
    # user's machine: model dataset, kernel folder, local rehearsal of the kernel
    "model": ("offlinepack.cli.model:app", "Prepare trained models for a Kaggle kernel."),
    "kernel": ("offlinepack.cli.kernel:app", "Write the Kaggle kernel (notebook + kernel-metadata.json)."),
    "rehearse": ("offlinepack.cli.rehearse:rehearse",
                 "Rehearse the kernel offline under a local /kaggle layout: static checks, then the notebook's cells "
                 "with a real Jupyter kernel."),
    # kernel
    "doctor": ("offlinepack.cli.doctor:doctor",
               "Check the kernel: packages vs the wheelhouse, Python tags, torch/CUDA/GPUs/cuDNN, TIFF readers, "
               "output, input."),
    "run": ("offlinepack.cli.run:run",
            "Predict every test volume, post-process, write and validate submission.zip, record the run."),
    "validate": ("offlinepack.cli.validate:validate",
                 "Check submission.zip against the competition's rules without scoring it."),
    "runs": ("offlinepack.cli.runs:app", "List runs from the ledger and attach leaderboard scores."),
    # labelled data: the leaderboard's score of masks against labels, tuning
    "score": ("offlinepack.cli.score:score",
              "Score predicted masks against labels with the competition's metric (TopoScore, SurfaceDice@2, VOI)."),
    "calibrate": ("offlinepack.cli.calibrate:calibrate",
                  "Search post-processing settings that maximise the mean local score, cross-validated."),
    "ablate": ("offlinepack.cli.ablate:ablate",
               "Measure what each model of an ensemble adds: leave-one-out scores, time shares, the best subset."),
    "demo-set": ("offlinepack.cli.demo_set:demo_set",
                 "Write a labelled synthetic set (seeded, same every time) for the demo model."),
}

app = typer.Typer(
    name="offlinepack",
    cls=with_table(COMMANDS),
    help="Offline Kaggle kernels that work first time: lock, build, bootstrap, doctor, run.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"offlinepack {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """Offline Kaggle kernels that work first time: lock, build, bootstrap, doctor, run.

    Run `offlinepack COMMAND --help` for a command's options.
    """


def main() -> None:
    output_survives_closed_pipe()
    app()
