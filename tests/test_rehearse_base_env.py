"""The rehearsal's cached kernel-like base environment (kernel_kit/base_env.py): built once per key, copied per
rehearsal into a venv that works at its new path; a changed preinstalled list makes a new entry; a damaged
entry is rebuilt, never used. Real venvs (without pip where pip is beside the point: seconds, not tens)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from offlinepack.kernel_kit import base_env
from offlinepack.kernel_kit.sandbox import make_kernel_python
from offlinepack.kernel_target import load_target_file

REPO = Path(__file__).resolve().parent.parent
TARGET = REPO / "lockfiles" / "demo" / "target.json"


def _venv_builder(calls: list[Path]):
    def build(folder: Path) -> dict:
        calls.append(folder)
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder / "kernel-python")], check=True)
        (folder / "preinstalled").mkdir()
        (folder / "preinstalled" / "list.txt").write_text("numpy==2.4.6\n")
        return {"note": "built"}
    return build


def _runs_here(venv: Path) -> str:
    return subprocess.run([str(venv / "bin" / "python"), "-c", "import sys; print(sys.prefix)"],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_second_copy_reuses_the_entry_and_works_at_its_own_path(tmp_path):
    env = {"OFFLINEPACK_CACHE": str(tmp_path / "cache")}
    calls: list[Path] = []
    inputs = {"interpreter": sys.executable, "preinstalled": ["numpy==2.4.6"]}
    first = base_env.copy_base(tmp_path / "a", inputs, _venv_builder(calls), env)
    second = base_env.copy_base(tmp_path / "b", inputs, _venv_builder(calls), env)
    assert (first.reused, second.reused, len(calls)) == (False, True, 1)
    assert first.entry == second.entry and first.entry.parent == tmp_path / "cache" / "rehearsal-base"
    for work in (tmp_path / "a", tmp_path / "b"):
        assert _runs_here(work / "kernel-python") == str(work / "kernel-python")
        activate = (work / "kernel-python" / "bin" / "activate").read_text()
        assert str(work / "kernel-python") in activate and ".build-" not in activate
        assert ".build-" not in (work / "kernel-python" / "pyvenv.cfg").read_text()
    # the copy's rewritten files are its own: the cache entry still matches its listing
    assert base_env.intact(first.entry) is not None


def test_a_changed_preinstalled_list_makes_a_new_entry(tmp_path):
    env = {"OFFLINEPACK_CACHE": str(tmp_path / "cache")}
    calls: list[Path] = []
    one = base_env.copy_base(tmp_path / "a", {"preinstalled": ["numpy==2.4.6"]}, _venv_builder(calls), env)
    two = base_env.copy_base(tmp_path / "b", {"preinstalled": ["numpy==2.4.7"]}, _venv_builder(calls), env)
    assert len(calls) == 2 and one.entry != two.entry and not two.reused


def test_a_damaged_entry_is_rebuilt_not_trusted(tmp_path):
    env = {"OFFLINEPACK_CACHE": str(tmp_path / "cache")}
    calls: list[Path] = []
    inputs = {"preinstalled": ["numpy==2.4.6"]}
    entry = base_env.copy_base(tmp_path / "a", inputs, _venv_builder(calls), env).entry
    # a build that died before its marker (the marker is written last)
    (entry / base_env.MARKER).unlink()
    again = base_env.copy_base(tmp_path / "b", inputs, _venv_builder(calls), env)
    assert not again.reused and len(calls) == 2 and base_env.intact(entry) is not None
    # a file removed, and a file edited in place through a copy's hard link
    (entry / "preinstalled" / "list.txt").unlink()
    assert not base_env.copy_base(tmp_path / "c", inputs, _venv_builder(calls), env).reused
    with open(tmp_path / "c" / "preinstalled" / "list.txt", "a") as handle:
        handle.write("scipy==1.17.1\n")
    fresh = base_env.copy_base(tmp_path / "d", inputs, _venv_builder(calls), env)
    assert not fresh.reused and len(calls) == 4
    assert (tmp_path / "d" / "preinstalled" / "list.txt").read_text() == "numpy==2.4.6\n"


def test_old_entries_are_pruned(tmp_path):
    env = {"OFFLINEPACK_CACHE": str(tmp_path / "cache")}
    calls: list[Path] = []
    for i in range(base_env.KEEP + 2):
        base_env.copy_base(tmp_path / "w", {"preinstalled": [f"x=={i}"]}, _venv_builder(calls), env)
    assert len([p for p in base_env.cache_root(env).iterdir() if not p.name.startswith(".")]) == base_env.KEEP


def test_kernel_python_with_pip_from_the_cache(tmp_path):
    """The rehearsal's kernel Python (venv with pip, the demo target's preinstalled list): the second rehearsal
    copies it, and its pip runs from the new path (its script's #! names the copy, through sh when the path is too long for #!)."""
    env = {"OFFLINEPACK_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    target = load_target_file(TARGET)
    first = make_kernel_python(tmp_path / "one", target, env)
    second = make_kernel_python(tmp_path / "two", target, env)
    assert (first.reused, second.reused) == (False, True)
    assert first.stubs == second.stubs and first.linked == second.linked
    pip = tmp_path / "two" / "kernel-python" / "bin" / "pip"
    assert str(tmp_path / "two" / "kernel-python" / "bin" / "python") in "".join(pip.read_text().splitlines()[:2])
    done = subprocess.run([str(pip), "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and str(tmp_path / "two" / "kernel-python") in done.stdout, done.stderr
    # the preinstalled folder is this rehearsal's: numpy's metadata is found through it
    found = subprocess.run([str(second.executable), "-c", "from importlib import metadata; print(metadata.version('numpy'))"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert found == "2.4.6"
    assert json.loads((base_env.cache_root(env) / next(
        p.name for p in base_env.cache_root(env).iterdir() if not p.name.startswith(".")) / base_env.MARKER
                       ).read_text())["inputs"]["preinstalled"]
