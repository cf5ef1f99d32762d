"""Package checks, delegated to the shipped bootstrap.py (through offlinepack/kernel.py) so the per-package
decisions live in one place."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from offlinepack import kernel
from offlinepack.doctor.model import Check, DoctorOptions


# bootstrap.py's package statuses that are not self-explanatory, said beside the counts
STATUS_MEANINGS = {
    "provided": "left to the kernel image, which has it",
    "provided-missing": "left to the kernel image (not in the wheelhouse), but the kernel does not have it",
    "wrong-version": "installed at another version than the wheelhouse was built against",
    "missing": "in the wheelhouse, not installed yet",
    "dependency-missing": "a package needs it and neither the kernel nor the wheelhouse has it",
    "incompatible": "its wheel does not install on this Python or platform",
    "hash-mismatch": "its file differs from the locked one",
    "missing-file": "the manifest lists no file for it",
    "install-failed": "installing it failed",
    "absent": "optional, not installed and in no dataset",
}


def package_checks(options: DoctorOptions, tags: list[str] | None = None) -> list[Check]:
    """python/tags vs the wheelhouse's target, wheelhouse found, one summary of packages and a line per problem."""
    report = kernel.inspect_kernel(options.wheel_dirs, kaggle_root=options.kaggle_root, tags=tags)
    datasets = report.datasets
    checks = [_python_check(report)]
    searched = ", ".join(sorted({p.path for p in report.searched}))
    unreadable = [d for d in datasets if d.error]
    if unreadable:
        # each field problem too: a doctor that says only "2 problems" makes users go and look
        checks.append(Check("wheelhouse", "fail", "; ".join(
            f"{d.path}: {d.error}" + "".join(f"; {p}" for p in d.problems) for d in unreadable),
                            "rebuild the wheelhouse with `offlinepack build --force` and upload it again"))
    elif datasets:
        absent = [p.path for p in report.searched if p.origin == "--wheels"
                  and (p.found in ("does not exist", "no wheels") or p.found.startswith("unreadable"))]
        checks.append(Check("wheelhouse", "warn" if absent else "ok", "; ".join(
            f"{d.path} ({'offlinepack.json' if d.has_manifest else 'no manifest'}, {d.wheels} wheels)" for d in datasets)
            + "".join(f"; --wheels {a}: no wheels there" for a in absent), "check the --wheels paths" if absent else None))
    else:
        checks.append(Check("wheelhouse", "warn", f"no wheel dataset found (looked in {searched})",
                            "attach the wheelhouse dataset, or pass --wheels DIR; fine outside a kernel"))
    packages = report.packages
    counts: dict[str, int] = {}
    for p in packages:
        counts[p.status] = counts.get(p.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no packages to check"
    explained = [f"{s} = {STATUS_MEANINGS[s]}" for s in sorted(counts) if s in STATUS_MEANINGS]
    if explained:
        summary += f" ({'; '.join(explained)})"
    worst = "fail" if any(p.severity == "fail" for p in packages) else (
        "warn" if any(p.severity == "warn" for p in packages) else "ok")
    checks.append(Check("packages", worst, summary, None if worst == "ok" else "see the package lines below"))
    for p in packages:
        if p.severity != "ok":
            fix = p.fix
            if p.status == "missing":
                fix = "run the wheelhouse's bootstrap.py: `python /kaggle/input/<dataset>/bootstrap.py`"
            checks.append(Check(f"package {p.name}", p.severity, p.detail, fix))
    checks.append(_journal_check(options))
    return checks


def _python_check(report: kernel.KernelReport) -> Check:
    tags: Sequence[str] = report.tags
    here = f"Python {report.python_version} ({tags[0]})"
    for dataset in report.datasets:
        if not dataset.has_manifest:
            continue
        target = dataset.target
        wanted = target.python_version if target else ""
        mine = ".".join(report.python_version.split(".")[:2])
        if wanted and ".".join(wanted.split(".")[:2]) != mine:
            return Check("python", "fail", f"{here}; the wheelhouse at {dataset.path} was built for Python {wanted}",
                         "rebuild it for this kernel: `python bootstrap.py snapshot -o kernel.json`, "
                         "then `offlinepack build LOCK --target kernel.json`")
        target_tags = target.tags if target else ()
        if target_tags and not set(target_tags) & set(tags):
            return Check("python", "warn", f"{here}; none of the wheelhouse target's tags ({target_tags[0]}, ...) "
                         "fit this interpreter", "rebuild the wheelhouse from a snapshot of this kernel")
        name = target.name if target and target.name is not None else "?"
        return Check("python", "ok", f"{here}; matches the wheelhouse target {name} ({wanted})")
    return Check("python", "ok", f"{here}; no wheelhouse target to compare with")


def _journal_check(options: DoctorOptions) -> Check:
    places = [p for p in sys.path if p and os.path.isdir(p)]
    places.append(str(Path(options.kaggle_root) / "working" / ".offlinepack-site"))
    journal = kernel.install_journal_name()
    stuck = [p for p in places if os.path.exists(os.path.join(p, journal))]
    if stuck:
        return Check("install state", "fail", f"an install was interrupted in {', '.join(stuck)}",
                     "run bootstrap.py again: it rolls the partial install back and reinstalls")
    return Check("install state", "ok", "no interrupted install")
