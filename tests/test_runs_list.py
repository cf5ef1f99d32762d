"""`offlinepack runs` at 80 columns and in a pipe: short unique id prefixes that `runs note` / `runs show` accept,
ambiguous and unknown prefixes refused with candidates; sizes in binary units everywhere (offlinepack.units).

The ledger is written by real runs (a tiny real model on real TIFFs), a calibration and an ablation record written
the way `calibrate`/`ablate` write them, and notes added through the CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len

from offlinepack.cli.runs import NARROW, fit_columns
from offlinepack.ledger import find_run, new_run_id, read_ledger, record_result, short_id_length, short_ids
from offlinepack.units import format_size
from tests.support.cli import invoke, write_competition
from tests.support.runs import TINY, write_tiny_model

FAST = ["--mirror-axes", "none", "--step-size", "1"]
LEDGER = "out/offlinepack-runs.jsonl"  # relative: the listing's first line names it and stays short


@pytest.fixture
def ledger(tmp_path: Path, env: dict[str, str]) -> Path:
    """Two real runs (the second reuses the first's masks), then a calibration and an ablation."""
    model = write_tiny_model(tmp_path / "tiny-unet")
    data = write_competition(tmp_path / "comp", {"7": TINY, "9": TINY})
    for _ in range(2):
        result = invoke(["run", "--model", str(model), "--input", str(data), *FAST, "-o", "out/submission.zip"], env)
        assert result.exit_code == 0, result.output
    post = read_ledger(tmp_path / LEDGER).runs[0].fields.config["post"]
    record_result(tmp_path / LEDGER, "calibration", new_run_id(), {
        "started": "2026-12-02T14:30:00Z", "finished": "2026-12-02T14:31:00Z", "status": "ok", "post": post,
        "volumes": ["7", "9"], "summary": "cv 0.4123 vs defaults 0.4001 (gain inside the interval)"})
    record_result(tmp_path / LEDGER, "ablation", new_run_id(), {
        "finished": "2026-12-02T14:32:00Z", "status": "ok", "volumes": ["7", "9"], "config": None,
        "summary": "full 0.4100; recommended tiny-unet"})
    return tmp_path / LEDGER


def _full_ids(env: dict[str, str]) -> list[str]:
    listed = invoke(["runs", "--ledger", LEDGER, "--json"], env)
    assert listed.exit_code == 0, listed.output
    return [run["run_id"] for run in json.loads(listed.stdout)["runs"]]


def _table_ids(output: str) -> list[str]:
    lines = output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("id "))
    return [line.split()[0] for line in lines[header + 1:] if line.strip()]


def test_table_fits_80_columns_and_runs_note_accepts_its_prefix(ledger: Path, env: dict[str, str]) -> None:
    full = _full_ids(env)
    assert len(full) == 4 and all(len(i) == 23 for i in full)  # --json keeps the whole ids
    listing = invoke(["runs", "--ledger", LEDGER], {**env, "COLUMNS": "80"})
    assert listing.exit_code == 0, listing.output
    assert max(len(line) for line in listing.output.splitlines()) <= 80, listing.output
    shown = _table_ids(listing.output)
    assert len(shown) == 4 and len({len(s) for s in shown}) == 1 and len(shown[0]) >= 7
    assert all(f.startswith(s) and s != f for s, f in zip(shown, full))
    assert "calibrate" in listing.output and "ablate" in listing.output and "cv 0.41" in listing.output

    noted = invoke(["runs", "--ledger", LEDGER, "note", shown[1], "--public-lb", "0.5512", "--text", "fold 0"], env)
    assert noted.exit_code == 0 and f"noted run {full[1]}" in noted.output, noted.output
    again = invoke(["runs", "--ledger", LEDGER], {**env, "COLUMNS": "80"})
    second = next(line for line in again.output.splitlines() if line.startswith(shown[1]))
    assert "0.5512" in second and "fold 0" in second
    shown_record = invoke(["runs", "--ledger", LEDGER, "show", shown[1]], env)
    assert shown_record.exit_code == 0, shown_record.output
    record = json.loads(shown_record.stdout)
    assert record["run_id"] == full[1] and record["public_lb"] == 0.5512 and record["status"] == "ok"


def test_wide_shows_whole_ids_and_sizes_in_binary_units(ledger: Path, env: dict[str, str]) -> None:
    full = _full_ids(env)
    wide = invoke(["runs", "--ledger", LEDGER, "--wide"], {**env, "COLUMNS": "80"})
    assert wide.exit_code == 0 and _table_ids(wide.output) == full, wide.output
    first = read_ledger(ledger).runs[0].fields
    size = first.submission["size"]
    assert format_size(size) in wide.output and format_size(size).endswith(" KiB")
    assert first.submission["sha256"][:12] in wide.output and "tiny-unet t=0.5" in wide.output


