"""Targets: built-ins, the captured gpu-kernel folder, snapshot files, and the CLI around them."""

from __future__ import annotations

import importlib.util
import json

import pytest
from packaging import tags as ptags
from typer.testing import CliRunner

from offlinepack.cli.app import app
from offlinepack.errors import OfflinepackError
from offlinepack.kernel_target import (builtin_names, dump_target, load_target_file, resolve_target, snapshot_current)
from tests.conftest import FIXTURES, REPO_ROOT

GPU_KERNEL = FIXTURES / "gpu-kernel"
runner = CliRunner()


def _script():
    spec = importlib.util.spec_from_file_location("make_builtin_targets", REPO_ROOT / "scripts" / "make_builtin_targets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_builtin_kaggle_gpu_is_cpython_312_on_glibc_235():
    target = resolve_target("kaggle-gpu")
    assert (target.implementation, target.python_minor, target.libc, target.libc_version) == (
        "cpython", "3.12", "glibc", "2.35")
    assert target.approximate and "bootstrap.py snapshot -o kernel.json" in target.description
    assert target.markers["python_version"] == "3.12" and target.markers["sys_platform"] == "linux"
    assert "cp312-cp312-manylinux_2_35_x86_64" in target.tags
    assert not any("manylinux_2_36" in tag for tag in target.tags)
    assert target.tags[-1] == "py30-none-any"
    installed = target.installed_by_key()
    assert installed["numpy"].version == "2.0.2"
    assert installed["torch"].version == "2.10.0+cu128"
    assert installed["timm"].version == "1.0.26"
    assert "imagecodecs" not in installed
    # Kaggle's recipe pins ipywidgets==8.1.5 on top of Colab's 7.7.1: the pin wins.
    assert installed["ipywidgets"].version == "8.1.5"


def test_builtins_listed():
    assert {"kaggle-gpu", "kaggle-gpu-py313"} <= set(builtin_names())
    assert resolve_target("kaggle-gpu-py313").python_minor == "3.13"


def test_tag_generator_matches_a_real_kernels_sys_tags():
    """The built-ins' tags come from the same generator: check it against real sys_tags() of a glibc 2.39 kernel."""
    env = json.loads((GPU_KERNEL / "env.json").read_text())
    assert _script().linux_tags((3, 12), (2, 39)) == env["tags"]


def test_builtin_tags_are_what_the_generator_gives():
    assert list(resolve_target("kaggle-gpu").tags) == _script().linux_tags((3, 12), (2, 35))


def test_builtin_json_is_reproducible_from_the_script(tmp_path):
    script = _script()
    import sys
    argv = sys.argv
    sys.argv = ["make_builtin_targets.py", "--fixtures", str(FIXTURES), "--out", str(tmp_path)]
    try:
        script.main()
    finally:
        sys.argv = argv
    shipped = REPO_ROOT / "offlinepack" / "kernel_target" / "builtin"
    for name in ("kaggle-gpu", "kaggle-gpu-py313"):
        assert (tmp_path / f"{name}.json").read_text() == (shipped / f"{name}.json").read_text()


def test_gpu_kernel_folder_is_a_target():
    target = resolve_target(GPU_KERNEL)
    assert target.python_version == "3.12.3"
    assert (target.libc, target.libc_version) == ("glibc", "2.39")
    assert target.tags[0] == "cp312-cp312-linux_x86_64" and len(target.tags) == 1068
    installed = target.installed_by_key()
    assert len(installed) == 197
    assert installed["timm"].version == "1.0.29"
    assert "torch" in installed["timm"].requires
    assert installed["torch"].version == "2.11.0"  # pip inspect has no local label; env.json does
    assert target.extra["source"]["torch"] == "2.11.0+cu130"


def test_gpu_kernel_folder_round_trips_through_a_target_file(tmp_path):
    target = resolve_target(str(GPU_KERNEL))
    dump_target(target, tmp_path / "kernel.json")
    again = resolve_target(tmp_path / "kernel.json")
    assert again.to_dict() == target.to_dict()


def test_snapshot_of_this_interpreter_uses_sys_tags(tmp_path):
    target = snapshot_current(name="here")
    assert list(target.tags) == [str(t) for t in ptags.sys_tags()]
    assert "packaging" in target.installed_by_key()
    dump_target(target, tmp_path / "t.json")
    assert load_target_file(tmp_path / "t.json").installed_by_key()["packaging"].version


def test_vendored_folders_on_sys_path_are_not_installed_distributions(tmp_path):
    from offlinepack.kernel_target.snapshot import install_paths
    site = tmp_path / "site-packages"
    (site / "setuptools" / "_vendor").mkdir(parents=True)
    assert install_paths([str(site), str(site / "setuptools" / "_vendor"), str(tmp_path / "src")]) == [
        str(site), str(tmp_path / "src")]


def test_bootstrap_snapshot_matches_offlinepack_snapshot(tmp_path):
    """Contract 1: the stdlib `bootstrap.py snapshot` and `offlinepack snapshot` describe this interpreter alike."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, str(REPO_ROOT / "runtime" / "bootstrap.py"), "snapshot", "-o",
                           str(tmp_path / "b.json")], capture_output=True, text=True)
    assert done.returncode == 0 and (tmp_path / "b.json").exists(), done.stderr
    theirs, mine = resolve_target(tmp_path / "b.json"), snapshot_current()
    assert theirs.tags == mine.tags
    assert dict(theirs.markers) == dict(mine.markers)
    assert {(d.key, d.version) for d in theirs.installed} == {(d.key, d.version) for d in mine.installed}


def test_unknown_target_names_the_builtins():
    with pytest.raises(OfflinepackError) as info:
        resolve_target("kaggle-tpu")
    assert "neither a built-in nor an existing file" in info.value.message
    assert "kaggle-gpu" in info.value.hint


def test_folder_without_capture_files_is_refused(tmp_path):
    with pytest.raises(OfflinepackError, match="has no env.json"):
        resolve_target(tmp_path)


def test_broken_capture_folder_lists_every_problem(tmp_path):
    (tmp_path / "env.json").write_text(json.dumps({"marker_environment": {"python_version": "3.12"}, "tags": []}))
    (tmp_path / "pip-inspect.json").write_text(json.dumps({"installed": [{"metadata": {"name": "x"}}]}))
    with pytest.raises(OfflinepackError) as info:
        resolve_target(tmp_path)
    problems = "\n".join(info.value.problems)
    assert "marker_environment.implementation_name: expected str" in problems
    assert "tags: expected a non-empty list" in problems
    assert "installed[0].metadata: expected name and version" in problems


def test_target_file_problems_named_by_field_in_json_terms(tmp_path):
    data = json.loads((REPO_ROOT / "offlinepack/kernel_target/builtin/kaggle-gpu.json").read_text())
    data["markers"] = {}  # an empty object used to pass, then broke the lock's `environments` marker
    data["tags"] = "cp312-cp312-linux_x86_64"
    data["interpreter"] = []
    (tmp_path / "t.json").write_text(json.dumps(data))
    with pytest.raises(OfflinepackError) as info:
        resolve_target(tmp_path / "t.json")
    assert info.value.problems == (
        "interpreter: expected object, got array",
        "tags: expected array, got string",
        "markers: missing implementation_name, implementation_version, os_name, platform_machine, "
        "platform_python_implementation, platform_release, platform_system, platform_version, python_full_version, "
        "python_version, sys_platform (the full PEP 508 marker environment)",
    )


def test_a_capture_file_given_as_target_points_at_its_folder():
    """One line, not two per installed distribution (the fixture's pip inspect has 197)."""
    with pytest.raises(OfflinepackError) as info:
        resolve_target(GPU_KERNEL / "pip-inspect.json")
    assert info.value.problems == ("format: expected 'offlinepack-target', got None",)
    assert info.value.hint == "it looks like part of a capture: pass the folder holding env.json + pip-inspect.json as --target"


def test_target_file_not_json(tmp_path):
    (tmp_path / "t.json").write_text("{nope")
    with pytest.raises(OfflinepackError, match=r"not JSON \(line 1, column 2"):
        resolve_target(tmp_path / "t.json")


def test_cli_targets_json():
    result = runner.invoke(app, ["targets", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["kaggle-gpu"]["python"] == "cpython 3.12.13"
    assert rows["kaggle-gpu"]["approximate"] is True
    assert rows["kaggle-gpu"]["installed"] > 700


def test_cli_targets_table_says_how_to_snapshot():
    result = runner.invoke(app, ["targets"])
    assert result.exit_code == 0
    assert "kaggle-gpu" in result.stdout and "bootstrap.py snapshot -o kernel.json" in result.stdout
    # every name whole, as it is typed after --target, on an 80-column console
    assert all(f"│ {name} " in result.stdout for name in builtin_names()), result.stdout


def test_cli_snapshot_writes_a_loadable_target(tmp_path):
    result = runner.invoke(app, ["snapshot", "-o", str(tmp_path / "me.json"), "--name", "laptop"])
    assert result.exit_code == 0, result.output
    target = resolve_target(tmp_path / "me.json")
    assert target.name == "laptop" and target.tags


def test_cli_snapshot_help():
    result = runner.invoke(app, ["snapshot", "--help"])
    assert result.exit_code == 0 and "--output" in result.stdout
