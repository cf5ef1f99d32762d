"""Shared fixtures: real wheels, sdists and a local HTTP index. No network beyond 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# One fixed, wide width for every CLI text a test reads (help, tables, uv's messages), whatever the terminal
# running pytest or a CI's COLUMNS says: a long tmp path must not wrap mid-phrase. Set before rich and typer are
# imported (rich reads COLUMNS once per Console). Tests of narrow output pass their own COLUMNS to the command.
os.environ["COLUMNS"] = "200"
os.environ["TERMINAL_WIDTH"] = "200"

import pytest

from tests.support.index import LocalIndex, serve
from tests.support.wheels import make_sdist, make_wheel

# the `env` fixture (no Kaggle, private temp, cwd) of the run-side command tests
pytest_plugins = ["tests.support.cli"]

REPO_ROOT = Path(__file__).resolve().parent.parent
# captured kernels (copies of the project's shared fixtures, so a fresh clone runs every test)
FIXTURES = REPO_ROOT / "tests" / "data" / "fixtures"


@pytest.fixture
def local_index(tmp_path: Path) -> Iterator[LocalIndex]:
    """An empty index; put files into `local_index.root` (e.g. with make_wheel(local_index.root, ...))."""
    with serve(tmp_path / "index-files") as index:
        yield index


@pytest.fixture
def wheel_factory():
    return make_wheel


@pytest.fixture
def sdist_factory():
    return make_sdist


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`network` tests are opt-in (`-m network`); `gpu` tests skip cleanly without CUDA."""
    markexpr = config.getoption("-m") or ""
    skip_network = pytest.mark.skip(reason="reaches the public index: run with `pytest -m network`")
    has_cuda = None
    for item in items:
        if "network" in item.keywords and "network" not in markexpr:
            item.add_marker(skip_network)
        if "gpu" in item.keywords:
            if has_cuda is None:
                try:
                    import torch

                    has_cuda = torch.cuda.is_available()
                except ImportError:
                    has_cuda = False
            if not has_cuda:
                item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))
