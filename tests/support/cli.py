"""For tests of the run-side commands (run, validate, runs): a machine with no Kaggle, a competition folder
of real LZW TIFFs, and the CLI invoked in-process. Loaded as a plugin by conftest.py (the `env` fixture)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

SMALL = (64, 64, 64)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """No Kaggle here (an empty fake root), a private temp folder, the test's folder as cwd."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    return {"OFFLINEPACK_KAGGLE_ROOT": str(tmp_path / "no-kaggle")}


def write_competition(folder: Path, ids: dict[str, tuple[int, int, int]], csv_ids: list[str] | None = None) -> Path:
    from offlinepack.demo.sample import write_lzw_tiff
    from offlinepack.demo.synthetic import make_sheet_volume

    images = folder / "test_images"
    images.mkdir(parents=True)
    for seed, (ident, shape) in enumerate(ids.items()):
        write_lzw_tiff(make_sheet_volume(shape, seed=100 + seed).image, images / f"{ident}.tif")
    rows = csv_ids if csv_ids is not None else list(ids)
    (folder / "test.csv").write_text("id,scroll_id\n" + "".join(f"{i},1\n" for i in rows))
    return folder


def invoke(args: list[str], env: dict[str, str]):
    from offlinepack.cli.app import app  # late: this module is a plugin of every test session (conftest)

    return CliRunner().invoke(app, args, env=env, catch_exceptions=False)
