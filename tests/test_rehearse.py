"""`offlinepack rehearse`: broken kernels the static part must catch (real wheels, real bootstrap.py, real
kernel folders), and one full replay: the notebook's cells run by a real Jupyter kernel in user, mount and
network namespaces, bootstrap installing offlinepack's own wheel, the demo model writing a valid zip."""

from __future__ import annotations

import json
import shutil
from importlib import metadata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from offlinepack.cli.app import app
from offlinepack.demo import DEMO_CHECKPOINT, write_demo_input
from offlinepack.kernel_kit.kernel_init import init_kernel
from offlinepack.kernel_kit.model_pack import pack_models
from offlinepack.kernel_kit.sandbox import namespaces_allowed
from offlinepack.wheelhouse.cache import default_cache_dir
from offlinepack.wheelhouse.selfwheel import offlinepack_wheel
from tests.support.wheels import make_wheel
from tests.support.kernels import write_wheelhouse

REPO = Path(__file__).resolve().parent.parent
TARGET = REPO / "lockfiles" / "demo" / "target.json"  # CPython 3.11, linux x86_64, torch/numpy/... installed
runner = CliRunner()


def make_kernel(tmp_path: Path, *, alpha_tag: str = "py3-none-any", with_beta: bool = True,
                with_imagecodecs: bool = True, model_arg: str = "alice/test-model") -> dict[str, Path]:
    src = tmp_path / "built"
    packages = [{"wheel": make_wheel(src, "alpha", "1.0", requires=["beta>=1.0", "numpy>=2"], tag=alpha_tag)}]
    if with_beta:
        packages.append({"wheel": make_wheel(src, "beta", "1.2")})
    if with_imagecodecs:
        packages.append({"wheel": make_wheel(src, "imagecodecs", "2026.3.6"), "optional": True})
    wheels = write_wheelhouse(tmp_path / "wheels", packages, [{"name": "numpy", "version": "2.4.6"}],
                              python_version="3.11.7")
    model = tmp_path / "model"
    shutil.copytree(DEMO_CHECKPOINT, model)
    kernel = init_kernel(tmp_path / "kernel", wheels="alice/test-wheels", models=[model_arg], competition=None).output
    return {"wheels": wheels, "model": model, "kernel": kernel}


def rehearse(paths: dict[str, Path], *extra: str, wheels_ref: str = "alice/test-wheels") -> tuple[int, str]:
    result = runner.invoke(app, ["rehearse", str(paths["kernel"]), "--target", str(TARGET), "--static-only",
                                 "--dataset", f"{wheels_ref}={paths['wheels']}",
                                 "--dataset", f"alice/test-model={paths['model']}", *extra])
    return result.exit_code, result.output


def test_a_sound_kernel_passes_with_the_exact_bootstrap_plan(tmp_path):
    code, output = rehearse(make_kernel(tmp_path))
    assert code == 0, output
    assert "✓ bootstrap plan: with demo-kernel's 27 installed distributions: install 3 (alpha 1.0, beta 1.2, " \
           "imagecodecs 2026.3.6); provided 1 (numpy 2.4.6)" in output
    assert "✓ dependencies: every Requires-Dist of the 3 wheel(s) to install" in output
    assert "✓ model alice/test-model: built-in U-Net" in output
    assert "ready to push" in output


def test_wheel_for_the_wrong_python(tmp_path):
    code, output = rehearse(make_kernel(tmp_path, alpha_tag="cp312-cp312-manylinux_2_17_x86_64"))
    assert code == 2, output
    assert "✗ bootstrap: alpha: incompatible: no file for this interpreter: " \
           "alpha-1.0-cp312-cp312-manylinux_2_17_x86_64.whl (cp312 wheel, kernel is cp311)" \
           in output
    assert "first failure: bootstrap: alpha: incompatible" in output
    assert "fix: rebuild the wheelhouse for this kernel's Python" in output


