"""The unit of work: one labelled volume x a list of settings -> their scores; and where it runs.

A task names files, not arrays: every worker (a local process or a Dask worker) reads the maps and the
label from the shared path once and keeps them (with the volume's histogram) while tasks for that volume
come; a mask already scored for that volume (two settings, same mask) is not scored again. Work that does
not depend on the setting (read, decode, histogram, ensemble mean) is thus done once per worker and volume.

Executors: `LocalPool` (processes, the default; 1 worker runs inline) and `DaskPool` (`--scheduler
ADDRESS`, optional extra `dask`): tasks submitted with retries, results streamed back as they finish; a
lost worker's tasks are run again elsewhere by Dask itself.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import numpy as np

from offlinepack.errors import OfflinepackError

CACHED_VOLUMES = 2  # per worker: 320^3 float32 map + label is ~156 MiB each


@dataclass(frozen=True)
class VolumeItem:
    """A labelled volume as workers see it: saved maps (ensemble members with weights) and the label."""

    id: str
    maps: tuple[tuple[str, float], ...]  # (path of <id>.npy, weight)
    label: str  # path of the label TIFF

    @property
    def cache_key(self) -> tuple:
        return (self.maps, self.label)


_VOLUMES: OrderedDict[tuple, dict[str, Any]] = OrderedDict()


def _load(item: VolumeItem) -> dict[str, Any]:
    """The volume's map (weighted mean of its members), histogram and label, cached per worker."""
    cached = _VOLUMES.get(item.cache_key)
    if cached is not None:
        _VOLUMES.move_to_end(item.cache_key)
        return cached
    from pathlib import Path

    from offlinepack.post import probability_histogram
    from offlinepack.probabilities import load_map
    from offlinepack.score.files import read_label

    total = sum(w for _, w in item.maps)
    probability = None
    for path, weight in item.maps:
        member = load_map(Path(path))
        if probability is not None and member.shape != probability.shape:
            raise OfflinepackError(f"volume {item.id}: ensemble members' maps differ in shape "
                                   f"({probability.shape} vs {member.shape} in {path})")
        part = member * np.float32(weight / total)
        probability = part if probability is None else probability + part
    label = read_label(Path(item.label))
    if probability.shape != label.shape:
        raise OfflinepackError(f"volume {item.id}: probability map shape {probability.shape} differs from its "
                               f"label's {label.shape} ({item.label})")
    entry = {"probability": probability, "histogram": probability_histogram(probability), "label": label,
             "scores": {}}
    _VOLUMES[item.cache_key] = entry
    while len(_VOLUMES) > CACHED_VOLUMES:
        _VOLUMES.popitem(last=False)
    return entry


def leaderboard_score(mask: np.ndarray, label: np.ndarray) -> float:
    """The competition's per-volume score, clipped to [0, 1] (offlinepack.score)."""
    from offlinepack.score import score_volume

    return float(score_volume(mask, label).score)


def score_settings(item: VolumeItem, settings: Sequence[Any],
                   scorer: Callable[[np.ndarray, np.ndarray], float] = leaderboard_score) -> list[float]:
    """Scores of `settings` (setting dicts, or PostConfig values) on one volume (runs on a worker)."""
    from offlinepack.calibrate.space import to_post
    from offlinepack.post import PostConfig, postprocess_checked

    entry = _load(item)
    out = []
    for setting in settings:
        post = setting if isinstance(setting, PostConfig) else to_post(setting)
        mask = postprocess_checked(entry["probability"], post, entry["histogram"])
        digest = hashlib.blake2b(np.packbits(mask).tobytes(), digest_size=16).hexdigest()
        if digest not in entry["scores"]:
            entry["scores"][digest] = float(scorer(mask, entry["label"]))
        out.append(entry["scores"][digest])
    return out


class LocalPool:
    """Processes on this machine (`workers` = 1: inline, no process start)."""

    def __init__(self, workers: int | None = None) -> None:
        from offlinepack.score.metric import default_workers  # the CPUs this process may use

        self.workers = workers or default_workers()
        self._pool: ProcessPoolExecutor | None = None

    def describe(self) -> dict[str, Any]:
        return {"kind": "local", "workers": self.workers}

    def run(self, function: Callable, tasks: Sequence[tuple]) -> Iterator[tuple[int, Any]]:
        """(index, result) per task as each finishes."""
        if self.workers == 1:
            for index, args in enumerate(tasks):
                yield index, function(*args)
            return
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers)
        futures = {self._pool.submit(function, *args): index for index, args in enumerate(tasks)}
        for future in as_completed(futures):
            yield futures[future], future.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


class DaskPool:
    """An existing Dask distributed cluster; the workers must see the same paths (a shared folder)."""

    def __init__(self, address: str, retries: int = 3, connect_timeout: str = "20s") -> None:
        try:
            from distributed import Client
        except ImportError:
            raise OfflinepackError("--scheduler needs Dask distributed, which is not installed",
                                   hint="pip install 'offlinepack[dask]' (or distributed) on this machine and "
                                        "on every worker") from None
        try:
            self.client = Client(address, timeout=connect_timeout)
        except (OSError, TimeoutError) as error:
            raise OfflinepackError(f"cannot reach the Dask scheduler at {address}: {error}",
                                   hint="start one with `dask scheduler` and workers with "
                                        "`dask worker ADDRESS`") from None
        self.address, self.retries = address, retries

    def describe(self) -> dict[str, Any]:
        return {"kind": "dask", "scheduler": self.address,
                "workers": len(self.client.scheduler_info().get("workers", {}))}

    def run(self, function: Callable, tasks: Sequence[tuple]) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed as dask_completed

        futures = {}
        for index, args in enumerate(tasks):
            # pure=False: identical arguments in a later round are new work; retries cover lost workers
            futures[self.client.submit(function, *args, retries=self.retries, pure=False)] = index
        for future in dask_completed(list(futures)):
            yield futures[future], future.result()

    def close(self) -> None:
        self.client.close()


def open_pool(scheduler: str | None = None, workers: int | None = None) -> LocalPool | DaskPool:
    return DaskPool(scheduler) if scheduler else LocalPool(workers)
