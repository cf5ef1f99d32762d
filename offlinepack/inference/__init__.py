"""Sliding-window inference for 3D volumes (run side only).

`build_engine(model_paths, weights=..., folds=..., settings=InferenceSettings(...)) -> Engine`;
`Engine.predict(volume)`, `Engine.predict_many(items)`, `Engine.describe()`, `Engine.estimate_seconds(shape)`.

torch is imported only when `Engine` or `build_engine` is first used, so the settings
(`inference/settings.py`, the one declaration run.toml's [inference] is checked against) load without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from offlinepack.inference.settings import InferenceError, InferenceSettings
from offlinepack.inference.volume_engine import EngineFactory, VolumeEngine
from offlinepack.models.errors import ModelLoadError

if TYPE_CHECKING:
    from offlinepack.inference.engine import Engine, build_engine

__all__ = ["Engine", "EngineFactory", "InferenceError", "InferenceSettings", "ModelLoadError", "VolumeEngine",
           "build_engine"]


def __getattr__(name: str) -> Any:
    if name in ("Engine", "build_engine"):
        from offlinepack.inference import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
