"""The one bridge to `runtime/bootstrap.py`: where it is, and what its search and decisions say, as values.

bootstrap.py is stdlib-only and runs in the kernel before offlinepack exists, so it cannot import
offlinepack; offlinepack imports *it* (as a module file) so that finding wheel datasets and deciding per
package live in one place. Everything here returns frozen dataclasses; nothing else in offlinepack reads
bootstrap's report dicts or walks `/kaggle/input` for wheelhouses.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from offlinepack.errors import OfflinepackError
from offlinepack.kaggle import DEFAULT_ROOT

PACKAGE_DIR = Path(__file__).resolve().parent
_MODULE = "offlinepack._bootstrap"


def source_root(package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The checkout holding this package (pyproject.toml + runtime/), or None when installed from a wheel."""
    root = package_dir.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and (root / "runtime" / "bootstrap.py").is_file() and \
            'name = "offlinepack"' in pyproject.read_text(encoding="utf-8"):
        return root
    return None


def find_bootstrap(package_dir: Path = PACKAGE_DIR) -> Path:
    """runtime/bootstrap.py in a checkout; offlinepack/runtime/bootstrap.py in an installed wheel."""
    candidates = [package_dir / "runtime" / "bootstrap.py"]
    root = source_root(package_dir)
    if root is not None:
        candidates.insert(0, root / "runtime" / "bootstrap.py")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise OfflinepackError("bootstrap.py not found (looked at " + ", ".join(map(str, candidates)) + ")",
                           hint="reinstall offlinepack; its wheel ships offlinepack/runtime/bootstrap.py")


def load_bootstrap() -> ModuleType:
    """bootstrap.py imported as a module (once per process)."""
    if _MODULE in sys.modules:
        return sys.modules[_MODULE]
    spec = importlib.util.spec_from_file_location(_MODULE, find_bootstrap())
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE] = module  # dataclasses look their module up while the class body runs
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_MODULE]
        raise
    return module


@dataclass(frozen=True, kw_only=True, slots=True)
class Probe:
    """One place the search looked at, and what it found there."""

    path: str
    origin: str  # "--wheels" | "OFFLINEPACK_WHEELS" | "bootstrap.py's folder" | "Kaggle inputs"
    found: str  # "offlinepack.json, 12 wheels" / "does not exist" / "unreadable: ..."


@dataclass(frozen=True, kw_only=True, slots=True)
class WheelhouseTarget:
    """The kernel a wheelhouse was built for, as its manifest states it."""

    name: str | None
    python_version: str
    tags: tuple[str, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class WheelDataset:
    """A folder of wheels the search found; an offlinepack wheelhouse when it has a readable manifest."""

    path: Path
    origin: str
    wheels: int
    has_manifest: bool
    error: str | None  # an unreadable or foreign offlinepack.json
    problems: tuple[str, ...]  # an invalid manifest's problems, each with its field path
    target: WheelhouseTarget | None
    manifest_name: str

    @property
    def manifest_path(self) -> Path | None:
        return self.path / self.manifest_name if self.has_manifest else None


@dataclass(frozen=True, kw_only=True, slots=True)
class PackageDecision:
    name: str
    version: str
    status: str  # bootstrap's: satisfied | provided | missing | wrong-version | incompatible | ...
    severity: str  # ok | warn | fail
    detail: str
    fix: str | None
    optional: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class KernelReport:
    """bootstrap's view of this interpreter, deciding only (it installs nothing here)."""

    python_version: str
    tags: tuple[str, ...]
    datasets: tuple[WheelDataset, ...]
    searched: tuple[Probe, ...]
    packages: tuple[PackageDecision, ...]
    problems: tuple[str, ...]


def _target(manifest: Mapping[str, Any] | None) -> WheelhouseTarget | None:
    if not manifest:
        return None
    target = manifest.get("target") or {}
    if not isinstance(target, Mapping):
        target = {}
    name = target.get("name")
    return WheelhouseTarget(name=name if isinstance(name, str) else None,
                            python_version=str(target.get("python_version", "")),
                            tags=tuple(t for t in target.get("tags", []) or [] if isinstance(t, str)))


def _options(bs: ModuleType, wheel_dirs: Sequence[Path], kaggle_root: Path, environ: Mapping[str, str]) -> Any:
    return bs.Options.from_env(environ, wheel_dirs=tuple(str(p) for p in wheel_dirs), kaggle_root=str(kaggle_root),
                               install=False)


def search_wheelhouses(wheel_dirs: Sequence[Path] = (), *, kaggle_root: Path = DEFAULT_ROOT,
                       environ: Mapping[str, str] = os.environ) -> tuple[tuple[WheelDataset, ...], tuple[Probe, ...]]:
    """bootstrap's own search: the given folders, then $OFFLINEPACK_WHEELS, then under `<kaggle_root>/input`
    (both mount layouts); the datasets in priority order and every place looked at."""
    bs = load_bootstrap()
    options = _options(bs, wheel_dirs, kaggle_root, environ)
    datasets, probes = bs.discover(options.wheel_dirs, options.env_dirs, options.script_dir, options.kaggle_root)
    return (tuple(WheelDataset(path=Path(d.path), origin=d.origin, wheels=len(d.wheels), has_manifest=bool(d.manifest),
                               error=d.error, problems=tuple(d.problems or ()), target=_target(d.manifest),
                               manifest_name=bs.MANIFEST) for d in datasets),
            tuple(Probe(path=p.path, origin=p.origin, found=p.found) for p in probes))


def find_wheelhouse_manifest(wheel_dirs: Sequence[Path] = (), *, kaggle_root: Path = DEFAULT_ROOT,
                             environ: Mapping[str, str] = os.environ) -> Path | None:
    """The offlinepack.json of the wheelhouse bootstrap would install from, or None."""
    datasets, _ = search_wheelhouses(wheel_dirs, kaggle_root=kaggle_root, environ=environ)
    return next((d.manifest_path for d in datasets if d.has_manifest), None)


def install_journal_name() -> str:
    """The file bootstrap leaves in a site folder while an install is under way (its presence: interrupted)."""
    return load_bootstrap().JOURNAL


def inspect_kernel(wheel_dirs: Sequence[Path] = (), *, kaggle_root: Path = DEFAULT_ROOT,
                   tags: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> KernelReport:
    """Search for wheelhouses and decide per package, as bootstrap.py would, without installing anything."""
    bs = load_bootstrap()
    tags = list(tags or bs.sys_tags())
    datasets, searched = search_wheelhouses(wheel_dirs, kaggle_root=kaggle_root, environ=environ)
    report = bs.bootstrap(_options(bs, wheel_dirs, kaggle_root, environ), tags=tags)
    packages = tuple(PackageDecision(name=p["name"], version=p["version"], status=p["status"], severity=p["severity"],
                                     detail=p["detail"], fix=p["fix"], optional=bool(p["optional"]))
                     for p in report["packages"])
    return KernelReport(python_version=report["python"]["version"], tags=tuple(tags), datasets=datasets,
                        searched=searched, packages=packages, problems=tuple(report["problems"]))
