"""offlinepack.wheelhouse against real wheels and sdists served over HTTP on 127.0.0.1."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest
from packaging.pylock import Pylock

from offlinepack._compat import tomllib
from offlinepack.errors import OfflinepackError
from offlinepack.kernel import find_bootstrap
from offlinepack.kernel_target import InstalledDistribution, Target
from offlinepack.wheelhouse import BuildOptions, build_wheelhouse
from offlinepack.wheelhouse.dataset import PLACEHOLDER_OWNER, dataset_metadata
from offlinepack.wheelhouse.sdist import find_uv
from offlinepack.wheelhouse.selfwheel import offlinepack_wheel
from tests.support.index import LocalIndex
from tests.support.pythons import find_python
from tests.support.locks import MANYLINUX, TAGS, entry, file_url, make_target, write_lock
from tests.support.wheels import make_sdist, make_wheel, sha256_of

@pytest.fixture(scope="session")
def self_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """offlinepack's own wheel, built once for the session with the real build path (uv build)."""
    return offlinepack_wheel(tmp_path_factory.mktemp("self-cache")).path


@pytest.fixture
def project(tmp_path: Path, local_index: LocalIndex) -> dict:
    """A served set: alpha (compiled, several platforms), imagecodecs (optional), beta (sdist-only), winonly."""
    root = local_index.root
    alpha = {tag: make_wheel(root, "alpha", "1.0", tag=tag) for tag in (
        "cp312-cp312-win_amd64", "cp312-cp312-manylinux_2_17_x86_64", "cp312-cp312-manylinux_2_28_x86_64",
        "cp311-cp311-manylinux_2_28_x86_64")}
    codecs = make_wheel(root, "imagecodecs", "2025.8.2", tag="cp312-cp312-manylinux_2_28_x86_64")
    beta = make_sdist(root, "beta-pkg", "2.0")
    win = make_wheel(root, "winonly", "1.0")
    packages = [
        {"name": "alpha", "version": "1.0", "wheels": [entry(file_url(local_index, p), p) for p in alpha.values()]},
        {"name": "imagecodecs", "version": "2025.8.2", "wheels": [entry(file_url(local_index, codecs), codecs)]},
        {"name": "beta-pkg", "version": "2.0", "sdist": entry(file_url(local_index, beta), beta)},
        {"name": "winonly", "version": "1.0", "marker": "sys_platform == 'win32'",
         "wheels": [entry(file_url(local_index, win), win)]},
    ]
    lock = write_lock(tmp_path / "pylock.toml", packages)
    return {"lock": lock, "index": local_index, "packages": packages, "alpha": alpha, "codecs": codecs,
            "beta": beta, "win": win, "cache": tmp_path / "cache", "out": tmp_path / "out"}


def options(project: dict, self_wheel: Path, **kw) -> BuildOptions:
    defaults = dict(lock=project["lock"], target=make_target(), output=project["out"], cache_dir=project["cache"],
                    self_wheel=self_wheel, dataset_id="alice/vesuvius-wheels", environ={})
    return BuildOptions(**{**defaults, **kw})


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_build_ships_best_wheel_per_package_and_a_complete_folder(project: dict, self_wheel: Path) -> None:
    events = []
    result = build_wheelhouse(options(project, self_wheel), progress=events.append)
    out = project["out"]
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([
        "alpha-1.0-cp312-cp312-manylinux_2_28_x86_64.whl",  # 2_28 ranks above 2_17 for the target; no win/cp311
        "imagecodecs-2025.8.2-cp312-cp312-manylinux_2_28_x86_64.whl",
        "beta_pkg-2.0-py3-none-any.whl",  # built from the sdist
        self_wheel.name, "bootstrap.py", "pylock.toml", "offlinepack.json", "dataset-metadata.json",
    ])
    # only the chosen files were fetched; the marker-false package was never asked for
    fetched = sorted(r for r in project["index"].requests if r.startswith("/files/"))
    assert fetched == sorted(["/files/alpha-1.0-cp312-cp312-manylinux_2_28_x86_64.whl",
                              "/files/imagecodecs-2025.8.2-cp312-cp312-manylinux_2_28_x86_64.whl",
                              "/files/beta_pkg-2.0.tar.gz"])
    assert result.skipped == ("winonly",)
    assert result.built == ("beta-pkg",)
    assert (out / "bootstrap.py").read_bytes() == find_bootstrap().read_bytes()
    assert {e.filename for e in events if e.finished} >= {"beta_pkg-2.0.tar.gz", "alpha-1.0-cp312-cp312-manylinux_2_28_x86_64.whl"}
    assert leftovers(out.parent) == []
    assert result.size.total == sum(f.size for f in result.files)
    assert result.size.largest == max(result.files, key=lambda f: f.size).package


