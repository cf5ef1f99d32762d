"""The run ledger: one JSON object per line, appended, never rewritten.

Record types sharing a file:
- `{"type": "run", "run_id": ..., "started": ..., "finished": ..., ...}`: one per `offlinepack run`;
- `{"type": "note", "run_id": ..., "time": ..., "public_lb": ..., "private_lb": ..., "text": ...}`:
  appended by `offlinepack runs note`; listing merges notes into their run (the latest value wins).
- `{"type": "calibration", ...}` / `{"type": "ablation", ...}`: one per `offlinepack calibrate` / `ablate`,
  listed like runs; a run whose [post] equals a calibration's is shown as made with it.
Appending only means a crash mid-run can at worst leave one torn last line. The next append starts on a
new line (never glued onto the torn one), and reading skips the damaged part of a line but keeps any
complete record after it (ledgers torn before that rule existed hold `{"run_id": "a", "sta{"type": ...}`).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from offlinepack.atomic import DISK_FULL, resolve_output, why
from offlinepack.errors import OfflinepackError
from offlinepack.ledger.record import RUN_KIND, RunRecord

RECORD_KINDS = (RUN_KIND, "calibration", "ablation")  # records listed by `offlinepack runs`


@dataclass(frozen=True)
class RunEntry:
    """A run record with its notes merged: `public_lb`/`private_lb` from the latest note that set them.

    `record` is the line as read (written back by `to_dict` unchanged); `fields` reads it through the typed
    RunRecord, which calibration and ablation records share for their common keys (finished, status, volumes)."""

    record: dict[str, Any]
    notes: tuple[dict[str, Any], ...]

    @property
    def run_id(self) -> str:
        return str(self.record.get("run_id"))

    @property
    def kind(self) -> str:
        """"run", "calibration" or "ablation"."""
        return str(self.record.get("type", RUN_KIND))

    @property
    def fields(self) -> RunRecord:
        return RunRecord.from_dict(self.record)

    def _latest(self, key: str) -> Any:
        for note in reversed(self.notes):
            if note.get(key) is not None:
                return note[key]
        return None

    @property
    def public_lb(self) -> float | None:
        return self._latest("public_lb")

    @property
    def private_lb(self) -> float | None:
        return self._latest("private_lb")

    @property
    def note_text(self) -> str | None:
        """The latest note's text."""
        return self._latest("text")

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.record,
            "public_lb": self.public_lb,
            "private_lb": self.private_lb,
            "notes": [n for n in self.notes],
        }


@dataclass(frozen=True)
class Ledger:
    path: Path
    runs: tuple[RunEntry, ...]
    skipped_lines: tuple[int, ...] = ()  # 1-based line numbers that were not valid JSON records


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_run_id(now: datetime | None = None) -> str:
    """Sortable and unique enough for one user: UTC time plus 6 random hex digits."""
    now = now or datetime.now(timezone.utc)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def record_result(path: Path, kind: str, ident: str, record: dict[str, Any]) -> Path:
    """Append a calibration or ablation record (`kind`), listed by `offlinepack runs` like a run."""
    return append_record(path, {"type": kind, "run_id": ident, **record})


def append_record(path: Path, record: dict[str, Any]) -> Path:
    """Append one record as one line, flushed to disk before returning.

    If the file does not end with a newline (a torn last line from a killed run), a newline is written
    first, so the new record is a line of its own. One write call per record: concurrent appenders
    (O_APPEND) never interleave inside a line.
    """
    path = Path(path)
    line = json.dumps(record, sort_keys=False, default=str, separators=(",", ":")) + "\n"
    path = resolve_output(path, hint=_LEDGER_HINT)  # appended through a link; never a device or FIFO
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+b") as handle:
            handle.seek(0, os.SEEK_END)
            torn = False
            if handle.tell() > 0:
                handle.seek(-1, os.SEEK_END)
                torn = handle.read(1) != b"\n"
            handle.write((b"\n" if torn else b"") + line.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        raise OfflinepackError(
            f"cannot append to the run ledger {path}: {why(error)}",
            hint=_LEDGER_HINT + (" (the ledger was not changed; free some disk space)" if error.errno in DISK_FULL
                                 else " (the ledger was not changed)"),
        ) from error
    return path


_LEDGER_HINT = "pass --ledger with a regular file in a folder you can write to"


def _record_in(raw: bytes) -> tuple[Any, bool]:
    """(the JSON value on one line or None, whether the whole line was that value). A line whose start
    was torn still yields the complete object glued after it (`{"run_id": "a", "sta{"type": "note", ...}`)."""
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text), "\ufffd" not in text
    except json.JSONDecodeError:
        pass
    decoder = json.JSONDecoder()
    start = text.find("{", 1)
    while start != -1:
        try:
            value, end = decoder.raw_decode(text, start)
            if not text[end:].strip():
                return value, False
        except json.JSONDecodeError:
            pass
        start = text.find("{", start + 1)
    return None, False


