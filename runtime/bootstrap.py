#!/usr/bin/env python3
"""offlinepack bootstrap: make an offline Kaggle kernel ready in one cell.

    python bootstrap.py [--wheels DIR ...] [--kaggle-root DIR] [--target DIR] [--json]
    python bootstrap.py [OPTIONS] run [ARGS ...]     install, check, then `python -m offlinepack run ARGS`
    python bootstrap.py snapshot -o FILE [--name NAME] this interpreter as an offlinepack target (JSON)

Finds wheel datasets (`--wheels`, $OFFLINEPACK_WHEELS, the folder holding this file, then
/kaggle/input/<slug>/, /kaggle/input/datasets/<owner>/<slug>/, /kaggle/input/models/...), decides per
package (satisfied, provided by the kernel, missing, wrong version installed, no file for this
interpreter, hash mismatch) and installs exactly the missing wheels, each sha256-verified: no index,
no resolver, no dependencies, no .pyc compile, never touching an installed distribution.

Exit codes: 0 ready, 1 ready with degradations (an optional package such as imagecodecs is missing,
or a version differs from the lock), 2 not ready.
Environment: OFFLINEPACK_WHEELS (dataset folders, os.pathsep-separated), OFFLINEPACK_KAGGLE_ROOT
(default /kaggle), OFFLINEPACK_TARGET (install folder), OFFLINEPACK_INSTALLER (uv or pip).

Standard library only, Python 3.8+, and nothing of offlinepack is imported: this runs before offlinepack
exists. That is also why it is one file (it is copied into every wheelhouse) rather than a package.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import os
import platform
import re
import shutil
import site
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass

__version__ = "0.1.0"

OK, DEGRADED, FAILED = 0, 1, 2
MANIFEST = "offlinepack.json"
JOURNAL = ".offlinepack-journal.json"
STAGING_PREFIX = ".offlinepack-staging-"
SEARCH_DEPTH = 6  # input/models/<owner>/<model>/<framework>/<variation>/<version>
SEARCH_MAX_DIRS = 5000  # a competition's image folders must not make the search slow
# What each default-optional package brings, and what runs without it.
OPTIONAL_DEFAULTS = {
    "imagecodecs": ("tifffile cannot decode LZW without it",
                    "LZW volumes are read with Pillow page by page (same array, slower)"),
}


# ---------------------------------------------------------------------------------------- names, tags

def canonical(name):
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def same_version(a, b):
    """Versions equal up to trailing zeros and case ("1.0" == "1.0.0"); enough for pinned locks."""
    def norm(v):
        v = v.strip().lower().lstrip("v")
        head, _, tail = v.partition("+")
        parts = head.split(".")
        while len(parts) > 1 and parts[-1] == "0":
            parts.pop()
        return ".".join(parts) + ("+" + tail if tail else "")
    return norm(a) == norm(b)


def parse_wheel_filename(filename):
    """(canonical name, version, set of "py-abi-plat" tags) or None for a name that is not a wheel."""
    if not filename.endswith(".whl"):
        return None
    parts = filename[:-4].split("-")
    if len(parts) not in (5, 6):
        return None
    name, version, pys, abis, plats = parts[0], parts[1], parts[-3], parts[-2], parts[-1]
    tags = {"%s-%s-%s" % (p, a, pl) for p in pys.split(".") for a in abis.split(".") for pl in plats.split(".")}
    return canonical(name), version, tags


def _config_var(name):
    try:
        return sysconfig.get_config_var(name)
    except (OSError, ValueError):
        return None


def glibc_version():
    """(major, minor) of the C library this interpreter runs on, or None (musl, macOS, Windows)."""
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION")  # "glibc 2.35"
    except (AttributeError, OSError, ValueError):
        return None
    match = re.match(r"glibc (\d+)\.(\d+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def musl_version(executable=None):
    """(major, minor) when the interpreter is linked against musl (its loader prints the version)."""
    executable = executable or sys.executable
    try:
        with open(executable, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return None
    match = re.search(rb"/lib/ld-musl-[^\x00]*", head)
    if not match:
        return None
    try:
        out = subprocess.run([match.group(0).decode()], capture_output=True, text=True, timeout=10).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"Version (\d+)\.(\d+)", out)
    return (int(match.group(1)), int(match.group(2))) if match else None


def platform_tags(machine=None, glibc=None, musl=None, plat=None):
    """Linux platform tags in packaging.tags order (>= 26.3: linux_* first, then manylinux, musllinux)."""
    plat = plat if plat is not None else re.sub(r"[.-]", "_", sysconfig.get_platform())
    if not plat.startswith("linux_"):
        return [plat]
    arch = machine or plat.split("_", 1)[1]
    if sys.maxsize <= 2 ** 32 and machine is None:  # a 32-bit interpreter on a 64-bit kernel
        arch = {"x86_64": "i686", "aarch64": "armv8l"}.get(arch, arch)
    archs = {"armv8l": ["armv8l", "armv7l"]}.get(arch, [arch])
    tags = ["linux_%s" % a for a in archs]
    glibc = glibc if glibc is not None else glibc_version()
    if glibc:
        oldest = (2, 4) if set(archs) & {"x86_64", "i686"} else (2, 16)
        legacy = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
        for a in archs:
            for minor in range(glibc[1], oldest[1] if glibc[0] == oldest[0] else -1, -1):
                tags.append("manylinux_%d_%d_%s" % (glibc[0], minor, a))
                if (glibc[0], minor) in legacy:
                    tags.append("%s_%s" % (legacy[(glibc[0], minor)], a))
    elif musl is None:
        musl = musl_version()
    if musl:
        tags += ["musllinux_%d_%d_%s" % (musl[0], m, a) for a in archs for m in range(musl[1], -1, -1)]
    return tags


def cpython_abis(version):
    """The interpreter's own ABI tags, as packaging's _cpython_abis computes them (3.8+)."""
    nodot = "%d%d" % version
    debug = ""
    with_debug = _config_var("Py_DEBUG")
    if with_debug or (with_debug is None and hasattr(sys, "gettotalrefcount")):
        debug = "d"
    threading = "t" if version >= (3, 13) and _config_var("Py_GIL_DISABLED") else ""
    abis = ["cp%s%s%s" % (nodot, threading, debug)]
    if debug:
        abis.append("cp%s%s" % (nodot, threading))
    return abis


def sys_tags(version=None, abis=None, platforms=None):
    """Wheel tags this CPython accepts, most preferred first: mirrors packaging.tags.sys_tags()."""
    version = tuple(version or sys.version_info[:2])
    abis = list(cpython_abis(version) if abis is None else abis)
    platforms = list(platform_tags() if platforms is None else platforms)
    interp = "cp%d%d" % version
    threaded = bool(abis) and abis[0].endswith(("t", "td")) and abis[0] != "abi3"
    tags = ["%s-%s-%s" % (interp, abi, p) for abi in abis for p in platforms]
    if not threaded:
        tags += ["%s-abi3-%s" % (interp, p) for p in platforms]
    tags += ["%s-none-%s" % (interp, p) for p in platforms]
    if not threaded:
        tags += ["cp%d%d-abi3-%s" % (version[0], m, p) for m in range(version[1] - 1, 1, -1) for p in platforms]
    pys = ["py%d%d" % version, "py%d" % version[0]] + ["py%d%d" % (version[0], m) for m in range(version[1] - 1, -1, -1)]
    tags += ["%s-none-%s" % (py, p) for py in pys for p in platforms]
    tags.append("%s-none-any" % interp)
    tags += ["%s-none-any" % py for py in pys]
    return tags


def why_incompatible(filename, tags):
    """A short human reason why a wheel does not fit, e.g. "cp311 wheel, kernel is cp312"."""
    parsed = parse_wheel_filename(filename)
    if not parsed:
        return "not a wheel file name"
    wheel_tags = sorted(parsed[2])
    pairs = {t.rsplit("-", 1)[0] for t in tags}
    plats = {t.split("-")[2] for t in tags}
    interp = tags[0].split("-")[0] if tags else "?"
    wpys = sorted({t.split("-")[0] for t in wheel_tags})
    wplats = sorted({t.split("-")[2] for t in wheel_tags})
    if not pairs & {t.rsplit("-", 1)[0] for t in wheel_tags}:
        return "%s wheel, kernel is %s" % (".".join(wpys), interp)
    if not plats & set(wplats):
        best = next((p for p in platform_tags_of(tags) if p.startswith("manylinux_")), None)
        for wp in wplats:
            match = re.match(r"manylinux_(\d+)_(\d+)_", wp)
            if match and best:
                have = re.match(r"manylinux_(\d+)_(\d+)_", best)
                return "%s wheel needs glibc %s.%s, kernel has %s.%s" % (
                    wp, match.group(1), match.group(2), have.group(1), have.group(2))
        return "%s wheel, kernel is %s" % (".".join(wplats), (platform_tags_of(tags) or ["?"])[0])
    return "%s wheel, kernel accepts %s" % (".".join(sorted({t.split("-")[1] for t in wheel_tags})), tags[0])


def platform_tags_of(tags):
    seen = []
    for tag in tags:
        plat = tag.split("-")[2]
        if plat != "any" and plat not in seen:
            seen.append(plat)
    # most specific manylinux first, for messages
    return sorted(seen, key=lambda p: (not p.startswith("manylinux_"), seen.index(p)))


# ---------------------------------------------------------------------------------------- installed

@dataclass
class Installed:
    name: str
    version: str
    location: str
    dist_info: str


def scan_installed(paths):
    """{canonical name: Installed} from the dist-info/egg-info folders on `paths`; first one wins.

    Reads folder names only (METADATA just for odd names): the no-op run must stay well under a second.
    """
    found = {}
    for location in paths:
        try:
            entries = list(os.scandir(location or "."))
        except OSError:
            continue
        for entry in entries:
            stem, dot, suffix = entry.name.rpartition(".")
            if suffix not in ("dist-info", "egg-info"):
                continue
            parts = stem.split("-")
            name, version = (parts[0], parts[1]) if len(parts) >= 2 else (None, None)
            if suffix == "dist-info" and len(parts) != 2 or not name:
                name, version = _read_name_version(entry.path)
            if not name or canonical(name) in found:
                continue
            found[canonical(name)] = Installed(name, version or "", location, entry.path)
    return found


def _read_name_version(path):
    meta = os.path.join(path, "METADATA") if os.path.isdir(path) else path
    if not os.path.exists(meta):
        meta = os.path.join(path, "PKG-INFO")
    name = version = None
    try:
        with open(meta, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    break
                if line.startswith("Name:"):
                    name = line[5:].strip()
                elif line.startswith("Version:"):
                    version = line[8:].strip()
    except OSError:
        pass
    return name, version


# ---------------------------------------------------------------------------------------- discovery

@dataclass
class Dataset:
    path: str
    origin: str
    wheels: list
    manifest: dict = None
    error: str = None  # unreadable or invalid manifest: nothing is installed from this folder
    problems: list = None  # the invalid manifest's problems, each with its field path


@dataclass
class Probe:
    path: str
    origin: str
    found: str  # "offlinepack.json, 12 wheels" / "nothing" / "does not exist"


def _look(path, origin, datasets, probes, seen):
    real = os.path.realpath(path)
    if not os.path.isdir(path):
        probes.append(Probe(path, origin, "does not exist"))
        return False
    try:
        names = sorted(os.listdir(path))
    except OSError as error:
        probes.append(Probe(path, origin, "unreadable: %s" % error.strerror))
        return False
    wheels = [n for n in names if n.endswith(".whl")]
    if MANIFEST not in names and not wheels:
        return False
    if real in seen:
        probes.append(Probe(path, origin, "same folder as %s" % seen[real]))
        return True
    seen[real] = path
    dataset = Dataset(path, origin, wheels)
    if MANIFEST in names:
        # a folder with a manifest is only ever installed from as the manifest says: a damaged one
        # means nothing of this folder is installed (not even its wheels as a plain wheel folder)
        try:
            with open(os.path.join(path, MANIFEST), "rb") as handle:
                manifest = json.loads(handle.read().decode("utf-8"))
        except (OSError, ValueError) as error:
            dataset.error = "%s: %s" % (MANIFEST, getattr(error, "strerror", None) or error)
        else:
            problems = manifest_problems(manifest, path)
            if problems:
                dataset.error = "%s: %d problem(s) in its fields" % (MANIFEST, len(problems))
                dataset.problems = problems
            else:
                dataset.manifest = manifest
    datasets.append(dataset)
    found = "%s, %d wheels" % (MANIFEST if dataset.manifest else "no manifest", len(wheels))
    probes.append(Probe(path, origin, dataset.error or found))
    return True


def _type_name(value):
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "object",
            type(None): "null"}.get(type(value), type(value).__name__)


def _expect(problems, where, value, kind, what):
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        problems.append("%s: expected %s, got %s" % (where, what, _type_name(value)))
        return False
    return True


def escapes(folder, rel):
    """Why `rel` (a manifest or lock path) does not stay inside `folder`, or None when it does."""
    if not rel or rel.startswith(("/", "\\")) or os.path.isabs(rel) or re.match(r"^[A-Za-z]:", rel):
        return "an absolute path"
    parts = re.split(r"[/\\]", rel)
    if ".." in parts:
        return "a path that leaves the wheelhouse folder ('..')"
    real_folder = os.path.realpath(folder)
    real = os.path.realpath(os.path.join(folder, rel))
    if real != real_folder and not real.startswith(real_folder.rstrip(os.sep) + os.sep):
        return "a link that leaves the wheelhouse folder (-> %s)" % real
    return None


def manifest_problems(manifest, folder):
    """Every problem with an offlinepack.json's shape, each with its field path (`packages[0].files[1].sha256:
    expected a string, got integer`); checked whole before anything is installed from it."""
    problems = []
    if not _expect(problems, "the manifest", manifest, dict, "an object"):
        return problems
    if manifest.get("format") != "offlinepack-wheelhouse":
        problems.append("format: expected \"offlinepack-wheelhouse\", got %s" % json.dumps(manifest.get("format")))
    if "version" in manifest:
        _expect(problems, "version", manifest["version"], int, "an integer")
    target = manifest.get("target", {})
    if _expect(problems, "target", target, dict, "an object"):
        for key in ("name", "python_version", "implementation"):
            if key in target:
                _expect(problems, "target.%s" % key, target[key], str, "a string")
        tags = target.get("tags", [])
        if _expect(problems, "target.tags", tags, list, "a list"):
            for i, tag in enumerate(tags):
                _expect(problems, "target.tags[%d]" % i, tag, str, "a string")
    if "lock" in manifest and _expect(problems, "lock", manifest["lock"], str, "a string"):
        why = escapes(folder, manifest["lock"])
        if why:
            problems.append("lock: %r is %s" % (manifest["lock"], why))
    packages = manifest.get("packages", [])
    if _expect(problems, "packages", packages, list, "a list"):
        for i, pkg in enumerate(packages):
            where = "packages[%d]" % i
            if not _expect(problems, where, pkg, dict, "an object"):
                continue
            if _expect(problems, where + ".name", pkg.get("name"), str, "a string") and not pkg["name"].strip():
                problems.append(where + ".name: empty")
            if "version" in pkg:
                _expect(problems, where + ".version", pkg["version"], str, "a string")
            if "optional" in pkg:
                _expect(problems, where + ".optional", pkg["optional"], bool, "true or false")
            files = pkg.get("files", [])
            if not _expect(problems, where + ".files", files, list, "a list"):
                continue
            for j, entry in enumerate(files):
                at = "%s.files[%d]" % (where, j)
                if not _expect(problems, at, entry, dict, "an object"):
                    continue
                if _expect(problems, at + ".path", entry.get("path"), str, "a string"):
                    why = escapes(folder, entry["path"])
                    if why:
                        problems.append("%s.path: %r is %s" % (at, entry["path"], why))
                sha = entry.get("sha256")
                if _expect(problems, at + ".sha256", sha, str, "a string") and not re.match(r"^[0-9a-fA-F]{64}$", sha):
                    problems.append("%s.sha256: expected 64 hex digits, got %r" % (at, sha[:80]))
                if "size" in entry:
                    _expect(problems, at + ".size", entry["size"], int, "an integer")
    provided = manifest.get("provided", [])
    if _expect(problems, "provided", provided, list, "a list"):
        for i, item in enumerate(provided):
            where = "provided[%d]" % i
            if _expect(problems, where, item, dict, "an object"):
                _expect(problems, where + ".name", item.get("name"), str, "a string")
                if "version" in item:
                    _expect(problems, where + ".version", item["version"], str, "a string")
    return problems


def discover(wheel_dirs=(), env_dirs=(), script_dir=None, kaggle_root="/kaggle"):
    """Every wheel dataset, in priority order, and every place looked at (for the report)."""
    datasets, probes, seen = [], [], {}
    for origin, paths in (("--wheels", wheel_dirs), ("OFFLINEPACK_WHEELS", env_dirs)):
        for path in paths:
            if not _look(path, origin, datasets, probes, seen) and os.path.isdir(path):
                probes.append(Probe(path, origin, "no wheels"))
    if script_dir and not _look(script_dir, "bootstrap.py's folder", datasets, probes, seen):
        probes.append(Probe(script_dir, "bootstrap.py's folder", "no wheels"))
    root = os.path.join(kaggle_root, "input")
    if not os.path.isdir(root):
        probes.append(Probe(root, "Kaggle inputs", "does not exist"))
        return datasets, probes
    before, first_probe, visited, queue = len(datasets), len(probes), 0, [(root, 0)]
    while queue and visited < SEARCH_MAX_DIRS:
        path, depth = queue.pop(0)
        visited += 1
        if path != root and _look(path, "Kaggle inputs", datasets, probes, seen):
            continue  # a dataset is flat: nothing to find below it
        if depth >= SEARCH_DEPTH:
            continue
        try:
            subdirs = sorted(e.path for e in os.scandir(path) if e.is_dir() and not e.name.startswith("."))
        except OSError:
            continue
        queue.extend((sub, depth + 1) for sub in subdirs)
    again = any(p.found.startswith("same folder as") for p in probes[first_probe:])  # found before: not "nothing"
    if len(datasets) == before and not again:
        probes.append(Probe(root, "Kaggle inputs", "no wheel dataset (searched %d folders)" % visited))
    if any(d.manifest for d in datasets):
        for probe in probes:
            if probe.origin == "Kaggle inputs" and probe.found.startswith("no manifest"):
                probe.found += " (not installed: an offlinepack.json wheelhouse was found; its files may still be used)"
    return datasets, probes


# ---------------------------------------------------------------------------------------- decisions

@dataclass
class Decision:
    name: str
    version: str
    # satisfied | provided | installed | install (planned) | missing (not installing: doctor) | install-failed |
    # wrong-version | provided-missing | incompatible | hash-mismatch | missing-file | absent (default-optional)
    status: str
    severity: str  # ok | warn | fail
    detail: str
    fix: str = None
    optional: bool = False
    file: str = None  # the wheel to install
    sha256: str = None


@dataclass
class Wanted:
    name: str
    version: str
    files: list  # [(path, sha256 or None)]
    dataset: str
    optional: bool


def _wanted(datasets, tags):
    """Packages the datasets ask for, keyed by canonical name. A manifest's entry beats a bare wheel."""
    by_name = {}
    others = {}  # file name -> [dataset paths], to find a manifest's file in another dataset
    for ds in datasets:
        if ds.error:
            continue
        for wheel in ds.wheels:
            others.setdefault(wheel, []).append(ds.path)
    for ds in datasets:
        if not ds.manifest:
            continue
        for pkg in ds.manifest.get("packages", []):
            if not isinstance(pkg, dict) or not pkg.get("name"):
                continue
            key = canonical(pkg["name"])
            if key in by_name:
                continue
            files = []
            for f in pkg.get("files", []) or []:
                rel = f.get("path") if isinstance(f, dict) else None
                if not rel:
                    continue
                local = os.path.join(ds.path, rel)
                alternatives = [os.path.join(d, os.path.basename(rel)) for d in others.get(os.path.basename(rel), [])]
                paths = [local] + [p for p in alternatives if p != local]
                files.append((paths, f.get("sha256")))
            by_name[key] = Wanted(pkg["name"], str(pkg.get("version", "")), files, ds.path, bool(pkg.get("optional")))
    for ds in datasets:
        if ds.manifest or ds.error or (by_name and ds.origin == "Kaggle inputs"):
            # a stray wheel folder attached to the notebook must not override or break the wheelhouse; a
            # folder whose offlinepack.json is damaged is installed from not at all
            continue
        groups = {}
        for wheel in ds.wheels:
            parsed = parse_wheel_filename(wheel)
            if parsed:
                groups.setdefault(parsed[0], []).append((wheel, parsed))
        for key, items in groups.items():
            if key in by_name:
                continue
            rank = {t: i for i, t in enumerate(tags)}
            fits = [(min(rank[t] for t in p[2] if t in rank), w, p) for w, p in items if p[2] & rank.keys()]
            # newest compatible version, then best tag; without any fit keep them all for the message
            fits.sort(key=lambda x: (_version_key(x[2][1]), -x[0]), reverse=True)
            chosen = [fits[0][1]] if fits else [w for w, _ in items]
            version = fits[0][2][1] if fits else items[0][1][1]
            by_name[key] = Wanted(key, version, [([os.path.join(ds.path, w)], None) for w in chosen], ds.path, False)
    return by_name


def _version_key(version):
    return [int(p) if p.isdigit() else -1 for p in re.split(r"[.+-]", version)]


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _loss(name):
    lost, fallback = OPTIONAL_DEFAULTS.get(canonical(name), ("its features are unavailable", "offlinepack runs without it"))
    return "lost: %s; fallback: %s" % (lost, fallback)


def decide(datasets, installed, tags):
    """One Decision per package the datasets carry or provide, plus the default-optional ones.

    Every file a manifest lists is checked against its sha256 before it may be installed."""
    decisions = []
    wanted = _wanted(datasets, tags)
    rank = {t: i for i, t in enumerate(tags)}
    for key, want in wanted.items():
        optional = want.optional or key in OPTIONAL_DEFAULTS
        have = installed.get(key)
        d = Decision(want.name, want.version, "", "ok", "", optional=optional)
        decisions.append(d)
        if have is not None:
            if not want.version or same_version(have.version, want.version):
                d.status, d.detail = "satisfied", "installed (%s)" % have.location
            else:
                d.status, d.severity = "wrong-version", "warn"
                d.detail = "the kernel has %s, the lock wants %s; the installed one is kept" % (have.version, want.version)
                d.fix = "rebuild the wheelhouse for this kernel: `python bootstrap.py snapshot -o kernel.json`, then `offlinepack build ... --target kernel.json`"
            continue
        candidates = []
        for paths, sha in want.files:
            name = os.path.basename(paths[0])
            parsed = parse_wheel_filename(name)
            if parsed and parsed[2] & rank.keys():
                candidates.append((min(rank[t] for t in parsed[2] if t in rank), paths, sha))
        if not want.files:
            d.status, d.severity, d.detail = "missing-file", "fail", "the manifest lists no file for it"
        elif not candidates:
            names = [os.path.basename(p[0]) for p, _ in want.files]
            d.status, d.severity = "incompatible", "fail"
            d.detail = "no file for this interpreter: " + "; ".join("%s (%s)" % (n, why_incompatible(n, tags)) for n in names)
            d.fix = "rebuild the wheelhouse for this kernel's Python (`python bootstrap.py snapshot -o kernel.json` here, then `offlinepack build --target kernel.json`)"
        else:
            candidates.sort(key=lambda c: c[0])
            problems = []
            for _, paths, sha in candidates:
                for path in paths:
                    if not os.path.isfile(path):
                        problems.append(("missing-file", "%s is not in the dataset" % path))
                        continue
                    if sha:  # a manifest's file is always checked, sha256 first, then installed
                        got = sha256_file(path)
                        if got != sha.lower():
                            problems.append(("hash-mismatch", "%s: sha256 %s, the lock says %s" % (path, got[:16] + "…", sha[:16] + "…")))
                            continue
                    d.status, d.file, d.sha256 = "install", path, sha
                    d.detail = "missing; will install %s" % os.path.basename(path)
                    break
                if d.file:
                    break
            if not d.file:
                d.status, d.severity = problems[-1][0], "fail"
                d.detail = "; ".join(p[1] for p in problems)
                d.fix = ("the file is corrupt or was replaced: upload the wheelhouse again (`offlinepack build --force`)"
                         if d.status == "hash-mismatch" else "attach the complete wheelhouse dataset")
        if optional and d.severity == "fail":
            d.severity = "warn"
            d.detail = "not installed: %s; %s" % (d.detail, _loss(key))
    seen = set(wanted)
    for ds in datasets:
        for item in (ds.manifest or {}).get("provided", []) or []:
            if not isinstance(item, dict) or not item.get("name") or canonical(item["name"]) in seen:
                continue
            key = canonical(item["name"])
            seen.add(key)
            have, want = installed.get(key), str(item.get("version", ""))
            d = Decision(item["name"], want, "provided", "ok", "provided by the kernel (%s)" % (have.version if have else "?"))
            if have is None:
                d.status, d.severity = "provided-missing", "fail"
                d.detail = "the wheelhouse expects the kernel to provide %s %s, but it is not installed" % (item["name"], want)
                d.fix = "use the kernel image the wheelhouse was built for, or rebuild from a snapshot of this kernel"
            elif want and not same_version(have.version, want):
                d.status, d.severity = "wrong-version", "warn"
                d.detail = "the kernel provides %s, the wheelhouse was built against %s" % (have.version, want)
                d.fix = "rebuild from a snapshot of this kernel: `python bootstrap.py snapshot -o kernel.json`"
            decisions.append(d)
    for key in OPTIONAL_DEFAULTS:
        if key not in seen and key not in installed:
            decisions.append(Decision(key, "", "absent", "warn", "not installed and no dataset carries it; " + _loss(key),
                                      fix="add %s to the lock (it is optional by default)" % key, optional=True))
    return decisions


# ---------------------------------------------------------------------------------------- offlinepack's own needs

_MARKER_TOKEN = re.compile(r"""\s*(?:(?P<str>'[^']*'|"[^"]*")"""
                           r"""|(?P<op>===|==|!=|<=|>=|~=|<|>|\(|\)|not\s+in\b|in\b|and\b|or\b)"""
                           r"""|(?P<var>[A-Za-z_][A-Za-z0-9_.]*))""")
_VERSION_VARS = ("python_version", "python_full_version", "implementation_version", "platform_release")


def marker_true(marker, env):
    """Evaluate a PEP 508 marker (enough of it for Requires-Dist: and/or/parentheses, comparisons, in).

    A marker this cannot read counts as true: a requirement is then checked rather than skipped."""
    tokens, pos = [], 0
    while pos < len(marker):
        match = _MARKER_TOKEN.match(marker, pos)
        if not match or match.end() == pos:
            if marker[pos:].strip():
                return True
            break
        kind = match.lastgroup
        text = match.group(kind)
        tokens.append((kind, re.sub(r"\s+", " ", text)))
        pos = match.end()

    def value(token):
        kind, text = token
        return text[1:-1] if kind == "str" else env.get(text, "")

    def compare(left, op, right, version):
        if op in ("in", "not in"):
            return (left in right) == (op == "in")
        if version and op not in ("===",):
            a, b = _version_key(left), _version_key(right)
        else:
            a, b = left, right
        if op == "~=":
            return a >= b
        return {"==": a == b, "===": left == right, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b,
                ">=": a >= b}.get(op, True)

    def parse_or(i):
        result, i = parse_and(i)
        while i < len(tokens) and tokens[i] == ("op", "or"):
            right, i = parse_and(i + 1)
            result = result or right
        return result, i

    def parse_and(i):
        result, i = parse_atom(i)
        while i < len(tokens) and tokens[i] == ("op", "and"):
            right, i = parse_atom(i + 1)
            result = result and right
        return result, i

    def parse_atom(i):
        if tokens[i] == ("op", "("):
            result, i = parse_or(i + 1)
            return result, i + 1
        left, op, right = tokens[i], tokens[i + 1][1], tokens[i + 2]
        version = any(t == ("var", name) for t in (left, right) for name in _VERSION_VARS)
        if ("var", "extra") in (left, right):
            return bool(env.get("extra")) and compare(canonical(value(left)), op, canonical(value(right)), False), i + 3
        return compare(value(left), op, value(right), version), i + 3

    try:
        result, end = parse_or(0)
        return result if end == len(tokens) else True
    except IndexError:
        return True


def requires_dist(dist_info):
    """The Requires-Dist values of an installed distribution (dist-info METADATA)."""
    found = []
    try:
        with open(os.path.join(dist_info, "METADATA"), encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    break
                if line.lower().startswith("requires-dist:"):
                    found.append(line.split(":", 1)[1].strip())
    except OSError:
        pass
    return found


# Distributions that only back-port a standard-library module (name -> (module, the Python that has it)).
# `offlinepack lock` drops them for a target whose Python has the module, so they are absent on purpose.
# The same table as offlinepack/kernel_target/backports.py (a test keeps the two equal).
STDLIB_BACKPORTS = {
    "argparse": ("argparse", (3, 2)),
    "asyncio": ("asyncio", (3, 4)),
    "contextvars": ("contextvars", (3, 7)),
    "dataclasses": ("dataclasses", (3, 7)),
    "enum34": ("enum", (3, 4)),
    "futures": ("concurrent.futures", (3, 2)),
    "ipaddress": ("ipaddress", (3, 3)),
    "pathlib": ("pathlib", (3, 4)),
    "statistics": ("statistics", (3, 4)),
    "typing": ("typing", (3, 7)),
    "unittest2": ("unittest", (3, 5)),
    "traceback2": ("traceback", (3, 5)),
    "linecache2": ("linecache", (3, 5)),
}
# offlinepack's dependencies that only `offlinepack lock` uses, on the user's machine: never imported in the
# kernel (bootstrap installs offlinepack with --no-deps), so their absence there is no gap.
MACHINE_ONLY_DEPENDENCIES = {"offlinepack": ("uv",)}


def _python_has(name, env):
    """True when `name` is a back-port of a standard-library module the marker environment's Python has."""
    entry = STDLIB_BACKPORTS.get(canonical(name))
    try:
        have = tuple(int(x) for x in str(env.get("python_version", "")).split(".")[:2])
    except ValueError:
        return False
    return entry is not None and have >= entry[1]


def missing_dependencies(installed, root="offlinepack", env=None):
    """[(name, requirement, needed by)] for every distribution `root` needs, directly or through another,
    that `installed` lacks: what would make `import offlinepack` fail after a "ready"."""
    env = dict(marker_environment() if env is None else env, extra="")
    missing, seen, queue = [], {canonical(root)}, [canonical(root)]
    while queue:
        key = queue.pop(0)
        dist = installed.get(key)
        if dist is None or not dist.dist_info.endswith(".dist-info"):
            continue
        for requirement in requires_dist(dist.dist_info):
            spec, _, marker = requirement.partition(";")
            if marker.strip() and not marker_true(marker.strip(), env):
                continue
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
            if not match or canonical(match.group(1)) in seen:
                continue
            name = canonical(match.group(1))
            seen.add(name)
            if name in installed:
                queue.append(name)
            elif name in MACHINE_ONLY_DEPENDENCIES.get(key, ()) or _python_has(name, env):
                continue
            else:
                missing.append((match.group(1), spec.strip(), dist.name))
    return missing


# ---------------------------------------------------------------------------------------- install

def _writable(path):
    """A real write test: os.access says yes to root on a read-only bind mount's parent, and chmod-w does not stop root."""
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".offlinepack-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
        return True
    except OSError:
        return False


@dataclass
class InstallTarget:
    site: str  # where packages go
    scripts: str  # where console scripts go
    kind: str  # "site-packages" | "user site" | "target folder"
    on_path: bool  # new processes of this interpreter see it without help
    note: str = ""


def choose_target(explicit=None, kaggle_root="/kaggle"):
    """site-packages when writable, else the user site (picked up by site.py), else a folder on PYTHONPATH."""
    if explicit:
        return InstallTarget(explicit, os.path.join(explicit, "bin"), "target folder", _on_default_path(explicit),
                             "chosen with --target / OFFLINEPACK_TARGET")
    purelib = sysconfig.get_paths()["purelib"]
    if _writable(purelib):
        return InstallTarget(purelib, sysconfig.get_paths()["scripts"], "site-packages", True)
    note = "%s is read-only" % purelib
    if site.ENABLE_USER_SITE:
        user = site.getusersitepackages()
        if _writable(user):
            scheme = "posix_user" if os.name == "posix" else "nt_user"
            return InstallTarget(user, sysconfig.get_paths(scheme)["scripts"], "user site", True,
                                 note + "; the user site is on sys.path of every new process (in a notebook "
                                 "started before it existed: import site; site.addsitedir(%r))" % user)
    working = os.path.join(kaggle_root, "working")
    base = working if os.path.isdir(working) else os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, ".offlinepack-site")
    return InstallTarget(folder, os.path.join(folder, "bin"), "target folder", _on_default_path(folder),
                         note + "; later processes need PYTHONPATH=%s" % folder)


def _on_default_path(folder):
    real = os.path.realpath(folder)
    return any(os.path.realpath(p) == real for p in sys.path if p)


class OutputError(Exception):
    """-o names something a whole-file replace must not touch (a device, FIFO, socket, folder)."""


def resolve_output(path):
    """offlinepack/atomic.py's rules, standard library only: the regular file a write to `path` replaces.
    A symlink is written through (its final target is replaced, the link stays); a device, FIFO, socket or
    folder is refused (a rename would turn /dev/full into a regular file)."""
    real = os.path.realpath(path)
    try:
        info = os.stat(real)
    except FileNotFoundError:
        return real
    kinds = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))
    for test, kind in kinds:
        if test(info.st_mode):
            raise OutputError("%s%s is %s, not a regular file; nothing was written"
                              % (path, "" if real == os.path.abspath(path) else " (-> %s)" % real, kind))
    return real


def _write_json_atomic(path, data):
    """Old content or new, never a partial file; a new file gets the umask's mode, an existing one keeps its."""
    real = resolve_output(path)
    try:
        mode = stat.S_IMODE(os.stat(real).st_mode)
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        mode = 0o666 & ~mask
    fd, tmp = tempfile.mkstemp(prefix=".offlinepack-tmp-", dir=os.path.dirname(real))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, real)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)


def repair(site_dir):
    """Undo an install that was killed half-way: remove what its journal says it created, and stale staging.

    Returns the paths removed; the packages then count as missing and are installed again.
    """
    removed = []
    journal = os.path.join(site_dir, JOURNAL)
    if os.path.exists(journal):
        try:
            with open(journal, encoding="utf-8") as handle:
                created = json.load(handle).get("created", [])
        except (OSError, ValueError):
            created = []
        # dist-info folders first, so nothing is left registered while its files go
        for path in sorted(created, key=lambda p: not p.endswith(".dist-info")):
            if os.path.lexists(path):
                _remove(path)
                removed.append(path)
        os.unlink(journal)
    try:
        stale = [e.path for e in os.scandir(site_dir) if e.name.startswith(STAGING_PREFIX)]
    except OSError:
        stale = []
    for path in stale:
        if _in_use(path):
            continue  # another install is writing there now; cleaned by a later run once it is done
        _remove(path)
        removed.append(path)
    return removed


def find_uv(datasets):
    """uv from PATH, else a uv binary or uv wheel carried by a dataset (unpacked to a cache folder)."""
    found = shutil.which("uv")
    if found:
        return found
    for ds in datasets:
        if ds.error:
            continue  # a damaged manifest: nothing of this folder is used, not even its uv
        listed = {os.path.basename(f.get("path", "")): f.get("sha256") for p in (ds.manifest or {}).get("packages", [])
                  for f in p.get("files", [])}
        binary = os.path.join(ds.path, "uv")
        if os.path.isfile(binary) and os.access(binary, os.X_OK):
            return binary
        for wheel in ds.wheels:
            parsed = parse_wheel_filename(wheel)
            if not parsed or parsed[0] != "uv" or not parsed[2] & set(sys_tags()):
                continue
            if listed.get(wheel) and sha256_file(os.path.join(ds.path, wheel)) != listed[wheel].lower():
                continue  # the manifest's uv, but not the bytes it names
            dest = os.path.join(tempfile.gettempdir(), "offlinepack-uv-%s" % parsed[1])
            exe = os.path.join(dest, "uv")
            if not os.path.exists(exe):
                with zipfile.ZipFile(os.path.join(ds.path, wheel)) as archive:
                    member = next((m for m in archive.namelist() if m.endswith(".data/scripts/uv")), None)
                    if member is None:
                        continue
                    os.makedirs(dest, exist_ok=True)
                    with archive.open(member) as src, open(exe + ".tmp", "wb") as out:
                        shutil.copyfileobj(src, out)
                os.chmod(exe + ".tmp", 0o755)
                os.replace(exe + ".tmp", exe)
            return exe
    return None


def installer_command(choice, uv, staging, files):
    if choice == "uv":
        return [uv, "pip", "install", "--python", sys.executable, "--no-deps", "--offline", "--no-index",
                "--quiet", "--target", staging] + files
    return [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--no-compile", "--quiet",
            "--disable-pip-version-check", "--no-warn-script-location", "--target", staging] + files


def _plan_moves(src, dst, created, conflicts, skip=()):
    """What renaming `src` into `dst` creates; folders that exist already (namespace packages) are merged."""
    for entry in sorted(os.listdir(src)):
        if entry in skip:
            continue
        s, d = os.path.join(src, entry), os.path.join(dst, entry)
        if not os.path.lexists(d):
            created.append((s, d))
        elif os.path.isdir(s) and os.path.isdir(d) and not os.path.islink(d):
            _plan_moves(s, d, created, conflicts)
        else:
            conflicts.append(d)


def _fix_record(dist_info, site_dir, scripts_dir):
    """Scripts were written to staging/bin; point their RECORD lines at where they now live."""
    record = os.path.join(dist_info, "RECORD")
    if not os.path.exists(record):
        return
    with open(record, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    changed = False
    for row in rows:
        path = row[0] if row else ""
        bare = path
        while bare.startswith("../"):
            bare = bare[3:]
        if bare.startswith("bin/"):
            row[0] = os.path.relpath(os.path.join(scripts_dir, bare[4:]), site_dir).replace(os.sep, "/")
            changed = changed or row[0] != path
    if changed:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        with open(record, "w", encoding="utf-8") as handle:
            handle.write(out.getvalue())


def _die_with_parent():
    """A preexec_fn asking Linux to SIGKILL the child when this process dies (PR_SET_PDEATHSIG); None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()

    def arm():
        try:
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)
    return arm


def _hold_staging_lock(staging):
    """An exclusive lock on `<staging>.lock` (fd, or None without fcntl), held by us and by the installer."""
    try:
        import fcntl
        fd = os.open(staging + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd
    except (ImportError, OSError):
        return None


def _release_staging_lock(staging, fd):
    if fd is None:
        return
    try:
        os.unlink(staging + ".lock")
    except OSError:
        pass
    os.close(fd)


def _in_use(path):
    """Whether a staging entry's lock is held: an installer (ours or an orphan's) is still writing there."""
    try:
        import fcntl
    except ImportError:
        return False
    lock = (path[:-len(".lock")] if path.endswith(".lock") else path) + ".lock"
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def install(files, target, choice, uv):
    """Install `files` (verified wheels) into target.site without touching anything already there.

    The installer writes into a staging folder inside the site folder (a name Python cannot import);
    then a journal lists every path about to be created, files and packages are renamed into place and
    each dist-info goes last, so a package is only registered once complete. A kill at any point leaves
    either staging (ignored) or a journal that the next run's repair() rolls back.
    """
    os.makedirs(target.site, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=target.site)
    lock = _hold_staging_lock(staging)
    try:
        env = dict(os.environ, PIP_NO_INPUT="1", UV_NO_PROGRESS="1", PYTHONDONTWRITEBYTECODE="1")
        # the installer dies with bootstrap (a killed cell): an orphan must not write into a staging folder
        # after the next run cleaned it; it also holds the staging lock while it lives, so repair() skips it
        proc = subprocess.run(installer_command(choice, uv, staging, files), capture_output=True, text=True, env=env,
                              preexec_fn=_die_with_parent(), pass_fds=(lock,) if lock is not None else ())
        if proc.returncode != 0:
            raise RuntimeError("%s failed (exit %d): %s" % (choice, proc.returncode, (proc.stderr or proc.stdout).strip()[-2000:]))
        scripts_src = os.path.join(staging, "bin")
        for junk in (".lock",):
            if os.path.lexists(os.path.join(staging, junk)):
                os.unlink(os.path.join(staging, junk))
        if not _writable(target.scripts):
            target.scripts = os.path.join(target.site, ".offlinepack-bin")
        for entry in os.listdir(staging):
            if entry.endswith(".dist-info"):
                _fix_record(os.path.join(staging, entry), target.site, target.scripts)
        moves, conflicts = [], []
        if os.path.isdir(scripts_src):
            os.makedirs(target.scripts, exist_ok=True)
            _plan_moves(scripts_src, target.scripts, moves, conflicts)
        lib_moves = []
        _plan_moves(staging, target.site, lib_moves, conflicts, skip=("bin",))
        if conflicts:
            raise RuntimeError("these paths exist already and belong to something installed; nothing was changed: "
                               + ", ".join(conflicts[:10]))
        lib_moves.sort(key=lambda m: m[1].endswith(".dist-info"))  # register last
        moves = moves + lib_moves
        _write_json_atomic(os.path.join(target.site, JOURNAL), {"created": [d for _, d in moves]})
        kill_after = int(os.environ.get("OFFLINEPACK_FAULT_KILL_AFTER_MOVES", "-1"))  # fault injection for tests
        for done, (s, d) in enumerate(moves):
            if done == kill_after:
                os.kill(os.getpid(), 9)
            os.replace(s, d)
        os.unlink(os.path.join(target.site, JOURNAL))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        _release_staging_lock(staging, lock)


# ---------------------------------------------------------------------------------------- the whole run

@dataclass
class Options:
    wheel_dirs: tuple = ()
    env_dirs: tuple = ()  # from OFFLINEPACK_WHEELS
    script_dir: str = None
    kaggle_root: str = "/kaggle"
    target: str = None  # explicit install folder
    installer: str = None  # "uv" | "pip" | None (uv when found)
    install: bool = True  # False: decide only (doctor)

    @classmethod
    def from_env(cls, environ=None, **kwargs):
        environ = os.environ if environ is None else environ
        env_dirs = tuple(p for p in environ.get("OFFLINEPACK_WHEELS", "").split(os.pathsep) if p)
        defaults = dict(env_dirs=env_dirs, kaggle_root=environ.get("OFFLINEPACK_KAGGLE_ROOT") or "/kaggle",
                        target=environ.get("OFFLINEPACK_TARGET") or None,
                        installer=environ.get("OFFLINEPACK_INSTALLER") or None)
        defaults.update({k: v for k, v in kwargs.items() if v is not None})
        # absolute: the PYTHONPATH line printed for later processes must work from any folder
        defaults["kaggle_root"] = os.path.abspath(defaults["kaggle_root"])
        if defaults.get("target"):
            defaults["target"] = os.path.abspath(defaults["target"])
        return cls(**defaults)


def severity_code(decisions, extra_fail=False):
    if extra_fail or any(d.severity == "fail" for d in decisions):
        return FAILED
    return DEGRADED if any(d.severity == "warn" for d in decisions) else OK


def bootstrap(options, tags=None):
    """Discover, decide, install what is missing; returns the report (a JSON-ready dict)."""
    started = time.perf_counter()
    tags = tags or sys_tags()
    datasets, probes = discover(options.wheel_dirs, options.env_dirs, options.script_dir, options.kaggle_root)
    report = {
        "format": "offlinepack-bootstrap-report", "version": 1, "bootstrap_version": __version__,
        "python": {"executable": sys.executable, "version": platform.python_version(), "tags": tags[:3]},
        "searched": [asdict(p) for p in probes],
        "datasets": [{"path": d.path, "origin": d.origin, "manifest": bool(d.manifest), "wheels": len(d.wheels),
                      "error": d.error, "problems": d.problems or []} for d in datasets],
        "problems": [], "packages": [], "install": None, "repaired": [],
    }
    target = choose_target(options.target, options.kaggle_root) if options.install else None
    extra_paths = [target.site] if target and not target.on_path else []
    if target and options.install and os.path.isdir(target.site):
        report["repaired"] = repair(target.site)
    if not datasets:
        report["problems"].append(
            "no wheel dataset found (looked in every path listed above); attach the wheelhouse dataset in the "
            "notebook's Input panel (+ Add Input), or pass --wheels DIR / set OFFLINEPACK_WHEELS")
    for ds in datasets:
        if ds.error:
            for problem in ds.problems or ():
                report["problems"].append("%s: %s" % (os.path.join(ds.path, MANIFEST), problem))
            report["problems"].append(
                "%s: unreadable manifest (%s): nothing is installed from this folder; rebuild it with "
                "`offlinepack build --force` and upload it again" % (ds.path, ds.error))
    installed = scan_installed(extra_paths + [p for p in sys.path if p])
    decisions = decide(datasets, installed, tags)
    todo = [d for d in decisions if d.status == "install"]
    if todo and options.install:
        choice = options.installer
        uv = find_uv(datasets) if choice in (None, "uv") else None
        if choice is None:
            choice = "uv" if uv else "pip"
        missing = None
        if choice == "uv" and not uv:
            missing = "uv was asked for (OFFLINEPACK_INSTALLER=uv) but is neither on PATH nor in a dataset"
        elif choice == "pip" and not _has_pip():
            missing = "neither uv nor pip is available to this interpreter; put uv on PATH or a uv wheel in the dataset"
        t0 = time.perf_counter()
        error = missing
        if missing:
            report["problems"].append(missing)
        else:
            try:
                install([d.file for d in todo], target, choice, uv)
            except (RuntimeError, OSError) as exc:
                error = str(exc)
        report["install"] = {"installer": None if missing else choice, "target": target.site, "kind": target.kind,
                             "scripts": target.scripts, "on_path": target.on_path, "note": target.note,
                             "seconds": round(time.perf_counter() - t0, 3),
                             "files": [] if missing else [os.path.basename(d.file) for d in todo], "error": error}
        for d in todo:
            if error:
                d.status, d.severity = "install-failed", "warn" if d.optional else "fail"
                d.detail = "not installed: %s" % error.splitlines()[0][:300]
                d.fix = ("put uv on PATH or in the dataset" if missing
                         else "see the install error below; free disk space or pass a writable --target DIR")
            else:
                d.status, d.detail = "installed", "installed now from %s" % os.path.basename(d.file)
        if not error and not target.on_path and target.site not in sys.path:
            sys.path.insert(0, target.site)
    elif todo:
        for d in todo:
            d.status, d.severity = "missing", "warn" if d.optional else "fail"
            d.detail = "missing (the wheelhouse has %s): run bootstrap.py to install it" % os.path.basename(d.file)
            d.fix = "python bootstrap.py"
    if target and not target.on_path and options.install:
        report["install"] = report["install"] or {"target": target.site, "kind": target.kind, "on_path": False,
                                                  "note": target.note, "files": []}
        report["install"]["pythonpath"] = target.site
    if options.install and not (report["install"] or {}).get("error"):
        # "ready" must mean `python -m offlinepack` imports: its declared dependencies are all present
        now = scan_installed([p for p in [target.site] if p] + [p for p in sys.path if p])
        for name, requirement, needed_by in missing_dependencies(now):
            decisions.append(Decision(
                name, "", "dependency-missing", "fail",
                "%s needs %s (Requires-Dist: %s), but neither the kernel nor the wheelhouse has it: "
                "`python -m offlinepack` would fail to import" % (needed_by, name, requirement),
                fix="rebuild the wheelhouse from a snapshot of this kernel (`python bootstrap.py snapshot -o "
                    "kernel.json`, then `offlinepack build LOCK --target kernel.json`): build ships what the "
                    "kernel lacks"))
    report["packages"] = [asdict(d) for d in decisions]
    report["exit_code"] = severity_code(decisions, bool(report["problems"]))
    report["status"] = {OK: "ready", DEGRADED: "ready with degradations", FAILED: "not ready"}[report["exit_code"]]
    report["seconds"] = round(time.perf_counter() - started, 3)
    return report


