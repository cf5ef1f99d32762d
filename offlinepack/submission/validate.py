"""Check a submission.zip the way the scorer will read it, listing every problem at once.

Memory stays bounded whatever the zip holds: each entry's declared size and compression ratio are checked
against the largest plausible mask before anything is decompressed (the source's (Z,H,W) as uint8 plus TIFF
headers; without a reference shape, MAX_MASK_VOXELS), the entry is streamed into a spooled temporary file
with that byte limit, and Pillow's pages are checked one at a time, never stacked.
"""

from __future__ import annotations

import io
import math
import re
import stat
import tempfile
import warnings as pywarnings
import zipfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from offlinepack.native_stderr import captured_native_stderr
from offlinepack.submission.tiff import tiff_shape

Shape = tuple[int, ...]

# Without a reference shape, the largest mask believed: 512^3 uint8 voxels (competition volumes are 256^3-384^3).
MAX_MASK_VOXELS = 512**3
MAX_PAGES = 512
# A mask TIFF is its voxels plus headers: per-page IFDs and strip tables, a little deflate expansion.
PAGE_OVERHEAD_BYTES = 4096
FILE_OVERHEAD_BYTES = 64 * 1024
# deflate cannot compress better than about 1032:1, so a higher declared ratio is a lie or another codec's bomb
MAX_COMPRESSION_RATIO = 1100
_IN_MEMORY = 64 << 20  # an entry up to this size is checked in memory, a larger one through a temp file
_CHUNK = 1 << 20


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
    unchecked: tuple[str, ...] = ()  # what could not be checked for want of a reference (ids, shapes)

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def complete(self) -> bool:
        """Nothing is wrong and everything the scorer checks was checked (ids and shapes included)."""
        return not self.problems and not self.unchecked

    def to_dict(self) -> dict[str, Any]:
        return {
            "zip": str(self.zip_path),
            "valid": self.valid,
            "complete": self.complete,
            "problems": list(self.problems),
            "unchecked": list(self.unchecked),
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
    unchecked: tuple[str, ...] = () if check_ids else (
        "ids: without the test volumes (--input) or a ledger record of this zip, the expected ids are unknown",
        "shapes: without a reference, each mask's (Z,H,W) cannot be compared with its source volume",
    )
    warnings: list[str] = []
    entries: list[EntryCheck] = []
    try:
        mode = zip_path.stat().st_mode
    except FileNotFoundError:
        return ValidationReport(zip_path, (f"{zip_path}: no such file",), expected_ids=tuple(shapes))
    except OSError as error:
        return ValidationReport(zip_path, (f"{zip_path}: cannot read it ({error.strerror or error})",),
                                expected_ids=tuple(shapes))
    if not stat.S_ISREG(mode):  # a FIFO would block the open; a device is not a submission
        return ValidationReport(zip_path, (f"{zip_path}: not a regular file (a device, FIFO or socket)",),
                                expected_ids=tuple(shapes))
    try:
        archive = zipfile.ZipFile(zip_path)
    except FileNotFoundError:
        return ValidationReport(zip_path, (f"{zip_path}: no such file",), expected_ids=tuple(shapes))
    except (zipfile.BadZipFile, OSError) as error:
        return ValidationReport(zip_path, (f"{zip_path}: not a readable zip file ({error})",), expected_ids=tuple(shapes))
    with archive:
        infos = archive.infolist()
        if not infos:
            problems.append(f"{zip_path.name}: the zip is empty (the scorer needs one <id>.tif per test volume)")
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
            try:
                entry, entry_problems, entry_warnings = _check_entry(archive, info, ident, shapes.get(ident))
            except _NoRoom as why:
                unchecked += (f"{name}: {why}",)
                continue
            entries.append(entry)
            problems.extend(entry_problems)
            warnings.extend(entry_warnings)
        for ident in shapes:
            if seen[ident] == 0:
                problems.append(f"{ident}.tif: missing (expected one mask per test volume)")
    return ValidationReport(zip_path, tuple(problems), tuple(warnings), tuple(entries), tuple(shapes), unchecked)


def mask_byte_limit(expected: Shape | None) -> int:
    """The most bytes a mask TIFF of `expected` (Z,H,W) can plausibly take; MAX_MASK_VOXELS without a shape."""
    voxels = math.prod(expected) if expected else MAX_MASK_VOXELS
    pages = expected[0] if expected else MAX_PAGES
    return int(voxels * 1.01) + pages * PAGE_OVERHEAD_BYTES + FILE_OVERHEAD_BYTES


def _size_problem(info: zipfile.ZipInfo, limit: int) -> str | None:
    """Refuse an entry on its declared sizes alone, before decompressing a byte."""
    if info.file_size > limit:
        return (f"{info.filename}: declares {info.file_size} bytes uncompressed, more than the largest plausible mask "
                f"({limit} bytes); not checked further")
    if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
        return f"{info.filename}: stored entry declares {info.file_size} bytes but holds {info.compress_size}"
    if info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1) and info.file_size > _CHUNK:
        ratio = info.file_size // max(info.compress_size, 1)
        return (f"{info.filename}: compression ratio {ratio}:1 is beyond what deflate can reach "
                f"({MAX_COMPRESSION_RATIO}:1); not checked further")
    return None


