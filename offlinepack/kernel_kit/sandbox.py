"""The rehearsal's stand-in for Kaggle's kernel: a Python, its preinstalled packages, /kaggle, no network.

- Python: a venv of this machine's interpreter when it has the target's version, else one `uv python find`
  finds, else this machine's (with a warning).
- Preinstalled packages: for each distribution the target lists, this environment's copy is linked in
  (real imports) when it has one and the Python versions match; otherwise a metadata-only `.dist-info`
  stands in, so bootstrap decides exactly as in the kernel (keep, not install).
- The venv and the preinstalled folder are copied from a cached base environment (base_env.py), built once per
  interpreter and preinstalled list: creating a venv with pip takes seconds, copying one a fraction of that.
- Jupyter: ipykernel and what it needs are linked into a separate folder that only the Jupyter kernel
  process puts on its path (after the kernel's own packages), so the cells' child Pythons see none of it.
- /kaggle: with user + mount + network namespaces (`unshare -rmn`): a new root where every folder of
  this machine is bound read-only, /kaggle/input/<mount point> bound read-only from the local folders,
  /kaggle/working and the rehearsal folder writable, /tmp empty, no network but loopback. Without mount
  namespaces: a fallback root named by OFFLINEPACK_KAGGLE_ROOT (the cells' /kaggle paths rewritten to it),
  under a network namespace when one is allowed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from offlinepack.errors import OfflinepackError
from offlinepack.kernel_kit import base_env
from offlinepack.kernel_target import Target

HARNESS_ROOTS = ("ipykernel",)


@dataclass(frozen=True, kw_only=True, slots=True)
class KernelPython:
    executable: Path  # the venv's python
    version: str
    linked: tuple[str, ...]  # preinstalled distributions linked in from this environment (real imports)
    stubs: tuple[str, ...]  # present as metadata only
    warnings: tuple[str, ...]
    reused: bool = False  # copied from a cached base environment (base_env.py), not built now


def _python_version(executable: str | Path) -> str | None:
    try:
        out = subprocess.run([str(executable), "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def find_interpreter(minor: str, environ: Mapping[str, str] = os.environ) -> tuple[Path, list[str]]:
    """An interpreter of the target's minor version: this one's base, then `uv python find`, then PATH;
    else this one's base with a warning."""
    base = Path(getattr(sys, "_base_executable", sys.executable))
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if here == minor:
        return base, []
    uv = shutil.which("uv", path=os.pathsep.join([str(Path(sys.executable).parent), environ.get("PATH", "")]))
    candidates = []
    if uv:
        out = subprocess.run([uv, "python", "find", "--no-project", minor], capture_output=True, text=True,
                             timeout=60, env={**environ, "UV_PYTHON_DOWNLOADS": "never"})
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(out.stdout.strip())
    found = shutil.which(f"python{minor}", path=environ.get("PATH"))
    if found:
        candidates.append(found)
    for candidate in candidates:
        version = _python_version(candidate)
        if version and version.startswith(minor + "."):
            return Path(candidate), [f"the target's Python {minor} is not this environment's ({here}): its "
                                     "preinstalled packages are present as metadata only, so a run may not import "
                                     "them; rehearse from an environment of Python " + minor + " for a full replay"]
    return base, [f"no Python {minor} found here (uv python find {minor}, python{minor} on PATH): rehearsing with "
                  f"Python {here}, so wheels are decided for the target but installed and run with {here}"]


def _top_levels(dist: metadata.Distribution) -> set[str]:
    """The names a distribution puts directly in site-packages (packages, modules, .libs, its dist-info)."""
    names = set()
    for file in dist.files or ():
        parts = Path(str(file)).parts
        if parts and parts[0] not in ("..", "/") and not parts[0].endswith(".pth") and parts[0] != "__pycache__":
            names.add(parts[0])
    return names


def _distribution_root(dist: metadata.Distribution) -> Path | None:
    path = getattr(dist, "_path", None)
    return Path(path).parent if path is not None else None


