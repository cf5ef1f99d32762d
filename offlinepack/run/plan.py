"""Decide where a run reads and writes: kernel or not, demo defaults, output and work folder.

Host facts (the Kaggle root, the cwd, the temp folder) are parameters so tests can be any machine.
"""

from __future__ import annotations

import os
import resource
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from offlinepack import __version__, kaggle
from offlinepack.errors import OfflinepackError
from offlinepack.files import probe_writable
from offlinepack.run.config import DEMO_MODEL, RunConfig
from offlinepack.units import format_size

# Less free disk than this where the run writes is refused up front (the run would only fail later, volume by
# volume, or lose its ledger record); so is a file size limit (`ulimit -f`) a ledger is already near.
MIN_FREE_BYTES = 1 << 20
LEDGER_RECORD_ROOM = 8 << 10  # a run record is a few KB


@dataclass(frozen=True)
class RunPlan:
    config: RunConfig  # with demo defaults filled in
    output: Path
    work_dir: Path  # masks (<id>.tif + <id>.json) kept here between runs
    in_kernel: bool
    demo: bool  # the bundled model and/or the synthetic sample are used
    models: tuple[Path, ...]


def demo_input_dir(temp_root: Path | None = None) -> Path:
    return Path(temp_root or tempfile.gettempdir()) / f"offlinepack-demo-{__version__}"


def plan_run(
    config: RunConfig,
    *,
    kaggle_root: Path = Path("/kaggle"),
    cwd: Path | None = None,
    temp_root: Path | None = None,
    need_models: bool = True,
) -> RunPlan:
    """Fill in defaults: output path, demo model/input when neither model nor input was given outside a kernel.
    `need_models=False` (saved probabilities stand in for inference): no model and no demo default."""
    from offlinepack.demo import DEMO_CHECKPOINT, write_demo_input

    kernel = kaggle.in_kernel(kaggle_root)
    output = config.output or kaggle.default_output(kaggle_root, cwd)
    demo = False
    problems: list[str] = []  # every problem with the arguments at once, not one per attempt
    if config.input is not None and not Path(config.input).is_dir():
        problems.append(f"input folder {config.input} does not exist (or is not a folder)")
    if not config.models and need_models:
        if kernel or config.input is not None:
            problems.append(f"no model given: pass --model PATH (nnU-Net folder, TorchScript file, built-in "
                            f"checkpoint), or --model {DEMO_MODEL} for the bundled demo")
        else:
            # the embedded default: bundled checkpoint on a synthetic competition-like sample
            sample = write_demo_input(demo_input_dir(temp_root))
            config = replace(config, models=(DEMO_MODEL,), input=sample)
    if DEMO_MODEL in config.models:
        demo = True
        # mirroring buys the synthetic-sheet model nothing and costs 8x: off unless asked for
        config = replace(config, inference={"mirror_axes": (), **config.inference})
    models = tuple(DEMO_CHECKPOINT if m == DEMO_MODEL else Path(m) for m in config.models)
    problems += [f"model path {m} does not exist" for m in models if not m.exists()]
    if problems:
        raise OfflinepackError(
            "cannot start the run",
            problems=problems,
            hint="check the paths; in a kernel, attached datasets and models are under /kaggle/input/",
        )
    output = Path(output)
    return RunPlan(config, output, kaggle.work_dir(output), kernel, demo, models)


def check_writable(plan: RunPlan) -> list[Path]:
    """Fail before any work when the output, the work folder or the extra ledger cannot be written.

    Returns the folders it had to create (deepest first), so a run that then cannot start removes them.
    """
    from offlinepack.submission import zip_destination

    destination = zip_destination(plan.output)  # a folder, device or FIFO is refused; a symlink is followed
    created = [p for p in (plan.work_dir, *plan.work_dir.parents) if not p.exists()]
    try:
        plan.work_dir.mkdir(parents=True, exist_ok=True)
        for folder in {destination.parent, plan.work_dir}:
            probe_writable(folder)
        full = space_problem(destination.parent)
    except OSError as error:
        remove_empty(created)
        raise OfflinepackError(
            f"output folder {plan.output.parent} is not writable: {error.strerror or error}",
            hint="pass -o with a path in a writable folder (in a kernel: /kaggle/working)",
        ) from error
    if full:
        remove_empty(created)
        raise OfflinepackError(f"output folder {destination.parent}: {full}",
                               hint="free disk space (old masks, checkpoints, caches) or pass -o on another disk")
    ledger = plan.config.ledger
    if ledger is not None:
        problem = _ledger_problem(Path(ledger))
        if problem:
            remove_empty(created)
            raise OfflinepackError(f"--ledger {ledger}: {problem}",
                                   hint="pass --ledger with a file in a writable folder, or leave it out "
                                        "(the run is always recorded beside the output too)")
    beside = kaggle.ledger_in(plan.output.parent)
    if beside.exists() and (problem := _ledger_problem(beside)):
        remove_empty(created)
        raise OfflinepackError(f"run ledger {beside}: {problem}",
                               hint="move it away (the run records every run in this file) or pass -o elsewhere")
    return created


def _ledger_problem(ledger: Path) -> str | None:
    """Why the run record could not be appended to `ledger` at the end of the run, or None."""
    if ledger.is_dir():
        return "is a folder, not a file"
    if ledger.exists():
        if not ledger.is_file():  # appending to a FIFO blocks until a reader comes; a device is not a ledger
            return "is not a regular file (a device, FIFO or socket)"
        if not os.access(ledger, os.W_OK):
            return "is not writable"
        return space_problem(ledger.resolve().parent, ledger.stat().st_size)
    folder = next((p for p in ledger.parents if p.exists()), None)
    if folder is None or not folder.is_dir():
        return f"cannot be created: {folder} is not a folder"
    try:
        probe_writable(folder)
    except OSError as error:
        return f"cannot be created in {folder}: {error.strerror or error}"
    return None


def space_problem(folder: Path, growing_file_bytes: int | None = None) -> str | None:
    """Why `folder` has no room for the run's files, or None: a full disk; with `growing_file_bytes` (the size of
    a file that will be appended to), also a file size limit (`ulimit -f`) that file is already near. (Masks
    and the zip have no size known in advance: a limit they hit fails those volumes or the zip, not the start.)"""
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if (growing_file_bytes is not None and limit != resource.RLIM_INFINITY
            and limit < growing_file_bytes + LEDGER_RECORD_ROOM):
        return f"the file size limit (ulimit -f) is {format_size(limit)}, too small for this file to grow"
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    if free < MIN_FREE_BYTES:
        return f"its disk is full ({format_size(free)} free)"
    return None


def remove_empty(folders: list[Path]) -> None:
    """Remove folders a run created, deepest first, as long as they are still empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def sweep_stale_temp(plan: RunPlan) -> list[Path]:
    """Remove the temp files a killed run left (`.submission.zip.<pid>.tmp` beside the output, `.<id>.tif.<pid>.tmp`
    and `.<id>.json.<pid>.tmp` in the work folder): on Kaggle they would end up among the notebook's outputs."""
    stale = [*plan.output.parent.glob(f".{plan.output.name}.*.tmp"), *plan.work_dir.glob(".*.tmp")]
    removed = []
    for path in stale:
        try:
            path.unlink()
            removed.append(path)
        except OSError:
            pass  # still in use or not ours to remove: harmless
    return removed
