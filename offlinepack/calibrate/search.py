"""`calibrate`: post-processing settings that maximise the mean local score, validated by K-fold CV.

Steps: pair saved maps with labels -> propose settings (space.py) -> score them (two strategies below) ->
pick, cross-validate, bootstrap -> result.

Strategies: "halving" (halving.py) screens every setting with a cheap score (SurfaceDice + VOI, on centre
crops, then on whole volumes) and gives only each fold's finalists the exact score on every volume, each fold
screening on its own training volumes; "exhaustive" scores every setting exactly on every volume, in rounds of
volumes, dropping early the settings that cannot win. "auto" (the default) takes halving when the exhaustive
search would cost more than AUTO_HALVING_EVALUATIONS_320 evaluations of 320^3 (20 x 320^3 x 200 settings:
up to ~2 h exhaustive on 2 cores, ~8 min halving expected; BENCHMARKS.md).

Early stopping ("racing", exhaustive only): volumes are taken in a fixed seeded order, a few at a time; after each round a
setting is dropped when, paired volume by volume with the leader of its family (fixed threshold, or one
per-volume rule), its mean difference plus `RACE_Z` standard errors is still below zero. The defaults and
each family's leader are always scored on every volume. (The drop decision sees every volume, held-out
folds included: a small optimism the report names; `early_stop=False` turns it off. Likewise `bayes`
proposes from scores on every volume; grid and random candidates do not depend on the data.)

Per-volume rules: the rule families are chosen only when picking among them beats picking among fixed
thresholds in cross-validation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from offlinepack.calibrate import space, stats
from offlinepack.calibrate.labelled import LabelledSet
from offlinepack.calibrate.halving import ALL, HalvingPlan, Rung, screen
from offlinepack.calibrate.tasks import ScoreMatrix, leaderboard_score
from offlinepack.errors import OfflinepackError
from offlinepack.post import PostConfig

RACE_Z = 2.0
FIRST_ROUND = 3  # volumes scored before anything may be dropped
STRATEGIES = ("auto", "halving", "exhaustive")
# "auto" screens (halving) when scoring everything would cost more than this many 320^3 evaluations (~5-10
# core-minutes); below it the exhaustive search is cheap and has no screening error
AUTO_HALVING_EVALUATIONS_320 = 100


@dataclass(frozen=True)
class CalibrationProgress:
    event: str  # "round" | "done"
    settings: int = 0
    alive: int = 0
    volumes_done: int = 0
    volumes: int = 0
    message: str | None = None  # what the step did, in words (the halving search's rungs)


@dataclass(frozen=True)
class CalibrationResult:
    best: dict[str, Any]  # the chosen setting
    post: PostConfig
    volumes: tuple[str, ...]
    search: str
    folds: int
    cv: stats.Interval  # held-out score of the whole selection procedure
    in_sample: stats.Interval  # the chosen setting on every volume (optimistic)
    defaults: stats.Interval
    gain: stats.Interval  # cv - defaults, paired over volumes
    fixed_cv: stats.Interval  # picking among global thresholds only
    rule_cv: stats.Interval | None  # picking among per-volume rules only (None: none searched)
    rule_chosen: bool
    settings_scored: int
    dropped_early: int
    evaluations: int
    seconds: float
    pool: dict[str, Any]
    per_volume: dict[str, dict[str, float]] = field(default_factory=dict)
    caveats: tuple[str, ...] = ()  # where the cross-validated figure may still be optimistic
    strategy: str = "exhaustive"  # "exhaustive" (racing) | "halving" (cheap rungs, then the finalists exactly)
    rungs: tuple[Rung, ...] = ()  # the halving search's rungs, the exact one last
    fold_picks: tuple[dict[str, Any], ...] = ()  # the setting each CV fold chose from its training volumes

    @property
    def cheap_evaluations(self) -> int:
        return sum(r.evaluations for r in self.rungs if r.name != "exact")

    @property
    def gain_is_significant(self) -> bool:
        return self.gain.low > 0.0

    def verdict(self) -> str:
        if self.gain_is_significant:
            return "the cross-validated gain over the defaults is outside the 95 % interval: a real improvement"
        return ("the cross-validated gain over the defaults is inside the 95 % interval: it may be noise; "
                "label more volumes before trusting it")

    def to_dict(self) -> dict[str, Any]:
        return {
            "best": self.best, "post": self.post.to_dict(), "volumes": list(self.volumes), "search": self.search,
            "folds": self.folds, "cv": self.cv.to_dict(), "in_sample": self.in_sample.to_dict(),
            "defaults": self.defaults.to_dict(), "gain": self.gain.to_dict(),
            "gain_is_significant": self.gain_is_significant, "verdict": self.verdict(),
            "fixed_cv": self.fixed_cv.to_dict(), "rule_cv": self.rule_cv.to_dict() if self.rule_cv else None,
            "rule_chosen": self.rule_chosen, "settings_scored": self.settings_scored,
            "dropped_early": self.dropped_early, "evaluations": self.evaluations,
            "cheap_evaluations": self.cheap_evaluations, "strategy": self.strategy,
            "rungs": [r.to_dict() for r in self.rungs], "fold_picks": list(self.fold_picks),
            "seconds": round(self.seconds, 3), "pool": self.pool, "per_volume": self.per_volume,
            "caveats": list(self.caveats),
        }


def _race(matrix: ScoreMatrix, rows: list[int], order: np.ndarray, protected: set[int], early_stop: bool,
          progress: Callable[[CalibrationProgress], None]) -> int:
    """Score `rows` volume round by volume round; returns how many were dropped early."""
    alive = list(rows)
    step = max(FIRST_ROUND, math.ceil(len(order) / 5))
    done = 0
    dropped = 0
    while done < len(order):
        columns = order[done:done + (step if done else max(step, FIRST_ROUND))]
        matrix.fill(alive, list(columns))
        done += len(columns)
        progress(CalibrationProgress("round", len(matrix.settings), len(alive), done, len(order)))
        if not early_stop or done < FIRST_ROUND or done >= len(order):
            continue
        seen = order[:done]
        scores = matrix.matrix[np.ix_(alive, seen)]
        means = scores.mean(axis=1)
        keep = []
        families = [space.family(matrix.settings[r]) for r in alive]
        for fam in set(families):
            members = [i for i, f in enumerate(families) if f == fam]
            leader = max(members, key=lambda i: means[i])
            for i in members:
                diff = scores[i] - scores[leader]
                se = diff.std(ddof=1) / math.sqrt(diff.size) if diff.size > 1 else 0.0
                if alive[i] in protected or i == leader or diff.mean() + RACE_Z * se >= 0.0:
                    keep.append(alive[i])
        dropped += len(alive) - len(keep)
        alive = [r for r in alive if r in set(keep)]
    return dropped


def calibrate(
    labelled: LabelledSet,
    *,
    search: str = "grid",
    budget: int = 200,
    folds: int = 5,
    pool: Any = None,
    seed: int = 0,
    early_stop: bool = True,
    base: PostConfig = PostConfig(),
    scorer: Callable[[np.ndarray, np.ndarray], float] = leaderboard_score,
    progress: Callable[[CalibrationProgress], None] | None = None,
    candidates: Sequence[dict[str, Any]] | None = None,
    strategy: str = "auto",
    halving: HalvingPlan = HalvingPlan(),
) -> CalibrationResult:
    """Search post-processing settings on labelled volumes; see the module doc. `candidates` replaces the
    grid (search="grid" only): a focused list of settings (space.canonical keys). `strategy`: "halving"
    screens cheaply and scores only the finalists exactly (halving.py), "exhaustive" scores every setting
    exactly (with racing), "auto" picks halving for large searches (grid and random; bayes is exhaustive)."""
    from offlinepack.calibrate.tasks import LocalPool

    if search not in space.SEARCHES:
        raise OfflinepackError(f"--search {search!r} is not one of {', '.join(space.SEARCHES)}")
    if strategy not in STRATEGIES:
        raise OfflinepackError(f"--strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    if strategy == "halving" and search == "bayes":
        raise OfflinepackError("--strategy halving screens a fixed list of settings; bayes proposes them from "
                               "exact scores as it goes", hint="use --search grid or random with halving, or "
                                                                "--strategy exhaustive with bayes")
    if budget < 1:
        raise OfflinepackError(f"--budget must be >= 1, got {budget}")
    if halving.finalists < 1:
        raise OfflinepackError(f"--finalists must be >= 1, got {halving.finalists}")
    if len(labelled.items) < 2:
        raise OfflinepackError(f"calibration needs at least 2 labelled volumes, got {len(labelled.items)}",
                               hint="cross-validation holds volumes out: label more volumes")
    report = progress or (lambda event: None)
    started = time.perf_counter()
    own_pool = pool is None
    pool = pool or LocalPool()
    workers = int(pool.describe().get("workers") or 1)
    try:
        items = labelled.items
        voxels = float(np.mean([np.prod(shape) for shape in labelled.shapes]))
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(items))
        matrix = ScoreMatrix(items, pool, scorer, workers)
        default_row = matrix.add([space.defaults_setting(base)])[0]
        dropped = 0
        if search == "grid":
            candidates = space.unique(candidates) if candidates is not None else space.grid(voxels)
            if len(candidates) > budget:
                # an even subsample keeps the grid's spread (every threshold family, every size)
                picks = np.linspace(0, len(candidates) - 1, budget).round().astype(int)
                candidates = [candidates[i] for i in sorted(set(picks))]
            rows = matrix.add(candidates)
        elif search == "random":
            rows = matrix.add(space.random_settings(voxels, budget, rng))
        if search != "bayes" and strategy == "auto":
            full_size = len(matrix.settings) * len(items) * voxels / space.REFERENCE_VOXELS
            strategy = "halving" if full_size > AUTO_HALVING_EVALUATIONS_320 else "exhaustive"
        if search != "bayes" and strategy == "halving":
            return _halving(matrix, labelled, search, folds, seed, default_row, order, pool, workers, halving,
                            report, started, base)
        if search == "grid" or search == "random":
            dropped += _race(matrix, [default_row, *rows], order, {default_row}, early_stop, report)
        else:  # bayes: rounds of proposals from the surrogate fitted to complete rows so far
            first = max(4, budget // 4)
            rows = matrix.add(space.random_settings(voxels, first, rng))
            dropped += _race(matrix, [default_row, *rows], order, {default_row}, early_stop, report)
            while len(matrix.settings) - 1 < budget:
                full = matrix.matrix
                history = {space.key(s): float(np.nanmean(full[i])) for i, s in enumerate(matrix.settings)}
                size = min(max(budget // 8, 4), budget + 1 - len(matrix.settings))
                batch = space.propose_bayes(voxels, history, size, rng)
                if not batch:
                    break
                rows = matrix.add(batch)
                leaders = _leaders(matrix)
                dropped += _race(matrix, [*leaders, *rows], order, {default_row, *leaders}, early_stop, report)
        caveats = []
        if early_stop and dropped:
            caveats.append(f"{dropped} setting(s) were stopped early on evidence from every volume, held-out folds "
                           "included (--no-early-stop avoids it)")
        if search == "bayes":
            caveats.append("bayes proposed settings from scores on every volume: the cross-validated pick is among "
                           "candidates the held-out volumes helped choose (grid/random do not)")
        return replace(_result(matrix, labelled, search, folds, seed, default_row, dropped, pool.describe(),
                               time.perf_counter() - started, base), caveats=tuple(caveats))
    finally:
        if own_pool:
            pool.close()


def _halving(matrix: ScoreMatrix, labelled: LabelledSet, search: str, folds: int, seed: int, default_row: int,
             order: np.ndarray, pool: Any, workers: int, plan: HalvingPlan,
             report: Callable[[CalibrationProgress], None], started: float, base: PostConfig) -> CalibrationResult:
    """The cheap rungs (halving.screen), then each track's finalists and the defaults exactly on every volume."""
    items = labelled.items
    total = len(matrix.settings)

    def rung_done(alive: int, kept: int, volumes: int, text: str) -> None:
        report(CalibrationProgress("round", total, alive, volumes, len(items), text))

    finalists, rungs = screen(matrix.settings, items, labelled.shapes, pool, workers,
                              stats.folds(len(items), folds, seed), order, plan, rung_done)
    finalists = {track: sorted({*rows, default_row}) for track, rows in finalists.items()}
    exact_rows = sorted(set().union(*finalists.values()))
    exact_started = time.perf_counter()
    matrix.fill(exact_rows, list(order))
    rungs.append(Rung("exact", "leaderboard", len(exact_rows), len(items), matrix.evaluations, len(exact_rows),
                      time.perf_counter() - exact_started))
    rung_done(len(exact_rows), len(exact_rows), len(items),
              f"rung exact: {len(exact_rows)} finalist(s) x {len(items)} volume(s), leaderboard score")
    result = _result(matrix, labelled, search, folds, seed, default_row, total - len(exact_rows), pool.describe(),
                     time.perf_counter() - started, base, finalists)
    return replace(result, strategy="halving", rungs=tuple(rungs), caveats=(
        f"halving: {total} setting(s) screened with SurfaceDice + VOI (no TopoScore), {len(exact_rows)} "
        "finalist(s) scored exactly on every volume; each fold screened on its own training volumes, so the "
        "cross-validated figure includes the screen",))


