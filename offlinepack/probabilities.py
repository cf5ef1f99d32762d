"""Saved probability maps: `<id>.npy` per volume plus `probabilities.json` (models, settings, sha256s).

Two encodings, both read everywhere probabilities are taken (run --from-probabilities, calibrate, ablate):
- uint8: round(p * 255), 0-255 (4x smaller than float32; the default);
- float16 / float32: p itself, in [0, 1].
A folder of `<id>.npy` without `probabilities.json` is read too (maps made by other tools).

A run that saves maps post-processes the *decoded saved* map, not the engine's float16 one, so a later
`run --from-probabilities` gives byte-identical masks (uint8 rounding would otherwise move voxels that sit
exactly at the threshold).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from offlinepack.atomic import replacing, write_text_atomically
from offlinepack.errors import OfflinepackError
from offlinepack.files import json_or_none, read_json
from offlinepack.hashing import sha256_file
from offlinepack.inference.volume_engine import EngineFactory, VolumeEngine

META_NAME = "probabilities.json"
META_FORMAT = "offlinepack-probabilities"
DTYPES = ("uint8", "float16")


def encode(probability: np.ndarray, dtype: str = "uint8") -> np.ndarray:
    """Probability in [0, 1] (any float dtype) -> the stored array."""
    if dtype not in DTYPES:
        raise OfflinepackError(f"unknown probabilities dtype {dtype!r}", hint=f"use one of {', '.join(DTYPES)}")
    clipped = np.clip(np.asarray(probability, dtype=np.float32), 0.0, 1.0)
    if dtype == "uint8":
        return np.rint(clipped * 255.0).astype(np.uint8)
    return clipped.astype(np.float16)


def decode(stored: np.ndarray, where: object = "probability map") -> np.ndarray:
    """A stored map (uint8 0-255, or float in [0, 1]) -> float32 probability in [0, 1]."""
    if stored.dtype == np.uint8:
        return stored.astype(np.float32) / np.float32(255.0)
    if stored.dtype in (np.float16, np.float32, np.float64):
        values = stored.astype(np.float32, copy=False)
        if values.size and not (np.isfinite(values).all() and values.min() >= 0.0 and values.max() <= 1.0):
            raise OfflinepackError(f"{where}: float values outside [0, 1] (or NaN)",
                                   hint="store probabilities in [0, 1], or uint8 as round(p * 255)")
        return values
    raise OfflinepackError(f"{where}: dtype {stored.dtype} is not a probability map",
                           hint="store uint8 (round(p * 255)) or float16/float32 in [0, 1]")


def load_map(path: Path) -> np.ndarray:
    """One `<id>.npy` -> float32 probability (Z, H, W)."""
    try:
        stored = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise OfflinepackError(f"cannot read probability map {path}: {error}") from error
    if stored.ndim != 3:
        raise OfflinepackError(f"{path}: probability map must be 3D (Z,H,W), got shape {stored.shape}")
    return decode(stored, path)


def _save_npy(array: np.ndarray, path: Path) -> None:
    try:
        with replacing(path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
    except OSError as error:
        raise OfflinepackError(f"cannot write probability map {path}: {error.strerror or error}") from error


@dataclass(frozen=True)
class ProbabilitySet:
    """A folder of saved maps: id -> path, and what produced them (empty when no probabilities.json)."""

    folder: Path
    paths: Mapping[str, Path]
    meta: Mapping[str, Any]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self.paths)

    def load(self, ident: str) -> np.ndarray:
        if ident not in self.paths:
            raise OfflinepackError(f"volume {ident}: no saved probability map {self.folder / (ident + '.npy')}",
                                   hint="save maps for every volume with `offlinepack run --save-probabilities DIR`")
        return load_map(self.paths[ident])

    @property
    def models(self) -> list[dict[str, Any]]:
        """The model files (path, sha256, size) that produced the maps, as a run's ledger lists them."""
        return list(self.meta.get("models") or [])

    def model_hashes(self) -> tuple[str, ...]:
        return tuple(sorted(m["sha256"] for m in self.models if isinstance(m, dict) and "sha256" in m))

    def fingerprint(self) -> str:
        """sha256s of the maps (from probabilities.json when present, else hashed now): identifies the inputs."""
        import hashlib

        volumes = self.meta.get("volumes") or {}
        parts = [f"{i}:{(volumes.get(i) or {}).get('sha256') or sha256_file(p)}" for i, p in sorted(self.paths.items())]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def open_probabilities(folder: Path) -> ProbabilitySet:
    """Read a folder of `<id>.npy` (and probabilities.json when present); an empty or missing folder is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise OfflinepackError(f"probabilities folder {folder} does not exist (or is not a folder)",
                               hint="save maps first: `offlinepack run --save-probabilities DIR`")
    paths = {p.stem: p for p in sorted(folder.glob("*.npy")) if not p.name.startswith(".")}
    if not paths:
        raise OfflinepackError(f"{folder} holds no <id>.npy probability maps",
                               hint="save maps first: `offlinepack run --save-probabilities DIR`")
    meta: dict[str, Any] = {}
    meta_path = folder / META_NAME
    if meta_path.is_file():
        meta = read_json(meta_path, hint="delete it to use the maps without their record, or save them again")
        if not isinstance(meta, dict) or meta.get("format") != META_FORMAT:
            raise OfflinepackError(f"{meta_path}: not an offlinepack probabilities record")
    return ProbabilitySet(folder, paths, meta)


class ProbabilityWriter:
    """Saves each map as the engine hands it over and keeps probabilities.json current (a stopped run's
    maps stay usable). Maps from other models in the same folder are refused, not mixed."""

    def __init__(self, folder: Path, dtype: str = "uint8") -> None:
        if dtype not in DTYPES:
            raise OfflinepackError(f"--probabilities-dtype {dtype!r} is not one of {', '.join(DTYPES)}")
        self.folder, self.dtype = Path(folder), dtype
        self.meta: dict[str, Any] = {}

    def start(self, models: Sequence[Mapping[str, Any]], settings: Mapping[str, Any], input_root: Path | None) -> None:
        """Create the folder and the record; an existing record must come from the same model files and dtype."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OfflinepackError(f"cannot create {self.folder}: {error.strerror or error}") from error
        meta_path = self.folder / META_NAME
        volumes: dict[str, Any] = {}
        if meta_path.is_file():
            earlier = json_or_none(meta_path) or {}
            recorded = sorted(m.get("sha256") for m in earlier.get("models", []))
            same_models = recorded == sorted(m["sha256"] for m in models)
            if not same_models or earlier.get("dtype") != self.dtype or earlier.get("settings") != dict(settings):
                raise OfflinepackError(
                    f"{self.folder} holds probability maps from other models or settings",
                    hint="pass another --save-probabilities folder (maps from different models are never mixed)")
            volumes = dict(earlier.get("volumes") or {})
        self.meta = {"format": META_FORMAT, "version": 1, "dtype": self.dtype, "models": [dict(m) for m in models],
                     "settings": dict(settings), "input": str(input_root) if input_root else None, "volumes": volumes}
        self._write_meta()

    def save(self, ident: str, probability: np.ndarray) -> np.ndarray:
        """Store one map; returns the float32 map as it will be read back (what post-processing must use)."""
        stored = encode(probability, self.dtype)
        path = self.folder / f"{ident}.npy"
        _save_npy(stored, path)
        self.meta["volumes"][ident] = {"sha256": sha256_file(path), "shape": list(stored.shape), "dtype": self.dtype}
        self._write_meta()
        return decode(stored)

    def _write_meta(self) -> None:
        write_text_atomically(self.folder / META_NAME, json.dumps(self.meta, indent=1, default=str) + "\n")


