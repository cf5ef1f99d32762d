"""The inference engine: models + settings -> surface probabilities for whole volumes.

`build_engine` loads every model (nnU-Net folder, TorchScript + sidecar, built-in U-Net), resolves
devices and precision, and returns an `Engine`. Volumes are spread over all visible GPUs in
`predict_many` (one worker thread per device, results yielded in input order); each GPU gets its own
copy of the networks. An ensemble's probabilities are averaged with the given weights. Batch size and
where sums live (GPU or host) come from a probe forward pass and the free GPU memory (a per-process
memory fraction is respected); out of memory halves the batch, then moves sums to the host, then
fails with a clear error. On CUDA the networks are compiled by default (see compiling.py); a
compile failure falls back to the eager networks, recorded in `describe()["compile"]`.
"""

from __future__ import annotations

import copy
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import logging

import numpy as np
import torch

from offlinepack.inference.compiling import CompileStatus, compile_networks, has_triton, use_compile_cache
from offlinepack.inference.inputs import Prefetcher, as_uint8_volume
from offlinepack.inference.sliding_window import OutOfMemory, WindowPlan, check_finite, forward_batch, is_oom, predict_model
from offlinepack.inference.settings import (
    InferenceError,
    InferenceSettings,
    MemoryPlan,
    accumulator_bytes,
    cpu_batch_size,
    plan_memory,
    resolve_compile,
    resolve_devices,
    resolve_precision,
    torch_warning,
)
from offlinepack.inference.tiling import mirror_combinations, tile_origins
from offlinepack.models.base import LoadedModel
from offlinepack.models.loader import load_model

ETA_SHAPE = (320, 320, 320)  # the competition's usual volume: the CPU warning, the compile warm-up's batch
log = logging.getLogger(__name__)


@dataclass
class _DeviceState:
    """One device's copy of the networks and what was measured on it (guarded by the engine's use of
    one worker thread per device)."""

    device: torch.device
    networks: list[list[torch.nn.Module]]  # what runs: compiled, or eager after a fall-back
    eager: list[list[torch.nn.Module]]  # the probe and the fall-back use these
    per_sample_bytes: dict[int, int] = field(default_factory=dict)
    sec_per_sample: dict[int, float] = field(default_factory=dict)
    batch_used: dict[int, int] = field(default_factory=dict)
    accumulate_on: dict[int, str] = field(default_factory=dict)


