"""find_inputs: the competition's test volumes, in a given folder or in either Kaggle input layout."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from offlinepack.errors import OfflinepackError

_SUFFIXES = (".tif", ".tiff")


@dataclass(frozen=True, slots=True)
class VolumeRef:
    id: str
    path: Path


@dataclass(frozen=True, slots=True)
class InputSet:
    root: Path
    volumes: tuple[VolumeRef, ...]
    missing_ids: tuple[str, ...]  # ids in test.csv without a file
    source: str  # how it was found: "competition folder", "folder of .tif", "kaggle: <path>"


def _tifs(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in _SUFFIXES and path.is_file():
            found.setdefault(path.stem, path)
    return found


def _csv_ids(path: Path) -> list[str]:
    """The ids of test.csv in order. A UTF-8 BOM (Excel's "CSV UTF-8") is accepted; a repeated id is refused with
    both line numbers here, while inputs are planned, not found later by the run."""
    hint = "test.csv needs an 'id' column with one row per test volume (as the competition ships it)"
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or "id" not in [f.strip() for f in reader.fieldnames]:
                raise OfflinepackError(f"{path}: no 'id' column (columns: {reader.fieldnames})", hint=hint)
            column = next(f for f in reader.fieldnames if f.strip() == "id")
            first_line: dict[str, int] = {}
            ids, problems = [], []
            for row in reader:
                ident = (row.get(column) or "").strip()
                if not ident:
                    continue
                line = reader.line_num
                if ident in first_line:
                    problems.append(f"{path} line {line}: id {ident!r} repeats line {first_line[ident]}")
                    continue
                first_line[ident] = line
                ids.append(ident)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise OfflinepackError(f"{path}: cannot read it ({error})", hint=hint + "; save it as UTF-8 text") from None
    if problems:
        raise OfflinepackError(f"{path}: {len(problems)} repeated id(s)", problems=problems,
                               hint="each test volume must be listed once: remove the repeated rows")
    return ids


def _from_folder(folder: Path, source: str) -> InputSet:
    images = folder / "test_images"
    if images.is_dir():
        files = _tifs(images)
        csv_path = folder / "test.csv"
        if csv_path.is_file():
            ids = _csv_ids(csv_path)
            if not ids:
                raise OfflinepackError(f"{csv_path}: lists no ids",
                                       hint="test.csv needs a header line `id,scroll_id` and one row per test volume")
            volumes = tuple(VolumeRef(i, files[i]) for i in ids if i in files)
            missing = tuple(i for i in ids if i not in files)
        else:
            volumes, missing = tuple(VolumeRef(i, p) for i, p in files.items()), ()
        if not volumes and not missing:
            raise OfflinepackError(f"{images}: no .tif volumes in it",
                                   hint="pass the competition folder whose test_images/ holds <id>.tif volumes")
        return InputSet(folder, volumes, missing, source)
    files = _tifs(folder)
    if not files:
        raise OfflinepackError(f"{folder}: neither a test_images/ folder nor .tif files",
                               hint="pass the competition folder (holding test_images/) or a folder of <id>.tif")
    return InputSet(folder, tuple(VolumeRef(i, p) for i, p in files.items()), (), "folder of .tif")


def find_inputs(input_dir: Path | None = None, kaggle_root: Path = Path("/kaggle")) -> InputSet:
    """The test volumes: from `input_dir`, else the first Kaggle input folder holding test_images/."""
    if input_dir is not None:
        input_dir = Path(input_dir)
        if not input_dir.is_dir():
            raise OfflinepackError(f"input folder {input_dir} does not exist (or is not a folder)",
                                   hint="pass --input with the competition folder (holding test_images/ and test.csv) "
                                        "or a folder of <id>.tif")
        return _from_folder(input_dir, "competition folder" if (input_dir / "test_images").is_dir() else "folder of .tif")
    base = Path(kaggle_root) / "input"
    probed = [base / "competitions", base]
    candidates: list[Path] = []
    for parent in probed:
        if parent.is_dir():
            candidates += sorted(p for p in parent.iterdir() if p.is_dir() and (p / "test_images").is_dir())
    if not candidates:
        raise OfflinepackError(
            "no competition input found", problems=[f"looked for */test_images/ in {p}" for p in probed],
            hint="attach the competition in the notebook's Input panel, or pass --input DIR")
    return _from_folder(candidates[0], f"kaggle: {candidates[0]}")
