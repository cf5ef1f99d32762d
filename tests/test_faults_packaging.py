"""Fault injection, packaging side: every file offlinepack writes or reads on the user's machine and in
bootstrap, against each class of fault, with real files, devices, FIFOs, mounts and processes.

Writers (lock -o, build -o, snapshot -o, bootstrap.py snapshot -o, runs note --ledger) x faults (-o is a
symlink, a /dev/null-like device, a /dev/full-like device, a FIFO, in a read-only folder, on a full disk).
Readers (target JSON, wheelhouse manifest, wheelhouse lock TOML, run ledger) x faults (cut short at
several offsets, each field of the wrong type, paths leaving the folder).

Expected for each (README "Guarantees"): a symlink is written through; every other fault gives exit 2,
an `error:` line and a `hint:` line, no traceback, no change to an existing output (no temporary file
left), a special file still special, nothing installed. Read-only folders and full disks are real: a
read-only bind mount or a small tmpfs in a private mount namespace (`unshare -rm`); without one, a
chmod-ed folder and RLIMIT_FSIZE stand in.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from offlinepack.cli.app import app
from offlinepack.kernel_target import dump_target
from tests.support.faults import (ROOT, assert_old_kept, assert_refused, current_umask, invoke_writer,
                                  old_wheelhouse, run_disk_full, run_read_only, temp_leftovers, writer_for)
from tests.support.index import LocalIndex
from tests.support.kernels import BOOTSTRAP
from tests.support.locks import make_target
from tests.support.wheels import make_wheel, sha256_of

runner = CliRunner()

WRITERS = ["lock", "build", "snapshot", "bootstrap-snapshot", "runs-note"]
WRITE_FAULTS = ["symlink", "dev-null", "dev-full", "fifo", "read-only-folder", "disk-full"]


def _device(tmp: Path, which: str) -> Path:
    """A /dev/null (1,3) or /dev/full (1,7) node of our own where we may mknod (root): never the system's."""
    minor = {"dev-null": 3, "dev-full": 7}[which]
    if ROOT:
        node = tmp / which
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, minor))
        return node
    if which == "dev-full":
        pytest.skip("a /dev/full-like node needs root (mknod); the system's is not risked")
    return Path("/dev/null")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fault", WRITE_FAULTS)
@pytest.mark.parametrize("command", WRITERS)
def test_writer_fault(command: str, fault: str, tmp_path: Path, local_index: LocalIndex) -> None:
    writer = writer_for(command, tmp_path, local_index)
    place = tmp_path / "place"
    place.mkdir()
    out = place / ("wheels" if writer.folder_output else "out.file")

    if fault == "symlink":  # written through: the link stays, its target gets the new content
        real = tmp_path / "real" / out.name
        real.parent.mkdir()
        if writer.folder_output:
            old_wheelhouse(real)
        else:
            real.write_bytes(writer.old)
        out.symlink_to(real)
        code, stdout, stderr = invoke_writer(writer, out)
        assert code == 0, stdout + stderr
        assert out.is_symlink() and os.readlink(out) == str(real)
        if writer.folder_output:
            assert "old" not in json.loads((real / "offlinepack.json").read_text())
            assert (real / "bootstrap.py").is_file() and not (tmp_path / "real" / ".wheels.old").exists()
        elif writer.ledger:
            assert real.read_bytes().startswith(writer.old) and b'"public_lb":0.5' in real.read_bytes()
        else:
            assert real.read_bytes() != writer.old and real.stat().st_mode & 0o777 == 0o666 & ~current_umask()
        assert temp_leftovers(real.parent) == []
        return

    if fault in ("dev-null", "dev-full", "fifo"):
        if fault == "fifo":
            node = tmp_path / "fifo"
            os.mkfifo(node)
        else:
            node = _device(tmp_path, fault)
        before = os.stat(node)
        code, stdout, stderr = invoke_writer(writer, node)
        assert_refused(code, stderr)
        after = os.stat(node)
        assert stat.S_IFMT(after.st_mode) == stat.S_IFMT(before.st_mode) and after.st_ino == before.st_ino
        assert temp_leftovers(node.parent) == []
        return

    # read-only folder / full disk: the old output must survive byte for byte
    if writer.folder_output:
        old_wheelhouse(out)
    else:
        out.write_bytes(writer.old)
    if fault == "read-only-folder":
        code, stderr = run_read_only(writer, place, out)
        assert_refused(code, stderr)
        assert_old_kept(writer, out)
        assert temp_leftovers(place) == []
    else:
        code, stderr, state = run_disk_full(writer, place, out)
        assert_refused(code, stderr)
        assert "disk full" in stderr or "No space left" in stderr or "File too large" in stderr, stderr
        assert_old_kept(writer, state / out.name)
        assert temp_leftovers(state) == []


