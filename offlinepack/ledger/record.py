"""`RunRecord`: what one `offlinepack run` leaves in the ledger, as one JSON line.

The pipeline fills it, `to_dict` is the line written (keys in this order, `probabilities` only when maps were
saved or read), `from_dict` reads a line back: a key an older offlinepack did not write takes its default, and
keys this version does not know are kept in `extra` and written back unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

RUN_KIND = "run"


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    started: str | None = None
    finished: str | None = None
    exit_code: int | None = None
    status: str | None = None  # "ok" | "failed" (a volume failed or no zip) | "error" (the run stopped)
    error: str | None = None  # why the run stopped ("Type: message"), None when it finished
    output: str | None = None
    work_dir: str | None = None
    demo: bool = False
    input: Mapping[str, Any] | None = None  # root, source (layout), volumes (count), missing_ids
    config: Mapping[str, Any] | None = None  # RunConfig.to_dict()
    models: Sequence[Mapping[str, Any]] = ()  # every model file: path, sha256, size
    model_packs: Sequence[Mapping[str, Any]] = ()
    wheelhouse: Mapping[str, Any] | None = None
    environment: Mapping[str, Any] | None = None
    engine: Mapping[str, Any] | None = None  # Engine.describe(); None when every mask was reused
    doctor: Mapping[str, Any] | None = None
    volumes: Sequence[Mapping[str, Any]] = ()
    failures: Sequence[Mapping[str, Any]] = ()  # {"id", "error"}
    on_error: str = "fail"
    empty_masks: Sequence[str] = ()
    submission: Mapping[str, Any] | None = None  # path, sha256, size, entries, warnings; None: no zip written
    seconds: Mapping[str, float] = field(default_factory=dict)
    probabilities: Mapping[str, Any] | None = None  # saved_to / from: the probability maps' folder
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys written by another version, kept as they are

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": RUN_KIND}
        for f in fields(self):
            if f.name == "extra" or (f.name == "probabilities" and self.probabilities is None):
                continue
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return {**out, **{k: v for k, v in self.extra.items() if k not in out}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        """A ledger line back; missing keys (older records) take their defaults, values are not checked here
        (a hand-edited record is read as far as each reader can use it)."""
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
        values["run_id"] = str(data.get("run_id"))
        extra = {k: v for k, v in data.items() if k not in known and k != "type"}
        return cls(**values, extra=extra)
