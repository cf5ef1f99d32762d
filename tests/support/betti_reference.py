"""The independent reference for Betti matching: the compiled `betti_matching` module of the topolosses 0.2.0 wheel.

scripts/setup-dev.sh downloads the wheel (without its torch dependency) into .venv/reference-wheels/; here the
module file is extracted from the wheel into a cache folder beside it and loaded directly with importlib. It is
never installed and never shipped. Counting follows the official topometrics code: the masks are inverted
(foreground 0, background 1, uint8), `compute_matching(prediction, label)` is called, and the rows of the matched /
unmatched birth-coordinate arrays are counted per dimension.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
WHEEL_DIR = Path(os.environ.get("OFFLINEPACK_REFERENCE_WHEELS", REPO_ROOT / ".venv" / "reference-wheels"))
WHEEL_VERSION = "0.2.0"
MISSING_HINT = (
    f"the reference wheel topolosses=={WHEEL_VERSION} for this Python is not in {WHEEL_DIR}: "
    "run scripts/setup-dev.sh (it downloads it with pip download --no-deps)"
)


def reference_wheel() -> Path | None:
    """The topolosses wheel for the running CPython, if downloaded."""
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    found = sorted(WHEEL_DIR.glob(f"topolosses-{WHEEL_VERSION}-{tag}-{tag}-*.whl"))
    return found[0] if found else None


@functools.lru_cache(maxsize=1)
def load_reference() -> ModuleType:
    """The `betti_matching` extension module, extracted from the wheel on first use; skips the test when absent."""
    wheel = reference_wheel()
    if wheel is None:
        pytest.skip(MISSING_HINT)
    cache = WHEEL_DIR / f"extracted-{wheel.stem}"
    with zipfile.ZipFile(wheel) as archive:
        members = [name for name in archive.namelist()
                   if Path(name).name.startswith("betti_matching.") and name.endswith(".so")]
        if len(members) != 1:
            raise RuntimeError(f"{wheel}: expected one betti_matching module, found {members}")
        target = cache / Path(members[0]).name
        if not target.exists():
            cache.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".partial")
            partial.write_bytes(archive.read(members[0]))
            partial.replace(target)
    spec = importlib.util.spec_from_file_location("betti_matching", target)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_match_counts(pred_fg: np.ndarray, label_fg: np.ndarray) -> tuple[tuple[int, int, int], ...]:
    """Per dimension 0, 1, 2: (matched, prediction unmatched, label unmatched), as the official TopoScore counts
    them for one tile. `pred_fg`, `label_fg`: boolean masks, True = foreground."""
    module = load_reference()
    if np.asarray(pred_fg).size == 0:  # no cells, no pairs (the module itself fails on an empty array)
        return ((0, 0, 0),) * 3
    pred = (~np.asarray(pred_fg, dtype=bool)).astype(np.uint8)
    label = (~np.asarray(label_fg, dtype=bool)).astype(np.uint8)
    result = module.compute_matching(pred, label)
    counts = []
    for dim in range(3):
        counts.append(tuple(_rows(getattr(result, name), dim) for name in (
            "input1_matched_birth_coordinates",
            "input1_unmatched_birth_coordinates",
            "input2_unmatched_birth_coordinates",
        )))
    return tuple(counts)


def _rows(per_dimension: list, dim: int) -> int:
    """Rows of one dimension's coordinate array (a missing dimension counts 0, as the official code does)."""
    if dim >= len(per_dimension):
        return 0
    array = np.asarray(per_dimension[dim])
    return int(array.shape[0]) if array.size else 0
