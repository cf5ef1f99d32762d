"""`offlinepack run`: test volumes -> validated submission.zip, with a run ledger.

Exit codes: 0 submission.zip written and valid; 1 some volumes failed (each named; the previous
submission.zip is kept; masks already written stay in the work folder for a resumed run);
2 could not start (not ready, no inputs, bad config, output not writable).
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer

from offlinepack import exit_codes, kaggle
from offlinepack.cli.output import console, err_console, print_json, reports_errors
from offlinepack.cli.options import split_values
from offlinepack.cli.progress import volume_bar, volume_description
from offlinepack.errors import OfflinepackError


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class _Renderer:
    """A bar over volumes with ETA on a terminal; one line per volume in logs (Kaggle's are not terminals)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None
        self.task = None
        self.started = time.monotonic()
        self.computed = 0  # volumes finished in this run (reused ones say nothing about speed)

    def _eta_seconds(self, done: int, total: int) -> float | None:
        if not self.computed or done >= total:
            return None
        return (time.monotonic() - self.started) / self.computed * (total - done)

    def _eta(self, done: int, total: int) -> str:
        eta = self._eta_seconds(done, total)
        return "" if eta is None else f", ETA {_duration(eta)}"

    def _eta_field(self, done: int, total: int) -> str:
        eta = self._eta_seconds(done, total)
        return "" if eta is None else f"ETA {_duration(eta)}"

    def __call__(self, event) -> None:
        if not self.enabled:
            return
        if event.event == "ready":
            err_console.print(f"inputs: {event.message}", markup=False)
        elif event.event == "start":
            if event.message:
                err_console.print(event.message, markup=False)
            if err_console.is_terminal:
                self.bar = volume_bar(err_console)
                self.bar.start()
                self.task = self.bar.add_task(volume_description(None, err_console.width), total=event.total,
                                              completed=event.done, eta=self._eta_field(event.done, event.total))
        elif event.event == "volume":
            if event.status == "reused":
                self.started = time.monotonic()
            else:
                self.computed += 1
            took = f" in {event.seconds:.1f} s" if event.seconds is not None else ""
            why = f": {event.message}" if event.message else ""
            line = f"[{event.done}/{event.total}] {event.id}: {event.status}{took}{why}{self._eta(event.done, event.total)}"
            if self.bar is not None:
                self.bar.update(self.task, completed=event.done, description=volume_description(event.id, err_console.width),
                                eta=self._eta_field(event.done, event.total))
                if event.status == "failed":
                    self.bar.console.print(line, markup=False)
            else:
                err_console.print(line, markup=False)
        elif event.event in ("zip", "done"):
            self.stop()
            if event.event == "zip":
                err_console.print(f"zipping and validating -> {event.message}", markup=False)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


@contextlib.contextmanager
def _json_errors(as_json: bool) -> Iterator[None]:
    """With --json, stdout stays machine-readable even when the run cannot start (bad flags, not ready):
    the error as JSON there, and the usual error/hint lines on stderr."""
    try:
        yield
    except OfflinepackError as error:
        if as_json:
            print_json({"exit_code": exit_codes.FAILED, "status": "error", "error": error.message,
                        "problems": list(error.problems), "hint": error.hint})
        raise


@reports_errors
def run(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="run.toml (keys: offlinepack.run.config).", dir_okay=False)] = None,
    model: Annotated[Optional[list[str]], typer.Option("--model", "-m", help="Model path (repeat for an ensemble); 'demo' = bundled demo U-Net.")] = None,
    weights: Annotated[Optional[list[str]], typer.Option("--weights", help="Ensemble weights, one per model (comma-separated or repeated).")] = None,
    folds: Annotated[Optional[list[str]], typer.Option("--folds", help="nnU-Net folds, e.g. 0,1,2.")] = None,
    input_dir: Annotated[Optional[Path], typer.Option("--input", "-i", help="Competition folder (test_images/ + test.csv) or a folder of <id>.tif.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="submission.zip path [kernel: /kaggle/working/submission.zip; else ./submission.zip].")] = None,
    ledger: Annotated[Optional[Path], typer.Option("--ledger", help="Also append the run record to this JSONL file.")] = None,
    threshold: Annotated[Optional[float], typer.Option("--threshold", help="Surface probability threshold [0.5].")] = None,
    hysteresis_low: Annotated[Optional[float], typer.Option("--hysteresis-low", help="Hysteresis low threshold [off].")] = None,
    min_component_voxels: Annotated[Optional[int], typer.Option("--min-component-voxels", help="Drop components under N voxels [1000].")] = None,
    fill_holes: Annotated[Optional[str], typer.Option("--fill-holes", help="3d | 2d | none [3d].")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="auto | cpu | cuda | cuda:N [auto].")] = None,
    precision: Annotated[Optional[str], typer.Option("--precision", help="auto | fp16 | bf16 | fp32 [auto].")] = None,
    step_size: Annotated[Optional[float], typer.Option("--step-size", help="Sliding-window step as a fraction of the patch [0.5].")] = None,
    mirror_axes: Annotated[Optional[str], typer.Option("--mirror-axes", help="Test-time mirroring axes, e.g. 0,1,2, or 'none'.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Patches per forward pass [auto].")] = None,
    compile_networks: Annotated[Optional[bool], typer.Option("--compile/--no-compile", help="torch.compile the networks (default: on CUDA when torch supports it, off on CPU; a failure falls back to eager).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Recompute masks already in the work folder.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Run even when the readiness check fails.")] = False,
    on_error: Annotated[Optional[str], typer.Option("--on-error", help="A volume that fails: 'fail' (no zip, old one kept) or 'empty' (an empty mask goes in, marked in the ledger); default: fail.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run report as JSON.")] = False,
    save_probabilities: Annotated[Optional[Path], typer.Option("--save-probabilities", help="Also save each volume's probability map here (<id>.npy + probabilities.json).", file_okay=False)] = None,
    probabilities_dtype: Annotated[str, typer.Option("--probabilities-dtype", help="uint8 (p*255 rounded) or float16.")] = "uint8",
    from_probabilities: Annotated[Optional[Path], typer.Option("--from-probabilities", help="Skip inference: post-process maps saved by --save-probabilities (input defaults to the one they were made from).", file_okay=False)] = None,
) -> None:
    """Predict every test volume, post-process, write and validate submission.zip, record the run.

    With no --model and no --input outside a Kaggle kernel, runs the bundled demo model on a synthetic
    sample volume. Exit codes: 0 ok, 1 some volumes failed (old submission.zip kept, or with --on-error empty
    written with empty masks for them), 2 could not start.
    """
    from offlinepack.run import RunConfig, apply_overrides, load_run_toml, run_pipeline

    with _json_errors(as_json):
        base = load_run_toml(config) if config else RunConfig()
        post = {k: v for k, v in {"threshold": threshold, "hysteresis_low": hysteresis_low,
                                  "min_component_voxels": min_component_voxels, "fill_holes": fill_holes}.items() if v is not None}
        inference = {k: v for k, v in {"device": device, "precision": precision, "step_size": step_size,
                                       "batch_size": batch_size, "compile": compile_networks}.items() if v is not None}
        if mirror_axes is not None:
            inference["mirror_axes"] = [] if mirror_axes.strip().lower() in ("none", "") else split_values([mirror_axes], int, "--mirror-axes")
        merged = apply_overrides(
            base, models=model, weights=split_values(weights, float, "--weights"), folds=split_values(folds, int, "--folds"), input=input_dir,
            output=output, ledger=ledger, post=post or None, inference=inference or None,
            overwrite=overwrite or None, force=force or None, on_error=on_error,
        )
        saving = saved = None
        if from_probabilities is not None:
            from offlinepack.probabilities import open_probabilities

            if save_probabilities is not None:
                raise OfflinepackError("--save-probabilities and --from-probabilities cannot be combined",
                                       hint="the maps are already saved: copy the folder instead")
            saved = open_probabilities(from_probabilities)
            if merged.input is None and saved.meta.get("input"):
                merged = apply_overrides(merged, input=Path(saved.meta["input"]))
            if merged.input is None:
                raise OfflinepackError(f"{from_probabilities} does not record which input its maps came from",
                                       hint="pass --input with the volumes (their shapes and ids make the submission)")
        elif save_probabilities is not None:
            from offlinepack.probabilities import ProbabilityWriter

            saving = ProbabilityWriter(save_probabilities, probabilities_dtype)
        renderer = _Renderer(enabled=not as_json)
        try:
            with warnings.catch_warnings():
                # library warnings (e.g. "no CUDA GPU: running on CPU") as plain `warning:` lines
                warnings.showwarning = lambda message, *rest, **kw: err_console.print(f"warning: {message}", markup=False)
                report = run_pipeline(merged, progress=renderer, kaggle_root=kaggle.kaggle_root(),
                                      save_probabilities=saving, from_probabilities=saved)
        finally:
            renderer.stop()
    if as_json:
        print_json(report.to_dict())
        raise typer.Exit(report.exit_code)
    _print_report(report)
    raise typer.Exit(report.exit_code)


