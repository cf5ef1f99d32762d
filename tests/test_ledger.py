"""Run ledger: append, list with notes merged, prefix lookup, torn lines, wheelhouse manifest search."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from offlinepack.errors import OfflinepackError
from offlinepack.hashing import sha256_file as sha256_of
from offlinepack.ledger import (
    add_note,
    append_record,
    environment_fact,
    find_wheelhouse_manifest,
    model_files,
    new_run_id,
    read_ledger,
    recorded_shapes,
    run_for_zip,
)
from offlinepack.ledger.record import RunRecord


def test_append_and_read_runs_in_order(tmp_path: Path) -> None:
    ledger = tmp_path / "deep" / "runs.jsonl"
    ids = [new_run_id() for _ in range(3)]
    assert len(set(ids)) == 3
    for i, run_id in enumerate(ids):
        append_record(ledger, {"type": "run", "run_id": run_id, "n": i})
    lines = ledger.read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["type"] == "run" for line in lines)
    runs = read_ledger(ledger).runs
    assert [r.run_id for r in runs] == ids and [r.record["n"] for r in runs] == [0, 1, 2]
    assert read_ledger(tmp_path / "absent.jsonl").runs == ()


def test_notes_merge_latest_value_wins_and_prefix_lookup(tmp_path: Path) -> None:
    ledger = tmp_path / "runs.jsonl"
    append_record(ledger, {"type": "run", "run_id": "20261125T100000Z-aaaaaa"})
    append_record(ledger, {"type": "run", "run_id": "20261125T110000Z-bbbbbb"})
    add_note(ledger, "20261125T10", public_lb=0.51, text="first try")
    add_note(ledger, "20261125T100000Z-aaaaaa", public_lb=0.55)
    add_note(ledger, "20261125T10", private_lb=0.53)
    first, second = read_ledger(ledger).runs
    assert first.public_lb == 0.55 and first.private_lb == 0.53 and len(first.notes) == 3
    assert first.to_dict()["notes"][0]["text"] == "first try"
    assert second.public_lb is None and second.notes == ()
    with pytest.raises(OfflinepackError, match="matches 2 runs"):
        add_note(ledger, "20261125T1", public_lb=0.1)
    with pytest.raises(OfflinepackError, match="no run 'zzz'"):
        add_note(ledger, "zzz", public_lb=0.1)
    with pytest.raises(OfflinepackError, match="needs --public-lb"):
        add_note(ledger, "20261125T10")


def test_torn_last_line_is_skipped_not_fatal(tmp_path: Path) -> None:
    ledger = tmp_path / "runs.jsonl"
    append_record(ledger, {"type": "run", "run_id": "r1"})
    with open(ledger, "a") as handle:
        handle.write('{"type": "run", "run_id": "r2", "vol')
    view = read_ledger(ledger)
    assert [r.run_id for r in view.runs] == ["r1"] and view.skipped_lines == (2,)


def test_unwritable_ledger_is_an_error_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OfflinepackError, match="cannot append to the run ledger"):
        append_record(blocker / "runs.jsonl", {"run_id": "r"})


def test_model_files_hashes_folders_and_sidecars(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"weights")
    single = tmp_path / "m.safetensors"
    single.write_bytes(b"w2")
    (tmp_path / "m.json").write_text("{}")
    files = model_files([folder, single])
    assert [Path(f["path"]).name for f in files] == ["config.json", "model.safetensors", "m.safetensors", "m.json"]
    assert files[1]["sha256"] == sha256_of(folder / "model.safetensors") and files[1]["size"] == 7


def test_wheelhouse_manifest_found_under_either_kaggle_layout(tmp_path: Path) -> None:
    kaggle = tmp_path / "kaggle"
    decoy = kaggle / "input" / "other" / "offlinepack.json"
    decoy.parent.mkdir(parents=True)
    decoy.write_text('{"format": "something-else"}')
    assert find_wheelhouse_manifest(kaggle_root=kaggle, environ={}) is None
    real = kaggle / "input" / "datasets" / "me" / "wheels" / "offlinepack.json"
    real.parent.mkdir(parents=True)
    real.write_text('{"format": "offlinepack-wheelhouse", "version": 1}')
    assert find_wheelhouse_manifest(kaggle_root=kaggle, environ={}) == real
    explicit = tmp_path / "mine"
    explicit.mkdir()
    (explicit / "offlinepack.json").write_text('{"format": "offlinepack-wheelhouse"}')
    assert find_wheelhouse_manifest(kaggle_root=kaggle, environ={"OFFLINEPACK_WHEELS": str(explicit)}) == explicit / "offlinepack.json"


def test_environment_fact_without_importing_torch() -> None:
    fact = environment_fact({"devices": ["cpu"], "precision": "fp32"}, tiff_reader="pillow")
    assert fact["devices"] == ["cpu"] and fact["tiff_reader"] == "pillow"
    assert fact["python"].count(".") == 2 and "numpy" in fact["packages"]


def test_run_record_reads_older_and_newer_records(tmp_path: Path) -> None:
    """A record written before model_packs/on_error/empty_masks existed reads with their defaults; a key a newer
    version wrote is kept and written back; `probabilities` appears only when set."""
    old = {"type": "run", "run_id": "20250101T000000Z-abcdef", "status": "ok", "exit_code": 0,
           "volumes": [{"id": "7", "shape": [2, 3, 4]}], "submission": {"sha256": "ab" * 32}, "future_key": [1]}
    record = RunRecord.from_dict(old)
    assert (record.model_packs, record.on_error, record.empty_masks, record.probabilities) == ((), "fail", (), None)
    assert record.extra == {"future_key": [1]}
    written = record.to_dict()
    assert written["future_key"] == [1] and written["type"] == "run" and "probabilities" not in written
    assert RunRecord.from_dict(written) == record
    assert "probabilities" in RunRecord("x", probabilities={"from": "/p"}).to_dict()
    ledger = tmp_path / "runs.jsonl"
    append_record(ledger, old)
    (entry,) = read_ledger(ledger).runs
    assert recorded_shapes(entry) == {"7": (2, 3, 4)}
    assert run_for_zip(read_ledger(ledger), "ab" * 32) == entry