def link_distributions(dists: Iterable[metadata.Distribution], folder: Path) -> list[str]:
    """Symlink each distribution's top-level entries into `folder`; returns the names linked."""
    linked = []
    folder.mkdir(parents=True, exist_ok=True)
    for dist in dists:
        root = _distribution_root(dist)
        if root is None:
            continue
        for name in _top_levels(dist):
            source, destination = root / name, folder / name
            if source.exists() and not destination.exists():
                destination.symlink_to(source)
        linked.append(dist.metadata["Name"])
    return linked


def write_stub(folder: Path, name: str, version: str) -> None:
    """A metadata-only installed distribution (what bootstrap and importlib.metadata read, no code)."""
    info = folder / f"{canonicalize_name(name).replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n")
    (info / "INSTALLER").write_text("offlinepack-rehearsal\n")
    (info / "RECORD").write_text("")


def _host_distributions() -> dict[str, metadata.Distribution]:
    found: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and canonicalize_name(name) not in found:
            found[canonicalize_name(name)] = dist
    return found


def make_kernel_python(work: Path, target: Target, environ: Mapping[str, str] = os.environ) -> KernelPython:
    """work/kernel-python: a venv (with pip, as Kaggle has) whose site-packages sees work/preinstalled;
    both copied from the cached base environment for this interpreter and preinstalled list (base_env.py)."""
    interpreter, warnings = find_interpreter(target.python_minor, environ)
    interpreter_version = _python_version(interpreter) or "?"
    same_minor = interpreter_version.rsplit(".", 1)[0] == f"{sys.version_info[0]}.{sys.version_info[1]}"
    host = _host_distributions() if same_minor else {}
    real: list[metadata.Distribution] = []
    stubs: list[tuple[str, str]] = []
    for dist in target.installed:
        mine = host.get(dist.key)
        if mine is not None and canonicalize_name(mine.metadata["Name"]) != "offlinepack":
            real.append(mine)
        else:
            stubs.append((dist.name, dist.version))
    inputs = {"interpreter": str(Path(interpreter).resolve()), "version": interpreter_version,
              "preinstalled": sorted(f"{d.name}=={d.version}" for d in target.installed),
              "linked": sorted(f"{d.metadata['Name']}=={d.version}@{_distribution_root(d)}" for d in real)}

    def build(folder: Path) -> dict[str, Any]:
        venv_dir = folder / "kernel-python"
        done = subprocess.run([str(interpreter), "-m", "venv", str(venv_dir)], capture_output=True, text=True,
                              timeout=300)
        if done.returncode != 0:  # quiet on success; the tail of its output on failure
            tail = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()][-8:]
            raise OfflinepackError(f"cannot create the rehearsal's kernel venv: {interpreter} -m venv exited "
                                   f"{done.returncode}", problems=tail,
                                   hint="on Debian/Ubuntu the venv module is a separate package (python3.X-venv)")
        purelib = subprocess.run([str(venv_dir / "bin" / "python"), "-c", "import os, sys, sysconfig; "
                                  "print(os.path.relpath(sysconfig.get_paths()['purelib'], sys.prefix))"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        preinstalled = folder / "preinstalled"
        preinstalled.mkdir()
        for name, version in stubs:
            write_stub(preinstalled, name, version)
        linked = link_distributions(real, preinstalled)
        return {"purelib": str(Path("kernel-python") / purelib), "linked": linked,
                "stubs": [name for name, _ in stubs]}

    base = base_env.copy_base(work, inputs, build, environ)
    executable = work / "kernel-python" / "bin" / "python"
    version = _python_version(executable) or "?"
    (work / base.info["purelib"] / "offlinepack-rehearsal-preinstalled.pth").write_text(f"{work / 'preinstalled'}\n")
    return KernelPython(executable=executable, version=version, linked=tuple(base.info["linked"]),
                        stubs=tuple(base.info["stubs"]), warnings=tuple(warnings), reused=base.reused)


def _closure(roots: Sequence[str], host: Mapping[str, metadata.Distribution]) -> list[metadata.Distribution]:
    seen: dict[str, metadata.Distribution] = {}
    todo = [canonicalize_name(r) for r in roots]
    while todo:
        key = todo.pop()
        if key in seen or key not in host:
            continue
        seen[key] = host[key]
        for line in host[key].requires or ():
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return list(seen.values())


def make_jupyter_harness(work: Path, kernel_python: Path) -> Path:
    """A kernelspec (under work/jupyter) whose kernel is the kernel Python with ipykernel linked in last on
    its path; returns the JUPYTER_PATH folder."""
    harness = work / "harness"
    if harness.exists():
        shutil.rmtree(harness)
    link_distributions(_closure(HARNESS_ROOTS, _host_distributions()), harness / "site")
    launcher = harness / "launch_kernel.py"
    launcher.write_text(
        "import sys\n"
        "# after the kernel's own packages: the notebook sees its kernel's versions, not the harness's\n"
        f"sys.path = [p for p in sys.path if p != {str(harness)!r}] + [{str(harness / 'site')!r}]\n"
        "from ipykernel import kernelapp\n"
        "kernelapp.launch_new_instance()\n")
    spec = work / "jupyter" / "kernels" / "offlinepack-rehearsal"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(kernel_python), str(launcher), "-f", "{connection_file}"],
        "display_name": "offlinepack rehearsal", "language": "python"}))
    return work / "jupyter"


