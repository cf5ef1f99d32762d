"""offlinepack/kernel.py, the bridge to runtime/bootstrap.py: bootstrap's constants agree with offlinepack's,
and its search and decisions come back as frozen dataclasses."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from offlinepack import kernel
from offlinepack.kernel_target.model import FORMAT as TARGET_FORMAT
from offlinepack.kernel_target.model import FORMAT_VERSION as TARGET_FORMAT_VERSION
from offlinepack.wheelhouse.manifest import BOOTSTRAP_NAME, FORMAT, FORMAT_VERSION, LOCK_NAME, MANIFEST_NAME

from tests.support.kernels import BOOTSTRAP, write_wheelhouse
from tests.support.wheels import make_wheel


@pytest.fixture(scope="module")
def bootstrap_module():
    """bootstrap.py imported as a plain module file, apart from kernel.py's own copy."""
    spec = importlib.util.spec_from_file_location("bootstrap_under_test", BOOTSTRAP)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_bootstrap_constants_match_the_manifest_module(bootstrap_module, tmp_path: Path) -> None:
    assert bootstrap_module.MANIFEST == MANIFEST_NAME
    assert BOOTSTRAP_NAME == BOOTSTRAP.name and LOCK_NAME == "pylock.toml"
    # bootstrap spells the format inline: it must accept exactly what `offlinepack build` writes
    for fmt, accepted in ((FORMAT, True), (FORMAT + "-v2", False)):
        folder = tmp_path / fmt
        folder.mkdir()
        (folder / MANIFEST_NAME).write_text(json.dumps({"format": fmt, "version": FORMAT_VERSION, "packages": []}))
        datasets, _ = bootstrap_module.discover([str(folder)], kaggle_root=str(tmp_path / "no-kaggle"))
        assert [bool(d.manifest) for d in datasets] == [accepted]
    snapshot = bootstrap_module.snapshot("here")
    assert (snapshot["format"], snapshot["version"]) == (TARGET_FORMAT, TARGET_FORMAT_VERSION)


def test_find_bootstrap_in_a_checkout() -> None:
    assert kernel.find_bootstrap() == BOOTSTRAP
    assert kernel.load_bootstrap().MANIFEST == MANIFEST_NAME


def test_inspect_kernel_reports_datasets_targets_and_decisions(tmp_path: Path) -> None:
    kaggle = tmp_path / "kaggle"
    house = write_wheelhouse(kaggle / "input" / "datasets" / "me" / "wheels",
                             [{"wheel": make_wheel(tmp_path / "src", "zzfake-absent", "1.0")}], python_version="3.11.4")
    stray = kaggle / "input" / "other"
    stray.mkdir(parents=True)
    (stray / MANIFEST_NAME).write_text('{"format": "something-else"}')
    report = kernel.inspect_kernel(kaggle_root=kaggle, tags=["py3-none-any"], environ={})
    by_path = {d.path: d for d in report.datasets}
    assert by_path[house].has_manifest and by_path[house].manifest_path == house / MANIFEST_NAME
    assert by_path[house].target == kernel.WheelhouseTarget(name="test", python_version="3.11.4", tags=())
    assert by_path[stray].error and by_path[stray].target is None
    [decision] = [p for p in report.packages if p.name == "zzfake_absent"]
    assert (decision.status, decision.severity) == ("missing", "fail")  # deciding only: nothing is installed
    assert report.tags == ("py3-none-any",) and report.searched
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.status = "satisfied"  # type: ignore[misc]
    assert kernel.find_wheelhouse_manifest(kaggle_root=kaggle, environ={}) == house / MANIFEST_NAME


def test_wheel_dirs_from_the_environment_come_first(tmp_path: Path) -> None:
    mine = write_wheelhouse(tmp_path / "mine", [{"wheel": make_wheel(tmp_path / "src", "zzfake", "1.0")}])
    datasets, probes = kernel.search_wheelhouses(kaggle_root=tmp_path / "kaggle", environ={"OFFLINEPACK_WHEELS": str(mine)})
    assert [(d.path, d.origin) for d in datasets] == [(mine, "OFFLINEPACK_WHEELS")]
    assert any(p.origin == "Kaggle inputs" and p.found == "does not exist" for p in probes)
