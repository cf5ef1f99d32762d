"""`offlinepack lock` drops distributions that only back-port a standard-library module the target's Python has.

Real wheels on a local index, the real uv; the wheelhouse built from the lock, and bootstrap.py's and the
rehearsal's dependency checks on it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from typer.testing import CliRunner

from offlinepack.cli.app import app
from offlinepack.kernel import load_bootstrap
from offlinepack.kernel_target import Target, dump_target
from offlinepack.kernel_target.backports import STDLIB_BACKPORTS, stdlib_backports
from offlinepack.kernel_kit.rehearse_static import check_wheelhouse
from offlinepack.wheelhouse.runtime_needs import MACHINE_ONLY
from tests.support.locks import cpython_target
from tests.support.wheels import make_wheel

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

runner = CliRunner()


def target_311() -> Target:
    """CPython 3.11.9, glibc 2.35 x86_64, with numpy installed (so the lock has something to hold)."""
    return cpython_target("3.11.9", {"numpy": "2.0.2"}, name="py311")


def legacy_stack(root: Path) -> None:
    """What batchgenerators-era packages declare: argparse and unittest2 (→ traceback2 → linecache2), plus six."""
    make_wheel(root, "legacy-tool", "1.0", requires=["argparse", "unittest2>=0.8", "six", "numpy"])
    make_wheel(root, "argparse", "1.4.0")
    make_wheel(root, "unittest2", "1.1.0", requires=["argparse", "six>=1.4", "traceback2"])
    make_wheel(root, "traceback2", "1.4.0", requires=["linecache2"])
    make_wheel(root, "linecache2", "1.0.0")
    make_wheel(root, "six", "1.17.0")


def test_table_is_conservative_and_by_python_version():
    assert set(stdlib_backports("3.11.9")) == {b.name for b in STDLIB_BACKPORTS}
    assert "dataclasses" not in stdlib_backports("3.6.15") and "argparse" in stdlib_backports("3.6.15")
    # not pure back-ports: newer API than the standard library, or imported under their own name on purpose
    for kept in ("importlib-metadata", "importlib-resources", "typing-extensions", "contextlib2", "mock"):
        assert kept not in stdlib_backports("3.13.0")
    assert stdlib_backports("garbage") == {}


def test_bootstrap_keeps_the_same_table():
    """bootstrap.py cannot import offlinepack: its copy of the table must not drift."""
    bootstrap = load_bootstrap()
    assert bootstrap.STDLIB_BACKPORTS == {b.name: (b.module, b.since) for b in STDLIB_BACKPORTS}
    assert bootstrap.MACHINE_ONLY_DEPENDENCIES == {"offlinepack": MACHINE_ONLY}


def test_lock_drops_backports_says_so_and_the_wheelhouse_checks_accept_it(tmp_path, local_index):
    legacy_stack(local_index.root)
    target_file = tmp_path / "kernel.json"
    dump_target(target_311(), target_file)
    (tmp_path / "r.in").write_text("legacy-tool\n")
    common = ["--target", str(target_file), "--index-url", local_index.url, "--cache-dir", str(tmp_path / "c")]

    text = runner.invoke(app, ["lock", str(tmp_path / "r.in"), "-o", str(tmp_path / "pylock.toml"), *common])
    assert text.exit_code == 0, text.output
    assert ("- argparse 1.4.0 dropped: a back-port of the standard library's argparse, which Python 3.2+ has"
            in text.stdout)
    assert "- unittest2 1.1.0 dropped: a back-port of the standard library's unittest" in text.stdout
    assert "4 standard-library back-ports dropped" in text.stdout
    data = tomllib.loads((tmp_path / "pylock.toml").read_text())
    # six stays (a real package legacy-tool needs); traceback2/linecache2 went with unittest2
    assert {p["name"] for p in data["packages"]} == {"legacy-tool", "six"}
    assert data["tool"]["offlinepack"]["dropped-backports"] == [
        {"name": "argparse", "version": "1.4.0", "stdlib-module": "argparse", "python": "3.2"},
        {"name": "linecache2", "version": "1.0.0", "stdlib-module": "linecache", "python": "3.5"},
        {"name": "traceback2", "version": "1.4.0", "stdlib-module": "traceback", "python": "3.5"},
        {"name": "unittest2", "version": "1.1.0", "stdlib-module": "unittest", "python": "3.5"},
    ]

    as_json = runner.invoke(app, ["lock", str(tmp_path / "r.in"), "-o", str(tmp_path / "j.toml"), *common, "--json"])
    assert as_json.exit_code == 0, as_json.output
    summary = json.loads(as_json.stdout)
    assert [d["name"] for d in summary["dropped_backports"]] == ["argparse", "linecache2", "traceback2", "unittest2"]
    assert {p["name"] for p in summary["packages"]} == {"legacy-tool", "six"}

    # build keeps the record; the rehearsal's Requires-Dist check does not call argparse/unittest2 missing
    out = tmp_path / "wheels"
    built = runner.invoke(app, ["build", str(tmp_path / "pylock.toml"), "--target", str(target_file), "-o", str(out),
                                "--dataset-id", "me/legacy-wheels", "--cache-dir", str(tmp_path / "cache")])
    assert built.exit_code == 0, built.output
    shipped = tomllib.loads((out / "pylock.toml").read_text())
    assert [d["name"] for d in shipped["tool"]["offlinepack"]["dropped-backports"]] == [
        "argparse", "linecache2", "traceback2", "unittest2"]
    checks, to_install = check_wheelhouse(out, target_311())
    assert "legacy-tool" in to_install
    failed = [c for c in checks if c.status == "fail" and c.name != "dependency torch"]
    assert not [c for c in failed if "argparse" in c.name or "unittest2" in c.name], failed


def test_a_target_that_lacks_the_module_keeps_the_backport(tmp_path, local_index):
    """A 3.6 target has argparse but not dataclasses: only argparse goes."""
    make_wheel(local_index.root, "old-app", "1.0", requires=["dataclasses", "argparse"])
    make_wheel(local_index.root, "dataclasses", "0.8")
    make_wheel(local_index.root, "argparse", "1.4.0")
    old = cpython_target("3.6.15", name="py36", abi_suffix="m")
    target_file = tmp_path / "old.json"
    dump_target(old, target_file)
    (tmp_path / "r.in").write_text("old-app\n")
    result = runner.invoke(app, ["lock", str(tmp_path / "r.in"), "-o", str(tmp_path / "pylock.toml"), "--target",
                                 str(target_file), "--index-url", local_index.url, "--cache-dir", str(tmp_path / "c"),
                                 "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert {p["name"] for p in summary["packages"]} == {"old-app", "dataclasses"}
    assert [d["name"] for d in summary["dropped_backports"]] == ["argparse"]


def test_a_backport_for_an_older_python_is_dropped_not_shipped(tmp_path, local_index):
    """dataclasses' last release installs on Python 3.6 only; uv ignores Requires-Python upper bounds and would
    lock it, and pip would then refuse it in the kernel. It is dropped."""
    make_wheel(local_index.root, "old-app", "1.0", requires=["dataclasses", "six"])
    make_wheel(local_index.root, "dataclasses", "0.8", requires_python=">=3.6, <3.7")
    make_wheel(local_index.root, "six", "1.17.0")
    target_file = tmp_path / "kernel.json"
    dump_target(target_311(), target_file)
    (tmp_path / "r.in").write_text("old-app\n")
    result = runner.invoke(app, ["lock", str(tmp_path / "r.in"), "-o", str(tmp_path / "pylock.toml"), "--target",
                                 str(target_file), "--index-url", local_index.url, "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert "- dataclasses 0.8 dropped: a back-port of the standard library's dataclasses" in result.stdout
    data = tomllib.loads((tmp_path / "pylock.toml").read_text())
    assert {p["name"] for p in data["packages"]} == {"old-app", "six"}


def test_a_backport_with_no_file_for_the_target_does_not_block_the_lock(tmp_path, local_index):
    """futures has only a Python 2 wheel (its sdist refuses Python 3): a 3.11 lock of a package that still
    requires it cannot resolve with it; it locks without it and says so (no version: none was resolvable)."""
    make_wheel(local_index.root, "old-app", "1.0", requires=["futures>=3", "six"])
    make_wheel(local_index.root, "futures", "3.4.0", tag="py2-none-any")
    make_wheel(local_index.root, "six", "1.17.0")
    target_file = tmp_path / "kernel.json"
    dump_target(target_311(), target_file)
    (tmp_path / "r.in").write_text("old-app\n")
    result = runner.invoke(app, ["lock", str(tmp_path / "r.in"), "-o", str(tmp_path / "pylock.toml"), "--target",
                                 str(target_file), "--index-url", local_index.url, "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert ("- futures dropped: a back-port of the standard library's concurrent.futures, which Python 3.2+ has"
            in result.stdout)
    data = tomllib.loads((tmp_path / "pylock.toml").read_text())
    assert {p["name"] for p in data["packages"]} == {"old-app", "six"}
    assert data["tool"]["offlinepack"]["dropped-backports"] == [
        {"name": "futures", "version": "", "stdlib-module": "concurrent.futures", "python": "3.2"}]


def test_a_failure_that_is_not_a_backport_is_still_explained(tmp_path, local_index):
    make_wheel(local_index.root, "old-app", "1.0", requires=["argparse", "missing-thing"])
    make_wheel(local_index.root, "argparse", "1.4.0")
    target_file = tmp_path / "kernel.json"
    dump_target(target_311(), target_file)
    (tmp_path / "r.in").write_text("old-app\n")
    result = runner.invoke(app, ["lock", str(tmp_path / "r.in"), "-o", str(tmp_path / "pylock.toml"), "--target",
                                 str(target_file), "--index-url", local_index.url, "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 2
    assert "missing-thing" in result.stderr and "dropped" not in result.output
    assert not (tmp_path / "pylock.toml").exists()
