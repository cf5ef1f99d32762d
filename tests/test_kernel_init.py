"""`offlinepack kernel init`: kernel-metadata.json in the Kaggle CLI's format, an nbformat-4 notebook, Kaggle's names."""

from __future__ import annotations

import json

import nbformat
import pytest
from typer.testing import CliRunner

from offlinepack.cli.app import app
from offlinepack.kernel_kit.kernel_metadata import slug_of_title

runner = CliRunner()


def test_writes_metadata_and_a_valid_notebook(tmp_path):
    out = tmp_path / "kernel"
    result = runner.invoke(app, ["kernel", "init", "-o", str(out), "--wheels", "alice/vesuvius-wheels",
                                 "--model", "alice/m7-models:Dataset001__nnUNetTrainer__3d_fullres",
                                 "--model", "google/unet/pytorch/default/3", "--run-args", "--folds 0 --threshold 0.4"])
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "kernel-metadata.json").read_text())
    assert meta == {
        "id": "alice/vesuvius-offlinepack", "title": "Vesuvius Offlinepack", "code_file": "notebook.ipynb",
        "language": "python", "kernel_type": "notebook", "is_private": True, "enable_gpu": True, "enable_tpu": False,
        "enable_internet": False, "dataset_sources": ["alice/vesuvius-wheels", "alice/m7-models"],
        "competition_sources": ["vesuvius-challenge-surface-detection"], "kernel_sources": [],
        "model_sources": ["google/unet/pytorch/default/3"]}
    assert slug_of_title(meta["title"]) == "vesuvius-offlinepack"
    notebook = nbformat.read(out / "notebook.ipynb", as_version=4)
    nbformat.validate(notebook)
    code = [c.source for c in notebook.cells if c.cell_type == "code"]
    assert len(code) == 6
    assert "WHEELS = kaggle_input('alice/vesuvius-wheels')" in code[0]
    assert ("MODELS = [kaggle_input('alice/m7-models:Dataset001__nnUNetTrainer__3d_fullres'), "
            "kaggle_input('google/unet/pytorch/default/3')]") in code[0]
    assert "RUN_ARGS = ['--folds', '0', '--threshold', '0.4']" in code[0]
    assert '"bootstrap.py"), ok=(0, 1))' in code[1]
    assert '"doctor"' in code[2] and '"run", *model_args' in code[3] and '"validate"' in code[4]
    assert "offlinepack-runs.jsonl" in code[5]
    # the setup cell is plain Python that finds both mount layouts
    namespace: dict = {}
    exec(compile(code[0].split("WHEELS =")[0], "setup", "exec"), namespace)
    kaggle_input = namespace["kaggle_input"]
    with pytest.raises(RuntimeError, match="alice/vesuvius-wheels is not attached .*/kaggle/input/vesuvius-wheels"):
        kaggle_input("alice/vesuvius-wheels")


def test_every_kaggle_rule_is_reported_at_once(tmp_path):
    out = tmp_path / "kernel"
    result = runner.invoke(app, ["kernel", "init", "-o", str(out), "--wheels", "alice/w", "--model", "alice",
                                 "--model", "a/b/c/d/latest", "--id", "alice/k", "--title", "Something Else",
                                 "--competition", "Bad_Slug", "--run-args", "-o /tmp/x.zip"])
    assert result.exit_code == 2
    for text in ("wheels source 'alice/w': dataset slug 'w' has 1 characters; Kaggle needs 3 to 50",
                 "model source 'alice' must be owner/slug (a dataset) or owner/model/framework/variation/version",
                 "model source 'a/b/c/d/latest': version 'latest' must be a number",
                 "competition slug 'Bad_Slug' may hold only lower-case letters, digits and '-'",
                 "--run-args must not hold -o",
                 "kernel slug 'k' has 1 characters; Kaggle needs 5 to 50"):
        assert f"error: {text}" in result.output, result.output
    assert not out.exists()
    result = runner.invoke(app, ["kernel", "init", "-o", str(out), "--wheels", "alice/wheels", "--model",
                                 "alice/models", "--id", "alice/my-kernel", "--title", "Another Title"])
    assert result.exit_code == 2
    assert "kernel title 'Another Title' becomes the slug 'another-title' on Kaggle, not 'my-kernel'" in result.output


def test_existing_folder_needs_force_and_must_be_a_kernel_folder(tmp_path):
    args = ["kernel", "init", "--wheels", "alice/wheels", "--model", "alice/models"]
    out = tmp_path / "kernel"
    assert runner.invoke(app, [*args, "-o", str(out)]).exit_code == 0
    result = runner.invoke(app, [*args, "-o", str(out)])
    assert result.exit_code == 2 and "already exists (pass --force" in result.output
    assert runner.invoke(app, [*args, "-o", str(out), "--force", "--no-gpu"]).exit_code == 0
    assert json.loads((out / "kernel-metadata.json").read_text())["enable_gpu"] is False
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    result = runner.invoke(app, [*args, "-o", str(mine), "--force"])
    assert result.exit_code == 2 and "is not a kernel folder" in result.output
    assert (mine / "notes.txt").read_text() == "keep"