def test_manifest_follows_contract_3(project: dict, self_wheel: Path) -> None:
    build_wheelhouse(options(project, self_wheel))
    out = project["out"]
    data = json.loads((out / "offlinepack.json").read_text())
    assert data["format"] == "offlinepack-wheelhouse" and data["version"] == 1 and data["lock"] == "pylock.toml"
    assert data["created"].endswith("Z") and data["offlinepack_version"] == "0.1.0"
    assert data["target"] == {"name": "test-kernel", "implementation": "cpython", "python_version": "3.12.3",
                              "approximate": True, "tags": list(TAGS[:20])}
    assert data["provided"] == [{"name": "numpy", "version": "2.0.2"}, {"name": "torch", "version": "2.8.0"}]
    packages = {p["name"]: p for p in data["packages"]}
    assert set(packages) == {"alpha", "imagecodecs", "beta-pkg", "offlinepack"}
    assert packages["imagecodecs"]["optional"] is True  # default when the lock names no optional packages
    assert not any(packages[n]["optional"] for n in ("alpha", "beta-pkg", "offlinepack"))
    for package in packages.values():
        for f in package["files"]:
            assert sha256_of(out / f["path"]) == f["sha256"] and (out / f["path"]).stat().st_size == f["size"]
    meta = json.loads((out / "dataset-metadata.json").read_text())
    assert meta == {"title": "offlinepack wheels for test-kernel", "id": "alice/vesuvius-wheels",
                    "licenses": [{"name": "CC0-1.0"}]}


def test_rewritten_lock_has_relative_paths_and_installs_offline(project: dict, self_wheel: Path, tmp_path: Path) -> None:
    build_wheelhouse(options(project, self_wheel))
    out = project["out"]
    text = (out / "pylock.toml").read_text()
    lock = Pylock.from_dict(tomllib.loads(text))
    assert "url" not in text and "http" not in text
    assert [p.name for p in lock.packages] == ["alpha", "imagecodecs", "beta-pkg", "offlinepack"]
    for package in lock.packages:
        (wheel,) = package.wheels
        assert wheel.path == wheel.filename and (out / wheel.path).is_file()
        assert wheel.hashes["sha256"] == sha256_of(out / wheel.path)
    assert tomllib.loads(text)["tool"]["offlinepack"]["provided"][0] == {"name": "numpy", "version": "2.0.2"}

    python = find_python("3.12")
    if python is None:
        pytest.skip("no Python 3.12 interpreter to install the cp312 wheels into")
    venv = tmp_path / "kernel"
    subprocess.run([str(python), "-m", "venv", "--without-pip", str(venv)], check=True)
    wheels = sorted(str(p) for p in out.glob("*.whl"))
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                           "--no-index", "--no-deps", "--no-compile", "--quiet", *wheels],
                          capture_output=True, text=True, env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"))
    assert done.returncode == 0, done.stderr
    check = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import alpha, beta_pkg, imagecodecs, offlinepack; print(alpha.__version__, beta_pkg.__version__)"],
                           capture_output=True, text=True)
    assert check.stdout.split() == ["1.0", "2.0"], check.stderr
    # uv reads the rewritten lock itself: every relative path resolves next to it, no index needed
    venv2 = tmp_path / "kernel2"
    subprocess.run([str(python), "-m", "venv", "--without-pip", str(venv2)], check=True)
    done = subprocess.run([find_uv(), "pip", "install", "--python", str(venv2 / "bin" / "python"), "--offline",
                           "--no-deps", "-r", str(out / "pylock.toml")], capture_output=True, text=True)
    assert done.returncode == 0 and "+ beta-pkg==2.0" in done.stderr, done.stderr


def test_warm_rebuild_downloads_nothing(project: dict, self_wheel: Path) -> None:
    """Its speed (goal < 1 s) is measured by scripts/bench_wheelhouse.py ("offlinepack warm"), not asserted here."""
    first = build_wheelhouse(options(project, self_wheel))
    assert len(first.downloaded) == 3
    requests = list(project["index"].requests)
    second = build_wheelhouse(options(project, self_wheel, force=True))
    assert project["index"].requests == requests  # not one request: everything came from the cache
    assert second.downloaded == () and second.built == () and second.replaced
    assert {f.origin for f in second.files} == {"cached", "built", "self"}
    assert [(f.path, f.sha256) for f in second.files] == [(f.path, f.sha256) for f in first.files]


def test_a_cached_file_changed_through_a_wheelhouse_link_is_fetched_again(project: dict, self_wheel: Path) -> None:
    """The wheelhouse is hard-linked to the cache: a file edited there changes the cache too. The next build
    must not ship those bytes under the lock's hash (bootstrap would refuse them in the kernel)."""
    build_wheelhouse(options(project, self_wheel))
    shipped = project["out"] / project["codecs"].name
    shipped.chmod(0o644)
    with open(shipped, "ab") as handle:
        handle.write(b"edited")
    again = build_wheelhouse(options(project, self_wheel, force=True))
    assert again.downloaded == (project["codecs"].name,)
    assert sha256_of(project["out"] / project["codecs"].name) == sha256_of(project["codecs"])


