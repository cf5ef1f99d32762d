"""The root of the CLI: lazy command table, plain help, one error style, start-up imports, closed pipes."""

from __future__ import annotations

import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import offlinepack.cli
from offlinepack.cli.app import COMMANDS, app
from offlinepack.cli.group import load_command, plain_metavar

runner = CliRunner()
REPO = Path(__file__).resolve().parent.parent
NOT_COMMANDS = {"app", "group", "output", "options", "progress"}


def _flat(text: str) -> str:
    """Help wraps at the terminal's width: compare words, not line breaks."""
    return " ".join(text.split())


def test_the_table_lists_every_command_module_with_its_own_first_sentence() -> None:
    modules = {m.name for m in pkgutil.iter_modules(offlinepack.cli.__path__)} - NOT_COMMANDS
    assert {target.split(":")[0].rsplit(".", 1)[1] for target, _ in COMMANDS.values()} == modules
    for name, (target, short) in COMMANDS.items():
        command = load_command(name, target)
        assert command.get_short_help_str(limit=1000) == short, name


def test_importing_the_app_loads_no_stage_and_no_heavy_library() -> None:
    """Start-up cost: `offlinepack --version`, `--help` and the import itself must not pull in any command."""
    code = ("import sys\n"
            "from typer.testing import CliRunner\n"
            "from offlinepack.cli.app import app\n"
            "for args in (['--version'], ['--help'], []):\n"
            "    assert CliRunner().invoke(app, args).exit_code == 0, args\n"
            "print('\\n'.join(sorted(sys.modules)))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    loaded = set(result.stdout.split())
    heavy = {"rich.progress", "rich.table", "numpy", "torch", "packaging", "pydantic"}
    stages = {"offlinepack.kernel_target", "offlinepack.lock", "offlinepack.wheelhouse", "offlinepack.pylock",
              "offlinepack.run", "offlinepack.inference", "offlinepack.doctor", "offlinepack.score",
              "offlinepack.calibrate", "offlinepack.ledger", "offlinepack.kernel_kit", "offlinepack.models"}
    commands = {target.split(":")[0] for target, _ in COMMANDS.values()}
    assert "offlinepack.cli.app" in loaded  # the check itself ran
    assert sorted(loaded & (heavy | stages | commands)) == []


def test_bare_offlinepack_prints_help_and_exits_0() -> None:
    result = runner.invoke(app, [])
    assert result.exit_code == 0
    assert "Usage: offlinepack [OPTIONS] COMMAND" in result.stdout
    for name, (_, short) in COMMANDS.items():
        assert name in result.stdout
    assert "Capture this interpreter" in result.stdout


def test_a_bare_group_prints_its_help_and_exits_0() -> None:
    result = runner.invoke(app, ["model"])
    assert result.exit_code == 0 and "pack" in result.stdout and "Usage: offlinepack model" in result.stdout


@pytest.mark.parametrize(("args", "message", "help_of"), [
    (["bild"], "error: No such command 'bild'. Did you mean 'build'?", "offlinepack"),
    (["--nope"], "error: No such option: --nope", "offlinepack"),
    (["build", "missing.toml"], "error: Invalid value for 'LOCK': file 'missing.toml' does not exist.",
     "offlinepack build"),
    (["run", "--hysteresis-low"], "error: Option '--hysteresis-low' requires an argument.", "offlinepack run"),
    (["runs", "note"], "error: Missing argument 'RUN'.", "offlinepack runs note"),
    (["build", "--jobs", "0", "x"], "error: Invalid value for '--jobs' / '-j'", "offlinepack build"),
])
def test_usage_errors_are_error_and_hint_lines_with_exit_2(args: list[str], message: str, help_of: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith(message), result.stderr
    assert lines[-1] == f"hint: run `{help_of} --help` for the usage and every option"
    assert not any(ch in result.output for ch in "╭│╰") and "Usage:" not in result.output
    assert result.stdout == ""


@pytest.mark.parametrize("command", [name.split() for name in (
    "snapshot", "targets", "lock", "build", "rehearse", "doctor", "run", "validate", "score", "calibrate", "ablate",
    "demo-set", "model pack", "kernel init", "runs", "runs note")])
def test_help_is_plain_text_with_defaults_and_plain_metavars(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "60"})
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith(f"Usage: offlinepack {' '.join(command)} ")
    usage = text.splitlines()[0]
    assert "{" not in usage and "<" not in usage  # `LOCK`, not `{lock}`
    assert "<bool>" not in text and "<list[" not in text and "<str>" not in text and "<int" not in text
    assert not any(ch in text for ch in "╭│╰")
    assert max(len(line) for line in text.splitlines()) <= 80
    assert not re.search(r"\w-\n", text), "a flag or name cut at a hyphen across two lines"


def test_help_keeps_bracketed_defaults() -> None:
    """rich read `[auto]` as markup and dropped it, leaving 'Patches per forward pass .'."""
    text = _flat(runner.invoke(app, ["run", "--help"], env={"COLUMNS": "60"}).stdout)
    for phrase in ("--batch-size INT Patches per forward pass [auto].",
                   "--device TEXT auto | cpu | cuda | cuda:N [auto].",
                   "--hysteresis-low FLOAT Hysteresis low threshold [off].",
                   "submission.zip path [kernel: /kaggle/working/submission.zip; else ./submission.zip].",
                   "-m, --model TEXT"):
        assert phrase in text
    build = _flat(runner.invoke(app, ["build", "--help"]).stdout)
    assert "Usage: offlinepack build [OPTIONS] LOCK" in build and "--force Replace" in build
    assert "-j, --jobs INT Parallel downloads. [default: 8; 1<=x<=64]" in build


def test_plain_metavar() -> None:
    """typer 0.29's labels and typer 0.24's click type names (the kernels' images have 0.24 and 0.27) alike."""
    labels = ("<list[str]>", "<int range>", "<dir>", "<file>", "<path>", "<float>", "<a|b>",
              "DIRECTORY", "INTEGER RANGE", "TEXT", "FILENAME")
    assert [plain_metavar(label) for label in labels] == ["TEXT", "INT", "DIR", "FILE", "PATH", "FLOAT", "a|b",
                                                          "DIR", "INT", "TEXT", "FILE"]


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("offlinepack ")


@pytest.mark.parametrize(("args", "code"), [(["targets"], 0), (["targets", "--json"], 0), (["--help"], 0),
                                            (["build", "missing.toml"], 2)])
def test_a_closed_stdout_pipe_keeps_the_commands_exit_code(args: list[str], code: int) -> None:
    """`offlinepack doctor | head -1`: the reader leaves early; the exit code must still be the command's."""
    proc = subprocess.Popen([sys.executable, "-m", "offlinepack", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first line is written
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == code, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr


def test_a_closed_pipe_for_both_streams_keeps_the_exit_code() -> None:
    """`offlinepack build missing.toml 2>&1 | head -0`: the error lines go nowhere, the code is still 2."""
    proc = subprocess.Popen([sys.executable, "-m", "offlinepack", "build", "missing.toml"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    proc.stdout.close()
    assert proc.wait(timeout=60) == 2


def test_targets_loads_only_what_it_shows() -> None:
    """`offlinepack targets` is a start-up figure too: no pydantic (typer converts flags through it), no progress
    bars, no lock or wheelhouse stage."""
    code = ("import sys\n"
            "from typer.testing import CliRunner\n"
            "from offlinepack.cli.app import app\n"
            "assert CliRunner().invoke(app, ['targets']).exit_code == 0\n"
            "print('\\n'.join(sorted(sys.modules)))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    loaded = set(result.stdout.split())
    assert "offlinepack.cli.targets" in loaded and "offlinepack.kernel_target" in loaded
    unwanted = {"pydantic", "rich.progress", "numpy", "torch", "importlib.metadata", "offlinepack.lock",
                "offlinepack.wheelhouse", "offlinepack.cli.build", "offlinepack.cli.run"}
    assert sorted(loaded & unwanted) == []
