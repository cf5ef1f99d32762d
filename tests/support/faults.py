"""The fault-injection harness for packaging writers: each command that writes a file (lock, build, snapshot,
bootstrap.py snapshot, runs note) as a `Writer`, run in-process or as a process on a read-only mount or a
full tmpfs (a private mount namespace, `unshare -rm`; without one, a chmod-ed folder and RLIMIT_FSIZE)."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from offlinepack.cli.app import app
from offlinepack.kernel_target import dump_target
from tests.support.index import LocalIndex
from tests.support.kernels import BOOTSTRAP
from tests.support.locks import make_target
from tests.support.wheels import make_wheel, sha256_of

runner = CliRunner()
ROOT = os.geteuid() == 0
PYTHON = sys.executable
FILLER = "zz-filler"


def _sandbox_works() -> bool:
    try:
        return subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt 2>/dev/null "
                               "|| { d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs $d; }"],
                              capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# OFFLINEPACK_TEST_NO_SANDBOX=1 exercises the stand-ins (chmod, RLIMIT_FSIZE) used where namespaces are not allowed
SANDBOX = not os.environ.get("OFFLINEPACK_TEST_NO_SANDBOX") and _sandbox_works()


# ------------------------------------------------------------------------------------------- writers

@dataclass
class Writer:
    """One command that writes a file: its inputs, its argv for an output path, a good old output."""

    name: str
    argv: list[str]  # "{out}" is replaced by the output path
    old: bytes | None  # content of an existing good output (None: a folder, see build)
    subprocess_argv: list[str] | None = None  # when it is not the Typer app (bootstrap.py)
    folder_output: bool = False
    ledger: bool = False


def writer_for(name: str, tmp: Path, index: LocalIndex) -> Writer:
    target = tmp / "target.json"
    dump_target(make_target(), target)
    if name == "lock":
        make_wheel(index.root, "alpha", "1.0")
        (tmp / "requirements.in").write_text("alpha\n")
        return Writer(name, ["lock", str(tmp / "requirements.in"), "--target", str(target), "-o", "{out}",
                             "--index-url", index.url, "--cache-dir", str(tmp / "uv-cache")],
                      old=b'lock-version = "1.0"\n# an older good lock\n')
    if name == "snapshot":
        return Writer(name, ["snapshot", "-o", "{out}"], old=b'{"format": "offlinepack-target"}\n')
    if name == "bootstrap-snapshot":
        return Writer(name, [], old=b'{"format": "offlinepack-target"}\n',
                      subprocess_argv=[PYTHON, str(BOOTSTRAP), "snapshot", "-o", "{out}"])
    if name == "runs-note":
        return Writer(name, ["runs", "note", "r1", "--public-lb", "0.5", "--ledger", "{out}"],
                      old=_page_sized_record(), ledger=True)
    if name == "build":
        wheels = tmp / "wheels"
        alpha = make_wheel(wheels, "alpha", "1.0")
        own = make_wheel(wheels, "offlinepack", "0.1.0")  # the lock carries it: no self-wheel build
        lock = tmp / "pylock.toml"
        lock.write_text('lock-version = "1.0"\ncreated-by = "tests"\n' + "".join(
            f'\n[[packages]]\nname = "{n}"\nversion = "{v}"\nwheels = [{{path = "wheels/{w.name}", '
            f'hashes = {{sha256 = "{sha256_of(w)}"}}}}]\n' for n, v, w in (("alpha", "1.0", alpha),
                                                                             ("offlinepack", "0.1.0", own))))
        return Writer(name, ["build", str(lock), "--target", str(target), "-o", "{out}", "--force",
                             "--dataset-id", "me/fault-wheels", "--cache-dir", str(tmp / "cache")],
                      old=None, folder_output=True)
    raise AssertionError(name)


def _page_sized_record() -> bytes:
    """A ledger of exactly one 4 KiB page: on a full tmpfs, an append then needs a page there is not."""
    head = b'{"type":"run","run_id":"r1","pad":"'
    tail = b'"}\n'
    return head + b"x" * (4096 - len(head) - len(tail)) + tail


def _argv(writer: Writer, out: Path) -> list[str]:
    return [str(out) if a == "{out}" else a for a in (writer.subprocess_argv or writer.argv)]


def old_wheelhouse(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "offlinepack.json").write_text('{"format": "offlinepack-wheelhouse", "old": true}\n')


def invoke_writer(writer: Writer, out: Path, env: dict | None = None) -> tuple[int, str, str]:
    """(exit code, stdout, stderr): the Typer app in-process, bootstrap.py as a process."""
    if writer.subprocess_argv:
        proc = subprocess.run(_argv(writer, out), capture_output=True, text=True, timeout=120,
                              env={**os.environ, **(env or {})})
        return proc.returncode, proc.stdout, proc.stderr
    result = runner.invoke(app, _argv(writer, out), env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _in_process(writer: Writer) -> list[str]:
    """The same command as a process (for mounts and rlimits)."""
    return [PYTHON, "-m", "offlinepack", *writer.argv] if not writer.subprocess_argv else writer.subprocess_argv


def assert_refused(code: int, stderr: str) -> None:
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert lines and any(line.startswith("error: ") for line in lines), stderr
    assert any(line.startswith("hint: ") for line in lines), stderr
    assert "Traceback" not in stderr


def temp_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != ".")


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def assert_old_kept(writer: Writer, out: Path) -> None:
    if writer.folder_output:
        assert json.loads((out / "offlinepack.json").read_text())["old"] is True
        assert sorted(p.name for p in out.iterdir()) == ["offlinepack.json"]
    else:
        assert out.read_bytes() == writer.old


def run_read_only(writer: Writer, place: Path, out: Path) -> tuple[int, str]:
    argv = " ".join(f"'{a}'" for a in _argv(_with_argv(writer, _in_process(writer)), out))
    if SANDBOX:
        script = f"mount --bind {place} {place} && mount -o remount,bind,ro {place} && exec {argv}"
        proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=120)
        return proc.returncode, proc.stderr
    if ROOT:
        pytest.skip("root ignores a chmod-ed folder and mount namespaces are not permitted here")
    place.chmod(0o555)
    if not writer.folder_output:
        out.chmod(0o444)
    try:
        proc = subprocess.run(["sh", "-c", argv], capture_output=True, text=True, timeout=120)
    finally:
        place.chmod(0o755)
    return proc.returncode, proc.stderr


def _with_argv(writer: Writer, argv: list[str]) -> Writer:
    return Writer(writer.name, writer.argv, writer.old, subprocess_argv=argv, folder_output=writer.folder_output)


def run_disk_full(writer: Writer, place: Path, out: Path) -> tuple[int, str, Path]:
    """The command with `place` on a full disk; returns its exit code, stderr and a copy of `place` after."""
    argv = " ".join(f"'{a}'" for a in _argv(_with_argv(writer, _in_process(writer)), out))
    state = place.parent / "state"
    if SANDBOX:
        keep = place.parent / "before"
        os.rename(place, keep)
        place.mkdir()
        tar = place.parent / "after.tar"
        script = (f"mount -t tmpfs -o size=256k tmpfs {place} && cp -a {keep}/. {place}/ && "
                  f"(head -c 1048576 /dev/zero > {place}/{FILLER} 2>/dev/null; true) && "
                  f"{{ {argv}; rc=$?; }}; rm -f {place}/{FILLER}; tar -C {place} -cf {tar} . ; exit $rc")
        proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=120)
        state.mkdir()
        with tarfile.open(tar) as archive:
            archive.extractall(state, filter="tar") if hasattr(tarfile, "data_filter") else archive.extractall(state)
        return proc.returncode, proc.stderr, state

    if writer.name == "lock":
        pytest.skip("RLIMIT_FSIZE would also stop uv's own cache writes; a full lock output needs a tmpfs")

    def limit() -> None:  # RLIMIT_FSIZE: a write past 64 bytes fails with EFBIG ("File too large")
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))

    proc = subprocess.run(["sh", "-c", argv], capture_output=True, text=True, timeout=120, preexec_fn=limit)
    return proc.returncode, proc.stderr, place