def test_hash_mismatch_is_an_error_and_the_file_is_not_kept(project: dict, self_wheel: Path) -> None:
    codecs: Path = project["codecs"]
    expected = sha256_of(codecs)
    codecs.write_bytes(codecs.read_bytes() + b"tampered")  # the index now serves different bytes
    with pytest.raises(OfflinepackError) as caught:
        build_wheelhouse(options(project, self_wheel))
    (line,) = [p for p in caught.value.problems if "hash mismatch" in p]
    assert codecs.name in line and expected in line and sha256_of(codecs) in line
    assert "lock again with `offlinepack lock`" in caught.value.hint
    assert not project["out"].exists() and leftovers(project["out"].parent) == []
    cached_names = [p.name for p in (project["cache"] / "sha256").rglob("*") if p.is_file()]
    assert codecs.name not in cached_names and "alpha-1.0-cp312-cp312-manylinux_2_28_x86_64.whl" in cached_names
    assert not list((project["cache"] / "tmp").iterdir())


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_file_fails_whole_build_and_old_folder_survives(project: dict, self_wheel: Path,
                                                                    tmp_path: Path) -> None:
    build_wheelhouse(options(project, self_wheel))
    before = {p.name: p.read_bytes() for p in project["out"].iterdir()}
    gamma = make_wheel(tmp_path / "elsewhere", "gamma", "1.0")
    dead = f"http://127.0.0.1:{_closed_port()}/files/{gamma.name}"
    lock = write_lock(tmp_path / "pylock2.toml", [*project["packages"],
                                                 {"name": "gamma", "version": "1.0", "wheels": [entry(dead, gamma)]}])
    requests = len(project["index"].requests)
    with pytest.raises(OfflinepackError) as caught:
        build_wheelhouse(options(project, self_wheel, lock=lock, force=True))
    assert caught.value.problems == (f"cannot download {gamma.name} (gamma 1.0) from {dead}: Connection refused",)
    assert caught.value.message == (f"1 file(s) could not be fetched (3 of 4 came from the cache); nothing was "
                                    f"written to {project['out']}")
    assert "cached" in (caught.value.hint or "")
    assert len(project["index"].requests) == requests  # the cache served everything it had
    assert {p.name: p.read_bytes() for p in project["out"].iterdir()} == before
    assert leftovers(tmp_path) == []


def test_output_exists_is_refused_then_replaced_with_force(project: dict, self_wheel: Path) -> None:
    out: Path = project["out"]
    out.mkdir()
    (out / "stale.whl").write_text("old")
    (out / "offlinepack.json").write_text('{"format": "offlinepack-wheelhouse", "version": 1}')  # an older build
    with pytest.raises(OfflinepackError) as caught:
        build_wheelhouse(options(project, self_wheel))
    # the folder heads the error, not the lock (a rebuild without --force)
    assert caught.value.message.startswith(f"output {out} already exists") and "--force" in caught.value.hint
    assert (out / "stale.whl").exists()
    result = build_wheelhouse(options(project, self_wheel, force=True))
    assert result.replaced and not (out / "stale.whl").exists() and (out / "offlinepack.json").is_file()
    assert leftovers(out.parent) == []


def test_force_never_deletes_a_folder_that_is_not_a_wheelhouse(project: dict, self_wheel: Path) -> None:
    """`-o . --force` or `-o ~/project --force` by mistake: the folder is not an old wheelhouse, so it stays."""
    out: Path = project["out"]
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    with pytest.raises(OfflinepackError) as caught:
        build_wheelhouse(options(project, self_wheel, force=True))
    assert caught.value.lines() == (  # the folder heads the error, alone: the lock is fine
        f"output {out} is not a wheelhouse (no offlinepack.json) and not empty; --force only replaces a folder "
        "`offlinepack build` wrote: pick another -o, or empty it yourself",)
    assert (out / "notes.txt").read_text() == "precious" and project["index"].requests == []
    (out / "notes.txt").unlink()  # an empty folder may be replaced
    assert build_wheelhouse(options(project, self_wheel, force=True)).replaced


