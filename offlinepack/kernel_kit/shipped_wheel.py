"""After the notebook ran: was the `offlinepack` the kernel ran the one from the wheelhouse?

A kernel never has the checkout offlinepack was built from, so a rehearsal must not pass because a checkout
(or any other copy) on the kernel's Python path stood in for the shipped wheel. A probe runs as a child of
the Jupyter kernel, exactly as the notebook's steps run `python -m offlinepack` (the kernel's environment and
working folder, with whatever the cells changed), and records where `offlinepack` was imported from and the
sha256 of each file of that package. The check passes only when it came from an installed distribution (an
offlinepack-<version>.dist-info beside the package, as bootstrap installs it; a checkout has none) and every
file the wheel ships under offlinepack/ is there with the hash in the wheel's RECORD.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path
from typing import Any

from offlinepack.doctor.model import Check

NAME = "shipped offlinepack"
PROBE_FILE = "offlinepack-probe.json"  # in the rehearsal folder, written from inside the sandbox
_SHOWN = 3

# standard library only: it runs with the kernel's Python, before or without anything else
PROBE = r'''
import base64, hashlib, json, os, sys
out = {"executable": sys.executable, "cwd": os.getcwd(), "pythonpath": os.environ.get("PYTHONPATH")}
try:
    import offlinepack
except Exception as exc:
    out["error"] = "%s: %s" % (type(exc).__name__, exc)
else:
    package = os.path.dirname(os.path.realpath(offlinepack.__file__))
    parent = os.path.dirname(package)
    out.update(package=package, version=getattr(offlinepack, "__version__", None), files={},
               dist_info=sorted(d for d in os.listdir(parent)
                                if d.lower().startswith("offlinepack-") and d.endswith(".dist-info")))
    for root, dirs, names in os.walk(package):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                digest = hashlib.sha256(handle.read()).digest()
            rel = os.path.relpath(path, parent).replace(os.sep, "/")
            out["files"][rel] = "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
with open(sys.argv[1], "w") as handle:
    json.dump(out, handle)
'''


def probe_cell(report: Path) -> str:
    """The code the replay runs in the Jupyter kernel after the notebook's cells."""
    return ("import subprocess as _offlinepack_probe, sys as _offlinepack_sys\n"
            f"_offlinepack_probe.run([_offlinepack_sys.executable, '-c', {PROBE!r}, {str(report)!r}])\n")


def wheel_record(wheel: Path) -> dict[str, str]:
    """path -> `sha256=...` of every file a wheel's RECORD lists under offlinepack/."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/RECORD"))
        rows = csv.reader(io.StringIO(archive.read(name).decode()))
        return {row[0]: row[1] for row in rows if len(row) >= 2 and row[0].startswith("offlinepack/") and row[1]}


def shipped_wheel(wheelhouse: Path | None) -> Path | None:
    """The newest offlinepack wheel by version (0.10 after 0.9, which file-name order gets wrong): the one
    bootstrap installs when a wheelhouse holds several."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    def version(wheel: Path) -> Any:
        try:
            return parse_wheel_filename(wheel.name)[1]
        except InvalidWheelFilename:
            return None

    wheels = list(wheelhouse.glob("offlinepack-*.whl")) if wheelhouse is not None and wheelhouse.is_dir() else []
    named = [(v, w) for w in wheels if (v := version(w)) is not None]
    return max(named, key=lambda item: (item[0], item[1].name))[1] if named else None


def check_shipped_offlinepack(probe: dict[str, Any] | None, wheel: Path | None) -> Check:
    """ok: the kernel imported offlinepack from an installed distribution matching `wheel` file for file."""
    fix = ("the kernel's steps must run the installed wheel: no PYTHONPATH entry, sys.path entry or working folder "
           "(os.chdir) that holds another offlinepack, such as a checkout; a kernel never has one")
    if probe is None:
        return Check(name=NAME, status="fail", detail="the probe of the kernel's offlinepack wrote no report",
                     fix="see the executed notebook in the rehearsal folder")
    if probe.get("error"):
        return Check(name=NAME, status="fail",
                     detail=f"offlinepack does not import in the kernel after the notebook ran: {probe['error']}",
                     fix="the install cell must run bootstrap.py from the wheelhouse that carries offlinepack's wheel")
    package = probe.get("package", "?")
    if not probe.get("dist_info"):
        return Check(name=NAME, status="fail",
                     detail=f"the kernel imported offlinepack from {package}, which is not an installed distribution "
                            f"(no offlinepack-*.dist-info beside it; working folder {probe.get('cwd')}, "
                            f"PYTHONPATH {probe.get('pythonpath') or 'unset'}): the rehearsal did not run the shipped wheel",
                     fix=fix)
    if wheel is None:
        return Check(name=NAME, status="ok", detail=f"imported from {package} ({probe['dist_info'][0]}); the "
                                                     "wheelhouse ships no offlinepack wheel to compare it with")
    expected = wheel_record(wheel)
    found = probe.get("files") or {}
    differ = sorted(path for path, digest in expected.items() if found.get(path) != digest)
    extra = sorted(path for path in found if path.endswith(".py") and path not in expected)
    if differ or extra:
        shown = [f"{p} ({'missing' if p not in found else 'differs'})" for p in differ[:_SHOWN]]
        shown += [f"{p} (not in the wheel)" for p in extra[:_SHOWN]]
        return Check(name=NAME, status="fail",
                     detail=f"the kernel imported offlinepack from {package}, which is not {wheel.name}: "
                            f"{len(differ) + len(extra)} file(s) differ, e.g. {', '.join(shown)}",
                     fix=fix)
    return Check(name=NAME, status="ok", detail=f"imported from {package}: {len(expected)} file(s) match "
                                                 f"{wheel.name}")
