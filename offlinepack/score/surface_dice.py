"""SurfaceDice@2: the share of each mask's surface area lying within 2 voxels of the other's surface.

Same surface as DeepMind's `surface-distance` (which the leaderboard calls with spacing 1): surface points are
the 2x2x2 cubes between voxels (on a grid shifted by half a voxel) whose 8 corners are neither all background
nor all foreground; each carries the area of its marching-cubes surfel. Instead of a distance transform and a
sort over every surfel, a surfel counts as near when the other mask has a surface point at one of the 33
integer offsets with squared length <= 4: the same set as `distance <= 2.0`, with no square root to round.
"""

from __future__ import annotations

import functools
from itertools import product

import numpy as np

TOLERANCE_SQUARED = 4  # tolerance 2.0 voxels, spacing (1, 1, 1)
_FULL = 255

# the 2x2x2 cube's corners in the order of the code's bits, most significant first (DeepMind's kernel
# [[[128, 64], [32, 16]], [[8, 4], [2, 1]]] read as corner (a, b, c) -> bit 7 - (4a + 2b + c))
_CORNERS = tuple(product((0, 1), repeat=3))


def near_offsets(tolerance_squared: int = TOLERANCE_SQUARED) -> np.ndarray:
    """The integer offsets (dz, dy, dx) with dz² + dy² + dx² <= tolerance² (33 of them for 4), nearest first
    so the common case (surfaces that overlap) stops at the first probe."""
    reach = int(np.floor(np.sqrt(tolerance_squared)))
    span = range(-reach, reach + 1)
    offsets = [o for o in product(span, span, span) if o[0] ** 2 + o[1] ** 2 + o[2] ** 2 <= tolerance_squared]
    offsets.sort(key=lambda o: (o[0] ** 2 + o[1] ** 2 + o[2] ** 2, o))
    return np.array(offsets, dtype=np.int64)


def _corner_mask(code: int) -> np.ndarray:
    cube = np.zeros((2, 2, 2), dtype=np.float64)
    for bit, corner in enumerate(_CORNERS):
        if code >> (7 - bit) & 1:
            cube[corner] = 1.0
    return cube


@functools.lru_cache(maxsize=1)
def surfel_areas() -> np.ndarray:
    """Area of the surface inside one 2x2x2 cube, for each of the 256 corner codes (spacing 1).

    surface-distance's table is classic (Lorensen) marching cubes at level 0.5 applied to the side with at most
    four corners set: a code and its complement get the same area (checked for all 256 codes against the
    package in the tests). Triangles come from scikit-image's Lorensen marching cubes; areas are summed in
    float64 from the exact half-integer vertices.
    """
    from skimage.measure import marching_cubes

    areas = np.zeros(256, dtype=np.float64)
    for code in range(1, _FULL):
        minority = code if bin(code).count("1") <= 4 else _FULL - code
        verts, faces, _normals, _values = marching_cubes(_corner_mask(minority), 0.5, method="lorensen")
        triangles = np.asarray(verts, dtype=np.float64)[faces]
        cross = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
        areas[code] = float(np.sum(np.sqrt(np.sum(cross * cross, axis=1)) / 2.0))
    return areas


def _cube_codes(padded: np.ndarray) -> np.ndarray:
    """Code of every 2x2x2 cube of a zero-padded mask (uint8 0/1): shape one less than `padded` per axis."""
    z, y, x = (s - 1 for s in padded.shape)
    codes = np.zeros((z, y, x), dtype=np.uint8)
    for bit, (a, b, c) in enumerate(_CORNERS):
        codes |= padded[a:a + z, b:b + y, c:c + x] << np.uint8(7 - bit)
    return codes


def _near_histograms_py(codes_a, border_b, offsets, margin):  # pragma: no cover - compiled by numba below
    """Per code: how many surface cubes of A there are, and how many have a surface cube of B within reach."""
    total = np.zeros(256, dtype=np.int64)
    near = np.zeros(256, dtype=np.int64)
    nz, ny, nx = codes_a.shape
    for i in range(nz):
        for j in range(ny):
            for k in range(nx):
                code = codes_a[i, j, k]
                if code == 0 or code == 255:
                    continue
                total[code] += 1
                for o in range(offsets.shape[0]):
                    if border_b[i + margin + offsets[o, 0], j + margin + offsets[o, 1], k + margin + offsets[o, 2]]:
                        near[code] += 1
                        break
    return total, near


@functools.lru_cache(maxsize=1)
def _near_histograms():
    from offlinepack.score._numba import njit

    return njit(_near_histograms_py)


def _bounding_box(mask: np.ndarray) -> tuple[slice, slice, slice]:
    box = []
    for axis in range(3):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return box[0], box[1], box[2]


def surface_dice(pred_fg: np.ndarray, label_fg: np.ndarray) -> float:
    """SurfaceDice at tolerance 2 of two boolean masks: 1.0 when both are empty, 0.0 when exactly one is."""
    pred_any, label_any = bool(pred_fg.any()), bool(label_fg.any())
    if not pred_any and not label_any:
        return 1.0
    if pred_any != label_any:
        return 0.0
    # nothing outside the union's box has surface: crop, then one zero layer per side closes every cube
    box = _bounding_box(pred_fg | label_fg)
    pred_codes = _cube_codes(np.pad(pred_fg[box].astype(np.uint8), 1))
    label_codes = _cube_codes(np.pad(label_fg[box].astype(np.uint8), 1))
    offsets = near_offsets()
    margin = int(np.abs(offsets).max())
    histograms = _near_histograms()

    def border(codes: np.ndarray) -> np.ndarray:
        return np.pad((codes != 0) & (codes != _FULL), margin)

    label_total, label_near = histograms(label_codes, border(pred_codes), offsets, margin)
    pred_total, pred_near = histograms(pred_codes, border(label_codes), offsets, margin)
    areas = surfel_areas()
    near_area = float(np.dot(label_near, areas)) + float(np.dot(pred_near, areas))
    total_area = float(np.dot(label_total, areas)) + float(np.dot(pred_total, areas))
    return near_area / total_area