def _leaders(matrix: ScoreMatrix) -> list[int]:
    full = matrix.matrix
    complete = ~np.isnan(full).any(axis=1)
    out = []
    for fam in space.FAMILIES:
        rows = [i for i, s in enumerate(matrix.settings) if complete[i] and space.family(s) == fam]
        if rows:
            out.append(max(rows, key=lambda i: full[i].mean()))
    return out


def _result(matrix: ScoreMatrix, labelled: LabelledSet, search: str, k: int, seed: int, default_row: int,
            dropped: int, pool: dict[str, Any], seconds: float, base: PostConfig,
            finalists: dict[Any, list[int]] | None = None) -> CalibrationResult:
    """Pick, cross-validate, bootstrap. `finalists`: the candidates of each fold's track (and of ALL) after
    the halving screen; None: every setting scored on every volume is a candidate everywhere."""
    full = matrix.matrix
    complete = {int(r) for r in np.nonzero(~np.isnan(full).any(axis=1))[0]}
    assignment = stats.folds(full.shape[1], k, seed)
    folds = int(assignment.max()) + 1
    finalists = finalists or {track: sorted(complete) for track in [*range(folds), ALL]}

    def of(track: Any, rule: bool) -> np.ndarray:
        return np.array([r for r in finalists[track] if r in complete
                         and (space.family(matrix.settings[r]) != "fixed") == rule], dtype=np.int64)

    fixed_held, fixed_picks = stats.cross_validate(full, [of(f, False) for f in range(folds)], assignment)
    ruled = [of(f, True) for f in range(folds)]
    rule_held, rule_picks = (stats.cross_validate(full, ruled, assignment) if all(r.size for r in ruled)
                             else (None, []))
    rule_chosen = rule_held is not None and float(rule_held.mean()) > float(fixed_held.mean())
    held = rule_held if rule_chosen else fixed_held
    best = stats.best_row(full, of(ALL, rule_chosen), np.arange(full.shape[1]))
    picks = rule_picks if rule_chosen else fixed_picks
    defaults = full[default_row]
    ids = [item.id for item in labelled.items]
    return CalibrationResult(
        best=matrix.settings[best], post=space.to_post(matrix.settings[best], base), volumes=tuple(ids),
        search=search, folds=int(assignment.max()) + 1, cv=stats.bootstrap(held, seed),
        in_sample=stats.bootstrap(full[best], seed), defaults=stats.bootstrap(defaults, seed),
        gain=stats.bootstrap(held - defaults, seed), fixed_cv=stats.bootstrap(fixed_held, seed),
        rule_cv=stats.bootstrap(rule_held, seed) if rule_held is not None else None, rule_chosen=rule_chosen,
        settings_scored=len(matrix.settings), dropped_early=dropped, evaluations=matrix.evaluations,
        seconds=seconds, pool=pool,
        per_volume={i: {"defaults": round(float(d), 6), "cv": round(float(h), 6), "in_sample": round(float(b), 6)}
                    for i, d, h, b in zip(ids, defaults, held, full[best])},
        fold_picks=tuple(matrix.settings[p] for p in picks),
    )


def write_calibrated_toml(result: CalibrationResult, path: Path, provenance: dict[str, Any]) -> str:
    """A run.toml fragment (`[post]` only) that `offlinepack run --config` takes; scores as comments."""
    from offlinepack.atomic import write_text_atomically

    lines = [
        "# written by `offlinepack calibrate`: post-processing fitted on labelled volumes",
        f"# calibration {provenance.get('calibration_id')}; {len(result.volumes)} volume(s), search {result.search}, "
        f"{result.settings_scored} setting(s), {result.folds}-fold cross-validation",
        f"# cross-validated score {result.cv}; in-sample {result.in_sample}; defaults {result.defaults}",
        f"# {result.verdict()}",
        "[post]",
    ]
    defaults = PostConfig().to_dict()
    for name, value in result.post.to_dict().items():
        if value is None or (name not in ("threshold", "min_component_voxels") and value == defaults[name]):
            continue
        lines.append(f"{name} = {_toml_value(value)}")
    text = "\n".join(lines) + "\n"
    write_text_atomically(path, text)
    return text


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return repr(round(value, 6))
    return str(value)
