"""Binary Betti matching of one tile, exactly as the competition's TopoScore counts it, fast.

The official metric inverts the masks (foreground 0, background 1) and runs Betti-Matching-3D on them: a cubical
complex with the voxels as vertices, every cell valued by the max of its vertices (so the foreground is
6-connected), the comparison image min(prediction, label) (so its value-0 cells are those whose every voxel is
foreground in one mask or the other), cells ordered by (value, x, y, z, type) with x = numpy axis 0, pairs with
birth == death dropped. For 0/1 values every kept pair is born at 0 and dies at 1, which is what makes the counts
below cheap (see ../shared/SCORING.md and the reasoning at each dimension):

- dim 0: p = 6-connected foreground components - 1. A label component and a prediction component are matched when,
  sweeping the comparison's value-1 edges in index order with union-find (its value-0 part already merged), an edge
  joins two components that both hold prediction and label foreground.
- dim 2: union-find over the 3-cells (plus the outside) sweeping faces from last to first, as the library does:
  a prediction cavity is matched to a label cavity when both die into the same comparison cavity.
- dim 1: p = b1 of the foreground complex (Euler characteristic). The library matches a prediction loop and a
  label loop when the image reductions of both (comparison's columns, each input's row order) give pivots that
  are kept pairs of the inputs at the same comparison square, itself a kept comparison pair. For a comparison
  square of value 1 that kills a loop (negative in the comparison, known from the dim-2 sweep) the image pivot
  is a value-0 edge of the input exactly when its boundary, restricted to the edges outside the input's
  foreground complex, lies in the span of the earlier columns so restricted (the pivot of a reduced column is
  the least one reachable; such a pivot is always the birth of a kept input pair). Span membership does not
  depend on how the reduction is done, only on the column order, so one pass reduces both restricted matrices
  and m1 counts the squares that reduce to zero in both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from offlinepack.score._numba import leading_zeros, njit

DIMENSIONS = 3


@dataclass(frozen=True)
class TileMatch:
    """Betti-matching counts of one tile, per dimension 0, 1, 2."""

    matched: tuple[int, int, int]  # m_k
    pred_unmatched: tuple[int, int, int]  # p_k - m_k
    label_unmatched: tuple[int, int, int]  # g_k - m_k

    @property
    def pred_pairs(self) -> tuple[int, int, int]:
        return tuple(m + u for m, u in zip(self.matched, self.pred_unmatched))  # type: ignore[return-value]

    @property
    def label_pairs(self) -> tuple[int, int, int]:
        return tuple(m + u for m, u in zip(self.matched, self.label_unmatched))  # type: ignore[return-value]


EMPTY = TileMatch((0, 0, 0), (0, 0, 0), (0, 0, 0))


def match_tile(pred_fg: np.ndarray, label_fg: np.ndarray) -> TileMatch:
    """Betti matching of a prediction and a label tile (boolean, True = foreground, same 3D shape; other dtypes
    count non-zero as foreground). Equal to the official per-tile counts (topolosses' betti_matching on the
    inverted uint8 masks), with closed forms where they are exact: Betti numbers from labelling and the Euler
    characteristic, m = p = g for identical tiles, m_k = 0 when either side has no class in dimension k."""
    pred = np.ascontiguousarray(pred_fg, dtype=bool)
    label = np.ascontiguousarray(label_fg, dtype=bool)
    if pred.shape != label.shape or pred.ndim != DIMENSIONS:
        raise ValueError(f"match_tile needs two 3D masks of one shape, got {pred.shape} and {label.shape}")
    if pred.size == 0:
        return EMPTY
    if 3 * pred.size >= 2**31:  # cell numbers are kept in int32 arrays
        raise ValueError(f"match_tile works on tiles of fewer than {2**31 // 3} voxels, got {pred.shape}")
    pred_u8 = pred.view(np.uint8)
    label_u8 = label.view(np.uint8)
    solid = min(pred.shape) >= 2  # the library computes dimension 2 only for a true 3D grid
    p_counts = _betti_numbers(pred_u8, solid)
    identical = np.array_equal(pred, label)
    g_counts = p_counts if identical else _betti_numbers(label_u8, solid)
    if identical:
        matched = p_counts
    else:
        m0 = _matched_dim0(pred_u8, label_u8) if p_counts[0] and g_counts[0] else 0
        need1 = p_counts[1] > 0 and g_counts[1] > 0
        need2 = solid and p_counts[2] > 0 and g_counts[2] > 0
        m1 = m2 = 0
        if need1 or need2:
            positive, m2 = _comparison_dim2(pred_u8, label_u8, need2)
            if need1:
                m1 = _matched_dim1(pred_u8, label_u8, positive)
        matched = (m0, m1, m2)
    return TileMatch(
        matched=tuple(int(m) for m in matched),  # type: ignore[arg-type]
        pred_unmatched=tuple(int(p - m) for p, m in zip(p_counts, matched)),  # type: ignore[arg-type]
        label_unmatched=tuple(int(g - m) for g, m in zip(g_counts, matched)),  # type: ignore[arg-type]
    )


def _betti_numbers(fg: np.ndarray, solid: bool) -> tuple[int, int, int]:
    """Kept pairs of one mask per dimension: (b0 - 1, b1, b2) of its foreground complex (0 where empty)."""
    components, cavities, euler = _components_cavities_euler(fg)
    if components == 0:
        return (0, 0, 0)
    if not solid:
        cavities = 0
    loops = components + cavities - euler
    return (components - 1, loops, cavities)


# ---------------------------------------------------------------------------------------------------------------
# numba kernels. Voxel v = (x * ny + y) * nz + z; edge / square = 3 * v + type (type = axis of an edge, or the axis
# normal to a square); this numbering sorts cells exactly as the library's (x, y, z, type) index does.


@njit
def _find(parent, i):
    while parent[i] != i:  # path halving
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


@njit
def _components_cavities_euler(fg):
    """6-connected foreground components, 26-connected background components not touching the border (the
    cavities of the foreground complex), and the Euler characteristic V - E + F - C of the foreground complex."""
    nx, ny, nz = fg.shape
    flat = fg.ravel()
    n = flat.size
    parent = np.arange(n + 1)  # n: the outside, for the background
    sx = ny * nz
    vertices = 0
    edges = 0
    squares = 0
    cubes = 0
    for x in range(nx):
        for y in range(ny):
            for z in range(nz):
                v = x * sx + y * nz + z
                if flat[v]:
                    vertices += 1
                    if x + 1 < nx and flat[v + sx]:
                        edges += 1
                        _union(parent, v, v + sx)
                    if y + 1 < ny and flat[v + nz]:
                        edges += 1
                        _union(parent, v, v + nz)
                    if z + 1 < nz and flat[v + 1]:
                        edges += 1
                        _union(parent, v, v + 1)
                    if y + 1 < ny and z + 1 < nz and flat[v + nz] and flat[v + 1] and flat[v + nz + 1]:
                        squares += 1
                    if x + 1 < nx and z + 1 < nz and flat[v + sx] and flat[v + 1] and flat[v + sx + 1]:
                        squares += 1
                    if x + 1 < nx and y + 1 < ny and flat[v + sx] and flat[v + nz] and flat[v + sx + nz]:
                        squares += 1
                        if (z + 1 < nz and flat[v + 1] and flat[v + sx + 1] and flat[v + nz + 1]
                                and flat[v + sx + nz + 1]):
                            cubes += 1
                else:
                    if x == 0 or y == 0 or z == 0 or x == nx - 1 or y == ny - 1 or z == nz - 1:
                        _union(parent, v, n)
                    # 13 forward neighbours of the 26; v's root is found once
                    root = _find(parent, v)
                    for dx in range(2):
                        for dy in range(-1 if dx else 0, 2):
                            for dz in range(-1 if (dx or dy) else 1, 2):
                                xx = x + dx
                                yy = y + dy
                                zz = z + dz
                                if xx < nx and 0 <= yy < ny and 0 <= zz < nz:
                                    w = xx * sx + yy * nz + zz
                                    if not flat[w]:
                                        other = _find(parent, w)
                                        if other < root:
                                            parent[root] = other
                                            root = other
                                        elif other > root:
                                            parent[other] = root
    components = 0
    cavities = 0
    outside = _find(parent, n)
    for v in range(n):
        if parent[v] == v:
            if flat[v]:
                components += 1
            elif v != outside:
                cavities += 1
    return components, cavities, vertices - edges + squares - cubes


@njit
def _union(parent, a, b):
    ra = _find(parent, a)
    rb = _find(parent, b)
    if ra != rb:
        if ra < rb:
            parent[rb] = ra
        else:
            parent[ra] = rb


@njit
def _matched_dim0(pred, label):
    """Comparison value-1 edges, in index order, that join two components each holding prediction and label
    foreground (after all comparison value-0 edges)."""
    nx, ny, nz = pred.shape
    p = pred.ravel()
    g = label.ravel()
    n = p.size
    sx = ny * nz
    parent = np.arange(n)
    flags = np.zeros(n, np.uint8)  # 1: holds prediction fg, 2: holds label fg (valid at roots)
    for v in range(n):
        flags[v] = p[v] | (g[v] << 1)
    # value-0 stage: all comparison value-0 edges (both ends foreground in one mask or the other)
    for v in range(n):
        if flags[v]:
            x = v // sx
            y = (v // nz) % ny
            z = v % nz
            if x + 1 < nx and flags[v + sx]:
                _union_flags(parent, flags, v, v + sx)
            if y + 1 < ny and flags[v + nz]:
                _union_flags(parent, flags, v, v + nz)
            if z + 1 < nz and flags[v + 1]:
                _union_flags(parent, flags, v, v + 1)
    matched = 0
    for v in range(n):
        x = v // sx
        y = (v // nz) % ny
        z = v % nz
        for t in range(3):
            if t == 0:
                if x + 1 >= nx:
                    continue
                w = v + sx
            elif t == 1:
                if y + 1 >= ny:
                    continue
                w = v + nz
            else:
                if z + 1 >= nz:
                    continue
                w = v + 1
            if (p[v] | g[v]) and (p[w] | g[w]):
                continue  # value-0 edge, done above
            ra = _find(parent, v)
            rb = _find(parent, w)
            if ra == rb:
                continue
            if flags[ra] == 3 and flags[rb] == 3:
                matched += 1
            if ra < rb:
                parent[rb] = ra
                flags[ra] |= flags[rb]
            else:
                parent[ra] = rb
                flags[rb] |= flags[ra]
    return matched


@njit
def _union_flags(parent, flags, a, b):
    ra = _find(parent, a)
    rb = _find(parent, b)
    if ra != rb:
        if ra < rb:
            parent[rb] = ra
            flags[ra] |= flags[rb]
        else:
            parent[ra] = rb
            flags[rb] |= flags[ra]


@njit
def _cube_values(bg):
    """1 where a 3-cell (indexed by its lowest voxel) has a background vertex; 2 where no 3-cell starts."""
    nx, ny, nz = bg.shape
    b = bg.ravel()
    sx = ny * nz
    out = np.full(b.size, 2, np.uint8)
    for x in range(nx - 1):
        for y in range(ny - 1):
            for z in range(nz - 1):
                v = x * sx + y * nz + z
                out[v] = (b[v] | b[v + 1] | b[v + nz] | b[v + nz + 1]
                          | b[v + sx] | b[v + sx + 1] | b[v + sx + nz] | b[v + sx + nz + 1])
    return out


@njit
def _square_value(b, v, t, sx, nz):
    """Value of square 3v+t: 1 if one of its 4 voxels is background (type = axis normal to the square)."""
    if t == 0:
        return b[v] | b[v + nz] | b[v + 1] | b[v + nz + 1]
    if t == 1:
        return b[v] | b[v + sx] | b[v + 1] | b[v + sx + 1]
    return b[v] | b[v + sx] | b[v + nz] | b[v + sx + nz]


@njit
def _square_exists(x, y, z, t, nx, ny, nz):
    if t == 0:
        return y + 1 < ny and z + 1 < nz
    if t == 1:
        return x + 1 < nx and z + 1 < nz
    return x + 1 < nx and y + 1 < ny


@njit
def _square_cubes(v, x, y, z, t, nx, ny, nz, sx, outside):
    """The two 3-cells on either side of a square (the outside cell beyond the grid)."""
    if t == 0:
        lo = v - sx if x >= 1 else outside
        hi = v if x + 1 < nx else outside
    elif t == 1:
        lo = v - nz if y >= 1 else outside
        hi = v if y + 1 < ny else outside
    else:
        lo = v - 1 if z >= 1 else outside
        hi = v if z + 1 < nz else outside
    return lo, hi


@njit
def _key_less(values, a, b):
    """Order of 3-cells: (value, index), the outside last (value +inf)."""
    va = values[a]
    vb = values[b]
    if va != vb:
        return va < vb
    return a < b


@njit
def _image_dim2(bg_input, bg_comp, cube_input, cube_comp):
    """The library's dimension-2 image step for one input: faces from last to first in the input's order, one
    union-find whose components carry their youngest 3-cell by the input's values and by the comparison's.
    Returns a flag per 3-cell: the comparison 3-cell that an input cavity (kept pair) dies into."""
    nx, ny, nz = bg_input.shape
    b = bg_input.ravel()
    n = b.size
    sx = ny * nz
    outside = n
    values_in = np.empty(n + 1, np.uint8)
    values_in[:n] = cube_input
    values_in[n] = 3
    values_cmp = np.empty(n + 1, np.uint8)
    values_cmp[:n] = cube_comp
    values_cmp[n] = 3
    parent = np.arange(n + 1).astype(np.int32)
    best_in = np.arange(n + 1).astype(np.int32)
    best_cmp = np.arange(n + 1).astype(np.int32)
    dies_into = np.zeros(n + 1, np.uint8)
    for value in (1, 0):
        for x in range(nx - 1, -1, -1):
            for y in range(ny - 1, -1, -1):
                for z in range(nz - 1, -1, -1):
                    v = (x * ny + y) * nz + z
                    if value == 0 and b[v]:
                        continue  # a value-0 square needs all its voxels foreground in this input
                    for t in range(2, -1, -1):
                        if not _square_exists(x, y, z, t, nx, ny, nz):
                            continue
                        if _square_value(b, v, t, sx, nz) != value:
                            continue
                        lo, hi = _square_cubes(v, x, y, z, t, nx, ny, nz, sx, outside)
                        ra = _find(parent, lo)
                        rb = _find(parent, hi)
                        if ra == rb:
                            continue
                        ya = best_in[ra]
                        yb = best_in[rb]
                        killed_in = ya if _key_less(values_in, ya, yb) else yb
                        ca = best_cmp[ra]
                        cb = best_cmp[rb]
                        killed_cmp = ca if _key_less(values_cmp, ca, cb) else cb
                        if values_in[killed_in] != value:
                            dies_into[killed_cmp] = 1
                        parent[rb] = ra
                        best_in[ra] = yb if killed_in == ya else ya
                        best_cmp[ra] = cb if killed_cmp == ca else ca
    return dies_into


@njit
def _comparison_pass(bg_comp, cube_comp, into_pred, into_label, need_match):
    """The comparison's dimension-2 sweep: marks the squares that create a 2-cycle (positive: not columns of the
    dimension-1 reduction) and counts comparison cavities that both inputs' cavities die into."""
    nx, ny, nz = bg_comp.shape
    b = bg_comp.ravel()
    n = b.size
    sx = ny * nz
    outside = n
    values = np.empty(n + 1, np.uint8)
    values[:n] = cube_comp
    values[n] = 3
    parent = np.arange(n + 1).astype(np.int32)
    best = np.arange(n + 1).astype(np.int32)
    positive = np.zeros(3 * n, np.uint8)
    matched = 0
    for value in (1, 0):
        for x in range(nx - 1, -1, -1):
            for y in range(ny - 1, -1, -1):
                for z in range(nz - 1, -1, -1):
                    v = (x * ny + y) * nz + z
                    if value == 0 and b[v]:
                        continue  # a value-0 square needs all its voxels foreground in the comparison
                    for t in range(2, -1, -1):
                        if not _square_exists(x, y, z, t, nx, ny, nz):
                            continue
                        if _square_value(b, v, t, sx, nz) != value:
                            continue
                        lo, hi = _square_cubes(v, x, y, z, t, nx, ny, nz, sx, outside)
                        ra = _find(parent, lo)
                        rb = _find(parent, hi)
                        if ra == rb:
                            continue
                        positive[3 * v + t] = 1
                        if need_match:
                            ya = best[ra]
                            yb = best[rb]
                            killed = ya if _key_less(values, ya, yb) else yb
                            if values[killed] != value and into_pred[killed] and into_label[killed]:
                                matched += 1
                            best[ra] = yb if killed == ya else ya
                        parent[rb] = ra
    return positive, matched