def test_every_input_problem_is_reported_at_once(project: dict, self_wheel: Path, tmp_path: Path) -> None:
    win = make_wheel(project["index"].root, "winbin", "3.1", tag="cp312-cp312-win_amd64")
    lock = write_lock(tmp_path / "bad.toml", [
        *project["packages"],
        {"name": "winbin", "version": "3.1", "wheels": [entry(file_url(project["index"], win), win)]},
    ])
    project["out"].mkdir()
    with pytest.raises(OfflinepackError) as caught:
        build_wheelhouse(options(project, self_wheel, lock=lock, dataset_id="alice/x", title="tiny"))
    problems = caught.value.problems
    assert any("already exists" in p for p in problems)
    assert ("no file of winbin 3.1 installs on target test-kernel: the lock has wheels for cp312-cp312-win_amd64 "
            "and no sdist; the target's best tags: cp312-cp312-linux_x86_64, cp312-cp312-manylinux_2_35_x86_64, "
            "cp312-cp312-manylinux_2_34_x86_64") in problems
    assert any("title 'tiny'" in p for p in problems) and any("slug 'x'" in p for p in problems)
    # the hint says how to fix each kind of problem, not just "fix the lines above"
    assert "--dataset-id owner/slug, --title TEXT" in caught.value.hint
    assert project["index"].requests == []  # nothing fetched before the inputs are sound


def test_lock_for_another_python_is_named_with_the_fix(project: dict, self_wheel: Path, tmp_path: Path) -> None:
    """write_lock says requires-python >=3.10; a lock made for 3.11 does not serve the 3.12 target."""
    lock = tmp_path / "py311.toml"
    lock.write_text(project["lock"].read_text().replace('requires-python = ">=3.10"', 'requires-python = "==3.11.*"'))
    with pytest.raises(OfflinepackError) as caught:
        build_wheelhouse(options(project, self_wheel, lock=lock))
    assert caught.value.problems[0] == (f"{lock}: requires-python ==3.11.*: the lock is for another Python than "
                                        "target test-kernel's 3.12.3")
    assert caught.value.hint == (f"lock again for this target: `offlinepack lock REQ... --target test-kernel -o {lock}` "
                                 "(lock made for 'test-kernel')")


def test_malformed_lock_names_file_and_field(project: dict, self_wheel: Path, tmp_path: Path) -> None:
    bad = tmp_path / "pylock.toml"
    bad.write_text(project["lock"].read_text().replace("hashes = ", "size = \"12\", hashes = ", 1))
    with pytest.raises(OfflinepackError) as caught:
        build_wheelhouse(options(project, self_wheel, lock=bad))
    assert caught.value.problems == (
        f"{bad}: not a valid pylock.toml: Unexpected type str (expected int) in 'packages[0].wheels[0].size'",)
    assert "offlinepack lock" in caught.value.hint
    bad.write_text(project["lock"].read_text(), encoding="utf-16")
    with pytest.raises(OfflinepackError) as caught:
        build_wheelhouse(options(project, self_wheel, lock=bad))
    assert caught.value.problems == (f"{bad}: not UTF-8 text (byte 0): it is UTF-16, as Windows PowerShell's `>` "
                                     "writes; save it as UTF-8",)
    bad.write_text("lock-version = \n")
    with pytest.raises(OfflinepackError) as caught:
        build_wheelhouse(options(project, self_wheel, lock=bad))
    assert f"{bad}: not valid TOML" in caught.value.problems[0]


def _compiled_sdist(folder: Path, name: str, version: str) -> Path:
    """An sdist whose in-tree backend tags its wheel for the build interpreter and platform (like a C extension)."""
    sdist = make_sdist(folder, name, version)
    module = name.replace("-", "_")
    with tarfile.open(sdist) as archive:
        members = {m.name: archive.extractfile(m).read() for m in archive.getmembers()}
    backend = f"{module}-{version}/intree_backend.py"
    code = members[backend].decode()
    code = code.replace("Root-Is-Purelib: true\\nTag: py3-none-any", "Root-Is-Purelib: false\\nTag: {TAG}")
    code = code.replace('f"{MODULE}-{VERSION}-py3-none-any.whl"', 'f"{MODULE}-{VERSION}-{TAG}.whl"')
    code = code.replace("def _hash(", "import sys, sysconfig\nTAG = 'cp%d%d-cp%d%d-' % (sys.version_info[:2] * 2) + "
                                      "sysconfig.get_platform().replace('-', '_').replace('.', '_')\n\n\ndef _hash(")
    code = code.replace('b"Wheel-Version: 1.0\\nGenerator: intree\\nRoot-Is-Purelib: false\\nTag: {TAG}\\n\\n"',
                        'f"Wheel-Version: 1.0\\nGenerator: intree\\nRoot-Is-Purelib: false\\nTag: {TAG}\\n\\n".encode()')
    members[backend] = code.encode()
    with tarfile.open(sdist, "w:gz") as archive:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return sdist


def host_tag() -> str:
    return "cp%d%d-cp%d%d-" % (sys.version_info[:2] * 2) + sysconfig.get_platform().replace("-", "_").replace(".", "_")


