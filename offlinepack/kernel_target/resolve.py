"""`--target` values: a built-in name, a target JSON file, or an `env.json` + `pip-inspect.json` folder."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from offlinepack.errors import OfflinepackError
from offlinepack.kernel_target.convert import ENV_FILE, INSPECT_FILE, is_inspect_folder, target_from_inspect_folder
from offlinepack.kernel_target.model import Target, load_target_file, parse_target

# Built-ins are package data written by scripts/make_builtin_targets.py (never read shared fixtures at run time).
_BUILTIN_PACKAGE = "offlinepack.kernel_target.builtin"


def builtin_names() -> tuple[str, ...]:
    folder = resources.files(_BUILTIN_PACKAGE)
    return tuple(sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json")))


def load_builtin(name: str) -> Target:
    if name not in builtin_names():
        raise OfflinepackError(f"unknown built-in target {name!r}",
                               hint=f"built-ins: {', '.join(builtin_names())} (see `offlinepack targets`)")
    text = resources.files(_BUILTIN_PACKAGE).joinpath(f"{name}.json").read_text(encoding="utf-8")
    return parse_target(json.loads(text), source=f"built-in target {name}")


def resolve_target(spec: str | Path) -> Target:
    """A Target from a built-in name (`kaggle-gpu`), a target JSON file, or a captured folder."""
    text = str(spec)
    if not isinstance(spec, Path) and text in builtin_names():
        return load_builtin(text)
    path = Path(spec)
    if path.is_dir():
        if is_inspect_folder(path):
            return target_from_inspect_folder(path)
        raise OfflinepackError(f"target folder {path} has no {ENV_FILE} + {INSPECT_FILE}",
                               hint="pass a target JSON file, a folder with env.json and pip-inspect.json, "
                                    f"or a built-in name ({', '.join(builtin_names())})")
    if path.is_file():
        return load_target_file(path)
    raise OfflinepackError(f"no such target: {text!r} is neither a built-in nor an existing file or folder",
                           hint=f"built-ins: {', '.join(builtin_names())}; or write one in the kernel with "
                                "`python bootstrap.py snapshot -o kernel.json`, then `--target kernel.json`")