def read_ledger(path: Path) -> Ledger:
    """All runs in file order, notes merged. A missing file is an empty ledger."""
    path = Path(path)
    if not path.exists():
        return Ledger(path, ())
    resolve_output(path, hint="pass --ledger with the offlinepack-runs.jsonl file")  # a FIFO would block forever
    runs: dict[str, dict[str, Any]] = {}
    notes: dict[str, list[dict[str, Any]]] = {}
    skipped: list[int] = []
    try:
        data = path.read_bytes()
    except OSError as error:
        raise OfflinepackError(
            f"cannot read the run ledger {path}: {why(error)}",
            hint="pass --ledger with a readable offlinepack-runs.jsonl file",
        ) from error
    # bytes, line by line: one damaged line (torn write, binary junk) is skipped, not fatal, and a
    # complete record glued after a torn one is still read
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        record, whole = _record_in(raw)
        if not whole:
            skipped.append(number)
        if not isinstance(record, dict) or "run_id" not in record:
            if whole:
                skipped.append(number)
            continue
        kind = record.get("type", "run")
        if kind == "note":
            notes.setdefault(str(record["run_id"]), []).append(record)
        elif kind in RECORD_KINDS:
            runs[str(record["run_id"])] = record
        elif whole:
            skipped.append(number)
    entries = tuple(RunEntry(record, tuple(notes.get(run_id, ()))) for run_id, record in runs.items())
    return Ledger(path, entries, tuple(skipped))


MIN_SHORT_ID = 7  # as git abbreviates: long enough to stay unique as a ledger grows by a few runs


def short_id_length(run_ids: list[str] | tuple[str, ...], minimum: int = MIN_SHORT_ID) -> int:
    """The one prefix length at which every id is told apart from every other (git's short hashes, one
    length for the whole list so a table's column lines up). An id that is itself a prefix of another
    (`r1`, `r10`) is shown whole and found by exact match."""
    ordered = sorted(set(run_ids))
    length = minimum
    for before, after in zip(ordered, ordered[1:]):
        common = len(os.path.commonprefix([before, after]))
        length = max(length, common + 1)
    return length


def short_ids(ledger: Ledger) -> dict[str, str]:
    """run id -> its shortest unique prefix (at least MIN_SHORT_ID characters) among the ledger's entries."""
    ids = [run.run_id for run in ledger.runs]
    length = short_id_length(ids)
    return {run_id: run_id[:length] for run_id in ids}


def describe(run: RunEntry, short: str | None = None) -> str:
    """One line naming a run for an error's list of candidates: id, when, what."""
    fields = run.fields
    when = str(fields.finished or fields.started or "")[:16].replace("T", " ")
    what = run.kind if run.kind != RUN_KIND else f"run {fields.status or ''}".strip()
    return "  ".join(part for part in (short or run.run_id, when, what) if part)


def find_run(ledger: Ledger, ref: str) -> RunEntry:
    """A run by its id or a unique prefix of it (what `offlinepack runs` shows)."""
    exact = [run for run in ledger.runs if run.run_id == ref]
    if exact:
        return exact[0]
    matches = [run for run in ledger.runs if run.run_id.startswith(ref)] if ref else []
    if len(matches) == 1:
        return matches[0]
    listing = f"`offlinepack runs --ledger {ledger.path}`"
    if not matches:
        latest = ledger.runs[-5:][::-1]
        shown = short_ids(ledger)
        raise OfflinepackError(
            f"no run {ref!r} in {ledger.path}" + ("; its latest run(s):" if latest else ""),
            problems=[describe(run, shown[run.run_id]) for run in latest],
            hint=f"give an id (or the start of one) that {listing} lists"
            + ("" if ledger.runs else " (it holds no readable run record)"),
        )
    longer = short_id_length([run.run_id for run in ledger.runs])
    raise OfflinepackError(
        f"{ref!r} matches {len(matches)} runs in {ledger.path}:",
        problems=[describe(run) for run in matches[:10]]
        + ([f"... and {len(matches) - 10} more"] if len(matches) > 10 else []),
        hint=f"give more of the id: the first {longer} characters tell every run here apart "
             f"(e.g. {matches[-1].run_id[:longer]}), as {listing} shows them",
    )


def run_for_zip(ledger: Ledger, zip_sha256: str) -> RunEntry | None:
    """The latest run that wrote a zip with this sha256: which run a submission came from."""
    for run in reversed(ledger.runs):
        submission = run.fields.submission or {}
        if isinstance(submission, dict) and submission.get("sha256") == zip_sha256:
            return run
    return None


def recorded_shapes(run: RunEntry) -> dict[str, tuple[int, ...]]:
    """id -> (Z,H,W) of each source volume as the run recorded it (the masks were checked against them)."""
    try:
        return {str(volume["id"]): tuple(int(n) for n in volume["shape"])
                for volume in run.fields.volumes or ()
                if isinstance(volume, dict) and volume.get("shape")}
    except (KeyError, TypeError, ValueError):  # a hand-edited or damaged record: no shapes rather than wrong ones
        return {}


def add_note(
    path: Path,
    run_ref: str,
    *,
    public_lb: float | None = None,
    private_lb: float | None = None,
    text: str | None = None,
) -> dict[str, Any]:
    """Append a note record to the run `run_ref` (id or unique prefix); returns the record written."""
    if public_lb is None and private_lb is None and not text:
        raise OfflinepackError("a note needs --public-lb, --private-lb or --text",
                               hint="e.g. `offlinepack runs note RUN --public-lb 0.581 --text \"fold 0\"`")
    run = find_run(read_ledger(path), run_ref)
    record = {
        "type": "note",
        "run_id": run.run_id,
        "time": utc_now(),
        "public_lb": public_lb,
        "private_lb": private_lb,
        "text": text,
    }
    append_record(path, record)
    return record


def calibration_for(ledger: Ledger, run: RunEntry) -> RunEntry | None:
    """The latest calibration recorded before `run` whose fitted [post] settings the run used: which
    calibrated config produced a submission."""
    config = run.fields.config
    post = config.get("post") if isinstance(config, dict) else None
    if not isinstance(post, dict) or run.kind != RUN_KIND:
        return None
    found = None
    for entry in ledger.runs:
        if entry is run:
            break
        if entry.kind == "calibration" and entry.record.get("post") == post:
            found = entry
    return found
