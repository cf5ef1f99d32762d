"""Check a submission.zip the way the scorer will read it, listing every problem at once."""

from __future__ import annotations

import warnings as pywarnings
import zipfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from offlinepack.submission.tiff import read_tiff_like_scorer, tiff_shape

Shape = tuple[int, ...]


@dataclass(frozen=True)
class EntryCheck:
    """What one `<id>.tif` entry holds, as Pillow read it (shape/dtype None when unreadable)."""

    name: str
    id: str
    shape: Shape | None
    dtype: str | None
    values: tuple[int, ...] | None  # distinct values when few (<= 4), else None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "id": self.id, "shape": self.shape, "dtype": self.dtype, "values": self.values}


@dataclass(frozen=True)
class ValidationReport:
    """`valid` is True when nothing in `problems`; `warnings` do not make a submission invalid."""

    zip_path: Path
    problems: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    entries: tuple[EntryCheck, ...] = field(default=())
    expected_ids: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "zip": str(self.zip_path),
            "valid": self.valid,
            "problems": list(self.problems),
            "warnings": list(self.warnings),
            "expected_ids": list(self.expected_ids),
            "entries": [e.to_dict() for e in self.entries],
        }


def expected_shapes(expected: Any) -> tuple[dict[str, Shape | None], list[str]]:
    """id -> source shape from a mapping, or from an InputSet (shapes read from TIFF headers)."""
    problems: list[str] = []
    if expected is None:
        return {}, problems
    if isinstance(expected, Mapping):
        return {str(k): tuple(int(s) for s in v) for k, v in expected.items()}, problems
    shapes: dict[str, Shape | None] = {}
    for ref in expected.volumes:
        try:
            shapes[ref.id] = tiff_shape(Path(ref.path))
        except Exception as error:  # any reader failure: report, keep checking the rest
            shapes[ref.id] = None
            problems.append(f"{ref.id}: cannot read the source volume's shape from {ref.path}: {error}")
    for missing in getattr(expected, "missing_ids", ()):
        shapes.setdefault(missing, None)
        problems.append(f"{missing}: listed in test.csv but no source volume exists, so it cannot be checked")
    return shapes, problems


def validate_submission(zip_path: Path, expected: Any) -> ValidationReport:
    """Every expected id exactly once at the zip's root as `<id>.tif`, each a 3D uint8 {0,1} TIFF of the
    source shape that Pillow reads page by page; no other entries. `expected`: id -> shape, or an InputSet;
    None checks each entry alone (ids and shapes unchecked)."""
    zip_path = Path(zip_path)
    shapes, problems = expected_shapes(expected)
    check_ids = expected is not None
    warnings: list[str] = [] if check_ids else ["no source volumes given: ids and shapes were not checked"]
    entries: list[EntryCheck] = []
    try:
        archive = zipfile.ZipFile(zip_path)
    except FileNotFoundError:
        return ValidationReport(zip_path, (f"{zip_path}: no such file",), expected_ids=tuple(shapes))
    except (zipfile.BadZipFile, OSError) as error:
        return ValidationReport(zip_path, (f"{zip_path}: not a readable zip file ({error})",), expected_ids=tuple(shapes))
    with archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        for name, count in Counter(names).items():
            if count > 1:
                problems.append(f"{name}: entry appears {count} times in the zip")
        seen: Counter[str] = Counter()
        checked: set[str] = set()
        for info in infos:
            name = info.filename
            path = PurePosixPath(name)
            if info.is_dir():
                problems.append(f"{name}: folder entry; masks must sit at the zip's root")
                continue
            if len(path.parts) > 1:
                problems.append(f"{name}: nested entry; masks must sit at the zip's root as <id>.tif")
                continue
            if path.suffix != ".tif":
                problems.append(f"{name}: not a .tif entry (the scorer only reads *.tif)")
                continue
            ident = path.stem
            seen[ident] += 1
            if check_ids and ident not in shapes:
                problems.append(f"{name}: unexpected id {ident!r} (not among the {len(shapes)} test volume(s))")
                continue
            if name in checked:
                continue
            checked.add(name)
            entry, entry_problems, entry_warnings = _check_entry(archive, name, ident, shapes.get(ident))
            entries.append(entry)
            problems.extend(entry_problems)
            warnings.extend(entry_warnings)
        for ident in shapes:
            if seen[ident] == 0:
                problems.append(f"{ident}.tif: missing (expected one mask per test volume)")
    return ValidationReport(zip_path, tuple(problems), tuple(warnings), tuple(entries), tuple(shapes))


def _check_entry(
    archive: zipfile.ZipFile, name: str, ident: str, expected: Shape | None
) -> tuple[EntryCheck, list[str], list[str]]:
    problems: list[str] = []
    warnings: list[str] = []
    try:
        with pywarnings.catch_warnings():  # Pillow warns on odd tags; the problems list says what matters
            pywarnings.simplefilter("ignore")
            array = read_tiff_like_scorer(archive.read(name))
    except Exception as error:  # Pillow raises many types on bad data; each is "unreadable"
        problems.append(f"{name}: Pillow cannot read it as a TIFF ({type(error).__name__}: {error})")
        return EntryCheck(name, ident, None, None, None), problems, warnings
    shape = tuple(int(s) for s in array.shape)
    values = np.unique(array) if array.size else np.array([], dtype=array.dtype)
    few = tuple(int(v) for v in values) if values.size <= 4 else None
    if array.ndim != 3:
        problems.append(f"{name}: read as shape {shape}, not 3D (Z,H,W): pages must be single-channel 2D images")
    elif expected is not None and shape != tuple(expected):
        hint = " (a single-page 2D TIFF reads as (1,H,W))" if shape[0] == 1 else ""
        problems.append(f"{name}: shape {shape} differs from the source volume's {tuple(expected)}{hint}")
    if array.dtype != np.uint8:
        problems.append(f"{name}: dtype {array.dtype}, expected uint8")
    if values.size and not set(values.tolist()) <= {0, 1}:
        if set(values.tolist()) <= {0, 255}:
            warnings.append(f"{name}: values {{0,255}}; the scorer treats any non-zero as surface, {{0,1}} preferred")
        else:
            shown = few if few is not None else f"{values.size} distinct values, {values.min()}..{values.max()}"
            problems.append(f"{name}: values {shown}, expected only 0 and 1")
    return EntryCheck(name, ident, shape, str(array.dtype), few), problems, warnings