def _print_report(report) -> None:
    empty = set(report.empty)
    for ident, why in report.failures:
        replaced = " (an empty mask went into the zip instead)" if ident in empty else ""
        err_console.print(f"error: volume {ident} failed{replaced}: {why}", markup=False)
    if report.zip is not None:
        for warning in report.zip.report.warnings:
            err_console.print(f"warning: {warning}", markup=False)
        from offlinepack.units import format_size

        console.print(f"wrote {report.zip.path} ({report.zip.entries} volume(s), {format_size(report.zip.size)}, "
                      f"sha256 {report.zip.sha256})", markup=False)
        if empty:
            err_console.print(f"warning: {len(empty)} volume(s) failed and went in as empty masks: "
                              f"{', '.join(sorted(empty))} (--on-error empty)", markup=False)
    else:
        err_console.print(
            f"error: {len(report.failures)} volume(s) failed; {report.output} was not written or replaced "
            f"(masks done so far are kept in {report.work_dir}: rerun to resume)", markup=False)
        if report.failures:
            err_console.print("hint: fix or remove the failed volumes and rerun (finished masks are reused), or pass "
                              "--on-error empty to hand in empty masks for them", markup=False)
    if report.demo:
        console.print("(demo: bundled synthetic-sheet model and sample volume; pass --model and --input for real data)", markup=False)
    console.print(f"run {report.run_id} recorded in {', '.join(str(p) for p in report.ledgers)}", markup=False)
