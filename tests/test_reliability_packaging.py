"""Issue 10, packaging side: each defect found by a hostile user, reproduced with real files.

Ledger (1), bootstrap's manifest trust (2, 3, 4), offlinepack's own dependencies (5), writes through
links and refusals of special files (6), and the smaller messages of 12.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

from typer.testing import CliRunner

from offlinepack.cli.app import app
from offlinepack.ledger import append_record, read_ledger

runner = CliRunner()


# ------------------------------------------------------------------------------------------- 1. ledger

def test_note_after_a_torn_last_line_is_its_own_line_and_is_read(tmp_path: Path) -> None:
    ledger = tmp_path / "offlinepack-runs.jsonl"
    append_record(ledger, {"type": "run", "run_id": "20261125T100000Z-aaaaaa", "status": "done"})
    with open(ledger, "ab") as handle:  # a run killed while writing its record
        handle.write(b'{"type":"run","run_id":"20261125T110000Z-bbbbbb","vol')
    result = runner.invoke(app, ["runs", "--ledger", str(ledger), "note", "20261125T10", "--public-lb", "0.77"])
    assert result.exit_code == 0, result.output
    lines = ledger.read_bytes().splitlines()
    assert json.loads(lines[-1])["public_lb"] == 0.77  # a line of its own, not glued onto the torn one
    listed = runner.invoke(app, ["runs", "--ledger", str(ledger), "--json"])
    assert listed.exit_code == 0, listed.output
    runs = json.loads(listed.stdout)["runs"]
    assert [(r["run_id"], r["public_lb"]) for r in runs] == [("20261125T100000Z-aaaaaa", 0.77)]


def test_a_record_glued_after_a_torn_line_is_not_dropped(tmp_path: Path) -> None:
    """Ledgers damaged before appends started on a new line: the complete record after the torn part is kept."""
    ledger = tmp_path / "runs.jsonl"
    ledger.write_bytes(b'{"type":"run","run_id":"r1"}\n'
                       b'{"type":"run","run_id":"r2","sta{"type":"note","run_id":"r1","public_lb":0.5}\n'
                       b'\xff\xfe junk\n{"type":"run","run_id":"r3"}\n')
    view = read_ledger(ledger)
    assert [r.run_id for r in view.runs] == ["r1", "r3"]
    assert view.runs[0].public_lb == 0.5
    assert view.skipped_lines == (2, 3)


# ------------------------------------------------------------------------------------------- bootstrap: 2-5, 12

import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402

from tests.support.wheels import make_wheel, sha256_of  # noqa: E402
from tests.support.kernels import (  # noqa: E402
    BOOTSTRAP, by_name, clone_kernel, make_base_kernel, report_of, run_bootstrap, site_packages, venv_python,
    write_wheelhouse,
)


@pytest.fixture(scope="module")
def base_kernel(tmp_path_factory) -> Path:
    return make_base_kernel(tmp_path_factory.mktemp("relbase") / "kernel", "3.12", (("alpha", "1.0"),))


@pytest.fixture
def kernel(base_kernel, tmp_path) -> Path:
    return clone_kernel(base_kernel, tmp_path / "kernel")


def _installed(kernel: Path, name: str) -> bool:
    return any(site_packages(kernel).glob(f"{name}-*.dist-info"))


def _house(tmp_path: Path, *names: str) -> Path:
    src = tmp_path / "src"
    return write_wheelhouse(tmp_path / "house", [{"wheel": make_wheel(src, n, "1.0")} for n in names])


def test_damaged_manifest_installs_nothing_from_its_folder(kernel, tmp_path):
    house = _house(tmp_path, "beta", "delta")
    text = (house / "offlinepack.json").read_text()
    (house / "offlinepack.json").write_text(text[: len(text) // 2])  # truncated upload
    proc = run_bootstrap(kernel, house / "bootstrap.py", "--kaggle-root", str(tmp_path / "kaggle"), "--json")
    report = report_of(proc)
    assert proc.returncode == 2
    assert not _installed(kernel, "beta") and not _installed(kernel, "delta")
    assert report["install"] is None and report["packages"][0]["name"] == "imagecodecs"
    assert any("nothing is installed from this folder" in p for p in report["problems"])


def test_manifest_paths_escaping_the_dataset_are_refused(kernel, tmp_path):
    outside = make_wheel(tmp_path / "outside", "evil", "1.0")
    house = _house(tmp_path, "beta")
    manifest = json.loads((house / "offlinepack.json").read_text())
    manifest["packages"].append({"name": "evil", "version": "1.0", "files": [
        {"path": "../outside/" + outside.name, "sha256": sha256_of(outside), "size": 1}]})
    manifest["packages"].append({"name": "evil2", "version": "1.0", "files": [
        {"path": str(outside), "sha256": sha256_of(outside), "size": 1}]})
    (house / "link.whl").symlink_to(outside)
    manifest["packages"].append({"name": "evil3", "version": "1.0", "files": [
        {"path": "link.whl", "sha256": sha256_of(outside), "size": 1}]})
    (house / "offlinepack.json").write_text(json.dumps(manifest))
    proc = run_bootstrap(kernel, house / "bootstrap.py", "--kaggle-root", str(tmp_path / "kaggle"), "--json")
    report = report_of(proc)
    assert proc.returncode == 2
    assert not _installed(kernel, "evil") and not _installed(kernel, "beta")
    problems = "\n".join(report["problems"])
    assert "packages[1].files[0].path: '../outside/evil-1.0-py3-none-any.whl' is a path that leaves" in problems
    assert f"packages[2].files[0].path: '{outside}' is an absolute path" in problems
    assert "packages[3].files[0].path: 'link.whl' is a link that leaves the wheelhouse folder" in problems


def test_wrong_typed_manifest_values_are_all_reported_with_field_paths(kernel, tmp_path):
    house = _house(tmp_path, "beta", "delta")
    manifest = json.loads((house / "offlinepack.json").read_text())
    manifest["packages"][0]["files"] = 5
    manifest["packages"][1]["name"] = 7
    manifest["packages"][1]["files"][0]["sha256"] = 12
    manifest["packages"][1]["files"][0]["path"] = 3
    manifest["provided"] = [{"name": None}]
    manifest["target"] = "kaggle"
    (house / "offlinepack.json").write_text(json.dumps(manifest))
    proc = run_bootstrap(kernel, house / "bootstrap.py", "--kaggle-root", str(tmp_path / "kaggle"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    for line in ("packages[0].files: expected a list, got integer",
                 "packages[1].name: expected a string, got integer",
                 "packages[1].files[0].path: expected a string, got integer",
                 "packages[1].files[0].sha256: expected a string, got integer",
                 "provided[0].name: expected a string, got null",
                 "target: expected an object, got string"):
        assert line in proc.stdout
    assert "not ready (exit 2)" in proc.stdout
    assert not _installed(kernel, "beta")


def _offlinepack_like(src: Path) -> Path:
    """A real wheel named offlinepack that declares what the real one does (typer, rich, packaging, tomli<3.11)."""
    return make_wheel(src, "offlinepack", "0.1.0", requires=[
        "packaging>=25", "typer>=0.12", "rich>=13", "tomli>=2; python_version < '3.11'",
        "numpy>=1.24; extra == 'run'"])


def test_not_ready_when_offlinepacks_own_dependencies_are_missing(kernel, tmp_path):
    src = tmp_path / "src"
    deps = [make_wheel(src, n, v) for n, v in (("packaging", "25.0"), ("rich", "13.0"))]
    house = write_wheelhouse(tmp_path / "house", [{"wheel": _offlinepack_like(src)}, *({"wheel": w} for w in deps)])
    proc = run_bootstrap(kernel, house / "bootstrap.py", "--kaggle-root", str(tmp_path / "kaggle"), "--json",
                         "run", "--help")
    report = json.loads(proc.stderr[proc.stderr.index("{"):proc.stderr.rindex("}") + 1])
    assert proc.returncode == 2
    missing = [p for p in report["packages"] if p["status"] == "dependency-missing"]
    assert [p["name"] for p in missing] == ["typer"]  # tomli (python < 3.11) and numpy (extra) are not needed
    assert "Requires-Dist: typer>=0.12" in missing[0]["detail"] and missing[0]["fix"]
    assert "not starting `offlinepack run`" in proc.stderr

    # the same wheelhouse plus typer (and its own needs) is ready
    more = [make_wheel(src, "typer", "0.12.0", requires=["click>=8"]), make_wheel(src, "click", "8.1.0")]
    house2 = write_wheelhouse(tmp_path / "house2", [{"wheel": _offlinepack_like(src)},
                                                    *({"wheel": w} for w in deps + more)])
    again = run_bootstrap(clone_kernel(kernel, tmp_path / "k2"), house2 / "bootstrap.py",
                          "--kaggle-root", str(tmp_path / "kaggle"), "--json")
    assert again.returncode == 1, again.stdout  # ready; only imagecodecs (optional) is absent
    assert not [p for p in report_of(again)["packages"] if p["status"] == "dependency-missing"]


def test_relative_kaggle_root_prints_an_absolute_pythonpath(kernel, tmp_path):
    house = _house(tmp_path, "beta")
    (tmp_path / "kg" / "working").mkdir(parents=True)
    site = site_packages(kernel)
    # a real read-only site-packages (root ignores chmod) in a private mount namespace; no user site
    script = (f"mount --bind {site} {site} && mount -o remount,bind,ro {site} && cd {tmp_path} && "
              f"{kernel}/bin/python {house}/bootstrap.py --kaggle-root kg --installer pip --json")
    proc = subprocess.run(["unshare", "-rmn", "sh", "-c", script], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home"), "PYTHONNOUSERSITE": "1"})
    if "mount" in proc.stderr and proc.returncode != 0 and not proc.stdout:
        pytest.skip(f"cannot make a read-only bind mount here: {proc.stderr.strip()}")
    report = report_of(proc)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # ready; imagecodecs (optional) absent
    assert report["install"]["pythonpath"] == str(tmp_path / "kg" / "working" / ".offlinepack-site")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_killed_bootstraps_installer_does_not_outlive_it(kernel, tmp_path):
    """SIGKILL the cell while pip installs: pip must die too, not recreate the staging folder after the next
    run cleaned it."""
    src = tmp_path / "src"
    house = write_wheelhouse(tmp_path / "house", [{"wheel": make_wheel(src, f"pkg{i}", "1.0")} for i in range(30)])
    env = {"PATH": f"{kernel}/bin:/usr/bin:/bin", "HOME": str(tmp_path / "home")}
    first = subprocess.Popen([str(kernel / "bin" / "python"), str(house / "bootstrap.py"), "--kaggle-root",
                              str(tmp_path / "kaggle"), "--installer", "pip"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (children := _children(first.pid)) and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.01)
    assert children, "bootstrap never started its installer"
    first.send_signal(signal.SIGKILL)
    first.wait()
    second = run_bootstrap(kernel, house / "bootstrap.py", "--kaggle-root", str(tmp_path / "kaggle"),
                           "--installer", "pip", "--json")
    assert second.returncode == 1, second.stdout + second.stderr  # ready; imagecodecs (optional) absent
    deadline = time.monotonic() + 60
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    leftovers = sorted(p.name for p in site_packages(kernel).glob(".offlinepack-staging-*"))
    assert leftovers == []
    assert venv_python(kernel, "import pkg0, pkg29").returncode == 0


# ------------------------------------------------------------------------------------------- 6 and 12: outputs

from tests.support.faults import (  # noqa: E402
    SANDBOX, assert_refused, old_wheelhouse, run_disk_full, writer_for,
)


def test_bootstrap_snapshot_writes_through_a_link_with_the_usual_mode_and_refuses_a_fifo(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("{}")
    real.chmod(0o644)
    link = tmp_path / "kernel.json"
    link.symlink_to(real)
    proc = subprocess.run([sys.executable, str(BOOTSTRAP), "snapshot", "-o", str(link)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and json.loads(real.read_text())["format"] == "offlinepack-target"
    fresh = tmp_path / "new.json"
    old_mask = os.umask(0o022)
    try:
        subprocess.run([sys.executable, str(BOOTSTRAP), "snapshot", "-o", str(fresh)], check=True, capture_output=True)
    finally:
        os.umask(old_mask)
    assert fresh.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    proc = subprocess.run([sys.executable, str(BOOTSTRAP), "snapshot", "-o", str(fifo)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "a FIFO (named pipe), not a regular file" in proc.stderr and "hint:" in proc.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


@pytest.mark.skipif(not SANDBOX, reason="needs a private mount namespace for a small tmpfs")
def test_a_full_output_disk_names_the_output_not_the_cache_file(tmp_path, local_index):
    writer = writer_for("build", tmp_path, local_index)
    place = tmp_path / "place"
    out = place / "wheels"
    old_wheelhouse(out)
    code, stderr, _ = run_disk_full(writer, place, out)
    assert_refused(code, stderr)
    assert f"writing the wheelhouse into {place} failed: disk full (while writing" in stderr
    assert str(tmp_path / "cache") not in stderr
    assert "hint: free space where -o points" in stderr


@pytest.mark.skipif(not SANDBOX, reason="needs a private mount namespace for a small tmpfs")
def test_a_full_cache_disk_is_not_called_a_network_problem(tmp_path, local_index):
    writer = writer_for("build", tmp_path, local_index)
    cache = tmp_path / "cache"
    cache.mkdir()
    argv = " ".join(f"'{a}'" for a in [sys.executable, "-m", "offlinepack", *writer.argv]).replace(
        "'{out}'", f"'{tmp_path / 'out'}'")
    script = (f"mount -t tmpfs -o size=8k tmpfs {cache} && (head -c 65536 /dev/zero > {cache}/filler; true) && "
              f"exec {argv}")
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=120)
    assert_refused(proc.returncode, proc.stderr)
    assert f"in the cache {cache}: disk full" in proc.stderr
    assert "check the network" not in proc.stderr and "--cache-dir" in proc.stderr
    assert not (tmp_path / "out").exists()


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_url_requirement_is_named_not_the_index(tmp_path, local_index):
    from tests.support.locks import make_target
    from offlinepack.kernel_target import dump_target

    target = tmp_path / "target.json"
    dump_target(make_target(), target)
    url = f"http://127.0.0.1:{_closed_port()}/files/beta-1.0-py3-none-any.whl"
    (tmp_path / "requirements.in").write_text(f"beta @ {url}\n")
    result = runner.invoke(app, ["lock", str(tmp_path / "requirements.in"), "--target", str(target),
                                 "-o", str(tmp_path / "pylock.toml"), "--index-url", local_index.url,
                                 "--cache-dir", str(tmp_path / "uv-cache")], env={"UV_HTTP_RETRIES": "0"})
    assert result.exit_code == 2, result.output
    assert f"error: cannot download {url} (" in result.stderr
    assert "default package index" not in result.stderr and "hint: check that URL" in result.stderr


def test_conflicting_pins_error_has_a_hint(tmp_path, local_index):
    from tests.support.locks import make_target
    from offlinepack.kernel_target import dump_target

    make_wheel(local_index.root, "alpha", "1.0")
    make_wheel(local_index.root, "alpha", "2.0")
    target = tmp_path / "target.json"
    dump_target(make_target(), target)
    (tmp_path / "requirements.in").write_text("alpha==1.0\nalpha==2.0\n")
    result = runner.invoke(app, ["lock", str(tmp_path / "requirements.in"), "--target", str(target),
                                 "-o", str(tmp_path / "pylock.toml"), "--index-url", local_index.url,
                                 "--cache-dir", str(tmp_path / "uv-cache")])
    assert result.exit_code == 2, result.output
    assert "error: cannot lock" in result.stderr
    hint = [line for line in result.stderr.splitlines() if line.startswith("hint: ")]
    assert hint and "pin" in hint[0], result.stderr


def test_more_than_one_license_is_refused(tmp_path, local_index):
    writer = writer_for("build", tmp_path, local_index)
    argv = [a if a != "{out}" else str(tmp_path / "out") for a in writer.argv] + ["--license", "GPL-2.0 MIT"]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert "dataset license 'GPL-2.0 MIT' is not one license name" in result.stderr and "hint:" in result.stderr
    assert not (tmp_path / "out").exists()