class Engine:
    """Runs an ensemble of loaded models; see the module docstring."""

    def __init__(self, models: Sequence[LoadedModel], weights: Sequence[float], settings: InferenceSettings,
                 devices: Sequence[str], precision: str, compile_status: CompileStatus | None = None) -> None:
        self.models = tuple(models)
        self.weights = tuple(weights)
        self.settings = settings
        self.precision = precision
        self.compile = compile_status or CompileStatus(settings.compile, False, "off", settings.compile_backend)
        self.mirror_axes = tuple(
            tuple(a for a in settings.mirror_axes if m.mirror_axes is None or a in m.mirror_axes) for m in self.models
        )
        self._states = []
        for index, name in enumerate(devices):
            device = torch.device(name)
            per_model = []
            for model in self.models:
                nets = [n if index == 0 else copy.deepcopy(n) for n in model.networks]
                per_model.append([_place(n, device) for n in nets])
            self._states.append(_DeviceState(device=device, networks=per_model, eager=per_model))
        if self.compile.enabled:
            try:
                for state in self._states:
                    state.networks = [compile_networks(nets, settings.compile_backend) for nets in state.eager]
            except Exception as error:  # noqa: BLE001 - e.g. an unknown backend: run eager, say why
                self._fall_back(error, "when wrapping the networks")
        if any(s.device.type == "cuda" for s in self._states):
            torch.backends.cudnn.benchmark = True  # fixed patch shapes: the autotuned kernels pay off

    # --- public API -------------------------------------------------------------------------
    def predict(self, volume: np.ndarray, volume_id: str = "volume") -> np.ndarray:
        """(Z, H, W) uint8 -> (Z, H, W) float16 surface probability (on the first device)."""
        return self._predict_on(self._states[0], as_uint8_volume(volume, volume_id), volume_id)

    def predict_many(self, items: Iterable[tuple[str, np.ndarray]]) -> Iterator[tuple[str, np.ndarray]]:
        """Yields (id, probability) in input order; volumes are read ahead on a background thread and
        spread over every device."""
        prefetch = Prefetcher(items, depth=len(self._states) + 1)
        try:
            if len(self._states) == 1:
                for _, volume_id, volume in prefetch:
                    yield volume_id, self._predict_on(self._states[0], volume, volume_id)
            else:
                yield from self._spread(prefetch)
        finally:
            prefetch.close()

    def estimate_seconds(self, shape: Sequence[int]) -> float | None:
        """Seconds one volume of `shape` takes on one device, from a timed forward pass per model
        (batch 1, so batched GPU runs come out faster). None when a model cannot be probed."""
        state = self._states[0]
        total = 0.0
        for index, model in enumerate(self.models):
            try:
                seconds = self._probe(state, index)[1]
            except Exception:  # noqa: BLE001 - an estimate must never break a run
                return None
            transposed = [int(shape[a]) for a in model.preprocessing.transpose_forward]
            padded = [max(s, p) for s, p in zip(transposed, model.patch_size)]
            tiles = len(tile_origins(padded, model.patch_size, self.settings.step_size))
            passes = tiles * len(mirror_combinations(self.mirror_axes[index]))
            total += passes * seconds  # folds are inside the timed forward
        return total

    def describe(self) -> dict:
        cuda = [s.device for s in self._states if s.device.type == "cuda"]
        return {
            "devices": [str(s.device) for s in self._states],
            "device_names": [torch.cuda.get_device_name(d) for d in cuda] or ["cpu"],
            "precision": self.precision,
            "step_size": self.settings.step_size,
            "batch_size": self.settings.batch_size or "auto",
            "batch_size_used": {str(s.device): dict(s.batch_used) for s in self._states},
            "accumulation": {str(s.device): dict(s.accumulate_on) for s in self._states},
            "compile": self.compile.to_dict(),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if cuda else None,
            "models": [
                {**m.describe(), "weight": w, "mirror_axes": list(axes)}
                for m, w, axes in zip(self.models, self.weights, self.mirror_axes)
            ],
        }

    def warm_up(self, shape: Sequence[int] = ETA_SHAPE) -> None:
        """Compile now, at the batch size a volume of `shape` will use, so the cost is paid once per
        run and reported on its own (describe()["compile"]["seconds"]); a failure falls back to eager."""
        if not self.compile.enabled:
            return
        for state in self._states:
            for index, model in enumerate(self.models):
                transposed = tuple(int(shape[a]) for a in model.preprocessing.transpose_forward)
                batch = self._memory_plan(state, index, transposed).batch_size
                x = torch.zeros((batch, 1, *model.patch_size), device=state.device)
                start = time.perf_counter()
                try:
                    with torch.inference_mode():
                        forward_batch(state.networks[index], x, self.precision)
                    if state.device.type == "cuda":
                        torch.cuda.synchronize(state.device)
                except Exception as error:  # noqa: BLE001 - out of memory is left to the run's ladder
                    if is_oom(error):
                        log.warning("compile warm-up out of memory at batch %d: compiling at the first volume", batch)
                        if state.device.type == "cuda":
                            torch.cuda.empty_cache()
                        continue
                    self._fall_back(error, f"compiling model {model.name} on {state.device}")
                    return
                finally:
                    del x
                self.compile.add_seconds(time.perf_counter() - start)
                log.info("compiled model %s on %s at batch %d in %.1f s", model.name, state.device, batch,
                         time.perf_counter() - start)

    # --- internals ----------------------------------------------------------------------------
    def _fall_back(self, error: BaseException, where: str) -> None:
        self.compile.fail(error, where)
        for state in self._states:
            state.networks = state.eager

    def _spread(self, prefetch: Prefetcher) -> Iterator[tuple[str, np.ndarray]]:
        source = iter(prefetch)
        source_lock = threading.Lock()
        done = threading.Condition()
        results: dict[int, tuple[str, np.ndarray]] = {}
        errors: list[BaseException] = []
        running = [len(self._states)]

        def work(state: _DeviceState) -> None:
            try:
                while not errors:
                    with source_lock:
                        item = next(source, None)
                    if item is None:
                        return
                    index, volume_id, volume = item
                    out = self._predict_on(state, volume, volume_id)
                    with done:
                        results[index] = (volume_id, out)
                        done.notify_all()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
                errors.append(exc)
            finally:
                with done:
                    running[0] -= 1
                    done.notify_all()

        threads = [threading.Thread(target=work, args=(s,), daemon=True, name=f"offlinepack-{s.device}") for s in self._states]
        for t in threads:
            t.start()
        next_index = 0
        while True:
            with done:
                while next_index not in results and not errors and running[0] > 0:
                    done.wait()
                if errors:
                    raise errors[0]
                if next_index not in results:
                    return
                item = results.pop(next_index)
            next_index += 1
            yield item

    def _predict_on(self, state: _DeviceState, volume: np.ndarray, volume_id: str) -> np.ndarray:
        host = torch.from_numpy(volume)
        if state.device.type == "cuda":
            host = host.pin_memory()
        tensor = host.to(state.device, non_blocking=True)
        total = None
        for index, (model, weight) in enumerate(zip(self.models, self.weights)):
            probability = self._run_model(state, index, tensor, volume_id) * weight
            total = probability if total is None else total + probability
        check_finite(total, volume_id)
        return total.to(torch.float16).contiguous().cpu().numpy()

    def _run_model(self, state: _DeviceState, index: int, volume: torch.Tensor, volume_id: str) -> torch.Tensor:
        model = self.models[index]
        memory = self._memory_plan(state, index, tuple(volume.shape))
        plan = WindowPlan(memory.batch_size, memory.accumulate_on, self.precision, self.mirror_axes[index], self.settings.step_size,
                       pad_batch=self.compile.enabled)
        while True:
            try:
                probability, batch = predict_model(model, state.networks[index], volume, plan)
            except InferenceError:
                raise
            except OutOfMemory:
                if plan.accumulate_on == "host":
                    raise InferenceError(
                        f"volume {volume_id}: CUDA out of memory on {state.device} with model {model.name} "
                        f"(patch {list(model.patch_size)}), even at batch size 1 with sums in host memory",
                        hint="free GPU memory (other processes?), use a model with a smaller patch, or --device cpu",
                    ) from None
                warnings.warn(f"volume {volume_id}: out of GPU memory on {state.device}: keeping sums in host memory (slower)", stacklevel=2)
                plan = WindowPlan(1, "host", plan.precision, plan.mirror_axes, plan.step_size, plan.pad_batch)
                continue
            except Exception as error:  # noqa: BLE001 - a compiled graph that fails (e.g. recompiling) -> eager
                if not self.compile.enabled or state.networks[index] is state.eager[index]:
                    raise
                self._fall_back(error, f"on volume {volume_id}")
                plan = replace(plan, pad_batch=False)
                continue
            state.batch_used[index] = batch
            state.accumulate_on[index] = plan.accumulate_on
            return probability

    def _memory_plan(self, state: _DeviceState, index: int, shape: tuple[int, ...]) -> MemoryPlan:
        model = self.models[index]
        if state.device.type != "cuda":
            # the compute device is the host: "device" here keeps the same fallback ladder as on a GPU
            return MemoryPlan(self.settings.batch_size or state.batch_used.get(index) or cpu_batch_size(model.patch_size), "device")
        per_sample = self._probe(state, index)[0]
        accumulator = accumulator_bytes(shape, model.patch_size, model.num_outputs)
        plan = plan_memory(_free_cuda_bytes(state.device), per_sample, accumulator)
        batch = self.settings.batch_size or min(plan.batch_size, state.batch_used.get(index, plan.batch_size))
        return MemoryPlan(batch, plan.accumulate_on)

    def _probe(self, state: _DeviceState, index: int) -> tuple[int, float]:
        """(peak bytes of one batch-1 forward, its seconds); measured once per device and model.
        The first pass warms up (cuDNN's autotuner on CUDA) and the second is timed."""
        if index in state.sec_per_sample:
            return state.per_sample_bytes.get(index, 0), state.sec_per_sample[index]
        model = self.models[index]
        x = torch.zeros((1, 1, *model.patch_size), device=state.device)
        with torch.inference_mode():
            if state.device.type == "cuda":
                torch.cuda.synchronize(state.device)
                torch.cuda.reset_peak_memory_stats(state.device)
                base = torch.cuda.memory_allocated(state.device)
            forward_batch(state.eager[index], x, self.precision)  # warm-up (and cuDNN autotuning)
            if state.device.type == "cuda":
                torch.cuda.synchronize(state.device)
                state.per_sample_bytes[index] = torch.cuda.max_memory_allocated(state.device) - base
            start = time.perf_counter()
            forward_batch(state.eager[index], x, self.precision)
            if state.device.type == "cuda":
                torch.cuda.synchronize(state.device)
            state.sec_per_sample[index] = time.perf_counter() - start
        return state.per_sample_bytes.get(index, 0), state.sec_per_sample[index]


