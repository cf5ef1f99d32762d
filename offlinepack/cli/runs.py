"""`offlinepack runs`: list the run ledger; `offlinepack runs note RUN --public-lb X`: attach a score.

The ledger read is --ledger, else offlinepack-runs.jsonl in /kaggle/working (in a kernel) or the cwd.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from offlinepack.cli.output import console, err_console, print_json, reports_errors

app = typer.Typer(help="List runs from the ledger and attach leaderboard scores.", invoke_without_command=True)

LedgerOption = Annotated[Optional[Path], typer.Option("--ledger", help="Ledger file [offlinepack-runs.jsonl beside the default output].", dir_okay=False)]


def default_ledger() -> Path:
    from offlinepack import kaggle

    return kaggle.ledger_in(kaggle.output_dir(kaggle.kaggle_root()))


def _short(value: object, width: int) -> str:
    text = "" if value is None else str(value)
    return text[:width]


def _count(value: object) -> str:
    """A record's volumes/failures list as a count; "?" for a hand-edited or damaged value."""
    return str(len(value)) if isinstance(value, list) else "?"


def _megabytes(submission: object) -> str:
    size = submission.get("size") if isinstance(submission, dict) else None
    return f"{size / 1e6:.2f}" if isinstance(size, (int, float)) and not isinstance(size, bool) else ""


@app.callback()
@reports_errors
def runs(
    ctx: typer.Context,
    ledger: LedgerOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs (notes merged) as JSON.")] = False,
) -> None:
    """List runs: id, time, status, volumes, zip hash, leaderboard scores."""
    ctx.obj = {"ledger": ledger}
    if ctx.invoked_subcommand is not None:
        return
    from offlinepack.ledger import read_ledger

    view = read_ledger(ledger or default_ledger())
    if view.skipped_lines:
        err_console.print(f"warning: {view.path}: skipped unreadable line(s) {', '.join(map(str, view.skipped_lines))}", markup=False)
    from offlinepack.ledger import calibration_for

    if as_json:
        def with_calibration(run):  # which calibration's [post] the run used, if any
            found = calibration_for(view, run)
            return {**run.to_dict(), **({"calibration": found.run_id} if found else {})}

        print_json({"ledger": str(view.path), "runs": [with_calibration(run) for run in view.runs]})
        return
    if not view.runs:
        console.print(f"no runs recorded in {view.path}", markup=False)
        if ledger is None and not view.path.exists():
            err_console.print("hint: a run records itself beside its submission.zip: pass --ledger "
                              "DIR/offlinepack-runs.jsonl for a run written with -o DIR/submission.zip", markup=False)
        return
    table = Table(title=str(view.path), title_justify="left")
    for column in ("run", "finished", "status", "volumes", "failed", "zip sha256", "MB", "public", "private", "note"):
        table.add_column(column)
    for run in view.runs:
        record = run.record
        if record.get("type") in ("calibration", "ablation"):
            table.add_row(run.run_id, _short(record.get("finished"), 19), str(record.get("type")),
                          _count(record.get("volumes", [])), "", "", "", "", "", _short(record.get("summary"), 60))
            continue
        calibrated = calibration_for(view, run)
        submission = record.get("submission") or {}
        texts = [str(n["text"]) for n in run.notes if n.get("text")]
        if calibrated is not None:  # which calibrated config made this submission
            texts.append(f"{texts[-1] + '; ' if texts else ''}post from calibration {calibrated.run_id}")
        table.add_row(
            run.run_id, _short(record.get("finished"), 19), str(record.get("status", "")),
            _count(record.get("volumes", [])), _count(record.get("failures", [])),
            _short(submission.get("sha256") if isinstance(submission, dict) else None, 12), _megabytes(submission),
            _short(run.public_lb, 8), _short(run.private_lb, 8), _short(texts[-1] if texts else "", 80),
        )
    # logs (not a terminal) get the full table instead of 80 squeezed columns
    console.print(table, width=None if console.is_terminal else max(console.width, 160))


@app.command("note")
@reports_errors
def note(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="Run id (or a unique prefix of it).")],
    public_lb: Annotated[Optional[float], typer.Option("--public-lb", help="Public leaderboard score.")] = None,
    private_lb: Annotated[Optional[float], typer.Option("--private-lb", help="Private leaderboard score.")] = None,
    text: Annotated[Optional[str], typer.Option("--text", help="Free text.")] = None,
    ledger: LedgerOption = None,
) -> None:
    """Attach leaderboard scores and/or text to a run (appended as a note record)."""
    from offlinepack.ledger import add_note

    path = ledger or (ctx.obj or {}).get("ledger") or default_ledger()
    record = add_note(path, run_id, public_lb=public_lb, private_lb=private_lb, text=text)
    console.print(f"noted run {record['run_id']} in {path}", markup=False)
