"""`VolumeEngine`: what the run pipeline asks of an inference engine (no torch here).

`inference.Engine` is one; so are the probability maps being saved or read back (offlinepack.probabilities)
and any test's stand-in: typed by what they do, not by class.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np


class VolumeEngine(Protocol):
    def predict_many(self, items: Iterable[tuple[str, np.ndarray]]) -> Iterator[tuple[str, np.ndarray]]:
        """(id, uint8 volume) in -> (id, float probability of the same shape) out, in input order."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON facts for the ledger: devices, precision, batch, compile status, models."""
        ...


# builds the engine from the model paths and the run's config (offlinepack.run.config.RunConfig)
EngineFactory = Callable[[Sequence[Path], Any], VolumeEngine]
