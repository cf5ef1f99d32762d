"""Pair saved probability maps with label volumes: `--labels` is a folder of `<id>.tif` (the competition's
train_labels/) or a competition folder holding train_labels/. Every problem is listed at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from offlinepack.calibrate.tasks import VolumeItem
from offlinepack.errors import OfflinepackError
from offlinepack.probabilities import ProbabilitySet
from offlinepack.submission import tiff_shape

_SUFFIXES = (".tif", ".tiff")


@dataclass(frozen=True)
class LabelledSet:
    items: tuple[VolumeItem, ...]
    shapes: tuple[tuple[int, ...], ...]
    labels_dir: Path
    unused_labels: int  # labels without a map (fine: only labelled maps are used)


def label_files(labels: Path) -> tuple[Path, dict[str, Path]]:
    labels = Path(labels)
    if not labels.is_dir():
        raise OfflinepackError(f"labels folder {labels} does not exist (or is not a folder)",
                               hint="pass --labels with the competition's train_labels/ (or the competition folder)")
    folder = labels / "train_labels" if (labels / "train_labels").is_dir() else labels
    found = {p.stem: p for p in sorted(folder.iterdir())
             if p.suffix.lower() in _SUFFIXES and not p.name.startswith(".")}
    if not found:
        raise OfflinepackError(f"{folder} holds no <id>.tif label volumes",
                               hint="pass --labels with the competition's train_labels/ (or the competition folder)")
    return folder, found


def pair_with_labels(members: Sequence[tuple[ProbabilitySet, float]], labels: Path,
                     ids: Sequence[str] | None = None) -> LabelledSet:
    """Volumes that every member has a map for and that have a label; a member's map without a label, or
    shapes that disagree, are errors naming each volume."""
    folder, found = label_files(labels)
    wanted = list(ids) if ids else sorted(set.intersection(*(set(m.ids) for m, _ in members)))
    problems = []
    items, shapes = [], []
    for ident in wanted:
        missing = [str(m.folder) for m, _ in members if ident not in m.paths]
        if missing:
            problems.append(f"volume {ident}: no probability map in {', '.join(missing)}")
            continue
        if ident not in found:
            problems.append(f"volume {ident}: no label {folder / (ident + '.tif')}")
            continue
        map_shapes = {tuple(np.load(m.paths[ident], mmap_mode="r").shape) for m, _ in members}
        if len(map_shapes) > 1:
            problems.append(f"volume {ident}: the members' maps differ in shape ({sorted(map_shapes)})")
            continue
        try:
            label_shape = tiff_shape(found[ident])
        except Exception:  # noqa: BLE001 - an unreadable header is reported when the worker reads it
            label_shape = None
        if label_shape is not None and tuple(label_shape) != next(iter(map_shapes)):
            problems.append(f"volume {ident}: probability map shape {next(iter(map_shapes))} differs from its "
                            f"label's {tuple(label_shape)} ({found[ident]})")
            continue
        items.append(VolumeItem(ident, tuple((str(m.paths[ident]), float(w)) for m, w in members), str(found[ident])))
        shapes.append(map_shapes.pop())
    if problems:
        raise OfflinepackError("cannot pair probability maps with labels", problems=problems,
                               hint="every map needs its label <id>.tif in --labels (or pass --ids)")
    if not items:
        raise OfflinepackError(f"no volume has both a probability map and a label in {folder}",
                               hint="the ids of <id>.npy and <id>.tif must match")
    return LabelledSet(tuple(items), tuple(shapes), folder, len(set(found) - set(wanted)))