def _place(network: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    network = network.to(device)
    try:
        network.eval()
    except NotImplementedError:
        pass  # torch.export modules refuse eval(); they are exported in inference form already
    return network


def _free_cuda_bytes(device: torch.device) -> int:
    """Bytes this process may still allocate: the device's free memory plus the allocator's cached
    blocks, capped by torch.cuda.set_per_process_memory_fraction when one is set."""
    free, total = torch.cuda.mem_get_info(device)
    allocated = torch.cuda.memory_allocated(device)
    cached = torch.cuda.memory_reserved(device) - allocated
    fraction = torch.cuda.get_per_process_memory_fraction(device) if hasattr(torch.cuda, "get_per_process_memory_fraction") else 1.0
    return int(min(free + cached, fraction * total - allocated))


def build_engine(
    model_paths: Sequence[Path],
    *,
    weights: Sequence[float] | None = None,
    folds: Sequence[int] | None = None,
    settings: InferenceSettings = InferenceSettings(),
    cuda_count: int | None = None,
    compile_cache: Path | None = None,
) -> Engine:
    """Load models and prepare devices. `folds` applies to nnU-Net folders; `weights` (one per model,
    >= 0, not all 0) weight the ensemble's probability average. `cuda_count` defaults to the visible GPUs.
    When the networks are compiled (see compiling.py), inductor's caches go to `compile_cache` and the
    compilation happens here, before the first volume."""
    if not model_paths:
        raise InferenceError("no model given", hint="pass at least one model path")
    if weights is not None:
        problems = []
        if len(weights) != len(model_paths):
            problems.append(f"{len(weights)} weights for {len(model_paths)} models")
        if any(w < 0 for w in weights) or not sum(weights) > 0:
            problems.append(f"weights must be >= 0 and not all 0, got {list(weights)}")
        if problems:
            raise InferenceError("invalid ensemble weights", problems=problems)
    weights = [float(w) for w in (weights or [1.0] * len(model_paths))]
    weights = [w / sum(weights) for w in weights]
    models = [load_model(Path(p), folds) for p in model_paths]
    if cuda_count is None:
        cuda_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    devices = resolve_devices(settings.device, cuda_count)
    first = torch.device(devices[0])
    capability = torch.cuda.get_device_capability(first) if first.type == "cuda" else None
    cudnn = torch.backends.cudnn.version() if first.type == "cuda" else None
    precision, note = resolve_precision(settings.precision, first.type, capability, cudnn)
    for message in (note, torch_warning(torch.__version__) if first.type == "cuda" else None):
        if message:
            warnings.warn(message, stacklevel=2)
    for model in models:
        if model.mirror_axes is not None and set(settings.mirror_axes) - set(model.mirror_axes):
            warnings.warn(
                f"model {model.name} allows mirroring only over axes {list(model.mirror_axes)}: "
                f"TTA uses those of {list(settings.mirror_axes)} only",
                stacklevel=2,
            )
    enabled, why = resolve_compile(settings.compile, first.type, torch.__version__, sys.version_info[:2],
                                   has_triton() if first.type == "cuda" else True)
    if settings.compile is True and not enabled:
        warnings.warn(f"torch.compile requested but {why.removeprefix('off: ')}", stacklevel=2)
    status = CompileStatus(settings.compile, enabled, why, settings.compile_backend,
                           cache_dir=use_compile_cache(compile_cache) if enabled else None)
    engine = Engine(models, weights, settings, devices, precision, status)
    engine.warm_up(ETA_SHAPE)
    if first.type == "cpu":
        eta = engine.estimate_seconds(ETA_SHAPE)
        eta_text = f"about {eta:.0f} s per {'x'.join(map(str, ETA_SHAPE))} volume" if eta is not None else "time unknown"
        reason = "no CUDA GPU visible" if settings.device == "auto" else "device cpu requested"
        warnings.warn(f"{reason}: running on CPU, which is slow ({eta_text})", stacklevel=2)
    return engine

