"""`offlinepack rehearse KERNEL_DIR`: the kernel replayed here before any upload.

Static checks first (rehearse_static); when none fails, the notebook's cells run in order with a real
Jupyter kernel in the sandbox (sandbox.py, replay.py; the kernel-like base environment is copied from a
cache, base_env.py), then the kernel's offlinepack is checked to be the wheelhouse's (shipped_wheel.py: a
checkout on the path must not stand in for the wheel) and the submission is validated.
Exit: 0 ready to push, 1 works with warnings, 2 would fail in the kernel (the first failing check or cell
is named with its fix).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offlinepack import exit_codes
from offlinepack.errors import OfflinepackError, raise_if_problems
from offlinepack.files import read_json
from offlinepack.kaggle import SUBMISSION_NAME
from offlinepack.kernel_kit import sandbox
from offlinepack.kernel_kit.kernel_metadata import KERNEL_METADATA, KernelMetadata, read_kernel_metadata
from offlinepack.kernel_kit.notebook import read_notebook
from offlinepack.kernel_kit.rehearse_static import (
    Check,
    LocalSources,
    check_model_folder,
    check_notebook_paths,
    check_sources,
    check_wheelhouse,
    model_refs,
    wheels_ref,
)
from offlinepack.kernel_kit.shipped_wheel import PROBE_FILE, check_shipped_offlinepack, probe_cell, shipped_wheel
from offlinepack.kernel_target import Target


@dataclass(frozen=True, kw_only=True, slots=True)
class CellResult:
    cell: int
    first_line: str
    status: str  # ok | error | skipped
    seconds: float
    tail: tuple[str, ...]
    error: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class Rehearsal:
    kernel_dir: Path
    checks: tuple[Check, ...]
    cells: tuple[CellResult, ...]
    validation: dict[str, Any] | None  # the submission's validation report (None: not reached)
    isolation: str  # what the dynamic part ran under
    python: str | None
    work: Path | None
    warnings: tuple[str, ...]
    seconds: dict[str, float] = field(default_factory=dict)
    shipped: Check | None = None  # after the cells: the kernel ran the wheelhouse's offlinepack (shipped_wheel.py)

    @property
    def failure(self) -> tuple[str, str | None] | None:
        """(what failed first, its fix) or None."""
        for check in self.checks:
            if check.status == "fail":
                return f"{check.name}: {check.detail}", check.fix
        for cell in self.cells:
            if cell.status == "error":
                hints = [line[len("hint: "):] for line in cell.tail if line.startswith("hint: ")]
                errors = [line for line in cell.tail if line.startswith("error: ")]
                detail = "; ".join(errors[:3]) or cell.error or "failed"
                return f"cell {cell.cell} ({cell.first_line}): {detail}", hints[0] if hints else \
                    "run the cell's command yourself in the rehearsal folder to see the whole output"
        if self.shipped is not None and self.shipped.status == "fail":
            return f"{self.shipped.name}: {self.shipped.detail}", self.shipped.fix
        if self.cells and self.validation is None:
            return "no submission: the notebook finished without writing /kaggle/working/submission.zip", \
                "the run cell must write -o /kaggle/working/submission.zip"
        if self.validation is not None and not self.validation.get("valid"):
            problems = self.validation.get("problems") or ["invalid"]
            return f"submission.zip is invalid: {problems[0]}", "see `offlinepack validate` for every problem"
        return None

    @property
    def exit_code(self) -> int:
        if self.failure is not None:
            return exit_codes.FAILED
        if self.warnings or any(c.status == "warn" for c in self.checks):
            return exit_codes.DEGRADED
        return exit_codes.OK

    def to_dict(self) -> dict[str, Any]:
        failure = self.failure
        return {
            "kernel_dir": str(self.kernel_dir), "exit_code": self.exit_code,
            "status": {0: "ready to push", 1: "works with warnings", 2: "would fail in the kernel"}[self.exit_code],
            "first_failure": failure[0] if failure else None, "fix": failure[1] if failure else None,
            "checks": [c.to_dict() for c in self.checks],
            "shipped_offlinepack": self.shipped.to_dict() if self.shipped else None,
            "cells": [{"cell": c.cell, "first_line": c.first_line, "status": c.status, "seconds": c.seconds,
                       "tail": list(c.tail), "error": c.error} for c in self.cells],
            "validation": self.validation, "isolation": self.isolation, "python": self.python,
            "work": str(self.work) if self.work else None, "warnings": list(self.warnings), "seconds": self.seconds,
        }


def parse_dataset_args(values: list[str]) -> dict[str, Path]:
    """`owner/slug=PATH` (or a Kaggle Model ref =PATH) -> {ref: path}; every problem at once."""
    found, problems = {}, []
    for value in values:
        ref, sep, path = value.partition("=")
        if not sep or not ref or not path:
            problems.append(f"--dataset {value!r} must be owner/slug=PATH")
            continue
        if not Path(path).is_dir():
            problems.append(f"--dataset {ref}: {path} is not a folder")
        found[ref] = Path(path)
    raise_if_problems(problems, "bad --dataset arguments", hint="pass --dataset owner/slug=LOCAL_FOLDER per attached dataset")
    return found


def _load_kernel(kernel_dir: Path) -> tuple[KernelMetadata, dict[str, Any]]:
    meta_path = kernel_dir / KERNEL_METADATA
    if not meta_path.is_file():
        raise OfflinepackError(f"{kernel_dir} has no {KERNEL_METADATA}", hint="write the folder with `offlinepack kernel init`")
    metadata = read_kernel_metadata(read_json(meta_path), str(meta_path))
    notebook_path = kernel_dir / metadata.code_file
    if not notebook_path.is_file():
        raise OfflinepackError(f"{meta_path}: code_file {metadata.code_file} does not exist in {kernel_dir}")
    return metadata, read_notebook(notebook_path)


def static_checks(metadata: KernelMetadata, notebook: dict[str, Any], target: Target,
                  local: LocalSources) -> list[Check]:
    checks = check_sources(metadata, local) + check_notebook_paths(notebook, metadata, local)
    wheels = wheels_ref(notebook)
    folder = local.folder_of(wheels.partition(":")[0]) if wheels else None
    if wheels is None:
        checks.append(Check(name="wheelhouse", status="fail", detail="the notebook sets no WHEELS = kaggle_input(...)",
                            fix="write the notebook with `offlinepack kernel init`"))
    elif folder is not None and folder.is_dir():
        checks += check_wheelhouse(folder, target)[0]
    for ref in model_refs(notebook):
        base, _, inside = ref.partition(":")
        model_folder = local.folder_of(base)
        if model_folder is not None:
            checks += check_model_folder(model_folder / inside if inside else model_folder, ref)
    return checks


def _expected_shapes(competition_data: Path | None, working: Path) -> Any:
    from offlinepack.kaggle import ledger_in
    from offlinepack.ledger import read_ledger, recorded_shapes, run_for_zip
    from offlinepack.hashing import sha256_file
    from offlinepack.volumes import find_inputs

    if competition_data is not None:
        return find_inputs(competition_data)
    ledger = ledger_in(working)
    if ledger.is_file():
        run = run_for_zip(read_ledger(ledger), sha256_file(working / SUBMISSION_NAME))
        if run is not None:
            return recorded_shapes(run)
    return None


def _binds(metadata: KernelMetadata, local: LocalSources) -> list[tuple[str, Path]]:
    """(path under /kaggle/input, local folder) for every attached source given locally, both layouts."""
    return [(point, local.folder_of(s.ref)) for s in metadata.sources() if local.folder_of(s.ref) is not None
            for point in s.mount_points()]  # type: ignore[misc]


def run_cells(kernel_dir: Path, metadata: KernelMetadata, target: Target, local: LocalSources, work: Path,
              timeout: float, environ: Mapping[str, str],
              seconds: dict[str, float] | None = None) -> tuple[list[CellResult], str, str, list[str]]:
    """Lay out the sandbox and replay the notebook there; (cells, isolation, python, warnings). `seconds` gets
    the time of the kernel-like environment (a cached copy or a build) and of the sandbox's whole replay."""
    seconds = {} if seconds is None else seconds
    warnings: list[str] = []
    started = time.perf_counter()
    kernel_python = sandbox.make_kernel_python(work, target, environ)
    seconds["kernel_python"] = round(time.perf_counter() - started, 2)
    warnings += kernel_python.warnings
    jupyter_path = sandbox.make_jupyter_harness(work, kernel_python.executable)
    working = work / "working"
    if working.exists():
        shutil.rmtree(working)
    working.mkdir(parents=True)
    mounts, network = sandbox.namespaces_allowed()
    if environ.get("OFFLINEPACK_REHEARSE_FALLBACK"):  # the fallback root on a machine that allows namespaces
        mounts = False
    in_sandbox_tmp = "/tmp" if mounts else str(work / "tmp")
    cell_env = {"PATH": os.pathsep.join([str(kernel_python.executable.parent), "/usr/local/bin", "/usr/bin", "/bin"]),
                "HOME": f"{in_sandbox_tmp}/home", "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1",
                "KAGGLE_KERNEL_RUN_TYPE": "Batch", "TMPDIR": in_sandbox_tmp,
                "IPYTHONDIR": f"{in_sandbox_tmp}/ipython", "JUPYTER_RUNTIME_DIR": f"{in_sandbox_tmp}/jupyter",
                "MPLBACKEND": "agg"}
    notebook = work / "notebook.ipynb"  # the kernel folder may be where the sandbox cannot see (/tmp)
    shutil.copyfile(kernel_dir / metadata.code_file, notebook)
    spec: dict[str, Any] = {"notebook": str(notebook),
                            "report": str(work / "replay.json"), "jupyter_path": str(jupyter_path),
                            "runtime_dir": f"{in_sandbox_tmp}/jupyter", "timeout": timeout, "env": cell_env}
    # mount, chroot and ip live in sbin folders
    process_env = {**cell_env, "PATH": os.pathsep.join([str(Path(sys.executable).parent), cell_env["PATH"],
                                                        "/usr/local/sbin", "/usr/sbin", "/sbin"]),
                   # the replayer imports offlinepack and nbclient as this process does (a user site under the
                   # real HOME included); the Jupyter kernel and the cells get cell_env, without it
                   "PYTHONPATH": os.pathsep.join(p for p in sys.path if p and Path(p).is_dir())}
    binds = _binds(metadata, local)
    if mounts:
        isolation = "user, mount and network namespaces: /kaggle/input read-only, no network"
        spec["working"] = "/kaggle/working"
        mount_lines = [("ro", folder.resolve(), f"/kaggle/input/{point}") for point, folder in binds]
        mount_lines += [("rw", working, "/kaggle/working"), ("rw", work, str(work))]
        # this Python and offlinepack, when they live under /tmp (an empty tmpfs in the sandbox)
        import offlinepack

        for path in {Path(sys.prefix), Path(sys.base_prefix), Path(offlinepack.__file__).resolve().parents[1]}:
            if path.resolve().is_relative_to("/tmp"):
                mount_lines.append(("ro", path.resolve(), str(path.resolve())))
        newroot = work / "newroot"
        newroot.mkdir(exist_ok=True)
        command = [shutil.which("unshare") or "unshare", "-rmn", "--propagation", "private", "sh",
                   str(sandbox.enter_script(work)), str(newroot), str(sandbox.write_mounts(work, mount_lines)),
                   sys.executable, "-m", "offlinepack.kernel_kit.replay", str(work / "spec.json")]
    else:
        root = work / "kaggle"
        if root.exists():
            shutil.rmtree(root)
        for point, folder in binds:
            (root / "input" / point).parent.mkdir(parents=True, exist_ok=True)
            (root / "input" / point).symlink_to(folder.resolve())
        (root / "working").symlink_to(working)
        (work / "tmp").mkdir(exist_ok=True)
        spec.update(working=str(working), rewrite_root=str(root))
        cell_env["OFFLINEPACK_KAGGLE_ROOT"] = str(root)
        isolation = f"fallback root {root} (OFFLINEPACK_KAGGLE_ROOT; /kaggle paths rewritten; inputs not read-only)"
        warnings.append("mount namespaces are not allowed here: rehearsed in a fallback root, where inputs are "
                        "writable and the notebook's /kaggle paths are rewritten")
        command = [sys.executable, "-m", "offlinepack.kernel_kit.replay", str(work / "spec.json")]
        if network:
            # loopback up: the Jupyter kernel talks to nbclient over 127.0.0.1
            command = [shutil.which("unshare") or "unshare", "-rn", "sh", "-c",
                       'ip link set lo up 2>/dev/null; exec "$@"', "sh", *command]
            isolation += ", no network"
        else:
            warnings.append("network namespaces are not allowed here: the cells ran with the network on")
    probe_report = work / PROBE_FILE
    probe_report.unlink(missing_ok=True)  # a report from an earlier rehearsal in this folder says nothing
    spec["probe"] = probe_cell(probe_report)
    (work / "spec.json").write_text(json.dumps(spec, indent=1))
    started = time.perf_counter()
    try:
        done = subprocess.run(command, env=process_env, capture_output=True, text=True, timeout=timeout + 300)
        seconds["sandbox"] = round(time.perf_counter() - started, 2)
    except subprocess.TimeoutExpired:
        return [CellResult(cell=0, first_line="", status="error", seconds=timeout, tail=(),
                           error=f"the rehearsal did not finish in {timeout:.0f} s")], isolation, kernel_python.version, warnings
    report_path = work / "replay.json"
    if not report_path.is_file():
        tail = tuple(line for line in (done.stderr or done.stdout).splitlines() if line.strip())[-12:]
        raise OfflinepackError("the rehearsal sandbox did not start", problems=tail,
                               hint="rehearse with --static-only, or see the sandbox's output above")
    report = read_json(report_path)
    if report.get("error"):
        raise OfflinepackError(f"the Jupyter kernel did not start in the sandbox: {report['error']}",
                               hint="install the kit extra (pip install 'offlinepack[kit]': nbclient, ipykernel); "
                                    f"the sandbox's files are in {work}")
    cells = [CellResult(cell=c["cell"], first_line=c["first_line"], status=c["status"], seconds=c["seconds"],
                        tail=tuple(c["tail"]), error=c["error"]) for c in report["cells"]]
    if kernel_python.stubs:
        warnings.append(f"{len(kernel_python.stubs)} of the target's distributions are metadata only here (not "
                        f"importable): {', '.join(kernel_python.stubs[:8])}{' ...' if len(kernel_python.stubs) > 8 else ''}")
    return cells, isolation, kernel_python.version, warnings


