"""`offlinepack lock` against real tiny wheels/sdists on a local HTTP index, with the real uv."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from packaging.pylock import Pylock
from typer.testing import CliRunner

from offlinepack.cli.app import app
from offlinepack.errors import OfflinepackError
from offlinepack.kernel_target import Target, dump_target, resolve_target
from offlinepack.lock import LockOptions, lock_requirements
from offlinepack.lock.inputs import read_requirements
from tests.conftest import FIXTURES, REPO_ROOT
from tests.support.locks import cpython_target
from tests.support.wheels import make_sdist, make_wheel, sha256_of

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

runner = CliRunner()
GPU_KERNEL = FIXTURES / "gpu-kernel"


def small_target(installed: dict[str, str], requires: dict[str, list[str]] | None = None) -> Target:
    """CPython 3.12.3 on glibc 2.35 x86_64 (this host is 3.11: markers must be the target's)."""
    return cpython_target("3.12.3", installed, requires)


def do_lock(tmp_path: Path, index, lines: list[str], target: Target, **kwargs):
    req = tmp_path / "requirements.in"
    req.write_text("\n".join(lines) + "\n")
    out = tmp_path / "pylock.toml"
    result = lock_requirements(LockOptions(requirements=(req,), target=target, output=out, index_url=index.url,
                                           cache_dir=tmp_path / "uv-cache", **kwargs))
    data = tomllib.loads(out.read_text())
    Pylock.from_dict(data)  # what `offlinepack build` reads
    return result, data


def names(data) -> dict[str, str]:
    return {p["name"]: p["version"] for p in data.get("packages", [])}


def stack(root: Path) -> None:
    """timm 1.0.26 is what the kernel has; app 2.0 wants an older timm; torch would drag a CUDA wheel in."""
    make_wheel(root, "app", "2.0", requires=["timm<1.0.23", "helper"])
    make_wheel(root, "app", "1.0", requires=["timm>=1.0", "helper"])
    for version in ("1.0.20", "1.0.26", "1.0.29"):
        make_wheel(root, "timm", version, requires=["torch>=2"])
    make_wheel(root, "torch", "2.10.0", requires=["nvidia-cublas"], tag="cp312-cp312-manylinux_2_28_x86_64")
    make_wheel(root, "nvidia-cublas", "12.8", tag="py3-none-manylinux_2_17_x86_64")
    make_wheel(root, "helper", "1.0", requires=['old-only; python_version < "3.12"', 'new-only; python_version >= "3.12"'])
    make_wheel(root, "old-only", "1.0")
    make_wheel(root, "new-only", "1.0")


KERNEL = {"timm": "1.0.26", "torch": "2.10.0+cu128", "numpy": "2.0.2"}


def test_target_held_left_out_and_held_back_explained(tmp_path, local_index):
    stack(local_index.root)
    result, data = do_lock(tmp_path, local_index, ["app", "numpy"], small_target(KERNEL))
    # markers for the 3.12 target, not this 3.11 host
    assert names(data) == {"app": "1.0", "helper": "1.0", "new-only": "1.0"}
    tool = data["tool"]["offlinepack"]
    assert tool["provided"] == [{"name": "numpy", "version": "2.0.2"}, {"name": "timm", "version": "1.0.26"}]
    assert tool["target"] == "tiny"
    assert [str(h) for h in result.held_back] == [
        "app 1.0 locked, not the newest 2.0, to keep the target's versions: "
        "app 2.0 requires timm<1.0.23; the target has timm 1.0.26"]
    assert tool["notices"] == [str(result.held_back[0])]
    # torch is held with its local label (not on the index) and its CUDA dependency never enters
    assert "torch" not in names(data) and "nvidia-cublas" not in names(data)
    for package in data["packages"]:
        for wheel in package["wheels"]:
            assert wheel["url"].startswith(local_index.url.rsplit("/simple/", 1)[0])
            filename = wheel["url"].rsplit("/", 1)[1]
            assert wheel["hashes"]["sha256"] == sha256_of(local_index.root / filename)
    # only index pages and files of what the lock needs were asked for: never torch's wheel
    assert not any(path.startswith("/files/torch") for path in local_index.requests)


def test_everything_provided_writes_a_valid_empty_lock_that_builds(tmp_path, local_index):
    """A lock the target already satisfies ships nothing: `packages = []` (PEP 751 requires the key)."""
    stack(local_index.root)
    result, data = do_lock(tmp_path, local_index, ["timm", "numpy"], small_target(KERNEL))
    assert result.packages == () and data["packages"] == []
    assert data["tool"]["offlinepack"]["provided"] == [{"name": "numpy", "version": "2.0.2"},
                                                       {"name": "timm", "version": "1.0.26"}]
    target_file = tmp_path / "target.json"
    dump_target(small_target(KERNEL), target_file)
    out = tmp_path / "wheels"
    built = runner.invoke(app, ["build", str(tmp_path / "pylock.toml"), "--target", str(target_file), "-o", str(out),
                                "--dataset-id", "me/kernel-wheels", "--cache-dir", str(tmp_path / "cache")])
    assert built.exit_code == 0, built.output
    assert {p.name for p in out.iterdir()} >= {"bootstrap.py", "pylock.toml", "offlinepack.json"}


def test_conflict_with_target_names_both_sides(tmp_path, local_index):
    stack(local_index.root)
    with pytest.raises(OfflinepackError) as info:
        do_lock(tmp_path, local_index, ["app==2.0"], small_target(KERNEL))
    error = info.value
    assert error.message == "cannot lock for target tiny"
    assert error.problems == ("app 2.0 requires timm<1.0.23; the target has timm 1.0.26",)
    assert error.hint == ("what would work: app 1.0 (keeps the target's versions: relax your pins), or "
                          "--allow-replace timm (installs another version over the kernel's)")
    assert not (tmp_path / "pylock.toml").exists()


def test_conflict_names_only_what_blocks_and_the_version_that_works(tmp_path, local_index):
    """codec's newest wants a newer numpy, but an older codec is fine: only the pinned app blocks the lock."""
    stack(local_index.root)
    make_wheel(local_index.root, "codec", "2.0", requires=["numpy>=2.1"])
    make_wheel(local_index.root, "codec", "1.0", requires=["numpy>=1"])
    with pytest.raises(OfflinepackError) as info:
        do_lock(tmp_path, local_index, ["app==2.0", "codec"], small_target(KERNEL))
    assert info.value.problems == ("app 2.0 requires timm<1.0.23; the target has timm 1.0.26",)
    assert info.value.hint.startswith("what would work: app 1.0 (keeps the target's versions: relax your pins), "
                                      "or --allow-replace timm ")


def test_direct_requirement_against_target_version(tmp_path, local_index):
    stack(local_index.root)
    with pytest.raises(OfflinepackError) as info:
        do_lock(tmp_path, local_index, ["timm<1.0.23"], small_target(KERNEL))
    assert info.value.problems == (f"{tmp_path / 'requirements.in'}:1 requires timm<1.0.23; the target has timm 1.0.26",)


def test_held_name_at_a_version_that_does_not_exist_is_not_called_a_conflict(tmp_path, local_index):
    """`timm==9.9` is not on the index: --allow-replace would not help, so it is not offered."""
    stack(local_index.root)
    with pytest.raises(OfflinepackError) as info:
        do_lock(tmp_path, local_index, ["timm==9.9"], small_target(KERNEL))
    (problem,) = info.value.problems
    assert problem.startswith(f"{tmp_path / 'requirements.in'}:1: timm==9.9: ") and "timm==9.9" in problem[40:]
    assert "the target has" not in problem and "--allow-replace" not in (info.value.hint or "")


def test_allow_replace_ships_another_version(tmp_path, local_index):
    stack(local_index.root)
    result, data = do_lock(tmp_path, local_index, ["app==2.0"], small_target(KERNEL), allow_replace=("timm",))
    assert names(data)["timm"] == "1.0.20"
    assert data["tool"]["offlinepack"]["replaced"] == [{"name": "timm", "target-version": "1.0.26", "version": "1.0.20"}]
    assert "torch" not in names(data)  # timm's torch>=2 is met by the kernel's 2.10.0+cu128


def test_allow_replace_warns_about_kernel_packages_it_breaks(tmp_path, local_index):
    stack(local_index.root)
    target = small_target({**KERNEL, "kernel-tool": "1.0"}, requires={"kernel-tool": ["timm>=1.0.25"]})
    result, _ = do_lock(tmp_path, local_index, ["app==2.0"], target, allow_replace=("timm", "notthere"))
    assert result.warnings == (
        "--allow-replace notthere: the target does not have it installed",
        "the target's kernel-tool 1.0 requires timm>=1.0.25; the lock replaces it with 1.0.20",
    )


def test_only_files_for_the_target_tags(tmp_path, local_index):
    root = local_index.root
    for tag in ("cp312-cp312-manylinux_2_17_x86_64", "cp311-cp311-manylinux_2_17_x86_64", "cp312-cp312-win_amd64",
                "cp312-cp312-manylinux_2_38_x86_64", "cp312-cp312-musllinux_1_2_x86_64"):
        make_wheel(root, "native", "1.0", tag=tag)
    make_wheel(root, "winonly", "1.0", tag="cp312-cp312-win_amd64")
    make_sdist(root, "winonly", "1.0")
    make_sdist(root, "sdonly", "0.3")
    _, data = do_lock(tmp_path, local_index, ["native", "winonly", "sdonly"], small_target({}))
    packages = {p["name"]: p for p in data["packages"]}
    assert [w["name"] for w in packages["native"]["wheels"]] == ["native-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"]
    assert packages["winonly"]["sdist"]["name"] == "winonly-1.0.tar.gz" and "wheels" not in packages["winonly"]
    assert packages["sdonly"]["sdist"]["hashes"]["sha256"] == sha256_of(root / "sdonly-0.3.tar.gz")
    assert data["environments"] == ['python_version == "3.12" and sys_platform == "linux" and '
                                    'platform_machine == "x86_64" and implementation_name == "cpython"']


def test_no_file_for_the_target_and_unknown_packages_all_reported(tmp_path, local_index):
    make_wheel(local_index.root, "winonly", "1.0", tag="cp312-cp312-win_amd64")
    make_wheel(local_index.root, "fine", "1.0")
    with pytest.raises(OfflinepackError) as info:
        do_lock(tmp_path, local_index, ["fine", "winonly", "nosuchpkg", "alsonot"], small_target({}))
    problems = info.value.problems
    req = tmp_path / "requirements.in"
    assert len(problems) == 3
    assert problems[0].startswith(f"{req}:2: winonly: ") and "winonly" in problems[0]
    assert "best tags cp312-cp312-manylinux_2_35_x86_64, cp312-cp312-manylinux_2_34_x86_64" in problems[0]
    assert problems[1] == f"{req}:3: unknown package 'nosuchpkg': not found on {local_index.url}"
    assert problems[2] == f"{req}:4: unknown package 'alsonot': not found on {local_index.url}"


def test_find_links_files_are_locked_by_path(tmp_path, local_index):
    local = make_wheel(tmp_path / "mine", "mine", "0.1")
    _, data = do_lock(tmp_path, local_index, ["mine"], small_target({}), find_links=(tmp_path / "mine",))
    wheel = data["packages"][0]["wheels"][0]
    assert wheel["path"] == str(local) and wheel["size"] == local.stat().st_size
    assert wheel["hashes"]["sha256"] == sha256_of(local)


def test_direct_url_requirements_become_plain_wheel_and_sdist(tmp_path, local_index):
    make_wheel(local_index.root, "helper", "1.0")
    wheel = make_wheel(tmp_path / "own", "mine", "0.1", requires=["helper"])
    sdist = make_sdist(tmp_path / "own", "mysd", "0.2")
    _, data = do_lock(tmp_path, local_index, [f"mine @ {wheel.as_uri()}", f"mysd @ {sdist.as_uri()}"], small_target({}))
    packages = {p["name"]: p for p in data["packages"]}
    assert packages["mine"]["wheels"] == [{"name": wheel.name, "path": str(wheel), "size": wheel.stat().st_size,
                                           "hashes": {"sha256": sha256_of(wheel)}}]
    assert packages["mysd"]["sdist"]["path"] == str(sdist) and "archive" not in packages["mysd"]
    assert names(data)["helper"] == "1.0"


def test_optional_marks_imagecodecs_by_default(tmp_path, local_index):
    make_wheel(local_index.root, "imagecodecs", "2025.8.2", tag="cp312-abi3-manylinux_2_28_x86_64")
    make_wheel(local_index.root, "cc3d", "1.0")
    _, data = do_lock(tmp_path, local_index, ["imagecodecs", "cc3d"], small_target({}))
    assert data["tool"]["offlinepack"]["optional"] == ["imagecodecs"]


def test_optional_name_the_lock_does_not_ship_is_a_warning(tmp_path, local_index):
    stack(local_index.root)
    result, data = do_lock(tmp_path, local_index, ["app"], small_target(KERNEL), optional=("helper", "timm", "nope"))
    assert data["tool"]["offlinepack"]["optional"] == ["helper"]
    assert result.warnings == ("--optional timm: not a package this lock ships, nothing marked optional",
                               "--optional nope: not a package this lock ships, nothing marked optional")


def test_portable_lock_names_files_not_addresses(tmp_path, local_index):
    wheel = make_wheel(local_index.root, "cc3d", "1.0")
    _, data = do_lock(tmp_path, local_index, ["cc3d"], small_target({}), portable=True)
    (entry,) = data["packages"][0]["wheels"]
    assert entry == {"name": wheel.name, "path": wheel.name, "hashes": {"sha256": sha256_of(wheel)}} | (
        {"size": entry["size"]} if "size" in entry else {})
    assert data["tool"]["offlinepack"]["files-from-index"] is True
    assert (tmp_path / "pylock.toml").stat().st_mode & 0o044 == 0o044  # readable by others, like any file


def test_unreachable_index_is_a_clear_error(tmp_path):
    (tmp_path / "r.in").write_text("anything\n")
    with pytest.raises(OfflinepackError) as info:
        lock_requirements(LockOptions(requirements=(tmp_path / "r.in",), target=small_target({}),
                                      output=tmp_path / "p.toml", index_url="http://127.0.0.1:9/simple/",
                                      cache_dir=tmp_path / "c"))
    assert info.value.message.startswith("cannot reach http://127.0.0.1:9/simple/: ")
    assert "Connection refused" in info.value.message


def test_bad_index_url_and_find_links_are_named_before_resolving(tmp_path):
    (tmp_path / "r.in").write_text("anything\n")
    with pytest.raises(OfflinepackError) as info:
        lock_requirements(LockOptions(requirements=(tmp_path / "r.in",), target=small_target({}),
                                      output=tmp_path / "p.toml", index_url="not-a-url",
                                      find_links=(tmp_path / "nowhere",), cache_dir=tmp_path / "c"))
    assert info.value.problems == (
        "--index-url 'not-a-url' is neither an http(s):// or file:// URL nor an existing folder",
        f"--find-links {tmp_path / 'nowhere'}: no such folder")
    assert not (tmp_path / "p.toml").exists()
    (tmp_path / "requirements.in").write_text("six\n")
    with pytest.raises(OfflinepackError) as info:
        lock_requirements(LockOptions(requirements=(tmp_path / "requirements.in",), target=small_target({}),
                                      output=tmp_path / "requirements.in", cache_dir=tmp_path / "c"))
    assert info.value.problems == (
        f"-o {tmp_path / 'requirements.in'} is one of the requirement files: the lock would overwrite it",)
    assert (tmp_path / "requirements.in").read_text() == "six\n"


def test_existing_lock_untouched_on_failure(tmp_path, local_index):
    stack(local_index.root)
    (tmp_path / "pylock.toml").write_text("good = true\n")
    with pytest.raises(OfflinepackError):
        do_lock(tmp_path, local_index, ["app==2.0"], small_target(KERNEL))
    assert (tmp_path / "pylock.toml").read_text() == "good = true\n"


def test_real_kernel_capture_holds_its_timm(tmp_path, local_index):
    """The fixture image has timm 1.0.29 and torch 2.11.0: nnunet-like falls back and says why."""
    root = local_index.root
    make_wheel(root, "nnunet-like", "2.8.1", requires=["dyn-arch>=0.4.4", "torch>=2.1", "numpy"])
    make_wheel(root, "nnunet-like", "2.7.0", requires=["dyn-arch>=0.4.2", "torch>=2.1", "numpy"])
    make_sdist(root, "dyn-arch", "0.4.4", requires=["timm<1.0.23", "torch"])
    make_sdist(root, "dyn-arch", "0.4.2", requires=["timm", "torch"])
    make_wheel(root, "torch", "2.11.0", requires=["nvidia-cublas"], tag="cp312-cp312-manylinux_2_28_x86_64")
    make_wheel(root, "timm", "1.0.29", requires=["torch"])
    make_wheel(root, "numpy", "2.5.2", tag="cp312-cp312-manylinux_2_28_x86_64")
    result, data = do_lock(tmp_path, local_index, ["nnunet-like"], resolve_target(GPU_KERNEL))
    assert names(data) == {"nnunet-like": "2.7.0", "dyn-arch": "0.4.2"}
    provided = {p["name"]: p["version"] for p in data["tool"]["offlinepack"]["provided"]}
    assert provided["timm"] == "1.0.29" and provided["torch"] == "2.11.0" and provided["numpy"] == "2.5.2"
    assert [str(h) for h in result.held_back] == [
        "nnunet-like 2.7.0 locked, not the newest 2.8.1, to keep the target's versions: dyn-arch 0.4.4 requires "
        "timm<1.0.23; the target has timm 1.0.29 (via nnunet-like 2.8.1 -> dyn-arch 0.4.4)"]


# --- CLI ---

def test_cli_lock_pyproject_and_json_summary(tmp_path, local_index):
    stack(local_index.root)
    target_file = tmp_path / "kernel.json"
    dump_target(small_target(KERNEL), target_file)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "0"\ndependencies = ["app"]\n')
    result = runner.invoke(app, ["lock", str(tmp_path / "pyproject.toml"), "--target", str(target_file),
                                 "-o", str(tmp_path / "out.toml"), "--index-url", local_index.url,
                                 "--cache-dir", str(tmp_path / "c"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert {p["name"] for p in summary["packages"]} == {"app", "helper", "new-only"}
    assert summary["held_back"][0].startswith("app 1.0 locked, not the newest 2.0")


def test_cli_lock_text_output_and_conflict_exit_code(tmp_path, local_index):
    stack(local_index.root)
    target_file = tmp_path / "kernel.json"
    dump_target(small_target(KERNEL), target_file)
    (tmp_path / "r.in").write_text("app\n")
    common = ["--target", str(target_file), "--index-url", local_index.url, "--cache-dir", str(tmp_path / "c")]
    ok = runner.invoke(app, ["lock", str(tmp_path / "r.in"), "-o", str(tmp_path / "a.toml"), *common])
    assert ok.exit_code == 0, ok.output
    assert "+ app 1.0 [wheel]" in ok.stdout and "note: app 1.0 locked, not the newest 2.0" in ok.stdout
    (tmp_path / "r.in").write_text("app==2.0\n")
    bad = runner.invoke(app, ["lock", str(tmp_path / "r.in"), "-o", str(tmp_path / "b.toml"), *common])
    assert bad.exit_code == 2
    assert "error: app 2.0 requires timm<1.0.23; the target has timm 1.0.26" in bad.stderr
    assert "hint: what would work:" in bad.stderr


def test_cli_lock_uses_the_index_build_would_use(tmp_path, local_index, monkeypatch):
    """Only $PIP_INDEX_URL set (a mirror configured for pip): lock resolves there too, as build fetches there."""
    stack(local_index.root)
    target_file = tmp_path / "kernel.json"
    dump_target(small_target(KERNEL), target_file)
    (tmp_path / "r.in").write_text("helper\n")
    for name in ("OFFLINEPACK_INDEX_URL", "UV_INDEX_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_INDEX_URL", local_index.url)
    result = runner.invoke(app, ["lock", str(tmp_path / "r.in"), "--target", str(target_file), "-o",
                                 str(tmp_path / "p.toml"), "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert "/simple/helper/" in local_index.requests


def test_cli_malformed_inputs_all_reported(tmp_path):
    (tmp_path / "r.in").write_text("good\nbad==\n--hash=sha256:00\n")
    (tmp_path / "pyproject.toml").write_text("[project\n")
    result = runner.invoke(app, ["lock", str(tmp_path / "r.in"), str(tmp_path / "pyproject.toml"),
                                 str(tmp_path / "missing.in"), "--target", "kaggle-gpu", "-o", str(tmp_path / "p.toml")])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "error: cannot read the requirements"
    assert lines[1].startswith(f"error: {tmp_path / 'r.in'}:2: invalid requirement 'bad=='")
    assert lines[2].startswith(f"error: {tmp_path / 'r.in'}:3: option '--hash' is not supported")
    assert lines[3].startswith(f"error: {tmp_path / 'pyproject.toml'}: not valid TOML")
    assert lines[4] == f"error: {tmp_path / 'missing.in'}: no such file"



def test_a_package_name_instead_of_a_file_says_how_to_lock_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OfflinepackError) as info:
        read_requirements([Path("nnunetv2"), Path("reqs.txt")])
    assert info.value.problems == (
        "nnunetv2: no such file (to lock the package 'nnunetv2', write it on a line of a requirements.in and pass "
        "that file)",
        "reqs.txt: no such file")


def test_requirement_file_options_each_say_what_to_do_instead(tmp_path):
    (tmp_path / "r.in").write_text("-r missing.in\n-c pins.txt\nsix==1.16.0 --hash=sha256:abc\n"
                                   "--extra-index-url http://127.0.0.1:9/simple/\n-e ./pkg\n")
    with pytest.raises(OfflinepackError) as info:
        read_requirements([tmp_path / "r.in"])
    where = tmp_path / "r.in"
    assert info.value.problems == (
        f"{where}:1: -r missing.in: no such file {tmp_path / 'missing.in'}",
        f"{where}:2: option '-c' is not supported: write the pins as requirements (e.g. `numpy<2`) in this file",
        f"{where}:3: per-requirement --hash is not supported: offlinepack records the sha256 of every file in the "
        "lock itself; remove it ('six==1.16.0')",
        f"{where}:4: option '--extra-index-url' is not supported in requirement files; pass it on the command line "
        "(--index-url, --find-links)",
        f"{where}:5: option '-e' is not supported: the kernel needs a built wheel; write the project as "
        "`name @ file:///absolute/path` or build its wheel and pass --find-links DIR",
    )


def test_text_encodings_windows_editors_write(tmp_path):
    """UTF-16 (PowerShell's `>`) is named, not a traceback; a UTF-8 BOM (Notepad) is read like pip reads it."""
    (tmp_path / "ps.in").write_text("requests\n", encoding="utf-16")
    (tmp_path / "bom.in").write_bytes(b"\xef\xbb\xbfsix\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndynamic = ["dependencies"]\n')
    with pytest.raises(OfflinepackError) as info:
        read_requirements([tmp_path / "ps.in", tmp_path / "bom.in", tmp_path / "pyproject.toml"])
    assert info.value.problems == (
        f"{tmp_path / 'ps.in'}: not UTF-8 text (byte 0): it is UTF-16, as Windows PowerShell's `>` writes; "
        "save it as UTF-8",
        f"{tmp_path / 'pyproject.toml'}: [project].dependencies is dynamic (set by the build backend); offlinepack "
        "reads only static dependencies: list them in a requirements.in and lock that",
    )
    assert [str(r) for r in read_requirements([tmp_path / "bom.in"])] == ["six"]
    with pytest.raises(OfflinepackError) as info:
        read_requirements([tmp_path])
    assert info.value.problems == (f"{tmp_path}: is a folder; pass its requirements.in or pyproject.toml",)
    (tmp_path / "kernel.json").write_text("{}", encoding="utf-16")
    with pytest.raises(OfflinepackError, match="kernel.json: not UTF-8 text"):
        resolve_target(tmp_path / "kernel.json")


def test_lock_and_snapshot_into_an_unwritable_place_are_errors_not_tracebacks(tmp_path):
    (tmp_path / "a-file").write_text("")
    bad = tmp_path / "a-file" / "out.json"
    result = runner.invoke(app, ["snapshot", "-o", str(bad)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: cannot write {bad}: ") and "hint: pick a folder" in result.stderr
    with pytest.raises(OfflinepackError, match=f"cannot write {bad}"):
        dump_target(small_target({}), bad)


def test_cli_bad_target_and_bad_requirements_reported_together(tmp_path):
    (tmp_path / "r.in").write_text("bad==\n")
    result = runner.invoke(app, ["lock", str(tmp_path / "r.in"), "--target", "kaggle-tpu", "-o", str(tmp_path / "p.toml")])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "error: cannot lock: bad input"
    assert lines[1].startswith("error: no such target: 'kaggle-tpu'")
    assert lines[2].startswith(f"error: {tmp_path / 'r.in'}:1: invalid requirement 'bad=='")
    assert lines[3].startswith("hint: built-ins: kaggle-gpu") and "requirements.in syntax" in lines[3]
    assert len(lines) == 4 and not (tmp_path / "p.toml").exists()


def test_cli_pyproject_without_project_table(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.x]\na = 1\n")
    result = runner.invoke(app, ["lock", str(tmp_path / "pyproject.toml"), "--target", "kaggle-gpu"])
    assert result.exit_code == 2 and "no [project] table" in result.stderr


def test_cli_unknown_target(tmp_path):
    (tmp_path / "r.in").write_text("x\n")
    result = runner.invoke(app, ["lock", str(tmp_path / "r.in"), "--target", "nope"])
    assert result.exit_code == 2 and "error: no such target: 'nope'" in result.stderr


REFERENCE_SETS = {
    # what `offlinepack run` needs beyond the Kaggle GPU image (the README's kernel recipe)
    "vesuvius": ["dynamic-network-architectures", "connected-components-3d", "imagecodecs==2025.11.11"],
    # nnunetv2's own predictor: the size reference
    "nnunetv2": ["nnunetv2", "imagecodecs", "connected-components-3d", "surface-distance"],
}


@pytest.mark.parametrize("folder", sorted(REFERENCE_SETS))
def test_reference_requirements_file_is_committed(folder):
    text = (REPO_ROOT / "lockfiles" / folder / "requirements.in").read_text()
    assert [line for line in text.splitlines() if line and not line.startswith("#")] == REFERENCE_SETS[folder]


@pytest.mark.parametrize("folder", sorted(REFERENCE_SETS))
def test_reference_lock_is_sane(folder):
    """The committed locks for kaggle-gpu: nothing the kernel has, no CUDA stack, no standard-library back-ports,
    valid PEP 751."""
    data = tomllib.loads((REPO_ROOT / "lockfiles" / folder / "pylock.toml").read_text())
    Pylock.from_dict(data)
    locked = names(data)
    assert {line.split("==")[0] for line in REFERENCE_SETS[folder]} <= set(locked)
    assert not any(n in locked for n in ("torch", "numpy", "timm", "triton")) and not any(
        n.startswith("nvidia") for n in locked)
    assert not set(locked) & {"argparse", "unittest2", "traceback2", "linecache2"}
    for package in data["packages"]:
        for file in [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]:
            # portable: the file is found on the index by name and hash; no download address is kept
            assert "url" not in file and file["path"] == file["name"] and len(file["hashes"]["sha256"]) == 64
    tool = data["tool"]["offlinepack"]
    assert tool["target"] == "kaggle-gpu" and tool["files-from-index"] is True
    assert tool["optional"] == ["connected-components-3d", "imagecodecs"]
    if folder == "vesuvius":  # the run's lock: exactly its three, no nnunetv2 predictor stack (SimpleITK: 50 MiB)
        assert set(locked) == {line.split("==")[0] for line in REFERENCE_SETS[folder]}
    else:
        assert {"acvl-utils", "simpleitk"} <= set(locked)
        assert {d["name"] for d in tool["dropped-backports"]} == {"argparse", "unittest2", "traceback2", "linecache2"}


@pytest.mark.network
def test_reference_lock_against_the_public_index(tmp_path):
    result = runner.invoke(app, ["lock", str(REPO_ROOT / "lockfiles" / "nnunetv2" / "requirements.in"),
                                 "--target", "kaggle-gpu", "-o", str(tmp_path / "pylock.toml"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    locked = {p["name"] for p in summary["packages"]}
    assert {"nnunetv2", "imagecodecs", "connected-components-3d", "acvl-utils"} <= locked
    assert "torch" not in locked and "numpy" not in locked and not any(n.startswith("nvidia") for n in locked)
    assert any(item.startswith("nnunetv2 ") and "timm" in item for item in summary["held_back"])
