"""offlinepack/pylock.py: the one pylock.toml writer round-trips through the TOML reader and packaging's
validation; the reader names every problem with its place."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.pylock import Pylock

from offlinepack._compat import tomllib
from offlinepack.errors import OfflinepackError
from offlinepack.pylock import (DEFAULT_OPTIONAL, LockedFile, LockedPackage, best_tags, dumps_pylock, package_table,
                                read_lock, validate_pylock)

SHA = "a" * 64


def _package(portable: bool = False) -> dict:
    files = (LockedFile(filename="demo-1.0-py3-none-any.whl", url="https://files.example/demo-1.0-py3-none-any.whl",
                        path=None, sha256=SHA, size=12, kind="wheel"),
             LockedFile(filename="demo-1.0.tar.gz", url=None, path="/abs/demo-1.0.tar.gz", sha256=SHA, size=None,
                        kind="sdist"))
    return package_table(LockedPackage(name="demo", version="1.0", files=files), portable)


def test_written_lock_reads_back_as_the_same_data_and_is_a_valid_pylock() -> None:
    data = {"lock-version": "1.0", "environments": ['python_version == "3.12"'], "requires-python": ">=3.12",
            "created-by": "offlinepack", "packages": [_package()],
            "tool": {"offlinepack": {"target": "kaggle-gpu", "approximate": True, "optional": list(DEFAULT_OPTIONAL),
                                     "provided": [{"name": "numpy", "version": "2.0.2"}],
                                     "notices": ["a \"quoted\" line", "ünïcode", "x", "y", "z"]}}}
    text = dumps_pylock(data)
    assert tomllib.loads(text) == data
    assert isinstance(validate_pylock(text), Pylock)
    wheel = tomllib.loads(text)["packages"][0]["wheels"][0]
    assert wheel == {"name": "demo-1.0-py3-none-any.whl", "url": "https://files.example/demo-1.0-py3-none-any.whl",
                     "size": 12, "hashes": {"sha256": SHA}}


def test_portable_file_names_a_relative_path_and_no_host() -> None:
    table = _package(portable=True)
    assert table["wheels"][0] == {"name": "demo-1.0-py3-none-any.whl", "path": "demo-1.0-py3-none-any.whl",
                                  "size": 12, "hashes": {"sha256": SHA}}
    assert table["sdist"]["path"] == "/abs/demo-1.0.tar.gz"


def test_a_lock_with_nothing_to_ship_still_has_the_packages_key() -> None:
    text = dumps_pylock({"lock-version": "1.0", "created-by": "offlinepack", "tool": {"offlinepack": {"target": "t"}}})
    assert "packages = []" in text and validate_pylock(text).packages == []


def test_reader_names_every_tool_table_problem_at_once(tmp_path: Path) -> None:
    lock = tmp_path / "pylock.toml"
    lock.write_text(dumps_pylock({"lock-version": "1.0", "created-by": "t", "packages": [],
                                  "tool": {"offlinepack": {"target": 3, "provided": [{"name": "x"}], "optional": "no"}}}))
    with pytest.raises(OfflinepackError) as info:
        read_lock(lock)
    assert info.value.problems == (
        f"{lock}: tool.offlinepack.provided[0]: expected {{name = \"...\", version = \"...\"}}",
        f"{lock}: tool.offlinepack.target: expected a string, got int",
        f"{lock}: tool.offlinepack.optional: expected an array of package names",
    )


def test_reader_defaults_and_best_tags(tmp_path: Path) -> None:
    lock = tmp_path / "pylock.toml"
    lock.write_text(dumps_pylock({"lock-version": "1.0", "created-by": "t", "packages": [_package()]}))
    read = read_lock(lock)
    assert read.is_optional("ImageCodecs") and read.target_name is None and read.provided == ()
    assert best_tags(["a", "b", "c", "d"]) == "a, b, c"