def _has_pip():
    import importlib.util
    return importlib.util.find_spec("pip") is not None


def _symbols():
    try:
        "✓✗".encode(sys.stdout.encoding or "ascii")
        return {"ok": "✓", "warn": "!", "fail": "✗"}
    except (UnicodeEncodeError, LookupError):
        return {"ok": "ok", "warn": "!", "fail": "X"}


def render(report, out=None):
    out = out or sys.stdout
    sym = _symbols()
    w = out.write
    py = report["python"]
    w("offlinepack bootstrap %s · Python %s · %s\n" % (report["bootstrap_version"], py["version"], py["executable"]))
    w("  best wheel tags: %s\n" % ", ".join(py["tags"]))
    w("looked for wheel datasets:\n")
    for p in report["searched"]:
        w("  %-22s %s: %s\n" % (p["origin"], p["path"], p["found"]))
    for path in report["repaired"]:
        w("repaired an interrupted install: removed %s\n" % path)
    w("packages:\n")
    for d in report["packages"]:
        w("  %s %s %s: %s\n" % (sym[d["severity"]], d["name"], d["version"] or "", d["detail"]))
        if d["fix"] and d["severity"] != "ok":
            w("      fix: %s\n" % d["fix"])
    inst = report["install"]
    if inst and inst.get("error") and inst.get("installer"):
        w("%s install failed, nothing was changed:\n  %s\n" % (sym["fail"], inst["error"].replace("\n", "\n  ")))
    elif inst and inst.get("files"):
        w("installed %d file(s) into %s (%s) with %s in %.2f s\n" % (
            len(inst["files"]), inst["target"], inst["kind"], inst["installer"], inst["seconds"]))
    if inst and inst.get("note"):
        w("note: %s\n" % inst["note"])
    if inst and inst.get("pythonpath") and not inst.get("error"):
        w("later processes: export PYTHONPATH=%s (in this notebook: import sys; sys.path.insert(0, %r))\n"
          % (inst["pythonpath"], inst["pythonpath"]))
    for problem in report["problems"]:
        w("%s %s\n" % (sym["fail"], problem))
    w("%s (exit %d) in %.2f s\n" % (report["status"], report["exit_code"], report["seconds"]))


