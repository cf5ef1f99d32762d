"""score_pairs: many volumes, in parallel processes when there are several, each read by the worker itself.

With at least as many volumes as workers, each process scores whole volumes (no data crosses processes but the
result); with fewer, volumes go one at a time and each one's tiles and SurfaceDice share the workers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import as_completed
from dataclasses import dataclass

from offlinepack.errors import OfflinepackError
from offlinepack.score.files import VolumePair, read_label, read_prediction
from offlinepack.score.metric import VolumeScore, process_pool, score_volume


@dataclass(frozen=True, slots=True)
class ScoredVolume:
    id: str
    result: VolumeScore
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, **self.result.to_dict(), "seconds": round(self.seconds, 3)}


def score_pair(pair: VolumePair, workers: int = 1) -> ScoredVolume:
    """Read and score one pair."""
    start = time.perf_counter()
    pred = read_prediction(pair.prediction)
    label = read_label(pair.label)
    if pred.shape != label.shape:
        raise OfflinepackError(f"id {pair.id}: mask shape {pred.shape} != label shape {label.shape}",
                               hint="a mask must be a (Z, H, W) multipage TIFF of exactly its volume's shape")
    result = score_volume(pred, label, workers=workers)
    return ScoredVolume(pair.id, result, time.perf_counter() - start)


def _score_pair_in_worker(pair: VolumePair) -> ScoredVolume | tuple[str, str | None, tuple[str, ...]]:
    """score_pair, with an OfflinepackError returned as plain values (its hint would not survive pickling)."""
    try:
        return score_pair(pair)
    except OfflinepackError as error:
        return error.message, error.hint, error.problems


def score_pairs(pairs: tuple[VolumePair, ...], workers: int = 1) -> Iterator[ScoredVolume]:
    """Each pair's score, in the order they finish."""
    if workers <= 1 or len(pairs) < workers:
        for pair in pairs:
            yield score_pair(pair, workers=workers)
        return
    with process_pool(workers) as pool:
        jobs = [pool.submit(_score_pair_in_worker, pair) for pair in pairs]
        for job in as_completed(jobs):
            outcome = job.result()
            if not isinstance(outcome, ScoredVolume):
                for other in jobs:
                    other.cancel()
                raise OfflinepackError(outcome[0], hint=outcome[1], problems=outcome[2])
            yield outcome