def _comparison_dim2(pred: np.ndarray, label: np.ndarray, need_match: bool) -> tuple[np.ndarray, int]:
    """(positive-square flags of the comparison, m2)."""
    bg_pred = 1 - pred
    bg_label = 1 - label
    bg_comp = bg_pred & bg_label
    cube_comp = _cube_values(bg_comp)
    if need_match:
        into_pred = _image_dim2(bg_pred, bg_comp, _cube_values(bg_pred), cube_comp)
        into_label = _image_dim2(bg_label, bg_comp, _cube_values(bg_label), cube_comp)
    else:
        into_pred = into_label = np.zeros(1, np.uint8)
    return _comparison_pass(bg_comp, cube_comp, into_pred, into_label, need_match)


@njit
def _relative_boundary(fg, s, sx, nz, out):
    """Edges of square s outside the foreground complex `fg`, into `out` (largest first); returns how many."""
    v = s // 3
    a, b, da, db = _square_steps(s - 3 * v, sx, nz)
    return _lowest_first_boundary(fg, v, a, b, da, db, out)


@njit
def _square_steps(t, sx, nz):
    """(a, b, type of a, type of b): the two voxel steps spanning a square of type t, a < b."""
    if t == 0:
        return 1, nz, 2, 1
    if t == 1:
        return 1, sx, 2, 0
    return nz, sx, 1, 0


