"""The files `offlinepack score` compares: predicted masks (a submission.zip or a folder of <id>.tif) and labels.

Predictions are read the way the scorer reads them (Pillow, page by page, stacked on axis 0; any `<id>.tif`
at any depth of the zip); labels with the best TIFF reader available (LZW needs imagecodecs or Pillow).
Every problem (a missing label, a shape mismatch, an unreadable file) is collected before anything is scored.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from offlinepack.errors import OfflinepackError, raise_if_problems

_SUFFIXES = (".tif", ".tiff")


@dataclass(frozen=True, slots=True)
class VolumePair:
    id: str
    prediction: str  # a path, or "<zip>::<member>"
    label: Path


@dataclass(frozen=True, slots=True)
class ScoreInputs:
    predictions: Path
    labels: Path  # the folder holding the <id>.tif labels
    pairs: tuple[VolumePair, ...]


def _is_tif(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in _SUFFIXES


def prediction_entries(path: Path) -> dict[str, str]:
    """id -> where the mask is: `<zip>::<member>` for a zip (any depth, as the scorer's `**/*.tif`), else a path."""
    path = Path(path)
    if not path.exists():
        raise OfflinepackError(f"predictions {path} do not exist",
                               hint="pass a submission.zip or a folder of <id>.tif masks")
    found: dict[str, list[str]] = {}
    if path.is_dir():
        for file in sorted(path.iterdir()):
            if file.is_file() and _is_tif(file.name):
                found.setdefault(file.stem, []).append(str(file))
    else:
        try:
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if not n.endswith("/") and _is_tif(n)]
        except (zipfile.BadZipFile, OSError) as error:
            raise OfflinepackError(f"{path}: not a readable zip ({error})",
                                   hint="pass a submission.zip or a folder of <id>.tif masks") from None
        for name in sorted(names):
            found.setdefault(PurePosixPath(name).stem, []).append(f"{path}::{name}")
    if not found:
        raise OfflinepackError(f"{path}: no <id>.tif masks in it",
                               hint="pass a submission.zip or a folder of <id>.tif masks")
    duplicates = [f"id {i} appears {len(w)} times: {', '.join(w)}" for i, w in found.items() if len(w) > 1]
    raise_if_problems(duplicates, f"{path}: some ids have more than one mask", hint="keep one <id>.tif per id")
    return {i: where[0] for i, where in found.items()}


def label_folder(path: Path) -> Path:
    """The folder of <id>.tif labels: `path` itself, or its train_labels/ (a competition folder)."""
    path = Path(path)
    if not path.is_dir():
        raise OfflinepackError(f"labels folder {path} does not exist",
                               hint="pass the competition's train_labels/ folder, or the folder holding it")
    if (path / "train_labels").is_dir():
        return path / "train_labels"
    return path


def _labels(folder: Path) -> dict[str, Path]:
    labels: dict[str, Path] = {}
    for file in sorted(folder.iterdir()):
        if file.is_file() and _is_tif(file.name):
            labels.setdefault(file.stem, file)
    return labels


def _pillow_shape(source: str | Path | bytes) -> tuple[int, ...]:
    """(Z, H, W) from the TIFF headers as Pillow walks them (no pixel decoding)."""
    from PIL import Image

    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    with Image.open(handle) as image:
        pages = getattr(image, "n_frames", 1)
        width, height = image.size
        return (pages, height, width) if pages > 1 else (height, width)


def _zip_member(where: str) -> tuple[Path, str] | None:
    if "::" in where:
        archive, member = where.split("::", 1)
        return Path(archive), member
    return None


def _prediction_bytes(where: str) -> bytes | None:
    member = _zip_member(where)
    if member is None:
        return None
    with zipfile.ZipFile(member[0]) as archive:
        return archive.read(member[1])


def prediction_shape(where: str) -> tuple[int, ...]:
    data = _prediction_bytes(where)
    return _pillow_shape(data if data is not None else Path(where))


def read_prediction(where: str) -> np.ndarray:
    """A predicted mask as the scorer reads it: Pillow pages stacked on axis 0."""
    from offlinepack.submission.tiff import read_tiff_like_scorer

    data = _prediction_bytes(where)
    try:
        return read_tiff_like_scorer(data if data is not None else Path(where))
    except Exception as error:  # noqa: BLE001 - Pillow raises many types for a bad TIFF
        raise OfflinepackError(f"{where}: Pillow cannot read this mask ({type(error).__name__}: {error})",
                               hint="masks must be multipage TIFFs Pillow decodes (uncompressed, LZW or deflate)") from None


LABEL_VALUES = "0 background, 1 surface, 2 unlabeled"


def read_label(path: Path) -> np.ndarray:
    """A label volume; anything but values 0/1/2 (an image folder passed as --labels, say) is refused, since
    the metric would quietly treat every non-zero voxel as surface and every 2 as ignored."""
    from offlinepack.volumes import read_volume

    label = read_volume(path).array
    if label.size and (label.dtype.kind not in "ui" or int(label.max()) > 2 or int(label.min()) < 0):
        raise OfflinepackError(f"{path}: not a label volume (values {label.min()}..{label.max()}, "
                               f"dtype {label.dtype}; labels hold {LABEL_VALUES})",
                               hint="pass the competition's train_labels/ (not train_images/) or the folder holding it")
    return label


def find_score_inputs(predictions: Path, labels: Path, ids: list[str] | None = None) -> ScoreInputs:
    """Pair every prediction (or every id in `ids`) with its label, checking ids and shapes; all problems at once."""
    entries = prediction_entries(predictions)
    folder = label_folder(labels)
    label_files = _labels(folder)
    if not label_files:
        raise OfflinepackError(f"{folder}: no <id>.tif label volumes in it",
                               hint="pass the competition's train_labels/ folder, or the folder holding it")
    wanted = list(dict.fromkeys(ids)) if ids else sorted(entries)
    problems: list[str] = []
    for volume_id in wanted:
        if volume_id not in entries:
            problems.append(f"id {volume_id}: no mask {volume_id}.tif in {predictions}")
        elif volume_id not in label_files:
            problems.append(f"id {volume_id}: no label {volume_id}.tif in {folder}")
    raise_if_problems(problems, "some volumes cannot be scored",
                      hint="every predicted id needs <id>.tif in --labels; --ids picks a subset")
    pairs = tuple(VolumePair(i, entries[i], label_files[i]) for i in wanted)
    for pair in pairs:
        try:
            pred_shape, label_shape = prediction_shape(pair.prediction), _pillow_shape(pair.label)
        except Exception as error:  # noqa: BLE001 - a broken header: say which file
            problems.append(f"id {pair.id}: cannot read the TIFF headers ({type(error).__name__}: {error})")
            continue
        if pred_shape != label_shape:
            problems.append(f"id {pair.id}: mask shape {pred_shape} != label shape {label_shape}")
    raise_if_problems(problems, "some masks do not match their labels",
                      hint="a mask must be a (Z, H, W) multipage TIFF of exactly its volume's shape")
    return ScoreInputs(Path(predictions), folder, pairs)