class SavingEngine:
    """An inference engine whose maps are saved as they come; yields the maps as saved (see module doc)."""

    def __init__(self, engine: VolumeEngine, writer: ProbabilityWriter) -> None:
        self.engine, self.writer = engine, writer

    def predict_many(self, items: Iterable[tuple[str, np.ndarray]]) -> Iterator[tuple[str, np.ndarray]]:
        for ident, probability in self.engine.predict_many(items):
            yield ident, self.writer.save(ident, probability)

    def describe(self) -> dict[str, Any]:
        return {**self.engine.describe(), "saved_probabilities": {"folder": str(self.writer.folder),
                                                                  "dtype": self.writer.dtype}}


class SavedEngine:
    """Stands in for inference: hands over each volume's saved map (the volume itself only fixes the shape)."""

    def __init__(self, saved: ProbabilitySet) -> None:
        self.saved = saved

    def predict_many(self, items: Iterable[tuple[str, np.ndarray]]) -> Iterator[tuple[str, np.ndarray]]:
        for ident, _volume in items:
            yield ident, self.saved.load(ident)

    def describe(self) -> dict[str, Any]:
        return {"from_probabilities": str(self.saved.folder), "dtype": self.saved.meta.get("dtype"),
                "models": self.saved.models, "settings": self.saved.meta.get("settings"),
                "devices": ["none"], "device_names": ["none (saved probabilities)"]}


def probability_key_parts(
    save: ProbabilityWriter | None, saved: ProbabilitySet | None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """What a run's mask key and ledger record add for saved probabilities: masks made from saved maps (or
    from maps as saved, i.e. rounded) are never confused with masks made straight from the engine."""
    if saved is not None:
        fingerprint = saved.fingerprint()
        return ({"probabilities": fingerprint},
                {"from": str(saved.folder), "dtype": saved.meta.get("dtype"), "sha256": fingerprint,
                 "volumes": len(saved.paths)})
    if save is not None:
        return {"probabilities_dtype": save.dtype}, {"saved_to": str(save.folder), "dtype": save.dtype}
    return {}, None


def open_engine(
    factory: EngineFactory, model_paths: Sequence[Path], config: Any, model_records: Sequence[Mapping[str, Any]],
    input_root: Path | None, save: ProbabilityWriter | None, saved: ProbabilitySet | None,
) -> VolumeEngine:
    """The run's engine: saved maps, or `factory(model_paths, config)` (wrapped to save maps when asked)."""
    if saved is not None:
        return SavedEngine(saved)
    engine = factory(model_paths, config)
    if save is None:
        return engine
    save.start(model_records, {"weights": config.weights, "folds": config.folds, "inference": config.inference},
               input_root)
    return SavingEngine(engine, save)
