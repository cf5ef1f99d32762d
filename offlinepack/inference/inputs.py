"""Volumes going into the engine: shape/dtype checks and a background-thread prefetcher."""

from __future__ import annotations

import queue
import threading
import warnings
from collections.abc import Iterable, Iterator

import numpy as np

from offlinepack.inference.settings import InferenceError

_DONE = object()


def as_uint8_volume(volume: np.ndarray, volume_id: str) -> np.ndarray:
    """Check a (Z, H, W) volume; convert other dtypes to uint8 with a warning (see `check_volume`)."""
    checked, note = check_volume(volume, volume_id)
    if note:
        warnings.warn(note, stacklevel=3)
    return checked


def check_volume(volume: np.ndarray, volume_id: str) -> tuple[np.ndarray, str | None]:
    """(uint8 volume, note about a conversion or None); raises InferenceError for unusable input.

    Decided by the value range: floats within [0, 1] are normalised intensities and are scaled by 255;
    other values already within 0..255 are rounded; anything else is rescaled linearly from its min..max
    to 0..255 (the models were trained on the competition's uint8 volumes)."""
    volume = np.asarray(volume)
    if volume.ndim != 3:
        kind = {2: "2D", 4: "4D"}.get(volume.ndim, f"{volume.ndim}D")
        raise InferenceError(
            f"volume {volume_id} is {kind} with shape {volume.shape}; expected a 3D (Z, H, W) volume",
            hint="pass the whole multipage TIFF stack, one channel" if volume.ndim != 2 else "a single page is not a volume: read every page",
        )
    if min(volume.shape) == 0:
        raise InferenceError(f"volume {volume_id} is empty (shape {volume.shape})")
    if volume.dtype == np.uint8:
        return np.ascontiguousarray(volume), None
    if volume.dtype.kind not in "biuf":
        raise InferenceError(f"volume {volume_id} has dtype {volume.dtype}; expected uint8 (or numbers)")
    values = volume.astype(np.float32, copy=False)
    if not np.isfinite(values).all():
        raise InferenceError(f"volume {volume_id} contains NaN or inf values")
    low, high = float(values.min()), float(values.max())
    if volume.dtype.kind == "f" and low >= 0 and high <= 1:
        # normalised intensities (ToTensor-style 0..1): rounding would leave only 0 and 1
        converted = np.rint(values * 255.0).astype(np.uint8)
        how = "values within [0, 1] taken as normalised intensities: scaled by 255"
    elif low >= 0 and high <= 255:
        converted = np.rint(values).astype(np.uint8)
        how = "rounded"
    else:
        scale = 255.0 / (high - low) if high > low else 0.0
        converted = np.rint((values - low) * scale).astype(np.uint8)
        how = f"rescaled from [{low:g}, {high:g}] to [0, 255]"
    return converted, f"volume {volume_id}: dtype {volume.dtype} converted to uint8 ({how})"


class Prefetcher:
    """Reads (id, volume) items on a background thread, `depth` ahead of the consumer, so disk reads
    and dtype checks overlap GPU work. Errors from the source are re-raised in the consumer."""

    def __init__(self, items: Iterable[tuple[str, np.ndarray]], depth: int = 2) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(iter(items),), daemon=True, name="offlinepack-prefetch")
        self._thread.start()

    def _run(self, items: Iterator[tuple[str, np.ndarray]]) -> None:
        try:
            for index, (volume_id, volume) in enumerate(items):
                checked, note = check_volume(volume, str(volume_id))
                if not self._put((index, str(volume_id), checked, note)):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
            self._put(exc)
            return
        self._put(_DONE)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[tuple[int, str, np.ndarray]]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            index, volume_id, volume, note = item
            if note:  # warned on the consumer's thread, where callers catch warnings
                warnings.warn(note, stacklevel=2)
            yield index, volume_id, volume

    def close(self) -> None:
        self._stop.set()