# ---------------------------------------------------------------------------------------- snapshot

def marker_environment():
    info = sys.implementation.version
    iver = "%d.%d.%d" % (info.major, info.minor, info.micro)
    if info.releaselevel != "final":
        iver += info.releaselevel[0] + str(info.serial)
    return {
        "implementation_name": sys.implementation.name, "implementation_version": iver, "os_name": os.name,
        "platform_machine": platform.machine(), "platform_release": platform.release(),
        "platform_system": platform.system(), "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]), "sys_platform": sys.platform,
    }


def snapshot(name="snapshot"):
    """This interpreter as an `offlinepack-target` v1 dict (see offlinepack/kernel_target/model.py)."""
    from importlib import metadata

    installed, seen = [], set()
    for dist in metadata.distributions():
        dist_name = dist.metadata["Name"]
        if not dist_name or canonical(dist_name) in seen:
            continue
        seen.add(canonical(dist_name))
        installed.append({"name": dist_name, "version": dist.version, "requires": list(dist.requires or [])})
    installed.sort(key=lambda d: canonical(d["name"]))
    glibc, musl = glibc_version(), None
    if glibc is None and sys.platform.startswith("linux"):
        musl = musl_version()
    libc, libc_version = ("glibc", "%d.%d" % glibc) if glibc else ("musl", "%d.%d" % musl) if musl else (None, None)
    return {
        "format": "offlinepack-target", "version": 1, "name": name,
        "description": "captured by bootstrap.py snapshot on %s at %s" % (
            platform.node() or "?", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
        "approximate": False,
        "interpreter": {"implementation": sys.implementation.name, "version": platform.python_version()},
        "platform": {"system": platform.system().lower(), "machine": platform.machine(), "libc": libc,
                     "libc_version": libc_version},
        "markers": marker_environment(),
        "tags": sys_tags(),
        "installed": installed,
    }


# ---------------------------------------------------------------------------------------- command line

USAGE = """usage: bootstrap.py [--wheels DIR]... [--kaggle-root DIR] [--target DIR] [--installer uv|pip] [--json]
       bootstrap.py [same options] run [ARGS...]   install, then `python -m offlinepack run ARGS...`
                                                  (with --json, this report goes to stderr)
       bootstrap.py snapshot -o FILE [--name NAME]
exit codes: 0 ready, 1 ready with degradations, 2 not ready"""


def _parse(argv):
    opts = {"wheels": [], "json": False, "kaggle_root": None, "target": None, "installer": None}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("run", "snapshot"):
            return opts, arg, argv[i + 1:]
        if arg in ("-h", "--help"):
            print(USAGE)
            sys.exit(OK)
        if arg == "--json":
            opts["json"] = True
        elif arg in ("--wheels", "--kaggle-root", "--target", "--installer") or arg.split("=", 1)[0] in (
                "--wheels", "--kaggle-root", "--target", "--installer"):
            key, _, value = arg.partition("=")
            if not value:
                i += 1
                if i >= len(argv):
                    _usage_error("%s needs a value" % key)
                value = argv[i]
            if key == "--wheels":
                opts["wheels"].append(value)
            elif key == "--installer" and value not in ("uv", "pip"):
                _usage_error("--installer is uv or pip")
            else:
                opts[key[2:].replace("-", "_")] = value
        else:
            _usage_error("unknown argument %r" % arg)
        i += 1
    return opts, None, []


def _usage_error(message):
    sys.stderr.write("error: %s\n%s\n" % (message, USAGE))
    sys.exit(FAILED)


def _snapshot_main(args):
    out, name = None, "snapshot"
    i = 0
    while i < len(args):
        if args[i] in ("-o", "--output") and i + 1 < len(args):
            out, i = args[i + 1], i + 2
        elif args[i] == "--name" and i + 1 < len(args):
            name, i = args[i + 1], i + 2
        else:
            _usage_error("snapshot takes -o FILE [--name NAME], not %r" % args[i])
    if not out:
        _usage_error("snapshot needs -o FILE")
    out = os.path.abspath(out)
    if os.path.isdir(out):
        _usage_error("snapshot -o %s: that is a folder; give a file name, e.g. -o %s"
                     % (out, os.path.join(out, "kernel.json")))
    hint = "hint: pass -o with a regular file in a writable folder (in a kernel: /kaggle/working/kernel.json)\n"
    try:
        resolve_output(out)  # before the snapshot: a bad -o fails at once
        data = snapshot(name)
        os.makedirs(os.path.dirname(os.path.realpath(out)), exist_ok=True)
        _write_json_atomic(out, data)
    except OutputError as error:
        sys.stderr.write("error: cannot write %s\n%s" % (error, hint))
        return FAILED
    except OSError as error:
        why = "disk full" if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else error.strerror or error
        sys.stderr.write("error: cannot write %s: %s (an existing file there is unchanged)\n%s" % (out, why, hint))
        return FAILED
    print("wrote %s: %s %s, %d tags, %d installed distributions" % (
        out, data["interpreter"]["implementation"], data["interpreter"]["version"], len(data["tags"]), len(data["installed"])))
    return OK


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    opts, command, rest = _parse(argv)
    if command == "snapshot":
        return _snapshot_main(rest)
    options = Options.from_env(wheel_dirs=tuple(opts["wheels"]), script_dir=os.path.dirname(os.path.abspath(__file__)),
                               kaggle_root=opts["kaggle_root"], target=opts["target"], installer=opts["installer"])
    if options.installer not in (None, "uv", "pip"):
        _usage_error("OFFLINEPACK_INSTALLER is uv or pip, not %r (unset it to use uv when found, else pip)"
                     % options.installer)
    report = bootstrap(options)
    if opts["json"]:
        # with `run`, stdout belongs to `offlinepack run` (its own --json): two documents there parse as neither
        out = sys.stderr if command == "run" else sys.stdout
        json.dump(report, out, indent=1)
        out.write("\n")
    else:
        render(report)
    if command != "run":
        return report["exit_code"]
    if report["exit_code"] == FAILED:
        sys.stderr.write("not starting `offlinepack run`: the kernel is not ready (see above)\n")
        return FAILED
    env = dict(os.environ)
    inst = report.get("install") or {}
    if inst.get("pythonpath"):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (inst["pythonpath"], env.get("PYTHONPATH")) if p)
    # the run's readiness check and its ledger record (manifest sha256) must see the wheelhouse used here,
    # wherever it was found (--wheels, this file's folder, another --kaggle-root); not stray wheel folders
    # under Kaggle inputs, which the run's own search finds and weighs as bootstrap did
    used = [d["path"] for d in report["datasets"] if d["manifest"] or d["origin"] != "Kaggle inputs"]
    if used:
        env["OFFLINEPACK_WHEELS"] = os.pathsep.join(used + [p for p in [env.get("OFFLINEPACK_WHEELS")] if p])
    if "offlinepack" not in scan_installed(([inst["pythonpath"]] if inst.get("pythonpath") else []) + sys.path):
        sys.stderr.write("not starting `offlinepack run`: offlinepack is not installed and no dataset carries its wheel\n")
        return FAILED
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "offlinepack", "run"] + rest, env)


if __name__ == "__main__":
    sys.exit(main())
