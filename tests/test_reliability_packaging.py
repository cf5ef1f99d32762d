"""Issue 10, packaging side: each defect found by a hostile user, reproduced with real files.

Ledger (1), bootstrap's manifest trust (2, 3, 4), offlinepack's own dependencies (5), writes through
links and refusals of special files (6), and the smaller messages of 12.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from offlinepack.cli.app import app
from offlinepack.ledger import append_record, read_ledger

runner = CliRunner()


# ------------------------------------------------------------------------------------------- 1. ledger

def test_note_after_a_torn_last_line_is_its_own_line_and_is_read(tmp_path: Path) -> None:
    ledger = tmp_path / "offlinepack-runs.jsonl"
    append_record(ledger, {"type": "run", "run_id": "20261125T100000Z-aaaaaa", "status": "done"})
    with open(ledger, "ab") as handle:  # a run killed while writing its record
        handle.write(b'{"type":"run","run_id":"20261125T110000Z-bbbbbb","vol')
    result = runner.invoke(app, ["runs", "--ledger", str(ledger), "note", "20261125T10", "--public-lb", "0.77"])
    assert result.exit_code == 0, result.output
    lines = ledger.read_bytes().splitlines()
    assert json.loads(lines[-1])["public_lb"] == 0.77  # a line of its own, not glued onto the torn one
    listed = runner.invoke(app, ["runs", "--ledger", str(ledger), "--json"])
    assert listed.exit_code == 0, listed.output
    runs = json.loads(listed.stdout)["runs"]
    assert [(r["run_id"], r["public_lb"]) for r in runs] == [("20261125T100000Z-aaaaaa", 0.77)]


def test_a_record_glued_after_a_torn_line_is_not_dropped(tmp_path: Path) -> None:
    """Ledgers damaged before appends started on a new line: the complete record after the torn part is kept."""
    ledger = tmp_path / "runs.jsonl"
    ledger.write_bytes(b'{"type":"run","run_id":"r1"}\n'
                       b'{"type":"run","run_id":"r2","sta{"type":"note","run_id":"r1","public_lb":0.5}\n'
                       b'\xff\xfe junk\n{"type":"run","run_id":"r3"}\n')
    view = read_ledger(ledger)
    assert [r.run_id for r in view.runs] == ["r1", "r3"]
    assert view.runs[0].public_lb == 0.5
    assert view.skipped_lines == (2, 3)