def namespaces_allowed() -> tuple[bool, bool]:
    """(mount + network namespaces, network namespace alone) are allowed here."""
    unshare = shutil.which("unshare")
    if not unshare:
        return False, False

    def works(*flags: str) -> bool:
        try:
            return subprocess.run([unshare, *flags, "true"], capture_output=True, timeout=30).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    mounts = works("-rmn") and bool(shutil.which("mount")) and bool(shutil.which("chroot"))
    return mounts, mounts or works("-rn")


# the new root, built inside `unshare -rmn`: every top-level folder bound read-only, then /kaggle and the
# writable places; loopback up (the Jupyter kernel talks over it)
_ENTER = r'''set -eu
NEWROOT=$1; SPEC=$2; shift 2
ip link set lo up 2>/dev/null || true
mount -t tmpfs offlinepack-rehearsal "$NEWROOT"
for entry in /*; do
    name=${entry#/}
    case "$name" in proc|tmp|kaggle|"") continue;; esac
    if [ -L "$entry" ]; then cp -P "$entry" "$NEWROOT/$name"; continue; fi
    [ -d "$entry" ] || continue
    mkdir -p "$NEWROOT/$name"
    mount --rbind "$entry" "$NEWROOT/$name"
    case "$name" in dev|sys) ;; *) mount -o remount,bind,ro "$NEWROOT/$name" 2>/dev/null || true;; esac
done
mkdir -p "$NEWROOT/proc" "$NEWROOT/tmp" "$NEWROOT/kaggle/working"
mount --rbind /proc "$NEWROOT/proc"
mount -t tmpfs offlinepack-tmp "$NEWROOT/tmp"
while IFS='	' read -r kind src dst; do
    mkdir -p "$NEWROOT$dst"
    mount --bind "$src" "$NEWROOT$dst"
    if [ "$kind" = ro ]; then mount -o remount,bind,ro "$NEWROOT$dst"; fi
done < "$SPEC"
exec chroot "$NEWROOT" /usr/bin/env -C /kaggle/working "$@"
'''


def enter_script(work: Path) -> Path:
    path = work / "enter-sandbox.sh"
    path.write_text(_ENTER)
    return path


def write_mounts(work: Path, binds: Sequence[tuple[str, Path, str]]) -> Path:
    """(ro|rw, local folder, path in the sandbox) lines for the enter script."""
    path = work / "mounts.tsv"
    path.write_text("".join(f"{kind}\t{src}\t{dst}\n" for kind, src, dst in binds))
    return path