@njit
def _msb(word):
    """Index of the highest set bit of a non-zero uint64."""
    return 63 - np.int64(leading_zeros(word))


@njit
def _up_to(bit):
    """uint64 mask of bits 0..bit."""
    if bit == 63:
        return ~np.uint64(0)
    return (np.uint64(1) << np.uint64(bit + 1)) - np.uint64(1)


@njit
def _toggle(words, summary, edge):
    """Add one edge to the working column (Z/2). The column is a bitset over edge numbers plus a summary bitset
    of its non-empty words, so the pivot search skips empty stretches quickly."""
    w = edge >> 6
    words[w] ^= np.uint64(1) << np.uint64(edge & 63)
    bit = np.uint64(1) << np.uint64(w & 63)
    if words[w]:
        summary[w >> 6] |= bit
    else:
        summary[w >> 6] &= ~bit


@njit
def _max_at_most(words, summary, edge):
    """Largest edge in the working column that is <= edge, or -1."""
    w = edge >> 6
    masked = words[w] & _up_to(edge & 63)
    if masked:
        return (w << 6) + _msb(masked)
    if w == 0:
        return -1
    q = w - 1
    w2 = q >> 6
    masked = summary[w2] & _up_to(q & 63)
    while True:
        if masked:
            word = (w2 << 6) + _msb(masked)
            return (word << 6) + _msb(words[word])
        if w2 == 0:
            return -1
        w2 -= 1
        masked = summary[w2]


