"""Betti matching of a tile (offlinepack.score.betti) against the independent reference, the compiled
`betti_matching` module of the topolosses 0.2.0 wheel, plus shapes whose Betti numbers are known by construction,
and numba's cache fallback (offlinepack.score._numba) on a really read-only package folder.

Bigger sweeps (10,000 random tiles up to 14^3, a 64^3 sheet tile) are opt-in:
`pytest -m slow tests/test_score_betti.py`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offlinepack.score import _numba
from offlinepack.score.betti import TileMatch, match_tile
from tests.support.betti_reference import reference_match_counts

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _slow_is_opt_in(request: pytest.FixtureRequest) -> None:
    """Tests marked slow run only when asked: `pytest -m slow tests/test_score_betti.py`."""
    if request.node.get_closest_marker("slow") and "slow" not in (request.config.getoption("-m") or ""):
        pytest.skip("bigger sweep: run with `pytest -m slow tests/test_score_betti.py`")


def counts(match: TileMatch) -> tuple[tuple[int, int, int], ...]:
    """Per dimension (matched, prediction unmatched, label unmatched), as reference_match_counts gives them."""
    return tuple((match.matched[k], match.pred_unmatched[k], match.label_unmatched[k]) for k in range(3))


def assert_as_reference(pred: np.ndarray, label: np.ndarray) -> None:
    expected = reference_match_counts(pred, label)
    assert counts(match_tile(pred, label)) == expected, (pred.shape, pred.astype(int).tolist(),
                                                         label.astype(int).tolist())


def random_pairs(seed: int, cases: int, max_side: int):
    """Random mask pairs: uneven shapes with size-1 axes, densities from empty to full, and labels that are
    slightly edited copies of the prediction (the interesting case: many matches)."""
    rng = np.random.default_rng(seed)
    for _ in range(cases):
        shape = tuple(int(s) for s in rng.integers(1, max_side + 1, size=3))
        density_pred, density_label = rng.random(2)
        pred = rng.random(shape) < density_pred
        label = rng.random(shape) < density_label
        if rng.random() < 0.35:
            label = pred.copy()
            label[rng.random(shape) < 0.2 * rng.random()] ^= True
        yield pred, label


# ------------------------------------------------------------------------------------------------ differential


@pytest.mark.parametrize("seed", range(4))
def test_random_small_tiles_equal_the_reference(seed: int) -> None:
    for pred, label in random_pairs(seed, cases=400, max_side=7):
        assert_as_reference(pred, label)


def test_random_tiles_with_cavities_and_tunnels_equal_the_reference() -> None:
    """Dense foreground (0.75-0.95) makes background pockets (cavities) and tunnels in both masks."""
    rng = np.random.default_rng(11)
    seen_matched_cavities = seen_matched_loops = 0
    for _ in range(250):
        shape = tuple(int(s) for s in rng.integers(3, 10, size=3))
        pred = rng.random(shape) < rng.uniform(0.75, 0.95)
        label = pred.copy()
        label[rng.random(shape) < rng.uniform(0.0, 0.1)] ^= True
        expected = reference_match_counts(pred, label)
        assert counts(match_tile(pred, label)) == expected
        seen_matched_loops += expected[1][0] > 0
        seen_matched_cavities += expected[2][0] > 0
    assert seen_matched_loops > 50 and seen_matched_cavities > 10  # the cases exercise what they claim to


def test_transposing_changes_counts_as_in_the_reference() -> None:
    """Ties are broken by (x, y, z) with x = numpy axis 0: the order of the axes matters, for both."""
    rng = np.random.default_rng(5)
    differing = 0
    for _ in range(150):
        pred = rng.random((6, 5, 4)) < 0.5
        label = rng.random((6, 5, 4)) < 0.5
        for axes in ((0, 1, 2), (2, 1, 0), (1, 2, 0)):
            a = np.ascontiguousarray(pred.transpose(axes))
            b = np.ascontiguousarray(label.transpose(axes))
            assert_as_reference(a, b)
        differing += counts(match_tile(pred, label)) != counts(match_tile(pred.transpose(2, 1, 0),
                                                                          label.transpose(2, 1, 0)))
    assert differing > 0


def test_non_contiguous_views_and_other_dtypes() -> None:
    rng = np.random.default_rng(3)
    pred = rng.random((9, 8, 7)) < 0.4
    label = rng.random((9, 8, 7)) < 0.4
    view_pred, view_label = pred[1::2, :, ::-1], label[1::2, :, ::-1]
    assert counts(match_tile(view_pred, view_label)) == reference_match_counts(view_pred, view_label)
    assert match_tile(pred.astype(np.uint8), label.astype(np.uint8)) == match_tile(pred, label)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6)),
    seed=st.integers(0, 2**32 - 1),
    densities=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    copy=st.booleans(),
)
def test_property_equals_the_reference(shape, seed, densities, copy) -> None:
    rng = np.random.default_rng(seed)
    pred = rng.random(shape) < densities[0]
    if copy:
        label = pred.copy()
        label[rng.random(shape) < densities[1] * 0.3] ^= True
    else:
        label = rng.random(shape) < densities[1]
    assert_as_reference(pred, label)


@pytest.mark.parametrize("shape", [(0, 4, 4), (1, 1, 1), (1, 1, 9), (1, 7, 6), (5, 1, 6), (2, 2, 2), (4, 5, 6)])
def test_empty_full_and_identical_tiles(shape) -> None:
    rng = np.random.default_rng(1)
    empty = np.zeros(shape, bool)
    full = np.ones(shape, bool)
    noisy = rng.random(shape) < 0.5
    for pred, label in ((empty, empty), (full, full), (empty, full), (full, empty), (noisy, noisy),
                        (noisy, empty), (full, noisy)):
        assert_as_reference(pred, label)
    assert match_tile(empty, empty) == TileMatch((0, 0, 0), (0, 0, 0), (0, 0, 0))
    identical = match_tile(noisy, noisy)
    assert identical.pred_unmatched == identical.label_unmatched == (0, 0, 0)


def test_shapes_must_match() -> None:
    with pytest.raises(ValueError, match="one shape"):
        match_tile(np.zeros((3, 3, 3), bool), np.zeros((3, 3, 4), bool))
    with pytest.raises(ValueError, match="3D"):
        match_tile(np.zeros((3, 3), bool), np.zeros((3, 3), bool))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 110))
def test_random_tiles_sweep_slow(seed: int) -> None:
    for pred, label in random_pairs(seed, cases=1000, max_side=14):
        assert_as_reference(pred, label)


@pytest.mark.slow
def test_sheet_like_64_cube_equals_the_reference() -> None:
    pred, label = sheet_masks(64, seed=4)
    assert_as_reference(pred, label)
    assert_as_reference(pred[:, ::-1], label[:, ::-1])


# ------------------------------------------------------------------------------------------ known by construction


def torus(shape=(9, 12, 12), thickness=1) -> np.ndarray:
    """A square ring lying in the (y, z) plane: one component, one loop."""
    out = np.zeros(shape, bool)
    cx = shape[0] // 2
    out[cx - thickness // 2: cx + thickness - thickness // 2, 2:-2, 2:-2] = True
    out[cx - thickness // 2: cx + thickness - thickness // 2, 4:-4, 4:-4] = False
    return out


def hollow_box(shape=(10, 10, 10), margin=2, wall=1) -> np.ndarray:
    """A closed box shell: one component, one cavity."""
    out = np.zeros(shape, bool)
    out[margin:-margin, margin:-margin, margin:-margin] = True
    inner = margin + wall
    out[inner:-inner, inner:-inner, inner:-inner] = False
    return out


def nested_shells(side=16, shells=2) -> np.ndarray:
    out = np.zeros((side, side, side), bool)
    for level in range(shells):
        margin = 1 + 3 * level
        out[margin:-margin, margin:-margin, margin:-margin] = True
        out[margin + 1:-margin - 1, margin + 1:-margin - 1, margin + 1:-margin - 1] = False
    return out


def sheet_with_holes(holes: int, side=24) -> np.ndarray:
    out = np.zeros((5, side, side), bool)
    out[2] = True
    for index in range(holes):
        y = 2 + 4 * (index % 5)
        z = 2 + 4 * (index // 5)
        out[2, y:y + 2, z:z + 2] = False
    return out


def sheets(count=3, side=20, bridges=0) -> np.ndarray:
    """Parallel flat sheets (normal to axis 0) joined by `bridges` separate pillars between neighbours."""
    out = np.zeros((4 * count, side, side), bool)
    for index in range(count):
        out[4 * index + 1] = True
    for index in range(bridges):
        gap = index % (count - 1)
        y = 2 + 3 * (index // (count - 1))
        out[4 * gap + 1: 4 * gap + 6, y, 3] = True
    return out


@pytest.mark.parametrize("mask, betti", [
    (torus(), (1, 1, 0)),
    (torus(thickness=2), (1, 1, 0)),
    (hollow_box(), (1, 0, 1)),
    (hollow_box(wall=2, shape=(12, 12, 12)), (1, 0, 1)),
    (nested_shells(shells=2), (2, 0, 2)),
    (nested_shells(side=22, shells=3), (3, 0, 3)),
    (sheet_with_holes(1), (1, 1, 0)),
    (sheet_with_holes(7), (1, 7, 0)),
    (sheets(3), (3, 0, 0)),
    (sheets(3, bridges=2), (1, 0, 0)),  # two bridges: one per gap, a tree
    (sheets(3, bridges=4), (1, 2, 0)),  # two pillars across one gap make a loop; so do the other two
])
def test_known_betti_numbers(mask: np.ndarray, betti: tuple[int, int, int]) -> None:
    """Kept pairs are (b0 - 1, b1, b2); matching a mask with itself matches all of them."""
    expected = (betti[0] - 1, betti[1], betti[2])
    alone = match_tile(mask, np.zeros_like(mask))
    assert alone.pred_unmatched == expected and alone.matched == (0, 0, 0)
    itself = match_tile(mask, mask)
    assert itself.matched == expected and itself.pred_unmatched == itself.label_unmatched == (0, 0, 0)
    assert_as_reference(mask, mask)


def test_holes_filled_in_the_prediction_are_unmatched_label_loops() -> None:
    label = sheet_with_holes(6)
    pred = label.copy()
    pred[2] = True  # the model closed every hole
    result = match_tile(pred, label)
    assert result.label_pairs[1] == 6 and result.pred_pairs[1] == 0 and result.matched[1] == 0
    assert_as_reference(pred, label)
    partly = label.copy()
    partly[2, 2:4, 2:4] = True  # one hole closed, five kept
    result = match_tile(partly, label)
    assert result.matched[1] == 5 and result.label_unmatched[1] == 1
    assert_as_reference(partly, label)


def test_a_bridge_merging_two_sheets_unmatches_a_component() -> None:
    label = sheets(2)
    pred = sheets(2, bridges=1)
    result = match_tile(pred, label)
    assert result.label_pairs[0] == 1 and result.pred_pairs[0] == 0
    assert_as_reference(pred, label)


def test_shifted_cavity_matches() -> None:
    label = hollow_box(shape=(12, 12, 12), wall=2)
    pred = np.roll(label, 1, axis=0)
    result = match_tile(pred, label)
    assert result.matched[2] == 1
    assert_as_reference(pred, label)


def sheet_masks(side: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Curved parallel sheets 1-2 voxels thick; the prediction with holes, bridges and speckle."""
    rng = np.random.default_rng(seed)
    z = np.arange(side)[:, None, None]
    y = np.arange(side)[None, :, None]
    x = np.arange(side)[None, None, :]
    label = np.zeros((side, side, side), bool)
    pred = np.zeros_like(label)
    for index in range(4):
        centre = side * (index + 1) / 5 + 2 * np.sin(x / rng.uniform(6, 12) + rng.uniform(0, 6)) \
            + 1.5 * np.cos(y / rng.uniform(6, 12))
        thickness = rng.choice([0.5, 1.0])
        label |= np.abs(z - centre) <= thickness
        pred |= np.abs(z - centre - rng.choice([0, 0, 1])) <= thickness
    for _ in range(side // 4):
        cy, cx = rng.integers(0, side, size=2)
        pred[:, max(0, cy - 2):cy + 2, max(0, cx - 2):cx + 2] &= rng.random() < 0.3
    for _ in range(side // 8):
        cy, cx, z0 = rng.integers(0, side - 2), rng.integers(0, side - 2), rng.integers(0, side - 14)
        pred[z0:z0 + 14, cy:cy + 2, cx:cx + 2] = True
    pred ^= rng.random(pred.shape) < 0.003
    return pred, label


def test_sheet_like_tile_equals_the_reference() -> None:
    pred, label = sheet_masks(32, seed=2)
    result = match_tile(pred, label)
    assert result.matched[0] > 0 and result.pred_pairs[1] > 0
    assert_as_reference(pred, label)


# ------------------------------------------------------------------------------------------------ numba's cache


def test_cache_dir_choice() -> None:
    def choose(environ, in_tree=False, ok=lambda path: True):
        return _numba.choose_cache_dir(Path("/pkg"), environ, in_tree_writable=lambda _: in_tree, is_writable=ok)

    assert choose({"HOME": "/h"}, in_tree=True) is None  # numba's own __pycache__ works
    assert choose({"NUMBA_CACHE_DIR": "/mine", "HOME": "/h"}) is None  # the user's choice wins
    assert choose({"XDG_CACHE_HOME": "/x", "HOME": "/h"}) == Path("/x/offlinepack/numba")
    assert choose({"HOME": "/h"}) == Path("/h/.cache/offlinepack/numba")
    fallback = choose({"HOME": "/h"}, ok=lambda path: "offlinepack-numba-" in path.name)  # home read-only
    assert fallback is not None and fallback.parent == Path(_numba.tempfile.gettempdir())
    assert choose({"HOME": "/h"}, ok=lambda path: False) is None  # nothing writable: compile without a cache


def test_numba_cache_works_from_a_read_only_package(tmp_path: Path) -> None:
    """A copy of the package on a read-only bind mount (as site-packages in a kernel): the cache goes to
    ~/.cache/offlinepack/numba and a second process loads from it."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs unshare and root to make a read-only bind mount")
    package = tmp_path / "pkg"
    (package / "offlinepack" / "score").mkdir(parents=True)
    for name in ("__init__.py", "errors.py"):
        shutil.copy(REPO_ROOT / "offlinepack" / name, package / "offlinepack" / name)
    shutil.copy(REPO_ROOT / "offlinepack" / "score" / "_numba.py", package / "offlinepack" / "score" / "_numba.py")
    (package / "offlinepack" / "score" / "__init__.py").write_text("")
    (package / "offlinepack" / "score" / "probe.py").write_text(textwrap.dedent("""
        from offlinepack.score._numba import njit

        @njit
        def add_one(x):
            return x + 1
    """))
    home = tmp_path / "home"
    home.mkdir()
    program = ("import os; from offlinepack.score import probe; "
               "print(probe.add_one(41), os.environ['NUMBA_CACHE_DIR'], sum(probe.add_one.stats.cache_hits.values()))")
    script = (f"mount --bind {package} {package} && mount -o remount,bind,ro {package} || exit 99; "
              f"touch {package}/x 2>/dev/null && exit 98; "
              f"for i in 1 2; do {sys.executable} -c \"{program}\" || exit 1; done")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "PYTHONPATH": str(package),
           "PYTHONDONTWRITEBYTECODE": "1"}
    run = subprocess.run(["unshare", "-m", "sh", "-c", script], env=env, capture_output=True, text=True, check=False,
                         cwd=tmp_path)  # not the repo: `python -c` puts the working folder first on sys.path
    if run.returncode in (98, 99):
        pytest.skip("cannot make a read-only bind mount here")
    assert run.returncode == 0, run.stderr
    first, second = run.stdout.splitlines()
    cache = home / ".cache" / "offlinepack" / "numba"
    assert first.split()[:2] == ["42", str(cache)] and second.split()[:2] == ["42", str(cache)]
    assert int(second.split()[2]) > 0  # the second process compiled nothing: it loaded the cache
    assert list(cache.rglob("*.nbi"))
    assert not list((package / "offlinepack" / "score").glob("__pycache__"))
