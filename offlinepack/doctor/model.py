"""The doctor's values: options in, one Check per line out, and the report's exit code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from offlinepack import exit_codes
from offlinepack.kaggle import DEFAULT_ROOT

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True, slots=True)
class DoctorOptions:
    output_dir: Path = DEFAULT_ROOT / "working"
    input_dir: Path | None = None
    kaggle_root: Path = DEFAULT_ROOT
    wheel_dirs: tuple[Path, ...] = ()
    require_gpu: bool = False


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


@dataclass(frozen=True, slots=True)
class DoctorReport:
    checks: tuple[Check, ...]

    @property
    def exit_code(self) -> int:
        statuses = {c.status for c in self.checks}
        if "fail" in statuses:
            return exit_codes.FAILED
        return exit_codes.DEGRADED if "warn" in statuses else exit_codes.OK

    def to_dict(self) -> dict[str, Any]:
        return {"exit_code": self.exit_code, "checks": [c.to_dict() for c in self.checks]}