def test_piped_listing_fits_80_columns(ledger: Path, env: dict[str, str]) -> None:
    """As in a Kaggle `!offlinepack runs` cell: no terminal on any stream, no COLUMNS."""
    environ = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    piped = subprocess.run([sys.executable, "-m", "offlinepack", "runs", "--ledger", LEDGER],
                           env={**environ, **env}, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           cwd=ledger.parent.parent, timeout=60)
    assert piped.returncode == 0, piped.stderr
    assert max(len(line) for line in piped.stdout.splitlines()) <= 80, piped.stdout
    shown = _table_ids(piped.stdout)
    assert [find_run(read_ledger(ledger), s).run_id for s in shown] == _full_ids(env)
    assert "…" not in shown[0] and "zip sha" in piped.stdout


def test_ambiguous_and_unknown_prefixes_list_candidates(ledger: Path, env: dict[str, str]) -> None:
    full = _full_ids(env)
    before = ledger.read_bytes()
    ambiguous = invoke(["runs", "--ledger", LEDGER, "note", "20", "--text", "x"], env)
    assert ambiguous.exit_code == 2
    assert "error: '20' matches 4 runs" in ambiguous.output and all(f in ambiguous.output for f in full)
    assert "hint: give more of the id" in ambiguous.output
    unknown = invoke(["runs", "--ledger", LEDGER, "note", "zzz", "--text", "x"], env)
    assert unknown.exit_code == 2 and "error: no run 'zzz'" in unknown.output
    shown = short_ids(read_ledger(ledger))
    assert all(f"error: {shown[f]}  " in unknown.output for f in full) and "hint: " in unknown.output
    assert invoke(["runs", "--ledger", LEDGER, "show", "zzz"], env).exit_code == 2
    assert ledger.read_bytes() == before  # a refused note appends nothing


def test_short_id_length_is_the_shortest_unique_prefix() -> None:
    same_second = ["20261125T100000Z-aaaaaa", "20261125T100000Z-aaaaab", "20261125T110000Z-cccccc"]
    assert short_id_length(same_second) == 23
    assert short_id_length(["20261125T100000Z-aaaaaa", "20261125T110000Z-cccccc"]) == 11
    assert short_id_length(["20261125T100000Z-aaaaaa"]) == 7 and short_id_length([]) == 7
    assert short_id_length(["r1", "r10", "r2"]) == 7  # "r1" is shown whole and found by exact match


def test_fit_columns_cuts_the_note_then_drops_columns(tmp_path: Path) -> None:
    row = {"id": "20261125T1000", "finished": "11-25 10:01", "status": "calibrate", "vols": "12/12",
           "public": "0.5512", "zip": "c390272", "note": "cv 0.4123 vs defaults 0.4001 (gain inside the interval)"}
    for width in (80, 60, 40):
        lines = fit_columns([row], NARROW, width)
        assert max(map(len, lines)) <= width and lines[1].startswith("20261125T1000  "), (width, lines)
    assert "c390272" in fit_columns([row], NARROW, 80)[1] and fit_columns([row], NARROW, 80)[1].endswith("…")
    assert "c390272" not in fit_columns([row], NARROW, 60)[1]
    assert fit_columns([row], NARROW, None)[1].endswith("(gain inside the interval)")
    wide_chars = {**row, "note": "閾値 0.4 で提出、スコアは公開 LB で 0.581 でした" * 3}  # two cells per character
    assert max(cell_len(line) for line in fit_columns([wide_chars], NARROW, 80)) <= 80


def test_a_note_with_line_breaks_stays_on_its_row(tmp_path: Path, env: dict[str, str]) -> None:
    """An older ledger (records before RunRecord: no type, few keys) still lists; a multi-line note is one row."""
    ledger = tmp_path / "offlinepack-runs.jsonl"
    ledger.write_text('{"run_id": "20250101T000000Z-abcdef", "status": "ok", "volumes": [{}], "failures": []}\n')
    noted = invoke(["runs", "--ledger", str(ledger), "note", "2025", "--text", "line one\nline\ttwo"], env)
    assert noted.exit_code == 0, noted.output
    listing = invoke(["runs", "--ledger", "offlinepack-runs.jsonl"], {**env, "COLUMNS": "80"})
    assert listing.exit_code == 0 and len(listing.output.splitlines()) == 3, listing.output
    assert listing.output.splitlines()[2].startswith("2025010  ") and "line one line two" in listing.output


def test_format_size_labels_binary_units() -> None:
    assert format_size(0) == "0 B" and format_size(1023) == "1023 B" and format_size(1024) == "1.0 KiB"
    assert format_size(47_616) == "46.5 KiB"  # the tiny run's submission.zip
    assert format_size(409_600_000) == "390.6 MiB"  # an m7 fold, packed (BENCHMARKS.md)
    assert format_size(86_400_000) == "82.4 MiB"
    assert format_size(2**20 - 1) == "1.0 MiB"  # never "1024.0 KiB"
    assert format_size(2**30 - 2**16) == "1023.9 MiB" and format_size(2**30 - 2**14) == "1.0 GiB"  # not "1024.0 MiB"
    assert format_size(15 * 2**30) == "15.0 GiB"