class _NoRoom(Exception):
    """No room for the temporary copy of a large entry: the entry could not be checked (not: it is bad)."""


def _spool(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> io.BytesIO | tempfile.SpooledTemporaryFile:
    """The entry's bytes, read in chunks and never more than `limit` of them: in memory up to _IN_MEMORY (no
    fileno, so Pillow's libtiff decodes from the buffer), else in a temporary file."""
    copy: io.BytesIO | tempfile.SpooledTemporaryFile = (
        io.BytesIO() if info.file_size <= _IN_MEMORY else tempfile.SpooledTemporaryFile(max_size=0))
    written = 0
    try:
        with archive.open(info) as source:
            while block := source.read(_CHUNK):
                written += len(block)
                if written > limit:
                    raise ValueError(f"decompresses past {limit} bytes, more than the largest plausible mask")
                try:
                    copy.write(block)
                except OSError as error:
                    raise _NoRoom(f"no room for a temporary copy in {tempfile.gettempdir()} "
                                  f"({error.strerror or error})") from error
    except BaseException:
        copy.close()
        raise
    copy.seek(0)
    return copy


_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")


def _plain(error: BaseException, name: str) -> str:
    """Pillow names the file object it was given (`<_io.BytesIO object at 0x...>`): name the entry instead."""
    return f"{type(error).__name__}: {_OBJECT_REPR.sub(name, str(error))}"


def _check_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, ident: str, expected: Shape | None
) -> tuple[EntryCheck, list[str], list[str]]:
    """Read one entry as the scorer does (Pillow, page by page), one page in memory at a time."""
    from PIL import Image, ImageSequence

    name = info.filename
    problems: list[str] = []
    warnings: list[str] = []
    unreadable = EntryCheck(name, ident, None, None, None)
    limit = mask_byte_limit(expected)
    refused = _size_problem(info, limit)
    if refused:
        return unreadable, [refused], warnings
    pages = 0
    page_shapes: set[Shape] = set()
    dtypes: set[str] = set()
    present = np.zeros(256, dtype=bool)
    other_values = False
    libtiff: list[str] = []
    try:
        spool = _spool(archive, info, limit)
    except _NoRoom:
        raise
    except Exception as error:  # noqa: BLE001 - a CRC error, a bad deflate stream, a size lie
        return unreadable, [f"{name}: cannot be extracted ({_plain(error, name)})"], warnings
    try:
        with spool, pywarnings.catch_warnings(), captured_native_stderr(libtiff), Image.open(spool) as image:
            pywarnings.simplefilter("ignore")  # Pillow warns on odd tags; the problems list says what matters
            for page in ImageSequence.Iterator(image):
                array = np.array(page)
                pages += 1
                page_shapes.add(tuple(int(s) for s in array.shape))
                dtypes.add(str(array.dtype))
                if array.dtype == np.uint8:
                    present |= np.bincount(array.ravel(), minlength=256) > 0
                elif array.size:
                    other_values = True
    except Exception as error:  # Pillow and zipfile raise many types on bad data; each is "unreadable"
        said = f" (libtiff: {'; '.join(dict.fromkeys(libtiff))})" if libtiff else ""
        problems.append(f"{name}: Pillow cannot read it as a TIFF ({_plain(error, name)}){said}")
        return unreadable, problems, warnings
    if not pages:
        return unreadable, [f"{name}: Pillow finds no pages in it"], warnings
    if len(page_shapes) > 1:
        problems.append(f"{name}: pages have different shapes {sorted(page_shapes)}; the scorer cannot stack them")
        return EntryCheck(name, ident, None, ",".join(sorted(dtypes)), None), problems, warnings
    page_shape = next(iter(page_shapes))
    shape = (pages, *page_shape)
    dtype = dtypes.pop() if len(dtypes) == 1 else ",".join(sorted(dtypes))
    values = tuple(int(v) for v in np.flatnonzero(present))
    few = values if len(values) <= 4 and not other_values else None
    if len(shape) != 3:
        problems.append(f"{name}: read as shape {shape}, not 3D (Z,H,W): pages must be single-channel 2D images")
    elif expected is not None and shape != tuple(expected):
        hint = " (a single-page 2D TIFF reads as (1,H,W))" if shape[0] == 1 else ""
        problems.append(f"{name}: shape {shape} differs from the source volume's {tuple(expected)}{hint}")
    if dtype != "uint8":
        problems.append(f"{name}: dtype {dtype}, expected uint8")
    elif not set(values) <= {0, 1}:
        if set(values) <= {0, 255}:
            warnings.append(f"{name}: values {{0,255}}; the scorer treats any non-zero as surface, {{0,1}} preferred")
        else:
            shown = few if few is not None else f"{len(values)} distinct values, {values[0]}..{values[-1]}"
            problems.append(f"{name}: values {shown}, expected only 0 and 1")
    return EntryCheck(name, ident, shape, dtype, few), problems, warnings