@njit
def _reduce_column(fg, boundary, k, pivot_column, slot_start, slot_len, n_slots, pool, pool_size,
                   words, summary, scratch, sx, nz):
    """Reduce one column that is not already reduced (its lowest edge is another column's pivot). Each addition
    cancels the pivot and adds only smaller edges, so the pivot only moves down. Returns (reduced to zero, and the
    grown buffers). The working bitsets are empty before and after. pivot_column holds, per edge, -1 (free), the
    square whose boundary is its reduced column (>= 0), or -2 - the slot of a stored reduced column."""
    for i in range(k):
        _toggle(words, summary, boundary[i])
    pivot = boundary[0]
    while True:
        other = pivot_column[pivot]
        if other == -1:
            start = pool_size
            edge = pivot
            while edge >= 0:  # keep the reduced column for later additions, emptying the bitsets
                if pool_size == pool.size:
                    bigger = np.empty(2 * pool.size, np.int64)
                    bigger[:pool_size] = pool[:pool_size]
                    pool = bigger
                pool[pool_size] = edge
                pool_size += 1
                _toggle(words, summary, edge)
                edge = _max_at_most(words, summary, edge)
            if n_slots == slot_start.size:
                bigger_start = np.empty(2 * n_slots, np.int64)
                bigger_start[:n_slots] = slot_start
                slot_start = bigger_start
                bigger_len = np.empty(2 * n_slots, np.int64)
                bigger_len[:n_slots] = slot_len
                slot_len = bigger_len
            slot_start[n_slots] = start
            slot_len[n_slots] = pool_size - start
            pivot_column[pivot] = -2 - n_slots
            return False, slot_start, slot_len, n_slots + 1, pool, pool_size
        if other <= -2:
            slot = -2 - other
            start = slot_start[slot]
            for i in range(slot_len[slot]):
                _toggle(words, summary, pool[start + i])
        else:  # an emergent column: its reduced form is its boundary
            kk = _relative_boundary(fg, other, sx, nz, scratch)
            for i in range(kk):
                _toggle(words, summary, scratch[i])
        pivot = _max_at_most(words, summary, pivot)
        if pivot < 0:
            return True, slot_start, slot_len, n_slots, pool, pool_size