def test_compiled_sdist_is_refused_for_another_target_and_accepted_for_a_matching_one(
        local_index: LocalIndex, tmp_path: Path, self_wheel: Path) -> None:
    sdist = _compiled_sdist(local_index.root, "acvl-utils", "0.2.5")
    lock = write_lock(tmp_path / "pylock.toml", [
        {"name": "acvl-utils", "version": "0.2.5", "sdist": entry(file_url(local_index, sdist), sdist)}])
    project = {"lock": lock, "out": tmp_path / "out", "cache": tmp_path / "cache"}
    target = make_target(tuple(MANYLINUX) + ("py3-none-any",))
    with pytest.raises(OfflinepackError) as caught:
        build_wheelhouse(options(project, self_wheel, target=target))
    assert caught.value.problems == (
        f"acvl-utils is sdist-only and builds a compiled wheel for {host_tag()}; the target needs "
        f"{', '.join(MANYLINUX[:3])}; build it on a machine matching the target",)
    assert not project["out"].exists() and not list((tmp_path / "cache").glob("built/*/*.whl"))
    # a target listing the build host's own tag takes the wheel
    result = build_wheelhouse(options(project, self_wheel, target=make_target((host_tag(), "py3-none-any"))))
    (built,) = [f for f in result.files if f.package == "acvl-utils"]
    assert built.path == f"acvl_utils-0.2.5-{host_tag()}.whl" and built.sha256 == sha256_of(project["out"] / built.path)


def _sdist_needing(folder: Path, name: str, backend: str) -> Path:
    """An sdist whose build-system requires `backend` (fetched from the index at build time, as real ones are)."""
    sdist = make_sdist(folder, name, "1.0")
    with tarfile.open(sdist) as archive:
        members = {m.name: archive.extractfile(m).read() for m in archive.getmembers()}
    key = f"{name.replace('-', '_')}-1.0/pyproject.toml"
    members[key] = members[key].replace(b"requires = []", f'requires = ["{backend}"]'.encode())
    with tarfile.open(sdist, "w:gz") as archive:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return sdist


