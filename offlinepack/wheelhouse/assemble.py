"""`build_wheelhouse`: lock + target → a flat folder ready for `kaggle datasets create -p DIR`.

Stages: check inputs (all problems at once) → fetch through the cache → build sdists → write every
file into a temporary folder next to DIR → rename it into place. A failure anywhere leaves DIR as it
was (absent, or the previous wheelhouse) and no temporary folder behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from offlinepack import __version__
from offlinepack.atomic import DISK_FULL, output_folder, replace_folder, why
from offlinepack.errors import OfflinepackError
from offlinepack.files import json_or_none
from offlinepack.kernel import find_bootstrap
from offlinepack.kernel_target import Target
from offlinepack.pylock import LockFile, dumps_pylock, read_lock
from offlinepack.wheelhouse.cache import Cache, default_cache_dir, place
from offlinepack.wheelhouse.dataset import DatasetMetadata, dataset_metadata
from offlinepack.wheelhouse.download import FetchResult, Progress, ProgressCallback, fetch_all
from offlinepack.wheelhouse.index import default_index_urls
from offlinepack.wheelhouse.lockfile import rewrite_lock
from offlinepack.wheelhouse.manifest import (BOOTSTRAP_NAME, FORMAT, LOCK_NAME, MANIFEST_NAME, METADATA_NAME,
                                             SizeReport, WheelhouseFile, manifest, size_report)
from offlinepack.wheelhouse.sdist import BuiltWheel, build_wheel_from_sdist
from offlinepack.wheelhouse.select import Plan, PlannedFile, plan_files
from offlinepack.wheelhouse.selfwheel import SelfWheel, offlinepack_wheel, wheel_info
from offlinepack.wheelhouse.runtime_needs import runtime_gaps


KAGGLE_FILE_LIMIT = 1000  # a dataset file-count cap Kaggle has enforced (may be gone today)


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildOptions:
    lock: Path
    target: Target
    output: Path
    dataset_id: str | None = None
    title: str | None = None
    license: str | None = None
    cache_dir: Path | None = None  # None: $OFFLINEPACK_CACHE or ~/.cache/offlinepack
    force: bool = False
    jobs: int = 8
    index_urls: tuple[str, ...] | None = None  # for portable locks' bare file names; None: from the environment
    self_wheel: Path | None = None  # a prebuilt offlinepack wheel; None builds (or reuses) one
    build_python: str | None = None  # interpreter for sdist builds; None: the running one
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


@dataclass(frozen=True, kw_only=True, slots=True)
class BuildResult:
    output: Path
    target: str
    files: tuple[WheelhouseFile, ...]
    skipped: tuple[str, ...]  # packages whose marker is false for the target
    downloaded: tuple[str, ...]  # file names fetched over the network this run
    downloaded_bytes: int
    built: tuple[str, ...]  # packages built from an sdist this run
    dataset: DatasetMetadata
    size: SizeReport
    replaced: bool  # an existing DIR was replaced (--force)
    seconds: float
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "output": str(self.output), "target": self.target, "seconds": round(self.seconds, 3),
            "files": [{"package": f.package, "version": f.version, "path": f.path, "sha256": f.sha256,
                       "size": f.size, "optional": f.optional, "origin": f.origin} for f in self.files],
            "skipped": list(self.skipped), "downloaded": list(self.downloaded),
            "downloaded_bytes": self.downloaded_bytes, "built": list(self.built),
            "dataset": dict(self.dataset.to_dict(), placeholder=self.dataset.placeholder),
            "size": self.size.to_dict(), "replaced": self.replaced, "warnings": list(self.warnings),
        }


def _ignore(_: Progress) -> None:
    pass


def _problems_of(error: OfflinepackError) -> list[str]:
    return list(error.problems) if error.problems else [error.message]


def _is_wheelhouse_or_empty(folder: Path) -> bool:
    try:
        if not any(folder.iterdir()):
            return True
        return (json_or_none(folder / MANIFEST_NAME) or {}).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _check_inputs(options: BuildOptions) -> tuple[LockFile, Plan, DatasetMetadata]:
    """Lock, per-target plan, dataset metadata and output folder, every problem collected before failing."""
    problems: list[str] = []
    hints: list[str] = []
    lock = plan = meta = None
    output = output_folder(options.output)
    if output.exists() and not output.is_dir():
        problems.append(f"output {options.output} exists and is not a folder")
        hints.append("-o names the wheelhouse folder to create, e.g. -o vesuvius-wheels")
    elif output.exists() and not options.force:
        problems.append(f"output {output} already exists (pass --force to replace it once the new one is complete)")
        hints.append(f"pass --force to rebuild {output} (the old folder stays until the new one is complete), "
                     "or pick another -o")
    elif output.exists() and not _is_wheelhouse_or_empty(output):
        # --force deletes the old folder: never a project folder or `-o .` given by mistake
        problems.append(f"output {output} is not a wheelhouse (no {MANIFEST_NAME}) and not empty; --force only "
                        "replaces a folder `offlinepack build` wrote: pick another -o, or empty it yourself")
    if not output.parent.is_dir():
        problems.append(f"output's parent folder {output.parent} does not exist")
    try:
        lock = read_lock(options.lock)
        plan = plan_files(lock, options.target)
    except OfflinepackError as error:
        problems += _problems_of(error)
        hints.append(error.hint or f"write the lock with `offlinepack lock REQ... --target T -o {options.lock}`")
    try:
        meta = dataset_metadata(dataset_id=options.dataset_id, title=options.title, license=options.license,
                                default_slug=output.name, target_name=options.target.name, environ=options.environ)
    except OfflinepackError as error:
        problems += _problems_of(error)
        hints += [error.hint] if error.hint else []
    if len(problems) == 1 and problems[0].startswith(f"output {output} "):
        # a rebuild without --force: the folder is the problem, not the lock (whose name would head the error)
        raise OfflinepackError(problems[0], hint="; ".join(hints) or None)
    if problems or lock is None or plan is None or meta is None:
        raise OfflinepackError(f"cannot build a wheelhouse from {options.lock}", problems=problems,
                               hint="; ".join(hints) or "fix the lines above; all problems found are listed")
    return lock, plan, meta


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def _provided_gaps(lock: LockFile, target: Target) -> list[str]:
    """What the lock counts on the kernel having (`provided`) that this build's target lacks or has at another
    version: bootstrap refuses the first in the kernel and warns about the second."""
    installed = target.installed_by_key()
    gaps = []
    for item in lock.provided:
        have = installed.get(canonicalize_name(item.name))
        if have is None:
            gaps.append(f"the lock counts on the target providing {item.name} {item.version}, but target "
                        f"{target.name!r} does not have it (bootstrap will refuse it): lock again with "
                        f"--target {target.name}")
        elif item.version and not _same_version(have.version, item.version):
            gaps.append(f"the lock was resolved against {item.name} {item.version}, target {target.name!r} has "
                        f"{have.version}: lock again with --target {target.name}")
    return gaps


def _build_one(item: PlannedFile, cached: Path, options: BuildOptions, cache_root: Path,
               progress: ProgressCallback) -> BuiltWheel:
    progress(Progress(stage="build", filename=item.filename, done=0, total=None))
    try:
        return build_wheel_from_sdist(cached, item.sha256, item.package, options.target, cache_root,
                                      python=options.build_python)
    finally:
        progress(Progress(stage="build", filename=item.filename, done=1, total=1, finished=True))


def _collect_files(plan: Plan, fetched: FetchResult, options: BuildOptions, cache_root: Path,
                   progress: ProgressCallback
                   ) -> tuple[list[tuple[WheelhouseFile, Path]], list[str], list[str], list[str]]:
    """Every wheel to ship with its cached source path; sdists are built here, in parallel (problems collected,
    with their hints)."""
    problems: list[str] = []
    hints: list[str] = []
    out: list[tuple[WheelhouseFile, Path]] = []
    built: list[str] = []
    downloaded = set(fetched.downloaded)
    sdists = [item for item in plan.files if item.kind == "sdist"]
    # builds mostly wait on the index (build backends) and subprocesses: threads overlap them
    with ThreadPoolExecutor(max_workers=max(1, min(options.jobs, 4))) as pool:
        builds = {item.sha256: pool.submit(_build_one, item, fetched.cached[item.sha256], options, cache_root,
                                           progress) for item in sdists}
    for item in plan.files:
        cached = fetched.cached[item.sha256]
        if item.kind == "wheel":
            origin = "downloaded" if item.filename in downloaded else "cached"
            out.append((WheelhouseFile(package=item.package, version=item.version, path=item.filename,
                                       sha256=item.sha256, size=cached.stat().st_size, optional=item.optional,
                                       origin=origin), cached))
            continue
        try:
            wheel = builds[item.sha256].result()
        except OfflinepackError as error:
            problems.append(error.message)
            hints += [error.hint] if error.hint and error.hint not in hints else []
            continue
        if not wheel.from_cache:
            built.append(item.package)
        out.append((WheelhouseFile(package=item.package, version=item.version, path=wheel.path.name,
                                   sha256=wheel.sha256, size=wheel.size, optional=item.optional,
                                   origin="built"), wheel.path))
    return out, problems, built, hints


def _self_wheel(options: BuildOptions, cache_root: Path) -> SelfWheel:
    if options.self_wheel is not None:
        return wheel_info(Path(options.self_wheel))
    return offlinepack_wheel(cache_root)


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def build_wheelhouse(options: BuildOptions, progress: ProgressCallback = _ignore) -> BuildResult:
    """Build the wheelhouse described in the module docstring; raises OfflinepackError listing every problem."""
    started = time.perf_counter()
    lock, plan, meta = _check_inputs(options)
    cache_root = Path(options.cache_dir) if options.cache_dir else default_cache_dir(options.environ)
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OfflinepackError(f"cannot create cache folder {cache_root}: {error.strerror}",
                               hint="pass --cache-dir DIR (or set $OFFLINEPACK_CACHE) to a folder you can write to"
                               ) from None
    needs_self = "offlinepack" not in {canonicalize_name(p.name) for p in lock.pylock.packages}
    with ThreadPoolExecutor(max_workers=1) as side:
        # offlinepack's own wheel (a build on the first run) overlaps the downloads
        own_future: Future[SelfWheel] | None = side.submit(_self_wheel, options, cache_root) if needs_self else None
        index_urls = default_index_urls(options.environ) if options.index_urls is None else options.index_urls
        fetched = fetch_all(plan.files, Cache(cache_root), jobs=options.jobs, progress=progress,
                            index_urls=index_urls)
        own = own_future.result() if own_future is not None else None
    if fetched.problems:
        unreachable = any(p.startswith(("cannot download", "cannot find")) for p in fetched.problems)
        unstored = any(p.startswith("cannot store") for p in fetched.problems)
        mismatch = any(p.startswith("hash mismatch") for p in fetched.problems)
        hints = []
        if unreachable:
            hints.append("check the network or the index; files already fetched stay cached in "
                         f"{cache_root} and are not fetched again")
        if unstored:
            hints.append(f"the cache folder {cache_root} cannot take the files: free space there, or pass "
                         "--cache-dir DIR (or set $OFFLINEPACK_CACHE) on another disk")
        if mismatch:
            hints.append("the index serves other bytes than the lock names: lock again with `offlinepack lock` "
                         "(or use the index the lock was made with); a file that fails its hash is never kept")
        raise OfflinepackError(
            f"{len(fetched.problems)} file(s) could not be fetched ({len(fetched.cached)} of "
            f"{len({f.sha256 for f in plan.files})} came from the cache); nothing was written to {options.output}",
            problems=fetched.problems, hint="; ".join(hints) or None,
        )
    collected, problems, built, build_hints = _collect_files(plan, fetched, options, cache_root, progress)
    if problems:
        raise OfflinepackError(f"cannot build a wheelhouse from {options.lock}", problems=problems,
                               hint="; ".join(build_hints) or None)
    files = [f for f, _ in collected]
    sources = {f.path: src for f, src in collected}
    extra_lock_packages = []
    if own is not None:
        files.append(WheelhouseFile(package="offlinepack", version=own.version, path=own.path.name, sha256=own.sha256,
                                    size=own.size, optional=False, origin="self"))
        sources[own.path.name] = own.path
        extra_lock_packages.append({"name": "offlinepack", "version": own.version, "wheels": [
            {"name": own.path.name, "path": own.path.name, "size": own.size, "hashes": {"sha256": own.sha256}}]})
    lock_files = {canonicalize_name(f.package): (f.path, f.sha256, f.size) for f in files if f.origin != "self"}
    new_lock = rewrite_lock(lock, lock_files, extra_lock_packages, created_by=f"offlinepack {__version__}")
    bootstrap = find_bootstrap()

    output = output_folder(options.output)
    staging: Path | None = None
    writing = ""
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.parent))
        for name, source in sources.items():
            writing = name
            place(source, staging / name)
        writing = BOOTSTRAP_NAME
        shutil.copyfile(bootstrap, staging / BOOTSTRAP_NAME)
        writing = LOCK_NAME
        (staging / LOCK_NAME).write_text(dumps_pylock(new_lock), encoding="utf-8")
        writing = METADATA_NAME
        _write_json(staging / METADATA_NAME, meta.to_dict())
        writing = MANIFEST_NAME
        _write_json(staging / MANIFEST_NAME, manifest(options.target, files, lock.provided))
        writing = ""
        os.chmod(staging, 0o755)
        replaced = replace_folder(staging, output)
        staging = None
    except OSError as error:
        # name the output being written, not the cache file it was copied from (error.filename may be either)
        what = f" (while writing {writing})" if writing else ""
        full = error.errno in DISK_FULL
        raise OfflinepackError(
            f"writing the wheelhouse into {output.parent} failed: {why(error)}{what}; "
            f"{options.output} was left as it was",
            hint=("free space where -o points (the wheelhouse needs about the size of its wheels), or pass -o "
                  "on another disk" if full else "pass -o with a folder you can write to"),
        ) from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)

    warnings = runtime_gaps(options.target, {canonicalize_name(f.package): f.version for f in files})
    if lock.target_name and lock.target_name != options.target.name:
        warnings.append(f"the lock was made for target {lock.target_name!r}, this build is for {options.target.name!r}")
    warnings += _provided_gaps(lock, options.target)
    if len(files) + 4 > KAGGLE_FILE_LIMIT:
        warnings.append(f"{len(files) + 4} files: Kaggle datasets have held at most {KAGGLE_FILE_LIMIT} files; "
                        "upload with `kaggle datasets create -r zip` if it is refused")
    if meta.placeholder:
        warnings.append(f"dataset id {meta.id!r} is a placeholder: pass --dataset-id owner/slug or set KAGGLE_USERNAME, "
                        f"or edit {output / METADATA_NAME} before `kaggle datasets create`")
    return BuildResult(
        output=output, target=options.target.name, files=tuple(files), skipped=plan.skipped,
        downloaded=fetched.downloaded, downloaded_bytes=fetched.downloaded_bytes, built=tuple(built), dataset=meta,
        size=size_report(files), replaced=replaced, seconds=time.perf_counter() - started, warnings=tuple(warnings),
    )