def rehearse_kernel(kernel_dir: Path, *, target: Target, datasets: Mapping[str, Path],
                    competition_data: Path | None = None, dynamic: bool = True, work: Path | None = None,
                    timeout: float = 1800, environ: Mapping[str, str] = os.environ) -> Rehearsal:
    started = time.perf_counter()
    kernel_dir = Path(kernel_dir)
    metadata, notebook = _load_kernel(kernel_dir)
    folders = dict(datasets)
    if competition_data is not None:
        if not Path(competition_data).is_dir():
            raise OfflinepackError(f"--competition-data {competition_data} is not a folder")
        for competition in metadata.competitions:
            folders[competition] = Path(competition_data)
    local = LocalSources(folders=folders)
    checks = static_checks(metadata, notebook, target, local)
    seconds = {"static": round(time.perf_counter() - started, 2)}
    cells: list[CellResult] = []
    validation = None
    isolation, python, warnings = "not run", None, []
    shipped = None
    if target.approximate:
        warnings.append(f"the target {target.name} is an approximation: rehearse against a snapshot of the real "
                        "kernel (`python bootstrap.py snapshot -o kernel.json` there) for exact decisions")
    if not dynamic:
        isolation = "not run (--static-only)"
    elif any(c.status == "fail" for c in checks):
        isolation = "not run: a static check failed"
    else:
        work = Path(work) if work else Path(tempfile.mkdtemp(prefix="offlinepack-rehearsal-"))
        work = work.resolve()
        work.mkdir(parents=True, exist_ok=True)
        cells_list, isolation, python, more = run_cells(kernel_dir, metadata, target, local, work, timeout, environ,
                                                        seconds)
        cells, warnings = cells_list, warnings + more
        if cells and all(c.status == "ok" for c in cells):
            probe_path = work / PROBE_FILE
            probe = read_json(probe_path) if probe_path.is_file() else None
            wheels = wheels_ref(notebook)
            shipped = check_shipped_offlinepack(probe, shipped_wheel(local.folder_of(wheels.partition(":")[0])
                                                                     if wheels else None))
        zip_path = work / "working" / SUBMISSION_NAME
        if zip_path.is_file():
            from offlinepack.submission import validate_submission

            validation = validate_submission(zip_path, _expected_shapes(competition_data, work / "working")).to_dict()
            validation["path"] = str(zip_path)
        seconds["dynamic"] = round(time.perf_counter() - started - seconds["static"], 2)
    seconds["total"] = round(time.perf_counter() - started, 2)
    return Rehearsal(kernel_dir=kernel_dir, checks=tuple(checks), cells=tuple(cells), validation=validation,
                     isolation=isolation, python=python, work=work if cells else None, warnings=tuple(warnings),
                     seconds=seconds, shipped=shipped)
