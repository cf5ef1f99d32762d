"""Sliding-window inference for 3D volumes (imports torch: run side only).

`build_engine(model_paths, weights=..., folds=..., settings=InferenceSettings(...)) -> Engine`;
`Engine.predict(volume)`, `Engine.predict_many(items)`, `Engine.describe()`, `Engine.estimate_seconds(shape)`.
"""

from offlinepack.inference.engine import Engine, build_engine
from offlinepack.inference.settings import InferenceError, InferenceSettings
from offlinepack.models.errors import ModelLoadError

__all__ = ["Engine", "InferenceError", "InferenceSettings", "ModelLoadError", "build_engine"]
