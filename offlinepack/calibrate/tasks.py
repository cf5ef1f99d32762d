"""The unit of work: one labelled volume x a list of settings -> their scores; and where it runs.

A task names files, not arrays: every worker (a local process or a Dask worker) reads the maps and the
label from the shared path once and keeps them (with the volume's histogram) while tasks for that volume
come; a mask already scored for that volume (two settings, same mask) is not scored again, per scorer. Work
that does not depend on the setting (read, decode, histogram, ensemble mean, the centre crop) is thus done
once per worker and volume, and within a task the settings that share a threshold share its mask and its
component labelling (`post_masks`: only the size cut, hole filling and later steps run per setting).

Scorers: `leaderboard_score` (exact: TopoScore + SurfaceDice + VOI; ~90 % of its time is the Betti matching)
and `cheap_score` (SurfaceDice and VOI only, their leaderboard weights renormalised: ~10x cheaper at 320^3),
which the halving search uses to screen settings. `crop=True` post-processes and scores the volume's centre
crop (half of each side, 1/8 of the voxels) with the whole volume's histogram, so a per-volume rule gives the
crop the volume's threshold.

Executors: `LocalPool` (processes, the default; 1 worker runs inline) and `DaskPool` (`--scheduler
ADDRESS`, optional extra `dask`): tasks submitted with retries, results streamed back as they finish; a
lost worker's tasks are run again elsewhere by Dask itself.
"""

from __future__ import annotations

import hashlib
import math
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


def cheap_score(mask: np.ndarray, label: np.ndarray) -> float:
    """SurfaceDice and the VOI score with equal weights (the leaderboard's 0.35/0.35 renormalised), no
    TopoScore: a screening proxy (Spearman 0.85-0.997 with the exact score over grid settings, BENCHMARKS.md).
    It is blind to sheets broken into holes by a high threshold, hence several finalists get the exact score."""
    from offlinepack.score.metric import foreground_masks
    from offlinepack.score.surface_dice import surface_dice
    from offlinepack.score.voi import VOI_ALPHA, voi

    pred_fg, label_fg = foreground_masks(mask, label)
    return min(1.0, max(0.0, 0.5 * surface_dice(pred_fg, label_fg) + 0.5 * voi(pred_fg, label_fg, VOI_ALPHA).score))


