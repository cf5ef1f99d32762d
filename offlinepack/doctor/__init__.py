"""`offlinepack doctor`: every readiness check of a kernel, one Check each, all run even after a failure.

Package decisions come from the shipped bootstrap.py (one implementation, through offlinepack/kernel.py); torch is imported only
inside the torch probe.
"""

from __future__ import annotations

from collections.abc import Callable

from offlinepack.doctor.gpu import GpuFacts, TorchFacts, gpu_checks, known_bad, probe_torch
from offlinepack.doctor.host import dependency_check, input_check, output_check, tiff_check
from offlinepack.doctor.model import Check, DoctorOptions, DoctorReport
from offlinepack.doctor.packages import package_checks

__all__ = ["Check", "DoctorOptions", "DoctorReport", "GpuFacts", "TorchFacts", "known_bad",
           "probe_torch", "run_checks"]


def _guarded(name: str, make: Callable[[], list[Check]]) -> list[Check]:
    """A check that crashes becomes a failed line, so the others still run."""
    try:
        return make()
    except Exception as error:  # noqa: BLE001 - the doctor must report, not stop
        return [Check(name, "fail", f"the check itself failed: {type(error).__name__}: {error}",
                      "report this as a bug, with `offlinepack doctor --json`")]


def run_checks(options: DoctorOptions, *, torch_probe: Callable[[], TorchFacts] = probe_torch) -> DoctorReport:
    checks: list[Check] = []
    checks += _guarded("packages", lambda: package_checks(options))
    checks += _guarded("run dependencies", lambda: [dependency_check()])
    checks += _guarded("torch", lambda: gpu_checks(torch_probe(), options.require_gpu))
    checks += _guarded("tiff readers", lambda: [tiff_check()])
    checks += _guarded("output folder", lambda: [output_check(options.output_dir)])
    checks += _guarded("competition input", lambda: [input_check(options)])
    return DoctorReport(tuple(checks))
