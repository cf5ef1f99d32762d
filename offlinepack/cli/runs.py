"""`offlinepack runs`: list the run ledger; `runs note RUN --public-lb X`: attach a score; `runs show RUN`.

The ledger read is --ledger, else offlinepack-runs.jsonl in /kaggle/working (in a kernel) or the cwd. The
listing fits the console's width (80 columns in a Kaggle cell or a pipe without COLUMNS): each run is shown by
the shortest prefix of its id that tells it apart (as git shortens hashes), which `note` and `show` accept.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.cells import cell_len

from offlinepack.cli.output import console, err_console, print_json, reports_errors

if TYPE_CHECKING:
    from offlinepack.ledger import Ledger, RunEntry

app = typer.Typer(help="List runs from the ledger and attach leaderboard scores.", invoke_without_command=True)

LedgerOption = Annotated[Optional[Path], typer.Option("--ledger", help="Ledger file [offlinepack-runs.jsonl beside the default output].", dir_okay=False)]
RunArgument = Annotated[str, typer.Argument(metavar="RUN", help="Run id, or the start of one that no other run shares (as `offlinepack runs` shows it).")]

KIND_LABELS = {"calibration": "calibrate", "ablation": "ablate"}
NOTE_MIN = 10  # narrower than this, a note says nothing: drop a column instead
# dropped in this order when a line would not fit the width (the id and the note are never dropped)
DROP_ORDER = ("zip", "vols", "public", "finished", "status")


def default_ledger() -> Path:
    from offlinepack import kaggle

    return kaggle.ledger_in(kaggle.output_dir(kaggle.kaggle_root()))


def _text(value: object) -> str:
    """A record's value as a cell; "?" for a hand-edited value of the wrong type."""
    if value is None:
        return ""
    if isinstance(value, str):
        return " ".join(value.split())  # a note's line breaks and tabs would break the table's lines
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else "?"


def _count(value: object) -> int | None:
    return len(value) if isinstance(value, (list, tuple)) else None


def _score(value: object) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "?"


def _when(value: object, wide: bool) -> str:
    """"2026-12-02T14:20:30.28Z" -> "12-02 14:20" (wide: "2026-12-02 14:20:30")."""
    text = _text(value)
    if len(text) < 16 or text[4] != "-" or text[10] != "T":
        return text
    return text[:19].replace("T", " ") if wide else f"{text[5:10]} {text[11:16]}"


def _config(config: object) -> str:
    """The models and threshold a run used: `demo t=0.5`."""
    if not isinstance(config, dict):
        return ""
    models = config.get("models")
    names = "+".join(Path(m).name or m for m in models if isinstance(m, str)) if isinstance(models, list) else ""
    post = config.get("post")
    threshold = post.get("threshold") if isinstance(post, dict) else None
    return f"{names} t={_score(threshold)}" if threshold is not None else names


def _row(view: Ledger, run: RunEntry, short: str, shown: dict[str, str], wide: bool) -> dict[str, str]:
    from offlinepack.ledger import calibration_for
    from offlinepack.units import format_size

    fields = run.fields
    row = {"id": run.run_id if wide else short, "finished": _when(fields.finished or fields.started, wide),
           "public": _score(run.public_lb), "private": _score(run.private_lb)}
    volumes = _count(fields.volumes)
    if run.kind != "run":
        summary = run.record.get("summary")
        return {**row, "status": KIND_LABELS.get(run.kind, run.kind), "vols": "" if volumes is None else str(volumes),
                "note": _text(run.note_text or summary), "config": _text(run.record.get("config"))}
    failed = _count(fields.failures)
    vols = "?" if volumes is None or failed is None else f"{volumes}/{volumes + failed}"
    submission = fields.submission if isinstance(fields.submission, dict) else {}
    sha = submission.get("sha256") if isinstance(submission.get("sha256"), str) else ""
    size = submission.get("size")
    texts = [_text(run.note_text)] if run.note_text else []
    calibrated = calibration_for(view, run)
    if calibrated is not None:  # which calibrated config made this submission
        texts.append(f"post from calibration {shown.get(calibrated.run_id, calibrated.run_id)}")
    if fields.status == "error" and fields.error and not texts:
        texts.append(_text(fields.error))
    return {**row, "status": _text(fields.status), "exit": _text(fields.exit_code), "vols": vols,
            "failed": "" if failed is None else str(failed), "zip": sha[:12 if wide else 7],
            "size": format_size(size) if isinstance(size, int) and not isinstance(size, bool) else "",
            "config": _config(fields.config), "note": "; ".join(texts)}


