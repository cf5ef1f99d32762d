"""`offlinepack lock`: requirements + target → pylock.toml, holding the target's installed versions.

One uv resolution does the work (see engine.py for how the target is held). The extra runs happen
only to explain: a failed resolution (which requirement breaks which of the target's versions), or
a direct requirement that did not get its newest version (why it was held back).
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from offlinepack.atomic import resolve_output, write_text_atomically
from offlinepack.errors import OfflinepackError
from offlinepack.kernel_target import InstalledDistribution, Target
from offlinepack.kernel_target.backports import StdlibBackport, stdlib_backports
from offlinepack.kernel_target.requirements import applicable_requirements
from offlinepack.lock import engine
from offlinepack.lock.explain import Conflict, find_conflicts
from offlinepack.lock.inputs import InputRequirement, read_requirements
from offlinepack.lock.metadata import requires_of
from offlinepack.lock.writer import render_pylock, select_files, target_environment_marker
from offlinepack.pylock import DEFAULT_OPTIONAL, LockedPackage, best_tags, validate_pylock



@dataclass(frozen=True, kw_only=True, slots=True)
class LockOptions:
    requirements: tuple[Path, ...]
    target: Target
    output: Path
    index_url: str | None = None
    find_links: tuple[Path, ...] = ()
    allow_replace: tuple[str, ...] = ()
    optional: tuple[str, ...] = DEFAULT_OPTIONAL
    uv: str | None = None
    cache_dir: Path | None = None
    portable: bool = False  # file names + hashes instead of download URLs (for locks kept in a repository)


@dataclass(frozen=True, kw_only=True, slots=True)
class HeldBack:
    name: str
    version: str
    newest: str
    reasons: tuple[str, ...]

    def __str__(self) -> str:
        because = "; ".join(self.reasons) if self.reasons else "the other requirements do not allow it"
        return f"{self.name} {self.version} locked, not the newest {self.newest}, to keep the target's versions: {because}"


@dataclass(frozen=True, kw_only=True, slots=True)
class DroppedBackport:
    name: str
    backport: StdlibBackport
    version: str  # "" when no release of it could be resolved for the target (the reason it was dropped)

    def __str__(self) -> str:
        return (f"{f'{self.name} {self.version}'.strip()} dropped: a back-port of the standard library's "
                f"{self.backport.module}, which Python {self.backport.since_text}+ has")


@dataclass(frozen=True, kw_only=True, slots=True)
class LockResult:
    output: Path
    target: str
    packages: tuple[LockedPackage, ...]
    provided: tuple[tuple[str, str], ...]
    replaced: tuple[tuple[str, str, str], ...] = ()  # (name, target's version, locked version)
    held_back: tuple[HeldBack, ...] = ()
    optional: tuple[str, ...] = ()
    dropped: tuple[DroppedBackport, ...] = ()  # standard-library back-ports the target's Python makes useless
    warnings: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, kw_only=True, slots=True)
class _Context:
    options: LockOptions
    uv: str
    platform: engine.UvPlatform
    workdir: Path
    held: Mapping[str, InstalledDistribution]
    holds: engine.Holds
    drop: Path | None = None  # overrides that take the standard-library back-ports out of every resolution

    def compile(self, requirements: Path, *, hold: bool, **kwargs: Any) -> engine.UvRun:
        options = self.options
        find_links = [*([self.holds.stubs] if hold else []), *options.find_links]
        constraints = [self.holds.constraints] if hold else []
        overrides = [*kwargs.pop("overrides", []), *([self.drop] if self.drop else [])]
        return engine.run_compile(uv=self.uv, requirements=requirements, target=options.target,
                                  platform=self.platform, index_url=options.index_url,
                                  find_links=find_links, constraints=[*constraints, *kwargs.pop("constraints", [])],
                                  overrides=overrides, cache_dir=options.cache_dir, **kwargs)

    def write(self, name: str, lines: Sequence[str]) -> Path:
        path = self.workdir / name
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        return path


def _network_error(run: engine.UvRun, index_url: str | None,
                   direct: Sequence[InputRequirement] = ()) -> OfflinepackError:
    problem = engine.network_problem(run) or ""
    # a `name @ URL` requirement is fetched from its own host, not the index: name what failed
    for item in direct:
        url = item.requirement.url
        if url and url in problem:
            return OfflinepackError(
                f"cannot download {url} ({item.source}: {item.requirement.name} @ URL): {problem}",
                hint="check that URL and the network; or download the file and put it in a folder passed with "
                     "--find-links DIR (then require it by name)")
    where = index_url or "the default package index"
    return OfflinepackError(f"cannot reach {where}: {problem}",
                            hint="check the network (or --index-url); local files work with --find-links DIR")


def _summary(run: engine.UvRun) -> str:
    lines = [line.removeprefix("error: ").removeprefix("cause: ") for line in run.cause_lines()]
    lines = [line for line in lines if line != "No solution found when resolving dependencies"]
    return " ".join(lines) if lines else "uv failed without a message"


def _location(package: Mapping[str, Any], tags: Sequence[str]) -> str | None:
    files = select_files(package, tags, [])
    if not files:
        return None
    return files[0].url or files[0].path


def _unheld_conflicts(ctx: _Context, direct: Sequence[InputRequirement], pins: Sequence[str]
                      ) -> tuple[engine.UvRun, tuple[Conflict, ...]]:
    """Resolve with the target's versions forced (overrides: requirers' limits ignored), then check them."""
    overrides = [f"{dist.name} @ {ctx.holds.stub_of[key].resolve().as_uri()}" for key, dist in ctx.held.items()]
    run = ctx.compile(ctx.write("unheld.in", [str(r.requirement) for r in direct]), hold=False,
                      overrides=[ctx.write("overrides.txt", overrides)],
                      constraints=[ctx.write("pins.txt", pins)] if pins else [])
    if not run.ok:
        return run, ()
    resolved: dict[str, str] = {}
    locations: dict[str, str] = {}
    for package in run.lock.get("packages", []):
        key = canonicalize_name(package["name"])
        if key in ctx.held:
            continue
        resolved[key] = package.get("version", "")
        location = _location(package, ctx.options.target.tags)
        if location:
            locations[key] = location
    requires = requires_of(locations)
    conflicts = find_conflicts(direct=direct, resolved=resolved, requires=requires, held=ctx.held,
                               markers=ctx.options.target.markers)
    return run, conflicts


_NOT_FOUND = re.compile(r"Because (\S+) was not found in the package registry")


def _alone_problem(item: InputRequirement, run: engine.UvRun, ctx: _Context) -> str:
    target = ctx.options.target
    missing = _NOT_FOUND.search(run.stderr)
    if missing:
        where = ctx.options.index_url or "the package index"
        return f"{item.source}: unknown package {item.requirement.name!r}: not found on {where}" + (
            " or in --find-links" if ctx.options.find_links else "")
    return (f"{item.source}: {item.requirement}: {_summary(run)} "
            f"(the target: Python {target.python_version}, best tags {best_tags(target.tags)})")


def _diagnose(ctx: _Context, direct: Sequence[InputRequirement], held_run: engine.UvRun) -> OfflinepackError:
    """Every reason the held resolution failed, one line each, and what would work."""
    target = ctx.options.target
    problems: list[str] = []
    hints: list[str] = []
    usable: list[InputRequirement] = []
    for i, item in enumerate(direct):
        # a held name is checked too: `numpy==99` is no conflict but a version that does not exist
        if item.requirement.url:
            usable.append(item)
            continue
        alone = ctx.compile(ctx.write(f"alone-{i}.in", [str(item.requirement)]), hold=False, no_deps=True)
        if engine.network_problem(alone):
            return _network_error(alone, ctx.options.index_url, direct)
        if alone.ok:
            usable.append(item)
        else:
            problems.append(_alone_problem(item, alone, ctx))
    if problems:
        hints.append("check names and versions; for a package with no file for the target, pick another version "
                     "or provide a wheel with --find-links")
    run, conflicts = _unheld_conflicts(ctx, usable, [])
    if conflicts:
        working = _relaxed_versions(ctx, usable, conflicts)
        if working:  # relaxing the pinned requirements resolves: the other conflicts are not what blocks
            relaxed = {canonicalize_name(text.split(" ")[0]) for text in working}
            conflicts = tuple(c for c in conflicts if c.chain and _head(c) in relaxed)
        problems += [_with_chain(c) for c in conflicts]
        names = sorted({c.key for c in conflicts})
        requirers = sorted({c.requirer.split(" ")[0] for c in conflicts if " " in c.requirer})
        hint = "what would work: "
        if working:
            hint += f"{' + '.join(working)} (keeps the target's versions: relax your pins), or "
        elif requirers:
            hint += f"an older {' / '.join(requirers)} that accepts the target's versions (relax your pins), or "
        hints.append(hint + " ".join(f"--allow-replace {name}" for name in names)
                     + " (installs another version over the kernel's)")
    elif not run.ok and not problems:
        problems.append(f"the requirements conflict among themselves: {_summary(run)}")
        hints.append("relax or remove one of the pins named above (two requirements that want different "
                     "versions of one package), then lock again")
    if not problems:
        problems.append(_summary(held_run))
    return OfflinepackError(f"cannot lock for target {target.name}", problems=problems,
                            hint="; ".join(hints) or "fix the requirement named above, then lock again")


def _head(conflict: Conflict) -> str:
    """The direct requirement a conflict comes through (canonical name)."""
    return canonicalize_name(conflict.chain[0].split(" ")[0])


def _relaxed_versions(ctx: _Context, direct: Sequence[InputRequirement], conflicts: Sequence[Conflict]) -> list[str]:
    """The versions the held resolution picks once the direct requirements behind the conflicts lose their
    version limits (`dynamic-network-architectures 0.4.2`); [] when that does not resolve either."""
    behind = {_head(c) for c in conflicts if c.chain}
    relaxed = [item for item in direct if item.key in behind and item.requirement.specifier]
    if not relaxed:
        return []
    lines = []
    for item in direct:
        requirement = Requirement(str(item.requirement))
        if item in relaxed:
            requirement.specifier = SpecifierSet()
        lines.append(str(requirement))
    run = ctx.compile(ctx.write("relaxed.in", lines), hold=True)
    if not run.ok:
        return []
    versions = {canonicalize_name(p["name"]): p.get("version", "") for p in run.lock.get("packages", [])}
    return [f"{item.requirement.name} {versions[item.key]}" for item in relaxed if versions.get(item.key)]


def _with_chain(conflict: Conflict) -> str:
    if len(conflict.chain) > 1:
        return f"{conflict} (via {' -> '.join(conflict.chain)})"
    return str(conflict)


def _held_back(ctx: _Context, direct: Sequence[InputRequirement], locked: Mapping[str, LockedPackage]
               ) -> tuple[HeldBack, ...]:
    """Direct requirements that got an older version than the newest the index offers the target."""
    candidates = [item for item in direct if item.key in locked and not item.requirement.url]
    if not candidates:
        return ()
    newest_run = ctx.compile(ctx.write("newest.in", [str(item.requirement) for item in candidates]),
                             hold=False, no_deps=True)
    if not newest_run.ok:
        return ()
    newest = {canonicalize_name(p["name"]): p.get("version", "") for p in newest_run.lock.get("packages", [])}
    behind: list[tuple[str, str, str]] = []
    for item in candidates:
        mine, best = locked[item.key].version, newest.get(item.key)
        try:
            if best and Version(mine) < Version(best):
                behind.append((item.key, mine, best))
        except InvalidVersion:
            continue
    if not behind:
        return ()
    run, conflicts = _unheld_conflicts(ctx, direct, [f"{key}=={best}" for key, _, best in behind])
    result = []
    for key, mine, best in behind:
        mine_conflicts = [c for c in conflicts if not c.chain or canonicalize_name(c.chain[0].split(" ")[0]) == key]
        reasons = tuple(_with_chain(c) for c in mine_conflicts) if run.ok else ()
        result.append(HeldBack(name=locked[key].name, version=mine, newest=best, reasons=reasons))
    return tuple(result)


def _replacement_warnings(target: Target, replaced: Sequence[tuple[str, str, str]]) -> list[str]:
    """Kernel packages whose own requirements the replacement breaks (known only for snapshots)."""
    new = {canonicalize_name(name): version for name, _, version in replaced}
    found = []
    for dist in target.installed:
        for requirement in applicable_requirements(dist.requires, target.markers):
            version = new.get(canonicalize_name(requirement.name))
            if version is None:
                continue
            try:
                if not requirement.specifier.contains(Version(version), prereleases=True):
                    found.append(f"the target's {dist.name} {dist.version} requires {requirement.name}"
                                 f"{requirement.specifier}; the lock replaces it with {version}")
            except InvalidVersion:
                continue
    return found


def _check_sources(options: LockOptions) -> None:
    """--index-url and --find-links, checked before uv gets them (uv reads a bad URL as a missing folder and
    then reports every package as unknown)."""
    problems = []
    url = options.index_url
    if url is not None and urlsplit(url).scheme not in ("http", "https", "file") and not Path(url).is_dir():
        problems.append(f"--index-url {url!r} is neither an http(s):// or file:// URL nor an existing folder")
    problems += [f"--find-links {path}: no such folder" for path in options.find_links if not Path(path).is_dir()]
    if Path(options.output).resolve() in {Path(p).resolve() for p in options.requirements}:
        problems.append(f"-o {options.output} is one of the requirement files: the lock would overwrite it")
    try:  # a device, FIFO or folder as -o fails now, not after the resolve
        resolve_output(options.output)
    except OfflinepackError as error:
        problems.append(error.message)
    if problems:
        raise OfflinepackError("cannot lock: bad options", problems=problems,
                               hint="-o pylock.toml; --index-url https://HOST/simple/ (a PEP 503 index); "
                                    "--find-links ./wheels")


def _without_backports(ctx: _Context, useless: Mapping[str, StdlibBackport]) -> _Context:
    """The context whose resolutions leave the back-ports out: an override with a marker that is never true
    removes a name from everyone's requirements, so what only a back-port needed (unittest2's traceback2) goes too."""
    return dataclasses.replace(ctx, drop=ctx.write("drop-backports.txt", [
        f'{backport.name}; python_version < "0"' for key, backport in useless.items() if key not in ctx.held]))


def _drop_backports(ctx: _Context, run: engine.UvRun, requirements: Path, direct: Sequence[InputRequirement]
                    ) -> tuple[_Context, engine.UvRun, tuple[DroppedBackport, ...]]:
    """Resolve again without the standard-library back-ports the first resolution pulled in (a second uv run
    only when one appeared)."""
    useless = stdlib_backports(ctx.options.target.python_version)
    found = [p for p in run.lock.get("packages", []) if canonicalize_name(p["name"]) in useless
             and canonicalize_name(p["name"]) not in ctx.held]
    if not found:
        return ctx, run, ()
    ctx = _without_backports(ctx, useless)
    again = ctx.compile(requirements, hold=True)
    if not again.ok:  # cannot happen by construction (a smaller graph), but never write a lock from the first run
        raise _diagnose(ctx, direct, again)
    dropped = tuple(DroppedBackport(name=p["name"], version=p.get("version", ""),
                                    backport=useless[canonicalize_name(p["name"])]) for p in found)
    return ctx, again, dropped


def _retry_without_backports(ctx: _Context, failed: engine.UvRun, requirements: Path,
                             direct: Sequence[InputRequirement]
                             ) -> tuple[_Context, engine.UvRun, tuple[DroppedBackport, ...]]:
    """A failed resolution tried again without the back-ports: one with no release for the target's Python
    (dataclasses 0.8 installs on 3.6 only) makes an old package unresolvable although the target needs none.
    Which back-ports were asked for is read from the resolved files' Requires-Dist (only on this path)."""
    target = ctx.options.target
    useless = stdlib_backports(target.python_version)
    if not useless:
        raise _diagnose(ctx, direct, failed)
    dropping = _without_backports(ctx, useless)
    again = dropping.compile(requirements, hold=True)
    if not again.ok:
        raise _diagnose(ctx, direct, failed)
    locations = {}
    for package in again.lock.get("packages", []):
        key = canonicalize_name(package["name"])
        location = None if key in ctx.held else _location(package, target.tags)
        if location:
            locations[key] = location
    texts = [str(item.requirement) for item in direct]
    texts += [text for requires in requires_of(locations).values() for text in requires or ()]
    asked = sorted({canonicalize_name(r.name) for r in applicable_requirements(texts, target.markers)} & set(useless))
    if not asked:  # the back-ports were not what failed: explain the original failure
        raise _diagnose(ctx, direct, failed)
    return dropping, again, tuple(DroppedBackport(name=useless[key].name, version="", backport=useless[key])
                                  for key in asked)


