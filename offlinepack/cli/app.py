"""The `offlinepack` Typer application: registers each command module."""

from __future__ import annotations

import typer

from offlinepack import __version__
from offlinepack.cli import build, doctor, lock, run, runs, score, snapshot, targets, validate
from offlinepack.cli import kernel, model, rehearse
from offlinepack.cli import ablate as ablate_cli
from offlinepack.cli import calibrate as calibrate_cli
from offlinepack.cli import demo_set

app = typer.Typer(
    name="offlinepack",
    help="Offline Kaggle kernels that work first time: lock, build, bootstrap, doctor, run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# user's machine
app.command("snapshot")(snapshot.snapshot)
app.command("targets")(targets.targets)
app.command("lock")(lock.lock)
app.command("build")(build.build)
# user's machine: model dataset, kernel folder, local rehearsal of the kernel
app.add_typer(model.app, name="model")
app.add_typer(kernel.app, name="kernel")
app.command("rehearse")(rehearse.rehearse)
# kernel
app.command("doctor")(doctor.doctor)
app.command("run")(run.run)
app.command("validate")(validate.validate)
app.add_typer(runs.app, name="runs")
# labelled data: the leaderboard's score of masks against labels
app.command("score")(score.score)
# labelled data: tuning (offlinepack.calibrate)
app.command("calibrate")(calibrate_cli.calibrate)
app.command("ablate")(ablate_cli.ablate)
app.command("demo-set")(demo_set.demo_set)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"offlinepack {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """Offline Kaggle kernels that work first time."""


def main() -> None:
    app()
