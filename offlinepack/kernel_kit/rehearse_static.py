"""The rehearsal's static part: everything that can be known about the kernel without running it (seconds).

- the kernel folder: kernel-metadata.json (internet off) and its notebook;
- sources: every source the metadata lists is given locally (`--dataset owner/slug=PATH`) and every given
  one is listed (a slug typo is named with the closest match); every `kaggle_input(...)` and literal
  /kaggle/input/... path in the notebook resolves to a listed source and exists in its local folder;
  nothing is written outside /kaggle/working;
- the wheelhouse: the exact plan of the wheelhouse's own bootstrap.py against the target (what it would
  install, keep, refuse), each wheel's Requires-Python, and every Requires-Dist of every wheel it would
  install, with the target's markers, satisfied by the wheelhouse or the target's installed versions
  (bootstrap installs with --no-deps, so a missing dependency is only found here or in the kernel);
  offlinepack's own imports (its `run` extra) likewise;
- models: each model path loads at metadata level (files present, JSON readable, pack manifest hashes).
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from offlinepack.doctor.model import Check  # the same ok/warn/fail line with its fix as doctor's
from offlinepack.hashing import sha256_file
from offlinepack.ledger.facts import find_model_pack
from offlinepack.kernel_kit.kernel_metadata import KernelMetadata, Source
from offlinepack.kernel_kit.notebook import KAGGLE_PATH, SOURCE_CALL, code_cells
from offlinepack.kernel_target import Target
from offlinepack.kernel_target.backports import stdlib_backports
from offlinepack.wheelhouse.runtime_needs import MACHINE_ONLY

STATUSES = ("ok", "warn", "fail")
_WRITE_FLAG = re.compile(r"""(?:["']-o["']|["']--output["']|\s-o|\s--output)[\s,=]+["']?(/[^\s"',)\]]+)""")
_OPEN_WRITE = re.compile(r"""open\(\s*["'](/[^"']+)["']\s*,\s*["'][wax]""")
_ASSIGN_SUBMISSION = re.compile(r"""^\s*SUBMISSION\s*=\s*["']([^"']+)["']""", re.M)
_MODELS_LINE = re.compile(r"^\s*MODELS\s*=\s*\[(.*)\]\s*$", re.M)


@dataclass(frozen=True, kw_only=True, slots=True)
class LocalSources:
    """What `--dataset owner/slug=PATH` and `--competition-data PATH` gave, keyed by the source's ref."""

    folders: Mapping[str, Path]

    def folder_of(self, ref: str) -> Path | None:
        return self.folders.get(ref)


def _sources_by_ref(metadata: KernelMetadata) -> dict[str, Source]:
    return {s.ref: s for s in metadata.sources()}


def check_sources(metadata: KernelMetadata, local: LocalSources) -> list[Check]:
    checks = []
    listed = _sources_by_ref(metadata)
    for ref, source in listed.items():
        if local.folder_of(ref) is not None:
            continue
        close = difflib.get_close_matches(ref, list(local.folders), n=1, cutoff=0.6)
        if source.kind == "competition":
            checks.append(Check(name=f"source {ref}", status="warn",
                                detail="the competition's data is not given: the run cannot be replayed on its inputs",
                                fix="pass --competition-data PATH (a folder with test_images/ and test.csv)"))
        elif close:
            checks.append(Check(name=f"source {ref}", status="fail",
                                detail=f"kernel-metadata.json attaches {ref}, which is not what was given ({close[0]}): "
                                       "a slug typo makes Kaggle refuse the push or mount nothing",
                                fix=f"correct the slug: `offlinepack kernel init ... --force` with {close[0]}, or "
                                    f"--dataset {ref}=PATH if {ref} is right"))
        else:
            checks.append(Check(name=f"source {ref}", status="fail",
                                detail=f"kernel-metadata.json attaches {ref}, but no local copy was given to rehearse with",
                                fix=f"pass --dataset {ref}=PATH"))
    for ref, folder in local.folders.items():
        if ref in listed:
            if not folder.is_dir():
                checks.append(Check(name=f"source {ref}", status="fail", detail=f"{folder} is not a folder",
                                    fix="pass the dataset's local folder"))
            else:
                checks.append(Check(name=f"source {ref}", status="ok", detail=f"attached, rehearsed from {folder}"))
            continue
        close = difflib.get_close_matches(ref, list(listed), n=1, cutoff=0.6)
        checks.append(Check(name=f"source {ref}", status="fail",
                            detail=f"{ref} is not attached in kernel-metadata.json"
                                   + (f" (it lists {close[0]}: a slug typo?)" if close else ""),
                            fix="list it with `offlinepack kernel init --model/--wheels` (or fix the typo)"))
    return checks


def _mounts(metadata: KernelMetadata) -> dict[str, Source]:
    """/kaggle/input-relative mount point -> source."""
    return {point: s for s in metadata.sources() for point in s.mount_points()}


def _resolve_input_path(path: str, metadata: KernelMetadata, local: LocalSources) -> tuple[Source | None, Path | None]:
    rel = path[len("/kaggle/input/"):].strip("/")
    for point, source in sorted(_mounts(metadata).items(), key=lambda kv: -len(kv[0])):
        if rel == point or rel.startswith(point + "/"):
            folder = local.folder_of(source.ref)
            inside = rel[len(point):].strip("/")
            return source, (folder / inside if folder is not None and inside else folder)
    return None, None


def check_notebook_paths(notebook: dict[str, Any], metadata: KernelMetadata, local: LocalSources) -> list[Check]:
    """Sources and paths the cells refer to, and writes outside /kaggle/working."""
    checks = []
    listed = _sources_by_ref(metadata)
    for number, text in code_cells(notebook):
        where = f"cell {number}"
        for call in SOURCE_CALL.findall(text):
            ref, _, inside = call.partition(":")
            if ref not in listed:
                close = difflib.get_close_matches(ref, list(listed), n=1, cutoff=0.6)
                checks.append(Check(name=f"{where}: kaggle_input({call!r})", status="fail",
                                    detail=f"{ref} is not attached (kernel-metadata.json lists "
                                           f"{', '.join(listed) or 'nothing'})"
                                           + (f"; did you mean {close[0]}?" if close else ""),
                                    fix="attach it (`offlinepack kernel init --model ...`) or correct the slug"))
                continue
            folder = local.folder_of(ref)
            if folder is not None and inside and not (folder / inside).exists():
                checks.append(Check(name=f"{where}: kaggle_input({call!r})", status="fail",
                                    detail=f"{inside} does not exist in {ref} ({folder})",
                                    fix="point at a path the dataset holds (`offlinepack model pack` prints it)"))
        for path in KAGGLE_PATH.findall(text):
            if path.startswith("/kaggle/working") or path.rstrip("/") in ("/kaggle/input", "/kaggle") or "%" in path:
                continue
            if path.startswith("/kaggle/input/"):
                source, local_path = _resolve_input_path(path, metadata, local)
                if source is None:
                    checks.append(Check(name=f"{where}: {path}", status="fail",
                                        detail="not under any attached source's mount point",
                                        fix="attach the source it belongs to, or correct the path"))
                elif local_path is not None and not local_path.exists():
                    checks.append(Check(name=f"{where}: {path}", status="fail",
                                        detail=f"{source.ref} has no such path ({local_path} does not exist)",
                                        fix="correct the path"))
                continue
            checks.append(Check(name=f"{where}: {path}", status="fail",
                                detail="a path under /kaggle that is neither /kaggle/input (read-only) nor "
                                       "/kaggle/working (the only folder kept)",
                                fix="write under /kaggle/working"))
        written = _WRITE_FLAG.findall(text) + _OPEN_WRITE.findall(text) + _ASSIGN_SUBMISSION.findall(text)
        for path in written:
            if not path.startswith("/kaggle/working"):
                checks.append(Check(name=f"{where}: writes {path}", status="fail",
                                    detail="output outside /kaggle/working: Kaggle keeps (and scores) only what is "
                                           "written there; /kaggle/input is read-only",
                                    fix="write the submission and other outputs under /kaggle/working"))
    if not any(c.status == "fail" for c in checks):
        checks.append(Check(name="notebook paths", status="ok",
                            detail="every input it names is attached and present; it writes only under /kaggle/working"))
    return checks


def model_refs(notebook: dict[str, Any]) -> list[str]:
    """The `kaggle_input(...)` refs on the notebook's `MODELS = [...]` line."""
    return [ref for _, text in code_cells(notebook) for line in _MODELS_LINE.findall(text)
            for ref in SOURCE_CALL.findall(line)]


def wheels_ref(notebook: dict[str, Any]) -> str | None:
    for _, text in code_cells(notebook):
        match = re.search(r"^\s*WHEELS\s*=\s*" + SOURCE_CALL.pattern, text, re.M)
        if match:
            return match.group(1)
    return None


# ------------------------------------------------------------------------------------------- wheelhouse

def load_bootstrap(path: Path) -> ModuleType:
    """The wheelhouse's own bootstrap.py (the file the kernel runs), imported as a module."""
    spec = importlib.util.spec_from_file_location("offlinepack_rehearsed_bootstrap", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    import sys

    sys.modules[spec.name] = module  # type: ignore[union-attr]  # its dataclasses look themselves up here
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    finally:
        sys.modules.pop(spec.name, None)  # type: ignore[union-attr]
    return module


def _wheel_metadata(path: Path) -> tuple[str | None, list[str], str]:
    """(Requires-Python, Requires-Dist lines, the METADATA's name in the archive) of a wheel."""
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        text = archive.read(name).decode("utf-8", "replace")
    head = text.split("\n\n", 1)[0]
    requires_python = next((line.split(":", 1)[1].strip() for line in head.splitlines()
                            if line.startswith("Requires-Python:")), None)
    requires = [line.split(":", 1)[1].strip() for line in head.splitlines() if line.startswith("Requires-Dist:")]
    return requires_python, requires, name


def _applies(requirement: Requirement, markers: Mapping[str, str], extras: Sequence[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({**markers, "extra": extra}) for extra in (extras or [""]))


def _satisfies(version: str, specifier: SpecifierSet) -> bool:
    try:
        return specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


def check_wheelhouse(folder: Path, target: Target) -> tuple[list[Check], list[str]]:
    """bootstrap's plan against the target, then Requires-Python/Requires-Dist of what it would install.
    Returns the checks and the names bootstrap would install."""
    checks: list[Check] = []
    script = folder / "bootstrap.py"
    if not script.is_file():
        return [Check(name="wheelhouse", status="fail", detail=f"{folder} has no bootstrap.py",
                      fix="pass the folder `offlinepack build` wrote")], []
    bootstrap = load_bootstrap(script)
    datasets, _ = bootstrap.discover(wheel_dirs=(str(folder),), kaggle_root=str(folder / ".no-kaggle-root"))
    installed = {d.key: bootstrap.Installed(d.name, d.version, "the target", "") for d in target.installed}
    decisions = bootstrap.decide(datasets, installed, list(target.tags))
    by_status: dict[str, list[str]] = {}
    for d in decisions:
        by_status.setdefault(d.status, []).append(f"{d.name} {d.version}".strip())
        if d.severity != "ok":
            checks.append(Check(name=f"bootstrap: {d.name}", status=d.severity, detail=f"{d.status}: {d.detail}",
                                fix=d.fix))
    summary = "; ".join(f"{status} {len(names)} ({', '.join(names)})" for status, names in by_status.items())
    checks.insert(0, Check(name="bootstrap plan", status="ok",
                           detail=f"with {target.name}'s {len(target.installed)} installed distributions: {summary}"))
    to_install = [d for d in decisions if d.status == "install"]
    wheel_versions = {canonicalize_name(d.name): d.version for d in to_install}
    have = {d.key: d.version for d in target.installed}
    stdlib = {key for key in stdlib_backports(target.python_version) if key not in wheel_versions and key not in have}
    missing_deps = 0
    for d in to_install:
        requires_python, requires, _ = _wheel_metadata(Path(d.file))
        if requires_python and not _satisfies(target.python_version, SpecifierSet(requires_python)):
            checks.append(Check(name=f"wheel {Path(d.file).name}", status="fail",
                                detail=f"requires Python {requires_python}; the target has {target.python_version}",
                                fix="lock and build again for the target (`offlinepack lock/build --target ...`)"))
        extras = ["run"] if canonicalize_name(d.name) == "offlinepack" else []
        for line in requires:
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            if not _applies(requirement, target.markers, extras):
                continue
            key = canonicalize_name(requirement.name)
            if (extras and key in MACHINE_ONLY) or key in stdlib:
                continue  # lock's uv stays on the user's machine; a back-port `lock` dropped: the stdlib has it
            found = wheel_versions.get(key) or have.get(key)
            where = "the wheelhouse" if key in wheel_versions else "the target"
            what = "offlinepack's own imports" if extras else f"{d.name} {d.version}"
            if found is None:
                missing_deps += 1
                checks.append(Check(name=f"dependency {requirement.name}", status="fail",
                                    detail=f"{what} requires {line.split(';')[0].strip()}: neither the wheelhouse nor "
                                           "the target has it (bootstrap installs with --no-deps: the import fails "
                                           "in the kernel)",
                                    fix=f"add {requirement.name} to the requirements, then lock and build again"))
            elif requirement.specifier and not _satisfies(found, requirement.specifier):
                missing_deps += 1
                checks.append(Check(name=f"dependency {requirement.name}", status="fail",
                                    detail=f"{what} requires {requirement.name}{requirement.specifier}; {where} has {found}",
                                    fix="lock and build again for this target (the lock holds the target's versions)"))
    ships_offlinepack = any(canonicalize_name(d.name) == "offlinepack" and d.status in ("install", "satisfied")
                            for d in decisions)
    if ships_offlinepack and "torch" not in have:
        # never a Requires-Dist (the kernel's own CUDA build must be used), but `run` imports it
        missing_deps += 1
        checks.append(Check(name="dependency torch", status="fail",
                            detail="offlinepack run imports torch, which the target does not have (the wheelhouse "
                                   "never ships it: a GPU kernel's CUDA build is used)",
                            fix="rehearse against a snapshot of a GPU kernel image (`python bootstrap.py snapshot`)"))
    if to_install and not missing_deps:
        checks.append(Check(name="dependencies", status="ok",
                            detail=f"every Requires-Dist of the {len(to_install)} wheel(s) to install (and offlinepack's "
                                   "run extra) is met by the wheelhouse or the target"))
    return checks, [d.name for d in to_install]


# ----------------------------------------------------------------------------------------------- models

def check_model_folder(path: Path, ref: str) -> list[Check]:
    """Metadata-level load: the files `run` reads exist and parse; a pack's hashes match."""
    name = f"model {ref}"
    if not path.exists():
        return [Check(name=name, status="fail", detail=f"{path} does not exist", fix="point at a packed model")]
    checks = []
    found = find_model_pack(path)
    if found is not None and found[1] is None:
        checks.append(Check(name=name, status="fail", detail=f"{found[0]} is damaged or not a model pack manifest",
                            fix="pack again (`offlinepack model pack --force`)"))
    elif found is not None:
        pack, manifest = found
        bad = [f["path"] for m in manifest.get("models", []) for f in m.get("files", [])
               if not (pack.parent / f["path"]).is_file() or sha256_file(pack.parent / f["path"]) != f["sha256"]]
        if bad:
            checks.append(Check(name=name, status="fail", detail=f"files differ from the pack manifest: {', '.join(bad)}",
                                fix="pack again (`offlinepack model pack --force`)"))
    if path.is_dir() and (path / "plans.json").is_file():
        problems = []
        for json_name in ("plans.json", "dataset.json"):
            try:
                json.loads((path / json_name).read_text())
            except (OSError, ValueError) as error:
                problems.append(f"{json_name}: {error}")
        folds = sorted(p.name for p in path.glob("fold_*") if any((p / n).is_file() for n in
                                                                   ("checkpoint_final.pth", "checkpoint_best.pth")))
        if not folds:
            problems.append("no fold_*/checkpoint_final.pth")
        kind = f"nnU-Net folder, {', '.join(folds)}"
    elif path.is_dir() and (path / "config.json").is_file():
        problems = [] if (path / "model.safetensors").is_file() else ["model.safetensors is missing"]
        kind = "built-in U-Net"
    elif path.is_file() and path.with_suffix(".json").is_file():
        problems, kind = [], "TorchScript with sidecar"
    else:
        problems, kind = ["not a model folder offlinepack reads (plans.json, config.json or NAME.pt + NAME.json)"], "?"
    if problems:
        checks.append(Check(name=name, status="fail", detail="; ".join(problems),
                            fix="pass the folder `offlinepack model pack` wrote (its `kernel init --model` value)"))
    elif not checks:
        checks.append(Check(name=name, status="ok", detail=f"{kind}" + (" (pack hashes match)" if found else "")))
    return checks