def test_missing_transitive_dependency(tmp_path):
    code, output = rehearse(make_kernel(tmp_path, with_beta=False))
    assert code == 2, output
    assert ("first failure: dependency beta: alpha 1.0 requires beta>=1.0: neither the wheelhouse nor the target "
            "has it") in output
    assert "fix: add beta to the requirements, then lock and build again" in output


def test_model_path_not_attached_and_missing_inside_its_dataset(tmp_path):
    paths = make_kernel(tmp_path, model_arg="alice/test-model:unet-v2")
    notebook = json.loads((paths["kernel"] / "notebook.ipynb").read_text())
    run_cell = notebook["cells"][4]
    run_cell["source"].append('\nstep(sys.executable, "-m", "offlinepack", "run", "--model", '
                              '"/kaggle/input/other-model/fold_0", "-o", SUBMISSION)\n')
    (paths["kernel"] / "notebook.ipynb").write_text(json.dumps(notebook))
    code, output = rehearse(paths)
    assert code == 2, output
    assert "✗ cell 2: kaggle_input('alice/test-model:unet-v2'): unet-v2 does not exist in alice/test-model" in output
    assert "✗ cell 5: /kaggle/input/other-model/fold_0: not under any attached source's mount point" in output
    assert "✗ model alice/test-model:unet-v2:" in output


def test_dataset_slug_typo(tmp_path):
    code, output = rehearse(make_kernel(tmp_path), wheels_ref="alice/test-whels")
    assert code == 2, output
    assert ("✗ source alice/test-wheels: kernel-metadata.json attaches alice/test-wheels, which is not what was given "
            "(alice/test-whels)") in output
    assert "✗ source alice/test-whels: alice/test-whels is not attached in kernel-metadata.json (it lists " \
           "alice/test-wheels: a slug typo?)" in output


def test_a_cell_writing_outside_kaggle_working(tmp_path):
    paths = make_kernel(tmp_path)
    notebook = json.loads((paths["kernel"] / "notebook.ipynb").read_text())
    notebook["cells"].append({"cell_type": "code", "id": "mine", "metadata": {}, "execution_count": None,
                              "outputs": [], "source": ['open("/kaggle/input/test-model/notes.txt", "w").write("x")\n',
                                                        'step(sys.executable, "-m", "offlinepack", "run", "-o", '
                                                        '"/tmp/submission.zip")\n']})
    (paths["kernel"] / "notebook.ipynb").write_text(json.dumps(notebook))
    code, output = rehearse(paths)
    assert code == 2, output
    assert "✗ cell 8: writes /kaggle/input/test-model/notes.txt: output outside /kaggle/working" in output
    assert "✗ cell 8: writes /tmp/submission.zip: output outside /kaggle/working" in output
    assert "fix: write the submission and other outputs under /kaggle/working" in output


def test_imagecodecs_less_kernel_works_with_the_pillow_fallback_named(tmp_path):
    code, output = rehearse(make_kernel(tmp_path, with_imagecodecs=False))
    assert code == 1, output
    assert "! bootstrap: imagecodecs: absent: not installed and no dataset carries it; lost: tifffile cannot decode " \
           "LZW without it; fallback: LZW volumes are read with Pillow page by page" in output
    assert "works with warnings" in output


def test_bad_arguments(tmp_path):
    paths = make_kernel(tmp_path)
    result = runner.invoke(app, ["rehearse", str(paths["kernel"]), "--target", str(TARGET),
                                 "--dataset", "alice/test-wheels", "--dataset", f"alice/x={tmp_path / 'nope'}"])
    assert result.exit_code == 2
    assert "error: --dataset 'alice/test-wheels' must be owner/slug=PATH" in result.output
    assert f"error: --dataset alice/x: {tmp_path / 'nope'} is not a folder" in result.output
    result = runner.invoke(app, ["rehearse", str(tmp_path), "--target", str(TARGET)])
    assert result.exit_code == 2 and f"error: {tmp_path} has no kernel-metadata.json" in result.output


