"""runtime/bootstrap.py for real: kernel-like venvs, a read-only /kaggle tree, no network (unshare -rn)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.pythons import find_python
from tests.support.wheels import make_wheel
from tests.support.kernels import (
    BOOTSTRAP, by_name, clone_kernel, make_base_kernel, make_read_only, make_writable, offline_prefix, report_of,
    run_bootstrap, site_packages, venv_python, write_wheelhouse,
)

PREINSTALLED = (("alpha", "1.0"), ("kernelpkg", "2.0"))


@pytest.fixture(scope="session")
def base_kernel(tmp_path_factory) -> Path:
    return make_base_kernel(tmp_path_factory.mktemp("base") / "kernel", "3.12", PREINSTALLED)


@pytest.fixture
def kernel(base_kernel, tmp_path) -> Path:
    return clone_kernel(base_kernel, tmp_path / "kernel")


@pytest.fixture
def kaggle(tmp_path):
    """A /kaggle tree: the wheelhouse under input/datasets/<owner>/<slug>/ and a plain wheel folder under input/<slug>/."""
    root = tmp_path / "kaggle"
    (root / "working").mkdir(parents=True)
    yield root
    make_writable(root / "input") if (root / "input").exists() else None


def _wheels(tmp_path: Path) -> dict[str, Path]:
    src = tmp_path / "src"
    return {
        "beta": make_wheel(src, "beta", "1.0", files={"beta-1.0.dist-info/entry_points.txt": "[console_scripts]\nbeta-cli = beta:main\n"}),
        "gamma311": make_wheel(src, "gamma", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64"),
        "gamma312": make_wheel(src, "gamma", "1.0", tag="cp312-cp312-manylinux_2_17_x86_64"),
        "imagecodecs": make_wheel(src, "imagecodecs", "2025.8.2", tag="cp312-cp312-manylinux_2_28_x86_64"),
        "alpha": make_wheel(src / "other", "alpha", "1.0"),
    }


def _standard_house(tmp_path: Path, kaggle: Path) -> Path:
    w = _wheels(tmp_path)
    house = write_wheelhouse(kaggle / "input" / "datasets" / "someone" / "vesuvius-wheels", [
        {"wheel": w["beta"]},
        {"wheel": w["gamma311"], "extra_files": [w["gamma312"]]},
        {"wheel": w["imagecodecs"], "optional": True},
        {"wheel": w["alpha"]},  # already in the kernel at the same version: satisfied, not reinstalled
    ], provided=[{"name": "kernelpkg", "version": "2.0"}])
    # a second, plain wheel folder also carrying beta (2.0): the manifest's file must win
    make_wheel(kaggle / "input" / "old-wheels", "beta", "2.0")
    make_read_only(kaggle / "input")
    return house


def test_installs_exactly_the_missing_offline_and_second_run_is_a_noop(kernel, kaggle, tmp_path):
    offline = offline_prefix()
    house = _standard_house(tmp_path, kaggle)
    site = site_packages(kernel)
    record_before = {name: (site / f"{name}-{v}.dist-info" / "RECORD").read_bytes() for name, v in PREINSTALLED}

    proc = run_bootstrap(kernel, house / "bootstrap.py", "--kaggle-root", str(kaggle), "--json", prefix=offline)
    report = report_of(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pk = by_name(report)
    assert pk["beta"]["status"] == "installed" and pk["beta"]["version"] == "1.0"
    assert pk["gamma"]["status"] == "installed" and pk["gamma"]["file"].endswith("cp312-cp312-manylinux_2_17_x86_64.whl")
    assert pk["imagecodecs"]["status"] == "installed"
    assert pk["alpha"]["status"] == "satisfied"
    assert pk["kernelpkg"]["status"] == "provided"
    assert report["install"]["installer"] == "uv" and report["install"]["kind"] == "site-packages"
    assert sorted(report["install"]["files"]) == sorted(
        ["beta-1.0-py3-none-any.whl", "gamma-1.0-cp312-cp312-manylinux_2_17_x86_64.whl",
         "imagecodecs-2025.8.2-cp312-cp312-manylinux_2_28_x86_64.whl"])
    searched = [(p["origin"], p["path"], p["found"]) for p in report["searched"]]
    assert ("bootstrap.py's folder", str(house), "offlinepack.json, 5 wheels") in searched
    assert ("Kaggle inputs", str(house), f"same folder as {house}") in searched
    assert ("Kaggle inputs", str(kaggle / "input" / "old-wheels"), "no manifest, 1 wheels (not installed: an "
            "offlinepack.json wheelhouse was found; its files may still be used)") in searched

    # nothing compiled to .pyc; RECORD points at the console script where it now lives
    assert not list((site / "beta").rglob("*.pyc"))
    assert (kernel / "bin" / "beta-cli").exists()
    assert "../../../bin/beta-cli" in (site / "beta-1.0.dist-info" / "RECORD").read_text()
    check = venv_python(kernel, "import beta, gamma, imagecodecs, alpha; print(beta.__version__, gamma.__version__)")
    assert check.stdout.split() == ["1.0", "1.0"], check.stderr
    assert {name: (site / f"{name}-{v}.dist-info" / "RECORD").read_bytes() for name, v in PREINSTALLED} == record_before
    assert not list(site.glob(".offlinepack-*"))

    # a second run installs nothing (its speed, < 0.5 s, is measured by scripts/bench_bootstrap.py "bootstrap no-op")
    again = run_bootstrap(kernel, house / "bootstrap.py", "--kaggle-root", str(kaggle), "--json", prefix=offline)
    second = report_of(again)
    assert again.returncode == 0
    assert second["install"] is None
    assert {p["status"] for p in second["packages"]} == {"satisfied", "provided"}


def test_text_report_says_where_it_looked(kernel, kaggle, tmp_path):
    house = _standard_house(tmp_path, kaggle)
    proc = run_bootstrap(kernel, house / "bootstrap.py", "--kaggle-root", str(kaggle), "--installer", "pip")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "looked for wheel datasets:" in out and str(house) in out and "old-wheels" in out
    assert "✓ beta 1.0: installed now from beta-1.0-py3-none-any.whl" in out
    assert "with pip" in out and "ready (exit 0)" in out
    assert venv_python(kernel, "import gamma").returncode == 0


def test_corrupt_and_wrong_python_wheels_are_refused_with_reasons(kernel, kaggle, tmp_path):
    offline = offline_prefix()
    src = tmp_path / "src"
    good = make_wheel(src, "delta", "1.0")
    house = write_wheelhouse(kaggle / "input" / "wheels", [
        {"wheel": good},
        {"wheel": make_wheel(src, "eps", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64")},
        {"wheel": make_wheel(src, "zeta", "1.0", tag="cp312-cp312-manylinux_2_99_x86_64")},
        {"wheel": make_wheel(src, "ok-pkg", "1.0")},
    ])
    with open(house / good.name, "ab") as handle:  # corrupt after the manifest recorded its hash
        handle.write(b"garbage")
    make_read_only(kaggle / "input")
    proc = run_bootstrap(kernel, house / "bootstrap.py", "--kaggle-root", str(kaggle), "--json", prefix=offline)
    report = report_of(proc)
    assert proc.returncode == 2
    pk = by_name(report)
    assert pk["delta"]["status"] == "hash-mismatch" and "the lock says" in pk["delta"]["detail"]
    assert pk["eps"]["status"] == "incompatible" and "cp311 wheel, kernel is cp312" in pk["eps"]["detail"]
    assert pk["zeta"]["status"] == "incompatible" and "needs glibc 2.99" in pk["zeta"]["detail"]
    assert all(pk[n]["fix"] for n in ("delta", "eps", "zeta"))
    assert pk["ok_pkg"]["status"] == "installed"
    assert venv_python(kernel, "import delta").returncode != 0
    assert venv_python(kernel, "import eps").returncode != 0


def test_optional_imagecodecs_absent_is_a_degradation_not_a_failure(kernel, kaggle, tmp_path):
    src = tmp_path / "src"
    house = write_wheelhouse(kaggle / "input" / "wheels", [
        {"wheel": make_wheel(src, "imagecodecs", "2025.8.2", tag="cp311-cp311-manylinux_2_28_x86_64"), "optional": True},
        {"wheel": make_wheel(src, "alpha", "1.0")},
    ])
    proc = run_bootstrap(kernel, house / "bootstrap.py", "--kaggle-root", str(kaggle))
    assert proc.returncode == 1, proc.stdout
    line = next(l for l in proc.stdout.splitlines() if l.strip().startswith("! imagecodecs"))
    assert "cp311 wheel, kernel is cp312" in line
    assert "Pillow" in line and "ready with degradations (exit 1)" in proc.stdout


def test_no_dataset_lists_every_path_probed(kernel, tmp_path):
    script = tmp_path / "lonely" / "bootstrap.py"
    script.parent.mkdir()
    script.write_bytes(BOOTSTRAP.read_bytes())
    proc = run_bootstrap(kernel, script, "--kaggle-root", str(tmp_path / "kaggle"), "--wheels", str(tmp_path / "nope"),
                         env={"OFFLINEPACK_WHEELS": str(tmp_path / "also-nope")})
    assert proc.returncode == 2
    for probed in ("nope: does not exist", "also-nope: does not exist", "lonely: no wheels", "kaggle/input: does not exist"):
        assert probed in proc.stdout
    assert "Add Input" in proc.stdout


def test_unreadable_manifest_is_reported(kernel, tmp_path):
    folder = tmp_path / "wheels"
    folder.mkdir()
    (folder / "offlinepack.json").write_text("{not json")
    proc = run_bootstrap(kernel, BOOTSTRAP, "--wheels", str(folder), "--kaggle-root", str(tmp_path), "--json")
    report = report_of(proc)
    assert proc.returncode == 2
    assert any("unreadable manifest" in p for p in report["problems"])


def test_read_only_site_packages_goes_to_a_target_folder_on_pythonpath(kernel, kaggle, tmp_path):
    offline = offline_prefix()
    house = _standard_house(tmp_path, kaggle)
    site = site_packages(kernel)
    # a real read-only mount over site-packages (root ignores chmod), inside a private mount namespace
    script = (f"mount --bind {site} {site} && mount -o remount,bind,ro {site} && "
              f"{kernel}/bin/python {house}/bootstrap.py --kaggle-root {kaggle} --installer pip --json")
    proc = subprocess.run(["unshare", "-rmn", "sh", "-c", script], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home")})
    if "mount" in proc.stderr and proc.returncode != 0 and not proc.stdout:
        pytest.skip(f"cannot make a read-only bind mount here: {proc.stderr.strip()}")
    report = report_of(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    target = kaggle / "working" / ".offlinepack-site"
    assert report["install"]["kind"] == "target folder" and report["install"]["target"] == str(target)
    assert report["install"]["pythonpath"] == str(target)
    assert "read-only" in report["install"]["note"]
    assert (target / "beta" / "__init__.py").exists() and not (site / "beta").exists()
    assert venv_python(kernel, "import beta, gamma", env={"PYTHONPATH": str(target)}).returncode == 0
    # the next run (no read-only mount needed now: pass the folder) sees them as satisfied
    again = report_of(run_bootstrap(kernel, house / "bootstrap.py", "--kaggle-root", str(kaggle), "--json",
                                    "--target", str(target), prefix=offline))
    assert again["install"]["files"] == [] and by_name(again)["beta"]["status"] == "satisfied"


def test_snapshot_to_a_folder_or_an_unwritable_place_is_an_error_not_a_traceback(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for out, expected in ((tmp_path, "that is a folder; give a file name"), (blocker / "k.json", "error: cannot write")):
        proc = subprocess.run([sys.executable, str(BOOTSTRAP), "snapshot", "-o", str(out)], capture_output=True, text=True)
        assert proc.returncode == 2 and expected in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert blocker.read_text() == "x" and list(tmp_path.iterdir()) == [blocker]


def test_target_that_cannot_be_created_fails_without_a_pythonpath_line(kernel, kaggle, tmp_path):
    house = _standard_house(tmp_path, kaggle)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    proc = run_bootstrap(kernel, house / "bootstrap.py", "--kaggle-root", str(kaggle), "--target", str(blocker / "site"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "install failed, nothing was changed" in proc.stdout and "not ready (exit 2)" in proc.stdout
    assert "see the install error below" in proc.stdout
    assert "later processes" not in proc.stdout  # no PYTHONPATH advice for a folder that holds nothing


def test_a_kill_mid_install_is_rolled_back_and_repaired(kernel, kaggle, tmp_path):
    offline = offline_prefix()
    house = _standard_house(tmp_path, kaggle)
    site = site_packages(kernel)
    killed = run_bootstrap(kernel, house / "bootstrap.py", "--kaggle-root", str(kaggle), "--json", prefix=offline,
                           env={"OFFLINEPACK_FAULT_KILL_AFTER_MOVES": "2"})
    assert killed.returncode == -9 or killed.returncode == 137
    assert (site / ".offlinepack-journal.json").exists()
    # nothing is registered half-way: no dist-info of the new packages exists yet (they are moved last)
    assert not list(site.glob("beta-1.0.dist-info")) and not list(site.glob("gamma-1.0.dist-info"))
    proc = run_bootstrap(kernel, house / "bootstrap.py", "--kaggle-root", str(kaggle), "--json", prefix=offline)
    report = report_of(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report["repaired"], "the interrupted install should have been rolled back"
    assert not (site / ".offlinepack-journal.json").exists()
    assert venv_python(kernel, "import importlib.metadata as m; print(m.version('beta'), m.version('gamma'))").stdout.split() == ["1.0", "1.0"]


def test_run_hands_over_to_offlinepack_run_and_refuses_when_not_ready(kernel, kaggle, tmp_path):
    offline = offline_prefix()
    src = tmp_path / "src"
    fake_cli = make_wheel(src, "offlinepack", "0.1.0", files={
        "offlinepack/__main__.py": "import os, sys, json\nprint('HANDOVER ' + json.dumps(sys.argv[1:]))\n"
                                   "print('WHEELS ' + os.environ.get('OFFLINEPACK_WHEELS', ''))\n"})
    house = write_wheelhouse(kaggle / "input" / "wheels", [{"wheel": fake_cli},
                                                           {"wheel": make_wheel(src, "imagecodecs", "1.0")}])
    make_read_only(kaggle / "input")
    proc = run_bootstrap(kernel, house / "bootstrap.py", "--kaggle-root", str(kaggle), "run", "-o", "x.zip",
                         "--json-not-mine", prefix=offline)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'HANDOVER ["run", "-o", "x.zip", "--json-not-mine"]' in proc.stdout
    # the run's readiness check and ledger see the wheelhouse bootstrap used, wherever it was found
    assert f"WHEELS {house}\n" in proc.stdout
    # --json before run: stdout stays the run's alone (one parseable document), bootstrap's report on stderr
    quiet = run_bootstrap(kernel, house / "bootstrap.py", "--kaggle-root", str(kaggle), "--json", "run", prefix=offline)
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert quiet.stdout.splitlines()[0] == 'HANDOVER ["run"]'
    searched = [(p["origin"], p["found"]) for p in json.loads(quiet.stderr)["searched"]]
    assert ("Kaggle inputs", f"same folder as {house}") in searched
    assert not any(found.startswith("no wheel dataset") for _, found in searched), searched
    bogus = run_bootstrap(kernel, house / "bootstrap.py", "--kaggle-root", str(kaggle), env={"OFFLINEPACK_INSTALLER": "pipx"})
    assert bogus.returncode == 2 and "OFFLINEPACK_INSTALLER is uv or pip, not 'pipx'" in bogus.stderr
    broken = tmp_path / "broken"
    write_wheelhouse(broken, [{"wheel": make_wheel(src, "needs-py311", "1.0", tag="cp311-cp311-linux_x86_64")}])
    refused = run_bootstrap(kernel, house / "bootstrap.py", "--kaggle-root", str(kaggle), "--wheels", str(broken),
                            "run", prefix=offline)
    assert refused.returncode == 2 and "HANDOVER" not in refused.stdout
    assert "not starting `offlinepack run`" in refused.stderr


@pytest.mark.parametrize("minor", ["3.8", "3.13"])
def test_snapshot_matches_packaging_tags(minor, tmp_path):
    python = find_python(minor)
    if python is None:
        pytest.skip(f"no Python {minor}")
    out = tmp_path / "kernel.json"
    proc = subprocess.run([str(python), str(BOOTSTRAP), "snapshot", "-o", str(out), "--name", "probe"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    from offlinepack.kernel_target import load_target_file

    target = load_target_file(out)  # the shared model validates every field
    assert target.name == "probe" and target.python_minor == minor
    assert target.markers["python_version"] == minor
    # reference: packaging >= 26.3 where it runs (3.10+), else pip's vendored packaging (older: no cpXY-none-any,
    # linux_* last) compared as a set
    import packaging

    pkg_dir = str(Path(packaging.__file__).parent.parent)
    code = ("import sys, json\n"
            "try:\n    from packaging import tags\nexcept Exception:\n    from pip._vendor.packaging import tags\n"
            "print(json.dumps([str(t) for t in tags.sys_tags()]))")
    env = {"PYTHONPATH": pkg_dir} if minor != "3.8" else {}
    ref = json.loads(subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=env, check=True).stdout)
    if minor == "3.8":
        assert set(ref) <= set(target.tags)
        manylinux = [t for t in target.tags if "manylinux" in t]
        assert manylinux == [t for t in ref if "manylinux" in t]
    else:
        assert list(target.tags) == ref


@pytest.mark.parametrize("minor", ["3.8", "3.13"])
def test_installs_on_the_oldest_and_newest_python(minor, tmp_path):
    """Python 3.8 and 3.13 kernels (no pip in them: uv does the install)."""
    offline = offline_prefix()
    python = find_python(minor)
    if python is None:
        pytest.skip(f"no Python {minor}")
    venv = tmp_path / "kernel"
    subprocess.run([str(python), "-m", "venv", "--without-pip", str(venv)], check=True)
    house = write_wheelhouse(tmp_path / "kaggle" / "input" / "wheels", [
        {"wheel": make_wheel(tmp_path / "src", "beta", "1.0")},
        {"wheel": make_wheel(tmp_path / "src", "imagecodecs", "1.0", tag=f"cp{minor.replace('.', '')}-cp{minor.replace('.', '')}-manylinux_2_17_x86_64")},
    ], python_version=minor + ".0")
    proc = run_bootstrap(venv, house / "bootstrap.py", "--kaggle-root", str(tmp_path / "kaggle"), "--json", prefix=offline)
    report = report_of(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {p["name"]: p["status"] for p in report["packages"]} == {"beta": "installed", "imagecodecs": "installed"}
    assert venv_python(venv, "import beta, imagecodecs").returncode == 0


def test_uv_carried_by_the_dataset_is_used_when_the_kernel_has_neither_uv_nor_pip(tmp_path):
    offline = offline_prefix()
    from tests.support.kernels import UV

    if UV is None:
        pytest.skip("no uv binary to pack")
    python = find_python("3.12")
    if python is None:
        pytest.skip("no Python 3.12")
    venv = tmp_path / "kernel"
    subprocess.run([str(python), "-m", "venv", "--without-pip", str(venv)], check=True)
    house = write_wheelhouse(tmp_path / "kaggle" / "input" / "wheels", [{"wheel": make_wheel(tmp_path / "src", "beta", "1.0")},
                                                                       {"wheel": make_wheel(tmp_path / "src", "imagecodecs", "1.0")}])
    # a uv wheel laid out like the real one (the binary under uv-X.data/scripts/), stored uncompressed for speed
    import zipfile

    with zipfile.ZipFile(house / "uv-0.0.1-py3-none-manylinux_2_17_x86_64.whl", "w", zipfile.ZIP_STORED) as archive:
        archive.write(UV, "uv-0.0.1.data/scripts/uv")
        archive.writestr("uv-0.0.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: uv\nVersion: 0.0.1\n")
    proc = run_bootstrap(venv, house / "bootstrap.py", "--kaggle-root", str(tmp_path / "kaggle"), "--json",
                         uv_on_path=False, prefix=offline, env={"TMPDIR": str(tmp_path)})
    report = report_of(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report["install"]["installer"] == "uv" and "uv" not in by_name(report)
    assert venv_python(venv, "import beta").returncode == 0
    # without that wheel: neither uv nor pip, a clear not-ready
    (house / "uv-0.0.1-py3-none-manylinux_2_17_x86_64.whl").unlink()
    venv2 = tmp_path / "kernel2"
    subprocess.run([str(python), "-m", "venv", "--without-pip", str(venv2)], check=True)
    proc = run_bootstrap(venv2, house / "bootstrap.py", "--kaggle-root", str(tmp_path / "kaggle"), "--json",
                         uv_on_path=False, prefix=offline)
    second = report_of(proc)
    assert proc.returncode == 2 and any("neither uv nor pip" in p for p in second["problems"])
    assert by_name(second)["beta"]["status"] == "install-failed" and by_name(second)["beta"]["severity"] == "fail"


def test_read_only_system_site_packages_goes_to_the_user_site(tmp_path):
    """A system interpreter (not a venv, like Kaggle's) whose site-packages is a read-only mount: the user site
    is used, and a new process picks it up with no PYTHONPATH."""
    offline_prefix()
    python = find_python("3.12")
    if python is None:
        pytest.skip("no Python 3.12")
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    house = write_wheelhouse(tmp_path / "kaggle" / "input" / "wheels", [
        {"wheel": make_wheel(tmp_path / "src", "usersite-probe", "1.0")}, {"wheel": make_wheel(tmp_path / "src", "imagecodecs", "1.0")}])
    home = tmp_path / "home"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}
    from tests.support.kernels import UV

    script = (f"mount --bind {purelib} {purelib} && mount -o remount,bind,ro {purelib} && "  # && : never run unprotected
              f"OFFLINEPACK_INSTALLER=uv PATH={Path(UV).parent}:$PATH {python} {house}/bootstrap.py "
              f"--kaggle-root {tmp_path / 'kaggle'} --json")
    proc = subprocess.run(["unshare", "-rmn", "sh", "-c", script], capture_output=True, text=True, env=env)
    if proc.returncode != 0 and not proc.stdout:
        pytest.skip(f"cannot make a read-only bind mount here: {proc.stderr.strip()}")
    report = report_of(proc)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert report["install"]["kind"] == "user site" and report["install"]["target"].startswith(str(home))
    assert "pythonpath" not in report["install"] and "site.addsitedir" in report["install"]["note"]
    assert not Path(purelib, "usersite_probe").exists()
    check = subprocess.run([str(python), "-c", "import usersite_probe; print(usersite_probe.__file__)"],
                           capture_output=True, text=True, env=env)
    assert check.stdout.startswith(str(home)), check.stderr