# ------------------------------------------------------------------------------------------- readers

def _truncations(data: bytes) -> list[int]:
    n = len(data)
    return sorted({1, n // 4, n // 2, (3 * n) // 4, n - 2})


def _target_dict() -> dict:
    return make_target().to_dict()


TARGET_WRONG = {  # field path -> a wrong-typed value
    "name": 5, "interpreter": "cpython", "interpreter.version": 312, "platform": [], "platform.machine": 64,
    "markers": "linux", "markers.python_version": 3.12, "tags": "py3-none-any", "tags[0]": 1, "installed": {},
    "approximate": "yes", "platform.libc_version": 2.35,
}


def _set(data: dict, path: str, value: object) -> dict:
    data = json.loads(json.dumps(data))
    parts = path.replace("[", ".[").split(".")
    holder = data
    for part in parts[:-1]:
        holder = holder[int(part[1:-1])] if part.startswith("[") else holder[part]
    last = parts[-1]
    if last.startswith("["):
        holder[int(last[1:-1])] = value
    else:
        holder[last] = value
    return data


def _lock_with_target(tmp: Path, target_text: bytes) -> tuple[int, str, Path]:
    (tmp / "requirements.in").write_text("alpha\n")
    bad = tmp / "kernel.json"
    bad.write_bytes(target_text)
    out = tmp / "pylock.toml"
    result = runner.invoke(app, ["lock", str(tmp / "requirements.in"), "--target", str(bad), "-o", str(out)])
    assert not (result.exception and not isinstance(result.exception, SystemExit)), result.exception
    return result.exit_code, result.stderr, out


@pytest.mark.parametrize("cut", range(5))
def test_target_cut_short(cut: int, tmp_path: Path) -> None:
    text = json.dumps(_target_dict(), indent=1).encode()
    code, stderr, out = _lock_with_target(tmp_path, text[:_truncations(text)[cut]])
    assert_refused(code, stderr)
    assert not out.exists()


@pytest.mark.parametrize("field", sorted(TARGET_WRONG))
def test_target_wrong_type(field: str, tmp_path: Path) -> None:
    code, stderr, out = _lock_with_target(tmp_path, json.dumps(_set(_target_dict(), field, TARGET_WRONG[field])).encode())
    assert_refused(code, stderr)
    assert field.split(".")[0].split("[")[0] in stderr
    assert not out.exists()


# manifest: bootstrap in this process, installing into a folder of its own (which must stay empty)

def _bootstrap_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("offlinepack_bootstrap_faults", BOOTSTRAP)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


BS = _bootstrap_module()


def _wheelhouse(tmp: Path) -> tuple[Path, dict]:
    house = tmp / "house"
    wheel = make_wheel(house, "faultpkg", "1.0")
    manifest = {"format": "offlinepack-wheelhouse", "version": 1, "created": "2026-12-02T00:00:00Z",
                "target": {"name": "t", "implementation": "cpython", "python_version": "3.11", "tags": ["py3-none-any"]},
                "packages": [{"name": "faultpkg", "version": "1.0", "optional": False,
                              "files": [{"path": wheel.name, "sha256": sha256_of(wheel), "size": wheel.stat().st_size}]}],
                "provided": [{"name": "numpy", "version": "2.0"}], "lock": "pylock.toml"}
    return house, manifest


def _bootstrap_on(house: Path, site: Path) -> dict:
    options = BS.Options(wheel_dirs=(str(house),), kaggle_root=str(house.parent / "no-kaggle"), target=str(site),
                         installer="pip")
    return BS.bootstrap(options)


MANIFEST_WRONG = {
    "format": 1, "version": "1", "target": "kaggle", "target.tags": "py3", "target.tags[0]": 3,
    "target.python_version": 3.11, "packages": {}, "packages[0]": "faultpkg", "packages[0].name": 7,
    "packages[0].version": 1.0, "packages[0].optional": "no", "packages[0].files": 5, "packages[0].files[0]": "x.whl",
    "packages[0].files[0].path": 3, "packages[0].files[0].sha256": 12, "packages[0].files[0].size": "1",
    "provided": "numpy", "provided[0]": "numpy", "provided[0].name": None, "lock": 1,
}
MANIFEST_ESCAPES = {"parent": "../outside.whl", "absolute": "/etc/passwd", "link": "link.whl"}


def _assert_bootstrap_refused(report: dict, site: Path, *, mention: str | None = None) -> None:
    assert report["exit_code"] == 2 and report["status"] == "not ready"
    problems = "\n".join(report["problems"])
    assert "nothing is installed from this folder" in problems and "rebuild" in problems
    if mention:
        assert mention in problems, problems
    assert report["install"] is None or not report["install"]["files"]
    assert not site.exists() or not [p for p in site.iterdir() if not p.name.startswith(".offlinepack")]


@pytest.mark.parametrize("cut", range(5))
def test_manifest_cut_short(cut: int, tmp_path: Path) -> None:
    house, manifest = _wheelhouse(tmp_path)
    text = json.dumps(manifest, indent=1).encode()
    (house / "offlinepack.json").write_bytes(text[:_truncations(text)[cut]])
    _assert_bootstrap_refused(_bootstrap_on(house, tmp_path / "site"), tmp_path / "site")


@pytest.mark.parametrize("field", sorted(MANIFEST_WRONG))
def test_manifest_wrong_type(field: str, tmp_path: Path) -> None:
    house, manifest = _wheelhouse(tmp_path)
    (house / "offlinepack.json").write_text(json.dumps(_set(manifest, field, MANIFEST_WRONG[field])))
    _assert_bootstrap_refused(_bootstrap_on(house, tmp_path / "site"), tmp_path / "site", mention=field)


@pytest.mark.parametrize("kind", sorted(MANIFEST_ESCAPES))
def test_manifest_path_escapes(kind: str, tmp_path: Path) -> None:
    house, manifest = _wheelhouse(tmp_path)
    outside = make_wheel(tmp_path / "elsewhere", "faultpkg", "1.0")
    (tmp_path / "outside.whl").write_bytes(outside.read_bytes())
    (house / "link.whl").symlink_to(outside)
    path = MANIFEST_ESCAPES[kind]
    manifest["packages"][0]["files"][0].update(path=path, sha256=sha256_of(outside))
    (house / "offlinepack.json").write_text(json.dumps(manifest))
    _assert_bootstrap_refused(_bootstrap_on(house, tmp_path / "site"), tmp_path / "site",
                              mention="packages[0].files[0].path")


# wheelhouse lock: `build` reads it; a bad one is refused before anything is fetched or written

def _wheelhouse_lock(tmp: Path) -> str:
    wheel = make_wheel(tmp / "wh", "alpha", "1.0")
    return ('lock-version = "1.0"\ncreated-by = "offlinepack 0.1.0"\nrequires-python = ">=3.10"\n\n'
            f'[[packages]]\nname = "alpha"\nversion = "1.0"\nwheels = [{{name = "{wheel.name}", path = "{wheel.name}", '
            f'size = {wheel.stat().st_size}, hashes = {{sha256 = "{sha256_of(wheel)}"}}}}]\n\n'
            '[tool.offlinepack]\ntarget = "test-kernel"\nprovided = [{name = "numpy", version = "2.0.2"}]\n'
            'wheelhouse = true\n')


LOCK_WRONG = {  # field -> (text to find, replacement)
    "lock-version": ('lock-version = "1.0"', "lock-version = 1"),
    "packages[0].name": ('name = "alpha"', "name = 5"),
    "packages[0].version": ('version = "1.0"\nwheels', "version = 1\nwheels"),
    "packages[0].wheels": ("wheels = [{", 'wheels = "x"\nw = [{'),
    "packages[0].wheels[0].path": ('path = "alpha', 'path = 3, p = "alpha'),
    "packages[0].wheels[0].size": ("size = ", 'size = "1", s = '),
    "packages[0].wheels[0].hashes": ("hashes = {", 'hashes = "x", h = {'),
    "tool.offlinepack.provided": ("provided = [", 'provided = "numpy"\np = ['),
    "tool.offlinepack.target": ('target = "test-kernel"', "target = 5"),
}
LOCK_ESCAPES = {"parent": "../outside.whl", "absolute": "/tmp/outside.whl"}


def _build_from(tmp: Path, text: str) -> tuple[int, str, Path]:
    folder = tmp / "wh"
    folder.mkdir(exist_ok=True)
    (folder / "pylock.toml").write_text(text)
    target = tmp / "target.json"
    dump_target(make_target(), target)
    out = tmp / "out"
    result = runner.invoke(app, ["build", str(folder / "pylock.toml"), "--target", str(target), "-o", str(out),
                                 "--dataset-id", "me/fault-wheels", "--cache-dir", str(tmp / "cache")])
    assert not (result.exception and not isinstance(result.exception, SystemExit)), result.exception
    return result.exit_code, result.stderr, out


@pytest.mark.parametrize("cut", range(5))
def test_wheelhouse_lock_cut_short(cut: int, tmp_path: Path) -> None:
    text = _wheelhouse_lock(tmp_path)
    cut_at = _truncations(text.encode())[cut]
    code, stderr, out = _build_from(tmp_path, text[:cut_at])
    assert_refused(code, stderr)
    assert not out.exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("field", sorted(LOCK_WRONG))
def test_wheelhouse_lock_wrong_type(field: str, tmp_path: Path) -> None:
    old, new = LOCK_WRONG[field]
    text = _wheelhouse_lock(tmp_path)
    assert old in text
    code, stderr, out = _build_from(tmp_path, text.replace(old, new, 1))
    assert_refused(code, stderr)
    assert field.split("[")[0].split(".")[-1] in stderr or field in stderr, stderr
    assert not out.exists()


@pytest.mark.parametrize("kind", sorted(LOCK_ESCAPES))
def test_wheelhouse_lock_path_escapes(kind: str, tmp_path: Path) -> None:
    text = _wheelhouse_lock(tmp_path)
    name = next(p.name for p in (tmp_path / "wh").glob("*.whl"))
    outside = LOCK_ESCAPES[kind] if kind == "parent" else str(tmp_path / "outside.whl")
    (tmp_path / "outside.whl").write_bytes((tmp_path / "wh" / name).read_bytes())
    code, stderr, out = _build_from(tmp_path, text.replace(f'path = "{name}"', f'path = "{outside}"'))
    assert_refused(code, stderr)
    assert "packages[0].wheels[0].path" in stderr
    assert not out.exists()


# ledger: a damaged neighbour never costs a complete record; wrong types never crash the listing

def _ledger(tmp: Path) -> tuple[Path, bytes]:
    records = [{"type": "run", "run_id": f"2026120{i}T000000Z-aaaaa{i}", "status": "done", "volumes": [{"id": "1"}],
                "submission": {"sha256": "ab" * 32, "size": 1000}} for i in range(3)]
    text = "".join(json.dumps(r) + "\n" for r in records).encode()
    return tmp / "offlinepack-runs.jsonl", text


@pytest.mark.parametrize("cut", range(5))
def test_ledger_cut_short(cut: int, tmp_path: Path) -> None:
    ledger, text = _ledger(tmp_path)
    at = _truncations(text)[cut]
    ledger.write_bytes(text[:at])
    complete = text[:at].count(b"\n")
    listed = runner.invoke(app, ["runs", "--ledger", str(ledger), "--json"])
    assert listed.exit_code == 0, listed.output
    runs = json.loads(listed.stdout)["runs"]
    assert len(runs) == complete
    if complete:
        noted = runner.invoke(app, ["runs", "--ledger", str(ledger), "note", runs[0]["run_id"], "--public-lb", "0.9"])
        assert noted.exit_code == 0, noted.output
        again = json.loads(runner.invoke(app, ["runs", "--ledger", str(ledger), "--json"]).stdout)["runs"]
        assert again[0]["public_lb"] == 0.9 and len(again) == complete
        assert ledger.read_bytes().startswith(text[:at])


LEDGER_WRONG = {"run_id": 5, "type": 3, "volumes": "many", "submission": "x.zip", "status": ["done"],
                "finished": 12, "note.public_lb": "high", "note.text": 4}


@pytest.mark.parametrize("field", sorted(LEDGER_WRONG))
def test_ledger_wrong_type(field: str, tmp_path: Path) -> None:
    ledger, text = _ledger(tmp_path)
    record = {"type": "run", "run_id": "20261209T000000Z-bbbbbb", "status": "done"}
    note = {"type": "note", "run_id": "20261200T000000Z-aaaaa0", "public_lb": 0.4, "text": "ok"}
    if field.startswith("note."):
        note[field[5:]] = LEDGER_WRONG[field]
    else:
        record[field] = LEDGER_WRONG[field]
    ledger.write_bytes(text + (json.dumps(record) + "\n" + json.dumps(note) + "\n").encode())
    for argv in (["runs", "--ledger", str(ledger)], ["runs", "--ledger", str(ledger), "--json"]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 0 and result.exception is None or isinstance(result.exception, SystemExit), \
            (argv, result.output, result.exception)
        assert result.exit_code == 0, result.output
    runs = json.loads(runner.invoke(app, ["runs", "--ledger", str(ledger), "--json"]).stdout)["runs"]
    assert {r["run_id"] for r in runs} >= {f"2026120{i}T000000Z-aaaaa{i}" for i in range(3)}