def _target_with(tmp_path: Path, names: list[str]) -> Path:
    """The demo target plus these distributions at this environment's versions (their wheels are not shipped)."""
    data = json.loads(TARGET.read_text())
    data["installed"] += [{"name": n, "version": metadata.version(n), "requires": []} for n in names]
    path = tmp_path / "kernel.json"
    path.write_text(json.dumps(data))
    return path


def test_full_replay_of_the_demo_kernel_offline(tmp_path):
    if not namespaces_allowed()[0]:
        pytest.skip("user + mount + network namespaces (unshare -rmn) are not permitted here")
    own = offlinepack_wheel(default_cache_dir()).path
    wheels = write_wheelhouse(tmp_path / "wheels", [{"wheel": own}], [{"name": "numpy", "version": "2.4.6"}],
                              python_version="3.11.7")
    model = pack_models([DEMO_CHECKPOINT], tmp_path / "model", dataset_id="alice/demo-model").output
    competition = write_demo_input(tmp_path / "competition")
    kernel = init_kernel(tmp_path / "kernel", wheels="alice/demo-wheels", models=["alice/demo-model"],
                         run_args="--mirror-axes none").output
    target = _target_with(tmp_path, ["safetensors", "connected-components-3d", "imagecodecs"])
    work = tmp_path / "work"
    result = runner.invoke(app, ["rehearse", str(kernel), "--target", str(target), "--dataset",
                                 f"alice/demo-wheels={wheels}", "--dataset", f"alice/demo-model={model}",
                                 "--competition-data", str(competition), "--work", str(work), "--json"])
    report = json.loads(result.output)
    assert result.exit_code == 0, json.dumps(report, indent=1)
    assert report["isolation"].startswith("user, mount and network namespaces")
    assert [c["status"] for c in report["cells"]] == ["ok"] * 6
    install = report["cells"][1]["tail"]
    assert any("offlinepack 0.1.0: installed now from offlinepack-0.1.0-py3-none-any.whl" in line for line in install)
    assert report["validation"]["valid"] is True
    # the kernel's steps ran the wheel bootstrap installed, not this checkout
    assert report["shipped_offlinepack"]["status"] == "ok", report["shipped_offlinepack"]
    assert "/kernel-python/lib/python3.11/site-packages/offlinepack" in report["shipped_offlinepack"]["detail"]
    executed = json.loads((work / "notebook.executed.ipynb").read_text())
    assert any("valid:" in "".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))
    record = json.loads((work / "working" / "offlinepack-runs.jsonl").read_text().splitlines()[-1])
    assert record["status"] == "ok"
    assert record["models"][0]["path"] == "/kaggle/input/demo-model/config.json"
    assert [(p["manifest"], p["dataset_id"]) for p in record["model_packs"]] == [
        ("/kaggle/input/demo-model/offlinepack-models.json", "alice/demo-model")]
    # the cells saw no network: the ledger cell printed the record, which says where inputs were read
    assert record["input"]["root"].startswith("/kaggle/input/")


