"""`offlinepack build` through the real Typer app (CliRunner), against a local index."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from offlinepack.cli.app import app
from offlinepack.kernel_target import dump_target
from tests.support.index import LocalIndex
from tests.support.wheels import make_sdist, make_wheel
from tests.support.locks import entry, file_url, make_target, write_lock

runner = CliRunner()


@pytest.fixture
def setup(tmp_path: Path, local_index: LocalIndex, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A lock with one wheel and one sdist, a target file, and an empty cache."""
    wheel = make_wheel(local_index.root, "alpha", "1.0", tag="cp312-cp312-manylinux_2_28_x86_64")
    sdist = make_sdist(local_index.root, "beta-pkg", "2.0")
    lock = write_lock(tmp_path / "pylock.toml", [
        {"name": "alpha", "version": "1.0", "wheels": [entry(file_url(local_index, wheel), wheel)]},
        {"name": "beta-pkg", "version": "2.0", "sdist": entry(file_url(local_index, sdist), sdist)},
    ], tool='optional = ["beta-pkg"]')
    target = tmp_path / "target.json"
    dump_target(make_target(), target)
    cache = tmp_path / "cache"  # fresh: the CLI builds offlinepack's own wheel into it (uv build, ~1 s)
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.setenv("OFFLINEPACK_CACHE", str(cache))
    return {"lock": lock, "target": target, "out": tmp_path / "out", "index": local_index}


def invoke(*args: str):
    return runner.invoke(app, ["build", *map(str, args)])


def test_help_lists_every_option() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for option in ("--target", "--output", "--dataset-id", "--title", "--license", "--cache-dir", "--force",
                   "--jobs", "--json"):
        assert option in result.output


def test_build_prints_size_table_and_next_step(setup: dict) -> None:
    result = invoke(setup["lock"], "--target", setup["target"], "-o", setup["out"], "--dataset-id", "alice/wheels",
                    "--title", "Vesuvius wheels")
    assert result.exit_code == 0, result.output
    assert "beta-pkg (optional)" in result.stdout and "alpha" in result.stdout and "total" in result.stdout
    assert "largest: offlinepack" in result.stdout
    assert f"next: kaggle datasets create -p {setup['out']}" in result.stdout
    assert "2 file(s) downloaded" in result.stdout and "1 built from sdist (beta-pkg)" in result.stdout
    # not a terminal (a log): one plain line per file instead of bars
    assert "built a wheel from beta_pkg-2.0.tar.gz in " in result.stderr
    assert any(line.startswith("fetched alpha-1.0-") and "MiB) in " in line for line in result.stderr.splitlines())
    meta = json.loads((setup["out"] / "dataset-metadata.json").read_text())
    assert meta == {"title": "Vesuvius wheels", "id": "alice/wheels", "licenses": [{"name": "CC0-1.0"}]}
    manifest = json.loads((setup["out"] / "offlinepack.json").read_text())
    assert [p["optional"] for p in manifest["packages"] if p["name"] == "beta-pkg"] == [True]


def test_json_output_and_placeholder_warning(setup: dict) -> None:
    result = invoke(setup["lock"], "--target", setup["target"], "-o", setup["out"], "--json", "--license", "MIT")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["dataset"] == {"title": "offlinepack wheels for test-kernel", "id": "INSERT_KAGGLE_USERNAME/out-wheelhouse",
                               "licenses": [{"name": "MIT"}], "placeholder": True}
    assert sorted(f["package"] for f in data["files"]) == ["alpha", "beta-pkg", "offlinepack"]
    assert data["size"]["total"] == sum(f["size"] for f in data["files"])
    assert any("placeholder" in w for w in data["warnings"])
    assert "warning: dataset id 'INSERT_KAGGLE_USERNAME/out-wheelhouse' is a placeholder" not in result.stdout
    # warm rebuild through the CLI: nothing downloaded
    requests = list(setup["index"].requests)
    again = invoke(setup["lock"], "--target", setup["target"], "-o", setup["out"], "--json", "--force")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["downloaded"] == [] and setup["index"].requests == requests


def test_errors_are_one_line_each_with_exit_2(setup: dict) -> None:
    setup["out"].mkdir()
    result = invoke(setup["lock"], "--target", setup["target"], "-o", setup["out"], "--dataset-id", "alice/x")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == f"error: cannot build a wheelhouse from {setup['lock']}"
    assert f"error: output {setup['out']} already exists (pass --force to replace it once the new one is complete)" in lines
    assert any(line.startswith("error: dataset slug 'x' has 1 characters") for line in lines)
    assert lines[-1].startswith("hint: ")


