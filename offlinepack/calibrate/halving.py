"""Successive halving for `calibrate`: screen every setting cheaply, keep the best share, and give only the
finalists the exact leaderboard score on every volume.

Why: the exact score costs ~3-4 s per 320^3 volume on an idle core, ~90 % of it the Betti matching;
post-processing plus SurfaceDice and VOI (70 % of the score's weight) cost ~0.6 s, ~0.06 s on a 160^3 centre
crop. 20 volumes x 200 settings scored exactly is up to ~2 h on 2 cores (less where racing drops settings and
masks repeat); screened, a fixed ~2000 crop + ~300 whole cheap + ~180 exact evaluations, ~8 min expected
(BENCHMARKS.md, "Calibration").

Rungs (HalvingPlan), like Hyperband's, on the same pool as every other task:
  "crop"  every setting, `cheap_score` on the centre crop (1/8 of the voxels) of `screen_volumes` volumes;
          keeps the best 1/`eta` of each group. Skipped when a crop side would be under `min_crop_side`.
  "cheap" the survivors, `cheap_score` on whole volumes (`check_volumes` of them, or `screen_volumes` when
          there was no crop rung); keeps the best `finalists` distinct ones of each group (settings with
          equal scores on every volume are one: the same masks), fewer when the tracks disagree
          so much that the union would pass `max_finalists` (each track's best of each group always stays).
  "exact" (search.py) the finalists and the defaults, the leaderboard score on every volume.
Groups: global thresholds and per-volume rules are ranked apart, so both reach the exact rung and the rule
still has to beat the best global threshold in cross-validation to be chosen.

No held-out leakage: every choice is made once per "track": one per CV fold, ranking on that fold's training
volumes only, and "all" (every volume), whose choice is the setting written out. A rung scores the union of
the tracks' survivors; in CV a fold picks among *its own* finalists by the exact score on its training
volumes, so a held-out volume never steers its fold's choice (tested by scrambling held-out labels). Rung
volumes are dealt round-robin over the folds (seeded order), so each fold has training volumes in every rung.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from offlinepack.calibrate import space
from offlinepack.calibrate.tasks import ScoreMatrix, VolumeItem, cheap_score

ALL = "all"  # the track that sees every volume: its choice is the calibrated setting


@dataclass(frozen=True)
class HalvingPlan:
    eta: int = 4  # the crop rung keeps the best 1/eta of each group (per track)
    finalists: int = 3  # distinct ones per group and track, scored exactly on every volume...
    max_finalists: int = 12  # ...while the union over tracks stays within this (each track's best always go)
    screen_volumes: int = 10  # volumes of the first rung
    check_volumes: int = 5  # volumes of the whole-volume cheap rung after a crop rung
    min_crop_side: int = 64  # no crop rung when a crop side would be shorter


@dataclass(frozen=True)
class Rung:
    name: str  # "crop" | "cheap" | "exact"
    scorer: str  # "surface_dice+voi" | "leaderboard"
    settings: int  # settings scored in this rung (the union over tracks)
    volumes: int
    evaluations: int  # (volume, setting) cells scored
    kept: int  # settings passed on to the next rung (the union over tracks)
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"rung": self.name, "scorer": self.scorer, "settings": self.settings, "volumes": self.volumes,
                "evaluations": self.evaluations, "kept": self.kept, "seconds": round(self.seconds, 3)}


def group(setting: dict[str, Any]) -> str:
    return "fixed" if space.family(setting) == "fixed" else "rule"


def deal_volumes(assignment: np.ndarray, order: Sequence[int], count: int) -> list[int]:
    """`count` volumes taken round-robin over the folds, each fold's in the seeded `order`."""
    folds = int(assignment.max()) + 1
    by_fold = [[int(v) for v in order if assignment[v] == f] for f in range(folds)]
    out: list[int] = []
    depth = 0
    while len(out) < min(count, len(order)):
        for members in by_fold:
            if depth < len(members) and len(out) < count:
                out.append(members[depth])
        depth += 1
    return out