def test_a_kernel_that_runs_the_checkout_instead_of_the_wheel_fails(tmp_path):
    """The notebook's steps run from the checkout (as `python -m offlinepack` from the repo root would): the
    checkout's offlinepack shadows the wheel bootstrap installed, and the rehearsal says so."""
    if not namespaces_allowed()[0]:
        pytest.skip("user + mount + network namespaces (unshare -rmn) are not permitted here")
    own = offlinepack_wheel(default_cache_dir()).path
    wheels = write_wheelhouse(tmp_path / "wheels", [{"wheel": own}], [{"name": "numpy", "version": "2.4.6"}],
                              python_version="3.11.7")
    model = pack_models([DEMO_CHECKPOINT], tmp_path / "model", dataset_id="alice/demo-model").output
    kernel = init_kernel(tmp_path / "kernel", wheels="alice/demo-wheels", models=["alice/demo-model"],
                         competition=None).output
    notebook_path = kernel / "notebook.ipynb"
    notebook = json.loads(notebook_path.read_text())
    # setup, then install only (seconds), from the checkout as working folder
    notebook["cells"] = notebook["cells"][:3]
    notebook["cells"][1]["source"] += ["\n", f"os.chdir({str(REPO)!r})\n"]
    notebook_path.write_text(json.dumps(notebook))
    target = _target_with(tmp_path, ["safetensors", "connected-components-3d", "imagecodecs"])
    result = runner.invoke(app, ["rehearse", str(kernel), "--target", str(target), "--dataset",
                                 f"alice/demo-wheels={wheels}", "--dataset", f"alice/demo-model={model}",
                                 "--work", str(tmp_path / "work"), "--json"])
    report = json.loads(result.output)
    assert [c["status"] for c in report["cells"]] == ["ok", "ok"], json.dumps(report, indent=1)
    assert result.exit_code == 2
    assert report["shipped_offlinepack"]["status"] == "fail"
    assert report["first_failure"].startswith(f"shipped offlinepack: the kernel imported offlinepack from "
                                              f"{REPO / 'offlinepack'}, which is not an installed distribution")
    assert "checkout" in report["fix"]


def test_the_first_failing_cell_is_named_with_the_hint_the_command_printed(tmp_path):
    from offlinepack.kernel_kit.rehearse import CellResult, Rehearsal
    from offlinepack.kernel_kit.rehearse_static import Check

    cells = (CellResult(cell=3, first_line="step(...bootstrap.py)", status="ok", seconds=3.0, tail=("ready",), error=None),
             CellResult(cell=5, first_line="model_args = ...", status="error", seconds=9.0,
                        tail=("error: cannot start the run", "error: model path /kaggle/input/m/x does not exist",
                              "hint: check the paths; in a kernel, attached datasets and models are under /kaggle/input/"),
                        error="RuntimeError: exit code 2 (expected 0)"),
             CellResult(cell=6, first_line="step(...validate)", status="skipped", seconds=0.0, tail=(), error=None))
    result = Rehearsal(kernel_dir=tmp_path, checks=(Check(name="bootstrap plan", status="ok", detail="."),), cells=cells,
                       validation=None, isolation="namespaces", python="3.11.7", work=tmp_path, warnings=())
    assert result.exit_code == 2
    assert result.failure == ("cell 5 (model_args = ...): error: cannot start the run; error: model path "
                              "/kaggle/input/m/x does not exist",
                              "check the paths; in a kernel, attached datasets and models are under /kaggle/input/")
    ok_cells = tuple(CellResult(cell=c.cell, first_line=c.first_line, status="ok", seconds=1.0, tail=(), error=None)
                     for c in cells)
    no_zip = Rehearsal(kernel_dir=tmp_path, checks=(), cells=ok_cells, validation=None, isolation="", python=None,
                       work=tmp_path, warnings=())
    assert no_zip.failure[0].startswith("no submission: the notebook finished without writing")
    warned = Rehearsal(kernel_dir=tmp_path, checks=(), cells=ok_cells, validation={"valid": True}, isolation="",
                       python=None, work=tmp_path, warnings=("fallback root",))
    assert warned.failure is None and warned.exit_code == 1


def test_a_damaged_pack_manifest_fails_its_model_check_without_a_traceback(tmp_path: Path) -> None:
    from offlinepack.kernel_kit.rehearse_static import check_model_folder
    from offlinepack.ledger.facts import MODEL_PACK_MANIFEST

    model = tmp_path / "pack" / "demo"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"")
    for damaged in ('{"format": "offlinepack-models", "models": [', '[1, 2]', '{"format": "other"}'):
        (tmp_path / "pack" / MODEL_PACK_MANIFEST).write_text(damaged)
        checks = check_model_folder(model, "you/pack")
        assert any(c.status == "fail" and "damaged or not a model pack manifest" in c.detail for c in checks), checks