NARROW = ("id", "finished", "status", "vols", "public", "zip", "note")
WIDE = ("id", "finished", "status", "exit", "vols", "failed", "zip", "size", "public", "private", "config", "note")
HEADERS = {"zip": "zip sha", "size": "zip size"}


def fit_columns(rows: Sequence[dict[str, str]], columns: Sequence[str], width: int | None) -> list[str]:
    """Plain left-aligned columns two spaces apart. With a width, columns in DROP_ORDER go until the note
    keeps NOTE_MIN characters, and the note is cut with "…" to fit; without one (--wide) nothing is cut."""
    columns = list(columns)

    def natural(column: str) -> int:  # in terminal cells: a CJK character or an emoji takes two
        return max([cell_len(HEADERS.get(column, column))] + [cell_len(row.get(column, "")) for row in rows])

    def others(cols: list[str]) -> int:
        return sum(natural(c) + 2 for c in cols if c != "note")

    if width is not None:
        for column in DROP_ORDER:
            if others(columns) + min(natural("note"), NOTE_MIN) <= width:
                break
            columns.remove(column)
    widths = {c: natural(c) for c in columns}
    if width is not None:
        widths["note"] = max(0, min(widths["note"], width - others(columns)))

    def cell(column: str, text: str) -> str:
        room = widths[column]
        if cell_len(text) > room:
            text = text[:room]  # no character is narrower than one cell (but the rare combining mark)
            while text and cell_len(text) > room - 1:
                text = text[:-1]
            text = text + "…" if room else ""
        return text + " " * (room - cell_len(text))

    return ["  ".join(cell(c, row.get(c, "")) for c in columns).rstrip()
            for row in [{c: HEADERS.get(c, c) for c in columns}, *rows]]


@app.callback()
@reports_errors
def runs(
    ctx: typer.Context,
    ledger: LedgerOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs (notes merged, full ids) as JSON.")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="Every column (full id and time, exit code, failed volumes, "
                                       "zip size, private score, config), lines as long as they need.")] = False,
) -> None:
    """List runs: short id, time, status, volumes, leaderboard score, zip hash, note."""
    ctx.obj = {"ledger": ledger}
    if ctx.invoked_subcommand is not None:
        return
    from offlinepack.ledger import calibration_for, read_ledger, short_ids

    view = read_ledger(ledger or default_ledger())
    if view.skipped_lines:
        err_console.print(f"warning: {view.path}: skipped unreadable line(s) {', '.join(map(str, view.skipped_lines))}", markup=False)
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
    shown = short_ids(view)
    rows = [_row(view, run, shown[run.run_id], shown, wide) for run in view.runs]
    console.print(f"ledger: {view.path}", markup=False, emoji=False)
    for line in fit_columns(rows, WIDE if wide else NARROW, None if wide else listing_width()):
        # soft_wrap: a --wide line longer than the console stays one line (the terminal folds it, a pipe keeps it)
        console.print(line, markup=False, emoji=False, soft_wrap=True)


def listing_width() -> int:
    """$COLUMNS read now (the console read it once, when it was made), else the console's width: the terminal's,
    or 80 in a pipe or a Kaggle cell (`!offlinepack runs`), which is what those show."""
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else console.width


def _ledger_path(ctx: typer.Context, ledger: Path | None) -> Path:
    return ledger or (ctx.obj or {}).get("ledger") or default_ledger()


@app.command("note")
@reports_errors
def note(
    ctx: typer.Context,
    run_id: RunArgument,
    public_lb: Annotated[Optional[float], typer.Option("--public-lb", help="Public leaderboard score.")] = None,
    private_lb: Annotated[Optional[float], typer.Option("--private-lb", help="Private leaderboard score.")] = None,
    text: Annotated[Optional[str], typer.Option("--text", help="Free text.")] = None,
    ledger: LedgerOption = None,
) -> None:
    """Attach leaderboard scores and/or text to a run (appended as a note record)."""
    from offlinepack.ledger import add_note

    path = _ledger_path(ctx, ledger)
    record = add_note(path, run_id, public_lb=public_lb, private_lb=private_lb, text=text)
    console.print(f"noted run {record['run_id']} in {path}", markup=False)


@app.command("show")
@reports_errors
def show(ctx: typer.Context, run_id: RunArgument, ledger: LedgerOption = None) -> None:
    """Print one run's whole record (notes merged, full id) as JSON."""
    from offlinepack.ledger import calibration_for, find_run, read_ledger

    view = read_ledger(_ledger_path(ctx, ledger))
    run = find_run(view, run_id)
    found = calibration_for(view, run)
    print_json({**run.to_dict(), **({"calibration": found.run_id} if found else {})})