def lock_requirements(options: LockOptions) -> LockResult:
    """Resolve `options.requirements` for `options.target` and write `options.output`."""
    target = options.target
    _check_sources(options)
    direct = read_requirements(options.requirements)
    uv = engine.find_uv(options.uv)
    platform = engine.uv_platform(target)
    allow = {canonicalize_name(name) for name in options.allow_replace}
    installed = target.installed_by_key()
    warnings = [f"--allow-replace {name}: the target does not have it installed" for name in sorted(allow)
                if name not in installed]
    held = {dist.key: dist for dist in engine.holdable(d for d in target.installed if d.key not in allow)}
    with tempfile.TemporaryDirectory(prefix="offlinepack-lock-") as tmp:
        workdir = Path(tmp)
        holds = engine.write_holds(workdir, list(held.values()), platform.stub_tag)
        ctx = _Context(options=options, uv=uv, platform=platform, workdir=workdir, held=held, holds=holds)
        requirements = ctx.write("requirements.in", [str(r.requirement) for r in direct])
        run = ctx.compile(requirements, hold=True)
        if not run.ok:
            if engine.network_problem(run):
                raise _network_error(run, options.index_url, direct)
            ctx, run, dropped = _retry_without_backports(ctx, run, requirements, direct)
        else:
            ctx, run, dropped = _drop_backports(ctx, run, requirements, direct)
        problems: list[str] = []
        packages: dict[str, LockedPackage] = {}
        provided: list[tuple[str, str]] = []
        replaced: list[tuple[str, str, str]] = []
        for package in run.lock.get("packages", []):
            key, version = canonicalize_name(package["name"]), package.get("version", "")
            if key in held or (key in installed and installed[key].version == version):
                provided.append((installed[key].name, installed[key].version))
                continue
            files = select_files(package, target.tags, problems)
            if not files:
                problems.append(f"no file for the target: {package['name']} {version} has no wheel for the target's "
                                f"tags ({best_tags(target.tags)}) and no sdist")
                continue
            packages[key] = LockedPackage(name=package["name"], version=version, files=files)
            if key in installed:
                replaced.append((installed[key].name, installed[key].version, version))
        if problems:
            raise OfflinepackError(f"cannot lock for target {target.name}", problems=problems,
                                   hint="pick versions that have a wheel for the target (or an sdist), or "
                                        "provide one with --find-links DIR")
        held_back = _held_back(ctx, direct, packages)
    warnings += _replacement_warnings(target, replaced)
    optional = tuple(sorted({canonicalize_name(n) for n in options.optional} & set(packages)))
    if options.optional != DEFAULT_OPTIONAL:  # the default names a package many locks do not have
        warnings += [f"--optional {name}: not a package this lock ships, nothing marked optional"
                     for name in options.optional if canonicalize_name(name) not in packages]
    tool: dict[str, Any] = {
        "target": target.name,
        "approximate": target.approximate,
        "requested": [str(item.requirement) for item in direct],
        "optional": list(optional),
        "provided": [{"name": name, "version": version} for name, version in sorted(provided)],
        "replaced": [{"name": n, "target-version": old, "version": new} for n, old, new in replaced],
        "notices": [str(item) for item in held_back],
    }
    if dropped:  # so build, rehearse and bootstrap know these are absent on purpose
        tool["dropped-backports"] = [{"name": d.name, "version": d.version, "stdlib-module": d.backport.module,
                                      "python": d.backport.since_text} for d in dropped]
    if options.portable:
        tool["files-from-index"] = True
    text = render_pylock(list(packages.values()), environments=[target_environment_marker(target.markers)],
                         requires_python=f"=={target.python_minor}.*", tool=tool,
                         portable=options.portable)
    validate_pylock(text, str(options.output))
    write_text_atomically(options.output, text,
                          hint="pass -o with a file in a folder you can write to (the old lock is kept)")
    return LockResult(output=options.output, target=target.name, packages=tuple(packages.values()),
                      provided=tuple(sorted(provided)), replaced=tuple(replaced), held_back=held_back,
                      optional=optional, dropped=dropped, warnings=tuple(warnings))
