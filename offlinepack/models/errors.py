"""Errors raised while loading models, and the checks every format shares (JSON files, weights)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from offlinepack.errors import OfflinepackError


class ModelLoadError(OfflinepackError):
    """A model file or folder that cannot be turned into a working network."""


def read_json_object(path: Path, missing_hint: str | None = None) -> dict:
    """A JSON object from `path`, or ModelLoadError saying what is wrong with the file."""
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing", hint=missing_hint)
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise ModelLoadError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path}: expected a JSON object")
    return data


def check_state_dict(expected: Mapping[str, object], found: Mapping[str, object], source: str) -> None:
    """Raise naming the first key whose presence or shape differs between network and checkpoint.

    `expected` is the freshly built network's state dict, `found` the checkpoint's. Both map names to
    tensors (anything with `.shape`). Keys are compared in the network's order so "first" is stable.
    """
    for key, tensor in expected.items():
        if key not in found:
            raise ModelLoadError(
                f"{source}: checkpoint has no weights for '{key}' (network expects shape {_shape(tensor)})",
                hint="the checkpoint was trained with a different architecture than the one described next to it",
            )
        if _shape(found[key]) != _shape(tensor):
            raise ModelLoadError(
                f"{source}: checkpoint and architecture disagree at '{key}': "
                f"checkpoint shape {_shape(found[key])}, network shape {_shape(tensor)}",
                hint="use the plans/config file that was saved with this checkpoint",
            )
    extra = [key for key in found if key not in expected]
    if extra:
        raise ModelLoadError(
            f"{source}: checkpoint has weights the network does not: '{extra[0]}' "
            f"(shape {_shape(found[extra[0]])}){f' and {len(extra) - 1} more' if len(extra) > 1 else ''}",
            hint="use the plans/config file that was saved with this checkpoint",
        )


def _shape(tensor: object) -> tuple[int, ...]:
    return tuple(int(n) for n in getattr(tensor, "shape", ()))