def test_sdist_build_without_the_index_says_the_backend_needs_the_network(
        local_index: LocalIndex, tmp_path: Path, self_wheel: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sdist = _sdist_needing(local_index.root, "gamma", "some-build-backend")
    lock = write_lock(tmp_path / "pylock.toml", [
        {"name": "gamma", "version": "1.0", "sdist": entry(file_url(local_index, sdist), sdist)}])
    project = {"lock": lock, "out": tmp_path / "out", "cache": tmp_path / "cache"}
    monkeypatch.setenv("UV_INDEX_URL", f"http://127.0.0.1:{_closed_port()}/simple/")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    with pytest.raises(OfflinepackError) as caught:
        build_wheelhouse(options(project, self_wheel))
    (problem,) = caught.value.problems
    assert problem.startswith("building a wheel for gamma") and "some-build-backend" in problem
    assert caught.value.hint.startswith("a build fetches its build backend")
    assert not project["out"].exists()


def test_lock_path_entries_resolve_against_the_lock_folder(tmp_path: Path, self_wheel: Path) -> None:
    wheel = make_wheel(tmp_path / "wheels", "delta", "0.1")
    lock = write_lock(tmp_path / "pylock.toml", [
        {"name": "delta", "version": "0.1",
         "wheels": [f'{{path = "wheels/{wheel.name}", hashes = {{sha256 = "{sha256_of(wheel)}"}}}}']}])
    project = {"lock": lock, "out": tmp_path / "out", "cache": tmp_path / "cache"}
    result = build_wheelhouse(options(project, self_wheel))
    assert (tmp_path / "out" / wheel.name).read_bytes() == wheel.read_bytes()
    assert result.downloaded == (wheel.name,)
    # the local file gone (a lock made with --find-links, the folder moved): named, not looked up on an index
    moved = tmp_path / "elsewhere"
    (tmp_path / "wheels").rename(moved)
    with pytest.raises(OfflinepackError) as caught:
        build_wheelhouse(options({**project, "cache": tmp_path / "cold"}, self_wheel, force=True, index_urls=()))
    assert caught.value.problems == (f"packages[0] delta: {wheel.name}: no such file {tmp_path / 'wheels' / wheel.name} "
                                     "(the lock names a local file: put it back, or lock again)",)


def test_write_failure_midway_leaves_nothing_half_written(project: dict, self_wheel: Path) -> None:
    """A real OS write failure (file size limit, like a full disk) while the folder is being written."""
    build_wheelhouse(options(project, self_wheel))  # warms the cache, so the failure comes while writing
    before = {p.name: p.read_bytes() for p in project["out"].iterdir()}
    script = f"""
import resource, signal, sys
from pathlib import Path
sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))  # bootstrap.py and offlinepack.json exceed it
from offlinepack.errors import OfflinepackError
from offlinepack.wheelhouse import BuildOptions, build_wheelhouse
from tests.support.locks import make_target
try:
    build_wheelhouse(BuildOptions(lock=Path({str(project['lock'])!r}), target=make_target(),
                     output=Path({str(project['out'])!r}), cache_dir=Path({str(project['cache'])!r}),
                     self_wheel=Path({str(self_wheel)!r}), force=True, dataset_id="alice/wheels", environ={{}}))
except OfflinepackError as error:
    print(error.message)
    sys.exit(2)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "disk full" in done.stdout and "was left as it was" in done.stdout
    assert {p.name: p.read_bytes() for p in project["out"].iterdir()} == before
    assert leftovers(project["out"].parent) == []


def test_dataset_metadata_defaults_and_validation() -> None:
    meta = dataset_metadata(dataset_id=None, title=None, license=None, default_slug="My Wheels!",
                            target_name="kaggle-gpu", environ={"KAGGLE_USERNAME": "bob"})
    assert (meta.id, meta.title, meta.license, meta.placeholder) == ("bob/my-wheels", "offlinepack wheels for kaggle-gpu",
                                                                    "CC0-1.0", False)
    assert meta.to_dict()["licenses"] == [{"name": "CC0-1.0"}]
    flagged = dataset_metadata(dataset_id=None, title="Vesuvius wheels", license="MIT", default_slug="wh",
                               target_name="k", environ={})
    assert flagged.placeholder and flagged.id == f"{PLACEHOLDER_OWNER}/wh-wheelhouse"
    with pytest.raises(OfflinepackError) as caught:
        dataset_metadata(dataset_id="alice/Bad_Slug-", title="x" * 51, license=" ", default_slug="w",
                         target_name="k", environ={})
    assert len(caught.value.problems) == 3
    assert "51 characters" in caught.value.problems[0] and "Bad_Slug-" in caught.value.problems[1]
    with pytest.raises(OfflinepackError) as caught:  # `kaggle datasets create` refuses slugs under 6 characters
        dataset_metadata(dataset_id="alice/wheel", title="long enough", license="CC0-1.0", default_slug="w",
                         target_name="k", environ={})
    assert caught.value.problems == ("dataset slug 'wheel' has 5 characters; Kaggle needs 6 to 50",)
    assert dataset_metadata(dataset_id=None, title=None, license=None, default_slug="whl", target_name="k",
                            environ={}).id == f"{PLACEHOLDER_OWNER}/whl-wheelhouse"
    with pytest.raises(OfflinepackError, match="invalid dataset metadata") as caught:
        dataset_metadata(dataset_id="no-slash", title="long enough", license="CC0-1.0", default_slug="w",
                         target_name="k", environ={})
    assert caught.value.problems == ("dataset id 'no-slash' must be owner/slug, e.g. alice/vesuvius-wheels",)


def test_self_wheel_ships_bootstrap_and_is_cached_by_source(tmp_path: Path) -> None:
    """On a frozen copy of the checkout (others edit the live tree while tests run)."""
    import shutil
    import zipfile

    repo = Path(__file__).resolve().parent.parent
    copy = tmp_path / "checkout"
    copy.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(repo / name, copy / name)
    shutil.copytree(repo / "runtime", copy / "runtime")
    shutil.copytree(repo / "offlinepack", copy / "offlinepack", ignore=shutil.ignore_patterns("__pycache__"))
    package_dir = copy / "offlinepack"
    cache_root = tmp_path / "cache"
    first = offlinepack_wheel(cache_root, package_dir)
    with zipfile.ZipFile(first.path) as archive:
        assert archive.read("offlinepack/runtime/bootstrap.py") == (copy / "runtime" / "bootstrap.py").read_bytes()
        assert "offlinepack/wheelhouse/assemble.py" in archive.namelist()
    assert find_bootstrap(package_dir) == copy / "runtime" / "bootstrap.py"
    stamp = first.path.stat().st_mtime_ns
    again = offlinepack_wheel(cache_root, package_dir)  # same sources: served from the cache, no build
    assert again.path == first.path and again.path.stat().st_mtime_ns == stamp and again.sha256 == first.sha256
    (copy / "offlinepack" / "wheelhouse" / "added.py").write_text("X = 1\n")
    changed = offlinepack_wheel(cache_root, package_dir)  # a source change means a new wheel
    assert changed.path.parent != first.path.parent
    with zipfile.ZipFile(changed.path) as archive:
        assert archive.read("offlinepack/wheelhouse/added.py") == b"X = 1\n"


def test_installed_offlinepack_repacks_its_own_wheel(self_wheel: Path, tmp_path: Path) -> None:
    """Installed from a wheel (no checkout): bootstrap.py is found in the package, the wheel is repacked."""
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile", "--target",
                           str(site), str(self_wheel)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    script = ("import sys, offlinepack; from pathlib import Path\n"
              "from offlinepack.kernel import find_bootstrap, source_root\n"
              "from offlinepack.wheelhouse.selfwheel import offlinepack_wheel\n"
              "assert source_root() is None, source_root()\n"
              "print(find_bootstrap()); print(offlinepack_wheel(Path(sys.argv[1])).path)\n")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "cache")], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(site)), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    bootstrap, wheel = map(Path, done.stdout.split())
    assert bootstrap == site / "offlinepack" / "runtime" / "bootstrap.py"
    assert wheel.parent.name == "installed-0.1.0" and wheel.name == self_wheel.name
    import zipfile

    with zipfile.ZipFile(wheel) as repacked, zipfile.ZipFile(self_wheel) as original:
        assert sorted(repacked.namelist()) == sorted(original.namelist())
        for name in original.namelist():
            if not name.endswith("/RECORD"):
                assert repacked.read(name) == original.read(name), name
    # and it installs: pip checks every RECORD hash
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile", "--target",
                           str(tmp_path / "again"), str(wheel)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "again" / "offlinepack" / "runtime" / "bootstrap.py").read_bytes() == bootstrap.read_bytes()


@pytest.mark.network
@pytest.mark.slow
def test_reference_lock_builds_from_the_public_index(tmp_path: Path) -> None:
    """Opt-in (`pytest -m network`): the committed nnunetv2 reference lock for kaggle-gpu, downloaded for real."""
    from offlinepack.kernel_target import resolve_target

    repo = Path(__file__).resolve().parent.parent
    result = build_wheelhouse(BuildOptions(lock=repo / "lockfiles" / "nnunetv2" / "pylock.toml",
                                           target=resolve_target("kaggle-gpu"), output=tmp_path / "out",
                                           cache_dir=tmp_path / "cache", dataset_id="alice/vesuvius-wheels",
                                           environ={}))
    names = {f.package for f in result.files}
    assert {"nnunetv2", "acvl-utils", "imagecodecs", "connected-components-3d", "offlinepack"} <= names
    assert not names & {"torch", "numpy", "triton"}  # the kernel has them: never shipped
    assert {"nnunetv2", "acvl-utils"} <= set(result.built)
    assert [f.optional for f in result.files if f.package == "imagecodecs"] == [True]
    for f in result.files:
        assert sha256_of(tmp_path / "out" / f.path) == f.sha256


def test_portable_lock_files_are_found_on_the_index_and_a_warm_rebuild_needs_no_index(
        local_index: LocalIndex, tmp_path: Path, self_wheel: Path) -> None:
    """`offlinepack lock --portable`: bare file names + hashes; build finds them on the index by name."""
    root = local_index.root
    wheel = make_wheel(root, "alpha", "1.0", tag="cp312-cp312-manylinux_2_28_x86_64")
    make_wheel(root, "alpha", "0.9")  # the page lists more than the one we want
    sdist = make_sdist(root, "beta-pkg", "2.0")
    lock = write_lock(tmp_path / "pylock.toml", [
        {"name": "alpha", "version": "1.0", "wheels": [
            f'{{name = "{wheel.name}", path = "{wheel.name}", hashes = {{sha256 = "{sha256_of(wheel)}"}}}}']},
        {"name": "beta-pkg", "version": "2.0",
         "sdist": f'{{path = "{sdist.name}", hashes = {{sha256 = "{sha256_of(sdist)}"}}}}'},
    ], tool="files-from-index = true")
    project = {"lock": lock, "out": tmp_path / "out", "cache": tmp_path / "cache"}
    result = build_wheelhouse(options(project, self_wheel, index_urls=(local_index.url,)))
    assert sorted(result.downloaded) == sorted([wheel.name, sdist.name]) and result.built == ("beta-pkg",)
    assert sorted(local_index.requests) == sorted(["/simple/alpha/", "/simple/beta-pkg/", f"/files/{wheel.name}",
                                                   f"/files/{sdist.name}"])
    # warm: every file is in the cache by hash, so the index is not even asked (it may be unreachable)
    again = build_wheelhouse(options(project, self_wheel, force=True, index_urls=(f"http://127.0.0.1:{_closed_port()}/simple/",)))
    assert again.downloaded == () and len(local_index.requests) == 4
    tool = tomllib.loads((tmp_path / "out" / "pylock.toml").read_text())["tool"]["offlinepack"]
    assert tool["wheelhouse"] is True and "files-from-index" not in tool


def test_portable_lock_file_missing_from_every_index_is_named(local_index: LocalIndex, tmp_path: Path,
                                                              self_wheel: Path) -> None:
    gone = make_wheel(tmp_path / "elsewhere", "alpha", "1.0")
    make_wheel(local_index.root, "alpha", "0.9")
    lock = write_lock(tmp_path / "pylock.toml", [
        {"name": "alpha", "version": "1.0",
         "wheels": [f'{{path = "{gone.name}", hashes = {{sha256 = "{sha256_of(gone)}"}}}}']}],
        tool="files-from-index = true")
    project = {"lock": lock, "out": tmp_path / "out", "cache": tmp_path / "cache"}
    dead = f"http://127.0.0.1:{_closed_port()}/simple/"
    with pytest.raises(OfflinepackError) as caught:
        build_wheelhouse(options(project, self_wheel, index_urls=(local_index.url, dead)))
    assert caught.value.problems == (
        f"cannot find {gone.name} (alpha) on the package index: {local_index.url}alpha/ (not listed); "
        f"{dead}alpha/ (Connection refused)",)
    assert not project["out"].exists()


def test_portable_lock_with_an_index_that_is_not_a_url_is_an_error_not_a_traceback(
        local_index: LocalIndex, tmp_path: Path, self_wheel: Path) -> None:
    wheel = make_wheel(local_index.root, "alpha", "1.0")
    lock = write_lock(tmp_path / "pylock.toml", [
        {"name": "alpha", "version": "1.0",
         "wheels": [f'{{path = "{wheel.name}", hashes = {{sha256 = "{sha256_of(wheel)}"}}}}']}],
        tool="files-from-index = true")
    project = {"lock": lock, "out": tmp_path / "out", "cache": tmp_path / "cache"}
    with pytest.raises(OfflinepackError) as caught:
        build_wheelhouse(options(project, self_wheel, index_urls=("not-a-url",)))
    assert caught.value.problems == (
        f"cannot find {wheel.name} (alpha) on the package index: not-a-url/alpha/ "
        "(not an http(s):// or file:// URL; pass --index-url https://HOST/simple/)",)
    assert not project["out"].exists()


def test_build_for_a_target_without_what_the_lock_counts_on_says_so(project: dict, self_wheel: Path) -> None:
    """The lock's `provided` (numpy 2.0.2, torch 2.8.0) checked against the build's target: bootstrap would
    refuse a missing one in the kernel, so the build names it now."""
    target = Target(**{**{k: getattr(make_target(), k) for k in ("name", "implementation", "python_version", "system",
                                                                  "machine", "libc", "libc_version", "markers",
                                                                  "tags")},
                       "installed": (InstalledDistribution(name="torch", version="2.9.0"),)})
    result = build_wheelhouse(options(project, self_wheel, target=target))
    assert [w for w in result.warnings if w.startswith("the lock")] == [
        "the lock counts on the target providing numpy 2.0.2, but target 'test-kernel' does not have it "
        "(bootstrap will refuse it): lock again with --target test-kernel",
        "the lock was resolved against torch 2.8.0, target 'test-kernel' has 2.9.0: lock again with --target "
        "test-kernel",
    ]
    same = Target(**{**{k: getattr(target, k) for k in ("name", "implementation", "python_version", "system",
                                                       "machine", "libc", "libc_version", "markers", "tags")},
                     "installed": (InstalledDistribution(name="NumPy", version="2.0.2"),
                                   InstalledDistribution(name="torch", version="2.8"))})
    again = build_wheelhouse(options(project, self_wheel, target=same, force=True))
    assert [w for w in again.warnings if w.startswith("the lock")] == []


def test_cache_dir_that_is_a_file_is_named_with_the_fix(project: dict, self_wheel: Path, tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("")
    with pytest.raises(OfflinepackError) as caught:
        build_wheelhouse(options(project, self_wheel, cache_dir=tmp_path / "not-a-folder"))
    assert caught.value.message.startswith(f"cannot create cache folder {tmp_path / 'not-a-folder'}: ")
    assert "--cache-dir DIR (or set $OFFLINEPACK_CACHE)" in caught.value.hint
    assert not project["out"].exists()


def test_index_urls_come_from_the_environment_then_pip() -> None:
    from offlinepack.wheelhouse.index import default_index_urls, project_files

    assert default_index_urls({"UV_INDEX_URL": "http://a/simple", "PIP_INDEX_URL": "http://b/simple",
                               "PIP_EXTRA_INDEX_URL": "http://c/simple http://a/simple"}) == (
        "http://a/simple", "http://c/simple")
    assert default_index_urls({"OFFLINEPACK_INDEX_URL": "http://o/simple", "UV_INDEX_URL": "http://a/simple"})[0] == \
        "http://o/simple"
    pip_default = default_index_urls({})
    assert len(pip_default) == 1 and pip_default[0].startswith("https://")  # pip's own default, named nowhere here
    page = ('<a href="../../files/x/alpha-1.0-py3-none-any.whl#sha256=ab">alpha-1.0-py3-none-any.whl</a>'
            '<a href="https://files.example/alpha%2B-1.0.tar.gz">x</a>')
    assert project_files("http://i/simple/alpha/", page) == {
        "alpha-1.0-py3-none-any.whl": "http://i/files/x/alpha-1.0-py3-none-any.whl",
        "alpha+-1.0.tar.gz": "https://files.example/alpha%2B-1.0.tar.gz"}
