"""`run_pipeline`: readiness -> inputs -> inference -> post-processing -> masks -> validated zip -> ledger.

Reading the next volume and post-processing/writing the previous one overlap with inference (a reader
thread prefetching `prefetch` volumes, `workers` post threads, at most `workers` probability maps
waiting), so the accelerator is kept busy and host memory stays flat. A volume that fails (unreadable,
2D/4D, NaN or inf values, a crash in a reader or in post-processing) is recorded with its id and the
others go on; then no zip is written (the old submission.zip stays) and the report's exit code is 1.
With `on_error = "empty"` an empty mask of the source's shape stands in for each failed volume, so a
zip is still written (exit code 1 all the same, the ledger and the report name those volumes).
"""

from __future__ import annotations

import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from offlinepack import exit_codes, kaggle
from offlinepack.errors import OfflinepackError
from offlinepack.inference.volume_engine import EngineFactory, VolumeEngine
from offlinepack.ledger import RunRecord, append_record, environment_fact, model_files, new_run_id, utc_now
from offlinepack.ledger.facts import find_wheelhouse_manifest, model_pack_facts, wheelhouse_fact
from offlinepack.post import postprocess
from offlinepack.probabilities import ProbabilitySet, ProbabilityWriter, open_engine, probability_key_parts
from offlinepack.run.config import RunConfig, check_settings
from offlinepack.run.masks import (
    VolumeResult,
    empty_mask_result,
    mask_path,
    reusable,
    run_key,
    save_sidecar,
    volume_result,
)
from offlinepack.run.plan import RunPlan, check_writable, plan_run, remove_empty, sweep_stale_temp
from offlinepack.submission import ZipResult, write_mask_tiff, write_submission_zip


@dataclass(frozen=True)
class RunProgress:
    """What the library reports while running; the CLI renders it (a bar over volumes with ETA)."""

    event: str  # "ready" | "start" | "volume" | "zip" | "done"
    total: int = 0
    done: int = 0
    id: str | None = None
    status: str | None = None  # for "volume": "ok" | "reused" | "failed"
    seconds: float | None = None
    message: str | None = None


@dataclass(frozen=True)
class RunReport:
    run_id: str
    output: Path
    work_dir: Path
    volumes: tuple[VolumeResult, ...]
    failures: tuple[tuple[str, str], ...]  # (id, why)
    zip: ZipResult | None
    ledgers: tuple[Path, ...]
    demo: bool
    doctor: dict[str, Any] | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    empty: tuple[str, ...] = ()  # failed volumes that went into the zip as empty masks (--on-error empty)

    @property
    def exit_code(self) -> int:
        return exit_codes.OK if not self.failures and self.zip is not None else exit_codes.DEGRADED

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "exit_code": self.exit_code,
            "output": str(self.output),
            "work_dir": str(self.work_dir),
            "demo": self.demo,
            "volumes": [v.to_dict() for v in self.volumes],
            "failures": [{"id": i, "error": e} for i, e in self.failures],
            "empty_masks": list(self.empty),
            "submission": _zip_dict(self.zip),
            "ledgers": [str(p) for p in self.ledgers],
            "doctor": self.doctor,
            "seconds": self.seconds,
        }