def test_bad_target_reported_with_the_lock_and_dataset_problems(setup: dict, tmp_path: Path) -> None:
    bad_lock = tmp_path / "bad.toml"
    bad_lock.write_text("lock-version = \n")
    result = invoke(bad_lock, "--target", "no-such-kernel", "-o", setup["out"], "--dataset-id", "alice")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == f"error: cannot build a wheelhouse from {bad_lock}"
    assert lines[1].startswith("error: no such target: 'no-such-kernel'")
    assert lines[2].startswith(f"error: {bad_lock}: not valid TOML")
    assert lines[3] == "error: dataset id 'alice' must be owner/slug, e.g. alice/vesuvius-wheels"
    assert lines[4].startswith("hint: built-ins:") and "--dataset-id owner/slug" in lines[4]
    assert not setup["out"].exists()


def test_unknown_target_and_kaggle_username_default(setup: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    result = invoke(setup["lock"], "--target", "no-such-kernel", "-o", setup["out"])
    assert result.exit_code == 2 and "error: no such target: 'no-such-kernel'" in result.stderr
    monkeypatch.setenv("KAGGLE_USERNAME", "carol")
    result = invoke(setup["lock"], "--target", setup["target"], "-o", setup["out"], "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["dataset"]["id"] == "carol/out-wheelhouse"


def test_lock_then_build_end_to_end(tmp_path: Path, local_index: LocalIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    """`offlinepack lock` against the local index, then `offlinepack build` from that lock."""
    from offlinepack import lock as lock_module
    from offlinepack.kernel_target import InstalledDistribution

    root = local_index.root
    make_wheel(root, "app", "1.0", requires=["helper>=1", "numpy>=1.24"])
    make_sdist(root, "helper", "1.1")
    make_wheel(root, "numpy", "2.0.2", tag="cp312-cp312-manylinux_2_17_x86_64")
    make_wheel(root, "numpy", "2.3.0", tag="cp312-cp312-manylinux_2_17_x86_64")
    requirements = tmp_path / "requirements.in"
    requirements.write_text("app\n")
    target = replace(make_target(), installed=(InstalledDistribution(name="numpy", version="2.0.2"),))
    target_file = tmp_path / "target.json"
    dump_target(target, target_file)
    lock = tmp_path / "pylock.toml"
    lock_module.lock_requirements(lock_module.LockOptions(requirements=(requirements,), target=target, output=lock,
                                                          index_url=local_index.url, cache_dir=tmp_path / "uv"))
    monkeypatch.setenv("OFFLINEPACK_CACHE", str(tmp_path / "cache"))
    result = invoke(lock, "--target", target_file, "-o", tmp_path / "out", "--dataset-id", "alice/e2e-wheels", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert sorted(f["package"] for f in data["files"]) == ["app", "helper", "offlinepack"]
    assert data["built"] == ["helper"]
    manifest = json.loads((tmp_path / "out" / "offlinepack.json").read_text())
    assert {"name": "numpy", "version": "2.0.2"} in manifest["provided"]


def test_index_url_option_finds_portable_lock_files(tmp_path: Path, local_index: LocalIndex,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.wheels import sha256_of

    wheel = make_wheel(local_index.root, "alpha", "1.0")
    lock = write_lock(tmp_path / "pylock.toml", [{"name": "alpha", "version": "1.0", "wheels": [
        f'{{path = "{wheel.name}", hashes = {{sha256 = "{sha256_of(wheel)}"}}}}']}], tool="files-from-index = true")
    target = tmp_path / "target.json"
    dump_target(make_target(), target)
    monkeypatch.setenv("OFFLINEPACK_CACHE", str(tmp_path / "cache"))
    result = invoke(lock, "--target", target, "-o", tmp_path / "out", "--index-url", local_index.url, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["downloaded"] == [wheel.name] and "/simple/alpha/" in local_index.requests


def test_rebuild_without_force_blames_the_output_folder_then_force_reuses_the_built_sdist(setup: dict) -> None:
    args = [setup["lock"], "--target", setup["target"], "-o", setup["out"], "--dataset-id", "alice/wheels"]
    assert invoke(*args).exit_code == 0
    again = invoke(*args)
    assert again.exit_code == 2
    lines = again.stderr.splitlines()
    assert lines[0] == (f"error: output {setup['out']} already exists (pass --force to replace it once the new one "
                        "is complete)")
    assert lines[1].startswith("hint: pass --force to rebuild") and len(lines) == 2
    forced = invoke(*args, "--force")
    assert forced.exit_code == 0, forced.output
    assert "0 file(s) downloaded" in forced.stdout and "1 sdist wheel(s) reused from the cache" in forced.stdout
