"""Find real interpreters of a given version (pyenv installs, PATH) for venvs in tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def find_python(minor: str) -> Path | None:
    """An interpreter for `minor` ("3.12"), or None. Checks PATH, then pyenv's version folders."""
    candidates: list[Path] = []
    found = shutil.which(f"python{minor}")
    if found:
        candidates.append(Path(found))
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(pyenv_root.glob(f"versions/{minor}.*/bin/python{minor}"), reverse=True)
    for candidate in candidates:
        try:
            out = subprocess.run([str(candidate), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == minor:
            return candidate
    return None