def _zip_dict(result: ZipResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {"path": str(result.path), "sha256": result.sha256, "size": result.size, "entries": result.entries,
            "warnings": list(result.report.warnings)}


Progress = Callable[[RunProgress], None]


def _why(error: BaseException) -> str:
    """One line for a failed volume: the message and each reason (e.g. what every TIFF reader said); an
    unexpected exception is named by its type, since it fails only its own volume."""
    if isinstance(error, OfflinepackError):
        return "; ".join(error.lines())
    return f"{type(error).__name__}: {error}"


def stopped_exit_code(error: BaseException) -> int:
    """The exit code the process will end with when `error` stops the run: the CLI turns an OfflinepackError into
    FAILED (2); anything else is a bug whose traceback exits 1 (Typer/click also exit 1 on Ctrl-C). The ledger
    records this same code."""
    return exit_codes.FAILED if isinstance(error, OfflinepackError) else exit_codes.DEGRADED


def source_stats(array: Any) -> dict[str, Any]:
    """dtype, min and max of a source volume, as JSON numbers (float for float volumes); NaN or inf fail the
    volume here, on the reader thread, before anything converts them."""
    import numpy as np

    if not array.size:
        return {"dtype": str(array.dtype), "min": 0, "max": 0}
    if array.dtype.kind == "f":
        finite = np.isfinite(array)
        if not finite.all():
            bad = int(finite.size - np.count_nonzero(finite))
            raise OfflinepackError(f"contains {bad} NaN or inf value(s) (dtype {array.dtype})",
                                   hint="fix or re-export the volume, or pass --on-error empty")
        return {"dtype": str(array.dtype), "min": float(array.min()), "max": float(array.max())}
    if array.dtype.kind not in "biu":
        raise OfflinepackError(f"has dtype {array.dtype}; expected uint8 (or numbers)")
    return {"dtype": str(array.dtype), "min": int(array.min()), "max": int(array.max())}


def readiness(plan: RunPlan, kaggle_root: Path, force: bool) -> dict[str, Any]:
    """The doctor's checks (contract 5); refuse to start on exit code 2 unless forced."""
    from offlinepack.doctor import DoctorOptions, run_checks

    device = str(plan.config.inference.get("device", "auto"))
    report = run_checks(
        DoctorOptions(
            output_dir=plan.output.parent,
            input_dir=plan.config.input,
            kaggle_root=kaggle_root,
            require_gpu=device.startswith("cuda"),
        )
    )
    failed = [c for c in report.checks if c.status == "fail"]
    summary = {"exit_code": report.exit_code, "failed": [c.name for c in failed],
               "warned": [c.name for c in report.checks if c.status == "warn"], "forced": False}
    if report.exit_code == exit_codes.FAILED:
        if not force:
            raise OfflinepackError(
                f"not ready to run: {len(failed)} readiness check(s) failed",
                problems=[f"{c.name}: {c.detail}" + (f" (fix: {c.fix})" if c.fix else "") for c in failed],
                hint="fix the above (details: `offlinepack doctor`), or pass --force to run anyway",
            )
        summary["forced"] = True
    return summary


def _default_engine(models: Sequence[Path], config: RunConfig, compile_cache: Path | None = None) -> VolumeEngine:
    from offlinepack.inference import InferenceSettings, build_engine

    return build_engine(list(models), weights=config.weights, folds=config.folds,
                        settings=InferenceSettings(**config.inference), compile_cache=compile_cache)


MODEL_HINT = ("check the model path and the files beside it (config.json, the TorchScript .json sidecar, nnU-Net "
              "plans.json/dataset.json): a cut-off copy of the model dataset is the usual cause")


def _load_engine(engine_factory: EngineFactory, models: Sequence[Path], config: RunConfig) -> VolumeEngine:
    """Build the engine; a model error that does not say what to do next gets the generic next step."""
    try:
        return engine_factory(models, config)
    except OfflinepackError as error:
        if not error.hint:
            error.hint = MODEL_HINT
        raise


class _Run:
    """State of one run's volume loop (kept off the public API)."""

    def __init__(self, plan: RunPlan, key: str, progress: Progress, total: int) -> None:
        self.plan, self.key, self.progress, self.total = plan, key, progress, total
        self.results: dict[str, VolumeResult] = {}
        self.failures: dict[str, str] = {}
        self.readers: set[str] = set()
        self.info: dict[str, dict[str, Any]] = {}

    def report(self, ident: str, status: str, seconds: float | None, message: str | None = None) -> None:
        done = len(self.results) + len(self.failures)
        self.progress(RunProgress("volume", self.total, done, ident, status, seconds, message))

    def fail(self, ident: str, why: str) -> None:
        self.failures[ident] = why
        self.report(ident, "failed", None, why)

    @staticmethod
    def _read(ref: Any) -> tuple[Any, dict[str, Any]]:
        """Read one volume and take its stats here, on the reader thread, off the engine's path."""
        from offlinepack.volumes import read_volume

        start = time.perf_counter()
        data = read_volume(Path(ref.path))
        array = data.array
        stats = {"read": time.perf_counter() - start, "reader": data.reader,
                 "shape": tuple(int(s) for s in array.shape), **source_stats(array)}
        return data, stats

    def feed(self, refs: Sequence[Any], pool: ThreadPoolExecutor, fed: list[str]) -> Iterator[tuple[str, Any]]:
        """(id, array) for the engine, reading `prefetch` volumes ahead; read failures recorded, skipped.
        `fed` collects the ids handed over (the engine may pull them on its own prefetch thread)."""
        queue: deque[tuple[Any, Future]] = deque()
        upcoming = iter(refs)
        ahead = max(self.plan.config.prefetch, 0) + 1

        def top_up() -> None:
            while len(queue) < ahead:
                ref = next(upcoming, None)
                if ref is None:
                    return
                queue.append((ref, pool.submit(self._read, ref)))

        top_up()
        while queue:
            ref, future = queue.popleft()
            top_up()
            try:
                data, stats = future.result()
            except Exception as error:  # noqa: BLE001 - any read problem fails this volume only
                self.fail(ref.id, _why(error))
                continue
            array = data.array
            self.readers.add(data.reader)
            self.info[ref.id] = {**stats, "fed": time.perf_counter()}
            fed.append(ref.id)
            yield ref.id, array
            del array, data  # the engine holds its own reference while it needs one

    def finish(self, ident: str, stats: dict[str, Any], probability: Any) -> VolumeResult:
        """Post-process and write one mask (runs on a worker thread)."""
        if tuple(probability.shape) != stats["shape"]:
            raise OfflinepackError(f"model output shape {tuple(probability.shape)} differs from the volume's {stats['shape']}")
        start = time.perf_counter()
        mask = postprocess(probability, self.plan.config.post)
        post_s = time.perf_counter() - start
        start = time.perf_counter()
        try:
            write_mask_tiff(mask, mask_path(self.plan.work_dir, ident))
        except OSError as error:  # e.g. disk full: this volume fails, the run reports it
            raise OfflinepackError(f"cannot write its mask in {self.plan.work_dir}: {error.strerror or error}") from error
        write_s = time.perf_counter() - start
        seconds = {"read": stats["read"], "inference": stats["inference"], "post": post_s, "write": write_s}
        result = volume_result(ident, stats, mask, seconds)
        save_sidecar(self.plan.work_dir, result, self.key)
        return result


def _process(run: _Run, refs: Sequence[Any], engine: VolumeEngine) -> None:
    workers = run.plan.config.workers
    with ThreadPoolExecutor(1, thread_name_prefix="offlinepack-read") as read_pool, ThreadPoolExecutor(
        workers, thread_name_prefix="offlinepack-post"
    ) as post_pool:
        pending: deque[tuple[str, Future]] = deque()

        def settle(limit: int) -> None:
            while pending and (len(pending) > limit or pending[0][1].done()):
                ident, future = pending.popleft()
                try:
                    result = future.result()
                except Exception as error:  # noqa: BLE001 - post-processing or writing failed this volume only
                    run.fail(ident, _why(error))
                    continue
                run.results[ident] = result
                run.report(ident, "ok", sum(result.seconds.values()))

        remaining = list(refs)
        while remaining:
            fed: list[str] = []  # one list per round: an abandoned round's thread cannot touch the next
            yielded: list[str] = []
            last = time.perf_counter()
            try:
                for ident, probability in engine.predict_many(run.feed(remaining, read_pool, fed)):
                    now = time.perf_counter()
                    info = run.info.pop(ident)
                    info["inference"] = now - max(info["fed"], last)
                    last = now
                    yielded.append(ident)
                    pending.append((ident, post_pool.submit(run.finish, ident, info, probability)))
                    del probability
                    settle(workers)
                remaining = []
            except Exception as error:  # the engine failed on one volume: record it, go on with the rest
                in_flight = [i for i in fed if i not in yielded]
                if not in_flight:
                    raise
                # several devices: the error names its volume ("volume <id>: ..."); one device: the oldest
                text = str(getattr(error, "message", error))
                bad = next((i for i in in_flight if text.startswith(f"volume {i}:")), in_flight[0])
                run.info.pop(bad, None)
                run.fail(bad, _why(error))
                # everything not yet yielded and not failed goes round again, in order
                remaining = [ref for ref in remaining if ref.id not in yielded and ref.id not in run.failures]
        settle(0)


def run_pipeline(
    config: RunConfig,
    *,
    progress: Progress | None = None,
    kaggle_root: Path = Path("/kaggle"),
    cwd: Path | None = None,
    temp_root: Path | None = None,
    engine_factory: EngineFactory | None = None,
    check_ready: bool = True,
    save_probabilities: ProbabilityWriter | None = None,
    from_probabilities: ProbabilitySet | None = None,
) -> RunReport:
    """Run everything and return what happened; raises OfflinepackError before any volume when it cannot start.

    `save_probabilities`: each volume's map is saved there too; `from_probabilities`: saved maps stand in for
    inference (no model needed; see offlinepack.probabilities)."""
    from offlinepack.volumes import find_inputs

    report_progress = progress or (lambda event: None)
    started, run_id, clock = utc_now(), new_run_id(), time.perf_counter()
    check_settings(config)  # bad values stop the run before it writes anything (no folder, no ledger record)
    plan = plan_run(config, kaggle_root=kaggle_root, cwd=cwd, temp_root=temp_root,
                    need_models=from_probabilities is None)
    config = plan.config
    created = check_writable(plan)
    try:
        doctor = readiness(plan, kaggle_root, config.force) if check_ready else None
        inputs = find_inputs(config.input, kaggle_root=kaggle_root)
    except BaseException:
        remove_empty(created)  # a run that could not start leaves no empty work folder behind
        raise
    sweep_stale_temp(plan)
    report_progress(RunProgress("ready", message=f"{len(inputs.volumes)} volume(s) from {inputs.root} ({inputs.source})"))
    models = from_probabilities.models if from_probabilities else model_files(plan.models)
    key_parts, probabilities = probability_key_parts(save_probabilities, from_probabilities)
    key = run_key([m["sha256"] for m in models], {"weights": config.weights, "folds": config.folds,
                                                  "post": config.post.to_dict(),
                                                  # compiled or eager: the same masks, so no recompute
                                                  "inference": {k: v for k, v in config.inference.items() if k != "compile"},
                                                  **key_parts})
    run = _Run(plan, key, report_progress, len(inputs.volumes) + len(inputs.missing_ids))
    for ident in inputs.missing_ids:
        run.fail(ident, "listed in test.csv but no volume file exists in test_images/")
    todo, reused = [], []
    for ref in inputs.volumes:
        unsaved = save_probabilities is not None and not (save_probabilities.folder / f"{ref.id}.npy").is_file()
        earlier = None if config.overwrite or unsaved else reusable(plan.work_dir, ref.id, Path(ref.path), key)
        if earlier is None:
            todo.append(ref)
        else:
            reused.append(earlier)
            if earlier.reader:
                run.readers.add(earlier.reader)
    report_progress(RunProgress("start", run.total, len(run.failures),
                                message=f"{len(reused)} mask(s) reused from {plan.work_dir}" if reused else None))
    for earlier in reused:  # counted one by one: [1/3] a: reused, [2/3] b: reused
        run.results[earlier.id] = earlier
        run.report(earlier.id, "reused", None)
    engine_info: dict[str, Any] | None = None
    zip_result: ZipResult | None = None
    seconds: dict[str, float] = {}
    stopped: str | None = None
    stopped_code = exit_codes.FAILED
    try:
        if todo:
            start = time.perf_counter()
            # compiled kernels cached in the work folder: a resumed run reuses them
            factory = engine_factory or partial(_default_engine, compile_cache=plan.work_dir / ".compile-cache")
            engine = open_engine(partial(_load_engine, factory), plan.models, config, models, inputs.root,
                                 save_probabilities, from_probabilities)
            engine_info = engine.describe()
            seconds["engine_setup"] = round(time.perf_counter() - start, 3)
            if (engine_info.get("compile") or {}).get("seconds") is not None:
                seconds["compile"] = engine_info["compile"]["seconds"]  # part of engine_setup, paid once
            _process(run, todo, engine)
            engine_info = engine.describe()  # a compile fall-back during the volumes is recorded too
        if config.on_error == "empty":
            _stand_in_empty_masks(run, inputs.volumes)
        if all(ident in run.results for ident in run.failures) and not inputs.missing_ids:
            report_progress(RunProgress("zip", run.total, run.total, message=str(plan.output)))
            start = time.perf_counter()
            order = [ref.id for ref in inputs.volumes]
            zip_result = write_submission_zip({i: mask_path(plan.work_dir, i) for i in order}, plan.output,
                                              {i: run.results[i].shape for i in order})
            seconds["zip"] = round(time.perf_counter() - start, 3)
    except BaseException as error:  # recorded in the ledger below, then passed on to the caller
        stopped = f"{type(error).__name__}: {getattr(error, 'message', error)}"
        stopped_code = stopped_exit_code(error)
        raise
    finally:
        seconds["total"] = round(time.perf_counter() - clock, 3)
        volumes = tuple(run.results[ref.id] for ref in inputs.volumes if ref.id in run.results)
        empty = tuple(v.id for v in volumes if v.empty_on_error)
        report = RunReport(run_id, plan.output, plan.work_dir, volumes, tuple(sorted(run.failures.items())),
                           zip_result, _ledger_paths(plan), plan.demo, doctor, seconds, empty)
        shared = report.to_dict()  # what the report and the record both say, said once
        record = RunRecord(
            run_id=run_id, started=started, finished=utc_now(),
            exit_code=stopped_code if stopped else report.exit_code,
            status="error" if stopped else ("ok" if report.exit_code == 0 else "failed"), error=stopped,
            output=shared["output"], work_dir=shared["work_dir"], demo=plan.demo,
            input={"root": str(inputs.root), "source": inputs.source, "volumes": len(inputs.volumes),
                   "missing_ids": list(inputs.missing_ids)},
            config=config.to_dict(), models=tuple(models), model_packs=tuple(model_pack_facts(plan.models)),
            wheelhouse=wheelhouse_fact(find_wheelhouse_manifest(kaggle_root=kaggle_root)),
            environment=environment_fact(engine_info, ",".join(sorted(run.readers)) or None),
            engine=engine_info, doctor=doctor, volumes=tuple(shared["volumes"]), failures=tuple(shared["failures"]),
            on_error=config.on_error, empty_masks=empty, submission=shared["submission"], seconds=seconds,
            probabilities=probabilities or None,
        )
        unrecorded = _append_everywhere(report.ledgers, record.to_dict())
        if unrecorded and stopped:  # the error that stopped the run is the one to raise; say this one too
            warnings.warn(f"run {run_id} could not be recorded: " + "; ".join(unrecorded), stacklevel=2)
    if unrecorded:
        outcome = [f"the run itself finished with exit code {report.exit_code}"
                   + (f"; {report.output} was written" if zip_result else f"; {report.output} was not replaced")]
        raise OfflinepackError(f"run {run_id} could not be recorded", problems=[*unrecorded, *outcome],
                               hint="free disk space where the ledger lives, or pass --ledger with a writable file")
    report_progress(RunProgress("done", run.total, run.total, message=str(plan.output)))
    return report


def _stand_in_empty_masks(run: _Run, refs: Sequence[Any]) -> None:
    """`--on-error empty`: an all-zero mask of the source's shape (from its TIFF headers) for each failed volume.
    A volume whose shape cannot be read (no file, no readable header, not 3D) stays failed, and then no zip."""
    from offlinepack.submission import tiff_shape

    paths = {ref.id: Path(ref.path) for ref in refs}
    for ident in list(run.failures):
        if ident in run.results or ident not in paths:
            continue
        try:
            shape = tiff_shape(paths[ident])
        except Exception as error:  # noqa: BLE001 - any header problem: no shape, no stand-in
            run.failures[ident] += f"; no empty mask either: its shape cannot be read ({type(error).__name__})"
            continue
        if len(shape) != 3:
            run.failures[ident] += f"; no empty mask either: its shape {shape} is not 3D"
            continue
        try:
            run.results[ident] = empty_mask_result(run.plan.work_dir, ident, shape)
        except OSError as error:
            run.failures[ident] += f"; no empty mask either: cannot write it ({error.strerror or error})"


def _append_everywhere(ledgers: Sequence[Path], record: dict[str, Any]) -> list[str]:
    """Append the record to every ledger, even when one fails (a full disk); returns what failed."""
    failed = []
    for path in ledgers:
        try:
            append_record(path, record)
        except OfflinepackError as error:
            failed.append(error.message)
    return failed


def _ledger_paths(plan: RunPlan) -> tuple[Path, ...]:
    beside = kaggle.ledger_in(plan.output.parent)
    extra = plan.config.ledger
    if extra is None or extra.resolve() == beside.resolve():
        return (beside,)
    return (beside, extra)