def centre_crop(shape: Sequence[int]) -> tuple[slice, ...]:
    """The centre box with half of each side (1/8 of the voxels)."""
    return tuple(slice(n // 4, n // 4 + max(n // 2, 1)) for n in shape)


def post_masks(probability: np.ndarray, posts: Sequence[Any], histogram: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(index, mask) of each PostConfig in `posts`, the same masks as `post.postprocess_checked`, with the
    prefixes shared: settings with the same volume threshold (and hysteresis) threshold and label once;
    only the component cut and the later steps run per setting. Yields in threshold order."""
    from offlinepack.post import postprocess_checked, volume_threshold
    from offlinepack.post.process import _label, components_backend, finish_mask, threshold_mask

    groups: dict[tuple, list[int]] = {}
    for index, post in enumerate(posts):
        simple = post.min_component_mean_probability == 0.0 and post.closing_radius == 0
        groups.setdefault((simple, components_backend(post.components_backend),
                           volume_threshold(post, histogram)), []).append(index)
    for (simple, backend, (threshold, low)), members in sorted(groups.items(), key=lambda kv: repr(kv[0])):
        if not simple or len(members) == 1:
            for index in members:
                yield index, postprocess_checked(probability, posts[index], histogram)
            continue
        thresholded = threshold_mask(probability, threshold, low, backend)
        labels, count = _label(thresholded, backend) if thresholded.any() else (None, 0)
        sizes = np.bincount(labels.ravel(), minlength=count + 1) if count else None
        for index in members:
            post = posts[index]
            if count and post.min_component_voxels > 1:  # post.topology.filter_components, sizes counted once
                keep = sizes >= post.min_component_voxels
                keep[0] = False
                mask = np.take(keep, labels)
            else:
                mask = thresholded
            yield index, finish_mask(mask, post, backend)


_MALLOC_TUNED = False


def _undo_fixed_malloc_threshold() -> None:
    """Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_ set, which also freezes glibc's mmap threshold
    at 128 KiB: every 4-128 MB array of a task is then a fresh mmap, zeroed page by page (the crop rung ran
    2x slower on Dask than on the process pool). Set the thresholds glibc itself reaches after warm-up."""
    global _MALLOC_TUNED
    if _MALLOC_TUNED:
        return
    _MALLOC_TUNED = True
    import os
    import sys

    if not sys.platform.startswith("linux") or not os.environ.get("MALLOC_TRIM_THRESHOLD_"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 * 1024 * 1024)  # M_MMAP_THRESHOLD: glibc's dynamic maximum
        libc.mallopt(-1, 64 * 1024 * 1024)  # M_TRIM_THRESHOLD: twice that, as glibc sets it
    except (OSError, AttributeError):  # not glibc (musl): nothing to undo
        pass


def score_settings(item: VolumeItem, settings: Sequence[Any],
                   scorer: Callable[[np.ndarray, np.ndarray], float] = leaderboard_score,
                   crop: bool = False) -> list[float]:
    """Scores of `settings` (setting dicts, or PostConfig values) on one volume (runs on a worker);
    `crop`: on the volume's centre crop (see the module doc)."""
    from offlinepack.calibrate.space import to_post
    from offlinepack.post import PostConfig

    _undo_fixed_malloc_threshold()
    entry = _load(item)
    probability, label = entry["probability"], entry["label"]
    if crop:
        if "crop" not in entry:
            box = centre_crop(probability.shape)
            entry["crop"] = (np.ascontiguousarray(probability[box]), np.ascontiguousarray(label[box]))
        probability, label = entry["crop"]
    scores = entry["scores"].setdefault((getattr(scorer, "__module__", ""), getattr(scorer, "__qualname__", repr(scorer)),
                                         crop), {})
    posts = [setting if isinstance(setting, PostConfig) else to_post(setting) for setting in settings]
    out: list[float] = [0.0] * len(posts)
    for index, mask in post_masks(probability, posts, entry["histogram"]):
        digest = hashlib.blake2b(np.packbits(mask).tobytes(), digest_size=16).hexdigest()
        if digest not in scores:
            scores[digest] = float(scorer(mask, label))
        out[index] = scores[digest]
    return out


class ScoreMatrix:
    """Scores of settings (rows) on volumes (columns), filled round by round through a pool."""

    def __init__(self, items: Sequence[VolumeItem], pool: Any, scorer: Callable, workers: int,
                 crop: bool = False) -> None:
        self.items, self.pool, self.scorer, self.workers = list(items), pool, scorer, max(workers, 1)
        self.crop = crop
        self.settings: list[dict[str, Any]] = []
        self.index: dict[str, int] = {}
        self.rows: list[np.ndarray] = []
        self.evaluations = 0

    def add(self, settings: Sequence[dict[str, Any]]) -> list[int]:
        from offlinepack.calibrate import space

        out = []
        for setting in settings:
            k = space.key(setting)
            if k not in self.index:
                self.index[k] = len(self.settings)
                self.settings.append(space.canonical(setting))
                self.rows.append(np.full(len(self.items), np.nan))
            out.append(self.index[k])
        return out

    @property
    def matrix(self) -> np.ndarray:
        return np.vstack(self.rows) if self.rows else np.empty((0, len(self.items)))

    def fill(self, rows: Sequence[int], columns: Sequence[int]) -> None:
        """Score `rows` on `columns` (only the missing cells), volume-major so workers reuse their cache:
        one task per volume when there are enough volumes to keep every worker busy (each volume is then
        read once), else each volume's settings split so there are ~4 tasks per worker."""
        tasks, where = [], []
        splits = max(1, math.ceil(4 * self.workers / max(len(columns), 1)))
        for column in columns:
            todo = [r for r in rows if math.isnan(self.rows[r][column])]
            if not todo:
                continue
            chunk = max(1, math.ceil(len(todo) / splits))
            for start in range(0, len(todo), chunk):
                part = todo[start:start + chunk]
                tasks.append((self.items[column], [self.settings[r] for r in part], self.scorer, self.crop))
                where.append((column, part))
        for index, scores in self.pool.run(score_settings, tasks):
            column, part = where[index]
            for row, value in zip(part, scores):
                self.rows[row][column] = value
            self.evaluations += len(part)


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
