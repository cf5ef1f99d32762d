"""Read what the user asks for: requirements.in files and pyproject.toml `[project].dependencies`.

Every requirement remembers where it came from (`file:line`), so errors and conflict messages can
point at it. All problems in all files are collected before failing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from offlinepack._compat import tomllib
from offlinepack.errors import not_utf8, raise_if_problems



@dataclass(frozen=True, kw_only=True, slots=True)
class InputRequirement:
    requirement: Requirement
    source: str  # "requirements.in:3" or "pyproject.toml:[project].dependencies[0]"

    @property
    def key(self) -> str:
        return canonicalize_name(self.requirement.name)

    def __str__(self) -> str:
        return str(self.requirement)


_INCLUDE = re.compile(r"^(-r|--requirement)(\s+|=|(?=[^-\s]))(?P<path>\S.*)$")


def _strip_comment(line: str) -> str:
    # pip's rule: a `#` starts a comment at the line start or after whitespace.
    for i, char in enumerate(line):
        if char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) with `\\` continuations joined and comments removed."""
    result: list[tuple[int, str]] = []
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not buffer:
            start = number
        line = raw.rstrip()
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        stripped = _strip_comment(buffer).strip()
        if stripped:
            result.append((start, stripped))
        buffer = ""
    if buffer.strip():
        result.append((start, _strip_comment(buffer).strip()))
    return result


_INDEX_OPTIONS = ("-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--no-index")


def _unsupported_option(option: str) -> str:
    if option in _INDEX_OPTIONS:
        return (f"option {option!r} is not supported in requirement files; pass it on the command line "
                "(--index-url, --find-links)")
    if option in ("-e", "--editable"):
        return (f"option {option!r} is not supported: the kernel needs a built wheel; write the project as "
                "`name @ file:///absolute/path` or build its wheel and pass --find-links DIR")
    if option in ("-c", "--constraint"):
        return f"option {option!r} is not supported: write the pins as requirements (e.g. `numpy<2`) in this file"
    return f"option {option!r} is not supported in requirement files (only `-r FILE` is)"


def _read_requirements_file(path: Path, problems: list[str], seen: set[Path]) -> list[InputRequirement]:
    path = path.resolve()
    if path in seen:
        return []
    seen.add(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # Notepad writes a BOM; pip accepts it
    except OSError as error:
        problems.append(f"{path}: cannot read ({error.strerror})")
        return []
    except UnicodeDecodeError as error:
        problems.append(not_utf8(path, error))
        return []
    result: list[InputRequirement] = []
    for number, line in _logical_lines(text):
        where = f"{path}:{number}"
        include = _INCLUDE.match(line)
        if include:
            included = path.parent / include["path"]
            if not included.is_file():
                problems.append(f"{where}: {include[1]} {include['path']}: no such file {included}")
                continue
            result += _read_requirements_file(included, problems, seen)
            continue
        if line.startswith("-"):
            problems.append(f"{where}: {_unsupported_option(line.split()[0].split('=')[0])}")
            continue
        if " --hash" in line or "\t--hash" in line:
            problems.append(f"{where}: per-requirement --hash is not supported: offlinepack records the sha256 of "
                            f"every file in the lock itself; remove it ({line.split(' --')[0].strip()!r})")
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement as error:
            problems.append(f"{where}: invalid requirement {line!r}: {str(error).splitlines()[0]}")
            continue
        result.append(InputRequirement(requirement=requirement, source=where))
    return result


def _read_pyproject(path: Path, problems: list[str]) -> list[InputRequirement]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        problems.append(f"{path}: cannot read ({error.strerror})")
        return []
    except tomllib.TOMLDecodeError as error:
        problems.append(f"{path}: not valid TOML ({error})")
        return []
    except UnicodeDecodeError as error:
        problems.append(not_utf8(path, error))
        return []
    project = data.get("project")
    if not isinstance(project, dict):
        problems.append(f"{path}: no [project] table (offlinepack reads [project].dependencies)")
        return []
    if "dependencies" in project.get("dynamic", []) and "dependencies" not in project:
        problems.append(f"{path}: [project].dependencies is dynamic (set by the build backend); offlinepack reads "
                        "only static dependencies: list them in a requirements.in and lock that")
        return []
    dependencies = project.get("dependencies", [])
    if not isinstance(dependencies, list):
        problems.append(f"{path}: [project].dependencies: expected a list of strings")
        return []
    result: list[InputRequirement] = []
    for i, item in enumerate(dependencies):
        where = f"{path}:[project].dependencies[{i}]"
        if not isinstance(item, str):
            problems.append(f"{where}: expected a string, got {type(item).__name__}")
            continue
        try:
            result.append(InputRequirement(requirement=Requirement(item), source=where))
        except InvalidRequirement as error:
            problems.append(f"{where}: invalid requirement {item!r}: {str(error).splitlines()[0]}")
    return result


def _looks_like_a_requirement(text: str) -> bool:
    """`offlinepack lock nnunetv2` (pip install habits): a bare requirement, not a file name."""
    if "/" in text or "\\" in text or text.endswith((".in", ".txt", ".toml")):
        return False
    try:
        Requirement(text)
    except InvalidRequirement:
        return False
    return True


def read_requirements(paths: Sequence[Path]) -> tuple[InputRequirement, ...]:
    """Requirements from every file (pyproject.toml by name, anything else as requirements.in)."""
    problems: list[str] = []
    found: list[InputRequirement] = []
    seen: set[Path] = set()
    for path in paths:
        path = Path(path)
        if path.is_dir():
            problems.append(f"{path}: is a folder; pass its requirements.in or pyproject.toml")
        elif not path.is_file():
            problems.append(f"{path}: no such file" + (
                f" (to lock the package {str(path)!r}, write it on a line of a requirements.in and pass that file)"
                if _looks_like_a_requirement(str(path)) else ""))
        elif path.name == "pyproject.toml":
            found += _read_pyproject(path, problems)
        else:
            found += _read_requirements_file(path, problems, seen)
    if not problems and not found:
        problems.append(f"no requirements in {', '.join(str(p) for p in paths)}")
    raise_if_problems(problems, "cannot read the requirements",
                      hint="requirements.in syntax: one PEP 508 requirement per line, `-r other.in` to include")
    return tuple(found)