@njit
def _lowest_first_boundary(fg, v, a, b, da, db, out):
    """Edges of the square (v; steps a < b) outside the foreground complex, largest index first."""
    k = 0
    if not (fg[v + b] and fg[v + b + a]):
        out[k] = 3 * (v + b) + da
        k += 1
    if not (fg[v + a] and fg[v + a + b]):
        out[k] = 3 * (v + a) + db
        k += 1
    if not (fg[v] and fg[v + a]):
        out[k] = 3 * v + da
        k += 1
    if not (fg[v] and fg[v + b]):
        out[k] = 3 * v + db
        k += 1
    return k


@njit
def _matched_dim1_kernel(pred, label, comp_fg, quiet, positive, nx, ny, nz):
    """m1: comparison value-1 squares, negative in the comparison, whose column reduces to zero relative to both
    inputs' foreground complexes. Columns in the comparison's order (value 0 first, then value 1, index order);
    the reduction relative to an input also takes the comparison's value-0 columns outside that input."""
    sx = ny * nz
    n = nx * sx
    pivot_p = np.full(3 * n, -1, np.int32)
    pivot_l = np.full(3 * n, -1, np.int32)
    start_p = np.empty(256, np.int64)
    len_p = np.empty(256, np.int64)
    start_l = np.empty(256, np.int64)
    len_l = np.empty(256, np.int64)
    n_p = 0
    n_l = 0
    pool_p = np.empty(4096, np.int64)
    pool_l = np.empty(4096, np.int64)
    size_p = 0
    size_l = 0
    words = np.zeros((3 * n + 63) // 64, np.uint64)
    summary = np.zeros((words.size + 63) // 64, np.uint64)
    scratch = np.empty(4, np.int64)
    boundary = np.empty(4, np.int64)
    matched = 0
    for value in (0, 1):
        for x in range(nx):
            for y in range(ny):
                for z in range(nz):
                    v = (x * ny + y) * nz + z
                    if value == 0 and not comp_fg[v]:
                        continue
                    if value == 1 and quiet[v]:  # all voxels of v's squares are background in both masks
                        for t in range(3):
                            if t == 0:
                                if y + 1 >= ny or z + 1 >= nz:
                                    continue
                            elif t == 1:
                                if x + 1 >= nx or z + 1 >= nz:
                                    continue
                            elif x + 1 >= nx or y + 1 >= ny:
                                continue
                            s = 3 * v + t
                            if positive[s]:
                                continue
                            a, b, da, db = _square_steps(t, sx, nz)
                            low = 3 * (v + b) + da  # the whole boundary is outside both foregrounds
                            free_p = pivot_p[low] == -1
                            free_l = pivot_l[low] == -1
                            if free_p:
                                pivot_p[low] = s
                            if free_l:
                                pivot_l[low] = s
                            if free_p and free_l:
                                continue
                            zero_p = zero_l = False
                            if not free_p:
                                k = _lowest_first_boundary(pred, v, a, b, da, db, boundary)
                                zero_p, start_p, len_p, n_p, pool_p, size_p = _reduce_column(
                                    pred, boundary, k, pivot_p, start_p, len_p, n_p, pool_p, size_p,
                                    words, summary, scratch, sx, nz)
                            if not free_l:
                                k = _lowest_first_boundary(label, v, a, b, da, db, boundary)
                                zero_l, start_l, len_l, n_l, pool_l, size_l = _reduce_column(
                                    label, boundary, k, pivot_l, start_l, len_l, n_l, pool_l, size_l,
                                    words, summary, scratch, sx, nz)
                            if zero_p and zero_l:
                                matched += 1
                        continue
                    for t in range(3):
                        if t == 0:
                            if y + 1 >= ny or z + 1 >= nz:
                                continue
                        elif t == 1:
                            if x + 1 >= nx or z + 1 >= nz:
                                continue
                        elif x + 1 >= nx or y + 1 >= ny:
                            continue
                        s = 3 * v + t
                        if positive[s]:
                            continue
                        a, b, da, db = _square_steps(t, sx, nz)
                        fg_corners = comp_fg[v] + comp_fg[v + a] + comp_fg[v + b] + comp_fg[v + a + b]
                        if (fg_corners == 4) != (value == 0):
                            continue
                        # the column's lowest edge: the whole boundary when all four voxels are background
                        # (for both masks), else the edges outside each mask's foreground complex
                        zero_p = False
                        k = _lowest_first_boundary(pred, v, a, b, da, db, boundary) if fg_corners else 4
                        if k > 0:  # else the square lies in the prediction's complex: no column there
                            low = boundary[0] if fg_corners else 3 * (v + b) + da
                            if pivot_p[low] == -1:  # free: the column is already reduced
                                pivot_p[low] = s
                            else:
                                if not fg_corners:
                                    k = _lowest_first_boundary(pred, v, a, b, da, db, boundary)
                                zero_p, start_p, len_p, n_p, pool_p, size_p = _reduce_column(
                                    pred, boundary, k, pivot_p, start_p, len_p, n_p, pool_p, size_p,
                                    words, summary, scratch, sx, nz)
                        zero_l = False
                        k = _lowest_first_boundary(label, v, a, b, da, db, boundary) if fg_corners else 4
                        if k > 0:
                            low = boundary[0] if fg_corners else 3 * (v + b) + da
                            if pivot_l[low] == -1:
                                pivot_l[low] = s
                            else:
                                if not fg_corners:
                                    k = _lowest_first_boundary(label, v, a, b, da, db, boundary)
                                zero_l, start_l, len_l, n_l, pool_l, size_l = _reduce_column(
                                    label, boundary, k, pivot_l, start_l, len_l, n_l, pool_l, size_l,
                                    words, summary, scratch, sx, nz)
                        if value == 1 and zero_p and zero_l:
                            matched += 1
    return matched


def _matched_dim1(pred: np.ndarray, label: np.ndarray, positive: np.ndarray) -> int:
    comp_fg = pred | label
    # quiet voxels: the 2x2x2 block above them is background in both masks (outside the grid counts as
    # background: squares reaching there do not exist)
    block = np.zeros(tuple(n + 1 for n in comp_fg.shape), np.uint8)
    block[:-1, :-1, :-1] = comp_fg
    busy = block[:-1, :-1, :-1] | block[1:, :-1, :-1] | block[:-1, 1:, :-1] | block[:-1, :-1, 1:]
    busy |= block[1:, 1:, :-1] | block[1:, :-1, 1:] | block[:-1, 1:, 1:]
    quiet = (busy == 0).view(np.uint8)
    return int(_matched_dim1_kernel(pred.ravel(), label.ravel(), comp_fg.ravel(), quiet.ravel(), positive,
                                    *pred.shape))
