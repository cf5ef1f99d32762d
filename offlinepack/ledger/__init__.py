"""Run ledger: append a JSON line per run, notes with leaderboard scores, listing with notes merged."""

from offlinepack.ledger.facts import (
    environment_fact,
    find_wheelhouse_manifest,
    model_files,
    model_pack_facts,
    wheelhouse_fact,
)
from offlinepack.ledger.record import RunRecord
from offlinepack.kaggle import LEDGER_NAME
from offlinepack.ledger.store import (
    Ledger,
    RunEntry,
    add_note,
    append_record,
    calibration_for,
    find_run,
    new_run_id,
    read_ledger,
    record_result,
    recorded_shapes,
    run_for_zip,
    short_id_length,
    short_ids,
    utc_now,
)

__all__ = [
    "LEDGER_NAME",
    "Ledger",
    "RunEntry",
    "RunRecord",
    "add_note",
    "append_record",
    "calibration_for",
    "environment_fact",
    "find_run",
    "find_wheelhouse_manifest",
    "model_files",
    "model_pack_facts",
    "new_run_id",
    "read_ledger",
    "record_result",
    "recorded_shapes",
    "run_for_zip",
    "short_id_length",
    "short_ids",
    "utc_now",
    "wheelhouse_fact",
]
