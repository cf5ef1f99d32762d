"""TIFF readers, the output folder and the competition input."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
from pathlib import Path

from offlinepack.doctor.model import Check, DoctorOptions
from offlinepack.errors import OfflinepackError
from offlinepack.files import probe_writable
from offlinepack.kaggle import in_kernel
from offlinepack.units import format_size
from offlinepack.volumes import find_inputs, read_volume, tiff_readers

_GIB = 2**30
LOW_SPACE = 2 * _GIB  # a few hundred masks plus the zip
NO_SPACE = 200 * 2**20


def tiff_check() -> Check:
    readers = tiff_readers()
    versions = ", ".join(f"{k} {v}" for k, v in readers.versions) or "none"
    if readers.lzw == "tifffile+imagecodecs":
        return Check("tiff readers", "ok", f"{versions}; LZW read by tifffile+imagecodecs")
    if readers.lzw == "pillow":
        return Check("tiff readers", "warn", f"{versions}; no imagecodecs: LZW volumes are read by Pillow page by page "
                     "(same array, slower)", "add imagecodecs to the wheelhouse (it is in the reference lock)")
    return Check("tiff readers", "fail", f"{versions}; nothing here can read LZW TIFFs", "install Pillow (kernels have it)")


def dependency_check() -> Check:
    required, wanted = ("numpy", "scipy"), ("safetensors", "connected-components-3d")
    modules = {"numpy": "numpy", "scipy": "scipy", "safetensors": "safetensors", "connected-components-3d": "cc3d"}
    have, missing = [], []
    for dist in required + wanted:
        if importlib.util.find_spec(modules[dist]) is None:
            missing.append(dist)
            continue
        try:
            have.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            have.append(dist)
    detail = ", ".join(have) + (f"; missing: {', '.join(missing)}" if missing else "")
    if set(missing) & set(required):
        return Check("run dependencies", "fail", detail, "a Kaggle kernel has numpy and scipy: do not uninstall them")
    if missing:
        return Check("run dependencies", "warn", detail, "add them to the wheelhouse lock (slower fallbacks are used)")
    return Check("run dependencies", "ok", detail)


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def output_check(output_dir: Path) -> Check:
    base = _existing_ancestor(Path(output_dir))
    where = str(output_dir) + ("" if base == Path(output_dir).absolute() else f" (to be created under {base})")
    try:
        probe_writable(base)
    except OSError as error:
        return Check("output folder", "fail", f"{where} is not writable: {error.strerror}",
                     "write to /kaggle/working (pass -o /kaggle/working/submission.zip)")
    free = shutil.disk_usage(base).free
    detail = f"{where} writable, {format_size(free)} free"
    if free < NO_SPACE:
        return Check("output folder", "fail", detail, "free space: delete files under it (old runs, caches)")
    if free < LOW_SPACE:
        return Check("output folder", "warn", detail, "less than 2 GiB free: delete old runs or caches")
    return Check("output folder", "ok", detail)


def input_check(options: DoctorOptions) -> Check:
    kernel = in_kernel(options.kaggle_root)
    try:
        inputs = find_inputs(options.input_dir, kaggle_root=options.kaggle_root)
    except OfflinepackError as error:
        status = "fail" if options.input_dir is not None or kernel else "warn"
        return Check("competition input", status, "; ".join(error.lines()),
                     error.hint or "pass --input DIR (a folder with test_images/ or <id>.tif files)")
    detail = f"{len(inputs.volumes)} volume(s) in {inputs.root} ({inputs.source})"
    if inputs.missing_ids:
        detail += f"; {len(inputs.missing_ids)} id(s) in test.csv without a file: {', '.join(inputs.missing_ids[:5])}"
    if not inputs.volumes:
        return Check("competition input", "fail", detail, "check the competition data is attached")
    first = inputs.volumes[0]
    try:
        data = read_volume(first.path)
    except OfflinepackError as error:  # one bad volume must not stop a run: it fails that volume by id
        return Check("competition input", "warn", f"{detail}; {first.path.name} unreadable: {error.message}",
                     "`run` fails this volume by id and goes on with the others (--on-error empty hands in an "
                     "empty mask for it); if every volume is unreadable, re-attach the competition data")
    detail += f"; {first.id} reads as {tuple(data.array.shape)} {data.array.dtype} via {data.reader}"
    return Check("competition input", "warn" if inputs.missing_ids else "ok", detail,
                 "ids without files will be missing from the submission" if inputs.missing_ids else None)