def tracks(assignment: np.ndarray) -> dict[Any, np.ndarray]:
    """Training volumes (a boolean per volume) of each fold's track and of the "all" track."""
    out: dict[Any, np.ndarray] = {fold: assignment != fold for fold in range(int(assignment.max()) + 1)}
    out[ALL] = np.ones(assignment.size, dtype=bool)
    return out


def _ranked(matrix: ScoreMatrix, rows: list[int], columns: list[int], distinct: bool = False) -> list[list[int]]:
    """Each group's rows, best first by mean over `columns` (ties: the earlier row). `distinct`: a row whose
    scores equal a better row's on every column is left out (the same masks, almost surely: two settings
    that differ only in a size cut no component falls under must not take two finalist places)."""
    block = matrix.matrix[np.ix_(rows, columns)]
    scores = block.mean(axis=1)
    out = []
    for name in ("fixed", "rule"):
        members = [i for i, r in enumerate(rows) if group(matrix.settings[r]) == name]
        members.sort(key=lambda i: (-scores[i], rows[i]))
        if distinct:
            seen: set[bytes] = set()
            unique = []
            for i in members:
                if block[i].tobytes() not in seen:
                    seen.add(block[i].tobytes())
                    unique.append(i)
            members = unique
        out.append([rows[i] for i in members])
    return out


def _finalists(ranked: dict[Any, list[list[int]]], per_group: int, cap: int) -> dict[Any, list[int]]:
    """Each track's best of each group always; then its next best, depth by depth, while the union over
    tracks stays within `cap` (tracks that agree cost nothing; disagreeing ones cannot blow up the exact rung)."""
    chosen = {track: {g[0] for g in groups if g} for track, groups in ranked.items()}
    for depth in range(1, per_group):
        extra = {track: {g[depth] for g in groups if len(g) > depth} for track, groups in ranked.items()}
        if len(set().union(*chosen.values(), *extra.values())) > cap:
            break
        chosen = {track: chosen[track] | extra[track] for track in chosen}
    return {track: sorted(rows) for track, rows in chosen.items()}


def screen(settings: Sequence[dict[str, Any]], items: Sequence[VolumeItem], shapes: Sequence[Sequence[int]],
           pool: Any, workers: int, assignment: np.ndarray, order: Sequence[int], plan: HalvingPlan,
           report: Callable[[int, int, int, str], None]) -> tuple[dict[Any, list[int]], list[Rung]]:
    """Each track's finalists (indexes into `settings`) after the cheap rungs, and the rungs run."""
    crop = min(min(shape) for shape in shapes) // 2 >= plan.min_crop_side
    stages = [("crop", True, plan.screen_volumes), ("cheap", False, plan.check_volumes)] if crop else [
        ("cheap", False, plan.screen_volumes)]
    training = tracks(assignment)
    alive: dict[Any, list[int]] = {name: list(range(len(settings))) for name in training}
    rungs: list[Rung] = []
    for name, cropped, count in stages:
        started = time.perf_counter()
        matrix = ScoreMatrix(items, pool, cheap_score, workers, crop=cropped)
        matrix.add(settings)
        union = sorted(set().union(*alive.values()))
        columns = deal_volumes(assignment, order, max(2, count))
        matrix.fill(union, columns)
        ranked = {track: _ranked(matrix, rows, [c for c in columns if training[track][c]], distinct=name == "cheap")
                  for track, rows in alive.items()}
        if name == "crop":  # the best 1/eta of each group
            alive = {track: sorted(r for g in groups for r in g[:max(1, math.ceil(len(g) / plan.eta))])
                     for track, groups in ranked.items()}
        else:
            alive = _finalists(ranked, plan.finalists, plan.max_finalists)
        kept = len(set().union(*alive.values()))
        rungs.append(Rung(name, "surface_dice+voi", len(union), len(columns), matrix.evaluations, kept,
                          time.perf_counter() - started))
        report(len(union), kept, len(columns), f"rung {name}: {len(union)} setting(s) x {len(columns)} volume(s)"
               f"{' (centre crops)' if cropped else ''}, cheap score; {kept} kept")
    return alive, rungs
